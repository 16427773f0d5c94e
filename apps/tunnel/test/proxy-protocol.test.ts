// Server mode with `protocol = proxy`: the backend (or the `exec` program) reads a PROXY protocol
// v1 header before the client's bytes. Each case runs through Debian's stunnel4 too, and both must
// send the same header for the same connection.
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import {
  createTestPki,
  freePort,
  run,
  type TestPki,
  tempDir,
  toolAvailable,
  waitUntil,
} from '@ucspi/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, stopAll, TUNNEL, writeConfig } from './_helpers.js';

const hasStunnel = toolAvailable('stunnel4');
const daemons = hasStunnel ? (['stunnel4', 'ucspi-tunnel'] as const) : (['ucspi-tunnel'] as const);

let pki: TestPki;
let tmp: { path: string; cleanup: () => void };
const servers: Server[] = [];
beforeAll(() => {
  tmp = tempDir('ucspi-tunnel-proxy-');
  pki = createTestPki(join(tmp.path, 'pki'));
});
afterEach(async () => {
  await stopAll();
  for (const s of servers.splice(0)) s.close();
});
afterAll(() => tmp.cleanup());

/** A backend that keeps everything each connection sent and answers `ok` after the client's end. */
async function recordingBackend(): Promise<{ port: number; next(): Promise<string> }> {
  const received: Array<Promise<string>> = [];
  const server = createServer({ allowHalfOpen: true }, (socket: Socket) => {
    received.push(
      new Promise((resolve) => {
        let data = '';
        socket.on('data', (b: Buffer) => {
          data += b.toString('latin1');
        });
        socket.on('error', () => resolve(data));
        socket.on('end', () => {
          socket.end('ok');
          resolve(data);
        });
      }),
    );
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  let taken = 0;
  return {
    port: (server.address() as { port: number }).port,
    // The connection arrives after the TLS handshake: wait for it, bounded.
    next: async () => {
      await waitUntil(() => received.length > taken, 10_000);
      return (await received[taken++]) as string;
    },
  };
}

/** A TLS client from `host`: sends `text`, half-closes, reads to the end; its own source port too. */
async function tlsClient(
  host: string,
  port: number,
  text: string,
): Promise<{ reply: string; localPort: number }> {
  const c = tlsConnect({ host, port, rejectUnauthorized: false, allowHalfOpen: true } as ConnectionOptions);
  await once(c, 'secureConnect');
  const localPort = c.localPort as number;
  let reply = '';
  c.on('data', (b: Buffer) => {
    reply += b.toString('latin1');
  });
  c.end(text);
  await once(c, 'end');
  c.destroy();
  return { reply, localPort };
}

const section = (accept: string, target: string) =>
  `foreground = yes\ndebug = info\n[px]\naccept = ${accept}\n${target}\ncert = ${pki.serverChain}\n` +
  `key = ${pki.serverKey}\nprotocol = proxy\n`;

describe.each(daemons)('%s', (daemon) => {
  it.each([
    ['IPv4', '127.0.0.1', (p: number) => `127.0.0.1:${p}`, 'TCP4'],
    ['IPv6', '::1', (p: number) => `::1:${p}`, 'TCP6'],
  ])('%s client: the header, then the client bytes', async (_name, ip, accept, family) => {
    const b = await recordingBackend();
    const port = await freePort();
    const conf = writeConfig(
      tmp.path,
      `${daemon}-${family}.conf`,
      section(accept(port), `connect = 127.0.0.1:${b.port}`),
    );
    const d = await startDaemon(daemon, conf);
    const { reply, localPort } = await tlsClient(ip, port, 'hello\n');
    expect(reply).toBe('ok');
    expect(await b.next()).toBe(`PROXY ${family} ${ip} ${ip} ${localPort} ${port}\r\nhello\n`);
    // The header is not counted in the bytes sent to the socket.
    await d.log.waitFor(/Connection closed: 2 byte\(s\) sent to TLS, 6 byte\(s\) sent to socket/);
  });

  it('exec: the program reads the header first', async () => {
    const port = await freePort();
    const conf = writeConfig(
      tmp.path,
      `${daemon}-exec.conf`,
      section(`127.0.0.1:${port}`, 'exec = /bin/cat'),
    );
    const d = await startDaemon(daemon, conf);
    const { reply, localPort } = await tlsClient('127.0.0.1', port, 'hello\n');
    const header = `PROXY TCP4 127.0.0.1 127.0.0.1 ${localPort} ${port}\r\n`;
    expect(reply).toBe(`${header}hello\n`);
    await d.log.waitFor(
      new RegExp(
        `Connection closed: ${header.length + 6} byte\\(s\\) sent to TLS, 6 byte\\(s\\) sent to socket`,
      ),
    );
  });
});

describe('ucspi-tunnel only', () => {
  it('accept without a host (dual stack): an IPv4 client is TCP4 with plain IPv4 addresses', async () => {
    const b = await recordingBackend();
    const port = await freePort();
    const conf = writeConfig(tmp.path, 'dual.conf', section(String(port), `connect = 127.0.0.1:${b.port}`));
    await startDaemon('ucspi-tunnel', conf);
    const { localPort } = await tlsClient('127.0.0.1', port, 'x');
    expect(await b.next()).toBe(`PROXY TCP4 127.0.0.1 127.0.0.1 ${localPort} ${port}\r\nx`);
  });

  it('proxy in client mode: refused as stunnel4 refuses it; on HUP the running service stays', async () => {
    const b = await recordingBackend();
    const port = await freePort();
    const conf = writeConfig(
      tmp.path,
      'hup-proxy.conf',
      section(`127.0.0.1:${port}`, `connect = 127.0.0.1:${b.port}`),
    );
    const t = await startDaemon('ucspi-tunnel', conf);
    const bad = `foreground = yes\n[px]\nclient = yes\naccept = 127.0.0.1:${port}\nconnect = 127.0.0.1:${b.port}\nprotocol = proxy\n`;
    writeConfig(tmp.path, 'hup-proxy.conf', bad);
    const errors = (s: string) => s.split('\n').filter((l) => l.startsWith('[!]'));
    const ours = await run(process.execPath, [TUNNEL, conf]);
    expect(ours.code).toBe(1);
    expect(errors(ours.stderr.toString())).toEqual([
      "[!] Service [px]: The 'proxy' protocol is not supported in the client mode",
      '[!] Configuration failed',
    ]);
    if (hasStunnel) {
      const theirs = await run('stunnel4', [conf], { timeoutMs: 10_000 });
      expect(theirs.code).toBe(1);
      expect(errors(theirs.stderr.toString())).toEqual(errors(ours.stderr.toString()));
    }
    t.proc.kill('SIGHUP');
    await t.log.waitFor(/LOG3\[ui\]: Service \[px\]: The 'proxy' protocol .*\n.*Failed to reload/);
    const { localPort } = await tlsClient('127.0.0.1', port, 'still');
    expect(await b.next()).toBe(`PROXY TCP4 127.0.0.1 127.0.0.1 ${localPort} ${port}\r\nstill`);
  });
});
