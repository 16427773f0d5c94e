// spawnClientProg: tcpclient's layout, the program reading the connection on fd 6 and writing it
// on fd 7, with the socket handed over itself or pumped through pipes.
import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { CLIENT_PROG_FDS, spawnClientProg } from '../src/index.js';

let server: Server | undefined;
afterEach(() => server?.close());

/** A server that sends `greeting`, then collects everything until the client's EOF. */
async function peer(greeting: string): Promise<{ socket: Socket; received: Promise<string> }> {
  let resolveReceived!: (s: string) => void;
  const received = new Promise<string>((r) => {
    resolveReceived = r;
  });
  server = createServer({ allowHalfOpen: true }, (c) => {
    let got = '';
    c.on('data', (b: Buffer) => {
      got += b.toString();
    });
    c.on('end', () => {
      resolveReceived(got);
      c.end();
    });
    c.write(greeting);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const socket = connect({
    port: (server.address() as AddressInfo).port,
    host: '127.0.0.1',
    allowHalfOpen: true,
  });
  // Nothing read here: the greeting waits in the kernel for the program.
  socket.pause();
  await once(socket, 'connect');
  return { socket, received };
}

const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
// Reads one line on fd 6 and answers on fd 7: a descriptor left non-blocking would make the
// shell's read fail with EAGAIN, and no answer would come.
const prog = ['sh', '-c', 'read l <&6; echo "got $l" >&7; exec 7>&-; exec 6<&-; exit 3'];

describe('spawnClientProg', () => {
  it("hands the plain socket itself over as fd 6 and 7 (blocking), closing this process's copy", async () => {
    expect(CLIENT_PROG_FDS).toEqual({ read: 6, write: 7 });
    const { socket, received } = await peer('hello\n');
    const run = await spawnClientProg(socket, { argv: prog, env }, { shareSocket: true });
    expect(socket.destroyed).toBe(true);
    const status = await run.exited;
    await run.done;
    expect(status.code).toBe(3);
    expect(await received).toBe('got hello\n');
  });

  it('pumps a stream through pipes on fd 6 and 7, with half-close both ways', async () => {
    const { socket, received } = await peer('world\n');
    const run = await spawnClientProg(socket, { argv: prog, env });
    const status = await run.exited;
    await run.done;
    expect(status.code).toBe(3);
    expect(await received).toBe('got world\n');
  });

  it('a program that cannot be run exits 111 with the reason', async () => {
    const { socket } = await peer('');
    const run = await spawnClientProg(socket, { argv: ['/nonexistent/prog'], env });
    const status = await run.exited;
    await run.done;
    expect(status.code).toBe(111);
    expect(status.error?.code).toBe('ENOENT');
  });
});
