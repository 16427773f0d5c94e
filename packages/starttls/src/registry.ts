import { StartTlsError, StartTlsErrorCodes } from './errors.js';
import type { StartTlsProtocol } from './protocol.js';

type Loader = () => Promise<{ protocol: StartTlsProtocol }>;

// One line per protocol: its name, whether it has a server side, and its file, loaded only when
// used (a tcpclient run loads the one protocol it speaks).
const registry: Record<string, { server: boolean; load: Loader }> = {
  smtp: { server: true, load: () => import('./protocols/smtp.js') },
  lmtp: { server: false, load: () => import('./protocols/lmtp.js') },
  pop3: { server: true, load: () => import('./protocols/pop3.js') },
  imap: { server: true, load: () => import('./protocols/imap.js') },
  nntp: { server: false, load: () => import('./protocols/nntp.js') },
  ftp: { server: false, load: () => import('./protocols/ftp.js') },
  sieve: { server: false, load: () => import('./protocols/sieve.js') },
  xmpp: { server: false, load: () => import('./protocols/xmpp.js') },
  'xmpp-server': { server: false, load: () => import('./protocols/xmpp-server.js') },
  ldap: { server: false, load: () => import('./protocols/ldap.js') },
  postgres: { server: false, load: () => import('./protocols/postgres.js') },
  mysql: { server: false, load: () => import('./protocols/mysql.js') },
  irc: { server: false, load: () => import('./protocols/irc.js') },
  connect: { server: false, load: () => import('./protocols/connect.js') },
};

// Other names for the same protocols: stunnel's `protocol = pgsql`.
const aliases: Record<string, string> = {
  pgsql: 'postgres',
  postgresql: 'postgres',
  'http-connect': 'connect',
};

function canonical(name: string): string {
  const lower = name.toLowerCase();
  return aliases[lower] ?? lower;
}

/** Names of the protocols with a client side, as `openssl s_client -starttls` spells them (plus `connect`). */
export const clientProtocols: readonly string[] = Object.freeze(Object.keys(registry));

/** Names of the protocols with a server side. */
export const serverProtocols: readonly string[] = Object.freeze(
  Object.keys(registry).filter((name) => registry[name]?.server),
);

/** Whether `name` (case-insensitive, aliases such as `pgsql` included) has a client side. */
export function isClientProtocol(name: string): boolean {
  return Object.hasOwn(registry, canonical(name));
}

/** Whether `name` (case-insensitive) has a server side. */
export function isServerProtocol(name: string): boolean {
  const entry = registry[canonical(name)];
  return Object.hasOwn(registry, canonical(name)) && entry?.server === true;
}

/**
 * Loads a protocol's file (a dynamic import, so only the protocols used are ever loaded). Rejects
 * with UCSPI_ERR_STARTTLS_UNKNOWN_PROTOCOL for a name this side does not know.
 */
export async function loadProtocol(
  name: string,
  side: 'client' | 'server' = 'client',
): Promise<StartTlsProtocol> {
  const key = canonical(name);
  const entry = Object.hasOwn(registry, key) ? registry[key] : undefined;
  if (!entry || (side === 'server' && !entry.server)) {
    const known = side === 'server' ? serverProtocols : clientProtocols;
    throw new StartTlsError(
      StartTlsErrorCodes.UNKNOWN_PROTOCOL,
      `unknown STARTTLS protocol for the ${side} side: ${JSON.stringify(name)} (known: ${known.join(', ')})`,
      { protocol: name },
    );
  }
  return (await entry.load()).protocol;
}
