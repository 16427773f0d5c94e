// TERM drains (beyond stunnel, whose TERM cuts connections in flight): the port refuses at once,
// a connection in progress goes on until it ends or until drainTimeout, then it is reset (never a
// clean end that a client could take for the whole stream); a second TERM ends it at once.
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { createTestPki, freePort, run, type TestPki, tempDir, waitUntil } from '@ucspi/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, stopAll, TUNNEL, writeConfig } from './_helpers.js';

let pki: TestPki;
let tmp: { path: string; cleanup: () => void };
const sockets: Socket[] = [];
beforeAll(() => {
  tmp = tempDir('ucspi-tunnel-drain-');
  pki = createTestPki(join(tmp.path, 'pki'));
});
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await stopAll();
});
afterAll(() => tmp.cleanup());

/** An echo backend on 127.0.0.1 that keeps each connection open until its client ends. */
async function echo(): Promise<number> {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.push(s);
    s.on('error', () => undefined);
    s.pipe(s);
  });
  server.unref();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as { port: number }).port;
}

/** A tunnel in server mode to an echo backend, with `globals` before the section. */
async function tunnel(globals: string) {
  const port = await freePort();
  const conf = writeConfig(
    tmp.path,
    `drain-${port}.conf`,
    `foreground = yes\ndebug = info\n${globals}\n[d]\naccept = 127.0.0.1:${port}\nconnect = 127.0.0.1:${await echo()}\ncert = ${pki.serverChain}\nkey = ${pki.serverKey}\n`,
  );
  return { port, t: await startDaemon('ucspi-tunnel', conf) };
}

/** A TLS client held open: `ask` writes a line and waits for its echo; `outcome` is how it ended. */
async function client(port: number) {
  const c: TLSSocket = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false });
  sockets.push(c);
  let got = '';
  c.on('data', (b: Buffer) => {
    got += b.toString();
  });
  const outcome = new Promise<string>((resolve) => {
    c.on('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code}`));
    c.on('end', () => resolve('end'));
  });
  await once(c, 'secureConnect');
  return {
    outcome,
    async ask(line: string): Promise<void> {
      const want = got.length + line.length;
      c.write(line);
      await waitUntil(() => got.length >= want);
      expect(got.slice(-line.length)).toBe(line);
    },
    end: () => c.end(),
  };
}

/** Whether a new connection to `port` is refused. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1');
    c.on('connect', () => {
      c.destroy();
      resolve(false);
    });
    c.on('error', () => resolve(true));
  });
}

describe('TERM drains connections in progress', () => {
  it('the port refuses at once; a connection in progress finishes, then the tunnel exits 0', async () => {
    const { port, t } = await tunnel('drainTimeout = 20');
    const c = await client(port);
    await c.ask('before\n');
    t.proc.kill('SIGTERM');
    await t.log.waitFor(/LOG5\[ui\]: Service \[d\]: waiting for 1 connection\(s\) in progress/);
    // Within 2 s (the listener closes after the loop's next poll phase).
    const since = Date.now();
    while (!(await refused(port))) expect(Date.now() - since).toBeLessThan(2000);
    // Still served after TERM.
    await c.ask('during the drain\n');
    c.end();
    expect(await t.exited).toBe(0);
    expect(await c.outcome).toBe('end');
    expect(t.log.text()).toMatch(/LOG5\[ui\]: Terminated/);
    expect(t.log.text()).toMatch(/Connection closed: 24 byte\(s\) sent to TLS, 24 byte\(s\) sent to socket/);
    expect(t.log.text()).not.toMatch(/resetting/);
  });

  it('at drainTimeout the connection left is reset, not ended cleanly', async () => {
    const { port, t } = await tunnel('drainTimeout = 1');
    const c = await client(port);
    await c.ask('x\n');
    t.proc.kill('SIGTERM');
    expect(await t.exited).toBe(0);
    expect(await c.outcome).toBe('error ECONNRESET');
    expect(t.log.text()).toMatch(
      /LOG4\[ui\]: Service \[d\]: drainTimeout reached, resetting 1 connection\(s\)/,
    );
  });

  it('a second TERM ends the rest at once', async () => {
    const { port, t } = await tunnel('drainTimeout = 60');
    const c = await client(port);
    await c.ask('x\n');
    t.proc.kill('SIGTERM');
    await t.log.waitFor(/waiting for 1 connection\(s\) in progress/);
    t.proc.kill('SIGTERM');
    expect(await t.exited).toBe(0);
    expect(await c.outcome).toBe('error ECONNRESET');
    expect(t.log.text()).toMatch(/LOG4\[ui\]: Service \[d\]: signalled again, resetting 1 connection\(s\)/);
  });

  it('drainTimeout = 0: TERM resets at once; nothing open: exits at once', async () => {
    const { port, t } = await tunnel('drainTimeout = 0');
    const c = await client(port);
    await c.ask('x\n');
    t.proc.kill('SIGTERM');
    expect(await t.exited).toBe(0);
    expect(await c.outcome).toBe('error ECONNRESET');
  });

  it('a bad value is a configuration error naming the line (exit 1)', async () => {
    const conf = writeConfig(
      tmp.path,
      'bad-drain.conf',
      'foreground = yes\ndrainTimeout = soon\n[d]\naccept = 0\nconnect = 1\n',
    );
    const r = await run(process.execPath, [TUNNEL, conf]);
    expect(r.code).toBe(1);
    expect(r.stderr.toString()).toContain(`${conf}:2: "drainTimeout = soon": Illegal drain timeout`);
  });
});
