// What `-options` and `-sockets` print after the version lines, in stunnel 5.68's shape, about
// what ucspi-tunnel supports: the `options` names it accepts, and the socket options it can set
// with their defaults per socket (accept, local, remote) and the system's.
import { readFileSync } from 'node:fs';
import { supportedSslOptionNames } from './config/tls-values.js';

/** `-options`: a blank line, the title, one `options = NAME` line per name. */
export function optionsListing(): string[] {
  return [' ', 'Supported TLS options:', ...supportedSslOptionNames().map((n) => `options = ${n}`)];
}

/** Linux's keep-alive idle time for a new socket (seconds), as getsockopt would give it. */
function systemKeepIdle(): string {
  try {
    return readFileSync('/proc/sys/net/ipv4/tcp_keepalive_time', 'latin1').trim();
  } catch {
    return '7200';
  }
}

/** The options `socket =` honours, in stunnel's order: defaults on accept, local, remote, and the OS's. */
function rows(): Array<[string, string, string, string, string]> {
  return [
    ['SO_KEEPALIVE', '', '', '', 'no'],
    // Node.js sets it on every listening socket.
    ['SO_REUSEADDR', 'yes', '', '', 'no'],
    ['TCP_KEEPIDLE', '', '', '', systemKeepIdle()],
    // Set on accepted and outgoing connections, as stunnel does.
    ['TCP_NODELAY', '', 'yes', 'yes', 'no'],
  ];
}

/** `-sockets`: a blank line, the title, stunnel's table. */
export function socketsListing(): string[] {
  const cell = (v: string) => (v === '' ? '    --    ' : v.padStart(10));
  return [
    ' ',
    'Socket option defaults:',
    '    Option Name         |  Accept  |   Local  |  Remote  |OS default',
    '    --------------------+----------+----------+----------+----------',
    ...rows().map(([name, ...values]) => `    ${name.padEnd(20)}|${values.map(cell).join('|')}`),
  ];
}
