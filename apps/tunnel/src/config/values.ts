// Value parsers of stunnel's options, with stunnel's own words for a bad value (options.c).
import type { SecureVersion } from 'node:tls';
import { OptionError } from './errors.js';

/** `yes` or `no`, any case; anything else (`1`, `true`, a trailing comment) is an error. */
export function parseBoolean(value: string): boolean {
  const v = value.toLowerCase();
  if (v === 'yes') return true;
  if (v === 'no') return false;
  throw new OptionError("The argument needs to be either 'yes' or 'no'");
}

/** A whole number of seconds (stunnel: strtol with nothing left over, not negative). */
export function parseSeconds(value: string, what: string): number {
  if (!/^\d+$/.test(value)) throw new OptionError(`Illegal ${what} timeout`);
  return Number(value);
}

const LEVELS = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'];
const FACILITIES = [
  'auth',
  'authpriv',
  'cron',
  'daemon',
  'ftp',
  'kern',
  'lpr',
  'mail',
  'news',
  'syslog',
  'user',
  'uucp',
  'local0',
  'local1',
  'local2',
  'local3',
  'local4',
  'local5',
  'local6',
  'local7',
];

/** `debug = [facility.]level`: a syslog level name or number 0-7, case ignored. */
export function parseDebug(value: string): { facility: string | undefined; level: number } {
  const dot = value.indexOf('.');
  let facility: string | undefined;
  let level = value;
  if (dot >= 0) {
    facility = value.slice(0, dot).toLowerCase();
    level = value.slice(dot + 1);
    if (!FACILITIES.includes(facility)) throw new OptionError('Illegal syslog facility');
  }
  const l = level.toLowerCase();
  const n = /^[0-7]$/.test(l)
    ? Number(l)
    : LEVELS.indexOf(l === 'error' ? 'err' : l === 'warn' ? 'warning' : l);
  if (n < 0) throw new OptionError('Illegal debug level');
  return { facility, level: n };
}

/** stunnel's protocol version names, as node:tls spells them; SSLv2 is refused as stunnel 5 does. */
export function parseTlsVersion(value: string): SecureVersion | 'all' {
  const v = value.toLowerCase();
  const known: Record<string, SecureVersion | 'all'> = {
    all: 'all',
    tlsv1: 'TLSv1',
    'tlsv1.1': 'TLSv1.1',
    'tlsv1.2': 'TLSv1.2',
    'tlsv1.3': 'TLSv1.3',
  };
  const found = known[v];
  if (found) return found;
  // SSLv3 is a valid stunnel value, but OpenSSL 3 as Node.js builds it has no SSLv3 at all: going
  // on would not give what the line asks for.
  if (v === 'sslv3') throw new OptionError('SSLv3 is not available in Node.js (ucspi-tunnel)');
  throw new OptionError('Invalid protocol version');
}

/** `execArgs`: split on runs of whitespace, no quoting ($0 first), as stunnel. */
export function splitArgs(value: string): string[] {
  return value.split(/[ \t]+/).filter((a) => a !== '');
}

/** `[host:]port` as accept and connect take it: split at the last colon; no host: undefined. */
export function splitHostPort(value: string): { host: string | undefined; port: string } {
  const colon = value.lastIndexOf(':');
  if (colon < 0) return { host: undefined, port: value };
  let host = value.slice(0, colon);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host, port: value.slice(colon + 1) };
}

/** Whether a port operand is a plain number 1-65535 or a service name stunnel would look up. */
export function checkPort(port: string): void {
  if (port === '') throw new OptionError('Invalid port');
  if (/^\d+$/.test(port) && (Number(port) < 1 || Number(port) > 65535)) throw new OptionError('Invalid port');
}
