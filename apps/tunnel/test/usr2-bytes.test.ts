// USR2's list with the bytes each connection has moved so far, as stunnel 5.68 prints them
// (`Active connection N: Service [NAME], T byte(s) sent to TLS, S byte(s) sent to socket`): known
// amounts sent each way through a relayed connection and an `exec` one, a client still in its
// handshake listed with none; Debian's stunnel4 run on the same configuration as the oracle.
import { chmodSync } from 'node:fs';
import { createServer, connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { createTestPki, freePort, type TestPki, tempDir, toolAvailable } from '@ucspi/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Running, startDaemon, stopAll, writeConfig } from './_helpers.js';

let pki: TestPki;
let tmp: { path: string; cleanup: () => void };
const open: Array<{ destroy(): void } | { close(): void }> = [];

beforeAll(() => {
  tmp = tempDir('ucspi-tunnel-usr2-');
  pki = createTestPki(join(tmp.path, 'pki'));
});
afterEach(async () => {
  for (const o of open.splice(0)) 'destroy' in o ? o.destroy() : o.close();
  await stopAll();
});
afterAll(() => tmp.cleanup());

const KINDS = ['ucspi-tunnel', 'stunnel4'] as const;
const hasStunnel = toolAvailable('stunnel4');

/** Counts what a socket has received; `reached(n)` resolves once it has n bytes. */
function counted(s: Socket): { reached: (n: number) => Promise<void> } {
  let got = 0;
  const waiting: Array<[number, () => void]> = [];
  s.on('data', (b: Buffer) => {
    got += b.length;
    for (const w of waiting.splice(0))
      if (got >= w[0]) w[1]();
      else waiting.push(w);
  });
  return { reached: (n) => new Promise<void>((r) => (got >= n ? r() : waiting.push([n, r]))) };
}

/** A backend that keeps its connections; resolves the first one as it arrives. */
async function holdingBackend(): Promise<{ port: number; first: Promise<Socket> }> {
  let take: (s: Socket) => void = () => undefined;
  const first = new Promise<Socket>((r) => {
    take = r;
  });
  const server = createServer((s) => {
    s.on('error', () => undefined);
    open.push(s);
    take(s);
  });
  open.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as { port: number }).port, first };
}

function tlsClient(port: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const c = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () => resolve(c));
    c.on('error', reject);
    open.push(c);
  });
}

async function start(kind: (typeof KINDS)[number], sections: string): Promise<Running> {
  const conf = writeConfig(
    tmp.path,
    `${kind}-${Date.now()}.conf`,
    `foreground = yes\ndebug = info\n${sections}`,
  );
  return startDaemon(kind, conf);
}

/** USR2, then the lines of the list it printed, without their time stamps. */
async function list(d: Running): Promise<string> {
  const asked = (d.log.text().match(/LOG0\[ui\]: Listed /g) ?? []).length + 1;
  d.proc.kill('SIGUSR2');
  await d.log.waitForCount(/LOG0\[ui\]: Listed \d+ active connection\(s\)/, asked);
  const lists = d.log.text().split(/^.*LOG0\[ui\]: Active connections:\n/m);
  const lines = lists[asked]!.split('\n').map((l) => l.replace(/^\d{4}\.\d\d\.\d\d \d\d:\d\d:\d\d /, ''));
  return lines
    .slice(
      0,
      lines.findIndex((l) => l.startsWith('LOG0[ui]: Listed')),
    )
    .join('\n');
}

/**
 * The list once it shows `expected`. ucspi-tunnel counts a chunk before passing it on, so its first
 * answer must; stunnel4 adds to its counts just after its write, which the peer may see first:
 * asked again (each answer awaited), at most 50 times.
 */
async function listShowing(kind: (typeof KINDS)[number], d: Running, expected: string): Promise<string> {
  let got = await list(d);
  for (let i = 1; kind === 'stunnel4' && got !== expected && i < 50; i++) got = await list(d);
  return got;
}

describe('USR2 byte counts', () => {
  for (const kind of KINDS) {
    it.runIf(kind !== 'stunnel4' || hasStunnel)(
      `${kind}: the bytes each connection has relayed so far, a handshake in progress with none`,
      async () => {
        const b = await holdingBackend();
        const port = await freePort();
        const d = await start(
          kind,
          `[bytes]\naccept = 127.0.0.1:${port}\nconnect = 127.0.0.1:${b.port}\ncert = ${pki.serverChain}\nkey = ${pki.serverKey}\n`,
        );
        const client = await tlsClient(port);
        const fromBackend = counted(client);
        client.write('a'.repeat(1000));
        const backend = await b.first;
        const fromClient = counted(backend);
        await fromClient.reached(1000);
        backend.write('b'.repeat(2345));
        await fromBackend.reached(2345);
        const first =
          'LOG0[ui]: Active connection 1: Service [bytes], 2345 byte(s) sent to TLS, 1000 byte(s) sent to socket';
        expect(await listShowing(kind, d, first)).toBe(first);
        client.write('c'.repeat(24));
        await fromClient.reached(1024);
        backend.write('d'.repeat(7));
        await fromBackend.reached(2352);
        // A client that has not begun its handshake (bad input: nothing at all): listed, newest first, with none.
        const silent = netConnect({ port, host: '127.0.0.1' });
        silent.on('error', () => undefined);
        open.push(silent);
        await d.log.waitForCount(/Service \[bytes\] accepted connection/, 2);
        const both = [
          'LOG0[ui]: Active connection 1: Service [bytes], 0 byte(s) sent to TLS, 0 byte(s) sent to socket',
          'LOG0[ui]: Active connection 2: Service [bytes], 2352 byte(s) sent to TLS, 1024 byte(s) sent to socket',
        ].join('\n');
        expect(await listShowing(kind, d, both)).toBe(both);
      },
      30_000,
    );

    it.runIf(kind !== 'stunnel4' || hasStunnel)(
      `${kind}: an exec connection's bytes so far`,
      async () => {
        const port = await freePort();
        // Reads what the client sends, answers 300 bytes once 100 came, then waits for the end.
        const prog = writeConfig(
          tmp.path,
          'prog.sh',
          '#!/bin/sh\nhead -c 100 >/dev/null\nprintf %0300d 0\ncat >/dev/null\n',
        );
        chmodSync(prog, 0o755);
        const d = await start(
          kind,
          `[prog]\naccept = 127.0.0.1:${port}\nexec = ${prog}\ncert = ${pki.serverChain}\nkey = ${pki.serverKey}\n`,
        );
        const client = await tlsClient(port);
        const fromProgram = counted(client);
        client.write('x'.repeat(100));
        await fromProgram.reached(300);
        const one =
          'LOG0[ui]: Active connection 1: Service [prog], 300 byte(s) sent to TLS, 100 byte(s) sent to socket';
        expect(await listShowing(kind, d, one)).toBe(one);
      },
      30_000,
    );
  }
});
