// Plain TCP and UNIX sockets, against Debian's ucspi-tcp tcpserver, with Debian's tcpclient as the
// oracle for the environment, the messages and the exit codes.
import { once } from 'node:events';
import { createServer, type Server as NetServer } from 'node:net';
import { join } from 'node:path';
import { findTool, run, tempDir, toolAvailable, waitForLine } from '@ucspi/testkit';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { cleanEnv, envLines, startServer, stopServers, tcpclient } from './_helpers.js';

const tmp = tempDir();
afterEach(stopServers);
afterAll(() => tmp.cleanup());

const hasUcspi = toolAvailable('tcpserver') && toolAvailable('tcpclient');

/** Debian's tcpserver on 127.0.0.1 running `sh -c script`; resolves with its port. */
async function tcpserver(script: string): Promise<number> {
  const s = await startServer(
    findTool('tcpserver')!,
    ['-1', '-H', '-R', '-l', 'srv', '127.0.0.1', '0', 'sh', '-c', script],
    /^\d+$/,
  );
  return Number(s.ready[0]);
}

const TCP_VARS = /^(PROTO|TCP[A-Z0-9]*)$/;

describe.runIf(hasUcspi)('against ucspi-tcp', () => {
  it("prog mode: fd 6 reads and fd 7 writes the connection, the environment is the original tcpclient's", async () => {
    const port = await tcpserver('echo "hello $TCPREMOTEPORT"; read line; echo "got $line"');
    const prog = [
      'sh',
      '-c',
      'env; read greeting <&6; echo "$greeting" >&2; echo ping >&7; read answer <&6; echo "$answer" >&2',
    ];
    // -H -R -l: djbdns's own resolver in the original waits a minute for the DNS server that
    // DNSCACHEIP=127.0.0.1 names and that does not run (ours gets the ICMP refusal at once).
    for (const flags of [
      ['-H', '-R', '-l', 'me'],
      ['-H', '-R', '-l', '0'],
    ]) {
      const ours = await tcpclient([...flags, '127.0.0.1', String(port), ...prog], { env: cleanEnv() });
      const theirs = await run(findTool('tcpclient')!, [...flags, '127.0.0.1', String(port), ...prog], {
        env: cleanEnv(),
      });
      expect(ours.code, ours.stderr.toString()).toBe(0);
      expect(theirs.code).toBe(0);
      // The same variables, equal but for the local port (a new connection each).
      const norm = (r: typeof ours) =>
        envLines(r.stdout.toString(), TCP_VARS).map((l) => l.replace(/^TCPLOCALPORT=\d+$/, 'TCPLOCALPORT=N'));
      expect(norm(ours)).toEqual(norm(theirs));
      expect(norm(ours)).toContain('PROTO=TCP');
      // The server's greeting reached the program (nothing of it was read by tcpclient itself).
      const ourPort = /^TCPLOCALPORT=(\d+)$/m.exec(ours.stdout.toString())![1];
      expect(ours.stderr.toString()).toBe(`hello ${ourPort}\ngot ping\n`);
    }
  });

  it('-h -r (the defaults): names and ident answers that cannot be found leave their variables unset', async () => {
    const port = await tcpserver('exit 0');
    const r = await tcpclient(['127.0.0.1', String(port), 'env'], { env: cleanEnv() });
    expect(r.code).toBe(0);
    const vars = envLines(r.stdout.toString(), TCP_VARS).map((l) => l.split('=')[0]);
    expect(vars).toEqual(['PROTO', 'TCPLOCALIP', 'TCPLOCALPORT', 'TCPREMOTEIP', 'TCPREMOTEPORT']);
  });

  it("prog mode: tcpclient exits with the program's status", async () => {
    const port = await tcpserver('exit 0');
    const r = await tcpclient(['-H', '-R', '127.0.0.1', String(port), 'sh', '-c', 'exit 7']);
    expect(r.code).toBe(7);
    const args = ['-H', '-R', '-l', '0', '127.0.0.1', String(port), '/nonexistent/prog'];
    const missing = await tcpclient(args);
    const oracle = await run(findTool('tcpclient')!, args);
    expect(missing.code).toBe(111);
    expect(oracle.code).toBe(111);
    expect(missing.stderr.toString()).toBe(oracle.stderr.toString());
  });

  it("prog mode: a TERM sent to tcpclient is the program's, and tcpclient ends with it", async () => {
    const port = await tcpserver('sleep 30');
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, [
      (await import('./_helpers.js')).tcpclientBin,
      '-H',
      '-R',
      '-l',
      '0',
      '127.0.0.1',
      String(port),
      'sh',
      '-c',
      'echo "pid $$" >&2; exec sleep 30',
    ]);
    const exited = once(child, 'exit');
    const [, pid] = await waitForLine(child.stderr, /^pid (\d+)$/);
    child.kill('SIGTERM');
    const [code] = (await exited) as [number];
    expect(code).toBe(128 + 15);
    expect(() => process.kill(Number(pid), 0)).toThrow();
  });

  it('client mode copies stdin to the server and the server to stdout; stdin EOF half-closes', async () => {
    // cat ends when it reads EOF: the half-close reached the server, and its answer still came back.
    const port = await tcpserver('echo hello; cat; echo bye');
    const r = await tcpclient(['127.0.0.1', String(port)], { input: 'one\ntwo\n' });
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe('hello\none\ntwo\nbye\n');
    expect(r.stderr.length).toBe(0);
  });

  it("client mode ends with the server's EOF even while stdin stays open", async () => {
    const port = await tcpserver('echo done');
    const child = (await import('node:child_process')).spawn(process.execPath, [
      (await import('./_helpers.js')).tcpclientBin,
      '127.0.0.1',
      String(port),
    ]);
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    const [code] = (await once(child, 'exit')) as [number];
    child.stdin.end();
    expect(code).toBe(0);
    expect(out).toBe('done\n');
  });

  it("a refused connection: the original's line and exit 111; -q says nothing", async () => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const port = (srv.address() as { port: number }).port;
    await new Promise((r) => srv.close(r));
    const ours = await tcpclient(['127.0.0.1', String(port), 'true']);
    const theirs = await run(findTool('tcpclient')!, ['127.0.0.1', String(port), 'true']);
    expect(ours.code).toBe(111);
    expect(theirs.code).toBe(111);
    expect(ours.stderr.toString()).toBe(theirs.stderr.toString());
    expect(ours.stderr.toString()).toBe(
      `tcpclient: unable to connect to 127.0.0.1 port ${port}: connection refused\n`,
    );
    const quiet = await tcpclient(['-q', '127.0.0.1', String(port)]);
    expect(quiet.code).toBe(111);
    expect(quiet.stderr.length).toBe(0);
  });

  it("an unknown service name: the original's message and exit 111", async () => {
    const ours = await tcpclient(['127.0.0.1', 'no-such-service', 'true']);
    const theirs = await run(findTool('tcpclient')!, ['127.0.0.1', 'no-such-service', 'true']);
    expect(ours.code).toBe(111);
    expect(ours.stderr.toString()).toBe(theirs.stderr.toString());
  });

  it('-i and -p bind the local side; a local port in use fails with exit 111', async () => {
    const port = await tcpserver('echo "$TCPREMOTEPORT"');
    const blocker = createServer();
    blocker.listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    const used = (blocker.address() as { port: number }).port;
    try {
      const free = used + 1 > 65535 ? used - 1 : used + 1;
      const r = await tcpclient(['-i', '127.0.0.1', '-p', String(free), '127.0.0.1', String(port)]);
      // The port may have been taken meanwhile by someone else: then the next check covers it.
      if (r.code === 0) expect(r.stdout.toString()).toBe(`${free}\n`);
      const bad = await tcpclient(['-i', '127.0.0.1', '-p', String(used), '127.0.0.1', String(port)]);
      expect(bad.code).toBe(111);
      expect(bad.stderr.toString()).toMatch(/^tcpclient: fatal: unable to bind socket: /);
    } finally {
      blocker.close();
    }
  });
});

describe('UNIX sockets', () => {
  let server: NetServer | undefined;
  afterEach(() => server?.close());

  it('connects to a socket path: client mode, and prog mode with PROTO=UNIX and no TCP variables', async () => {
    const path = join(tmp.path, 'sock');
    server = createServer({ allowHalfOpen: true }, (c) => {
      c.write('hi\n');
      c.pipe(c);
    });
    server.listen(path);
    await once(server, 'listening');
    const r = await tcpclient([path], { input: 'echo me\n' });
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe('hi\necho me\n');
    const p = await tcpclient([path, 'sh', '-c', 'env; read l <&6; echo "$l" >&2'], { env: cleanEnv() });
    expect(p.code).toBe(0);
    expect(envLines(p.stdout.toString(), TCP_VARS)).toEqual(['PROTO=UNIX']);
    expect(p.stderr.toString()).toBe('hi\n');
  });

  it('a socket path nobody listens on: the reason and exit 111', async () => {
    const r = await tcpclient([join(tmp.path, 'nothing')]);
    expect(r.code).toBe(111);
    expect(r.stderr.toString()).toBe(
      `tcpclient: fatal: unable to connect to socket ${join(tmp.path, 'nothing')}: file does not exist\n`,
    );
  });
});

describe('IPv6 and timeouts', () => {
  let server: NetServer | undefined;
  afterEach(() => server?.close());

  it('an IPv6 connection: PROTO=TCP6 with the TCP and TCP6 variables', async () => {
    server = createServer((c) => c.end('hi\n'));
    try {
      server.listen(0, '::1');
      await once(server, 'listening');
    } catch {
      return; // no IPv6 loopback on this machine
    }
    const port = (server.address() as { port: number }).port;
    const r = await tcpclient(
      ['-H', '-R', '-l', '0', '::1', String(port), 'sh', '-c', 'env; read l <&6; echo "$l" >&2'],
      {
        env: cleanEnv(),
      },
    );
    expect(r.code, r.stderr.toString()).toBe(0);
    const vars = envLines(r.stdout.toString(), TCP_VARS);
    expect(vars).toContain('PROTO=TCP6');
    expect(vars).toContain('TCPREMOTEIP=::1');
    expect(vars).toContain('TCP6REMOTEIP=::1');
    expect(vars).toContain(`TCPREMOTEPORT=${port}`);
    expect(r.stderr.toString()).toBe('hi\n');
  });

  it('-a: a connection on which nothing moves ends with exit 111', async () => {
    server = createServer(() => undefined);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    const child = (await import('node:child_process')).spawn(process.execPath, [
      (await import('./_helpers.js')).tcpclientBin,
      '-a',
      '1',
      '127.0.0.1',
      String(port),
    ]);
    let err = '';
    child.stderr.on('data', (b: Buffer) => {
      err += b.toString();
    });
    const [code] = (await once(child, 'exit')) as [number];
    child.stdin.end();
    expect(code).toBe(111);
    expect(err).toBe('tcpclient: fatal: connection failed: timed out\n');
  });

  it("a host name that cannot be resolved: the original's message and exit 111", async () => {
    // DNSCACHEIP=127.0.0.1 (vitest.config.ts): nothing answers there, or a test's dnsmasq that
    // knows no such name.
    const r = await tcpclient(['no-such-host.invalid', '25'], { env: cleanEnv() });
    expect(r.code).toBe(111);
    expect(r.stderr.toString()).toMatch(
      /^tcpclient: fatal: (no IP address for no-such-host\.invalid|temporarily unable to figure out IP address for no-such-host\.invalid: .+)\n$/,
    );
  });
});
