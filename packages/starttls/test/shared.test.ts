import { createTestPki, type TestPki, tempDir } from '@ucspi/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientProtocols, StartTlsErrorCodes } from '../src/index.js';
import { readLineFrom, runClient, type Step, scriptedServer } from './_script.js';
import { transcripts } from './_transcripts.js';

// Every client protocol over a real TLS socket: the happy path (the session goes on over TLS in
// both directions), the same with every server line in its own packet, and the injection test
// (plaintext right behind the go-ahead is refused, never handed to TLS).

let pki: TestPki;
let cleanup: () => void;
beforeAll(() => {
  const dir = tempDir('starttls-shared-');
  cleanup = dir.cleanup;
  pki = createTestPki(dir.path);
});
afterAll(() => cleanup());

it('has a transcript for every client protocol', () => {
  expect(transcripts.map((t) => t.protocol).sort()).toEqual([...clientProtocols].sort());
});

async function happy(steps: Step[], protocol: string, options = {}): Promise<void> {
  const { port, done } = await scriptedServer([...steps, 'S: hello over TLS', 'C: ping'], pki);
  const tls = await runClient(port, protocol, pki, options);
  expect(tls.encrypted).toBe(true);
  expect(await readLineFrom(tls)).toBe('hello over TLS');
  tls.write('ping\r\n');
  await done;
  tls.destroy();
}

for (const t of transcripts) {
  describe(t.protocol, () => {
    const full = [...t.before, t.eager ? 'TLS*' : 'TLS', ...(t.after ?? [])];

    it('completes the dialogue and hands back a TLS socket that carries data both ways', async () => {
      await happy(full, t.protocol, t.options);
    });

    it('works with every server line in its own packet', async () => {
      await happy(
        full.map((s) => (s.startsWith('S: ') ? `S| ${s.slice(3)}` : s)),
        t.protocol,
        t.options,
      );
    });

    const lastS = t.before.map((s) => s.startsWith('S')).lastIndexOf(true);
    const upToGoAhead = t.before.slice(0, lastS + 1);

    it('refuses plaintext sent right behind the go-ahead (never replayed into TLS)', async () => {
      // The positive path this guards: the same server without the injected line gets TLS.
      await happy(full, t.protocol, t.options);
      const { port, done } = await scriptedServer([...upToGoAhead, 'S: 250 injected', 'DRAIN'], pki);
      await expect(runClient(port, t.protocol, pki, t.options)).rejects.toMatchObject({
        code: StartTlsErrorCodes.INJECTION,
      });
      await done;
    });

    it('plaintext in a later packet behind the go-ahead fails the handshake, never reaches the caller', async () => {
      const { port, done } = await scriptedServer([...upToGoAhead, 'S| 250 injected', 'DRAIN'], pki);
      const err = await runClient(port, t.protocol, pki, t.options).then(
        (tls) => {
          tls.destroy();
          return undefined;
        },
        (e: unknown) => e,
      );
      // Read before the hand-over: INJECTION; read by TLS: a TLS error (it is no TLS record).
      expect(err).toBeInstanceOf(Error);
      await done;
    });
  });
}
