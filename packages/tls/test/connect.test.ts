// connectTls: the client side on an already connected socket, against node:tls servers made from
// loadServerTls and against peers that stall or do not speak TLS.
import { once } from 'node:events';
import { type AddressInfo, createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';
import { createTestPki, type TestPki, tempDir } from '@ucspi/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type CertEvaluation,
  connectTls,
  evaluationArgs,
  evaluationEnv,
  loadClientTls,
  loadServerTls,
  mostSeriousError,
  TlsErrorCodes,
} from '../src/index.js';

const tmp = tempDir();
let pki: TestPki;
beforeAll(() => {
  pki = createTestPki(join(tmp.path, 'pki'));
}, 30_000);
afterAll(() => tmp.cleanup());
const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** A server on 127.0.0.1 handling each raw connection with `handle`; resolves with its port. */
async function listen(handle: (raw: Socket) => void): Promise<number> {
  const server = createServer(handle);
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** A TLS server with `cert`/`key` that greets, then echoes. */
async function tlsServer(cert: string, key: string): Promise<number> {
  const tls = await loadServerTls({ CERTFILE: cert, KEYFILE: key });
  return listen((raw) => {
    const s = new TLSSocket(raw, { isServer: true, ...tls.serverOptions });
    s.on('error', () => undefined);
    s.on('secure', () => s.write('hello\n'));
    s.pipe(s);
  });
}

async function connected(port: number): Promise<Socket> {
  const s = netConnect({ host: '127.0.0.1', port });
  await once(s, 'connect');
  return s;
}

const readLine = (s: TLSSocket) =>
  new Promise<string>((resolve) => {
    s.once('data', (b: Buffer) => resolve(b.toString()));
    s.resume();
  });

describe('connectTls', () => {
  it('resolves with a paused TLS socket once the policy accepts the server; early data waits', async () => {
    const port = await tlsServer(pki.serverChain, pki.serverKey);
    const client = await loadClientTls({ caFile: pki.rootCert, servername: 'localhost' });
    const s = await connectTls(await connected(port), client, { timeoutMs: 5000 });
    expect(s.isPaused()).toBe(true);
    expect(s.getProtocol()).toBe('TLSv1.3');
    expect(await readLine(s)).toBe('hello\n');
    s.destroy();
  });

  it('rejects a server the policy refuses, and destroys both sockets (UCSPI_ERR_TLS_PEER_REJECTED)', async () => {
    const port = await tlsServer(pki.serverChain, pki.serverKey);
    const client = await loadClientTls({ caFile: pki.rootCert, servername: 'other.test' });
    const raw = await connected(port);
    const err = await connectTls(raw, client, { timeoutMs: 5000 }).catch((e) => e);
    expect(err).toMatchObject({
      code: TlsErrorCodes.PEER_REJECTED,
      temporary: false,
      message: 'server certificate does not match other.test',
    });
    expect(raw.destroyed).toBe(true);
  });

  it("the evaluation hook decides both ways and sees the report with the policy's suggestion", async () => {
    const port = await tlsServer(pki.selfSignedCert, pki.selfSignedKey);
    const client = await loadClientTls({ caFile: pki.rootCert, verify: 'chain' });
    const seen: CertEvaluation[] = [];
    const accepted = await connectTls(await connected(port), client, {
      timeoutMs: 5000,
      host: 'mail.example',
      evaluate: (r) => {
        seen.push(r);
        return true;
      },
    });
    expect(await readLine(accepted)).toBe('hello\n');
    accepted.destroy();
    const report = seen[0]!;
    expect(report).toMatchObject({
      accept: false,
      selfSigned: true,
      hostnameMismatch: true,
      otherError: false,
      anyError: true,
      mostSeriousError: 62,
      sans: ['localhost'],
      version: 'TLSv1.3',
      publicKeyBits: 2048,
      subject: 'CN=127.0.0.1,O=Test Org,C=DE',
      issuer: 'CN=127.0.0.1,O=Test Org,C=DE',
    });
    expect(report.certHash).toMatch(/^([0-9A-F]{2}:){19}[0-9A-F]{2}$/);
    expect(evaluationArgs(report)).toEqual(['1', '1', '1', '0', '0']);
    expect(evaluationEnv(report)).toMatchObject({
      SSL_SANS: 'localhost',
      SSL_MOST_SERIOUS_ERROR: '62',
      SSL_SUBJECT_URL: 'CN%3D127.0.0.1%2CO%3DTest%20Org%2CC%3DDE',
      SSL_ACCEPT_CERT: '0',
    });

    const good = await tlsServer(pki.serverChain, pki.serverKey);
    const trusting = await loadClientTls({ caFile: pki.rootCert, verify: 'chain' });
    const err = await connectTls(await connected(good), trusting, {
      timeoutMs: 5000,
      evaluate: () => false,
    }).catch((e) => e);
    expect(err).toMatchObject({
      code: TlsErrorCodes.PEER_REJECTED,
      message: 'server certificate rejected by the evaluation hook',
    });
    const thrown = await connectTls(await connected(good), trusting, {
      timeoutMs: 5000,
      evaluate: () => {
        throw new Error('boom');
      },
    }).catch((e) => e);
    expect(thrown.message).toBe('server certificate rejected: the evaluation hook failed: boom');
  });

  it('a peer that says nothing: UCSPI_ERR_TLS_HANDSHAKE_TIMEOUT after the deadline', async () => {
    const port = await listen(() => undefined);
    const client = await loadClientTls({ verify: 'none' });
    const t0 = Date.now();
    const err = await connectTls(await connected(port), client, { timeoutMs: 300 }).catch((e) => e);
    expect(err).toMatchObject({ code: TlsErrorCodes.HANDSHAKE_TIMEOUT, temporary: true });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
  });

  it("a peer that does not speak TLS: UCSPI_ERR_TLS_HANDSHAKE with OpenSSL's reason", async () => {
    const port = await listen((raw) => raw.end('220 plain SMTP here, no TLS\r\n'));
    const client = await loadClientTls({ verify: 'none' });
    const err = await connectTls(await connected(port), client, { timeoutMs: 5000 }).catch((e) => e);
    expect(err).toMatchObject({ code: TlsErrorCodes.HANDSHAKE, temporary: true });
    expect(err.reason).toBe('wrong version number');
  });
});

describe('mostSeriousError', () => {
  it('ranks any other error over 62, and 62 over 18', () => {
    expect(mostSeriousError([])).toBe(0);
    expect(mostSeriousError([18])).toBe(18);
    expect(mostSeriousError([18, 62])).toBe(62);
    expect(mostSeriousError([62, 18])).toBe(62);
    expect(mostSeriousError([18, 10, 62])).toBe(10);
  });
});
