// TLS settings from tcpclient's options and environment (indimail's names), with defaults that
// make sense on a machine without indimail: a default file that does not exist is simply not used
// (said with -v); a file named explicitly (an option or a variable) must exist.
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import type { ClientTls } from '@ucspi/tls';
import { FatalError } from './errors.js';
import type { ClientOptions } from './options.js';

/** indimail's default CERTDIR. */
export const DEFAULT_CERTDIR = '/etc/indimail/certs';

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

/** indimail's rule: a name that starts with neither `.` nor `/` lives in CERTDIR. */
const inCertDir = (dir: string, name: string) =>
  name.startsWith('.') || name.startsWith('/') ? name : join(dir, name);

/** Which files a run uses, and why (for -v). */
export interface TlsFiles {
  certFile?: string;
  caFile?: string;
  crlFile?: string;
  notes: string[];
}

/**
 * Pick the files: -n FILE, else TLS_CERTFILE, else CERTDIR/clientcert.pem when it exists (no
 * client certificate otherwise); -c, else SERVERCA, else CERTDIR/serverca.pem when it exists (the
 * system's CAs otherwise); -L, else SERVERCRL, else CERTDIR/servercrl.pem when it exists.
 */
export async function tlsFiles(o: ClientOptions, env: Record<string, string | undefined>): Promise<TlsFiles> {
  const dir = o.certDir ?? env.CERTDIR ?? DEFAULT_CERTDIR;
  const notes: string[] = [];
  const pick = async (
    given: string | undefined,
    variable: string,
    fallback: string,
    what: string,
    otherwise: string,
  ): Promise<string | undefined> => {
    if (given) return given;
    const fromEnv = env[variable];
    if (fromEnv) return inCertDir(dir, fromEnv);
    const path = join(dir, fallback);
    if (await exists(path)) return path;
    notes.push(`no ${what} ${path} (${variable} unset): ${otherwise}`);
    return undefined;
  };
  const certFile = await pick(
    o.certFile,
    'TLS_CERTFILE',
    'clientcert.pem',
    'client certificate',
    'none presented',
  );
  const caFile = await pick(o.caFile, 'SERVERCA', 'serverca.pem', 'CA file', "using the system's CAs");
  const crlFile = await pick(o.crlFile, 'SERVERCRL', 'servercrl.pem', 'CRL file', 'no revocation check');
  return {
    ...(certFile ? { certFile } : {}),
    ...(caFile ? { caFile } : {}),
    ...(crlFile ? { crlFile } : {}),
    notes,
  };
}

/**
 * -f: a cipher list, or (indimail) a file holding one (its first word). TLS_CIPHER_LIST and
 * TLS_CIPHER_SUITE otherwise, for TLS 1.2 and TLS 1.3.
 */
async function ciphers(
  o: ClientOptions,
  env: Record<string, string | undefined>,
): Promise<{ ciphers?: string; ciphersuites?: string }> {
  let list = o.cipherList;
  if (list !== undefined && (list.startsWith('/') || list.startsWith('.')) && (await exists(list)))
    list = (await readFile(list, 'latin1')).trim().split(/\s/)[0] ?? '';
  const suite = env.TLS_CIPHER_SUITE || undefined;
  const cipherList = env.TLS_CIPHER_LIST || undefined;
  if (list !== undefined && o.tlsVersion === 'TLSv1.3')
    return { ciphersuites: list, ...(cipherList ? { ciphers: cipherList } : {}) };
  return {
    ...((list ?? cipherList) ? { ciphers: (list ?? cipherList)! } : {}),
    ...(suite ? { ciphersuites: suite } : {}),
  };
}

/**
 * Load the client's TLS configuration and build its context now, before connecting: a missing
 * file, a bad PEM or a cipher list OpenSSL refuses ends the run here (111 for an unreadable
 * file, 100 otherwise) instead of after the connection.
 */
export async function loadTls(
  o: ClientOptions,
  env: Record<string, string | undefined>,
): Promise<{ clientTls: ClientTls; files: TlsFiles }> {
  const files = await tlsFiles(o, env);
  const { loadClientTls } = await import('@ucspi/tls');
  let clientTls: ClientTls;
  try {
    clientTls = await loadClientTls({
      ...(files.certFile ? { certFile: files.certFile } : {}),
      ...(files.caFile ? { caFile: files.caFile } : {}),
      ...(files.crlFile ? { crlFiles: [files.crlFile] } : {}),
      ...(o.matchHost ? { servername: o.matchHost, verify: 'host' as const } : { verify: 'chain' as const }),
      ...(o.tlsVersion ? { minVersion: o.tlsVersion, maxVersion: o.tlsVersion } : {}),
      ...(await ciphers(o, env)),
    });
  } catch (err) {
    const e = err as { message: string; temporary?: boolean; code?: string; cause?: unknown };
    // A cipher list or option OpenSSL refuses (the library builds a trial context): in the same
    // words as when the context is built below.
    if (e.code === 'UCSPI_ERR_TLS_BAD_OPTION' && e.cause instanceof Error)
      throw new FatalError(`unable to initialize TLS: ${e.cause.message}`, 100);
    throw new FatalError(e.message, e.temporary ? 111 : 100);
  }
  try {
    // tls.connect would build the same context per connection; building it now checks the
    // cipher lists before any byte goes out.
    clientTls.connectOptions.secureContext = createSecureContext(clientTls.connectOptions);
  } catch (err) {
    throw new FatalError(`unable to initialize TLS: ${(err as Error).message}`, 100);
  }
  return { clientTls, files };
}
