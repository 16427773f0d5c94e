// Beyond stunnel: `acceptProxy = yes`, a service behind Debian's HAProxy (send-proxy and
// send-proxy-v2). The client HAProxy names (connecting from 127.0.0.2) is the client everywhere:
// the log, `exec`'s REMOTE_HOST, the rules, the outgoing PROXY header; a connection without a
// header is dropped and logged, the next one served; a reload can switch it on a kept listener.
import type { ChildProcess } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { binPath, createTestPki, freePort, run, type TestPki, tempDir, toolAvailable } from '@ucspi/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { reap, startDaemon, stopAll, writeConfig } from './_helpers.js';
import { FROM_2, parsingBackend, haproxy as startHaproxy, tlsClient } from './_proxy-peers.js';

let pki: TestPki;
let tmp: { path: string; cleanup: () => void };
const servers: Server[] = [];
const balancers: ChildProcess[] = [];
beforeAll(() => {
  tmp = tempDir('ucspi-tunnel-accept-proxy-');
  pki = createTestPki(join(tmp.path, 'pki'));
});
afterEach(async () => {
  await stopAll();
  for (const s of servers.splice(0)) s.close();
  for (const b of balancers.splice(0)) {
    b.kill('SIGTERM');
    await reap(b);
  }
});
afterAll(() => tmp.cleanup());

const TCPRULES = binPath('packages/rules', 'tcprules');

const service = (name: string, accept: number, lines: string) =>
  `[${name}]\naccept = 127.0.0.1:${accept}\ncert = ${pki.serverChain}\nkey = ${pki.serverKey}\n${lines}\n`;

/** HAProxy in front of `port`: one front port for send-proxy, one for send-proxy-v2. */
const haproxy = (port: number) => startHaproxy(tmp.path, port, balancers);

describe.runIf(toolAvailable('haproxy'))('acceptProxy = yes behind HAProxy', () => {
  it('exec and the log see the client HAProxy names (v1 and v2); a direct connection is dropped', async () => {
    const script = join(tmp.path, 'who.sh');
    writeFileSync(script, '#!/bin/sh\necho "$REMOTE_HOST $REMOTE_PORT $TCPREMOTEIP"\ncat\n');
    chmodSync(script, 0o755);
    const port = await freePort();
    const conf = writeConfig(
      tmp.path,
      'accept-exec.conf',
      `foreground = yes\ndebug = info\n${service('px', port, `exec = ${script}\nacceptProxy = yes`)}`,
    );
    const d = await startDaemon('ucspi-tunnel', conf);
    const front = await haproxy(port);
    for (const fport of [front.v1, front.v2]) {
      const c = await tlsClient(fport, 'hi\n', FROM_2);
      expect(c.reply).toBe(`127.0.0.2 ${c.localPort} 127.0.0.2\nhi\n`);
      await d.log.waitFor(
        new RegExp(`Service \\[px\\] accepted connection from 127\\.0\\.0\\.2:${c.localPort}\\b`),
      );
    }
    // Straight to the tunnel, no header: a TLS ClientHello is not one; dropped and logged.
    const direct = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    // (events.once would reject on the expected 'error': wait for 'close' alone.)
    direct.on('error', () => undefined);
    await new Promise((resolve) => direct.once('close', resolve));
    await d.log.waitFor(/LOG4\[\d+\]: Service \[px\]: bad PROXY header from 127\.0\.0\.1:\d+: /);
    // The next client through the balancer is served.
    const after = await tlsClient(front.v2, 'after\n', FROM_2);
    expect(after.reply).toBe(`127.0.0.2 ${after.localPort} 127.0.0.2\nafter\n`);
  });

  it('the outgoing PROXY header (proxy-v2 and proxy) names the client HAProxy named', async () => {
    const b = await parsingBackend(servers);
    const [p2, p1] = [await freePort(), await freePort()];
    const conf = writeConfig(
      tmp.path,
      'accept-out.conf',
      `foreground = yes\ndebug = info\n${service('out2', p2, `connect = 127.0.0.1:${b.port}\nprotocol = proxy-v2\nacceptProxy = yes`)}` +
        service('out1', p1, `connect = 127.0.0.1:${b.port}\nprotocol = proxy\nacceptProxy = yes`),
    );
    await startDaemon('ucspi-tunnel', conf);
    for (const [port, version] of [
      [p2, 2],
      [p1, 1],
    ] as const) {
      const front = await haproxy(port);
      const c = await tlsClient(front.v1, 'x', FROM_2);
      const r = await b.next();
      expect(r.rest).toBe('x');
      expect(r.header).toMatchObject({
        version,
        source: { ip: '127.0.0.2', port: c.localPort },
        destination: { ip: '127.0.0.1', port: front.v1 },
      });
    }
  });
  it('rules decide on the client HAProxy names: 127.0.0.2 denied, 127.0.0.1 served', async () => {
    const cdb = join(tmp.path, 'deny-two.cdb');
    const made = await run(process.execPath, [TCPRULES, cdb, `${cdb}.tmp`], {
      input: '127.0.0.2:deny\n:allow\n',
    });
    expect(made.code, made.stderr.toString()).toBe(0);
    const port = await freePort();
    const lines = `exec = /bin/cat\nacceptProxy = yes\nrules = ${cdb}`;
    const conf = writeConfig(
      tmp.path,
      'accept-rules.conf',
      `foreground = yes\ndebug = info\n${service('r', port, lines)}`,
    );
    const d = await startDaemon('ucspi-tunnel', conf);
    const front = await haproxy(port);
    const denied = tlsConnect({ host: '127.0.0.1', port: front.v2, rejectUnauthorized: false, ...FROM_2 });
    denied.on('error', () => undefined);
    await new Promise((resolve) => denied.once('close', resolve));
    await d.log.waitFor(/Service \[r\] REFUSED by rules from 127\.0\.0\.2:\d+/);
    const served = await tlsClient(front.v2, 'one\n');
    expect(served.reply).toBe('one\n');
  });

  it('HUP switching acceptProxy on a kept listener applies to the next connection', async () => {
    const port = await freePort();
    const write = (on: string) =>
      writeConfig(
        tmp.path,
        'accept-hup.conf',
        `foreground = yes\ndebug = info\n${service('h', port, `exec = /bin/cat\nacceptProxy = ${on}`)}`,
      );
    const conf = write('no');
    const d = await startDaemon('ucspi-tunnel', conf);
    expect((await tlsClient(port, 'direct\n')).reply).toBe('direct\n');
    write('yes');
    d.proc.kill('SIGHUP');
    await d.log.waitFor(/Configuration successful[\s\S]*Configuration successful/);
    const direct = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    direct.on('error', () => undefined);
    await new Promise((resolve) => direct.once('close', resolve));
    await d.log.waitFor(/Service \[h\]: bad PROXY header from 127\.0\.0\.1:\d+/);
    const front = await haproxy(port);
    expect((await tlsClient(front.v1, 'behind\n')).reply).toBe('behind\n');
  });
});
