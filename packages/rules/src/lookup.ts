import { stat } from 'node:fs/promises';
import { Cdb } from '@ucspi/cdb';
import { RulesError, RulesErrorCodes } from './errors.js';
import { decodeRuleData } from './parse.js';

/**
 * Who is connecting. `host` and `info` are undefined when unknown (TCPREMOTEHOST/TCPREMOTEINFO
 * unset) and may be `''` when set but empty: the two give different keys, as in the original.
 */
export interface RuleQuery {
  ip: string;
  host?: string;
  info?: string;
}

/** The rule that applies to a connection. */
export interface RuleMatch {
  /** The key that matched (`''` for the default rule). */
  key: string;
  allow: boolean;
  /** Variables to set for the program, in order. */
  env: Array<[string, string]>;
  /** The record's raw value. */
  data: Buffer;
}

/**
 * The keys tcpserver tries, in its order (ucspi-tcp's rules.c): `info@ip`, `info@=host`, `ip`,
 * `=host`, the ip's prefixes ending in `.` longest first, `=` + each suffix of host starting at a
 * `.` (left to right), `=`, and the empty key. The host and info variants need a known host and
 * info. An IPv6 address has no `.`, so only its exact text and the defaults are tried.
 */
export function ruleKeys(q: RuleQuery): string[] {
  const { ip, host, info } = q;
  const keys: string[] = [];
  if (info !== undefined) {
    keys.push(`${info}@${ip}`);
    if (host !== undefined) keys.push(`${info}@=${host}`);
  }
  keys.push(ip);
  if (host !== undefined) keys.push(`=${host}`);
  for (let j = ip.length - 1; j >= 0; j--) if (ip[j] === '.') keys.push(ip.slice(0, j + 1));
  if (host !== undefined) {
    for (let j = 0; j < host.length; j++) if (host[j] === '.') keys.push(`=${host.slice(j)}`);
    keys.push('=');
  }
  keys.push('');
  return keys;
}

/** The first rule in `cdb` for the query, or undefined (no rule: the connection is allowed). */
export function lookupRules(cdb: Cdb, q: RuleQuery): RuleMatch | undefined {
  for (const key of ruleKeys(q)) {
    const data = cdb.get(key);
    if (data !== undefined) return { key, ...decodeRuleData(data), data };
  }
  return undefined;
}

/**
 * A rules cdb on disk, for servers: each lookup checks the file's identity (device, inode, size,
 * modification time) with one asynchronous stat and re-reads it when tcprules has replaced it, so
 * rules can be recompiled while the server runs. Concurrent lookups during a reload share one read.
 * A file that disappears after a successful read is an error again (as the original, which opens
 * the cdb per connection).
 */
export class RulesFile {
  readonly path: string;
  #cache?: { id: string; cdb: Cdb };
  #loading?: { id: string; promise: Promise<Cdb> };

  constructor(path: string) {
    this.path = path;
  }

  /**
   * @throws {RulesError} UCSPI_ERR_RULES_NO_CDB when the file does not exist; UCSPI_ERR_RULES_READ
   *   (temporary, the system or cdb error as cause) when it cannot be read or is corrupt.
   */
  async lookup(q: RuleQuery): Promise<RuleMatch | undefined> {
    return lookupRules(await this.#current(), q);
  }

  async #current(): Promise<Cdb> {
    let id: string;
    try {
      const s = await stat(this.path, { bigint: true });
      id = `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}`;
    } catch (cause) {
      throw this.#error(cause);
    }
    if (this.#cache?.id === id) return this.#cache.cdb;
    if (this.#loading?.id !== id) {
      const promise = Cdb.open(this.path).then(
        (cdb) => {
          this.#cache = { id, cdb };
          return cdb;
        },
        (err: unknown) => {
          throw this.#error((err as { cause?: unknown }).cause ?? err);
        },
      );
      promise
        .finally(() => {
          if (this.#loading?.promise === promise) this.#loading = undefined;
        })
        .catch(() => undefined);
      this.#loading = { id, promise };
    }
    return this.#loading!.promise;
  }

  #error(cause: unknown): RulesError {
    const code = (cause as { code?: string }).code;
    if (code === 'ENOENT')
      return new RulesError(RulesErrorCodes.NO_CDB, `${this.path} does not exist`, {
        path: this.path,
        cause,
      });
    return new RulesError(RulesErrorCodes.READ, `unable to read ${this.path}`, { path: this.path, cause });
  }
}
