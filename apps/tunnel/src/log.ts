// stunnel's log: `YYYY.MM.DD HH:MM:SS LOGn[ID]: text` at syslog levels 0 (emerg) to 7 (debug),
// filtered by `debug`, to stderr or the `output` file. Before the configuration is read, messages
// go to stderr as stunnel prints them then: `[!] text` (error), `[.] text` (notice, info),
// `[ ] text` (debug).
import { closeSync, openSync, writeSync } from 'node:fs';
import { DatagramSender } from '@ucspi/exec';
import type { GlobalConfig } from './config/types.js';

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

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** syslog(3)'s time stamp (RFC 3164), local time: `Dec  2 13:12:31`. */
export function syslogStamp(d = new Date()): string {
  return `${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Facility codes (syslog.h) by the names `debug = FACILITY.LEVEL` takes. */
const FACILITY_CODES: Record<string, number> = {
  kern: 0,
  user: 1,
  mail: 2,
  daemon: 3,
  auth: 4,
  syslog: 5,
  lpr: 6,
  news: 7,
  uucp: 8,
  cron: 9,
  authpriv: 10,
  ftp: 11,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
};

/**
 * Where syslog lines go: /dev/log, as syslog(3); UCSPI_SYSLOG_SOCKET names another socket (a
 * syslog daemon listening elsewhere, or a test's receiver).
 */
export function syslogPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.UCSPI_SYSLOG_SOCKET || '/dev/log';
}

/** syslog = yes (the default): the tag, facility and socket of the log's syslog lines. */
export function syslogSettings(g: GlobalConfig): Parameters<TunnelLog['setSyslog']>[0] {
  return g.syslog
    ? { ident: g.service ?? 'stunnel', facility: g.debugFacility, path: syslogPath() }
    : undefined;
}

/** The tunnel's log. */
export class TunnelLog {
  #fd: number | undefined;
  /** syslog = yes: the socket, the tag and the facility's code, shifted (PRI = that + level). */
  #syslog: { sender: DatagramSender; ident: string; facility: number } | undefined;
  /** What a connection number is shown as, when its service's `logId` is not sequential. */
  readonly #labels = new Map<number, string | number>();

  constructor(
    /** Lines above this level are dropped. */
    public level: number,
    private readonly stderr: NodeJS.WritableStream,
    private output: string | undefined,
    private readonly overwrite = false,
    /** chroot: open `output` only at {@link openOutput}, inside the jail, as stunnel does. */
    defer = false,
  ) {
    if (defer && output !== undefined) this.#pending = [];
    else this.#open(overwrite);
  }

  /** Lines written before a deferred `output` is opened. */
  #pending: string[] | undefined;

  /**
   * Open the deferred `output` now and write the lines kept until then (stunnel opens its log
   * file after chroot and setuid, so the path is inside the jail and the file the user's).
   */
  openOutput(): void {
    const lines = this.#pending;
    if (lines === undefined) return;
    this.#open(this.overwrite);
    this.#pending = undefined;
    for (const line of lines) if (this.#fd !== undefined) writeSync(this.#fd, line);
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

  /**
   * syslog = yes (stunnel's default): every line also goes to syslog, as stunnel 5.68 sends it:
   * `<PRI>Mmm dd hh:mm:ss IDENT: LOGn[ID]: text`, IDENT the global `service` (default `stunnel`, as stunnel's, so that
   * syslog rules and log watchers written for stunnel match) and
   * no pid. The socket is connected now (before a chroot, as openlog(LOG_NDELAY)); nothing
   * listening there is not an error (syslog(3) does not report one either). `undefined`: off.
   */
  setSyslog(settings: { ident: string; facility: string; path: string } | undefined): void {
    if (!settings) {
      this.#syslog?.sender.close();
      this.#syslog = undefined;
      return;
    }
    const sender =
      this.#syslog?.sender.path === settings.path ? this.#syslog.sender : new DatagramSender(settings.path);
    if (this.#syslog && this.#syslog.sender !== sender) this.#syslog.sender.close();
    sender.connect();
    this.#syslog = { sender, ident: settings.ident, facility: (FACILITY_CODES[settings.facility] ?? 3) * 8 };
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
    const sys = this.#syslog;
    if (sys)
      sys.sender.send(
        Buffer.from(`<${sys.facility + level}>${syslogStamp()} ${sys.ident}: LOG${level}[${shown}]: ${text}`),
      );
    // Synchronous to a file, so that a line is on disk before the event it reports goes on;
    // stderr is the stream the caller gave.
    if (this.#pending) this.#pending.push(line);
    else if (this.#fd !== undefined) writeSync(this.#fd, line);
    else this.stderr.write(line);
  }

  close(): void {
    // Never opened (a failure before the chroot): the kept lines go to stderr, as stunnel's.
    for (const line of this.#pending ?? []) this.stderr.write(line);
    this.#pending = undefined;
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
    this.#syslog?.sender.close();
    this.#syslog = undefined;
  }
}
