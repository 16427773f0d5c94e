import { main } from './main.js';
import type { ServerFlavour } from './options.js';

/** The body of both bins: SIGTERM stops the server with exit 0, as the originals' `_exit(0)`. */
export function runBin(flavour: ServerFlavour): void {
  const stopSignal = new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
  });
  main(flavour, process.argv.slice(2), process.env, {
    stdout: process.stdout,
    stderr: process.stderr,
    stopSignal,
  }).then((code) => {
    process.exitCode = code;
    // Programs still running keep their own lives, as with the original's forked children.
    if (code === 0) setImmediate(() => process.exit(0));
  });
}
