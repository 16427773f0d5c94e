// `reset` and `retry`. reset: a connection that fails (here: the backend refuses) ends with a TCP
// reset by default and with a plain close under `reset = no`, in server and client mode, with
// Debian's stunnel4 run on the same configuration as the oracle. retry: only stunnel's local mode
// (connect and exec, no accept) uses it (local-mode.test.ts); accepted (and unused, as in stunnel)
// elsewhere.
import { connect, createServer, type Server } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { freePort, run, waitUntil } from '@ucspi/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stopAll, TUNNEL, writeConfig } from './_helpers.js';
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
afterEach(stopAll);
afterAll(tearDownFixture);

const KINDS = ['ucspi-tunnel', 'stunnel4'] as const;

/**
 * How a plain connection to `port` ended for the client: `reset` (ECONNRESET) or `end` (a FIN).
 * (A TLS client is openssl s_client: node:tls reports a reset that comes with the server's last
 * handshake bytes as an end about half the time, against stunnel4 as against ucspi-tunnel.)
 */
function ending(port: number): Promise<string> {
  return new Promise((resolve) => {
    let how = 'close';
    const c = connect({ port, host: '127.0.0.1' });
    c.on('error', (err: NodeJS.ErrnoException) => {
      how = err.code === 'ECONNRESET' ? 'reset' : `error ${err.code}`;
    });
    c.on('end', () => {
      how = 'end';
    });
    c.on('close', () => resolve(how));
    c.resume();
  });
}

/** How a TLS connection to `port` ended for s_client after the handshake: `reset` or `end`. */
async function tlsEnding(port: number): Promise<string> {
  const out = await sClient(port, []);
  if (!/^New, TLSv1\.3/m.test(out)) return `no handshake: ${out}`;
  if (/errno=104/.test(out)) return 'reset';
  // OpenSSL's words for a FIN without close_notify.
  if (/unexpected eof while reading/.test(out)) return 'end';
  return out;
}

const held: Server[] = [];
afterAll(() => {
  for (const s of held.splice(0)) s.close();
});

/** A backend that says nothing; `next()` resolves with how its next connection ended (`reset`, `end`). */
async function recordingBackend(): Promise<{ port: number; next: () => Promise<string> }> {
  const endings: Promise<string>[] = [];
  const server = createServer((s) => {
    endings.push(
      new Promise((resolve) => {
        let how = 'close';
        s.on('error', (err: NodeJS.ErrnoException) => {
          how = err.code === 'ECONNRESET' ? 'reset' : `error ${err.code}`;
        });
        s.on('end', () => {
          how = 'end';
          s.end();
        });
        s.on('close', () => resolve(how));
      }),
    );
  });
  held.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  let taken = 0;
  return {
    port: (server.address() as { port: number }).port,
    next: async () => {
      await waitUntil(() => endings.length > taken);
      return endings[taken++]!;
    },
  };
}

describe('reset', () => {
  for (const kind of KINDS) {
    it.runIf(hasOpenssl && (kind !== 'stunnel4' || hasStunnel))(
      `${kind}: a refused backend gives the client a reset, or with reset = no a clean end`,
      async () => {
        const dead = await freePort();
        const [sYes, sNo, cYes, cNo] = [
          await freePort(),
          await freePort(),
          await freePort(),
          await freePort(),
        ];
        const server = (name: string, port: number, extra: string) =>
          section(name, port, extra).replace(
            `connect = 127.0.0.1:${fx.backendPort}`,
            `connect = 127.0.0.1:${dead}`,
          );
        const client = (name: string, port: number, extra: string) =>
          `[${name}]\nclient = yes\naccept = 127.0.0.1:${port}\nconnect = 127.0.0.1:${dead}\n${extra}`;
        const { daemon } = await tunnel(
          server('s-yes', sYes, '') +
            server('s-no', sNo, 'reset = no\n') +
            client('c-yes', cYes, 'reset = yes\n') +
            client('c-no', cNo, 'reset = NO\n'),
          kind,
          cNo,
        );
        // Server mode: the handshake is over when the backend refuses.
        expect(await tlsEnding(sYes)).toBe('reset');
        expect(await tlsEnding(sNo)).toBe('end');
        expect(await ending(cYes)).toBe('reset');
        expect(await ending(cNo)).toBe('end');
        await daemon.log.waitForCount(/Connection (reset|closed):/, 4);
        const endings = [
          ...daemon.log.text().matchAll(/LOG5\[\d+\]: Connection (reset|closed): 0 byte/g),
        ].map((m) => m[1]);
        // stunnel says `closed` when it did not reset.
        expect(endings).toEqual(['reset', 'closed', 'reset', 'closed']);
        expect(daemon.log.text().match(/Connection refused \(111\)/g)).toHaveLength(4);
      },
      60_000,
    );
  }

  for (const kind of KINDS) {
    it.runIf(hasOpenssl && (kind !== 'stunnel4' || hasStunnel))(
      `${kind}: TIMEOUTidle resets both sides, or with reset = no closes them`,
      async () => {
        const backend = await recordingBackend();
        const [yes, no] = [await freePort(), await freePort()];
        const idle = (name: string, port: number, extra: string) =>
          section(name, port, `TIMEOUTidle = 1\n${extra}`).replace(
            `connect = 127.0.0.1:${fx.backendPort}`,
            `connect = 127.0.0.1:${backend.port}`,
          );
        const { daemon } = await tunnel(idle('yes', yes, '') + idle('no', no, 'reset = no\n'), kind, no);
        expect(await tlsEnding(yes)).toBe('reset');
        expect(await backend.next()).toBe('reset');
        expect(await tlsEnding(no)).toBe('end');
        expect(await backend.next()).toBe('end');
        await daemon.log.waitForCount(/Connection (reset|closed):/, 2);
        expect(daemon.log.text().match(/TIMEOUTidle exceeded: sending reset/g)).toHaveLength(2);
        const endings = [...daemon.log.text().matchAll(/LOG5\[\d+\]: Connection (reset|closed):/g)].map(
          (m) => m[1],
        );
        expect(endings).toEqual(['reset', 'closed']);
      },
      60_000,
    );
  }

  it("bad input: not yes or no, in stunnel's words", async () => {
    expect(await badConfig('reset value', 'reset = maybe\n')).toEqual([
      expect.stringMatching(/:8: "reset = maybe": The argument needs to be either 'yes' or 'no'$/),
      'Configuration failed',
    ]);
  }, 30_000);
});

describe('retry', () => {
  for (const kind of KINDS) {
    it.runIf(kind !== 'stunnel4' || hasStunnel)(
      `${kind}: retry = yes in a section with accept is accepted and changes nothing`,
      async () => {
        const port = await freePort();
        const { conf, daemon } = await tunnel(section('svc', port, 'retry = yes\n'), kind, port);
        const c = await new Promise<string>((resolve, reject) => {
          const s = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false });
          let out = '';
          s.on('data', (b: Buffer) => {
            out += b.toString();
          });
          s.on('error', reject);
          s.on('end', () => resolve(out));
        });
        expect(c).toBe('ready\n');
        await daemon.log.waitFor(/Connection closed/);
        expect(daemon.log.text()).not.toContain(`${conf}:`);
      },
      60_000,
    );
  }

  // Local mode itself (and retry there) is tested in local-mode.test.ts.
  it('ucspi-tunnel: retry = yes in a local-mode section (connect and exec, no accept) is accepted', async () => {
    const conf = writeConfig(
      fx.dir,
      'retry-local.conf',
      `foreground = yes\n[local]\nclient = yes\nexec = /bin/cat\nconnect = 127.0.0.1:${fx.backendPort}\nretry = yes\n`,
    );
    const r = await run(process.execPath, [TUNNEL, '-t', conf]);
    expect(r.code).toBe(0);
    expect(r.stderr.toString()).not.toContain('local mode');
  }, 30_000);

  it("bad input: not yes or no, in stunnel's words", async () => {
    expect(await badConfig('retry value', 'retry = 1\n')).toEqual([
      expect.stringMatching(/:8: "retry = 1": The argument needs to be either 'yes' or 'no'$/),
      'Configuration failed',
    ]);
  }, 30_000);
});
