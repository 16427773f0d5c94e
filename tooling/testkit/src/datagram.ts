// A Unix datagram receiver (syslog's /dev/log as a test binds it elsewhere): Python's AF_UNIX
// SOCK_DGRAM socket, since Node.js has none. Each datagram is kept whole, in order.
import { type ChildProcess, spawn } from 'node:child_process';
import { waitUntil } from './wait.js';

/** A running receiver: the datagrams so far (bytes read as latin-1), and its process. */
export interface DatagramReceiver {
  readonly path: string;
  readonly proc: ChildProcess;
  got(): string[];
  /** Kill the receiver and wait until it has exited. */
  stop(): Promise<void>;
}

const SCRIPT = [
  'import socket, sys, json',
  's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
  's.bind(sys.argv[1])',
  'print("ready", flush=True)',
  'while True:',
  '    print(json.dumps(s.recv(65536).decode("latin-1")), flush=True)',
].join('\n');

/** Bind a receiver at `path` (which must not exist) with python3; resolves once it is bound. */
export async function startDatagramReceiver(path: string): Promise<DatagramReceiver> {
  const proc = spawn('python3', ['-c', SCRIPT, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout!.on('data', (b: Buffer) => {
    out += b.toString();
  });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  await waitUntil(() => out.startsWith('ready\n') || proc.exitCode !== null).catch(() => undefined);
  if (!out.startsWith('ready\n')) {
    proc.kill('SIGKILL');
    await exited;
    throw new Error(`the datagram receiver did not bind ${path}`);
  }
  return {
    path,
    proc,
    got: () =>
      out
        .split('\n')
        .slice(1, -1)
        .map((l) => JSON.parse(l) as string),
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}
