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
  const run = await spawnClientProg(
    connection,
    { argv, env },
    opts.plain
      ? { shareSocket: true }
      : { idleTimeoutMs: opts.idleTimeoutMs, onStreamError: opts.onStreamError },
  );
  // ucspi-tcp's tcpclient becomes the program (exec): a TERM or HUP sent to tcpclient is the
  // program's, and tcpclient ends when it ends.
  const forward = (signal: NodeJS.Signals) => run.kill(signal);
  process.on('SIGTERM', forward);
  process.on('SIGHUP', forward);
  const status = await run.exited;
  process.off('SIGTERM', forward);
  process.off('SIGHUP', forward);
  await run.done;
  return { pid: run.pid, status };
}
