// A service's TLS, built from its stunnel options before anything is bound: the server side
// (cert, key, CAfile, CApath, CRLfile, CRLpath, ciphers, ciphersuites, sslVersion*, verify*, and
// the tuning of tls-tuning.ts: curves, options, securityLevel, sessionResume, ticket secrets) through
// @ucspi/tls's loadServerTls with stunnel's verify policy in place of sslserver's, and the client
// side through loadClientTls with stunnel's levels; checkHost/checkEmail/checkIP on both sides.
import { readFile } from 'node:fs/promises';
import { checkServerIdentity, type TLSSocket } from 'node:tls';
import {
  type ClientTls,
  loadClientTls,
  loadServerTls,
  type ServerTls,
  type StunnelVerifyLevel,
  stunnelVerifyPolicy,
} from '@ucspi/tls';
import type { ServiceConfig, VerifySettings } from './config/types.js';
import { crlFiles } from './crl-path.js';
import { checkSubject, hasSubjectChecks, peerCertificate } from './subject-checks.js';
import { checkedCurves, cipherString, secureOptions, sessionIdContext, ticketKeys } from './tls-tuning.js';

/** stunnel 5's switches as one of its levels (0-4), or undefined: nothing requested. */
export function verifyLevel(v: VerifySettings): StunnelVerifyLevel {
  if (!v.request && !v.verifyChain && !v.verifyPeer) return undefined;
  if (v.verifyPeer) return v.verifyChain ? 3 : 4;
  if (v.verifyChain) return v.require === false ? 1 : 2;
  return 0;
}

/** The CA file's certificates as PEM blocks: stunnel's "locally installed" certificates for levels 3 and 4. */
async function localCertificates(caFile: string | undefined): Promise<string[]> {
  if (!caFile) return [];
  const text = await readFile(caFile, 'latin1');
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/** A server side: stunnel's verify policy decides after the handshake. */
export async function serverSide(s: ServiceConfig): Promise<ServerTls> {
  const level = verifyLevel(s.verify);
  const curves = checkedCurves(s);
  const keys = ticketKeys(s);
  const base = await loadServerTls(
    {
      CERTFILE: s.cert,
      KEYFILE: s.key ?? '',
      CAFILE: s.caFile,
      CADIR: s.caPath,
      CIPHERS: cipherString(s),
    },
    {
      clientCert: 'none',
      ...(s.sslVersionMin ? { minVersion: s.sslVersionMin } : {}),
      ...(s.sslVersionMax ? { maxVersion: s.sslVersionMax } : {}),
      ...(s.ciphersuites ? { ciphersuites: s.ciphersuites } : {}),
      crlFiles: await crlFiles(s.crlFile, s.crlPath),
      sessionTimeout: s.sessionTimeout,
      ...(curves !== undefined ? { ecdhCurve: curves } : {}),
      ...(keys ? { ticketKeys: keys } : {}),
      secureOptions: secureOptions(s),
      sessionIdContext: sessionIdContext(s),
    },
  );
  const policy = stunnelVerifyPolicy(level, await localCertificates(s.caFile));
  // requireCert without verifyChain/verifyPeer: a certificate must come, nothing verifies it.
  const presenceOnly = level === 0 && s.verify.require === true;
  return {
    ...base,
    serverOptions: { ...base.serverOptions, requestCert: policy.requestCert },
    checkPeer(socket) {
      if (presenceOnly && !socket.getPeerCertificate()?.raw)
        return { ok: false, reason: 'No peer certificate received' };
      const verdict = policy.check(socket);
      if (!verdict.ok || !hasSubjectChecks(s)) return verdict;
      // checkHost/checkEmail/checkIP on the client's certificate, after the chain was accepted; a
      // client without one (requireCert = no) is not checked, as stunnel's callback never runs then.
      const cert = peerCertificate(socket);
      const failed = cert ? checkSubject(cert, s) : undefined;
      return failed ? { ok: false, reason: failed } : verdict;
    },
  };
}

/** A client side, and the check of checkHost/checkIP/checkEmail after the handshake. */
export interface ClientSide {
  tls: ClientTls;
  /**
   * undefined: the server's certificate matches a checkHost/checkIP/checkEmail line (or none was
   * asked for); otherwise the rejection text.
   */
  checkNames(socket: TLSSocket): string | undefined;
}

export async function clientSide(s: ServiceConfig): Promise<ClientSide> {
  const level = verifyLevel(s.verify);
  const curves = checkedCurves(s);
  const tls = await loadClientTls({
    ...(s.caFile ? { caFile: s.caFile } : {}),
    ...(s.caPath ? { caDir: s.caPath } : {}),
    ...(s.cert ? { certFile: s.cert, keyFile: s.key ?? s.cert } : {}),
    // A client always gets the server's certificate: level 1 ("if present") is level 2 here.
    verify: level === undefined || level === 0 ? 'none' : level === 1 ? 2 : level,
    ...(level === 3 || level === 4 ? { localCerts: s.caFile ? [s.caFile] : [] } : {}),
    ...(s.sslVersionMin ? { minVersion: s.sslVersionMin } : {}),
    ...(s.sslVersionMax ? { maxVersion: s.sslVersionMax } : {}),
    ciphers: cipherString(s),
    ...(s.ciphersuites ? { ciphersuites: s.ciphersuites } : {}),
    crlFiles: await crlFiles(s.crlFile, s.crlPath),
    ...(curves !== undefined ? { ecdhCurve: curves } : {}),
    secureOptions: secureOptions(s),
  });
  const names = [...s.checkHost, ...s.checkIP];
  return {
    tls,
    checkNames(socket) {
      if (s.checkEmail.length > 0) {
        // With checkEmail, stunnel's three lists as one subject check (subject-checks.ts).
        const cert = peerCertificate(socket);
        return cert ? checkSubject(cert, s) : 'No peer certificate received';
      }
      if (names.length === 0) return undefined;
      const cert = socket.getPeerCertificate();
      if (names.some((n) => checkServerIdentity(n, cert) === undefined)) return undefined;
      return `Certificate does not match any of: ${names.join(', ')}`;
    },
  };
}
