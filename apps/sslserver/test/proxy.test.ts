// PROXYPROTO=1 behind Debian's HAProxy (TCP mode, send-proxy and send-proxy-v2): the program and
// the log see the real client (connecting from 127.0.0.2), not the balancer; a connection without
// a header is dropped with one line and the server goes on serving; a bad PROXYPROTO exits 100.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { freePort, run, startHaproxy, tempDir, toolAvailable } from '@ucspi/testkit';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type Running, startServer, stopAll } from './_helpers.js';

const binDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'bin');
const tmp = tempDir();
afterAll(() => tmp.cleanup());
const balancers: ChildProcess[] = [];
afterEach(async () => {
  await stopAll();
  for (const b of balancers.splice(0)) {
    b.kill('SIGKILL');
    if (b.exitCode === null && b.signalCode === null) await once(b, 'exit');
  }
});

function startOurs(
  bin: 'sslserver' | 'tcpserver',
  args: string[],
  extra: NodeJS.ProcessEnv = {},
): Promise<Running> {
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: tmp.path, PROXYPROTO: '1', ...extra };
  delete env.CERTFILE;
  delete env.KEYFILE;
  return startServer(process.execPath, [join(binDir, `${bin}.js`), ...args], env);
}

/** HAProxy in TCP mode: one front port per `send-proxy` flavour, each to `backendPort`. */
async function haproxy(backendPort: number): Promise<{ v1: number; v2: number }> {
  const v1 = await freePort();
  const v2 = await freePort();
  const sections = [
    `listen one\n  bind 127.0.0.1:${v1}\n  server s 127.0.0.1:${backendPort} send-proxy`,
    `listen two\n  bind 127.0.0.1:${v2}\n  server s 127.0.0.1:${backendPort} send-proxy-v2`,
  ];
  balancers.push(await startHaproxy(tmp.path, sections, [v1, v2]));
  return { v1, v2 };
}

/** A client from 127.0.0.2: sends `input`, half-closes, collects the answer (TLS or not). */
function client(port: number, tls: boolean, input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const opts = { port, host: '127.0.0.1', localAddress: '127.0.0.2', allowHalfOpen: true };
    const c = tls ? tlsConnect({ ...opts, rejectUnauthorized: false } as ConnectionOptions) : connect(opts);
    let out = '';
    c.on('data', (b: Buffer) => {
      out += b.toString();
    });
    c.on('error', reject);
    c.on('end', () => {
      c.end();
      resolve(out);
    });
    c.once(tls ? 'secureConnect' : 'connect', () => c.end(input));
  });
}

const report =
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansions, not a template
  'echo "$PROTO ${SSLREMOTEIP:-$TCPREMOTEIP} ${SSLLOCALPORT:-$TCPLOCALPORT} $PROXYVERSION $PROXYPEERIP"; cat';

describe.runIf(toolAvailable('haproxy'))('PROXYPROTO=1 behind HAProxy', () => {
  it('sslserver: the program and the log see the client, for send-proxy (v1) and send-proxy-v2', async () => {
    const s = await startOurs('sslserver', [
      '-1',
      '-v',
      '-H',
      '-R',
      '-l',
      'srv',
      '127.0.0.1',
      '0',
      'sh',
      '-c',
      report,
    ]);
    const front = await haproxy(s.port);
    expect(await client(front.v1, true, 'one\n')).toBe(`SSL 127.0.0.2 ${front.v1} 1 127.0.0.1\none\n`);
    expect(await client(front.v2, true, 'two\n')).toBe(`SSL 127.0.0.2 ${front.v2} 2 127.0.0.1\ntwo\n`);
    await s.waitLogCount(/^sslserver: ended by \d+ status 0$/gm, 2);
    expect(s.stderr()).toMatch(/^sslserver: pid \d+ from 127\.0\.0\.2$/m);
    expect(s.stderr()).toMatch(
      new RegExp(`^sslserver: ok \\d+ srv:127\\.0\\.0\\.1:${front.v1} :127\\.0\\.0\\.2::\\d+$`, 'm'),
    );
  });

  it('tcpserver: the same, with the client talking first (its bytes may share a segment with the header)', async () => {
    const s = await startOurs('tcpserver', [
      '-1',
      '-v',
      '-H',
      '-R',
      '-l',
      'srv',
      '127.0.0.1',
      '0',
      'sh',
      '-c',
      report,
    ]);
    const front = await haproxy(s.port);
    expect(await client(front.v1, false, 'plain one\n')).toBe(
      `TCP 127.0.0.2 ${front.v1} 1 127.0.0.1\nplain one\n`,
    );
    expect(await client(front.v2, false, 'plain two\n')).toBe(
      `TCP 127.0.0.2 ${front.v2} 2 127.0.0.1\nplain two\n`,
    );
  });

  it('a connection without a header is dropped with one line; the next one through the balancer is served', async () => {
    const s = await startOurs('sslserver', [
      '-1',
      '-H',
      '-R',
      '-T',
      '5',
      '127.0.0.1',
      '0',
      'sh',
      '-c',
      report,
    ]);
    const front = await haproxy(s.port);
    // Closed before any TLS: the client sees an end or a reset, and nothing of the program.
    expect(await client(s.port, true, 'direct\n').catch(() => '')).toBe('');
    await s.waitLog(
      /^sslserver: warning: dropping connection from 127\.0\.0\.2:\d+, bad PROXY header: no PROXY header$/m,
    );
    expect(await client(front.v2, true, 'after\n')).toBe(`SSL 127.0.0.2 ${front.v2} 2 127.0.0.1\nafter\n`);
  });
});

describe('PROXYPROTO settings', () => {
  it('a value other than 0 or 1 is a fatal error (exit 100), naming the value', async () => {
    const r = await run(process.execPath, [join(binDir, 'tcpserver.js'), '127.0.0.1', '0', 'true'], {
      env: { ...process.env, PROXYPROTO: 'yes' },
    });
    expect(r.code).toBe(100);
    expect(r.stderr.toString()).toBe('tcpserver: fatal: PROXYPROTO must be 0 or 1, not yes\n');
  });
});
