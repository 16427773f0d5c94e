// stunnel's `redirect = [HOST:]PORT` (server mode): a client that fails the service's certificate
// verification is not disconnected but relayed to the redirect targets instead of `connect` (or of
// `exec`). As in stunnel 5.68 (verify.c, client.c), a client that sent no certificate at all is
// redirected too, whatever requireCert says: it was not authenticated. The verdict is the one of
// the service the client's server name chose (an SNI secondary has its own `redirect` lines).
import type { TLSSocket } from 'node:tls';
import type { ServerTls } from '@ucspi/tls';
import { lineMessage } from './config/parse.js';
import type { ServiceConfig } from './config/types.js';
import { LOG } from './log.js';
import type { RuntimeService } from './serve.js';
import { tuningFor } from './socket-options.js';
import { peerCertificate } from './subject-checks.js';
import { Targets } from './targets.js';

/**
 * The redirect targets of a server section: each line resolved now (unless `delay = yes`), so that
 * a name that does not resolve is named with its line; resolves with the lines to print otherwise.
 */
export async function redirectTargets(s: ServiceConfig, label: string): Promise<Targets | string[]> {
  const make = (lines: readonly string[]) =>
    Targets.create(lines, s.failover, s.delay, tuningFor(s.socketOptions, ['r']));
  for (const line of s.redirect) {
    try {
      await make([line.value]);
    } catch (err) {
      return [
        `${label}: ${(err as Error).message}`,
        lineMessage(line.where, 'Cannot resolve redirect target'),
      ];
    }
  }
  return make(s.redirect.map((l) => l.value));
}

/** One connection's verdict on the client, taken while the handshake is checked. */
export interface RedirectWatch {
  /** The server side to hand to the handshake: a refusal is kept here when the chosen service redirects. */
  serverTls: ServerTls;
  /**
   * After the handshake, for the service finally chosen: whether to relay to its redirect
   * targets (logged as stunnel: `Redirecting connection`).
   */
  redirects(chosen: RuntimeService, tls: TLSSocket): boolean;
}

type Say = (level: number, text: string) => void;

/**
 * Wrap `base` (the route's server side) so that a refused client certificate does not end the
 * connection when the chosen service has `redirect` lines: the refusal is logged
 * (`Rejected by CERT: REASON`, as for any refusal here) and remembered instead.
 */
export function watchForRedirect(base: ServerTls, chosen: () => RuntimeService, say: Say): RedirectWatch {
  let refused = false;
  const serverTls: ServerTls = {
    ...base,
    checkPeer(socket, remoteHost) {
      const verdict = base.checkPeer(socket, remoteHost);
      if (verdict.ok || chosen().config.redirect.length === 0) return verdict;
      refused = true;
      // No certificate at all: stunnel logs no rejection, only the redirection.
      if (peerCertificate(socket)) say(LOG.warning, `Rejected by CERT: ${verdict.reason ?? 'refused'}`);
      return { ok: true };
    },
  };
  return {
    serverTls,
    redirects(service, tls) {
      if (service.config.redirect.length === 0) return false;
      if (!refused && peerCertificate(tls)) return false;
      say(LOG.notice, 'Redirecting connection');
      return true;
    },
  };
}
