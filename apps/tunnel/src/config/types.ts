// The parsed form of an stunnel.conf: global options, and one ServiceConfig per [section] (or the
// single inetd-mode service when the file has none).
import type { SecureVersion } from 'node:tls';
import type { SocketOptionLine } from './socket-values.js';

/** Where an option was written: the file actually read (an included one for `include`), line, text. */
export interface Where {
  file: string;
  line: number;
  /** The line as written (stunnel quotes it so in its messages). */
  text: string;
}

/** A warning about an option that is accepted but not (fully) honoured, with where it was written. */
export interface ConfigWarning {
  where: Where;
  message: string;
}

/** stunnel's verification switches (stunnel 5: verify levels are shorthands for these). */
export interface VerifySettings {
  /** Ask the peer for a certificate (a server side only; a client always gets one). */
  request: boolean;
  /** Refuse a peer without a certificate; undefined: implied by verifyChain/verifyPeer. */
  require: boolean | undefined;
  verifyChain: boolean;
  verifyPeer: boolean;
}

/** One service: a [section], or the inetd-mode service of a file without sections. */
export interface ServiceConfig {
  /** The section name as written (not trimmed); '' for inetd mode. */
  name: string;
  /** The `[name]` line. */
  where: Where | undefined;
  accept: string[];
  connect: string[];
  exec: string | undefined;
  execArgs: string[] | undefined;
  /** `pty = yes`: the `exec` program runs on a new pseudo terminal. */
  pty: boolean;
  client: boolean;
  cert: string | undefined;
  key: string | undefined;
  caFile: string | undefined;
  caPath: string | undefined;
  crlFile: string | undefined;
  crlPath: string | undefined;
  ciphers: string | undefined;
  ciphersuites: string | undefined;
  curves: string | undefined;
  sslVersionMin: SecureVersion | undefined;
  sslVersionMax: SecureVersion | undefined;
  verify: VerifySettings;
  checkHost: string[];
  checkIP: string[];
  checkEmail: string[];
  /** `logId`: what connection log lines are tagged with (log-id.ts). */
  logId: 'sequential' | 'unique' | 'thread' | 'process';
  /** `socket` lines Node.js can honour (config/socket-values.ts), in file order. */
  socketOptions: SocketOptionLine[];
  sni: string | undefined;
  /** `rules = FILE.cdb` (beyond stunnel): the absolute path of sslserver-style rules per client address. */
  rules: string | undefined;
  failover: 'rr' | 'prio';
  delay: boolean;
  /** `acceptProxy = yes` (beyond stunnel): every connection begins with a PROXY header (v1 or v2). */
  acceptProxy: boolean;
  /** `ident = USERNAME`: the client's ident server (RFC 1413) must name this user (ident-check.ts). */
  ident: string | undefined;
  protocol: string | undefined;
  protocolHost: string | undefined;
  protocolUsername: string | undefined;
  protocolPassword: string | undefined;
  protocolAuthentication: string | undefined;
  /** Seconds. */
  timeoutBusy: number;
  timeoutClose: number;
  timeoutConnect: number;
  timeoutIdle: number;
  local: string | undefined;
  /** The service's own `debug` level (0-7), when set in the section. */
  debugLevel: number | undefined;
  /** sessionCacheTimeout (`session`), seconds. */
  sessionTimeout: number;
  /** `sessionResume`: false refuses resumption (no tickets). */
  sessionResume: boolean;
  /** ticketKeySecret and ticketMacSecret (16 or 32 bytes each; server mode). */
  ticketKeySecret: Buffer | undefined;
  ticketMacSecret: Buffer | undefined;
  /** OpenSSL option bits from the `options` lines (node:crypto `SSL_OP_*`). */
  sslOptions: bigint;
  /** `securityLevel` 0-5 (stunnel's default 2). */
  securityLevel: number;
  /** Options that name an endpoint stunnel counts but we do not build (sni secondary, transparent destination). */
  otherEndpoints: number;
  /** `redirect` lines (server mode): where a client that fails verification is relayed instead. */
  redirect: RedirectLine[];
  /** `reset`: end a failed connection with a TCP reset (stunnel's default) rather than a FIN. */
  reset: boolean;
  /** `retry`: restart a connect+exec section (stunnel's local mode) after it ended. */
  retry: boolean;
}

/** One `redirect = [HOST:]PORT` line, kept with where it was written (a name that does not resolve names it). */
export interface RedirectLine {
  value: string;
  where: Where;
}

/** Global options (before the first section). */
export interface GlobalConfig {
  foreground: 'yes' | 'quiet' | 'no';
  pid: string | undefined;
  output: string | undefined;
  /** `log = append | overwrite` for `output`. */
  logOverwrite: boolean;
  /** 0 (emerg) to 7 (debug); default 5 (notice). */
  debugLevel: number;
  debugFacility: string;
  syslog: boolean;
  setuid: string | undefined;
  setgid: string | undefined;
  /** `chroot`: applied once at start, after binding (config/chroot.ts, chroot.ts). */
  chroot: string | undefined;
  /** The global `service`: syslog's tag (default `stunnel`, as stunnel's). */
  service: string | undefined;
  /** Beyond stunnel: seconds connections in progress may take to finish after TERM (default 25). */
  drainTimeout: number;
}

/** A whole configuration. */
export interface TunnelConfig {
  /** The file read (resolved), or `-fd N`. */
  source: string;
  globals: GlobalConfig;
  services: ServiceConfig[];
  /** No [section]: one service on stdin/stdout. */
  inetd: boolean;
  warnings: ConfigWarning[];
  /** Whether line 1 had a UTF-8 byte order mark (stunnel logs it). */
  bom: boolean;
}
