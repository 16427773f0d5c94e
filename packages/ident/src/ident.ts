// RFC 1413 ident lookups as ucspi-tcp's remoteinfo.c does them: from the connection's local address
// to port 113 of the peer, one query `REMOTEPORT , LOCALPORT\r\n`, one reply line, everything within
// one deadline. The answer is what follows the third colon of the reply with every space, tab and
// CR removed, at most 257 bytes; a reply with fewer colons (an ERROR reply) gives an empty answer,
// which tcpserver still sets as an empty TCPREMOTEINFO. No connection, a reset, a timeout or EOF
// before the end of the line: no answer at all (TCPREMOTEINFO unset).
import diagnostics from 'node:diagnostics_channel';
import { connect, isIPv6 } from 'node:net';
import { debuglog } from 'node:util';

const queryChannel = diagnostics.channel('ucspi:ident:query');
const debug = debuglog('ucspi');

/** The ident service's port (RFC 1413 section 1). */
export const IDENT_PORT = 113;

/** One ident lookup: the connection as the server sees it, and how long to wait. */
export interface IdentQuery {
  /** The peer's address: where the ident server is asked. */
  remoteIp: string;
  remotePort: number;
  /** The server's own address of the connection: the query leaves from there (any port). */
  localIp: string;
  localPort: number;
  /** The deadline for the whole exchange, connect included (tcpserver -t, in ms). */
  timeoutMs: number;
  /** The ident server's port; 113 unless a test says otherwise. */
  port?: number;
  /**
   * A deadline of its own for the connection to the ident server, in ms; `timeoutMs` then counts
   * from the connection, for the reply (stunnel's TIMEOUTconnect, then TIMEOUTbusy).
   */
  connectTimeoutMs?: number;
}

/** How one lookup went, for callers that report more than the answer (ucspi-tunnel's stunnel lines). */
export interface IdentResult {
  /** What {@link identLookup} resolves with. */
  answer: string | undefined;
  /** The reply as received up to its newline (latin1, the newline left out); undefined without one. */
  line?: string;
  /** Whether the connection to the ident server was made. */
  connected: boolean;
  /**
   * `answered`; `timeout` (the whole deadline); `connect timeout` (connectTimeoutMs); `no complete
   * reply` (EOF before the newline); `reply line too long`; or the socket error's code (`ECONNREFUSED`, ...).
   */
  outcome: string;
}

/** The longest answer kept, as remoteinfo.c stops once it holds more than 256 bytes. */
const MAX_ANSWER = 257;

/**
 * Parse a reply line the way remoteinfo.c reads it: spaces, tabs and CRs are dropped everywhere,
 * the answer starts after the third colon and ends at the newline (or after 257 bytes). Returns
 * undefined when the line has no newline yet (more must be read).
 */
export function parseIdentReply(data: Buffer): string | undefined {
  let colons = 0;
  const out: number[] = [];
  for (const ch of data) {
    if (ch === 0x20 || ch === 0x09 || ch === 0x0d) continue;
    if (ch === 0x0a) return Buffer.from(out).toString('latin1');
    if (colons < 3) {
      if (ch === 0x3a) colons++;
    } else {
      out.push(ch);
      if (out.length >= MAX_ANSWER) return Buffer.from(out).toString('latin1');
    }
  }
  return undefined;
}

/**
 * Ask the peer's ident server who owns the connection. Resolves with the answer (possibly empty),
 * or undefined when there is none; never rejects.
 */
export async function identLookup(q: IdentQuery): Promise<string | undefined> {
  return (await identQuery(q)).answer;
}

/** {@link identLookup} with the details: the reply line and why there is no answer. Never rejects. */
export function identQuery(q: IdentQuery): Promise<IdentResult> {
  return new Promise((resolve) => {
    const started = performance.now();
    let settled = false;
    let connected = false;
    let buffered = Buffer.alloc(0);
    const finish = (answer: string | undefined, why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(connectTimer);
      socket.destroy();
      if (queryChannel.hasSubscribers)
        queryChannel.publish({ ...q, answer, outcome: why, ms: performance.now() - started });
      debug('ident %s:%d for %d , %d: %s', q.remoteIp, q.port ?? IDENT_PORT, q.remotePort, q.localPort, why);
      const nl = buffered.indexOf(0x0a);
      const line =
        answer === undefined ? undefined : buffered.subarray(0, nl < 0 ? undefined : nl).toString('latin1');
      resolve({ answer, connected, outcome: why, ...(line !== undefined ? { line } : {}) });
    };
    const socket = connect({
      host: q.remoteIp,
      port: q.port ?? IDENT_PORT,
      localAddress: q.localIp,
      family: isIPv6(q.remoteIp) ? 6 : 4,
    });
    const onTimeout = () => finish(undefined, 'timeout');
    let timer = q.connectTimeoutMs === undefined ? setTimeout(onTimeout, q.timeoutMs) : undefined;
    const connectTimer =
      q.connectTimeoutMs !== undefined
        ? setTimeout(() => finish(undefined, 'connect timeout'), q.connectTimeoutMs)
        : undefined;
    socket.on('connect', () => {
      connected = true;
      if (connectTimer) {
        clearTimeout(connectTimer);
        timer = setTimeout(onTimeout, q.timeoutMs);
      }
      socket.write(`${q.remotePort} , ${q.localPort}\r\n`);
    });
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const answer = parseIdentReply(buffered);
      if (answer !== undefined) finish(answer, 'answered');
      // remoteinfo.c would read on until its deadline and then fail: fail now, without the memory.
      else if (buffered.length > 64 * 1024) finish(undefined, 'reply line too long');
    });
    socket.on('end', () => finish(undefined, 'no complete reply'));
    socket.on('error', (err: NodeJS.ErrnoException) => finish(undefined, err.code ?? 'error'));
  });
}
