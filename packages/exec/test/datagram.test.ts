// DatagramSender: Unix datagrams, as syslog(3) sends them to /dev/log, received by a real
// AF_UNIX SOCK_DGRAM socket (@ucspi/testkit's, Python's: Node.js has none) in a temporary folder.
import { existsSync, rmSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import {
  type DatagramReceiver,
  startDatagramReceiver,
  tempDir,
  toolAvailable,
  waitUntil,
} from '@ucspi/testkit';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { canSendDatagrams, DatagramSender } from '../src/index.js';

const tmp = tempDir('ucspi-dgram-');
afterAll(() => tmp.cleanup());
const receivers: DatagramReceiver[] = [];
afterEach(async () => {
  for (const r of receivers.splice(0)) await r.stop();
});

/** A receiver bound at `path`, stopped after the test. */
async function receiver(path: string): Promise<DatagramReceiver> {
  const r = await startDatagramReceiver(path);
  receivers.push(r);
  return r;
}

describe.runIf(canSendDatagrams() && toolAvailable('python3'))('DatagramSender', () => {
  it('sends each message as one datagram, connected once', async () => {
    const path = join(tmp.path, 'log1');
    const r = await receiver(path);
    const s = new DatagramSender(path);
    expect(s.connect()).toBe(0);
    expect(s.send(Buffer.from('<29>one'))).toBe(0);
    expect(s.send(Buffer.from('<30>two\nlines'))).toBe(0);
    await waitUntil(() => r.got().length === 2);
    expect(r.got()).toEqual(['<29>one', '<30>two\nlines']);
    s.close();
  });

  it('a receiver that was replaced is connected to again', async () => {
    const path = join(tmp.path, 'log2');
    const first = await receiver(path);
    const s = new DatagramSender(path);
    expect(s.send(Buffer.from('a'))).toBe(0);
    await waitUntil(() => first.got().length === 1);
    await first.stop();
    // A restarted daemon binds the path anew.
    rmSync(path);
    const second = await receiver(path);
    expect(s.send(Buffer.from('b'))).toBe(0);
    await waitUntil(() => second.got().length === 1);
    expect(second.got()).toEqual(['b']);
    s.close();
  });

  it('nothing at the path: ENOENT, no throw', () => {
    const path = join(tmp.path, 'nobody');
    expect(existsSync(path)).toBe(false);
    const s = new DatagramSender(path);
    expect(s.send(Buffer.from('lost'))).toBe(constants.errno.ENOENT);
    expect(new DatagramSender('x'.repeat(200)).connect()).toBe(constants.errno.ENAMETOOLONG);
  });
});
