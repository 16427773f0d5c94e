// Name qualification as djbdns does it (dns_rcrw.c, dns_qualify.c; documented on
// https://cr.yp.to/djbdns/qualify.html and in the dnsrewrite format). A list of instructions
// rewrites the name one instruction after another; the result may hold `+` alternatives, tried in
// order until one has addresses.
import { readFile } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { DnsError, DnsErrorCodes } from './errors.js';

/**
 * Where the qualification instructions come from, in djbdns's order of precedence.
 * `file` = $DNSREWRITEFILE or /etc/dnsrewrite; `localdomain` = $LOCALDOMAIN;
 * `resolvconf` = the first `search`/`domain` line of /etc/resolv.conf; `hostname` = the host's name.
 */
export type RewriteSource = 'file' | 'localdomain' | 'resolvconf' | 'hostname';

/** The instruction list in force, as djbdns builds it. */
export interface RewriteRules {
  /** One instruction per element, e.g. `?:+.example.com` or `*.:`. */
  rules: string[];
  source: RewriteSource;
}

/** Where to read the configuration; the defaults are djbdns's. Tests override the paths. */
export interface RewriteConfigOptions {
  /** Default `/etc/dnsrewrite`, used when $DNSREWRITEFILE is unset. */
  defaultRewriteFile?: string;
  /** Default `/etc/resolv.conf`. */
  resolvConfPath?: string;
  /** Default `os.hostname()`. */
  hostname?: string;
}

/** Reads a file; `undefined` when it does not exist (djb's openreadclose returning 0). */
async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path)).toString('latin1');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new DnsError(DnsErrorCodes.REWRITE_READ, `unable to read ${path}`, { path, cause: err });
  }
}

/**
 * Builds the instruction list exactly as djbdns's dns_rcrw.c does:
 * 1. $DNSREWRITEFILE (default /etc/dnsrewrite), if it exists: one instruction per line, trailing
 *    spaces, tabs and CRs removed.
 * 2. else $LOCALDOMAIN (space-separated domains d1 d2): `?:+.d1+.d2` then `*.:`.
 * 3. else the first `search` or `domain` line of /etc/resolv.conf, the same way.
 * 4. else, when the host's name has a dot, `?:.rest-of-hostname`; then `*.:`.
 * A file that exists but cannot be read throws DnsError UCSPI_ERR_DNS_REWRITE_READ (temporary).
 */
export async function loadRewriteRules(
  env: Record<string, string | undefined>,
  opts: RewriteConfigOptions = {},
): Promise<RewriteRules> {
  const file = env.DNSREWRITEFILE ?? opts.defaultRewriteFile ?? '/etc/dnsrewrite';
  const text = await readIfExists(file);
  if (text !== undefined) {
    // dns_rcrw.c appends a newline, so a last line without one still counts; an empty file is an
    // empty (but existing) list: no rewriting at all.
    const lines = `${text}\n`.split('\n');
    lines.pop();
    return { rules: lines.map((l) => l.replace(/[ \t\r]+$/, '')), source: 'file' };
  }

  const localdomain = env.LOCALDOMAIN;
  if (localdomain !== undefined) {
    // dns_rcrw.c splits on single spaces and appends "+." for every piece, empty ones included.
    const alternatives = localdomain
      .split(' ')
      .map((d) => `+.${d}`)
      .join('');
    return { rules: [`?:${alternatives}`, '*.:'], source: 'localdomain' };
  }

  const resolvConf = await readIfExists(opts.resolvConfPath ?? '/etc/resolv.conf');
  if (resolvConf !== undefined) {
    for (const line of resolvConf.split('\n')) {
      // Only lines that begin exactly with "search" or "domain" followed by a space or tab.
      if (/^(search|domain)[ \t]/.test(line)) {
        const domains = line
          .slice(7)
          .split(/[ \t]/)
          .filter((d) => d !== '');
        const alternatives = domains.map((d) => `+.${d}`).join('');
        return { rules: [`?:${alternatives}`, '*.:'], source: 'resolvconf' };
      }
    }
  }

  const host = opts.hostname ?? osHostname();
  const dot = host.indexOf('.');
  const rules = dot >= 0 ? [`?:${host.slice(dot)}`, '*.:'] : ['*.:'];
  return { rules, source: 'hostname' };
}

/**
 * Applies one instruction to a name, as dns_qualify.c's doit(). An instruction is
 * `<kind><suffix>:<replacement>`; it applies when the name ends with suffix (ASCII case-insensitive):
 * - `*` always; the suffix is replaced.
 * - `=` only when the name equals the suffix; the suffix (the whole name) is replaced.
 * - `?` only when the part before the suffix contains no `.`, `[` or `]`; the suffix is replaced.
 * - `-` the whole name is replaced.
 * Anything else (comments, lines without a colon) is ignored.
 */
export function applyRewriteRule(name: string, rule: string): string {
  const kind = rule[0];
  if (kind !== '?' && kind !== '=' && kind !== '*' && kind !== '-') return name;
  const body = rule.slice(1);
  const colon = body.indexOf(':');
  if (colon < 0) return name;
  const suffix = body.slice(0, colon);
  const replacement = body.slice(colon + 1);
  if (name.length < suffix.length) return name;
  const prefixLen = name.length - suffix.length;
  if (kind === '=' && prefixLen > 0) return name;
  if (name.slice(prefixLen).toLowerCase() !== suffix.toLowerCase()) return name;
  const prefix = name.slice(0, prefixLen);
  if (kind === '?' && /[.[\]]/.test(prefix)) return name;
  if (kind === '-') return replacement;
  return prefix + replacement;
}

/** Applies every instruction in order (dns_ip4_qualify_rules). The result may contain `+`. */
export function applyRewriteRules(name: string, rules: readonly string[]): string {
  let work = name;
  for (const rule of rules) work = applyRewriteRule(work, rule);
  return work;
}

/**
 * Splits a rewritten name into the names to try, in order (dns_ip4_qualify_rules): without `+`
 * the name itself; `base+s1+s2` gives `base` + `s1`, then `base` + `s2` (the bare base is not tried).
 */
export function expandAlternatives(rewritten: string): string[] {
  const plus = rewritten.indexOf('+');
  if (plus < 0) return [rewritten];
  const base = rewritten.slice(0, plus);
  return rewritten
    .slice(plus + 1)
    .split('+')
    .map((s) => base + s);
}
