// checkEmail and CRLpath against real peers (openssl s_client, a node:tls server), with Debian's
// stunnel4 run on the same configuration as the oracle.
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '@ucspi/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { plainTalk, stopAll } from './_helpers.js';
import { crlDir, mail, mailServer, makeMailCert } from './_more-options.js';
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

beforeAll(async () => {
  await setUpFixture();
  if (hasOpenssl) await makeMailCert();
}, 30_000);
afterEach(stopAll);
afterAll(tearDownFixture);

const KINDS = ['ucspi-tunnel', 'stunnel4'] as const;
/** The rejection as each daemon logs it (stunnel4: two lines; ucspi-tunnel: one, same words). */
const rejected = {
  'ucspi-tunnel': [/LOG4\[\d+\]: Rejected by CERT(?: at depth=0)?: Subject checks failed: CN=mail\.test/],
  stunnel4: [
    /LOG4\[\d+\]: CERT: Subject checks failed/,
    /LOG4\[\d+\]: Rejected by CERT at depth=0: CN=mail\.test/,
  ],
};

describe('checkEmail', () => {
  for (const kind of KINDS) {
    it.runIf(hasOpenssl && (kind !== 'stunnel4' || hasStunnel))(
      `${kind}: server mode, the client certificate's email must match one line`,
      async () => {
        const [bad, ok, caseBad] = [await freePort(), await freePort(), await freePort()];
        const v = 'verifyChain = yes\n';
        const { daemon } = await tunnel(
          section('bad', bad, `${v}checkEmail = bob@example.org\ncheckEmail = carol@example.org\n`) +
            // OpenSSL's match: the domain part case-insensitive, the local part exact.
            section('ok', ok, `${v}checkEmail = bob@example.org\ncheckEmail = alice@EXAMPLE.org\n`) +
            section('case', caseBad, `${v}checkEmail = ALICE@example.org\n`),
          kind,
          caseBad,
        );
        const client = ['-quiet', '-cert', mail.cert, '-key', mail.key, '-CAfile', fx.pki.caBundle];
        expect(await sClient(ok, client)).toMatch(/^ready$/m);
        expect(await sClient(bad, client)).not.toMatch(/^ready$/m);
        for (const re of rejected[kind]) await daemon.log.waitFor(re);
        expect(await sClient(caseBad, client)).not.toMatch(/^ready$/m);
        await daemon.log.waitForCount(rejected[kind].at(-1)!, 2);
        // A certificate without an email address fails too.
        expect(
          await sClient(bad, ['-quiet', '-cert', fx.pki.clientCert, '-key', fx.pki.clientKey]),
        ).not.toMatch(/^ready$/m);
        await daemon.log.waitFor(/Rejected by CERT.*CN=client\.test/);
      },
      60_000,
    );
    it.runIf(hasOpenssl && (kind !== 'stunnel4' || hasStunnel))(
      `${kind}: client mode, the server certificate's email must match one line`,
      async () => {
        const { port: server } = await mailServer();
        const [ok, bad] = [await freePort(), await freePort()];
        const client = (name: string, port: number, email: string) =>
          `[${name}]\nclient = yes\naccept = 127.0.0.1:${port}\nconnect = 127.0.0.1:${server}\n` +
          `verifyChain = yes\nCAfile = ${fx.pki.caBundle}\ncheckEmail = ${email}\n`;
        const { daemon } = await tunnel(
          client('ok', ok, 'alice@example.org') + client('bad', bad, 'bob@example.org'),
          kind,
          bad,
        );
        expect(await plainTalk(ok, '')).toBe('ready\n');
        // stunnel resets the plain client, ucspi-tunnel closes it: nothing arrives either way.
        expect(await plainTalk(bad, '').catch(() => '')).toBe('');
        const ours = /LOG4\[\d+\]: Rejected by CERT at depth=0: Subject checks failed: CN=mail\.test/;
        for (const re of kind === 'stunnel4' ? rejected.stunnel4 : [ours]) await daemon.log.waitFor(re);
      },
      60_000,
    );
  }
  it('without verifyChain or verifyPeer: the configuration fails as in stunnel', async () => {
    const mine = await badConfig('checkEmail-noverify', 'checkEmail = alice@example.org\n');
    expect(mine).toContain('Service [svc]: Either "verifyChain" or "verifyPeer" has to be enabled');
  });
});

describe('CRLpath', () => {
  const asClient = (c: 'client' | 'revoked') => [
    '-quiet',
    '-cert',
    c === 'client' ? fx.pki.clientCert : fx.pki.revokedCert,
    '-key',
    c === 'client' ? fx.pki.clientKey : fx.pki.revokedKey,
  ];
  for (const kind of KINDS) {
    it.runIf(hasOpenssl && (kind !== 'stunnel4' || hasStunnel))(
      `${kind}: the hashed folder's CRLs refuse a revoked client; CRLs added are read on HUP`,
      async () => {
        const port = await freePort();
        // Only the root's CRL: the intermediate's certificates have none, so no client passes.
        const dir = await crlDir(`crl-${kind}`, ['root']);
        const { daemon } = await tunnel(
          section('svc', port, `verifyChain = yes\nCRLpath = ${dir}\n`),
          kind,
          port,
        );
        expect(await sClient(port, asClient('client'))).not.toMatch(/^ready$/m);
        // The same verdict; ucspi-tunnel names OpenSSL's error by its code.
        await daemon.log.waitFor(
          kind === 'stunnel4'
            ? /LOG4\[0\]: CERT: Pre-verification error: unable to get certificate CRL/
            : /LOG4\[0\]: Rejected by CERT: Certificate verification failed: UNABLE_TO_GET_CRL/,
        );
        await crlDir(`crl-${kind}`, ['root', 'inter']);
        daemon.proc.kill('SIGHUP');
        await daemon.log.waitForCount(/Configuration successful/, 2);
        expect(await sClient(port, asClient('client'))).toMatch(/^ready$/m);
        expect(await sClient(port, asClient('revoked'))).not.toMatch(/^ready$/m);
        await daemon.log.waitFor(
          kind === 'stunnel4'
            ? /LOG4\[2\]: CERT: Pre-verification error: certificate revoked/
            : /LOG4\[2\]: Rejected by CERT: Certificate verification failed: CERT_REVOKED/,
        );
      },
      60_000,
    );
  }
  it('a folder without CRLs fails the start, and on HUP the running configuration stays', async () => {
    const empty = join(fx.dir, 'crl-empty');
    mkdirSync(empty, { recursive: true });
    const mine = await badConfig('crlpath-empty', `verifyChain = yes\nCRLpath = ${empty}\n`, false);
    expect(mine).toEqual([
      `Service [svc]: CRLpath ${empty} holds no CRL file (HASH.rN: run openssl rehash)`,
      'Service [svc]: Failed to initialize TLS context',
      'Configuration failed',
    ]);
    const missing = await badConfig('crlpath-missing', `verifyChain = yes\nCRLpath = ${empty}/none\n`, false);
    expect(missing[0]).toBe(`Service [svc]: Cannot read CRLpath ${empty}/none: ENOENT`);
    const port = await freePort();
    const dir = await crlDir('crl-hup', ['root', 'inter']);
    const { daemon } = await tunnel(
      section('svc', port, `verifyChain = yes\nCRLpath = ${dir}\n`),
      'ucspi-tunnel',
      port,
    );
    for (const f of readdirSync(dir)) rmSync(join(dir, f));
    daemon.proc.kill('SIGHUP');
    await daemon.log.waitFor(/LOG3\[ui\]: Service \[svc\]: CRLpath .* holds no CRL file/);
    await daemon.log.waitFor(/Failed to reload the configuration file/);
    // The CRLs read at start still apply.
    expect(await sClient(port, asClient('client'))).toMatch(/^ready$/m);
    expect(await sClient(port, asClient('revoked'))).not.toMatch(/^ready$/m);
  }, 60_000);
});

describe('checkHost in server mode', () => {
  for (const kind of KINDS)
    it.runIf(hasOpenssl && (kind !== 'stunnel4' || hasStunnel))(
      `${kind}: the client certificate must name the host`,
      async () => {
        const [ok, bad] = [await freePort(), await freePort()];
        const { daemon } = await tunnel(
          section('ok', ok, 'verifyChain = yes\ncheckHost = client.test\n') +
            section('bad', bad, 'verifyChain = yes\ncheckHost = other.test\n'),
          kind,
          bad,
        );
        const client = ['-quiet', '-cert', fx.pki.clientCert, '-key', fx.pki.clientKey];
        expect(await sClient(ok, client)).toMatch(/^ready$/m);
        expect(await sClient(bad, client)).not.toMatch(/^ready$/m);
        await daemon.log.waitFor(/Rejected by CERT.*CN=client\.test/);
      },
      60_000,
    );
});
