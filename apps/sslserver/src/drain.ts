// The end of a run: the first TERM drains (the port refuses at once, connections in progress
// finish until DRAINTIMEOUT), a second TERM ends what is left at once.
import type { UcspiServer } from '@ucspi/server';
import { secondsSetting } from './tls-setup.js';

type Env = Record<string, string | undefined>;

/**
 * DRAINTIMEOUT: seconds the connections in progress may take to finish after TERM before the
 * server ends them (a TCP reset and SIGTERM to the program) and exits; 0 ends them at once.
 * Default 25: under the grace periods after which common supervisors send SIGKILL (Kubernetes 30 s,
 * systemd 90 s), so that the server, not the kernel, ends the last connections and does so
 * visibly. Anything but a whole number is a configuration error (exit 100).
 */
export function drainTimeoutMs(env: Env): number {
  return secondsSetting(env, 'DRAINTIMEOUT', 25);
}

/** Drain `server` within `deadlineMs`; `endNow` (a second TERM) ends the rest at once. */
export async function drainServer(
  server: UcspiServer,
  deadlineMs: number,
  endNow?: Promise<void>,
): Promise<void> {
  const drained = server.drain(deadlineMs);
  endNow?.then(() => server.drain(0));
  await drained;
}
