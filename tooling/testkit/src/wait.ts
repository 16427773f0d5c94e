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
      if (Date.now() - start > timeoutMs)
        return reject(new Error(`condition not met within ${timeoutMs} ms`));
      setTimeout(check, pollMs);
    };
    check();
  });
}

/** A log being written to a stream, kept whole, that a test can wait on. */
export interface LogWatch {
  /** Everything written so far. */
  text(): string;
  /**
   * Resolve once the whole text so far (including what came before the call) matches `pattern`,
   * with its match; rejects after `timeoutMs` (default 10 s) showing the log.
   */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolve once `pattern` matches `count` times (a global regex is made of it). */
  waitForCount(pattern: RegExp, count: number, timeoutMs?: number): Promise<void>;
}

/** Keep what `stream` says from now on, for {@link LogWatch.waitFor}. */
export function watchLog(stream: Readable): LogWatch {
  let text = '';
  const waiters = new Set<() => void>();
  stream.on('data', (b: Buffer | string) => {
    text += b.toString();
    for (const w of [...waiters]) w();
  });
  const until = <T>(test: () => T | undefined, what: string, timeoutMs: number): Promise<T> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const r = test();
        if (r === undefined) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(r);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`log never showed ${what} within ${timeoutMs} ms; log:\n${text}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  return {
    text: () => text,
    waitFor: (pattern, timeoutMs = 10_000) =>
      until(() => text.match(pattern) ?? undefined, String(pattern), timeoutMs),
    waitForCount: (pattern, count, timeoutMs = 10_000) => {
      const g = new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`);
      return until(
        () => ((text.match(g)?.length ?? 0) >= count ? true : undefined),
        `${count} × ${pattern}`,
        timeoutMs,
      ).then(() => undefined);
    },
  };
}
