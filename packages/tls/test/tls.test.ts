import { once } from 'node:events';
import { fstatSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { connect, TLSSocket } from 'node:tls';
import { createTestPki, run, TEST_KEY_PASSWORD, type TestPki, tempDir, toolAvailable } from '@ucspi/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  applyEvaluationPolicy,
  developmentCertificate,
  evaluateCertificate,
  loadServerTls,
  readKeyPasswordFromFd,
  type ServerTls,
  TlsErrorCodes,
} from '../src/index.js';

const tmp = tempDir();
let pki: TestPki;
beforeAll(() => {
  pki = createTestPki(join(tmp.path, 'pki'));
}, 30_000);
afterAll(() => tmp.cleanup());

interface Seen {
  peer?: { ok: boolean; reason?: string };
  protocol?: string | null;
  alpn?: string | false | null;
  servername?: string | false;
  evaluation?: ReturnType<typeof evaluateCertificate>;
}

/** A plain TCP server that wraps each connection like sslserver: TLSSocket with serverOptions. */
async function serve(
  tls: ServerTls,
  remoteHost?: string,
): Promise<{ port: number; seen: Seen[]; server: Server }> {
  const seen: Seen[] = [];
  const server = createServer((raw) => {
    const s = new TLSSocket(raw, { isServer: true, ...tls.serverOptions });
    s.on('error', () => undefined);
    s.on('secure', () => {
      const peer = tls.checkPeer(s, remoteHost);
      seen.push({
        peer,
        protocol: s.getProtocol(),
        alpn: s.alpnProtocol,
        servername: (s as unknown as { servername?: string | false }).servername,
        evaluation: evaluateCertificate(s, { host: 'client.test' }),
      });
      s.end(peer.ok ? 'hello\n' : '');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, seen, server };
}

const env = () => ({ CERTFILE: pki.serverCert, KEYFILE: pki.serverKey });

async function sClient(port: number, ...args: string[]) {
  return run(
    'openssl',
    [
      's_client',
      '-connect',
      `127.0.0.1:${port}`,
      '-CAfile',
      pki.rootCert,
      '-verify_return_error',
      '-ign_eof',
      ...args,
    ],
    {
      input: '',
      timeoutMs: 10_000,
    },
  );
}

describe.runIf(toolAvailable('openssl'))('handshakes with openssl s_client', () => {
  it('serves the certificate with its chain; a client trusting only the root verifies it', async () => {
    const { port, server, seen } = await serve(
      await loadServerTls({ CERTFILE: pki.serverChain, KEYFILE: pki.serverKey }),
    );
    try {
      const r = await sClient(port, '-verify_hostname', 'localhost');
      expect(r.stdout.toString()).toContain('Verify return code: 0 (ok)');
      expect(r.stdout.toString()).toContain('hello');
      expect(seen[0]?.protocol).toBe('TLSv1.3');
    } finally {
      server.close();
    }
  });

  it('takes CERTCHAINFILE ordered from the root down, as the man page says', async () => {
    const tls = await loadServerTls({
      CERTCHAINFILE: pki.serverChainRootFirst,
      KEYFILE: pki.serverKey,
      CERTFILE: pki.otherCert,
    });
    expect(tls.describe()[0]).toMatch(/^chainfile \d+ /);
    const { port, server } = await serve(tls);
    try {
      const r = await sClient(port, '-verify_ip', '127.0.0.1');
      expect(r.stdout.toString()).toContain('Verify return code: 0 (ok)');
    } finally {
      server.close();
    }
  });

  it('refuses TLS 1.1 and 1.0 by default', async () => {
    const { port, server } = await serve(await loadServerTls(env()));
    try {
      const r = await sClient(port, '-tls1_1', '-cipher', 'DEFAULT:@SECLEVEL=0');
      expect(r.stdout.toString()).not.toContain('hello');
      expect(r.code).not.toBe(0);
    } finally {
      server.close();
    }
  });

  it('-m requires a client certificate that verifies, and says why it refuses', async () => {
    const tls = await loadServerTls({ ...env(), CAFILE: pki.caBundle }, { clientCert: 'mail' });
    const { port, server, seen } = await serve(tls);
    try {
      const none = await sClient(port);
      expect(none.stdout.toString()).not.toContain('hello');
      expect(seen.at(-1)?.peer).toEqual({ ok: false, reason: 'no client certificate' });

      const good = await sClient(port, '-cert', pki.clientCert, '-key', pki.clientKey);
      expect(good.stdout.toString()).toContain('hello');
      expect(seen.at(-1)?.peer).toEqual({ ok: true });
      expect(seen.at(-1)?.evaluation).toMatchObject({
        accept: true,
        anyError: false,
        hostnameMismatch: false,
      });

      const self = await sClient(port, '-cert', pki.selfSignedCert, '-key', pki.selfSignedKey);
      expect(self.stdout.toString()).not.toContain('hello');
      expect(seen.at(-1)?.peer?.reason).toMatch(
        /^missing credentials \(CA\) or unable to validate client certificate/,
      );
      // Self-signed (18) and not client.test (62): the mismatch outranks the self-signed error.
      expect(seen.at(-1)?.evaluation).toMatchObject({
        selfSigned: true,
        hostnameMismatch: true,
        accept: false,
        mostSeriousError: 62,
      });

      await sClient(port, '-cert', pki.expiredCert, '-key', pki.expiredKey);
      expect(seen.at(-1)?.peer?.reason).toContain('CERT_HAS_EXPIRED');
      expect(seen.at(-1)?.evaluation).toMatchObject({
        otherError: true,
        mostSeriousError: 10,
        accept: false,
      });
    } finally {
      server.close();
    }
  });

  it('-z also matches the remote host name; VERIFYDEPTH limits the chain', async () => {
    const z = await serve(
      await loadServerTls({ ...env(), CAFILE: pki.caBundle, VERIFYDEPTH: '2' }, { clientCert: 'host' }),
      'client.test',
    );
    const wrong = await serve(
      await loadServerTls({ ...env(), CAFILE: pki.caBundle, VERIFYDEPTH: '2' }, { clientCert: 'host' }),
      'other.test',
    );
    const shallow = await serve(
      await loadServerTls({ ...env(), CAFILE: pki.caBundle, VERIFYDEPTH: '0' }, { clientCert: 'mail' }),
    );
    try {
      expect(
        (await sClient(z.port, '-cert', pki.clientCert, '-key', pki.clientKey)).stdout.toString(),
      ).toContain('hello');
      await sClient(wrong.port, '-cert', pki.clientCert, '-key', pki.clientKey);
      expect(wrong.seen.at(-1)?.peer).toEqual({
        ok: false,
        reason: 'client certificate does not match other.test',
      });
      await sClient(shallow.port, '-cert', pki.clientCert, '-key', pki.clientKey);
      expect(shallow.seen.at(-1)?.peer?.reason).toMatch(/VERIFYDEPTH 0/);
    } finally {
      for (const s of [z, wrong, shallow]) s.server.close();
    }
  });

  it('refuses a client certificate revoked by a CRL', async () => {
    const tls = await loadServerTls(
      { ...env(), CAFILE: pki.caBundle },
      { clientCert: 'mail', crlFiles: [pki.crl] },
    );
    const { port, server, seen } = await serve(tls);
    try {
      await sClient(port, '-cert', pki.revokedCert, '-key', pki.revokedKey);
      expect(seen.at(-1)?.peer?.reason).toContain('CERT_REVOKED');
      expect(
        (await sClient(port, '-cert', pki.clientCert, '-key', pki.clientKey)).stdout.toString(),
      ).toContain('hello');
    } finally {
      server.close();
    }
  });

  it('CCAFILE=- disables the request; CADIR is a hashed directory', async () => {
    const off = await serve(
      await loadServerTls({ ...env(), CAFILE: pki.caBundle, CCAFILE: '-' }, { clientCert: 'mail' }),
    );
    const dir = await serve(await loadServerTls({ ...env(), CADIR: pki.caDir }, { clientCert: 'mail' }));
    try {
      expect((await sClient(off.port)).stdout.toString()).toContain('hello');
      expect(
        (await sClient(dir.port, '-cert', pki.clientCert, '-key', pki.clientKey)).stdout.toString(),
      ).toContain('hello');
    } finally {
      off.server.close();
      dir.server.close();
    }
  });

  it('chooses the certificate by SNI and negotiates ALPN', async () => {
    const tls = await loadServerTls(
      { CERTFILE: pki.serverChain, KEYFILE: pki.serverKey },
      { sni: { 'other.test': { certFile: pki.otherCert, keyFile: pki.otherKey } }, alpn: ['h2', 'smtp'] },
    );
    const { port, server, seen } = await serve(tls);
    try {
      // other.pem is served without its intermediate: this client trusts both CAs.
      const other = await sClient(
        port,
        '-servername',
        'other.test',
        '-alpn',
        'smtp',
        '-verify_hostname',
        'other.test',
        '-CAfile',
        pki.caBundle,
      );
      expect(other.stdout.toString()).toContain('Verify return code: 0 (ok)');
      expect(other.stdout.toString()).toContain('ALPN protocol: smtp');
      expect(seen.at(-1)?.alpn).toBe('smtp');
      const plain = await sClient(port, '-servername', 'localhost', '-verify_hostname', 'localhost');
      expect(plain.stdout.toString()).toContain('Verify return code: 0 (ok)');
    } finally {
      server.close();
    }
  });
});

describe.runIf(toolAvailable('gnutls-cli'))('handshake with gnutls-cli', () => {
  it('a second TLS implementation verifies the chain and reads the data', async () => {
    const { port, server } = await serve(
      await loadServerTls({ CERTFILE: pki.serverChain, KEYFILE: pki.serverKey }),
    );
    try {
      const r = await run('gnutls-cli', ['--x509cafile', pki.rootCert, '-p', String(port), '127.0.0.1'], {
        input: '',
        timeoutMs: 10_000,
      });
      expect(r.stdout.toString()).toContain('hello');
      expect(r.stderr.toString() + r.stdout.toString()).not.toMatch(/Verification.*failed|not trusted/i);
    } finally {
      server.close();
    }
  });
});

describe('session tickets', () => {
  it('a client resumes on a second instance that loaded the same ticket keys', async () => {
    const keys = join(tmp.path, 'ticket.keys');
    writeFileSync(keys, Buffer.alloc(48, 7));
    const a = await serve(await loadServerTls(env(), { ticketKeysFile: keys }));
    const b = await serve(await loadServerTls(env(), { ticketKeysFile: keys }));
    try {
      const first = connect({
        port: a.port,
        host: '127.0.0.1',
        ca: readFileSync(pki.caBundle),
        servername: 'localhost',
      });
      const session = await new Promise<Buffer>((resolve) => first.once('session', resolve));
      first.destroy();
      const second = connect({
        port: b.port,
        host: '127.0.0.1',
        ca: readFileSync(pki.caBundle),
        servername: 'localhost',
        session,
      });
      await once(second, 'secureConnect');
      expect(second.isSessionReused()).toBe(true);
      second.destroy();
    } finally {
      a.server.close();
      b.server.close();
    }
  });
});

describe('bad configuration fails before any connection, naming the file', () => {
  const cases: Array<[string, () => Promise<unknown>, string, RegExp]> = [
    ['no certificate', () => loadServerTls({}), TlsErrorCodes.NO_CERT, /CERTFILE/],
    [
      'missing file',
      () => loadServerTls({ CERTFILE: join(tmp.path, 'nope.pem') }),
      TlsErrorCodes.FILE,
      /nope\.pem: no such file/,
    ],
    [
      'malformed PEM',
      () => loadServerTls({ CERTFILE: pki.malformed, KEYFILE: pki.serverKey }),
      TlsErrorCodes.BAD_PEM,
      /malformed\.pem/,
    ],
    [
      'not PEM',
      () => loadServerTls({ CERTFILE: pki.crl, KEYFILE: pki.serverKey }),
      TlsErrorCodes.BAD_PEM,
      /no PEM certificate/,
    ],
    [
      'key mismatch',
      () => loadServerTls({ CERTFILE: pki.serverCert, KEYFILE: pki.mismatchedKey }),
      TlsErrorCodes.KEY_MISMATCH,
      /mismatched\.key does not belong/,
    ],
    [
      'expired',
      () => loadServerTls({ CERTFILE: pki.expiredCert, KEYFILE: pki.expiredKey }),
      TlsErrorCodes.CERT_EXPIRED,
      /expired\.pem expired/,
    ],
    [
      'not yet valid',
      () => loadServerTls({ CERTFILE: pki.futureCert, KEYFILE: pki.futureKey }),
      TlsErrorCodes.CERT_EXPIRED,
      /not valid before/,
    ],
    [
      'no password',
      () => loadServerTls({ CERTFILE: pki.serverCert, KEYFILE: pki.encryptedServerKey }),
      TlsErrorCodes.KEY_PASSWORD,
      /no password/,
    ],
    [
      'wrong password',
      () =>
        loadServerTls(
          { CERTFILE: pki.serverCert, KEYFILE: pki.encryptedServerKey },
          { keyPassword: 'wrong' },
        ),
      TlsErrorCodes.KEY_PASSWORD,
      /wrong password/,
    ],
    [
      'no CA for -m',
      () => loadServerTls({ CERTFILE: pki.serverCert, KEYFILE: pki.serverKey }, { clientCert: 'mail' }),
      TlsErrorCodes.NO_CA,
      /CAFILE/,
    ],
    [
      'bad VERIFYDEPTH',
      () => loadServerTls({ CERTFILE: pki.serverCert, KEYFILE: pki.serverKey, VERIFYDEPTH: 'x' }),
      TlsErrorCodes.BAD_OPTION,
      /VERIFYDEPTH/,
    ],
    [
      'bad CIPHERS',
      () => loadServerTls({ CERTFILE: pki.serverCert, KEYFILE: pki.serverKey, CIPHERS: 'NO-SUCH-CIPHER' }),
      TlsErrorCodes.BAD_OPTION,
      /OpenSSL refused/,
    ],
    [
      'CRL file without a CRL',
      () => loadServerTls({ CERTFILE: pki.serverCert, KEYFILE: pki.serverKey }, { crlFiles: [pki.rootCert] }),
      TlsErrorCodes.BAD_PEM,
      /root\.pem holds no PEM CRL/,
    ],
    [
      'short ticket keys',
      () =>
        loadServerTls({ CERTFILE: pki.serverCert, KEYFILE: pki.serverKey }, { ticketKeysFile: pki.rootCert }),
      TlsErrorCodes.BAD_OPTION,
      /48 bytes/,
    ],
  ];
  for (const [name, load, code, message] of cases) {
    it(name, async () => {
      const err = await load().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ code });
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).not.toContain(TEST_KEY_PASSWORD);
    });
  }

  it('the right password opens an encrypted key; the password is never in describe()', async () => {
    const tls = await loadServerTls(
      { CERTFILE: pki.serverCert, KEYFILE: pki.encryptedServerKey },
      { keyPassword: TEST_KEY_PASSWORD },
    );
    expect(tls.describe().join('\n')).not.toContain(TEST_KEY_PASSWORD);
    expect(tls.describe()).toEqual([
      `cert ${process.pid} ${pki.serverCert}`,
      `key ${process.pid} ${pki.encryptedServerKey}`,
    ]);
  });
});

describe('readKeyPasswordFromFd', () => {
  it('reads up to the NUL and closes the descriptor', async () => {
    const f = join(tmp.path, 'pw');
    writeFileSync(f, Buffer.from(`${TEST_KEY_PASSWORD}\0trailing`));
    const fd = openSync(f, 'r');
    expect((await readKeyPasswordFromFd(fd)).toString()).toBe(TEST_KEY_PASSWORD);
    // Closed: the descriptor no longer refers to anything (checked without closing it again).
    expect(() => fstatSync(fd)).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });

  it('reports a descriptor that is not open', async () => {
    await expect(readKeyPasswordFromFd(987)).rejects.toMatchObject({ code: TlsErrorCodes.PASSWORD_FD });
  });
});

describe('developmentCertificate', () => {
  it('makes a usable self-signed certificate once, with private permissions, and reuses it', async () => {
    const cache = join(tmp.path, 'xdg');
    const first = await developmentCertificate({ XDG_CACHE_HOME: cache });
    expect(first.warning).toMatch(/DEVELOPMENT certificate/);
    expect(statSync(first.keyFile).mode & 0o777).toBe(0o600);
    expect(statSync(join(cache, 'ucspi', 'dev-cert')).mode & 0o777).toBe(0o700);
    const again = await developmentCertificate({ XDG_CACHE_HOME: cache });
    expect(readFileSync(again.certFile).equals(readFileSync(first.certFile))).toBe(true);
    const tls = await loadServerTls({ CERTFILE: first.certFile, KEYFILE: first.keyFile });
    const { port, server } = await serve(tls);
    try {
      const c = connect({
        port,
        host: '127.0.0.1',
        ca: readFileSync(first.certFile),
        servername: 'localhost',
      });
      const [data] = await once(c, 'data');
      expect(String(data)).toBe('hello\n');
      c.destroy();
    } finally {
      server.close();
    }
  });
});

describe('applyEvaluationPolicy', () => {
  it('the hook decides, and its answer is final', async () => {
    const report = { accept: false } as Parameters<typeof applyEvaluationPolicy>[0];
    expect(await applyEvaluationPolicy(report)).toBe(false);
    expect(await applyEvaluationPolicy(report, async () => true)).toBe(true);
    expect(await applyEvaluationPolicy({ ...report, accept: true }, () => false)).toBe(false);
  });
});
