// logId, USR2, socket = and the -options/-sockets lists against real peers (openssl s_client,
// node:tls clients, `ss` for the socket options), with Debian's stunnel4 run on the same
// configuration as the oracle.
import { freePort, run, toolAvailable } from '@ucspi/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stopAll, TUNNEL, writeConfig } from './_helpers.js';
import { closeHeld, heldClient, holdingBackend } from './_more-options.js';
import {
  badConfig,
  fx,
  hasOpenssl,
  hasStunnel,
  sClient,
  section,
  setUpFixture,
  tearDownFixture,
  tunnel,
} from './_tls-options.js';

beforeAll(setUpFixture, 30_000);
afterEach(async () => {
  closeHeld();
  await stopAll();
});
afterAll(tearDownFixture);

const KINDS = ['ucspi-tunnel', 'stunnel4'] as const;

describe('logId', () => {
  for (const kind of KINDS) {
    it.runIf(hasOpenssl && (kind !== 'stunnel4' || hasStunnel))(
      `${kind}: sequential, unique, thread and process identifiers`,
      async () => {
        const [seq, uni, thr, pro] = [await freePort(), await freePort(), await freePort(), await freePort()];
        const { daemon } = await tunnel(
          section('seq', seq) +
            section('uni', uni, 'logId = unique\n') +
            section('thr', thr, 'logId = thread\n') +
            section('pro', pro, 'logId = PROCESS\n'),
          kind,
          pro,
        );
        for (const port of [seq, uni, uni, thr, pro, seq])
          expect(await sClient(port, ['-quiet'])).toMatch(/^ready$/m);
        await daemon.log.waitForCount(/Connection closed/, 6);
        const log = daemon.log.text();
        const ids = (name: string) =>
          [...log.matchAll(new RegExp(`LOG5\\[([^\\]]+)\\]: Service \\[${name}\\] accepted`, 'g'))].map(
            (m) => m[1],
          );
        // The sequential number counts every connection, whatever the other services' logId.
        expect(ids('seq')).toEqual(['0', '5']);
        const unique = ids('uni');
        expect(unique).toHaveLength(2);
        for (const u of unique) expect(u).toMatch(/^[A-Za-z0-9]{22}$/);
        expect(unique[0]).not.toBe(unique[1]);
        // Every line of the connection carries it.
        expect(log).toContain(`LOG5[${unique[0]}]: Connection closed`);
        const pid = String(daemon.proc.pid);
        expect(ids('pro')).toEqual([pid]);
        // stunnel's thread id; ucspi-tunnel has no threads and shows its process id.
        if (kind === 'stunnel4') expect(ids('thr')[0]).toMatch(/^\d+$/);
        else expect(ids('thr')).toEqual([pid]);
      },
      60_000,
    );
  }
  it('a bad value fails the configuration as in stunnel', async () => {
    const mine = await badConfig('logid-bad', 'logId = bogus\n');
    expect(mine[0]).toMatch(/:\d+: "logId = bogus": Invalid connection identifier type$/);
  });
});

describe('USR2', () => {
  for (const kind of KINDS) {
    it.runIf(hasOpenssl && (kind !== 'stunnel4' || hasStunnel))(
      `${kind}: logs the connections in progress`,
      async () => {
        const { port: holder, sockets } = await holdingBackend();
        const [hold, other] = [await freePort(), await freePort()];
        const svc = (name: string, port: number) =>
          section(name, port).replace(`:${fx.backendPort}`, `:${holder}`);
        const { daemon } = await tunnel(svc('hold', hold) + svc('other', other), kind, other);
        const clients = [await heldClient(hold), await heldClient(other)];
        await daemon.log.waitForCount(/connected remote server/, 2);
        daemon.proc.kill('SIGUSR2');
        await daemon.log.waitFor(/LOG0\[ui\]: Listed 2 active connection\(s\)/);
        const text = daemon.log.text();
        // Numbered from 1, the newest first, as stunnel lists them.
        expect(text).toMatch(
          /LOG0\[ui\]: Active connections:\n.*LOG0\[ui\]: Active connection 1: Service \[other\]/,
        );
        expect(text).toMatch(/LOG0\[ui\]: Active connection 2: Service \[hold\]/);
        for (const c of clients) c.destroy();
        for (const s of sockets) s.destroy();
        await daemon.log.waitForCount(/Connection (closed|reset)/, 2);
        // stunnel4 logs the end of a connection a moment before its thread leaves the list: ask
        // again (each answer is awaited) until the list is empty, within the test's time.
        for (let asked = 2; ; asked++) {
          daemon.proc.kill('SIGUSR2');
          await daemon.log.waitForCount(/LOG0\[ui\]: Listed \d+ active connection\(s\)/, asked);
          const answers = daemon.log.text().match(/Listed \d+ active/g) ?? [];
          if (answers.at(-1) === 'Listed 0 active') break;
        }
      },
      60_000,
    );
  }
});

describe('socket', () => {
  /**
   * `ss`'s line for the established connection on local port `port` (either end), once nothing
   * waits in its send queue (the TLS session tickets may still be in flight, and `ss` then shows
   * the retransmission timer instead of the keep-alive one); at most 100 looks.
   */
  const keepalive = async (port: number, end: 'sport' | 'dport') => {
    let out = '';
    for (let i = 0; i < 100; i++) {
      out = (await run('ss', ['-tnoH', 'state', 'established', `( ${end} = :${port} )`])).stdout.toString();
      if (out !== '' && !/^\S+\s+[1-9]/m.test(out) && !/timer:\(on,/.test(out)) return out;
    }
    return out;
  };
  for (const kind of KINDS) {
    it.runIf(hasOpenssl && toolAvailable('ss') && (kind !== 'stunnel4' || hasStunnel))(
      `${kind}: l:, r: and a: keep-alive and its idle time reach the sockets`,
      async () => {
        const { port: holder } = await holdingBackend();
        const { port: holder2 } = await holdingBackend();
        const [lr, a, none] = [await freePort(), await freePort(), await freePort()];
        const to = (name: string, port: number, backend: number, extra: string) =>
          section(name, port, extra).replace(`:${fx.backendPort}`, `:${backend}`);
        const { daemon } = await tunnel(
          to(
            'lr',
            lr,
            holder,
            'socket = l:SO_KEEPALIVE=yes\nsocket = l:TCP_KEEPIDLE=50\nsocket = r:SO_KEEPALIVE=1\nsocket = r:TCP_KEEPIDLE=150\nsocket = l:TCP_NODELAY=yes\n',
          ) +
            to(
              'a',
              a,
              holder2,
              'socket = a:SO_KEEPALIVE=yes\nsocket = a:TCP_KEEPIDLE=200\nsocket = a:SO_REUSEADDR=yes\n',
            ) +
            to('none', none, holder2, ''),
          kind,
          none,
        );
        await heldClient(lr);
        await heldClient(a);
        await heldClient(none);
        await daemon.log.waitForCount(/connected remote server/, 3);
        expect(await keepalive(lr, 'sport')).toMatch(/timer:\(keepalive,(4\d|50)sec,0\)/);
        expect(await keepalive(holder, 'dport')).toMatch(/timer:\(keepalive,2min(2\d|30)sec,0\)/);
        // a: set on the listening socket; the accepted socket has it (Linux copies it over).
        expect(await keepalive(a, 'sport')).toMatch(/timer:\(keepalive,3min([0-1]\d|20)sec,0\)/);
        // The control: no line, no keep-alive.
        const plain = await keepalive(none, 'sport');
        expect(plain).toContain(`:${none}`);
        expect(plain).not.toMatch(/keepalive/);
      },
      60_000,
    );
  }
  it('bad values fail as in stunnel; what Node.js cannot set is warned about naming the line', async () => {
    for (const bad of [
      'l:TCP_NODELAY=maybe',
      'L:TCP_NODELAY=1',
      'l:tcp_nodelay=1',
      'l:FOO=1',
      'x:SO_KEEPALIVE=yes',
      'r:TCP_KEEPIDLE=1x',
    ])
      expect((await badConfig(`socket-${bad}`, `socket = ${bad}\n`))[0]).toMatch(
        new RegExp(`"socket = ${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}": Illegal socket option$`),
      );
    // stunnel accepts it and fails at setsockopt; refused here.
    const range = await badConfig('socket-keepidle-0', 'socket = l:TCP_KEEPIDLE=0\n', false);
    expect(range[0]).toMatch(/"socket = l:TCP_KEEPIDLE=0": TCP_KEEPIDLE must be 1 to 32767 seconds$/);
    const conf = writeConfig(
      fx.dir,
      'socket-warn.conf',
      `foreground = yes\n${section('svc', 1, 'socket = l:SO_RCVBUF=4096\nsocket = a:SO_REUSEADDR=no\n')}`,
    );
    const r = await run(process.execPath, [TUNNEL, '-t', conf]);
    expect(r.code).toBe(0);
    const err = r.stderr.toString();
    expect(err).toContain(
      `${conf}:8: "socket = l:SO_RCVBUF=4096": l:SO_RCVBUF cannot be set by ucspi-tunnel`,
    );
    expect(err).toContain(`${conf}:9: "socket = a:SO_REUSEADDR=no": Node.js always sets SO_REUSEADDR`);
  });
});

describe('-options and -sockets', () => {
  /** The lines from `title` on, of `cmd FLAG` (stderr, exit 0). */
  const listing = async (cmd: 'ucspi-tunnel' | 'stunnel4', args: string[], title: string) => {
    const r =
      cmd === 'stunnel4' ? await run('stunnel4', args) : await run(process.execPath, [TUNNEL, ...args]);
    expect(r.code).toBe(0);
    const lines = r.stderr.toString().split('\n');
    return lines.slice(lines.indexOf(title)).filter((l) => l !== '');
  };
  it.runIf(hasStunnel)('-options: the names accepted here, as stunnel4 lists them', async () => {
    const ours = await listing('ucspi-tunnel', ['-options'], 'Supported TLS options:');
    const theirs = await listing('stunnel4', ['-options'], 'Supported TLS options:');
    expect(ours.length).toBeGreaterThan(20);
    // The same shape and order; only the names node:crypto does not offer are missing.
    expect(ours).toEqual(theirs.filter((l) => ours.includes(l)));
    expect(ours).toContain('options = NO_TICKET');
    expect(ours).not.toContain('options = ENABLE_KTLS');
  });
  it.runIf(hasStunnel)(
    '-sockets: the options socket = sets, with the same defaults as stunnel4',
    async () => {
      const ours = await listing('ucspi-tunnel', ['-sockets'], 'Socket option defaults:');
      const theirs = await listing('stunnel4', ['-sockets'], 'Socket option defaults:');
      expect(ours.slice(0, 3)).toEqual(theirs.slice(0, 3));
      expect(ours.slice(3).map((l) => l.trim().split(/\s/)[0])).toEqual([
        'SO_KEEPALIVE',
        'SO_REUSEADDR',
        'TCP_KEEPIDLE',
        'TCP_NODELAY',
      ]);
      for (const row of ours.slice(3)) expect(theirs).toContain(row);
    },
  );
  it.runIf(hasStunnel)('any case, and what follows is ignored, as stunnel4', async () => {
    for (const args of [['-OPTIONS'], ['-options', 'extra']]) {
      expect(await listing('ucspi-tunnel', args, 'Supported TLS options:')).toEqual(
        await listing('ucspi-tunnel', ['-options'], 'Supported TLS options:'),
      );
      expect((await listing('stunnel4', args, 'Supported TLS options:')).length).toBeGreaterThan(20);
    }
  });
});

describe('bad values on HUP', () => {
  it.runIf(hasOpenssl)(
    'the running configuration stays',
    async () => {
      const port = await freePort();
      const { conf, daemon } = await tunnel(section('svc', port, 'logId = unique\n'));
      let reloads = 0;
      for (const bad of ['logId = bogus', 'socket = l:FOO=1', 'socket = l:TCP_KEEPIDLE=0']) {
        writeConfig(
          fx.dir,
          conf.slice(fx.dir.length + 1),
          `foreground = yes\n${section('svc', port, `${bad}\n`)}`,
        );
        daemon.proc.kill('SIGHUP');
        await daemon.log.waitForCount(/Failed to reload the configuration file/, ++reloads);
        expect(daemon.log.text()).toContain(`"${bad}": `);
      }
      // Still serving, with the first configuration's logId.
      expect(await sClient(port, ['-quiet'])).toMatch(/^ready$/m);
      await daemon.log.waitFor(/LOG5\[[A-Za-z0-9]{22}\]: Connection closed/);
    },
    60_000,
  );
});
