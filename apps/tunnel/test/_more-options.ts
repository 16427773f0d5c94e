// Helpers of more-options.test.ts and tls-checks.test.ts: a certificate with an email
// subjectAltName signed by the test PKI's intermediate (made with the real openssl), a TLS server
// presenting it, a hashed CRL folder, a backend and TLS clients that hold their connections open.

import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer, Server as NetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { createServer, type Server, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { run } from '@ucspi/testkit';
import { fx } from './_tls-options.js';

/** The email certificate's files, made by {@link makeMailCert}. */
export const mail = { cert: '', key: '', chain: '' };

/** CN=mail.test with subjectAltName email:alice@example.org and DNS:mail.test. */
export async function makeMailCert(): Promise<void> {
  const p = (n: string) => join(fx.dir, n);
  await run('openssl', [
    'req',
    '-new',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    p('mail.key'),
    '-subj',
    '/CN=mail.test',
    '-out',
    p('mail.csr'),
  ]);
  writeFileSync(
    p('mail.ext'),
    'subjectAltName=email:alice@example.org,DNS:mail.test\nextendedKeyUsage=clientAuth,serverAuth\n',
  );
  const signed = await run('openssl', [
    'x509',
    '-req',
    '-in',
    p('mail.csr'),
    '-CA',
    fx.pki.interCert,
    '-CAkey',
    fx.pki.interKey,
    '-set_serial',
    '4242',
    '-days',
    '2',
    '-extfile',
    p('mail.ext'),
    '-out',
    p('mail.pem'),
  ]);
  if (signed.code !== 0) throw new Error(signed.stderr.toString());
  writeFileSync(
    p('mail-chain.pem'),
    readFileSync(p('mail.pem'), 'latin1') + readFileSync(fx.pki.interCert, 'latin1'),
  );
  Object.assign(mail, { cert: p('mail.pem'), key: p('mail.key'), chain: p('mail-chain.pem') });
}

/** A TLS server with the email certificate that writes `ready` and closes; returns its port. */
export async function mailServer(): Promise<{ port: number; server: Server }> {
  const server = createServer({ cert: readFileSync(mail.chain), key: readFileSync(mail.key) }, (s) => {
    s.on('error', () => undefined);
    s.end('ready\n');
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as { port: number }).port, server };
}

/**
 * A hashed CRL folder (`openssl rehash`) in the fixture folder holding the test PKI's CRLs whose
 * issuer CN is in `issuers` ('root', 'inter'); returns its path. Called again, it refills it.
 */
export async function crlDir(name: string, issuers: readonly ('root' | 'inter')[]): Promise<string> {
  const dir = join(fx.dir, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  const blocks =
    readFileSync(fx.pki.crl, 'latin1').match(/-----BEGIN X509 CRL-----[\s\S]+?-----END X509 CRL-----\n?/g) ??
    [];
  for (const [i, block] of blocks.entries()) {
    const file = join(dir, `crl${i}.pem`);
    writeFileSync(file, block);
    const issuer = (await run('openssl', ['crl', '-in', file, '-noout', '-issuer'])).stdout.toString();
    const which = /Intermediate/.test(issuer) ? 'inter' : 'root';
    if (!issuers.includes(which)) rmSync(file);
  }
  const r = await run('openssl', ['rehash', dir]);
  if (r.code !== 0) throw new Error(r.stderr.toString());
  return dir;
}

/** A backend that keeps every connection open and silent (closed by the test or at the end). */
export async function holdingBackend(): Promise<{ port: number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createNetServer((s) => {
    s.on('error', () => undefined);
    sockets.push(s);
  });
  held.push(server, sockets);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as { port: number }).port, sockets };
}

/** A TLS client that stays connected; resolves once the handshake is done. */
export function heldClient(port: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const c = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () => resolve(c));
    c.on('error', reject);
    held.push(c);
  });
}

const held: (NetServer | Socket | Socket[])[] = [];

/** afterEach: close what {@link holdingBackend} and {@link heldClient} opened. */
export function closeHeld(): void {
  for (const h of held.splice(0)) {
    if (Array.isArray(h)) for (const s of h) s.destroy();
    else if (h instanceof NetServer) h.close();
    else h.destroy();
  }
}
