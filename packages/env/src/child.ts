import type { EnvDelta } from './connection.js';
import { EnvError, EnvErrorCodes } from './errors.js';

/**
 * Assemble a child's environment: the parent's, then each delta in order, later ones winning.
 * The originals' precedence is parent < connection variables (tcpEnv/sslEnv/modSslEnv) < the
 * rules' instructions (`+NAME=value` from -x), so pass the rules last. In a record delta,
 * `undefined` removes the variable; in a list of pairs every pair sets (an empty value sets an
 * empty variable, as the originals do). Returns a fresh object; nothing is mutated.
 *
 * @throws {EnvError} UCSPI_ERR_ENV_BAD_VARIABLE for a name or value that no environment can hold.
 */
export function childEnv(
  parent: Record<string, string | undefined>,
  ...deltas: Array<EnvDelta | ReadonlyArray<readonly [string, string]>>
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(parent)) if (v !== undefined) out[k] = v;
  for (const delta of deltas) {
    const pairs: ReadonlyArray<readonly [string, string | undefined]> = Array.isArray(delta)
      ? (delta as ReadonlyArray<readonly [string, string]>)
      : Object.entries(delta as EnvDelta);
    for (const [name, value] of pairs) {
      if (value === undefined) {
        delete out[name];
        continue;
      }
      checkVariable(name, value);
      out[name] = value;
    }
  }
  return out;
}

/** Reject what execve cannot carry: NUL anywhere, `=` in the name, an empty name. */
export function checkVariable(name: string, value: string): void {
  if (name === '' || name.includes('=') || name.includes('\0') || value.includes('\0')) {
    throw new EnvError(
      EnvErrorCodes.BAD_VARIABLE,
      `cannot set environment variable ${JSON.stringify(name)}: ${name === '' ? 'empty name' : 'NUL or = in the wrong place'}`,
    );
  }
}

/**
 * A parent environment prepared once for many {@link childEnvList} calls: its `NAME=value`
 * strings are built here, so that a server does not rebuild the unchanged part of every program's
 * environment on every connection.
 */
export class EnvBase {
  /** The parent's variables, in order. */
  readonly names: readonly string[];
  /** `NAME=value` for each of {@link names}. */
  readonly entries: readonly string[];
  constructor(parent: Record<string, string | undefined>) {
    const names: string[] = [];
    const entries: string[] = [];
    for (const [k, v] of Object.entries(parent)) {
      if (v === undefined) continue;
      names.push(k);
      entries.push(`${k}=${v}`);
    }
    this.names = names;
    this.entries = entries;
  }
}

/**
 * {@link childEnv} as the `NAME=value` list execve takes: the same precedence, removals and
 * checks, the parent's variables in their order (an overridden one keeps its place), then the new
 * ones in the order they were first set.
 *
 * @throws {EnvError} UCSPI_ERR_ENV_BAD_VARIABLE for a name or value that no environment can hold.
 */
export function childEnvList(
  base: EnvBase,
  ...deltas: Array<EnvDelta | ReadonlyArray<readonly [string, string]>>
): string[] {
  const changes = new Map<string, string | undefined>();
  for (const delta of deltas) {
    const pairs: ReadonlyArray<readonly [string, string | undefined]> = Array.isArray(delta)
      ? (delta as ReadonlyArray<readonly [string, string]>)
      : Object.entries(delta as EnvDelta);
    for (const [name, value] of pairs) {
      if (value !== undefined) checkVariable(name, value);
      changes.set(name, value);
    }
  }
  const out: string[] = [];
  const { names, entries } = base;
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    if (!changes.has(name)) {
      out.push(entries[i]!);
      continue;
    }
    const value = changes.get(name);
    changes.delete(name);
    if (value !== undefined) out.push(`${name}=${value}`);
  }
  for (const [name, value] of changes) if (value !== undefined) out.push(`${name}=${value}`);
  return out;
}
