// node:tls has no option for TLS 1.3 cipher suites (OpenSSL's -ciphersuites): it takes them in
// `ciphers`, recognised by their TLS_ prefix, and leaves the TLS 1.2 list to the rest of the
// string. A `ciphersuites` key in its options is silently ignored, so the two are merged here.
import { DEFAULT_CIPHERS } from 'node:tls';
import { TlsConfigError, TlsErrorCodes } from './errors.js';

/**
 * The `ciphers` option for `ciphers` (the TLS 1.2 list, default Node's) and `ciphersuites` (the
 * TLS 1.3 list): without `ciphersuites`, `ciphers` alone (TLS 1.3 keeps OpenSSL's suites); with
 * it, its suites followed by the TLS 1.2 part of `ciphers`.
 */
export function cipherOption(
  ciphers: string | undefined,
  ciphersuites: string | undefined,
): { ciphers?: string } {
  if (!ciphersuites) return ciphers ? { ciphers } : {};
  const suites = ciphersuites.split(':').filter(Boolean);
  const bad = suites.find((s) => !s.startsWith('TLS_'));
  if (bad !== undefined || suites.length === 0)
    throw new TlsConfigError(
      TlsErrorCodes.BAD_OPTION,
      `ciphersuites: ${JSON.stringify(bad ?? ciphersuites)} is not a TLS 1.3 cipher suite (TLS_...)`,
    );
  const tls12 = (ciphers ?? DEFAULT_CIPHERS).split(':').filter((c) => c && !c.startsWith('TLS_'));
  return { ciphers: [...suites, ...tls12].join(':') };
}
