// The connections in progress, for USR2: stunnel 5.68 logs them at level 0 (so whatever `debug`
// says), `Active connections:`, one `Active connection N: Service [NAME], T byte(s) sent to TLS,
// S byte(s) sent to socket` line each (the bytes relayed so far), then
// `Listed N active connection(s)`.
import { LOG, type TunnelLog } from './log.js';
import type { Traffic } from './relay.js';

/** Connection number -> its service's name and byte counts, in the order they started. */
export class ActiveConnections {
  readonly #open = new Map<number, { service: string; traffic: Traffic }>();

  /** A connection started (accepted, or refused before any work): its counts, for the relay to update. */
  open(id: number, service: string): Traffic {
    const traffic = { toTls: 0, toSocket: 0 };
    this.#open.set(id, { service, traffic });
    return traffic;
  }

  /** It ended. */
  close(id: number): void {
    this.#open.delete(id);
  }

  /** USR2: the list, in stunnel's words. */
  report(log: TunnelLog): void {
    log.write(LOG.emerg, 'ui', 'Active connections:');
    let n = 0;
    // The newest first, as stunnel 5.68 lists them (observed).
    for (const { service, traffic } of [...this.#open.values()].reverse())
      log.write(
        LOG.emerg,
        'ui',
        `Active connection ${++n}: Service [${service}], ${traffic.toTls} byte(s) sent to TLS, ${traffic.toSocket} byte(s) sent to socket`,
      );
    log.write(LOG.emerg, 'ui', `Listed ${n} active connection(s)`);
  }
}
