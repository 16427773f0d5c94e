// sslserver's and tcpserver's log wording: the engine's events and the TLS handlers' outcomes
// turned into the originals' lines on stderr, word for word.
import { logField } from '@ucspi/env';
import { type ConnectionInfo, errorStr, type ServerEvent } from '@ucspi/server';
import type { ServerFlavour } from './options.js';

/** The lines of one server, at one verbosity (-q 0, -Q 1, -v 2, -V 3). */
export class ServerLog {
  constructor(
    readonly name: ServerFlavour,
    readonly verbosity: 0 | 1 | 2 | 3,
    private readonly stderr: NodeJS.WritableStream,
    /** The program's name, for `unable to run PROG`. */
    private readonly prog: string,
  ) {}

  /** A -v line: `NAME: LINE`. */
  info(line: string): void {
    if (this.verbosity >= 2) this.stderr.write(`${this.name}: ${line}\n`);
  }

  /** A line shown unless -q: `NAME: LINE` (LINE starts with `warning: `, `error: `, `fatal: `). */
  notice(line: string): void {
    if (this.verbosity > 0) this.stderr.write(`${this.name}: ${line}\n`);
  }

  /** A line shown whatever the verbosity (the development certificate's warning). */
  warnAlways(line: string): void {
    this.stderr.write(`${this.name}: ${line}\n`);
  }

  /** `NAME: fatal: MESSAGE`, unless -q. */
  fatal(message: string): void {
    this.notice(`fatal: ${message}`);
  }

  /** The engine's events, in the originals' words. */
  readonly onEvent = (e: ServerEvent): void => {
    switch (e.type) {
      case 'status':
        // Twice per connection: the line is only built when -v asks for it.
        if (this.verbosity < 2) return;
        this.info(
          this.name === 'sslserver'
            ? `status ${e.active}/${e.limit}/${e.maxPerIp}`
            : `status: ${e.active}/${e.limit}`,
        );
        return;
      case 'ok':
        this.info(`pid ${e.pid} from ${e.info.remoteIp}`);
        this.info(`ok ${e.pid} ${where(e.info)}`);
        return;
      case 'deny':
        if (e.reason === 'maxconip' && !e.fromRule)
          this.info(`WARNING ip connection limit of ${e.limit} exceeded for: ${e.info.remoteIp}`);
        this.info(`pid ${e.pid} from ${e.info.remoteIp}`);
        this.info(
          `deny ${e.pid} ${where(e.info)}${e.reason === 'maxconip' ? ` ip connection limit:${e.limit} exceeded` : ''}`,
        );
        return;
      case 'drop':
        // The original's child logs its pid, then dies on the unreadable rules (exit 111).
        this.info(`pid ${e.pid} from ${e.info.remoteIp}`);
        this.notice(`warning: dropping connection, unable to read ${e.file}: ${errorStr(e.error)}`);
        return;
      case 'end':
        // The original's child says why it could not run prog before it exits 111; the parent then
        // logs `end` (tcpserver) or `ended by` (sslserver) with the raw wait status.
        if (e.error)
          this.notice(`warning: dropping connection, unable to run ${this.prog}: ${errorStr(e.error)}`);
        this.info(`${this.name === 'sslserver' ? 'ended by' : 'end'} ${e.pid} status ${e.status}`);
        return;
      case 'proxy':
        this.notice(
          `warning: dropping connection from ${e.peerIp}:${e.peerPort}, bad PROXY header: ${e.error.message}`,
        );
        return;
      case 'drain':
        // Nothing to wait for: as silent as the originals, which just exit.
        if (e.connections === 0) return;
        if (e.phase === 'start') this.info(`draining ${e.connections} connections`);
        else
          this.notice(
            `warning: ${e.phase === 'deadline' ? 'drain deadline passed, ' : ''}ending ${e.connections} connections`,
          );
        return;
      case 'warning':
        this.notice(`warning: ${(e.error as Error)?.message ?? String(e.error)}`);
        return;
    }
  };

  /**
   * The man page's line for TLS that failed: `error: (111) unable to accept TLS for pid: PID
   * REASON` for the handshake, `unable to speak TLS` after it; REASON in OpenSSL's words when there
   * is one. Before its handshake a normal connection has no program yet: the server's pid stands
   * in for it, as for a deny.
   */
  tlsFailed(verb: 'accept' | 'speak', pid: number, reason: string | undefined): void {
    this.notice(`error: (111) unable to ${verb} TLS for pid: ${pid}${reason ? ` ${reason}` : ''}`);
  }

  /** A client certificate refused under -m/-z (`no client certificate`, ...). */
  certRefused(reason: string | undefined): void {
    this.notice(`error: ${reason ?? 'client certificate rejected'}`);
  }

  /** With -m/-z and -v, after an accepted client certificate (the man page's info line). */
  clientCertAccepted(pid: number): void {
    this.info(`info: valid client cert received for pid: ${pid}`);
  }

  /** The `tls PID accept` line; -V adds protocol and cipher as in the man page. */
  tlsAccepted(pid: number, negotiated: () => { protocol: string; cipher: string }): void {
    if (this.verbosity < 2) return;
    if (this.verbosity < 3) {
      this.info(`tls ${pid} accept`);
      return;
    }
    const n = negotiated();
    this.info(`tls ${pid} accept ${n.protocol}:${n.cipher}`);
  }
}

/** `LOCALHOST:LOCALIP:LOCALPORT REMOTEHOST:REMOTEIP:REMOTEINFO:REMOTEPORT`, fields sanitised. */
function where(c: ConnectionInfo): string {
  return `${logField(c.localHost)}:${c.localIp}:${c.localPort} ${logField(c.remoteHost)}:${c.remoteIp}:${logField(c.remoteInfo)}:${c.remotePort}`;
}
