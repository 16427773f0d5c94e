// A listening TCP socket whose accepting can be paused, leaving new connections in the kernel's
// backlog as tcpserver does when -c programs run (it simply stops calling accept()).
//
// libuv accepts for as long as a listening handle is open, and Node.js has no way to stop it. With
// the native addon this keeps a duplicate of the listening descriptor: pausing closes the
// net.Server (its descriptor is closed, the socket stays open and listening through the
// duplicate, so the kernel keeps completing handshakes into the backlog); resuming opens a new
// net.Server on a fresh duplicate. Without the addon pause() returns false and the caller must hold
// the connections it accepts.
import { createServer, type ListenOptions, type Server, type ServerOpts, type Socket } from 'node:net';
import { handleFd, native } from './_native.js';

export interface PausableListener {
  /** The bound address (as net.Server's address()). */
  address(): ReturnType<Server['address']>;
  /**
   * Stop accepting: new connections wait in the kernel's backlog (-b). False when this cannot be
   * done here (no native addon): connections keep being accepted.
   */
  pause(): boolean;
  /** Accept again (no-op unless paused). */
  resume(): void;
  readonly paused: boolean;
  /** Close the listening socket for good. */
  close(): void;
}

/**
 * Listen with `options` (host, port, backlog) and call `onConnection` for every accepted socket.
 * Rejects with the listen error (EADDRINUSE, EACCES, ...).
 */
export async function listenPausable(
  serverOptions: ServerOpts,
  options: ListenOptions,
  onConnection: (socket: Socket) => void,
): Promise<PausableListener> {
  let server = createServer(serverOptions, onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // An accept that fails (EMFILE: out of descriptors; libuv has then accepted and closed that
  // connection) is no reason to stop serving: as tcpserver, go on with the next one.
  server.on('error', () => undefined);
  const bound = server.address();
  const own = handleFd(server);
  const master = native && own !== undefined ? native.dup(own) : -1;
  let paused = false;
  let retry: NodeJS.Timeout | undefined;
  let closed = false;

  const resume = () => {
    if (!paused || closed) return;
    if (retry) return;
    const fd = native!.dup(master);
    if (fd < 0) {
      // Out of descriptors: try again shortly; the connections wait in the backlog meanwhile.
      retry = setTimeout(() => {
        retry = undefined;
        resume();
      }, 100);
      return;
    }
    paused = false;
    server = createServer(serverOptions, onConnection);
    server.on('error', () => undefined);
    server.listen({ fd, ...(options.backlog !== undefined ? { backlog: options.backlog } : {}) });
  };

  return {
    address: () => bound,
    get paused() {
      return paused;
    },
    pause() {
      if (paused) return true;
      if (master < 0 || closed) return false;
      paused = true;
      // Closing the handle stops libuv's accept loop at once; the duplicate keeps the socket.
      server.close();
      return true;
    },
    resume,
    close() {
      if (closed) return;
      closed = true;
      if (retry) clearTimeout(retry);
      if (!paused) server.close();
      if (master >= 0) native!.close(master);
    },
  };
}
