import { exitCodeOf } from '@ucspi/server';
import { ServerLog } from './log.js';
import { parseOptions, type ServerFlavour, type ServerOptions, USAGE, UsageError } from './options.js';
import { serve } from './serve.js';

/** Where main() writes: stdout for -1, stderr for logs. */
export interface ServerIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** Resolves when the server should stop and drain (the first SIGTERM in the bins). */
  stopSignal?: Promise<void>;
  /** Resolves when a drain should end the connections left at once (a second SIGTERM). */
  endSignal?: Promise<void>;
}

/**
 * Run tcpserver or sslserver with argv (options and operands, no program name) and env.
 * Resolves with the exit code: 100 on usage or permanent errors, 111 on temporary ones, 0 when
 * stopped through `io.stopSignal`. The one place where errors become exit codes.
 */
export async function main(
  flavour: ServerFlavour,
  argv: readonly string[],
  env: Record<string, string | undefined>,
  io: ServerIo,
): Promise<number> {
  let opts: ServerOptions;
  try {
    opts = parseOptions(flavour, argv, env);
  } catch (err) {
    if (err instanceof UsageError) {
      if (/^(illegal option|option requires)/.test(err.message))
        io.stderr.write(`${flavour}: ${err.message}\n`);
      io.stderr.write(`${USAGE[flavour]}\n`);
      return 100;
    }
    throw err;
  }
  const log = new ServerLog(flavour, opts.verbosity, io.stderr, opts.prog[0] ?? '');
  try {
    return await serve(opts, env, io, log);
  } catch (err) {
    // `temporary` says who must act: 111 (try again) unless the error says it is permanent.
    log.fatal((err as Error).message ?? String(err));
    return exitCodeOf(err);
  }
}
