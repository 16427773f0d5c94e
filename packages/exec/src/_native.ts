// The native spawner (native/spawn.c) and the reaping of its children. Loaded through node-gyp-build:
// a source build in build/Release (scripts/build-native.mjs, the repository's `pnpm build`) first,
// else the prebuilt binary for this platform, architecture and libc in prebuilds/ (scripts/prebuild.mjs).
// Only on Linux, in the main thread; UCSPI_EXEC_NATIVE=0 turns it off. Without it, spawn.ts falls
// back to child_process.spawn, and nativeNotice() says so.
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';

/** The addon's functions (see native/spawn.c). */
export interface NativeBinding {
  /** Calls back with (pid, execErrno); pid -1 when clone failed (errno then says why). */
  spawn(
    candidates: string[],
    argv: string[],
    envp: string[],
    fds: number[],
    callback: (pid: number, errno: number) => void,
    /** A slave's path from openPty: the child's controlling terminal, given to the FD_TTY slots. */
    tty?: string,
  ): void;
  /** [pid, rawWaitStatus, ...] of every exited child spawned here. */
  reap(): number[];
  socketpair(): [number, number];
  /** [readEnd, writeEnd] */
  pipe(): [number, number];
  close(fd: number): number;
  setBlocking(fd: number, blocking: boolean): number;
  /** fcntl(F_SETPIPE_SZ): the new capacity in bytes, or -errno. */
  setPipeSize(fd: number, bytes: number): number;
  /** A close-on-exec duplicate of fd, or -errno. */
  dup(fd: number): number;
  /** chroot(2) then chdir("/"); errno, 0 on success. */
  chroot(path: string): number;
  /** setsockopt(IP_OPTIONS, empty); errno, 0 on success. */
  killIpOptions(fd: number): number;
  /** A new pseudo terminal: [master (close-on-exec), slave's path]; throws UCSPI_ERR_EXEC_SPAWN. */
  openPty(): [number, string];
  /**
   * Relay between a terminal's master and two pipe ends (the read end of the program's input,
   * the write end of its output) on a thread; it owns and closes the three. errno, 0 on success.
   */
  relayPty(master: number, input: number, output: number): number;
  /** A non-blocking Unix datagram socket connected to `path` (syslog's /dev/log), or -errno. */
  connectDatagram(path: string): number;
}

/**
 * The descriptor behind a net.Socket or net.Server (its libuv handle), or undefined when it has
 * none (destroyed, closed, or not backed by a descriptor).
 */
export function handleFd(stream: object): number | undefined {
  const fd = (stream as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** Child descriptor slot values understood by the addon besides a parent descriptor. */
export const FD_INHERIT = -1;
export const FD_DEVNULL = -2;
/** The slot gets the pseudo terminal named in spawn's last argument. */
export const FD_TTY = -4;

/** How the addon was looked for: the file loaded, or why none was. */
export interface NativeLoad {
  binding: NativeBinding | undefined;
  /** The .node file loaded. */
  path?: string;
  /** Why no addon is in use, in a few words. */
  reason?: string;
}

function load(): NativeLoad {
  if (process.platform !== 'linux')
    return { binding: undefined, reason: `${process.platform} is not supported` };
  if (!isMainThread) return { binding: undefined, reason: 'not the main thread' };
  if (process.env.UCSPI_EXEC_NATIVE === '0') return { binding: undefined, reason: 'UCSPI_EXEC_NATIVE=0' };
  const require = createRequire(import.meta.url);
  const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
  let path: string | undefined;
  try {
    const gypBuild = require('node-gyp-build') as { resolve(dir: string): string };
    path = gypBuild.resolve(pkg);
    return { binding: require(path) as NativeBinding, path };
  } catch (err) {
    const text = (err as Error).message.split('\n')[0] ?? String(err);
    return { binding: undefined, reason: path ? `${path} did not load: ${text}` : text };
  }
}

/** The result of looking for the addon once, at import. */
export const nativeLoad: NativeLoad = load();

/** The addon, or undefined when it is not built or not usable here. */
export const native: NativeBinding | undefined = nativeLoad.binding;

/** A raw wait status decoded. */
export interface RawStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
  wstat: number;
}

const signalNames = new Map<number, NodeJS.Signals>(
  Object.entries(constants.signals).map(([name, n]) => [n as number, name as NodeJS.Signals]),
);

/** Decode a wait status as WIFEXITED/WEXITSTATUS/WTERMSIG do. */
export function decodeWaitStatus(st: number): RawStatus {
  const sig = st & 0x7f;
  if (sig === 0) return { code: (st >> 8) & 0xff, signal: null, wstat: st };
  return { code: null, signal: signalNames.get(sig) ?? null, wstat: st };
}

const waiting = new Map<number, (status: RawStatus) => void>();
let listening = false;
// While children run, a ref'd timer keeps the event loop alive (signal handles are unref'd) and
// reaps once a second in case a SIGCHLD was consumed elsewhere.
let keepAlive: NodeJS.Timeout | undefined;

function reapNow(): void {
  if (!native) return;
  const r = native.reap();
  for (let i = 0; i < r.length; i += 2) {
    const pid = r[i]!;
    const done = waiting.get(pid);
    if (!done) continue;
    waiting.delete(pid);
    done(decodeWaitStatus(r[i + 1]!));
  }
  if (waiting.size === 0) keepAlive?.unref();
}

/**
 * Listen for SIGCHLD. Call before each spawn: a child that fails to exec exits before spawn()
 * returns, and a SIGCHLD that arrives with no listener installed is discarded.
 */
export function listenForChildren(): void {
  if (listening) return;
  listening = true;
  process.on('SIGCHLD', reapNow);
}

/** Call `onExit` once `pid` (spawned by the addon) has been reaped. */
export function watchChild(pid: number, onExit: (status: RawStatus) => void): void {
  listenForChildren();
  waiting.set(pid, onExit);
  // It may have exited before it was registered: its SIGCHLD then found nobody waiting.
  reapNow();
  if (waiting.size === 0) return;
  if (!keepAlive) keepAlive = setInterval(reapNow, 1000);
  keepAlive.ref();
}
