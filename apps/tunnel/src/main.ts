// ucspi-tunnel [FILE] | -fd N | -help | -version | -sockets | -options, and beyond stunnel
// `-t [FILE]` (check the configuration, start nothing). One top-level catch picks the exit code:
// 1 for any configuration error (stunnel's status), 0 after a clean shutdown.
import { readFileSync, realpathSync } from 'node:fs';
import { Socket } from 'node:net';
import { EnvBase } from '@ucspi/env';
import { confine, dropTo } from './chroot.js';
import { ConfigError, parseConfig, sysText } from './config/parse.js';
import type { TunnelConfig } from './config/types.js';
import { Tunnel, warningText } from './daemon.js';
import { optionsListing, socketsListing } from './listings.js';
import { LOG, startupLine, syslogSettings, TunnelLog } from './log.js';
import { connectionLabel } from './log-id.js';
import { serveConnection } from './serve.js';
import { prepareServices, ServiceSetupError } from './services.js';
import { applyTuning, tuningFor } from './socket-options.js';

/** Debian's compiled-in default. */
export const DEFAULT_CONFIG = '/etc/stunnel/stunnel.conf';
const VERSION = '0.0.0';

/** Where main() writes. */
export interface TunnelIo {
  stderr: NodeJS.WritableStream;
  /** Called once the daemon runs (tests); resolves main's promise only at shutdown. */
  onReady?: () => void;
}

const HELP = [
  'Usage:',
  'ucspi-tunnel [<filename>] | -fd <n> | -help | -version | -sockets | -options',
  '    <filename>  - use specified config file',
  '    -fd <n>     - read the config file from a file descriptor',
  '    -t [<filename>] - check the configuration and exit (ucspi-tunnel only)',
  '    -help       - get config file help',
  '    -version    - display version and defaults',
  '    -sockets    - display default socket options',
  '    -options    - display supported TLS options',
];

/** Run with argv (no program name). Resolves with the exit code. */
export async function main(argv: readonly string[], io: TunnelIo): Promise<number> {
  const say = (level: number, text: string) => startupLine(io.stderr, level, text);
  const first = argv[0];
  // stunnel takes these four in any case (`-OPTIONS`) and ignores what follows them.
  const flag = first?.toLowerCase();
  if (flag === '-help' || flag === '-version' || flag === '-sockets' || flag === '-options') {
    say(LOG.notice, `ucspi-tunnel ${VERSION} (stunnel 5.68 compatible) on Node.js ${process.version}`);
    say(LOG.notice, `Running with OpenSSL ${process.versions.openssl}`);
    if (flag === '-help') for (const l of HELP) say(LOG.notice, l);
    // The lists without marks, as stunnel prints them.
    if (flag === '-options') for (const l of optionsListing()) io.stderr.write(`${l}\n`);
    if (flag === '-sockets') for (const l of socketsListing()) io.stderr.write(`${l}\n`);
    return 0;
  }
  const check = first === '-t';
  const args = check ? argv.slice(1) : argv;
  let load: () => TunnelConfig;
  if (args[0] === '-fd') {
    const fd = Number(args[1]);
    if (!/^\d+$/.test(args[1] ?? '')) {
      say(LOG.err, `Invalid file descriptor number "${args[1] ?? ''}"`);
      for (const l of HELP) say(LOG.notice, l);
      return 1;
    }
    const text = readFileSync(fd, 'utf8');
    load = () => parseConfig(text, `-fd ${fd}`);
  } else {
    if (args.length > 1) {
      for (const l of HELP) say(LOG.notice, l);
      return 1;
    }
    const name = args[0] ?? DEFAULT_CONFIG;
    let path: string;
    try {
      // Resolved once, so that HUP reads the same file whatever the working directory is then.
      path = realpathSync(name);
    } catch (err) {
      say(LOG.err, `Invalid configuration file name "${name}"`);
      say(LOG.err, `realpath: ${sysText(err)}`);
      return 1;
    }
    load = () => parseConfig(readFileSync(path, 'utf8'), path);
  }

  let config: TunnelConfig;
  let services: Awaited<ReturnType<typeof prepareServices>>;
  try {
    config = load();
    services = await prepareServices(config);
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const l of err.before) say(LOG.err, l);
      say(LOG.err, err.message);
    } else if (err instanceof ServiceSetupError) for (const l of err.lines) say(LOG.err, l);
    else if ((err as NodeJS.ErrnoException).code) say(LOG.err, `Cannot read configuration: ${sysText(err)}`);
    else throw err;
    say(LOG.err, 'Configuration failed');
    return 1;
  }
  for (const w of config.warnings) say(LOG.warning, warningText(w));
  if (check) {
    say(LOG.notice, 'Configuration successful');
    return 0;
  }
  const g = config.globals;
  let log: TunnelLog;
  try {
    log = new TunnelLog(g.debugLevel, io.stderr, g.output, g.logOverwrite, g.chroot !== undefined);
  } catch (err) {
    say(LOG.err, `Cannot open log file: ${g.output}: ${sysText(err)}`);
    say(LOG.err, 'Configuration failed');
    return 1;
  }
  log.setSyslog(syslogSettings(g));
  log.write(
    LOG.notice,
    'ui',
    `ucspi-tunnel ${VERSION} (stunnel 5.68 compatible) on Node.js ${process.version}`,
  );
  log.write(LOG.notice, 'ui', `Running with OpenSSL ${process.versions.openssl}`);
  log.write(LOG.notice, 'ui', `Reading configuration from file ${config.source}`);
  log.write(LOG.notice, 'ui', `UTF-8 byte order mark ${config.bom ? 'detected' : 'not detected'}`);
  log.write(LOG.notice, 'ui', 'Configuration successful');

  if (config.inetd) {
    // stunnel chroots and drops privileges in inetd mode too (main_configure, before the mode).
    try {
      await confine(g, log);
    } catch (err) {
      log.write(LOG.err, 'ui', (err as Error).message);
      log.close();
      return 1;
    }
    return inetd(config, log, services[0]!);
  }

  if (g.foreground === 'no')
    log.write(LOG.warning, 'ui', 'foreground = no: ucspi-tunnel does not fork; run it under a supervisor');
  const tunnel = new Tunnel(config, log);
  try {
    await tunnel.bind(services);
    if (g.chroot === undefined) {
      tunnel.writePid(g.pid);
      if (g.setuid !== undefined || g.setgid !== undefined) dropTo(g.setuid, g.setgid);
    } else {
      // stunnel's order (main_configure, then create_pid): the pid file and the log are inside.
      await confine(g, log);
      tunnel.writePid(g.pid);
    }
  } catch (err) {
    log.write(LOG.err, 'ui', (err as Error).message);
    tunnel.stop();
    log.close();
    return 1;
  }
  return new Promise<number>((resolve) => {
    // Running until a signal stops it, as stunnel, also with nothing to listen on (only local-mode
    // sections, whose session may have ended): signal handlers alone do not keep Node.js running.
    const alive = setInterval(() => undefined, 2 ** 30);
    let reloading: Promise<unknown> = Promise.resolve();
    // TERM/INT/QUIT: the ports refuse at once; connections in progress may finish within the
    // (current) drainTimeout; a second signal ends them at once.
    let again: () => void = () => undefined;
    let stopping = false;
    const stop = () => {
      if (stopping) {
        again();
        return;
      }
      stopping = true;
      log.write(LOG.notice, 'ui', 'Terminated');
      const endNow = new Promise<void>((r) => {
        again = r;
      });
      void tunnel.drain(tunnel.current.globals.drainTimeout * 1000, endNow).then(() => {
        clearInterval(alive);
        log.close();
        resolve(0);
      });
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    process.on('SIGQUIT', stop);
    process.on('SIGHUP', () => {
      if (stopping) return;
      log.write(LOG.notice, 'ui', 'Received signal 1; reloading configuration');
      reloading = reloading.then(() => tunnel.reload(load));
    });
    process.on('SIGUSR2', () => tunnel.active.report(log));
    process.on('SIGUSR1', () => {
      try {
        log.reopen();
        log.write(LOG.notice, 'ui', 'Log file reopened');
      } catch (err) {
        io.stderr.write(`ucspi-tunnel: cannot reopen the log file: ${sysText(err)}\n`);
      }
    });
    // stunnel's daemon_loop: the local-mode sections start, then connections are accepted.
    tunnel.startLocal(services);
    log.write(LOG.info, 'ui', 'Accepting new connections');
    io.onReady?.();
  });
}

/** Inetd mode: the one connection is on descriptors 0 and 1 (a socket from inetd or tcpserver). */
async function inetd(
  config: TunnelConfig,
  log: TunnelLog,
  service: Awaited<ReturnType<typeof prepareServices>>[number],
): Promise<number> {
  const socket = new Socket({ fd: 0, allowHalfOpen: true, readable: true, writable: true });
  socket.on('error', () => undefined);
  // `socket = l:...` on the connection inetd (or tcpserver) passed; there is no listening socket.
  applyTuning(socket, tuningFor(service.config.socketOptions, ['l']));
  const info = {
    localIp: socket.localAddress ?? '0.0.0.0',
    localPort: socket.localPort ?? 0,
    remoteIp: socket.remoteAddress ?? '0.0.0.0',
    remotePort: socket.remotePort ?? 0,
  };
  log.label(0, connectionLabel(service.config.logId, 0));
  await serveConnection(socket, info, service, 0, { log, envBase: new EnvBase(process.env) });
  log.close();
  void config;
  return 0;
}
