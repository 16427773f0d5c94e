import { isIP, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { createDnsClient, type DnsClient, servicePort } from '@ucspi/dns';
import {
  type ConnectionInfo,
  childEnvList,
  EnvBase,
  encodeEnvList,
  logField,
  modSslEnv,
  sslEnv,
  tcpEnv,
  unmapIPv4,
} from '@ucspi/env';
import {
  type ExitStatus,
  killIpOptions,
  listenPausable,
  nativeSpawn,
  type PausableListener,
  pumpStreams,
  spawnHandOver,
  spawnOnSocket,
  spawnPumped,
  spawnUcspiTls,
} from '@ucspi/exec';
import { identLookup } from '@ucspi/ident';
import { errorStr, type RuleMatch, RulesFile } from '@ucspi/rules';
import { developmentCertificate, loadServerTls, readKeyPasswordFromFd, type ServerTls } from '@ucspi/tls';
import { opensslReason, surfaceTlsErrors, tlsHandshake } from './handshake.js';
import { parseOptions, type ServerFlavour, type ServerOptions, USAGE, UsageError } from './options.js';
import { HandlerStartError, type SecureResult, startTlsHandler, type TlsHandler } from './privsep.js';

/** Where main() writes: stdout for -1, stderr for logs. */
export interface ServerIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** Resolves when the server should stop (SIGTERM in the bins). */
  stopSignal?: Promise<void>;
}

/** A fatal startup error: the message is printed as `NAME: fatal: MESSAGE`. */
class FatalError extends Error {
  constructor(
    message: string,
    readonly temporary: boolean,
  ) {
    super(message);
  }
}

/**
 * Run tcpserver or sslserver with argv (options and operands, no program name) and env.
 * Resolves with the exit code: 100 on usage or permanent errors, 111 on temporary ones, 0 when
 * stopped through `io.stopSignal`.
 */
export async function main(
  flavour: ServerFlavour,
  argv: readonly string[],
  env: Record<string, string | undefined>,
  io: ServerIo,
): Promise<number> {
  let opts: ServerOptions;
  try {
    opts = parseOptions(flavour, argv, env);
  } catch (err) {
    if (err instanceof UsageError) {
      if (/^(illegal option|option requires)/.test(err.message))
        io.stderr.write(`${flavour}: ${err.message}\n`);
      io.stderr.write(`${USAGE[flavour]}\n`);
      return 100;
    }
    throw err;
  }
  try {
    return await serve(opts, env, io);
  } catch (err) {
    if (err instanceof FatalError) {
      if (opts.verbosity > 0) io.stderr.write(`${flavour}: fatal: ${err.message}\n`);
      return err.temporary ? 111 : 100;
    }
    const e = err as { code?: string; message?: string; temporary?: boolean };
    if (opts.verbosity > 0) io.stderr.write(`${flavour}: fatal: ${e.message ?? String(err)}\n`);
    return e.temporary === false ? 100 : 111;
  }
}

/** An address as the originals print it: IPv4-mapped IPv6 unmapped, no `%scope` suffix. */
function plainIp(address: string | undefined): string {
  return unmapIPv4(address ?? '').replace(/%.*$/, '');
}

/** What loadTls read, kept for the privilege-separated handler (which loads it again). */
interface LoadedTls {
  tls: ServerTls;
  /** The environment the certificates were loaded from (the development certificate filled in). */
  tlsEnv: Record<string, string | undefined>;
  keyPassword?: Buffer;
}

async function loadTls(
  opts: ServerOptions,
  env: Record<string, string | undefined>,
  io: ServerIo,
): Promise<LoadedTls> {
  const keyPassword = opts.keyPasswordFd3 ? await readKeyPasswordFromFd(3) : undefined;
  let tlsEnv = env;
  if (!env.CERTFILE && !env.CERTCHAINFILE) {
    // No certificate configured: use a development certificate and say so loudly.
    const dev = await developmentCertificate(env);
    io.stderr.write(`${opts.flavour}: warning: ${dev.warning}\n`);
    tlsEnv = { ...env, CERTFILE: dev.certFile, KEYFILE: dev.keyFile };
  }
  const tls = await loadServerTls(tlsEnv, {
    clientCert: opts.clientCert,
    ...(keyPassword !== undefined ? { keyPassword } : {}),
  });
  if (opts.verbosity >= 2) for (const line of tls.describe()) io.stderr.write(`${opts.flavour}: ${line}\n`);
  return { tls, tlsEnv, ...(keyPassword !== undefined ? { keyPassword } : {}) };
}

/**
 * SSL_CHROOT, SSL_UID and SSL_GID: where the original's per-connection TLS handler confines
 * itself. Like the original, SSL_UID and SSL_GID fall back to -u and -g, and SSL_USER and
 * SSL_GROUP are only documentation (the original reads neither). Undefined when none is set.
 */
function jailSettings(
  opts: ServerOptions,
  env: Record<string, string | undefined>,
): { root?: string; uid?: number; gid?: number } | undefined {
  if (opts.flavour !== 'sslserver' || !(env.SSL_CHROOT || env.SSL_UID || env.SSL_GID)) return undefined;
  const id = (name: 'SSL_UID' | 'SSL_GID', fallback: number | undefined) => {
    const v = env[name];
    if (!v) return fallback;
    if (!/^\d+$/.test(v)) throw new FatalError(`${name} must be a numeric id, not ${v}`, false);
    return Number(v);
  };
  const uid = id('SSL_UID', opts.uid);
  const gid = id('SSL_GID', opts.gid);
  if (!nativeSpawn)
    throw new FatalError(
      'SSL_CHROOT, SSL_UID and SSL_GID need the native spawner of @ucspi/exec (Linux, built at install)',
      false,
    );
  return {
    ...(env.SSL_CHROOT ? { root: env.SSL_CHROOT } : {}),
    ...(uid !== undefined ? { uid } : {}),
    ...(gid !== undefined ? { gid } : {}),
  };
}

/**
 * The address to bind for a host operand: an IP literal as is; a name through @ucspi/dns (djbdns
 * qualification, $DNSCACHEIP), its first address, or with -4/-6 its first of that family
 * (tcpserver: IPv4 only, as ucspi-tcp).
 * The originals' wording on failure: tcpserver `temporarily unable to figure out IP address for
 * NAME: REASON` / `no IP address for NAME`, sslserver the same with a colon after `for`.
 */
async function bindAddress(
  operand: string,
  family: 4 | 6 | undefined,
  dns: DnsClient,
  flavour: ServerFlavour,
): Promise<string> {
  if (isIP(operand.replace(/%.*$/, ''))) return operand;
  const sep = flavour === 'sslserver' ? ': ' : ' ';
  let addresses: string[];
  try {
    // ucspi-tcp's tcpserver is IPv4 only (dns_ip4_qualify); sslserver takes either family.
    const wanted = flavour === 'tcpserver' ? 4 : family;
    addresses =
      wanted === 4
        ? await dns.ip4(operand)
        : wanted === 6
          ? await dns.ip6(operand)
          : await dns.addresses(operand);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== 'UCSPI_ERR_DNS_NOTFOUND')
      throw new FatalError(
        `temporarily unable to figure out IP address for${sep}${operand}: ${(err as Error).message}`,
        true,
      );
    addresses = [];
  }
  const first = addresses[0];
  if (first === undefined) throw new FatalError(`no IP address for${sep}${operand}`, true);
  return first;
}

async function serve(
  opts: ServerOptions,
  env: Record<string, string | undefined>,
  io: ServerIo,
): Promise<number> {
  const name = opts.flavour;
  // The programs' base environment, prepared once: reading process.env goes through the C++ layer
  // for every variable, and its NAME=value strings would be rebuilt on every connection otherwise.
  const baseEnv = new EnvBase(env);
  const jailed = jailSettings(opts, env);
  const log = (line: string) => {
    if (opts.verbosity >= 2) io.stderr.write(`${name}: ${line}\n`);
  };
  const loaded = name === 'sslserver' ? await loadTls(opts, env, io) : undefined;
  const tls = loaded?.tls;
  const rules = opts.rules !== undefined ? new RulesFile(opts.rules) : undefined;
  const dns = createDnsClient(env);
  // Host `0` means every IPv4 address, as in the originals; a name is looked up through @ucspi/dns.
  let host =
    opts.host === '0'
      ? '0.0.0.0'
      : opts.host === ':0'
        ? '::'
        : await bindAddress(opts.host, opts.family, dns, name);
  // -I: an IPv6 link-local address is only meaningful on one interface: bind with that scope.
  const linkLocal = isIP(host) === 6 && /^fe[89ab]/i.test(host);
  if (opts.netInterface && linkLocal && !host.includes('%')) host = `${host}%${opts.netInterface}`;
  const port = await servicePort(opts.port);
  if (port === undefined) throw new FatalError(`unable to figure out port number for ${opts.port}`, true);

  // allowHalfOpen: the peer's EOF must only end the program's input; pauseOnConnect: no byte is
  // read before the program (or the TLS layer) owns the socket.
  const peerAddress = new WeakMap<Socket, string>();
  // Until the server is ready (handler started, privileges dropped) connections stay in the
  // backlog; where accepting cannot be paused they are held here and started then.
  const early: Socket[] = [];
  let onConnection = (socket: Socket) => {
    if (socket.remoteAddress) peerAddress.set(socket, socket.remoteAddress);
    early.push(socket);
  };
  const server: PausableListener = await listenPausable(
    { allowHalfOpen: true, pauseOnConnect: true },
    { host, port, backlog: opts.backlog },
    (socket) => onConnection(socket),
  ).catch((err: NodeJS.ErrnoException) => {
    throw new FatalError(`unable to bind: ${errorStr(err)}`, true);
  });
  server.pause();
  // SSL_CHROOT/SSL_UID/SSL_GID: the TLS side runs in a handler process that confines itself; it is
  // forked now, while this process still has the privileges it needs to read the key and chroot.
  let handler: TlsHandler | undefined;
  if (jailed && loaded) {
    const tlsEnv: Record<string, string> = {};
    for (const [k, v] of Object.entries(loaded.tlsEnv)) if (v !== undefined) tlsEnv[k] = v;
    try {
      handler = await startTlsHandler(
        {
          tlsEnv,
          clientCert: opts.clientCert,
          ...(loaded.keyPassword !== undefined ? { keyPassword: loaded.keyPassword.toString('base64') } : {}),
          ...jailed,
          handshakeTimeoutMs: opts.handshakeTimeout * 1000,
          idleTimeoutMs: opts.idleTimeout * 1000,
          ...(opts.banner ? { banner: opts.banner } : {}),
          nagle: !opts.noDelay,
        },
        env,
      );
    } catch (err) {
      server.close();
      if (err instanceof HandlerStartError) throw new FatalError(err.message, err.temporary);
      throw err;
    }
  }
  try {
    if (opts.gid !== undefined) {
      if (!process.setgid) throw new Error('setgid is not available on this platform');
      process.setgid(opts.gid);
    }
    if (opts.uid !== undefined) {
      if (!process.setuid) throw new Error('setuid is not available on this platform');
      process.setuid(opts.uid);
    }
  } catch (err) {
    server.close();
    throw new FatalError(`unable to set ${opts.uid !== undefined ? 'uid' : 'gid'}: ${errorStr(err)}`, true);
  }
  const address = server.address();
  const localPort = typeof address === 'object' && address ? address.port : 0;
  if (opts.printPort) io.stdout.write(`${localPort}\n`);

  let children = 0;
  // sslserver's MAXCONIP: programs per client address, from the environment (global) or from a
  // rule's +MAXCONIP=n instruction, capped at -c; 0 means no limit. tcpserver has none.
  const globalMaxconip = name === 'sslserver' ? Math.min(Number(env.MAXCONIP ?? 0), opts.limit) : 0;
  if (name === 'sslserver' && env.MAXCONIP !== undefined && !/^\d+$/.test(env.MAXCONIP))
    throw new FatalError(`MAXCONIP must be a whole number, not ${env.MAXCONIP}`, false);
  const perIp = new Map<string, number>();
  // -c: connections libuv had already accepted when the last slot was taken (the listener is paused
  // then, see onConnection) are held here, unread, until a slot frees.
  const waiting: Socket[] = [];
  // Twice per connection: the line is only built when -v asks for it.
  const status = () => {
    if (opts.verbosity < 2) return;
    log(
      name === 'sslserver'
        ? `status ${children}/${opts.limit}/${globalMaxconip}`
        : `status: ${children}/${opts.limit}`,
    );
  };
  status();

  const release = () => {
    children--;
    status();
    const next = waiting.shift();
    if (next) start(next);
    // -c: accept again once a slot is free (see the connection handler).
    else if (children < opts.limit) server.resume();
  };

  const start = (socket: Socket) => {
    if (socket.destroyed) {
      const next = waiting.shift();
      if (next) start(next);
      return;
    }
    children++;
    status();
    handle(socket).catch((err: unknown) => {
      if (opts.verbosity > 0) io.stderr.write(`${name}: warning: ${(err as Error).message}\n`);
      socket.destroy();
      release();
    });
  };

  /** Wait for the TLS handshake, at most -T seconds. */
  const handshake = (tlsSocket: TLSSocket) => tlsHandshake(tlsSocket, opts.handshakeTimeout * 1000);

  /**
   * The man page's line for a failed handshake: `sslserver: error: (111) unable to accept TLS for
   * pid: PID REASON`, REASON in OpenSSL's words when there is one. Before its handshake a normal
   * connection has no program yet: the server's pid stands in for it, as for a deny.
   */
  const tlsError = (verb: 'accept' | 'speak', pid: number, reason: string | undefined) => {
    if (opts.verbosity > 0)
      io.stderr.write(
        `${name}: error: (111) unable to ${verb} TLS for pid: ${pid}${reason ? ` ${reason}` : ''}\n`,
      );
  };
  const acceptFailed = (pid: number, reason: string | undefined) => tlsError('accept', pid, reason);
  /** The man page's line for a connection whose TLS failed after the handshake (reset, alert, bad record). */
  const speakFailed = (pid: number, reason: string | undefined) => tlsError('speak', pid, reason);

  /** A client certificate refused under -m/-z (`no client certificate`, ...). */
  const certRefused = (reason: string | undefined) => {
    if (opts.verbosity > 0) io.stderr.write(`${name}: error: ${reason ?? 'client certificate rejected'}\n`);
  };

  /** With -m/-z and -v, after an accepted client certificate (the man page's info line). */
  const logClientCert = (pid: number) => {
    if (opts.clientCert !== 'none') log(`info: valid client cert received for pid: ${pid}`);
  };

  /**
   * sslserver -n (UCSPI-TLS): the program talks plaintext on the raw socket (fd 0/1) and writes
   * `y` or `Y` on SSLCTLFD to start TLS; the server then runs the handshake on the raw socket and
   * pumps between TLS and SSLREADFD/SSLWRITEFD. Plaintext the client pipelined after its STARTTLS
   * that the program did not read stays in the socket and is fed to the TLS layer as handshake
   * bytes (which fails the handshake): it is never delivered to the program as if it were
   * protected (RFC 3207 section 6).
   */
  const handleUcspiTls = async (
    socket: Socket,
    conn: ConnectionInfo,
    remoteIp: string,
    where: string,
    rulesEnv: Array<[string, string]>,
    remoteHost: string | undefined,
  ): Promise<void> => {
    if (!tls) return;
    // -B in -n mode goes out on the plain socket, before the program runs.
    if (opts.banner) socket.write(opts.banner);
    const run = await spawnUcspiTls(
      socket,
      {
        argv: opts.prog,
        env: childEnvList(baseEnv, sslEnv(conn), opts.tcpEnv ? tcpEnv(conn) : {}, rulesEnv),
      },
      { handOver: handler !== undefined },
    );
    log(`pid ${run.pid} from ${remoteIp}`);
    log(`ok ${run.pid} ${where}`);
    run.control.on('error', () => undefined);
    run.read.on('error', () => undefined);
    run.write.on('error', () => undefined);
    const closeAll = () => {
      socket.destroy();
      run.control.destroy();
      run.read.destroy();
      run.write.destroy();
    };
    const request = await new Promise<string | undefined>((resolve) => {
      run.control.once('data', (b: Buffer) => resolve(b.subarray(0, 1).toString('latin1')));
      run.control.once('end', () => resolve(undefined));
      run.control.once('close', () => resolve(undefined));
      run.exited.then(() => resolve(undefined));
    });
    if (request !== 'y' && request !== 'Y') {
      // No TLS requested: the program keeps the plain socket; only our copy is closed.
      closeAll();
      logEnd(run.pid, await run.exited);
      return;
    }
    run.control.pause();
    run.reclaimSocket();
    socket.setNoDelay(true);
    if (handler) {
      const { id, secure } = handler.accept(socket, {
        ...(remoteHost !== undefined ? { remoteHost } : {}),
        modSsl: request === 'Y',
        banner: false,
      });
      const r = await secure;
      if (!r.ok) {
        tlsFailed(r, run.pid);
        handler.abort(id);
        closeAll();
        run.kill('SIGTERM');
      } else {
        logClientCert(run.pid);
        logTls(run.pid, r.protocol, r.cipher);
        if (request === 'Y') run.control.write(encodeEnvList(r.env ?? {}));
        const { idle, error } = await handler.pump(id, run.read, run.write);
        if (error !== undefined) speakFailed(run.pid, error || undefined);
        if (idle) run.kill('SIGTERM');
        closeAll();
      }
    } else {
      const tlsSocket = new TLSSocket(socket, { isServer: true, ...tls.serverOptions });
      tlsSocket.on('error', () => undefined);
      const shake = await handshake(tlsSocket);
      const peer = shake.ok ? tls.checkPeer(tlsSocket, remoteHost) : undefined;
      if (!peer?.ok) {
        if (!peer) acceptFailed(run.pid, shake.reason);
        else certRefused(peer.reason);
        tlsSocket.destroy();
        closeAll();
        run.kill('SIGTERM');
      } else {
        surfaceTlsErrors(tlsSocket);
        logClientCert(run.pid);
        logTlsSocket(run.pid, tlsSocket);
        if (request === 'Y') run.control.write(encodeEnvList(modSslEnv(tlsSocket)));
        await pumpStreams(
          tlsSocket,
          run.write,
          run.read,
          {
            idleTimeoutMs: opts.idleTimeout * 1000,
            onIdleTimeout: () => run.kill('SIGTERM'),
            onStreamError: (err) => speakFailed(run.pid, opensslReason(err)),
            ...nagleAfterHandshake(socket),
          },
          run.exited,
        );
        closeAll();
      }
    }
    logEnd(run.pid, await run.exited);
  };

  /**
   * The end of a program: the original's child says why it could not run prog before it exits 111
   * (`NAME: warning: dropping connection, unable to run PROG: REASON`), then the parent logs `end`
   * (tcpserver) or `ended by` (sslserver) with the raw wait status.
   */
  const logEnd = (pid: number, st: ExitStatus) => {
    if (st.error && opts.verbosity > 0)
      io.stderr.write(
        `${name}: warning: dropping connection, unable to run ${opts.prog[0]}: ${errorStr(st.error)}\n`,
      );
    log(`${name === 'sslserver' ? 'ended by' : 'end'} ${pid} status ${st.wstat}`);
  };

  /**
   * -d (the default) asks for Nagle's algorithm. During the TLS handshake it would hold the first
   * response behind the handshake's trailing records (TLS 1.3 session tickets) until the client's
   * delayed ACK, about 40 ms per connection; so TCP_NODELAY stays on until the program's first
   * bytes have left, and Nagle is on from then on.
   */
  const nagleAfterHandshake = (socket: Socket) =>
    opts.noDelay ? {} : { onFirstOutput: () => socket.setNoDelay(false) };

  /** The `tls PID accept` line; -V adds protocol and cipher as in the man page. */
  const logTls = (pid: number, protocol: string | undefined, cipher: string | undefined) => {
    if (opts.verbosity >= 3) log(`tls ${pid} accept ${protocol ?? ''}:${cipher ?? ''}`);
    else log(`tls ${pid} accept`);
  };
  const logTlsSocket = (pid: number, tlsSocket: TLSSocket) => {
    if (opts.verbosity < 3) return logTls(pid, undefined, undefined);
    const c = tlsSocket.getCipher();
    logTls(pid, tlsSocket.getProtocol() ?? '', c.standardName ?? c.name);
  };
  /** A failed handshake or a refused client certificate, reported by the TLS handler. */
  const tlsFailed = (r: SecureResult, pid: number) => {
    if (r.handshake !== true) acceptFailed(pid, r.reason);
    else certRefused(r.reason);
  };

  const handle = async (socket: Socket): Promise<void> => {
    socket.on('error', () => undefined);
    // A connection reset before it was accepted has no peer any more (getpeername fails): nobody
    // is there to serve, so no program is started for it (the original, which learns the address
    // from accept(), would run one that fails on its first write).
    if (!peerAddress.get(socket) && !socket.remoteAddress) {
      socket.destroy();
      release();
      return;
    }
    // -O (the default): replies ignore a source route the client's SYN carried; -o keeps it.
    if (!opts.ipOptions) killIpOptions(socket);
    // -D: TCP_NODELAY. sslserver also sets it during the TLS handshake with -d (see nagleAfterHandshake).
    if (opts.noDelay || (tls && !opts.ucspiTls)) socket.setNoDelay(true);
    const remoteIp = plainIp(peerAddress.get(socket) ?? socket.remoteAddress);
    const localIp = plainIp(socket.localAddress);
    const remotePort = socket.remotePort ?? 0;
    // tcpserver -B writes the banner before any lookup; sslserver sends it through TLS instead.
    // The server's copy of the socket is closed at spawn: wait until the banner has been written.
    const bannerWritten =
      name === 'tcpserver' && opts.banner
        ? new Promise<void>((resolve) => socket.write(opts.banner, () => resolve()))
        : Promise.resolve();
    const localHost = opts.localName ?? (await dns.reverse(localIp).catch(() => undefined));
    let remoteHost: string | undefined;
    if (opts.remoteHost) {
      remoteHost = await (opts.paranoid ? dns.reverseParanoid(remoteIp) : dns.reverse(remoteIp)).catch(
        () => undefined,
      );
    }
    // -r: ask the client's ident server (RFC 1413), within -t seconds, as tcpserver does by default.
    const remoteInfo = opts.remoteInfo
      ? await identLookup({ remoteIp, remotePort, localIp, localPort, timeoutMs: opts.infoTimeout * 1000 })
      : undefined;
    const conn: ConnectionInfo = {
      localIp,
      localPort,
      remoteIp,
      remotePort,
      ...(localHost !== undefined ? { localHost } : {}),
      ...(remoteHost !== undefined ? { remoteHost } : {}),
      ...(remoteInfo !== undefined ? { remoteInfo } : {}),
      ...(opts.netInterface && linkLocal ? { interface: opts.netInterface } : {}),
    };
    let match: RuleMatch | undefined;
    let allowed = true;
    if (rules) {
      try {
        match = await rules.lookup({
          ip: remoteIp,
          ...(remoteHost !== undefined ? { host: remoteHost } : {}),
          ...(remoteInfo !== undefined ? { info: remoteInfo } : {}),
        });
        if (match && !match.allow) allowed = false;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (!(code === 'UCSPI_ERR_RULES_NO_CDB' && opts.allowNoRules)) {
          // The original's child dies on an unreadable cdb: the connection is dropped.
          if (opts.verbosity > 0)
            io.stderr.write(
              `${name}: warning: unable to read ${opts.rules}: ${errorStr((err as { cause?: unknown }).cause ?? err)}\n`,
            );
          allowed = false;
        }
      }
    }
    const where = `${logField(localHost)}:${localIp}:${localPort} ${logField(remoteHost)}:${remoteIp}:${logField(remoteInfo)}:${remotePort}`;
    let limitNote = '';
    if (allowed && name === 'sslserver') {
      const fromRule = match?.env.findLast(([n]) => n === 'MAXCONIP')?.[1];
      const max = fromRule !== undefined ? Math.min(Number(fromRule) || 0, opts.limit) : globalMaxconip;
      if (max > 0 && (perIp.get(remoteIp) ?? 0) >= max) {
        allowed = false;
        if (fromRule === undefined) log(`WARNING ip connection limit of ${max} exceeded for: ${remoteIp}`);
        limitNote = ` ip connection limit:${max} exceeded`;
      }
    }
    if (!allowed) {
      // No program is started for a denied connection: the server's pid stands in for the
      // original's short-lived child, which exited 100 (wait status 25600).
      log(`pid ${process.pid} from ${remoteIp}`);
      log(`deny ${process.pid} ${where}${limitNote}`);
      socket.destroy();
      log(`${name === 'sslserver' ? 'ended by' : 'end'} ${process.pid} status 25600`);
      release();
      return;
    }
    perIp.set(remoteIp, (perIp.get(remoteIp) ?? 0) + 1);
    try {
      await serveAllowed(socket, conn, match, where, remoteIp, remoteHost, bannerWritten);
    } finally {
      const n = (perIp.get(remoteIp) ?? 1) - 1;
      if (n > 0) perIp.set(remoteIp, n);
      else perIp.delete(remoteIp);
    }
  };

  /** Run the program for an allowed connection: plain, pumped through TLS, or UCSPI-TLS (-n). */
  const serveAllowed = async (
    socket: Socket,
    conn: ConnectionInfo,
    match: RuleMatch | undefined,
    where: string,
    remoteIp: string,
    remoteHost: string | undefined,
    bannerWritten: Promise<void>,
  ): Promise<void> => {
    const rulesEnv = match?.env ?? [];
    if (!tls) {
      await bannerWritten;
      const run = await spawnOnSocket(socket, {
        argv: opts.prog,
        env: childEnvList(baseEnv, tcpEnv(conn), rulesEnv),
      });
      log(`pid ${run.pid} from ${remoteIp}`);
      log(`ok ${run.pid} ${where}`);
      logEnd(run.pid, await run.exited);
      release();
      return;
    }
    if (opts.ucspiTls) {
      await handleUcspiTls(socket, conn, remoteIp, where, rulesEnv, remoteHost);
      release();
      return;
    }
    if (handler) {
      await serveThroughHandler(handler, socket, conn, where, remoteIp, remoteHost, rulesEnv);
      release();
      return;
    }
    // sslserver: the TLS handshake only after the rules allowed the connection.
    const tlsSocket = new TLSSocket(socket, { isServer: true, ...tls.serverOptions });
    tlsSocket.on('error', () => undefined);
    const shake = await handshake(tlsSocket);
    if (!shake.ok) {
      acceptFailed(process.pid, shake.reason);
      tlsSocket.destroy();
      socket.destroy();
      release();
      return;
    }
    const peer = tls.checkPeer(tlsSocket, remoteHost);
    if (!peer.ok) {
      certRefused(peer.reason);
      tlsSocket.destroy();
      release();
      return;
    }
    const childVars = childEnvList(
      baseEnv,
      sslEnv(conn),
      // -e: the TCP* set, and PROTO becomes TCP/TCP6 (0.95b and the man page).
      opts.tcpEnv ? tcpEnv(conn) : {},
      opts.modSsl ? modSslEnv(tlsSocket) : {},
      rulesEnv,
    );
    // The pump may meet an error of the connection before spawnPumped returns (the connection
    // failed while the program was being started): the server's pid stands in until then.
    let pid = process.pid;
    surfaceTlsErrors(tlsSocket);
    const run = await spawnPumped(
      tlsSocket,
      { argv: opts.prog, env: childVars },
      {
        idleTimeoutMs: opts.idleTimeout * 1000,
        onStreamError: (err) => speakFailed(pid, opensslReason(err)),
        ...(opts.banner ? { banner: opts.banner } : {}),
        ...nagleAfterHandshake(socket),
      },
    );
    pid = run.pid;
    log(`pid ${run.pid} from ${remoteIp}`);
    log(`ok ${run.pid} ${where}`);
    logClientCert(run.pid);
    logTlsSocket(run.pid, tlsSocket);
    run.done.then(() => run.kill('SIGTERM'));
    const st = await run.exited;
    await run.done;
    logEnd(run.pid, st);
    release();
  };

  /**
   * Normal mode with SSL_CHROOT/SSL_UID/SSL_GID: the handshake and the pump run in the confined
   * handler; the program's fd 0 and fd 1 are Unix socketpairs whose other ends are sent to it.
   */
  const serveThroughHandler = async (
    h: TlsHandler,
    socket: Socket,
    conn: ConnectionInfo,
    where: string,
    remoteIp: string,
    remoteHost: string | undefined,
    rulesEnv: Array<[string, string]>,
  ): Promise<void> => {
    const { id, secure } = h.accept(socket, {
      ...(remoteHost !== undefined ? { remoteHost } : {}),
      modSsl: opts.modSsl,
      banner: true,
    });
    const r = await secure;
    if (!r.ok) {
      tlsFailed(r, process.pid);
      return;
    }
    const childVars = childEnvList(
      baseEnv,
      sslEnv(conn),
      opts.tcpEnv ? tcpEnv(conn) : {},
      r.env ?? {},
      rulesEnv,
    );
    let run: Awaited<ReturnType<typeof spawnHandOver>>;
    try {
      run = await spawnHandOver({ argv: opts.prog, env: childVars });
    } catch (err) {
      h.abort(id);
      throw err;
    }
    log(`pid ${run.pid} from ${remoteIp}`);
    log(`ok ${run.pid} ${where}`);
    logClientCert(run.pid);
    logTls(run.pid, r.protocol, r.cipher);
    const done = h.pump(id, run.input, run.output);
    done.then(({ error }) => {
      if (error !== undefined) speakFailed(run.pid, error || undefined);
      run.kill('SIGTERM');
    });
    const st = await run.exited;
    await done;
    logEnd(run.pid, st);
  };

  onConnection = (socket: Socket) => {
    // Read the peer's address now: a client that resets later leaves no address on the socket.
    if (socket.remoteAddress) peerAddress.set(socket, socket.remoteAddress);
    if (children >= opts.limit) waiting.push(socket);
    else start(socket);
    // -c: with every slot taken, stop accepting, so that further clients wait in the kernel's
    // backlog (-b) as with the original, which does not call accept() then. Connections libuv
    // had already accepted in the same batch wait in `waiting`.
    if (children >= opts.limit) server.pause();
  };
  for (const socket of early.splice(0)) if (!socket.destroyed) onConnection(socket);
  if (children < opts.limit) server.resume();

  const stopped = (io.stopSignal ?? new Promise<void>(() => undefined)).then(() => undefined);
  const why = await Promise.race([stopped, handler?.died ?? stopped]);
  server.close();
  for (const s of waiting) s.destroy();
  handler?.close();
  // Without its TLS handler the server cannot serve: exit for the supervisor to restart it.
  if (why !== undefined) throw new FatalError(why, true);
  return 0;
}
