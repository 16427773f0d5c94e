import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { type AddressInfo, createServer, Socket } from 'node:net';
import { join } from 'node:path';
import { connect, TLSSocket } from 'node:tls';
import { run, tempDir, toolAvailable } from '@ucspi/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnvErrorCodes, modSslEnv } from '../src/index.js';

// Certificates made by the real openssl at test time; `openssl x509` is the oracle for the DN
// oneline form, dates, serials and algorithm names.
describe.runIf(toolAvailable('openssl'))('modSslEnv on real TLS sockets', () => {
  const tmp = tempDir();
  const f = (n: string) => join(tmp.path, n);
  const openssl = async (...args: string[]) => {
    const r = await run('openssl', args);
    if (r.code !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.toString().trim();
  };

  beforeAll(async () => {
    await openssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '30',
      '-subj',
      '/CN=Test CA',
      '-keyout',
      f('ca.key'),
      '-out',
      f('ca.pem'),
    );
    await openssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '30',
      '-set_serial',
      '123456789012345678901',
      '-subj',
      '/C=DE/O=Test Org/CN=127.0.0.1',
      '-keyout',
      f('srv.key'),
      '-out',
      f('srv.pem'),
    );
    await openssl(
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-subj',
      '/C=DE/OU=Mail/CN=client.test/emailAddress=joe@client.test',
      '-keyout',
      f('cli.key'),
      '-out',
      f('cli.csr'),
    );
    await openssl(
      'x509',
      '-req',
      '-in',
      f('cli.csr'),
      '-CA',
      f('ca.pem'),
      '-CAkey',
      f('ca.key'),
      '-set_serial',
      '7',
      '-days',
      '30',
      '-out',
      f('cli.pem'),
    );
  }, 30_000);
  afterAll(() => tmp.cleanup());

  /** A handshake between a raw-socket server TLSSocket and a node client; returns the server side. */
  async function handshake(
    clientCert: boolean,
    maxVersion: 'TLSv1.2' | 'TLSv1.3' = 'TLSv1.3',
    trustCa = true,
  ) {
    const srv = createServer();
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const port = (srv.address() as AddressInfo).port;
    const accepted = once(srv, 'connection');
    const client = connect({
      port,
      host: '127.0.0.1',
      rejectUnauthorized: false,
      maxVersion,
      ...(clientCert ? { cert: readFileSync(f('cli.pem')), key: readFileSync(f('cli.key')) } : {}),
    });
    client.on('error', () => {});
    const [raw] = await accepted;
    const tls = new TLSSocket(raw, {
      isServer: true,
      cert: readFileSync(f('srv.pem')),
      key: readFileSync(f('srv.key')),
      ca: [readFileSync(trustCa ? f('ca.pem') : f('srv.pem'))],
      requestCert: clientCert,
      rejectUnauthorized: false,
    });
    await Promise.all([once(tls, 'secure'), once(client, 'secureConnect')]);
    return {
      tls,
      close: () => {
        client.destroy();
        tls.destroy();
        srv.close();
      },
    };
  }

  it('describes the server certificate and the session like ucspi-ssl 0.95b', async () => {
    const { tls, close } = await handshake(false);
    try {
      const env = modSslEnv(tls);
      expect(env.SSL_PROTOCOL).toBe('TLSv1.3');
      expect(env.SSL_CIPHER).toBe('TLS_AES_256_GCM_SHA384');
      expect(env.SSL_CIPHER_USEKEYSIZE).toBe('256');
      expect(env.SSL_CIPHER_EXPORT).toBe('false');
      expect(env.SSL_SERVER_S_DN).toBe('/C=DE/O=Test Org/CN=127.0.0.1');
      expect(env.SSL_SERVER_S_DN_O).toBe('Test Org');
      expect(env.SSL_SERVER_S_DN_CN).toBe('127.0.0.1');
      expect(env.SSL_SERVER_I_DN).toBe(env.SSL_SERVER_S_DN);
      expect(env.SSL_SERVER_M_VERSION).toBe('3');
      expect(env.SSL_SERVER_M_SERIAL).toBe('123456789012345678901');
      expect(env.SSL_SERVER_A_SIG).toBe('sha256WithRSAEncryption');
      expect(env.SSL_SERVER_A_KEY).toBe('rsaEncryption');
      expect(`notBefore=${env.SSL_SERVER_V_START}`).toBe(
        await openssl('x509', '-in', f('srv.pem'), '-noout', '-startdate'),
      );
      expect(`notAfter=${env.SSL_SERVER_V_END}`).toBe(
        await openssl('x509', '-in', f('srv.pem'), '-noout', '-enddate'),
      );
      expect(env.SSL_SERVER_CERT).toBe(readFileSync(f('srv.pem'), 'utf8'));
      expect(env.SSL_CLIENT_VERIFY).toBe('NONE');
      expect(env.SSL_CLIENT_S_DN).toBeUndefined();
      expect(env.SSL_VERSION_LIBRARY).toBe(`OpenSSL/${process.versions.openssl}`);
    } finally {
      close();
    }
  });

  it('describes a verified client certificate and its chain', async () => {
    const { tls, close } = await handshake(true, 'TLSv1.2');
    try {
      const env = modSslEnv(tls);
      expect(env.SSL_PROTOCOL).toBe('TLSv1.2');
      expect(env.SSL_SESSION_ID ?? '0A').toMatch(/^([0-9A-F]{2})+$/);
      expect(env.SSL_CIPHER).toMatch(/^ECDHE-RSA-/);
      expect(env.SSL_CLIENT_VERIFY).toBe('SUCCESS');
      const subject = await openssl('x509', '-in', f('cli.pem'), '-noout', '-subject', '-nameopt', 'compat');
      expect(`subject=${env.SSL_CLIENT_S_DN}`).toBe(subject);
      expect(env.SSL_CLIENT_S_DN_OU).toBe('Mail');
      expect(env.SSL_CLIENT_S_DN_Email).toBe('joe@client.test');
      expect(env.SSL_CLIENT_I_DN_CN).toBe('Test CA');
      expect(env.SSL_CLIENT_M_SERIAL).toBe('7');
      expect(env.SSL_CLIENT_A_KEY).toBe('id-ecPublicKey');
      expect(env.SSL_CLIENT_A_SIG).toBe('sha256WithRSAEncryption');
      expect(env.SSL_CLIENT_CERT).toBe(readFileSync(f('cli.pem'), 'utf8'));
      expect(modSslEnv(tls, { verify: 'GENEROUS' }).SSL_CLIENT_VERIFY).toBe('GENEROUS');
    } finally {
      close();
    }
  });

  it("reports FAILED with OpenSSL's reason for an untrusted client certificate", async () => {
    const { tls, close } = await handshake(true, 'TLSv1.3', false);
    try {
      expect(modSslEnv(tls).SSL_CLIENT_VERIFY).toBe('FAILED:UNABLE_TO_VERIFY_LEAF_SIGNATURE');
      expect(modSslEnv(tls).SSL_CLIENT_S_DN_CN).toBe('client.test');
    } finally {
      close();
    }
  });

  it('refuses a socket without a completed handshake', () => {
    const raw = new TLSSocket(new Socket());
    expect(() => modSslEnv(raw)).toThrowError(expect.objectContaining({ code: EnvErrorCodes.NOT_TLS }));
  });
});
