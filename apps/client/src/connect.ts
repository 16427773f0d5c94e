// The connection: a UNIX socket path, or the host's addresses tried in turn with ucspi-tcp's -T
// x+y schedule (tcpclient.c): every address with x seconds, then the ones that timed out again
// with y seconds each; a host with one address gets x+y at once.
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { FatalError } from './errors.js';
import type { ClientOptions } from './options.js';

/** What an attempt gave: the socket, or whether it timed out, or the error. */
export interface Attempt {
  socket?: Socket;
  timedOut?: boolean;
  error?: NodeJS.ErrnoException;
}

/**
 * One connection attempt with a deadline. The socket is paused before it connects, so that
 * nothing the server sends first (a greeting) is read here: it waits in the kernel for whoever
 * reads the connection (the program's fd 6, or TLS).
 */
export function attempt(
  opts: {
    host?: string;
    path?: string;
    port?: number;
    localIp?: string;
    localPort?: number;
    noDelay: boolean;
  },
  timeoutMs: number,
): Promise<Attempt> {
  return new Promise((resolve) => {
    const socket = opts.path
      ? netConnect({ path: opts.path, allowHalfOpen: true })
      : netConnect({
          host: opts.host!,
          port: opts.port!,
          allowHalfOpen: true,
          noDelay: opts.noDelay,
          ...(opts.localIp ? { localAddress: opts.localIp } : {}),
          ...(opts.localPort ? { localPort: opts.localPort } : {}),
        });
    socket.pause();
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ timedOut: true });
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve({ socket });
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ error });
    });
  });
}

/** Writes a warning line (tcpclient's connection failures are warnings, then exit 111). */
export type Warn = (line: string) => void;

/**
 * Connect to `addresses` (IP literals) on `port` as ucspi-tcp does; resolves with the connected
 * socket or throws a FatalError (111) after printing one line per address that failed.
 */
export async function connectTcp(
  o: ClientOptions,
  addresses: readonly string[],
  port: number,
  warn: Warn,
  errorText: (err: unknown) => Promise<string>,
  dial: typeof attempt = attempt,
): Promise<Socket> {
  let [x, y] = o.connectTimeoutMs;
  if (addresses.length === 1) {
    x += y;
    y = 0;
  }
  let todo = [...addresses];
  for (const timeout of [x, y]) {
    const again: string[] = [];
    for (const ip of todo) {
      const r = await dial(
        {
          host: ip,
          port,
          noDelay: o.noDelay,
          ...(o.localIp ? { localIp: o.localIp } : {}),
          ...(o.localPort ? { localPort: o.localPort } : {}),
        },
        timeout,
      );
      if (r.socket) return r.socket;
      if (r.error?.syscall === 'bind')
        throw new FatalError(`unable to bind socket: ${await errorText(r.error)}`, 111);
      if (timeout === x && y > 0 && r.timedOut) {
        again.push(ip);
        continue;
      }
      const reason = r.timedOut ? 'timed out' : await errorText(r.error);
      warn(`tcpclient: unable to connect to ${ip} port ${port}: ${reason}`);
    }
    todo = again;
    if (todo.length === 0) break;
  }
  throw new FatalError('', 111, true);
}

/** Connect to a UNIX socket: one attempt with x+y seconds. */
export async function connectUnix(
  o: ClientOptions,
  path: string,
  errorText: (err: unknown) => Promise<string>,
): Promise<Socket> {
  const r = await attempt({ path, noDelay: false }, o.connectTimeoutMs[0] + o.connectTimeoutMs[1]);
  if (r.socket) return r.socket;
  const reason = r.timedOut ? 'timed out' : await errorText(r.error);
  throw new FatalError(`unable to connect to socket ${path}: ${reason}`, 111);
}

/** The host operand's addresses: an IP literal as is, else through @ucspi/dns (loaded only then). */
export async function resolveHost(
  o: ClientOptions,
  env: Record<string, string | undefined>,
  errorText: (err: unknown) => Promise<string>,
): Promise<string[]> {
  const literal = o.host.replace(/^\[(.*)\]$/, '$1');
  if (isIP(literal)) return [literal];
  const { createDnsClient } = await import('@ucspi/dns');
  let addrs: string[];
  try {
    const dns = createDnsClient(env);
    addrs =
      o.family === 4
        ? await dns.ip4(o.host)
        : o.family === 6
          ? await dns.ip6(o.host)
          : await dns.addresses(o.host);
  } catch (err) {
    const e = err as { code?: string; temporary?: boolean };
    if (e.code === 'UCSPI_ERR_DNS_NOTFOUND' || e.code === 'UCSPI_ERR_DNS_BAD_NAME')
      throw new FatalError(`no IP address for ${o.host}`, 111);
    throw new FatalError(
      `temporarily unable to figure out IP address for ${o.host}: ${await errorText(err)}`,
      111,
    );
  }
  if (addrs.length === 0) throw new FatalError(`no IP address for ${o.host}`, 111);
  return addrs;
}

/** The port operand: a number, or a name from /etc/services. */
export async function resolvePort(name: string): Promise<number> {
  if (/^\d+$/.test(name) && Number(name) <= 65535) return Number(name);
  const { servicePort } = await import('@ucspi/dns');
  const port = await servicePort(name);
  if (port === undefined) throw new FatalError(`unable to figure out port number for ${name}`, 111);
  return port;
}
