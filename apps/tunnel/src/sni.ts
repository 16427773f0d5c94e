// Name-based virtual services (stunnel 5's server-side `sni = PRIMARY:PATTERN`): a secondary
// section has no `accept` of its own; a client of the primary whose TLS server name matches the
// secondary's pattern gets the secondary's certificate, CAs and verify policy during the handshake
// (node:tls's SNICallback), and after the handshake the secondary's connect targets or exec. A name
// no pattern matches, or no name at all, stays with the primary, as stunnel 5.68 does.
import type { SecureContext, TLSSocket } from 'node:tls';
import type { ServerTls } from '@ucspi/tls';
import { LOG, safe } from './log.js';
import type { RuntimeService } from './serve.js';

/** One secondary of a primary service, in the order of the file (the first match wins). */
export interface SniSecondary {
  /** The part after the colon of `sni = PRIMARY:PATTERN`. */
  pattern: string;
  service: RuntimeService;
}

/**
 * Whether a client's server name matches a pattern, as stunnel compares them: case-insensitive; a
 * leading `*` stands for any prefix (so `*.example.org` matches `a.example.org` and
 * `a.b.example.org`, not `example.org`); no other wildcard.
 */
export function sniMatches(servername: string, pattern: string): boolean {
  const name = servername.toLowerCase();
  const want = pattern.toLowerCase();
  if (!want.startsWith('*')) return name === want;
  const suffix = want.slice(1);
  return name.length >= suffix.length && name.endsWith(suffix);
}

/** The primary and pattern of a server section's `sni`, or undefined for a service that is no secondary. */
export function sniTarget(s: RuntimeService['config']): { primary: string; pattern: string } | undefined {
  if (s.client || s.sni === undefined) return undefined;
  const colon = s.sni.indexOf(':');
  return colon < 0 ? undefined : { primary: s.sni.slice(0, colon), pattern: s.sni.slice(colon + 1) };
}

/**
 * Give every primary its secondaries. The primary is the first section of that name at or before
 * the secondary (the configuration check has made sure it exists and is a server).
 */
export function linkSniSecondaries(services: readonly RuntimeService[]): void {
  services.forEach((service, i) => {
    const target = sniTarget(service.config);
    if (!target) return;
    const primary = services.slice(0, i + 1).find((p) => p.config.name === target.primary);
    if (!primary) return;
    primary.sniSecondaries ??= [];
    primary.sniSecondaries.push({ pattern: target.pattern, service });
  });
}

/** The server side of one connection to a primary, and the service the client's name chose. */
export interface SniRoute {
  serverTls: ServerTls;
  /** The service the client's server name chose (the primary until a pattern matched). */
  chosen(): RuntimeService;
}

type Say = (level: number, text: string) => void;

/** What node:tls keeps of a socket's native side: the verify mode can be changed during the handshake. */
interface NativeTls {
  setVerifyMode?(request: boolean, reject: boolean): void;
}

/**
 * The TLS side of one connection accepted by `primary`: with secondaries, an SNICallback that picks
 * the secondary whose pattern matches (logging stunnel's `SNI:` lines through `say`), switches to
 * its certificate and CAs, and asks for a client certificate as its verify policy says; the
 * verdict on the client's certificate is then the chosen service's. A resumed session skips
 * node:tls's SNICallback (no certificate is sent then): the name the client sent is matched after
 * the handshake instead, before the verdict, so that the connection still goes where its name
 * says and the chosen service's policy judges the certificate kept in the session.
 */
export function routeBySni(primary: RuntimeService, say: Say): SniRoute {
  const base = primary.serverTls!;
  const secondaries = primary.sniSecondaries ?? [];
  if (secondaries.length === 0) return { serverTls: base, chosen: () => primary };
  let chosen = primary;
  let decided = false;
  /** stunnel's choice and log lines for the name a client sent; the secondary, if one matched. */
  const decide = (servername: string | false | null | undefined): SniSecondary | undefined => {
    decided = true;
    if (!servername) {
      say(LOG.notice, 'SNI: no servername received');
      return undefined;
    }
    say(LOG.info, `SNI: requested servername: ${safe(servername)}`);
    const hit = secondaries.find((s) => sniMatches(servername, s.pattern));
    if (!hit) {
      say(LOG.err, `SNI: no pattern matched servername: ${safe(servername)}`);
      return undefined;
    }
    say(LOG.debug, `SNI: matched pattern: ${hit.pattern}`);
    say(LOG.notice, `SNI: switched to service [${hit.service.config.name}]`);
    chosen = hit.service;
    return hit;
  };
  function pick(this: TLSSocket, servername: string, done: (err: Error | null, ctx?: SecureContext) => void) {
    const hit = decide(servername);
    if (!hit) {
      done(null, base.secureContext);
      return;
    }
    const tls = hit.service.serverTls!;
    // The secondary's own request for a client certificate, as stunnel sets the verify mode of the
    // connection when it switches: the CertificateRequest has not been sent yet at this point.
    // node:tls calls SNICallback as a method of the TLSSocket, and `_handle.setVerifyMode` is what
    // its constructor uses for `requestCert`. Were it ever missing, a secondary that requires a
    // certificate would refuse its clients after the handshake (checkPeer): it fails closed.
    const request = !!tls.serverOptions.requestCert;
    if (request !== !!base.serverOptions.requestCert)
      (this as unknown as { _handle?: NativeTls })._handle?.setVerifyMode?.(request, false);
    done(null, tls.secureContext);
  }
  const serverTls: ServerTls = {
    ...base,
    serverOptions: { ...base.serverOptions, SNICallback: pick },
    checkPeer: (socket, remoteHost) => {
      // No SNICallback: no name at all, or a resumed session (TLS 1.3 reports this handshake's name).
      if (!decided) decide(socket.servername);
      return chosen.serverTls!.checkPeer(socket, remoteHost);
    },
  };
  return { serverTls, chosen: () => chosen };
}
