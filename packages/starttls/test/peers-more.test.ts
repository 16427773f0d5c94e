import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer as createTlsServer } from 'node:tls';
import { createTestPki, freePort, type TestPki, tempDir } from '@ucspi/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StartTlsErrorCodes } from '../src/index.js';
import { type Peer, startTinyproxy } from './_peers.js';
import { startInspircd, startProsody, startSlapd, startVsftpd } from './_peers-more.js';
import { readLineFrom, runClient } from './_script.js';
import { canRunPeer, firstChunk, say } from './_talk.js';

// The client side against more real servers on loopback high ports: tinyproxy (HTTP CONNECT),
// slapd (LDAP), vsftpd (FTP), prosody (XMPP) and InspIRCd (IRC). Each test goes on over TLS.

let pki: TestPki;
const cleanups: Array<() => void | Promise<void>> = [];
beforeAll(() => {
  const dir = tempDir('starttls-peers-more-');
  cleanups.push(dir.cleanup);
  pki = createTestPki(dir.path);
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe.skipIf(!canRunPeer('tinyproxy'))('tinyproxy (HTTP CONNECT)', () => {
  let proxy: Peer;
  let target: number;
  beforeAll(async () => {
    const dir = tempDir('starttls-tinyproxy-');
    cleanups.push(dir.cleanup);
    proxy = await startTinyproxy(dir.path, await freePort(), 'proxyuser', 'proxy-secret');
    cleanups.push(() => proxy.stop());
    // The target behind the proxy: a TLS server that greets and echoes one line.
    const server = createTlsServer(
      { key: readFileSync(pki.serverKey), cert: readFileSync(pki.serverChain) },
      (s) => {
        s.write('hello through the tunnel\r\n');
        s.once('data', (b) => s.end(b));
      },
    );
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    target = (server.address() as { port: number }).port;
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  });

  it('CONNECT with basic proxy authentication, then TLS to the target through the tunnel', async () => {
    const tls = await runClient(proxy.ports.proxy as number, 'connect', pki, {
      host: '127.0.0.1',
      port: target,
      username: 'proxyuser',
      password: 'proxy-secret',
    });
    expect(await readLineFrom(tls)).toBe('hello through the tunnel');
    tls.write('ping\r\n');
    expect(await readLineFrom(tls)).toBe('ping');
    tls.destroy();
  });

  it('wrong credentials: UCSPI_ERR_STARTTLS_PROXY_AUTH', async () => {
    await expect(
      runClient(proxy.ports.proxy as number, 'connect', pki, {
        host: `127.0.0.1:${target}`,
        username: 'proxyuser',
        password: 'wrong',
      }),
    ).rejects.toMatchObject({ code: StartTlsErrorCodes.PROXY_AUTH });
  });

  it('no credentials: UCSPI_ERR_STARTTLS_PROXY_AUTH', async () => {
    await expect(
      runClient(proxy.ports.proxy as number, 'connect', pki, { host: `127.0.0.1:${target}` }),
    ).rejects.toMatchObject({ code: StartTlsErrorCodes.PROXY_AUTH });
  });
});

describe.skipIf(!canRunPeer('slapd'))('slapd (LDAP)', () => {
  let slapd: Peer;
  beforeAll(async () => {
    const dir = tempDir('starttls-slapd-');
    cleanups.push(dir.cleanup);
    slapd = await startSlapd(dir.path, pki, await freePort());
    cleanups.push(() => slapd.stop());
  });

  it('StartTLS extended operation, then an anonymous bind over TLS succeeds', async () => {
    const tls = await runClient(slapd.ports.ldap as number, 'ldap', pki);
    // SEQUENCE { messageID 2, BindRequest { version 3, name "", simple "" } }
    tls.write(Buffer.from('300c020102600702010304008000', 'hex'));
    const answer = await firstChunk(tls);
    // SEQUENCE { messageID 2, BindResponse { resultCode success ... } }
    expect(answer.subarray(0, 10).toString('hex')).toBe('300c02010261070a0100');
    tls.destroy();
  });
});

describe.skipIf(!canRunPeer('vsftpd'))('vsftpd (FTP)', () => {
  let ftp: Peer;
  beforeAll(async () => {
    const dir = tempDir('starttls-vsftpd-');
    cleanups.push(dir.cleanup);
    ftp = await startVsftpd(dir.path, pki, await freePort());
    cleanups.push(() => ftp.stop());
  });

  it('AUTH TLS, then FEAT and QUIT over TLS', async () => {
    const tls = await runClient(ftp.ports.ftp as number, 'ftp', pki);
    expect(await say(tls, 'FEAT', /^\d{3} /)).toMatch(/^211 /);
    expect(await say(tls, 'QUIT', /^\d{3} /)).toMatch(/^221 /);
    tls.destroy();
  });
});

describe.skipIf(!canRunPeer('prosody'))('prosody (XMPP)', () => {
  let xmpp: Peer;
  beforeAll(async () => {
    const dir = tempDir('starttls-prosody-');
    cleanups.push(dir.cleanup);
    xmpp = await startProsody(dir.path, pki, await freePort(), await freePort());
    cleanups.push(() => xmpp.stop());
  });

  for (const [protocol, port, ns] of [
    ['xmpp', 'c2s', 'jabber:client'],
    ['xmpp-server', 's2s', 'jabber:server'],
  ] as const) {
    it(`${protocol}: stream features, starttls, proceed; the stream restarts over TLS`, async () => {
      const tls = await runClient(xmpp.ports[port] as number, protocol, pki, { host: 'chat.test' });
      // RFC 6120 section 5.4.3.3: the client opens a new stream over TLS; features follow.
      tls.write(
        `<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='${ns}' to='chat.test' version='1.0'>`,
      );
      let seen = '';
      while (!seen.includes('</stream:features>')) seen += (await firstChunk(tls)).toString();
      expect(seen).not.toContain('urn:ietf:params:xml:ns:xmpp-tls');
      tls.destroy();
    });
  }

  it('xmpp: an unknown host ends the stream: GREETING, never plaintext', async () => {
    await expect(
      runClient(xmpp.ports.c2s as number, 'xmpp', pki, { host: 'nobody.test' }),
    ).rejects.toMatchObject({
      code: StartTlsErrorCodes.GREETING,
    });
  });
});

describe.skipIf(!canRunPeer('inspircd'))('inspircd (IRC)', () => {
  let irc: Peer;
  beforeAll(async () => {
    const dir = tempDir('starttls-inspircd-');
    cleanups.push(dir.cleanup);
    irc = await startInspircd(dir.path, pki, await freePort());
    cleanups.push(() => irc.stop());
  });

  it('STARTTLS (notices before 670 skipped), then registration over TLS', async () => {
    const tls = await runClient(irc.ports.irc as number, 'irc', pki);
    tls.write('NICK tester\r\nUSER tester 0 * :Test\r\n');
    let welcomed = false;
    for (let i = 0; i < 50 && !welcomed; i++) {
      const line = await readLineFrom(tls);
      welcomed = / 001 tester /.test(line);
      if (/^PING (.*)$/.test(line)) tls.write(`PONG ${line.slice(5)}\r\n`);
    }
    expect(welcomed).toBe(true);
    tls.destroy();
  });
});
