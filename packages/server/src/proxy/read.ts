// Reading a PROXY header off an accepted connection, before anything else looks at it.
import type { Socket } from 'node:net';
import { type ProxyHeader, ProxyHeaderError, parseProxyHeader } from './header.js';

/**
 * Stop the socket's handle reading, as it is for an accepted socket with pauseOnConnect: pause()
 * alone leaves libuv reading ahead into the stream's buffer (up to its high-water mark), where
 * bytes that come after the header would be lost to a program given the descriptor itself
 * (tcpserver, -n). The next resume() starts reading again.
 */
function stopHandle(socket: Socket): void {
  const internals = socket as unknown as {
    _handle?: { reading?: boolean; readStop?: () => number };
    _readableState?: { reading: boolean };
  };
  const handle = internals._handle;
  if (!handle?.readStop || !handle.reading) return;
  handle.reading = false;
  handle.readStop();
  // The read the stream asked for will not be answered now: let the next resume() ask again.
  if (internals._readableState) internals._readableState.reading = false;
}

/**
 * Read the PROXY header (v1 or v2) that must begin `socket`, within `timeoutMs`. Bytes that came
 * after the header in the same reads are put back (`unshift`) and the socket is left paused, so
 * that whoever reads next (a TLS socket wrapping it, a pump) starts right after the header.
 * Rejects with a ProxyHeaderError when the header is missing, malformed, cut short by EOF or late.
 */
export function readProxyHeader(socket: Socket, timeoutMs: number): Promise<ProxyHeader> {
  return new Promise<ProxyHeader>((resolve, reject) => {
    let received: Buffer = Buffer.alloc(0);
    const done = (error: Error | undefined, header?: ProxyHeader, rest?: Buffer) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
      socket.pause();
      if (error) {
        reject(error);
        return;
      }
      if (rest && rest.length > 0) socket.unshift(rest);
      // The stream restarts the handle's read-ahead within this tick; it is stopped once that has
      // run (before the next poll can read anything), and only then is the socket handed on.
      setImmediate(() => {
        stopHandle(socket);
        resolve(header!);
      });
    };
    const onData = (chunk: Buffer) => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      let parsed: ReturnType<typeof parseProxyHeader>;
      try {
        parsed = parseProxyHeader(received);
      } catch (error) {
        done(error as Error);
        return;
      }
      if (parsed) done(undefined, parsed.header, received.subarray(parsed.length));
    };
    const onEnd = () =>
      done(new ProxyHeaderError(received.length ? 'the header was cut short' : 'no PROXY header'));
    const onError = (error: Error) => done(new ProxyHeaderError(`connection failed: ${error.message}`));
    const timer = setTimeout(
      () => done(new ProxyHeaderError(`no complete PROXY header within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.once('error', onError);
    socket.resume();
  });
}
