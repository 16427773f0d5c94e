import { RulesError, RulesErrorCodes } from './errors.js';

/** One cdb record that a rules line compiles to. */
export interface Rule {
  /** The key bytes exactly as written (a range line gives one Rule per address). */
  key: Buffer;
  allow: boolean;
  /** The `,NAME=<q>value<q>` instructions in order, decoded as UTF-8. */
  env: Array<[name: string, value: string]>;
  /** The record's value in tcprules' encoding: `D\0` for deny, then `+NAME=value\0` per instruction. */
  data: Buffer;
  /** 1-based line number in the input. */
  line: number;
}

const COLON = 0x3a;
const COMMA = 0x2c;
const EQUALS = 0x3d;
const DENY = Buffer.from('deny');
const ALLOW = Buffer.from('allow');

/**
 * Parse one line of rules text (without or with its `\n`) exactly as ucspi-tcp's tcprules does:
 * `#` lines and empty lines are skipped; trailing spaces, tabs and newlines are removed (a CR is
 * not whitespace, so a CRLF file fails); a line without `:` is ignored; the key is everything
 * before the first `:` (leading spaces included); then exactly `deny` or `allow`, then zero or
 * more `,NAME=<q>value<q>` where `<q>` is any byte; an address range `a.b.c.x-y` gives one record
 * per value.
 *
 * @returns the records (none for ignored lines)
 * @throws {RulesError} UCSPI_ERR_RULES_PARSE with the line as tcprules prints it
 */
export function parseRuleLine(line: Buffer, lineNumber: number): Rule[] {
  if (line.length === 0 || line[0] === 0x23 /* # */ || line[0] === 0x0a) return [];
  let len = line.length;
  while (len > 0 && (line[len - 1] === 0x0a || line[len - 1] === 0x20 || line[len - 1] === 0x09)) len--;
  const x = line.subarray(0, len);
  const fail = () =>
    new RulesError(
      RulesErrorCodes.PARSE,
      `unable to parse this line: ${x.toString('latin1')} (line ${lineNumber})`,
      { line: lineNumber, text: Buffer.from(x) },
    );
  const colon = x.indexOf(COLON);
  if (colon < 0) return [];
  const key = x.subarray(0, colon);
  let i = colon + 1;
  const parts: Buffer[] = [];
  let allow: boolean;
  if (x.subarray(i, i + 4).equals(DENY)) {
    allow = false;
    parts.push(Buffer.from('D\0'));
    i += 4;
  } else if (x.subarray(i, i + 5).equals(ALLOW)) {
    allow = true;
    i += 5;
  } else throw fail();
  const env: Array<[string, string]> = [];
  while (i < len) {
    if (x[i] !== COMMA) throw fail();
    const eq = x.indexOf(EQUALS, i);
    if (eq < 0) throw fail();
    const name = x.subarray(i + 1, eq);
    if (eq + 1 >= len) throw fail();
    const quote = x[eq + 1]!;
    const end = x.indexOf(quote, eq + 2);
    if (end < 0) throw fail();
    const value = x.subarray(eq + 2, end);
    parts.push(Buffer.from('+'), name, Buffer.from('='), value, Buffer.from('\0'));
    env.push([name.toString('utf8'), value.toString('utf8')]);
    i = end + 1;
  }
  const data = Buffer.concat(parts);
  return expandKey(key, fail).map((k) => ({ key: k, allow, env, data, line: lineNumber }));
}

/** tcprules' doaddressdata: `left-right` in a key without `=` or `@` is a range of the number it is part of. */
function expandKey(key: Buffer, fail: () => RulesError): Buffer[] {
  const dash = key.indexOf(0x2d);
  if (key.includes(EQUALS) || key.includes(0x40 /* @ */) || dash < 0) return [Buffer.from(key)];
  const dot = key.lastIndexOf(0x2e, dash - 1);
  const left = dot < 0 ? 0 : dot + 1;
  const after = key.indexOf(0x2e, dash + 1);
  const right = after < 0 ? key.length : after;
  const bot = scanDecimal(key, left, dash);
  const top0 = scanDecimal(key, dash + 1, right);
  if (bot === undefined || top0 === undefined) throw fail();
  const top = Math.min(top0, 255);
  const out: Buffer[] = [];
  for (let n = bot; n <= top; n++)
    out.push(Buffer.concat([key.subarray(0, left), Buffer.from(String(n)), key.subarray(right)]));
  return out;
}

/** djb's scan_ulong must consume exactly [from, to): digits only; an empty number is 0. */
function scanDecimal(b: Buffer, from: number, to: number): number | undefined {
  let n = 0;
  for (let i = from; i < to; i++) {
    const c = b[i]!;
    if (c < 0x30 || c > 0x39) return undefined;
    n = Math.min(n * 10 + (c - 0x30), 2 ** 32);
  }
  return n;
}

/** Split rules text into lines (on `\n` only) and parse each. @throws {RulesError} */
export function parseRules(text: Buffer | string): Rule[] {
  const buf = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
  const out: Rule[] = [];
  let n = 0;
  for (const line of splitLines(buf)) out.push(...parseRuleLine(line, ++n));
  return out;
}

function* splitLines(buf: Buffer): Generator<Buffer> {
  let pos = 0;
  while (pos < buf.length) {
    const nl = buf.indexOf(0x0a, pos);
    const end = nl < 0 ? buf.length : nl + 1;
    yield buf.subarray(pos, end);
    pos = end;
  }
}

/** A record's value for an allow/deny decision and its instructions, in tcprules' encoding. */
export function encodeRuleData(allow: boolean, env: ReadonlyArray<readonly [string, string]>): Buffer {
  const parts = allow ? [] : [Buffer.from('D\0')];
  for (const [n, v] of env) parts.push(Buffer.from(`+${n}=${v}\0`));
  return Buffer.concat(parts);
}

/**
 * Read a record's value as tcpserver's `found` does: NUL-terminated items, `D` denies,
 * `+NAME=value` sets a variable (an item without `=` is ignored), a trailing item without its NUL
 * is ignored.
 */
export function decodeRuleData(data: Buffer): { allow: boolean; env: Array<[string, string]> } {
  let allow = true;
  const env: Array<[string, string]> = [];
  let pos = 0;
  for (;;) {
    const nul = data.indexOf(0, pos);
    if (nul < 0) break;
    const item = data.subarray(pos, nul);
    if (item[0] === 0x44 /* D */) allow = false;
    else if (item[0] === 0x2b /* + */) {
      const eq = item.indexOf(EQUALS);
      // An empty NAME (`,="x"`, which tcprules accepts) cannot be put in an environment: skipped.
      if (eq > 1) env.push([item.subarray(1, eq).toString('utf8'), item.subarray(eq + 1).toString('utf8')]);
    }
    pos = nul + 1;
  }
  return { allow, env };
}
