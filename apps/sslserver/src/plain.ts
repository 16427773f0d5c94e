// tcpserver: the program gets the accepted socket itself as fd 0 and fd 1, as the original.
import type { Socket } from 'node:net';
import { childEnvList, tcpEnv } from '@ucspi/env';
import { spawnOnSocket, spawnPumped } from '@ucspi/exec';
import type { Connection } from '@ucspi/server';
import type { ServeContext } from './context.js';

/** tcpserver's handler, and the -B banner it writes before any lookup. */
export function plainHandler(ctx: ServeContext): {
  onAccepted: (socket: Socket) => void;
  handle: (conn: Connection) => Promise<void>;
} {
  const banners = new WeakMap<Socket, Promise<void>>();
  return {
    onAccepted(socket) {
      if (ctx.opts.noDelay) socket.setNoDelay(true);
      // -B goes out before any lookup; the server's copy of the socket is closed at spawn, so the
      // program starts once it has been written.
      if (ctx.opts.banner)
        banners.set(socket, new Promise<void>((resolve) => socket.write(ctx.opts.banner, () => resolve())));
    },
    async handle(conn) {
      await banners.get(conn.socket);
      const spec = { argv: ctx.opts.prog, env: childEnvList(ctx.baseEnv, tcpEnv(conn.info), conn.rulesEnv) };
      // PROXYPROTO: client bytes that came in the same read as the header are already out of the
      // socket; the program then reads the connection through pipes, those bytes first.
      if (conn.socket.readableLength > 0) {
        const run = await spawnPumped(conn.socket, spec);
        conn.started(run.pid);
        const st = await run.exited;
        await run.done;
        conn.ended(run.pid, st.wstat, st.error);
        return;
      }
      const run = await spawnOnSocket(conn.socket, spec);
      conn.started(run.pid);
      // The program owns the socket: it goes on serving after TERM, as the original's children.
      conn.detach();
      const st = await run.exited;
      conn.ended(run.pid, st.wstat, st.error);
    },
  };
}
