// Prog mode: the program reads the connection on fd 6 and writes it on fd 7, with tcp-environ in
// its environment. A plain connection is handed over as it is (ucspi-tcp's tcpclient execs the
// program on the socket); a TLS one is pumped through pipes, so the program always sees plaintext.
import type { Duplex } from 'node:stream';
import { type ExitStatus, spawnClientProg } from '@ucspi/exec';

/** Run the program on the connection; resolves with how it ended once the bytes stopped moving. */
export async function progMode(
  connection: Duplex,
  argv: readonly string[],
  env: Record<string, string>,
  opts: { plain: boolean; idleTimeoutMs: number; onStreamError: (err: Error) => void },
): Promise<{ pid: number; status: ExitStatus }> {
  // ucspi-tcp's tcpclient becomes the program (exec): a TERM or HUP sent to tcpclient is the
  // program's, and tcpclient ends when it ends. The handlers are in place before the program
  // starts, since it can be running (and be known to others) before the spawn's promise settles:
  // a signal that comes in between is kept and delivered as soon as the program is there.
  let run: Awaited<ReturnType<typeof spawnClientProg>> | undefined;
  const pending: NodeJS.Signals[] = [];
  const forward = (signal: NodeJS.Signals) => (run ? run.kill(signal) : pending.push(signal));
  process.on('SIGTERM', forward);
  process.on('SIGHUP', forward);
  let status: ExitStatus;
  try {
    run = await spawnClientProg(
      connection,
      { argv, env },
      opts.plain
        ? { shareSocket: true }
        : { idleTimeoutMs: opts.idleTimeoutMs, onStreamError: opts.onStreamError },
    );
    for (const signal of pending) run.kill(signal);
    status = await run.exited;
  } finally {
    process.off('SIGTERM', forward);
    process.off('SIGHUP', forward);
  }
  await run.done;
  return { pid: run.pid, status };
}
