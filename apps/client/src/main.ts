// tcpclient: connect (TCP or a UNIX socket), optionally STARTTLS and TLS with the certificate
// decision, then client mode or the program. One top-level catch picks the exit code.
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { EnvDelta } from '@ucspi/env';
import { connectTcp, connectUnix, resolveHost, resolvePort } from './connect.js';
import { ClientErrorCodes, FatalError } from './errors.js';
import { createLog, errorText, type Log } from './log.js';
import { type ClientOptions, parseOptions, USAGE } from './options.js';

/** Where main() reads and writes. */
export interface ClientIo {
  stderr: NodeJS.WritableStream;
  /** Client mode's input and output descriptors (default 0 and 1). */
  stdinFd?: number;
  stdoutFd?: number;
}

/**
 * Run tcpclient with argv (options and operands, no program name) and env. Resolves with the exit
 * code: 100 for a usage or permanent error, 111 for a temporary one (no connection, TLS failed or
 * refused), the program's own exit code in prog mode (128 + the signal number when it was
 * killed), 0 when client mode ended with the server's EOF.
 */
export async function main(
  argv: readonly string[],
  env: Record<string, string | undefined>,
  io: ClientIo,
): Promise<number> {
  let o: ClientOptions;
  try {
    o = parseOptions(argv);
  } catch (err) {
    if ((err as { code?: string }).code !== ClientErrorCodes.USAGE) throw err;
    if ((err as Error).message) io.stderr.write(`tcpclient: ${(err as Error).message}\n`);
    io.stderr.write(`${USAGE}\n`);
    return 100;
  }
  const log = createLog(o.verbosity, io.stderr);
  try {
    return await run(o, env, io, log);
  } catch (err) {
    if ((err as { code?: string }).code === ClientErrorCodes.FATAL) {
      const fatal = err as FatalError;
      if (!fatal.quiet) log.fatal(fatal.message);
      return fatal.exitCode;
    }
    const e = err as { message?: string; temporary?: boolean };
    log.fatal(e.message ?? String(err));
    return e.temporary === false ? 100 : 111;
  }
}

async function run(
  o: ClientOptions,
  env: Record<string, string | undefined>,
  io: ClientIo,
  log: Log,
): Promise<number> {
  if (o.starttls) {
    const { isClientProtocol } = await import('@ucspi/starttls');
    if (!isClientProtocol(o.starttls)) throw new FatalError(`unknown STARTTLS protocol: ${o.starttls}`, 100);
  }
  const { socket, tls, secure$ } = await open(o, env, log);
  // Each mode loads only what it needs: start-up is part of a one-shot client's speed.
  const environ$ = o.prog.length ? import('./environ.js') : undefined;
  const plainInfo = () => ({
    localIp: socket.localAddress ?? '',
    localPort: socket.localPort ?? 0,
    remoteIp: socket.remoteAddress ?? '',
    remotePort: socket.remotePort ?? 0,
  });
  const unix = o.host.startsWith('/');
  const info = unix ? undefined : environ$ ? (await environ$).connectionInfo(socket) : plainInfo();
  if (info) log.info(`connected to ${info.remoteIp} port ${info.remotePort}`);
  else log.info(`connected to socket ${o.host}`);

  // The program's environment is looked up while TLS is set up; client mode needs none.
  const environ: Promise<EnvDelta> | undefined = environ$?.then((m) =>
    info ? m.tcpEnvironment(o, info, env) : m.unixEnvironment(),
  );
  let connection: Duplex = socket;
  let tlsSocket: TLSSocket | undefined;
  if (tls && secure$) {
    tlsSocket = await (await secure$).secure(o, socket, tls.clientTls, env, log);
    connection = tlsSocket;
    log.info(`tls ${tlsSocket.getProtocol()} ${tlsSocket.getCipher()?.name ?? ''}`);
  }

  if (o.prog.length === 0) {
    const { clientMode } = await import('./client.js');
    const r = await clientMode(connection, {
      stdinFd: io.stdinFd ?? 0,
      stdoutFd: io.stdoutFd ?? 1,
      idleTimeoutMs: o.dataTimeoutMs,
    });
    if (r.error) throw new FatalError(`connection failed: ${r.error}`, 111);
    return 0;
  }
  const delta = (await environ) ?? {};
  if (tlsSocket && o.provider) delta.TLS_PROVIDER = (await environ$!).tlsProvider(tlsSocket);
  return runProgram(o, env, log, connection, delta, !tlsSocket);
}

/**
 * The connection, with the TLS settings and modules loading while it is being made (a network
 * round trip); a bad setting still ends the run before any byte is sent.
 */
async function open(
  o: ClientOptions,
  env: Record<string, string | undefined>,
  log: Log,
): Promise<{
  socket: Socket;
  tls?: Awaited<ReturnType<typeof import('./tls.js').loadTls>>;
  secure$?: Promise<typeof import('./secure.js')>;
}> {
  const tls$ = o.tls ? import('./tls.js').then((m) => m.loadTls(o, env)) : undefined;
  const secure$ = o.tls ? import('./secure.js') : undefined;
  tls$?.catch(() => undefined);
  secure$?.catch(() => undefined);
  if (!o.tls) log.info('using un-encrypted connection');
  let socket: Socket;
  if (o.host.startsWith('/')) socket = await connectUnix(o, o.host, errorText);
  else {
    const port = await resolvePort(o.port!);
    const addresses = await resolveHost(o, env, errorText);
    socket = await connectTcp(o, addresses, port, log.warn, errorText);
  }
  if (!tls$) return { socket };
  let tls: Awaited<typeof tls$>;
  try {
    tls = await tls$;
  } catch (err) {
    socket.destroy();
    throw err;
  }
  log.info(tls.files.certFile ? `using certificate ${tls.files.certFile}` : 'using no client certificate');
  for (const note of tls.files.notes) log.info(note);
  return { socket, tls, ...(secure$ ? { secure$ } : {}) };
}

/** Prog mode: run the program on the connection, exit with its status. */
async function runProgram(
  o: ClientOptions,
  env: Record<string, string | undefined>,
  log: Log,
  connection: Duplex,
  delta: EnvDelta,
  plain: boolean,
): Promise<number> {
  const { childEnv } = await import('@ucspi/env');
  let streamError: string | undefined;
  const { progMode } = await import('./prog.js');
  const { pid, status } = await progMode(connection, o.prog, childEnv(env, delta), {
    plain,
    idleTimeoutMs: o.dataTimeoutMs,
    onStreamError: (err) => {
      streamError = (err as { reason?: string }).reason ?? (err as NodeJS.ErrnoException).code ?? err.message;
    },
  });
  if (status.error) throw new FatalError(`unable to run ${o.prog[0]}: ${await errorText(status.error)}`, 111);
  if (streamError) log.warn(`tcpclient: connection failed: ${streamError}`);
  log.info(`end ${pid} status ${status.code ?? `signal ${status.signal}`}`);
  return status.code ?? 128 + (status.wstat & 0x7f);
}
