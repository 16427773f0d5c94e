// The connections in progress, for USR2: stunnel 5 logs them at level 0 (so whatever `debug` says),
// `Active connections:`, one `Active connection N: Service [NAME], ...` line each, then
// `Listed N active connection(s)`. The byte counts of stunnel's lines are kept by the relay and
// only known when a connection ends, so they are not listed here.
import { LOG, type TunnelLog } from './log.js';

/** Connection number -> its service's name, in the order they started. */
export class ActiveConnections {
  readonly #open = new Map<number, string>();

  /** A connection started (accepted, or refused before any work). */
  open(id: number, service: string): void {
    this.#open.set(id, service);
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
    for (const service of [...this.#open.values()].reverse())
      log.write(LOG.emerg, 'ui', `Active connection ${++n}: Service [${service}]`);
    log.write(LOG.emerg, 'ui', `Listed ${n} active connection(s)`);
  }
}
