import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type Forge from 'node-forge';

/** Where the development certificate lives: $XDG_CACHE_HOME/ucspi/dev-cert, else ~/.cache/ucspi/dev-cert. */
export function developmentCertificateDir(env: Record<string, string | undefined> = process.env): string {
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'ucspi', 'dev-cert');
}

/**
 * A self-signed certificate and key for localhost, 127.0.0.1 and ::1, for trying the servers
 * without a CA. Made once (RSA-2048 from node:crypto, the certificate built with node-forge) and
 * kept in a per-user cache directory (mode 0700, key 0600); made again when less than a day of
 * validity is left. The returned warning is meant to be printed every time it is used.
 */
export async function developmentCertificate(
  env: Record<string, string | undefined> = process.env,
): Promise<{ certFile: string; keyFile: string; warning: string }> {
  const dir = developmentCertificateDir(env);
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  const warning = `using a self-signed DEVELOPMENT certificate for localhost (${certFile}); clients cannot verify it: set CERTFILE and KEYFILE for real use`;
  try {
    const cert = new X509Certificate(await readFile(certFile));
    await readFile(keyFile);
    if (Date.parse(cert.validTo) - Date.now() > 86_400_000) return { certFile, keyFile, warning };
  } catch {
    // none yet, or unusable: make one
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  // node-forge (1.8 MB, about 55 ms to load) is loaded only here, when a certificate is made, not at
  // every start of a server that imports @ucspi/tls.
  const forge: typeof Forge = (await import('node-forge')).default;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const key = forge.pki.privateKeyFromPem(keyPem) as Forge.pki.rsa.PrivateKey;
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  cert.serialNumber = `01${randomBytes(8).toString('hex')}`;
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 365 * 86_400_000);
  const name = [
    { shortName: 'O', value: '@ucspi development certificate' },
    { shortName: 'CN', value: 'localhost' },
  ];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [
        { type: 2, value: 'localhost' },
        { type: 7, ip: '127.0.0.1' },
        { type: 7, ip: '::1' },
      ],
    },
  ]);
  cert.sign(key, forge.md.sha256.create());
  // Written beside and renamed, so a concurrent reader never sees half a file.
  await writeFile(`${keyFile}.tmp`, keyPem, { mode: 0o600 });
  await writeFile(`${certFile}.tmp`, forge.pki.certificateToPem(cert), { mode: 0o644 });
  await rename(`${keyFile}.tmp`, keyFile);
  await rename(`${certFile}.tmp`, certFile);
  return { certFile, keyFile, warning };
}
