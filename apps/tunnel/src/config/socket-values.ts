// `socket = a|l|r:OPTION=VALUE`: stunnel's socket options (a: the listening socket, l: an accepted
// one, r: the one to the `connect` target), read with stunnel 5.68's rules (observed): the letter
// and the name exactly as written (case matters), no blanks; booleans `yes`, `no`, `1`, `0` in any
// case; integers in decimal, an empty value being 0; SO_LINGER `ON[:SECONDS]`; the timeouts
// `SECONDS[:MICROSECONDS]`; SO_BINDTODEVICE any text. Anything else is `Illegal socket option`.
// Node.js can set only some of them (see socket-options.ts); the others are warned about.
import { OptionError } from './errors.js';

/** What kind of value a socket option takes. */
type Kind = 'bool' | 'int' | 'linger' | 'time' | 'text';

/** Every option stunnel 5.68 knows on Linux, as `stunnel4 -sockets` lists them, in its order. */
export const STUNNEL_SOCKET_OPTIONS: ReadonlyArray<readonly [string, Kind]> = [
  ['SO_DEBUG', 'bool'],
  ['SO_DONTROUTE', 'bool'],
  ['SO_KEEPALIVE', 'bool'],
  ['SO_LINGER', 'linger'],
  ['SO_OOBINLINE', 'bool'],
  ['SO_RCVBUF', 'int'],
  ['SO_SNDBUF', 'int'],
  ['SO_RCVLOWAT', 'int'],
  ['SO_SNDLOWAT', 'int'],
  ['SO_RCVTIMEO', 'time'],
  ['SO_SNDTIMEO', 'time'],
  ['SO_REUSEADDR', 'bool'],
  ['SO_BINDTODEVICE', 'text'],
  ['TCP_KEEPCNT', 'int'],
  ['TCP_KEEPIDLE', 'int'],
  ['TCP_KEEPINTVL', 'int'],
  ['IP_TOS', 'int'],
  ['IP_TTL', 'int'],
  ['TCP_NODELAY', 'bool'],
  ['IP_FREEBIND', 'bool'],
  ['IPV6_V6ONLY', 'bool'],
];
const KINDS = new Map(STUNNEL_SOCKET_OPTIONS);

/** Which socket a line is about. */
export type SocketSide = 'a' | 'l' | 'r';

/** One parsed `socket` line. */
export interface SocketOptionLine {
  side: SocketSide;
  name: string;
  /** A boolean as true/false, an integer as a number, the rest as written. */
  value: boolean | number | string;
}

const PATTERNS: Record<Kind, RegExp> = {
  bool: /^(yes|no|1|0)$/i,
  int: /^[+-]?\d*$/,
  linger: /^\d+(:\d*)?$/,
  time: /^\d+(:\d*)?$/,
  text: /^.*$/,
};

/** Parse one `socket` value; stunnel's `Illegal socket option` for anything it would refuse. */
export function parseSocketOption(text: string): SocketOptionLine {
  const m = /^([alr]):([A-Z0-9_]+)=(.*)$/.exec(text);
  const kind = m ? KINDS.get(m[2]!) : undefined;
  if (!m || !kind || !PATTERNS[kind].test(m[3]!)) throw new OptionError('Illegal socket option');
  const raw = m[3]!;
  const value = kind === 'bool' ? /^(yes|1)$/i.test(raw) : kind === 'int' ? Number(raw || '0') : raw;
  return { side: m[1] as SocketSide, name: m[2]!, value };
}

/** What Node.js's net.Socket can set: keep-alive (with its idle time) and Nagle's algorithm. */
const SETTABLE = new Set(['SO_KEEPALIVE', 'TCP_KEEPIDLE', 'TCP_NODELAY']);

/**
 * undefined: the line is honoured (socket-options.ts applies it); otherwise the warning that says
 * why it is not. Linux's bounds for TCP_KEEPIDLE are checked here, where stunnel would fail at
 * setsockopt time.
 */
export function unsupportedSocketOption(o: SocketOptionLine): string | undefined {
  if (o.name === 'SO_REUSEADDR' && o.side === 'a')
    return o.value
      ? undefined
      : 'Node.js always sets SO_REUSEADDR on a listening socket: a:SO_REUSEADDR=no is not applied';
  if (!SETTABLE.has(o.name))
    return `${o.side}:${o.name} cannot be set by ucspi-tunnel (Node.js offers no way to set it): not applied`;
  if (o.name === 'TCP_KEEPIDLE' && !(Number(o.value) >= 1 && Number(o.value) <= 32767))
    throw new OptionError('TCP_KEEPIDLE must be 1 to 32767 seconds');
  return undefined;
}
