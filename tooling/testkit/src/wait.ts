import type { Readable } from 'node:stream';

/**
 * Resolve with the first complete line of `stream` (text seen from now on) that matches `pattern`,
 * and with its match. Rejects after `timeoutMs` (default 10 s, generous for a busy 2-core machine)
 * with everything seen, or when the stream ends first. Tests wait for such an event, never for a
 * fixed time.
 */
export function waitForLine(
  stream: Readable,
  pattern: RegExp,
  timeoutMs = 10_000,
): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let seen = '';
    let pending = '';
    const finish = (err: Error | undefined, m?: RegExpMatchArray) => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('close', onEnd);
      if (err) reject(err);
      else resolve(m as RegExpMatchArray);
    };
    const onData = (b: Buffer | string) => {
      const text = b.toString();
      seen += text;
      pending += text;
      let nl = pending.indexOf('\n');
      while (nl >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        const m = line.match(pattern);
        if (m) return finish(undefined, m);
        nl = pending.indexOf('\n');
      }
    };
    const onEnd = () => finish(new Error(`stream ended before a line matched ${pattern}; seen:\n${seen}`));
    const timer = setTimeout(
      () => finish(new Error(`no line matched ${pattern} within ${timeoutMs} ms; seen:\n${seen}`)),
      timeoutMs,
    );
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('close', onEnd);
  });
}

/**
 * Resolve once `predicate()` holds, checked every `pollMs`; rejects after `timeoutMs`. For a
 * condition that has no event of its own (a kernel queue, a file appearing), never as a sleep.
 */
export function waitUntil(predicate: () => boolean, timeoutMs = 10_000, pollMs = 20): Promise<void> {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const check = () => {
      if (predicate()) return resolve();
      if (Date.now() - start > timeoutMs) return reject(new Error(`condition not met within ${timeoutMs} ms`));
      setTimeout(check, pollMs);
    };
    check();
  });
}
