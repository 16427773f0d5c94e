// The checks stunnel makes at the end of each section and of the global part, in its words
// (stunnel-behaviour.md section 2, "Section validation").
import { isAbsolute } from 'node:path';
import { ConfigError } from './errors.js';
import type { ConfigWarning, GlobalConfig, ServiceConfig } from './types.js';

/** Protocols stunnel 5.68 knows; which of them ucspi-tunnel serves is decided in validateService. */
const STUNNEL_PROTOCOLS = [
  'cifs',
  'capwin',
  'capwinctrl',
  'connect',
  'imap',
  'ldap',
  'nntp',
  'pgsql',
  'pop3',
  'proxy',
  // Beyond stunnel: the PROXY v2 header (proxy-send.ts).
  'proxy-v2',
  'smtp',
  'socks',
];

/** `Global options: ...` checks, made when the global part ends. */
export function validateGlobals(g: GlobalConfig): void {
  if (g.pid !== undefined && !isAbsolute(g.pid))
    throw new ConfigError('Global options: Pid file must include full path name');
  if (g.output !== undefined && !isAbsolute(g.output))
    throw new ConfigError('Global options: Log file must include full path name');
}

/** The checks of one section (or of the inetd-mode service), in stunnel's order and words. */
export function validateService(
  s: ServiceConfig,
  before: readonly ServiceConfig[],
  inetd: boolean,
  warnings: ConfigWarning[],
): void {
  const prefix = inetd ? 'Inetd mode' : `Service [${s.name}]`;
  const fail = (message: string): never => {
    throw new ConfigError(`${prefix}: ${message}`);
  };
  // stunnel 5.68 checks the certificate before the SNI option (observed).
  if (!s.client && s.cert === undefined) fail('TLS server needs a certificate');
  // Server mode only, right after the certificate (observed); a client section ignores both.
  if (!s.client && (s.ticketKeySecret === undefined) !== (s.ticketMacSecret === undefined))
    fail('"ticketKeySecret" and "ticketMacSecret" must be set together');
  // An SNI secondary (`sni = primary:pattern` in a server section) takes the place of `accept`.
  const sniSecondary = !s.client && s.sni !== undefined;
  if (sniSecondary) checkSniSecondary(s, before, fail, warnings);
  if (inetd && s.accept.length > 0) fail("'accept' option is only allowed in a [section]");
  const endpoints =
    (s.accept.length > 0 ? 1 : 0) +
    (s.connect.length > 0 ? 1 : 0) +
    (s.exec !== undefined ? 1 : 0) +
    (sniSecondary ? 1 : 0) +
    s.otherEndpoints;
  if (inetd && endpoints !== 1) fail('Inetd mode must define one endpoint');
  if (!inetd && endpoints !== 2) fail('Each service must define two endpoints');
  const v = s.verify;
  if ((v.verifyChain || v.verifyPeer) && s.caFile === undefined && s.caPath === undefined)
    fail('Either "CAengine", "CAfile" or "CApath" has to be configured');
  if ((s.checkHost.length || s.checkIP.length || s.checkEmail.length) && !v.verifyChain && !v.verifyPeer)
    fail('Either "verifyChain" or "verifyPeer" has to be enabled');
  if (s.protocol !== undefined) {
    if (!STUNNEL_PROTOCOLS.includes(s.protocol)) fail('Protocol not supported');
    if (s.protocol === 'proxy' && s.client) fail("The 'proxy' protocol is not supported in the client mode");
    if (s.protocol === 'proxy-v2' && s.client)
      fail("The 'proxy-v2' protocol is not supported in the client mode");
    if (s.protocol === 'nntp' && !s.client) fail("The 'nntp' protocol is not supported in the server mode");
    if (s.protocol === 'connect' && s.client) {
      if (s.protocolHost === undefined) fail('protocolHost not specified');
      if (s.protocolAuthentication !== undefined && s.protocolAuthentication !== 'basic')
        fail(`protocolAuthentication = ${s.protocolAuthentication} is not supported by ucspi-tunnel yet`);
    } else if (s.client && ['smtp', 'pop3', 'imap', 'nntp'].includes(s.protocol)) {
      // Through @ucspi/starttls's client side (client-protocol.ts); smtp with protocolUsername and
      // protocolPassword logs in inside TLS (PLAIN, or LOGIN). stunnel takes NTLM for PLAIN there.
      if (s.protocol === 'smtp' && s.protocolAuthentication === 'ntlm')
        fail('protocolAuthentication = ntlm is not supported with protocol = smtp (plain or login)');
      // stunnel logs in only with both, silently; said here.
      if (
        s.protocol === 'smtp' &&
        (s.protocolUsername === undefined) !== (s.protocolPassword === undefined) &&
        s.where
      )
        warnings.push({
          where: s.where,
          message: 'SMTP AUTH needs both protocolUsername and protocolPassword: not used',
        });
      // It is the EHLO name: a second word would be a second command.
      if (s.protocol === 'smtp' && s.protocolHost !== undefined && /[\s\x00-\x1f\x7f]/.test(s.protocolHost))
        fail('protocolHost must be one word with protocol = smtp (the EHLO name)');
    } else if (!s.client && (s.protocol === 'proxy' || s.protocol === 'proxy-v2')) {
      // The PROXY v1 (v2: beyond stunnel) header before the client's bytes (proxy-send.ts).
    } else if (!s.client && ['smtp', 'pop3', 'imap'].includes(s.protocol)) {
      // Served through @ucspi/starttls's server side, the backend's greeting passed on.
    } else {
      // Not built yet: refusing is safer than relaying without the dialogue the line asks for.
      fail(
        `protocol = ${s.protocol}${s.client ? '' : ' in server mode'} is not supported by ucspi-tunnel yet`,
      );
    }
  }
  if (s.redirect.length > 0) checkRedirect(s, fail);
  // stunnel's local mode (connect and exec, no accept; local-mode.ts): the program is the local
  // end, so what needs an accepted client (its address, a PROXY header, a STARTTLS dialogue) is
  // not built for it.
  if (!inetd && s.exec !== undefined && s.connect.length > 0 && s.accept.length === 0) {
    const needsClient = [
      s.protocol !== undefined && 'protocol',
      s.ident !== undefined && 'ident',
      s.rules !== undefined && 'rules',
      s.acceptProxy && 'acceptProxy',
    ].filter((x): x is string => typeof x === 'string');
    if (needsClient.length > 0)
      fail(
        `${needsClient[0]} in local mode (connect and exec without accept) is not supported by ucspi-tunnel yet`,
      );
  }
  // What stunnel itself only warns about (observed on 5.68).
  if (s.client && !v.verifyChain && !v.verifyPeer && s.where)
    warnings.push({
      where: s.where,
      message: `Service [${s.name}] needs authentication to prevent MITM attacks`,
    });
  if (s.exec === undefined && s.execArgs !== undefined && s.where)
    warnings.push({ where: s.where, message: 'execArgs without exec: not used' });
  // stunnel accepts it and has no use for it without exec.
  if (s.exec === undefined && s.pty && s.where)
    warnings.push({ where: s.where, message: 'pty = yes without exec: not used' });
  if (s.client && (s.ticketKeySecret || s.ticketMacSecret) && s.where)
    warnings.push({
      where: s.where,
      message: 'ticketKeySecret and ticketMacSecret work in server mode only: not used',
    });
  if (v.verifyPeer && s.caFile === undefined)
    fail('verifyPeer (verify = 3 or 4) with CApath alone is not supported by ucspi-tunnel yet: use CAfile');
  // The rules decide at accept time, in @ucspi/server's engine; inetd mode has no listener of its own.
  if (inetd && s.rules !== undefined)
    fail(
      'rules is not supported by ucspi-tunnel in inetd mode yet: use the rules of the server that runs it',
    );
  // acceptProxy (beyond stunnel): the engine reads the header before TLS, in server mode only.
  if (s.acceptProxy && s.client) fail('acceptProxy is not supported in the client mode');
  if (inetd && s.acceptProxy)
    fail(
      'acceptProxy is not supported by ucspi-tunnel in inetd mode yet: let the server that runs it read the header',
    );
  // ident asks the client's host, which a PROXY header names but cannot be asked from here.
  if (s.ident !== undefined && s.acceptProxy) fail('ident with acceptProxy is not supported by ucspi-tunnel');
}

/** `redirect` in stunnel 5.68's words and order (options.c, the redirect option's initialization). */
function checkRedirect(s: ServiceConfig, fail: (message: string) => never): void {
  if (s.client) fail('"redirect" is unsupported in client sections');
  // smtp, pop3 and imap connect the backend before TLS: nothing is known of the client yet.
  if (s.protocol !== undefined && ['smtp', 'pop3', 'imap'].includes(s.protocol))
    fail('"redirect" is incompatible with the specified protocol negotiation');
  if (!s.verify.verifyChain && !s.verify.verifyPeer)
    fail('Either "verifyChain" or "verifyPeer" has to be enabled for "redirect" to work');
}

/**
 * `sni = PRIMARY:PATTERN` in a server section, in stunnel's words. The primary is looked up among
 * the sections so far, this one included (stunnel's list already holds it), by exact name.
 */
function checkSniSecondary(
  s: ServiceConfig,
  before: readonly ServiceConfig[],
  fail: (message: string) => never,
  warnings: ConfigWarning[],
): void {
  const colon = s.sni!.indexOf(':');
  if (colon < 0) fail('Invalid SNI parameter format');
  const name = s.sni!.slice(0, colon);
  const primary = [...before, s].find((b) => b.name === name);
  if (!primary) fail('SNI section name not found');
  if (primary!.client) fail('SNI primary service is a TLS client');
  // The rules decide before any TLS work, with the primary's listener: a secondary cannot have others.
  if (s.rules !== undefined && s.rules !== primary!.rules)
    fail("rules in an SNI secondary must be the primary's: the rules decide before the server name is known");
  // The same for acceptProxy: the header is read by the primary's listener, before TLS.
  if (s.acceptProxy !== primary!.acceptProxy)
    fail(
      "acceptProxy in an SNI secondary must be the primary's: the header is read before the server name is known",
    );
  // ident is asked before TLS, for the primary: stunnel never uses a secondary's.
  if (s.ident !== primary!.ident)
    fail(
      "ident in an SNI secondary must be the primary's: the client is checked before the server name is known",
    );
  // The STARTTLS dialogue happens before the handshake, with the primary's backend; stunnel then
  // ignores the secondary's connect. Not built here: refused rather than half honoured.
  if (primary!.protocol !== undefined || s.protocol !== undefined)
    fail('sni with protocol (in the primary or the secondary) is not supported by ucspi-tunnel yet');
  // stunnel accepts it, but the handshake has already switched once: such a service is never used.
  if (!primary!.client && primary!.sni !== undefined && s.where)
    warnings.push({
      where: s.where,
      message: `Service [${s.name}]: SNI primary [${name}] is itself an SNI secondary: this service is never used`,
    });
}
