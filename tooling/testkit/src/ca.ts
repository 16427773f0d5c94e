import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import forge from 'node-forge';

/** Paths of the PEM files {@link createTestPki} writes. */
export interface TestPki {
  dir: string;
  /** Root CA certificate and key. */
  rootCert: string;
  rootKey: string;
  /** Intermediate CA signed by the root. */
  interCert: string;
  interKey: string;
  /** Root + intermediate, the bundle a verifier trusts (CAFILE). */
  caBundle: string;
  /** A hashed directory (OpenSSL CApath layout) holding the root and the intermediate. */
  caDir: string;
  /** Server certificate for 127.0.0.1, ::1 and localhost, signed by the intermediate. */
  serverCert: string;
  serverKey: string;
  /** Server leaf + intermediate (leaf first), and the same ordered root first (CERTCHAINFILE). */
  serverChain: string;
  serverChainRootFirst: string;
  /** A second server certificate for `other.test` (SNI), signed by the intermediate. */
  otherCert: string;
  otherKey: string;
  /** Client certificate (CN client.test, SAN DNS client.test) signed by the intermediate, and its chain. */
  clientCert: string;
  clientKey: string;
  clientChain: string;
  /** Client certificate signed directly by the root. */
  directClientCert: string;
  directClientKey: string;
  /** Certificates that are expired, not yet valid, revoked (see crl), for the wrong host, self-signed. */
  expiredCert: string;
  expiredKey: string;
  futureCert: string;
  futureKey: string;
  revokedCert: string;
  revokedKey: string;
  wrongHostCert: string;
  wrongHostKey: string;
  selfSignedCert: string;
  selfSignedKey: string;
  /** CRL of the intermediate listing `revokedCert`, and an empty CRL of the root. */
  crl: string;
  /** The server key encrypted with {@link TEST_KEY_PASSWORD}. */
  encryptedServerKey: string;
  /** A key that does not belong to serverCert, and a file that is not PEM at all. */
  mismatchedKey: string;
  malformed: string;
}

/** The password of `encryptedServerKey`. */
export const TEST_KEY_PASSWORD = 'correct horse';

interface Made {
  cert: forge.pki.Certificate;
  key: forge.pki.rsa.PrivateKey;
  keyPem: string;
  certPem: string;
}

const DAY = 86_400_000;

function keyPair() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const key = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  return { key, keyPem, pub: forge.pki.setRsaPublicKey(key.n, key.e) };
}

let serial = 1000;

function make(
  subjectCn: string,
  opts: {
    issuer?: Made;
    ca?: boolean;
    notBefore?: Date;
    notAfter?: Date;
    dns?: string[];
    ips?: string[];
    client?: boolean;
  } = {},
): Made {
  const { key, keyPem, pub } = keyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = pub;
  cert.serialNumber = (serial++).toString(16).padStart(4, '0');
  cert.validity.notBefore = opts.notBefore ?? new Date(Date.now() - DAY);
  cert.validity.notAfter = opts.notAfter ?? new Date(Date.now() + 30 * DAY);
  const subject = [
    { shortName: 'C', value: 'DE' },
    { shortName: 'O', value: 'Test Org' },
    { shortName: 'CN', value: subjectCn },
  ];
  cert.setSubject(subject);
  cert.setIssuer(opts.issuer ? opts.issuer.cert.subject.attributes : subject);
  const altNames = [
    ...(opts.dns ?? []).map((value) => ({ type: 2, value })),
    ...(opts.ips ?? []).map((ip) => ({ type: 7, ip })),
  ];
  cert.setExtensions([
    { name: 'basicConstraints', cA: !!opts.ca, critical: true },
    opts.ca
      ? { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true }
      : { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    ...(opts.ca ? [] : [{ name: 'extKeyUsage', serverAuth: !opts.client, clientAuth: true }]),
    ...(altNames.length ? [{ name: 'subjectAltName', altNames }] : []),
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(opts.issuer?.key ?? key, forge.md.sha256.create());
  return { cert, key, keyPem, certPem: forge.pki.certificateToPem(cert) };
}

/**
 * Make a complete test PKI in `dir` (created if needed): CAs, server, client and broken
 * certificates, a CRL, an encrypted key. Keys are RSA-2048 from node:crypto; node-forge only builds
 * and signs the certificates. The CRL and the hashed directory are made with the real `openssl`.
 * Takes about a second.
 */
export function createTestPki(dir: string): TestPki {
  mkdirSync(dir, { recursive: true });
  const w = (name: string, text: string, mode = 0o644) => {
    const p = join(dir, name);
    writeFileSync(p, text, { mode });
    return p;
  };
  const root = make('Test Root CA', { ca: true });
  const inter = make('Test Intermediate CA', { ca: true, issuer: root });
  const host = { dns: ['localhost'], ips: ['127.0.0.1', '::1'] };
  const server = make('127.0.0.1', { issuer: inter, ...host });
  const other = make('other.test', { issuer: inter, dns: ['other.test'] });
  const client = make('client.test', { issuer: inter, dns: ['client.test'], client: true });
  const direct = make('direct.test', { issuer: root, dns: ['direct.test'], client: true });
  const expired = make('127.0.0.1', {
    issuer: inter,
    ...host,
    notBefore: new Date(Date.now() - 60 * DAY),
    notAfter: new Date(Date.now() - 30 * DAY),
  });
  const future = make('127.0.0.1', {
    issuer: inter,
    ...host,
    notBefore: new Date(Date.now() + 30 * DAY),
    notAfter: new Date(Date.now() + 60 * DAY),
  });
  const revoked = make('127.0.0.1', { issuer: inter, ...host, client: false });
  const wrong = make('wrong.test', { issuer: inter, dns: ['wrong.test'] });
  const self = make('127.0.0.1', host);
  const mismatched = keyPair();

  const pki: TestPki = {
    dir,
    rootCert: w('root.pem', root.certPem),
    rootKey: w('root.key', root.keyPem, 0o600),
    interCert: w('inter.pem', inter.certPem),
    interKey: w('inter.key', inter.keyPem, 0o600),
    caBundle: w('ca-bundle.pem', root.certPem + inter.certPem),
    caDir: join(dir, 'cadir'),
    serverCert: w('server.pem', server.certPem),
    serverKey: w('server.key', server.keyPem, 0o600),
    serverChain: w('server-chain.pem', server.certPem + inter.certPem),
    serverChainRootFirst: w('server-chain-rootfirst.pem', root.certPem + inter.certPem + server.certPem),
    otherCert: w('other.pem', other.certPem),
    otherKey: w('other.key', other.keyPem, 0o600),
    clientCert: w('client.pem', client.certPem),
    clientKey: w('client.key', client.keyPem, 0o600),
    clientChain: w('client-chain.pem', client.certPem + inter.certPem),
    directClientCert: w('direct.pem', direct.certPem),
    directClientKey: w('direct.key', direct.keyPem, 0o600),
    expiredCert: w('expired.pem', expired.certPem),
    expiredKey: w('expired.key', expired.keyPem, 0o600),
    futureCert: w('future.pem', future.certPem),
    futureKey: w('future.key', future.keyPem, 0o600),
    revokedCert: w('revoked.pem', revoked.certPem),
    revokedKey: w('revoked.key', revoked.keyPem, 0o600),
    wrongHostCert: w('wronghost.pem', wrong.certPem),
    wrongHostKey: w('wronghost.key', wrong.keyPem, 0o600),
    selfSignedCert: w('selfsigned.pem', self.certPem),
    selfSignedKey: w('selfsigned.key', self.keyPem, 0o600),
    crl: join(dir, 'crl.pem'),
    encryptedServerKey: w(
      'server-encrypted.key',
      forge.pki.encryptRsaPrivateKey(server.key, TEST_KEY_PASSWORD, { algorithm: 'aes256' }),
      0o600,
    ),
    mismatchedKey: w('mismatched.key', mismatched.keyPem, 0o600),
    malformed: w(
      'malformed.pem',
      '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n',
    ),
  };

  // CRLs with the real openssl ca: the intermediate revokes `revoked`; the root revokes nothing.
  const crls: string[] = [];
  for (const [name, ca, revokedPem] of [
    ['inter', pki.interCert, pki.revokedCert],
    ['root', pki.rootCert, undefined],
  ] as const) {
    const caDir = join(dir, `ca-${name}`);
    mkdirSync(caDir, { recursive: true });
    writeFileSync(join(caDir, 'index.txt'), '');
    writeFileSync(join(caDir, 'crlnumber'), '01\n');
    const conf = w(
      `ca-${name}.cnf`,
      `[ca]\ndefault_ca=d\n[d]\ndatabase=${join(caDir, 'index.txt')}\ncrlnumber=${join(caDir, 'crlnumber')}\ndefault_md=sha256\ndefault_crl_days=30\n`,
    );
    const key = name === 'inter' ? pki.interKey : pki.rootKey;
    if (revokedPem)
      execFileSync('openssl', ['ca', '-config', conf, '-cert', ca, '-keyfile', key, '-revoke', revokedPem], {
        stdio: 'ignore',
      });
    const out = join(caDir, 'crl.pem');
    execFileSync('openssl', ['ca', '-config', conf, '-cert', ca, '-keyfile', key, '-gencrl', '-out', out], {
      stdio: 'ignore',
    });
    crls.push(out);
  }
  writeFileSync(pki.crl, crls.map((p) => readFileSync(p, 'utf8')).join(''));

  // OpenSSL's hashed directory: <subject hash>.0 per CA certificate.
  mkdirSync(pki.caDir, { recursive: true });
  for (const [i, pem] of [root.certPem, inter.certPem].entries()) {
    const p = join(dir, `ca${i}.pem`);
    writeFileSync(p, pem);
    const hash = execFileSync('openssl', ['x509', '-noout', '-hash', '-in', p]).toString().trim();
    writeFileSync(join(pki.caDir, `${hash}.0`), pem);
  }
  return pki;
}
