import diagnostics_channel from 'node:diagnostics_channel';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { createTestPki, type TestPki, tempDir } from '@ucspi/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  isClientProtocol,
  isServerProtocol,
  type LineMessage,
  loadProtocol,
  type StartTlsClientOptions,
  StartTlsErrorCodes,
  startTlsClient,
} from '../src/index.js';
import { clientFailure, clientHandshake, runClient, type Step, scriptedServer } from './_script.js';

// The core's own features, seen through real dialogues: line limit, EOF, deadline, option checks,
// handshake errors, diagnostics (with redaction), the registry, a caller's own protocol.

let pki: TestPki;
let cleanup: () => void;
beforeAll(() => {
  const dir = tempDir('starttls-core-');
  cleanup = dir.cleanup;
  pki = createTestPki(dir.path);
});
afterAll(() => cleanup());

/** Runs the client against a scripted server and returns the error it failed with. */
const failure = (protocol: string, steps: Step[], options: StartTlsClientOptions = {}) =>
  clientFailure(pki, protocol, steps, options);

describe('core', () => {
  it('a line longer than maxLineLength is LINE_TOO_LONG, also while it is still arriving', async () => {
    expect(await failure('smtp', [`S: 220 ${'x'.repeat(200)}`, 'EOF'], { maxLineLength: 100 })).toMatchObject(
      {
        code: StartTlsErrorCodes.LINE_TOO_LONG,
      },
    );
    expect(
      await failure('smtp', [`S~ 220 ${'x'.repeat(5000)}`, 'EOF'], { maxLineLength: 1000 }),
    ).toMatchObject({
      code: StartTlsErrorCodes.LINE_TOO_LONG,
    });
  });
  it('a line of exactly maxLineLength is accepted', async () => {
    const long = `220 ${'x'.repeat(96)}`;
    expect(long.length).toBe(100);
    expect(
      await failure('smtp', [`S: ${long}`, 'C: EHLO client.test', 'S: 250 x', 'EOF'], { maxLineLength: 100 }),
    ).toMatchObject({
      code: StartTlsErrorCodes.NOT_OFFERED,
    });
  });
  it('EOF in the middle of a multi-line reply is EOF, temporary', async () => {
    expect(
      await failure('smtp', ['S: 220 mx.test ESMTP', 'C: EHLO client.test', 'S: 250-mx.test', 'S~ 250-STA']),
    ).toMatchObject({
      code: StartTlsErrorCodes.EOF,
      temporary: true,
    });
  });
  it('a silent server is TIMEOUT, temporary', async () => {
    expect(await failure('smtp', ['DRAIN'], { timeoutMs: 200 })).toMatchObject({
      code: StartTlsErrorCodes.TIMEOUT,
      temporary: true,
    });
  });
  it('bad timeoutMs or maxLineLength is BAD_OPTION; an unknown protocol UNKNOWN_PROTOCOL', async () => {
    expect(await failure('smtp', ['DRAIN'], { timeoutMs: -1 })).toMatchObject({
      code: StartTlsErrorCodes.BAD_OPTION,
    });
    expect(await failure('smtp', ['DRAIN'], { maxLineLength: 3 })).toMatchObject({
      code: StartTlsErrorCodes.BAD_OPTION,
    });
    expect(await failure('gopher', ['DRAIN'])).toMatchObject({ code: StartTlsErrorCodes.UNKNOWN_PROTOCOL });
  });
  it('a failing handshake passes its own error through and destroys the socket', async () => {
    const { port, done } = await scriptedServer(['C= 0000000804d2162f', 'S= 53', 'DRAIN'], pki);
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    const boom = new Error('handshake failed');
    await expect(startTlsClient(socket, 'postgres', () => Promise.reject(boom))).rejects.toBe(boom);
    expect(socket.destroyed).toBe(true);
    await done;
  });
  it('publishes every line on ucspi:starttls:line, the proxy password redacted', async () => {
    const lines: LineMessage[] = [];
    const onLine = (m: unknown) => lines.push(m as LineMessage);
    diagnostics_channel.subscribe('ucspi:starttls:line', onLine);
    try {
      const { port, done } = await scriptedServer(
        [
          'C: /^CONNECT/',
          'C: /^Host/',
          'C: /^Proxy-Authorization: Basic /',
          'C: ',
          'S: HTTP/1.1 200 OK',
          'S: ',
          'TLS',
        ],
        pki,
      );
      const tls = await runClient(port, 'connect', pki, {
        host: 'a.test:1',
        username: 'u',
        password: 'hunter2',
      });
      await done;
      tls.destroy();
    } finally {
      diagnostics_channel.unsubscribe('ucspi:starttls:line', onLine);
    }
    const text = JSON.stringify(lines);
    expect(text).not.toContain(Buffer.from('u:hunter2').toString('base64'));
    expect(text).not.toContain('hunter2');
    expect(lines).toContainEqual(
      expect.objectContaining({
        direction: 'received',
        line: 'HTTP/1.1 200 OK',
        protocol: 'connect',
        side: 'client',
      }),
    );
    expect(lines.some((l) => l.direction === 'sent' && l.line.includes('<redacted>'))).toBe(true);
  });
  it('the registry knows names case-insensitively and stunnel aliases', async () => {
    expect(isClientProtocol('SMTP')).toBe(true);
    expect(isClientProtocol('pgsql')).toBe(true);
    expect(isClientProtocol('toString')).toBe(false);
    expect(isServerProtocol('imap')).toBe(true);
    expect(isServerProtocol('ldap')).toBe(false);
    expect((await loadProtocol('pgsql')).name).toBe('postgres');
    await expect(loadProtocol('__proto__')).rejects.toMatchObject({
      code: StartTlsErrorCodes.UNKNOWN_PROTOCOL,
    });
  });
  it('accepts a protocol object of the caller (the interface is public)', async () => {
    const server = createServer((s) => s.write('READY\r\n'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const socket = connect((server.address() as { port: number }).port, '127.0.0.1');
    await once(socket, 'connect');
    const seen: string[] = [];
    await expect(
      startTlsClient(
        socket,
        {
          name: 'toy',
          defaultPort: 1,
          async client(d) {
            seen.push(await d.readLine());
            d.fail(StartTlsErrorCodes.REFUSED, 'toy says no');
          },
        },
        clientHandshake(pki),
      ),
    ).rejects.toMatchObject({
      code: StartTlsErrorCodes.REFUSED,
      message: 'toy: toy says no',
      protocol: 'toy',
    });
    expect(seen).toEqual(['READY']);
    server.close();
  });
});
