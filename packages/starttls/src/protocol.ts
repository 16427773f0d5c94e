import type { StartTlsErrorCode, StartTlsErrorDetails } from './errors.js';

/** Options of {@link startTlsClient}. Protocols ignore the options they have no use for. */
export interface StartTlsClientOptions {
  /** Deadline of the whole plaintext dialogue in ms, and again of the after-TLS step (default 30 000). */
  timeoutMs?: number;
  /** Longest line accepted from the peer, without its CRLF (default 8192); longer -> UCSPI_ERR_STARTTLS_LINE_TOO_LONG. */
  maxLineLength?: number;
  /** Name for EHLO/LHLO (default os.hostname()). */
  helo?: string;
  /**
   * The server or virtual host: the `to` of an XMPP stream header, the `host:port` target of an
   * HTTP CONNECT (a bare host takes `port`).
   */
  host?: string;
  /** Target port of an HTTP CONNECT when `host` has none. */
  port?: number;
  /** User name for HTTP CONNECT basic proxy authentication. */
  username?: string;
  /** Password for HTTP CONNECT basic proxy authentication (never published in diagnostics). */
  password?: string;
  /**
   * SMTP: log in after TLS (RFC 4954) with `username` and `password`, SASL PLAIN (RFC 4616, one
   * `AUTH PLAIN` with the initial response) or LOGIN (two 334 challenges). Part of the after-TLS
   * step, after the second EHLO, so it needs `afterTls` (or {@link afterTlsClient}). AUTH is sent
   * whether or not the EHLO reply lists the mechanism (as stunnel does); a refusal rejects with
   * UCSPI_ERR_STARTTLS_AUTH (LOGIN's first step: UCSPI_ERR_STARTTLS_AUTH_MECHANISM).
   */
  auth?: 'plain' | 'login';
  /**
   * Called once with the server's greeting (its lines without line ends, as received) as soon as
   * the protocol has read it and found it positive (SMTP/LMTP/FTP 220, POP3 `+OK`, IMAP `* OK`,
   * NNTP 200/201), before the client sends anything. A tunnel passes it to its own plain client,
   * as stunnel's client-mode protocols do. Protocols without a greeting line (connect, ldap,
   * postgres, mysql, xmpp, irc, sieve) never call it. An exception it throws fails the dialogue.
   */
  onGreeting?: (lines: readonly string[]) => void;
  /**
   * `false` skips the protocol's after-TLS step (SMTP/LMTP: EHLO again; ManageSieve: reading the
   * capabilities again): the TLS socket is handed back as soon as the handshake is done, for a
   * caller whose own client starts over inside TLS (a tunnel's plain client says EHLO itself).
   * Default `true`.
   */
  afterTls?: boolean;
}

/** Options of {@link startTlsServer}. */
export interface StartTlsServerOptions {
  /** Deadline of the whole plaintext dialogue in ms (default 30 000). */
  timeoutMs?: number;
  /** Longest command line accepted from the client, without its CRLF (default 8192). */
  maxLineLength?: number;
  /** The server's name in its greeting and replies (default os.hostname()). */
  hostname?: string;
  /**
   * The greeting line to send instead of the protocol's own, without CRLF (a tunnel passes its
   * backend's greeting, e.g. `220 mx.example ESMTP`). It must be a positive greeting of the protocol.
   */
  greeting?: string;
  /** Commands that are not allowed before TLS answered before the connection is dropped (default 10). */
  maxErrors?: number;
}

/**
 * The plaintext conversation a protocol file drives: line and byte reads from the peer, writes to
 * it, and failures with the library's error codes. The core behind it owns framing, the line limit,
 * the deadline and the diagnostics; a protocol never touches the socket.
 */
export interface Dialogue {
  /** `client` or `server`. */
  readonly side: 'client' | 'server';
  /** The protocol's name, for messages. */
  readonly protocol: string;
  /** The options the caller gave (client or server options, per side). */
  readonly options: Readonly<StartTlsClientOptions & StartTlsServerOptions>;
  /** The longest line the core accepts (the option or its default). */
  readonly maxLineLength: number;
  /**
   * The next line from the peer without its line end (CRLF, or a bare LF as many servers and
   * openssl accept). Rejects with LINE_TOO_LONG, EOF, TIMEOUT or SOCKET.
   */
  readLine(): Promise<string>;
  /** Exactly `n` bytes from the peer (binary protocols). `n` above the larger of 65 536 and maxLineLength -> LINE_TOO_LONG. */
  readBytes(n: number): Promise<Buffer>;
  /**
   * The peer's bytes up to and including the first match of `pattern`, read as latin1 text (XML
   * streams). More than `maxBytes` (default maxLineLength) without a match -> LINE_TOO_LONG.
   */
  readUntil(pattern: RegExp, maxBytes?: number): Promise<string>;
  /** Sends `line` and CRLF. `shown` replaces the line in diagnostics (a password redacted). */
  writeLine(line: string, shown?: string): void;
  /** Sends raw bytes (binary protocols); diagnostics show their length and hex, or `shown`. */
  write(data: Buffer | string, shown?: string): void;
  /**
   * Client side: reports the server's greeting once the protocol has accepted it (its lines
   * without line ends); the core passes it to the caller's `onGreeting`. Server side: unused.
   */
  greeted(lines: readonly string[]): void;
  /** Throws a StartTlsError with this code, message and details (the protocol name is added). */
  fail(code: StartTlsErrorCode, message: string, details?: StartTlsErrorDetails): never;
}

/**
 * One STARTTLS protocol: a file in `src/protocols/<name>.ts` exporting `protocol`, and one line in
 * the registry.
 */
export interface StartTlsProtocol {
  /** The name, as in `openssl s_client -starttls NAME` and stunnel's `protocol = NAME`. */
  readonly name: string;
  /** The protocol's usual port (for messages and callers' defaults). */
  readonly defaultPort: number;
  /**
   * Client side, before TLS: runs the dialogue up to and including the server's go-ahead, then
   * resolves. The core refuses anything the server sent after the go-ahead.
   */
  client(dialogue: Dialogue): Promise<void>;
  /** Client side, over TLS, before the socket is handed back (SMTP: EHLO again, its reply consumed). */
  afterTls?(dialogue: Dialogue): Promise<void>;
  /**
   * Server side, before TLS: greets, answers commands, and resolves when the client asked for TLS
   * with the go-ahead to send (with its CRLF). The core checks that nothing was pipelined after the
   * request, sends the go-ahead and hands the socket to the handshake.
   */
  server?(dialogue: Dialogue): Promise<string | Buffer>;
}
