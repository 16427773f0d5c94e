// `ident = USERNAME`: before anything else is done for a connection (no TLS, no backend), the
// client's ident server (RFC 1413, port 113 of the client's address) is asked who owns it, through
// @ucspi/ident, and the connection is served only when the answer names USERNAME. As stunnel
// 5.68's auth_user(): the same query, the same reading of the reply (the type must be ` USERID `
// exactly, the user is what follows the third colon without its leading spaces, compared exactly),
// the same log lines and levels, the connection within TIMEOUTconnect and the reply within
// TIMEOUTbusy. Each lookup waits on its own connection only: other clients are served meanwhile.
import type { ConnectionInfo } from '@ucspi/env';
import { IDENT_PORT, identQuery } from '@ucspi/ident';
import { addr, unmapped } from './address.js';
import type { ServiceConfig } from './config/types.js';
import { LOG, safe, type TunnelLog } from './log.js';
import { errnoText } from './targets.js';

/**
 * The ident server's port, for tests (stunnel takes `auth` from /etc/services, 113): port 113
 * needs root to listen on.
 */
export const IDENT_PORT_VARIABLE = 'UCSPI_TUNNEL_IDENT_PORT';

function identPort(): number {
  const v = process.env[IDENT_PORT_VARIABLE];
  const n = Number(v);
  return v !== undefined && /^\d+$/.test(v) && n >= 1 && n <= 65535 ? n : IDENT_PORT;
}

/**
 * Ask the client's ident server; true when it names the service's `ident` user. A refusal is
 * logged in stunnel's words (the caller logs `Connection reset` and resets the client).
 */
export async function identAdmits(
  s: ServiceConfig,
  info: ConnectionInfo,
  id: number,
  log: TunnelLog,
  /** false: the connection has no peer address (inetd mode on pipes): nobody to ask. */
  hasPeer: boolean,
): Promise<boolean> {
  // stunnel skips the check there (and for Unix sockets), which would let anyone in.
  if (!hasPeer) {
    log.write(LOG.err, id, 'IDENT needs a TCP connection: this one has no peer address');
    return false;
  }
  const remoteIp = unmapped(info.remoteIp);
  const port = identPort();
  const where = addr(remoteIp, port);
  log.write(LOG.info, id, `s_connect: connecting ${where}`);
  // stunnel sends the port of its first `accept` line (0 in inetd mode, which no identd can
  // answer); the port the client reached is the one RFC 1413 asks for, the same in the usual case.
  const query = `${info.remotePort} , ${info.localPort}`;
  const r = await identQuery({
    remoteIp,
    remotePort: info.remotePort,
    localIp: unmapped(info.localIp),
    localPort: info.localPort,
    connectTimeoutMs: s.timeoutConnect * 1000,
    timeoutMs: s.timeoutBusy * 1000,
    port,
  });
  if (!r.connected) {
    if (r.outcome === 'connect timeout' || r.outcome === 'timeout')
      log.write(LOG.err, id, `s_connect: s_poll_wait ${where}: TIMEOUTconnect exceeded`);
    else log.write(LOG.err, id, `s_connect: connect ${where}: ${errnoText({ code: r.outcome })}`);
    return false;
  }
  log.write(LOG.notice, id, `s_connect: connected ${where}`);
  log.write(LOG.debug, id, 'IDENT server connected');
  log.write(LOG.debug, id, ` -> ${query}`);
  if (r.line === undefined) {
    if (r.outcome === 'timeout')
      log.write(LOG.info, id, 's_read_eof: s_poll_wait: TIMEOUTbusy exceeded: sending reset');
    else if (r.outcome === 'no complete reply') log.write(LOG.err, id, 's_read: Unexpected socket close');
    else if (r.outcome === 'reply line too long') log.write(LOG.err, id, 'fd_getline: Line too long');
    else log.write(LOG.err, id, `s_read_eof: readsocket: ${errnoText({ code: r.outcome })}`);
    return false;
  }
  // stunnel's fd_getline drops every CR and ends the line at a NUL.
  const line = r.line.replace(/\r/g, '').split('\0')[0]!;
  log.write(LOG.debug, id, ` <- ${safe(line)}`);
  // As auth_user(): a colon after the ports, one after the type, then the type checked, then a
  // colon after the system.
  const fields = line.split(':');
  const why =
    fields.length < 3
      ? 'Malformed IDENT response'
      : fields[1] !== ' USERID '
        ? 'Incorrect IDENT response type'
        : fields.length < 4
          ? 'Malformed IDENT response'
          : undefined;
  if (why) {
    log.write(LOG.err, id, why);
    return false;
  }
  // The user: everything after the third colon (colons included), leading spaces skipped.
  const user = fields.slice(3).join(':').replace(/^ +/, '');
  if (user !== s.ident) {
    log.write(
      LOG.warning,
      id,
      `Connection from ${addr(remoteIp, info.remotePort)} REFUSED by IDENT (user "${safe(user)}")`,
    );
    return false;
  }
  log.write(LOG.info, id, 'IDENT authentication passed');
  return true;
}
