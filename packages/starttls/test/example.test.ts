import { createTestPki, type TestPki, tempDir } from '@ucspi/testkit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { show } from '../src/_reply.js';
import { StartTlsErrorCodes } from '../src/errors.js';
import type { Dialogue, StartTlsProtocol } from '../src/protocol.js';
import { readLineFrom, runClientWith, scriptedServer } from './_script.js';

// The README's worked example, verbatim, run as a caller's own protocol over a real TLS socket.

/** ACAP, port 674. */
const protocol: StartTlsProtocol = { name: 'acap', defaultPort: 674, client };

async function client(d: Dialogue): Promise<void> {
  const greeting = await d.readLine();
  if (!/^\* ACAP /i.test(greeting)) {
    d.fail(StartTlsErrorCodes.GREETING, `not an ACAP greeting: ${show(greeting)}`, { reply: greeting });
  }
  if (!/\(STARTTLS\)/i.test(greeting))
    d.fail(StartTlsErrorCodes.NOT_OFFERED, 'the server does not offer STARTTLS');
  d.writeLine('a1 STARTTLS');
  const answer = await d.readLine();
  if (!/^a1 OK\b/i.test(answer))
    d.fail(StartTlsErrorCodes.REFUSED, `STARTTLS refused: ${show(answer)}`, { reply: answer });
}

let pki: TestPki;
let cleanup: () => void;
beforeAll(() => {
  const dir = tempDir('starttls-example-');
  cleanup = dir.cleanup;
  pki = createTestPki(dir.path);
});
afterAll(() => cleanup());

it('the README example protocol runs over TLS', async () => {
  const { port, done } = await scriptedServer(
    [
      'S: * ACAP (IMPLEMENTATION "x") (STARTTLS)',
      'C: a1 STARTTLS',
      'S: a1 OK "Begin TLS"',
      'TLS',
      'S: hi',
      'C: ping',
    ],
    pki,
  );
  const tls = await runClientWith(port, protocol, pki);
  expect(await readLineFrom(tls)).toBe('hi');
  tls.write('ping\r\n');
  await done;
  tls.destroy();
});

it('the README example protocol refuses a server without STARTTLS', async () => {
  const { port, done } = await scriptedServer(['S: * ACAP (IMPLEMENTATION "x")', 'EOF'], pki);
  await expect(runClientWith(port, protocol, pki)).rejects.toMatchObject({
    code: StartTlsErrorCodes.NOT_OFFERED,
  });
  await done;
});
