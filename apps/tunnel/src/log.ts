// stunnel's log: `YYYY.MM.DD HH:MM:SS LOGn[ID]: text` at syslog levels 0 (emerg) to 7 (debug),
// filtered by `debug`, to stderr or the `output` file. Before the configuration is read, messages
// go to stderr as stunnel prints them then: `[!] text` (error), `[.] text` (notice, info),
// `[ ] text` (debug).
import { closeSync, openSync, writeSync } from 'node:fs';

/** Syslog levels by name, as `debug` takes them. */
export const LOG = { emerg: 0, alert: 1, crit: 2, err: 3, warning: 4, notice: 5, info: 6, debug: 7 } as const;

/** Where a startup message goes before the log is set up, with stunnel's marks. */
export function startupLine(stderr: NodeJS.WritableStream, level: number, text: string): void {
  const mark = level <= LOG.warning ? '!' : level <= LOG.info ? '.' : ' ';
  stderr.write(`[${mark}] ${text}\n`);
}

const pad = (n: number) => String(n).padStart(2, '0');

/** The time stamp stunnel puts first: local time, `2026.11.22 04:08:52`. */
export function stamp(d = new Date()): string {
  return `${d.getFullYear()}.${pad(d.getMonth() + 1)}.${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Control characters a peer could smuggle into a line, shown as `.`, as stunnel's safestring. */
export function safe(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]/g, '.');
}

/** The tunnel's log. */
export class TunnelLog {
  #fd: number | undefined;
  /** What a connection number is shown as, when its service's `logId` is not sequential. */
  readonly #labels = new Map<number, string | number>();

  constructor(
    /** Lines above this level are dropped. */
    public level: number,
    private readonly stderr: NodeJS.WritableStream,
    private output: string | undefined,
    private readonly overwrite = false,
  ) {
    this.#open(overwrite);
  }

  #open(truncate: boolean): void {
    if (this.output === undefined) return;
    // Opened synchronously at start and on USR1: a missing folder is a configuration error.
    this.#fd = openSync(this.output, truncate ? 'w' : 'a', 0o640);
  }

  /** USR1: close and reopen the output file (log rotation); `log = overwrite` truncates it. */
  reopen(): void {
    if (this.output === undefined) return;
    const old = this.#fd;
    this.#open(this.overwrite);
    if (old !== undefined) closeSync(old);
  }

  /** Use another file from now on (a reload that changed `output`). */
  retarget(output: string | undefined, level: number): void {
    this.level = level;
    if (output === this.output) return;
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
    this.output = output;
    this.#open(this.overwrite);
  }

  /** Whether a line of this level would be written (so that costly lines are not built). */
  enabled(level: number): boolean {
    return level <= this.level;
  }

  /** Show connection number `id` as `shown` (logId) until {@link forget}. */
  label(id: number, shown: string | number): void {
    if (shown !== id) this.#labels.set(id, shown);
  }

  /** The connection ended: drop its label. */
  forget(id: number): void {
    this.#labels.delete(id);
  }

  /** One line for connection or thread `id` (`ui`, `main`, a connection number). */
  write(level: number, id: string | number, text: string): void {
    if (level > this.level) return;
    const shown = typeof id === 'number' ? (this.#labels.get(id) ?? id) : id;
    const line = `${stamp()} LOG${level}[${shown}]: ${text}\n`;
    // Synchronous to a file, so that a line is on disk before the event it reports goes on;
    // stderr is the stream the caller gave.
    if (this.#fd !== undefined) writeSync(this.#fd, line);
    else this.stderr.write(line);
  }

  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }
}
