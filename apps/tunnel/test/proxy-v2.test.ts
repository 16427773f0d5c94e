// Beyond stunnel: `protocol = proxy-v2`, a PROXY v2 header with the TLVs of HAProxy's
// send-proxy-v2-ssl (the client's SNI as AUTHORITY, PP2_TYPE_SSL with the version and cipher)
// before the client's bytes, read back by a backend with @ucspi/server's parser; and the refusals.

import { readFileSync } from 'node:fs';
import type { Server } from 'node:net';
import { join } from 'node:path';
import { createTestPki, freePort, run, type TestPki, tempDir } from '@ucspi/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, stopAll, TUNNEL, writeConfig } from './_helpers.js';
import { parsingBackend, tlsClient } from './_proxy-peers.js';

let pki: TestPki;
let tmp: { path: string; cleanup: () => void };
const servers: Server[] = [];
beforeAll(() => {
  tmp = tempDir('ucspi-tunnel-proxy-v2-');
  pki = createTestPki(join(tmp.path, 'pki'));
});
afterEach(async () => {
  await stopAll();
  for (const s of servers.splice(0)) s.close();
});
afterAll(() => tmp.cleanup());

const service = (name: string, accept: number, lines: string) =>
  `[${name}]\naccept = 127.0.0.1:${accept}\ncert = ${pki.serverChain}\nkey = ${pki.serverKey}\n${lines}\n`;

describe('protocol = proxy-v2', () => {
  it('the backend reads a v2 header: addresses, SNI as AUTHORITY, the TLS facts; then the client bytes', async () => {
    const b = await parsingBackend(servers);
    const port = await freePort();
    const conf = writeConfig(
      tmp.path,
      'v2.conf',
      `foreground = yes\ndebug = info\n${service('v2', port, `connect = 127.0.0.1:${b.port}\nprotocol = proxy-v2`)}`,
    );
    const d = await startDaemon('ucspi-tunnel', conf);
    const c = await tlsClient(port, 'hello\n', { servername: 'name.example' });
    expect(c.reply).toBe('ok');
    const r = await b.next();
    expect(r.rest).toBe('hello\n');
    expect(r.header).toMatchObject({
      version: 2,
      proxied: true,
      family: 'tcp4',
      source: { ip: '127.0.0.1', port: c.localPort },
      destination: { ip: '127.0.0.1', port },
      authority: 'name.example',
    });
    // TLS, no client certificate: verify is not 0 (proxy-protocol.txt, PP2_TYPE_SSL).
    expect(r.header.ssl).toEqual({ client: 0x01, verify: 1, version: c.version, cipher: c.cipher });
    expect(c.version).toBe('TLSv1.3');
    // The header is not counted in the bytes sent to the socket.
    await d.log.waitFor(/Connection closed: 2 byte\(s\) sent to TLS, 6 byte\(s\) sent to socket/);
  });

  it('a verified client certificate: client bits 0x07 and verify 0; no SNI, no AUTHORITY', async () => {
    const b = await parsingBackend(servers);
    const port = await freePort();
    const lines = `connect = 127.0.0.1:${b.port}\nprotocol = proxy-v2\nverifyChain = yes\nCAfile = ${pki.caBundle}`;
    const conf = writeConfig(
      tmp.path,
      'v2-cert.conf',
      `foreground = yes\ndebug = info\n${service('v2c', port, lines)}`,
    );
    await startDaemon('ucspi-tunnel', conf);
    const c = await tlsClient(port, 'x', {
      cert: readFileSync(pki.clientChain),
      key: readFileSync(pki.clientKey),
    });
    const r = await b.next();
    expect(r.rest).toBe('x');
    expect(r.header.authority).toBeUndefined();
    expect(r.header.ssl).toEqual({ client: 0x07, verify: 0, version: c.version, cipher: c.cipher });
  });
});

describe('bad input', () => {
  it.each([
    ['protocol = proxy-v2', "Service [bad]: The 'proxy-v2' protocol is not supported in the client mode"],
    ['acceptProxy = yes', 'Service [bad]: acceptProxy is not supported in the client mode'],
  ])('%s in client mode: refused, exit 1; on HUP the running service stays', async (line, message) => {
    const b = await parsingBackend(servers);
    const port = await freePort();
    const good = `foreground = yes\ndebug = info\n${service('good', port, `connect = 127.0.0.1:${b.port}\nprotocol = proxy-v2`)}`;
    const conf = writeConfig(tmp.path, 'hup.conf', good);
    const t = await startDaemon('ucspi-tunnel', conf);
    writeConfig(
      tmp.path,
      'hup.conf',
      `foreground = yes\n[bad]\nclient = yes\naccept = 127.0.0.1:${port}\nconnect = 127.0.0.1:${b.port}\n${line}\n`,
    );
    const ours = await run(process.execPath, [TUNNEL, conf]);
    expect(ours.code).toBe(1);
    expect(
      ours.stderr
        .toString()
        .split('\n')
        .filter((l) => l.startsWith('[!]')),
    ).toEqual([`[!] ${message}`, '[!] Configuration failed']);
    t.proc.kill('SIGHUP');
    await t.log.waitFor(/Failed to reload the configuration file/);
    const c = await tlsClient(port, 'still');
    expect(c.reply).toBe('ok');
    expect((await b.next()).rest).toBe('still');
  });

  it('acceptProxy in inetd mode (no sections): refused, exit 1', async () => {
    const conf = writeConfig(
      tmp.path,
      'inetd.conf',
      `foreground = yes\ncert = ${pki.serverChain}\nkey = ${pki.serverKey}\nexec = /bin/cat\nacceptProxy = yes\n`,
    );
    const r = await run(process.execPath, [TUNNEL, conf]);
    expect(r.code).toBe(1);
    expect(r.stderr.toString()).toBe(
      '[!] Inetd mode: acceptProxy is not supported by ucspi-tunnel in inetd mode yet: let the server that runs it read the header\n[!] Configuration failed\n',
    );
  });

  it('acceptProxy in an SNI secondary other than its primary: refused, exit 1', async () => {
    const secondary = `[sec]\nsni = pri:name.example\ncert = ${pki.otherCert}\nkey = ${pki.otherKey}\nexec = /bin/cat\nacceptProxy = yes\n`;
    const conf = writeConfig(
      tmp.path,
      'sni.conf',
      `foreground = yes\n${service('pri', await freePort(), 'exec = /bin/cat')}${secondary}`,
    );
    const r = await run(process.execPath, [TUNNEL, conf]);
    expect(r.code).toBe(1);
    expect(r.stderr.toString()).toBe(
      "[!] Service [sec]: acceptProxy in an SNI secondary must be the primary's: the header is read before the server name is known\n[!] Configuration failed\n",
    );
  });

  it('acceptProxy = maybe names the line', async () => {
    const conf = writeConfig(
      tmp.path,
      'bad-bool.conf',
      `foreground = yes\ndebug = info\n${service('b', await freePort(), 'connect = 1\nacceptProxy = maybe')}`,
    );
    const r = await run(process.execPath, [TUNNEL, conf]);
    expect(r.code).toBe(1);
    expect(r.stderr.toString()).toContain(
      `${conf}:8: "acceptProxy = maybe": The argument needs to be either 'yes' or 'no'`,
    );
  });
});
