import { once } from 'node:events';
import type { TLSSocket } from 'node:tls';
import { toolAvailable } from '@ucspi/testkit';
import { readLineFrom } from './_script.js';

/** Sends `line` over TLS and returns the first reply line that matches `until` (bounded). */
export async function say(tls: TLSSocket, line: string, until: RegExp): Promise<string> {
  tls.write(`${line}\r\n`);
  for (let i = 0; i < 50; i++) {
    const got = await readLineFrom(tls);
    if (until.test(got)) return got;
  }
  throw new Error(`no reply matching ${until}`);
}

/** The first chunk the TLS socket delivers (bounded). */
export async function firstChunk(tls: TLSSocket): Promise<Buffer> {
  const timer = setTimeout(() => tls.destroy(new Error('no data within 10 s')), 10_000);
  try {
    const [chunk] = (await once(tls, 'data')) as [Buffer];
    return chunk;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Whether the tests with the real server `tool` can run: the tool is installed (toolAvailable:
 * a missing tool fails under CI) and we are root, as the servers are started as in the test
 * environment (their own users, root-owned configurations). Not root: skipped locally with a
 * notice, an error under CI.
 */
export function canRunPeer(tool: string): boolean {
  if (!toolAvailable(tool)) return false;
  if (process.getuid?.() === 0) return true;
  if (process.env.CI === 'true') throw new Error(`the ${tool} tests need root (.ci/run runs as root)`);
  process.stderr.write(`starttls tests: not root; skipping the ${tool} tests\n`);
  return false;
}
