import { main } from './main.js';
import type { ServerFlavour } from './options.js';

/**
 * The body of both bins: the first SIGTERM drains the server (see DRAINTIMEOUT), a second one ends
 * what is left at once; then exit 0, as the originals' `_exit(0)`.
 */
export function runBin(flavour: ServerFlavour): void {
  // One resolver per TERM, in order: the first drains, the second ends what is left.
  const onTerm: Array<() => void> = [];
  const stopSignal = new Promise<void>((resolve) => onTerm.push(resolve));
  const endSignal = new Promise<void>((resolve) => onTerm.push(resolve));
  process.on('SIGTERM', () => onTerm.shift()?.());
  main(flavour, process.argv.slice(2), process.env, {
    stdout: process.stdout,
    stderr: process.stderr,
    stopSignal,
    endSignal,
  }).then((code) => {
    process.exitCode = code;
    // Programs still running keep their own lives, as with the original's forked children.
    if (code === 0) setImmediate(() => process.exit(0));
  });
}
