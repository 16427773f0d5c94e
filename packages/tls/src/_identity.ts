import { createPrivateKey, X509Certificate } from 'node:crypto';
import { pemCertificates, readConfigFile } from './_files.js';
import { TlsConfigError, TlsErrorCodes } from './errors.js';

/** Load and check a certificate (chain) and its key. */
export async function loadIdentity(
  certFile: string,
  keyFile: string,
  password: string | Buffer | undefined,
  rootFirst: boolean,
): Promise<{ cert: string; key: string; passphrase?: string }> {
  const what = rootFirst ? 'CERTCHAINFILE' : 'CERTFILE';
  let certs = pemCertificates(await readConfigFile(certFile, what), certFile, what);
  // CERTCHAINFILE is ordered root first, host last (man page); OpenSSL wants the leaf first.
  if (rootFirst) certs = certs.reverse();
  const leaf = new X509Certificate(certs[0]!);
  const now = Date.now();
  if (Date.parse(leaf.validTo) < now)
    throw new TlsConfigError(
      TlsErrorCodes.CERT_EXPIRED,
      `certificate ${certFile} expired on ${leaf.validTo}`,
      { path: certFile },
    );
  if (Date.parse(leaf.validFrom) > now)
    throw new TlsConfigError(
      TlsErrorCodes.CERT_EXPIRED,
      `certificate ${certFile} is not valid before ${leaf.validFrom}`,
      {
        path: certFile,
      },
    );
  const keyPem = (await readConfigFile(keyFile, 'KEYFILE')).toString('latin1');
  const passphrase = password === undefined ? undefined : password.toString();
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey({ key: keyPem, ...(passphrase !== undefined ? { passphrase } : {}) });
  } catch (cause) {
    const msg = (cause as Error).message;
    if (/passphrase|decrypt|bad decrypt/i.test(msg) || /ENCRYPTED/.test(keyPem))
      throw new TlsConfigError(
        TlsErrorCodes.KEY_PASSWORD,
        `unable to decrypt key ${keyFile}: ${passphrase === undefined ? 'it is encrypted and no password was given (-3)' : 'wrong password'}`,
        { path: keyFile, cause },
      );
    throw new TlsConfigError(TlsErrorCodes.BAD_PEM, `${keyFile} holds no usable private key`, {
      path: keyFile,
      cause,
    });
  }
  if (!leaf.checkPrivateKey(key))
    throw new TlsConfigError(
      TlsErrorCodes.KEY_MISMATCH,
      `key ${keyFile} does not belong to certificate ${certFile}`,
      {
        path: keyFile,
      },
    );
  return { cert: certs.join(''), key: keyPem, ...(passphrase !== undefined ? { passphrase } : {}) };
}
