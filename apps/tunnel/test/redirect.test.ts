// `redirect = [HOST:]PORT`: a client whose certificate fails the service's verification (or that
// sent none) is relayed to the redirect targets instead of `connect` (or `exec`), against node:tls
// clients with and without certificates, with Debian's stunnel4 run on the same configuration as
// the oracle; and the configuration errors, in stunnel's words where stunnel has any.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { freePort } from '@ucspi/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stopAll, tlsTalk } from './_helpers.js';
import { badConfig, fx, hasStunnel, section, setUpFixture, tearDownFixture, tunnel } from './_tls-options.js';

const words: Server[] = [];
/** A backend that says `word` and closes: which backend a client reached is what it reads. */
async function sayer(word: string): Promise<number> {
  const server = createServer((s) => {
    s.on('error', () => undefined);
    s.end(`${word}\n`);
  });
  words.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as { port: number }).port;
}

beforeAll(setUpFixture, 30_000);
afterEach(stopAll);
afterAll(() => {
  for (const s of words.splice(0)) s.close();
  tearDownFixture();
});

const KINDS = ['ucspi-tunnel', 'stunnel4'] as const;

/** A TLS client with the certificate `name` of the test PKI (none: no certificate); what it read. */
function client(port: number, name?: 'client' | 'selfSigned' | 'expired'): Promise<string> {
  const files = {
    client: [fx.pki.clientCert, fx.pki.clientKey],
    selfSigned: [fx.pki.selfSignedCert, fx.pki.selfSignedKey],
    expired: [fx.pki.expiredCert, fx.pki.expiredKey],
  } as const;
  const pair = name ? files[name] : undefined;
  return tlsTalk(port, '', pair ? { cert: readFileSync(pair[0]), key: readFileSync(pair[1]) } : {});
}

describe('redirect', () => {
  for (const kind of KINDS) {
    it.runIf(kind !== 'stunnel4' || hasStunnel)(
      `${kind}: a client that fails verification reaches the redirect target, a good one connect`,
      async () => {
        const [main, redirected] = [await sayer('MAIN'), await sayer('REDIRECTED')];
        const [port, exec] = [await freePort(), await freePort()];
        const conf =
          section('svc', port, `verifyChain = yes\nredirect = 127.0.0.1:${redirected}\n`).replace(
            `connect = 127.0.0.1:${fx.backendPort}`,
            `connect = 127.0.0.1:${main}`,
          ) +
          // With exec: the program for a good client, the redirect target for the others (stunnel's
          // remote_start connects a redirected exec client too).
          section('exec', exec, `verifyChain = yes\nredirect = 127.0.0.1:${redirected}\n`).replace(
            `connect = 127.0.0.1:${fx.backendPort}`,
            'exec = /bin/echo\nexecArgs = echo PROGRAM',
          );
        const { daemon } = await tunnel(conf, kind, exec);
        expect(await client(port, 'client')).toBe('MAIN\n');
        // No certificate, a self-signed one, an expired one from the right CA.
        expect(await client(port)).toBe('REDIRECTED\n');
        expect(await client(port, 'selfSigned')).toBe('REDIRECTED\n');
        expect(await client(port, 'expired')).toBe('REDIRECTED\n');
        expect(await client(exec, 'client')).toBe('PROGRAM\n');
        expect(await client(exec, 'selfSigned')).toBe('REDIRECTED\n');
        await daemon.log.waitForCount(/LOG5\[\d+\]: Redirecting connection/, 4);
        await daemon.log.waitForCount(/Connection closed/, 6);
        // stunnel logs its rejection over two lines, ucspi-tunnel on one; a client without a
        // certificate is redirected without one.
        const rejected =
          kind === 'stunnel4' ? /Rejected by CERT at depth=0/g : /LOG4\[\d+\]: Rejected by CERT:/g;
        expect(daemon.log.text().match(rejected)).toHaveLength(3);
        expect(daemon.log.text().match(/Redirecting connection/g)).toHaveLength(4);
      },
      60_000,
    );

    it.runIf(kind !== 'stunnel4' || hasStunnel)(
      `${kind}: several redirect lines are tried in order`,
      async () => {
        const [dead, redirected, port] = [await freePort(), await sayer('SECOND'), await freePort()];
        const { daemon } = await tunnel(
          section(
            'svc',
            port,
            `verify = 2\nredirect = 127.0.0.1:${dead}\nredirect = 127.0.0.1:${redirected}\n`,
          ),
          kind,
          port,
        );
        expect(await client(port, 'client')).toBe('ready\n');
        expect(await client(port, 'selfSigned')).toBe('SECOND\n');
        await daemon.log.waitFor(
          new RegExp(`s_connect: connect 127\\.0\\.0\\.1:${dead}: Connection refused`),
        );
        await daemon.log.waitFor(new RegExp(`s_connect: connected 127\\.0\\.0\\.1:${redirected}`));
      },
      60_000,
    );
  }

  it("bad input: stunnel's errors, in its words", async () => {
    expect(await badConfig('redirect client', 'client = yes\nverifyChain = yes\nredirect = 9\n')).toEqual([
      'Service [svc]: "redirect" is unsupported in client sections',
      'Configuration failed',
    ]);
    expect(await badConfig('redirect noverify', 'redirect = 9\n')).toEqual([
      'Service [svc]: Either "verifyChain" or "verifyPeer" has to be enabled for "redirect" to work',
      'Configuration failed',
    ]);
    expect(await badConfig('redirect smtp', 'protocol = smtp\nverifyChain = yes\nredirect = 9\n')).toEqual([
      'Service [svc]: "redirect" is incompatible with the specified protocol negotiation',
      'Configuration failed',
    ]);
  }, 60_000);

  it('bad input: a target that does not resolve, a bad port, named with the file and line', async () => {
    // stunnel accepts both and fails each connection later (a delayed lookup); refused here, as
    // for `connect`.
    const name = await badConfig(
      'redirect name',
      'verifyChain = yes\nredirect = nosuch.invalid:443\n',
      false,
    );
    expect(name.at(-2)).toMatch(/^\S+:9: "redirect = nosuch\.invalid:443": Cannot resolve redirect target$/);
    expect(name[0]).toMatch(/^Service \[svc\]: .*nosuch\.invalid/);
    const service = await badConfig(
      'redirect service',
      'verifyChain = yes\nredirect = 127.0.0.1:nosuchport\n',
      false,
    );
    expect(service.at(-2)).toMatch(
      /:9: "redirect = 127\.0\.0\.1:nosuchport": Cannot resolve redirect target$/,
    );
    const port = await badConfig('redirect port', 'verifyChain = yes\nredirect = 127.0.0.1:99999\n', false);
    expect(port).toEqual([
      expect.stringMatching(/:9: "redirect = 127\.0\.0\.1:99999": Invalid port$/),
      'Configuration failed',
    ]);
  }, 30_000);
});
