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
  // An SNI secondary (`sni = primary:pattern` in a server section) takes the place of `accept`.
  const sniSecondary = !s.client && s.sni !== undefined;
  if (sniSecondary) {
    if (!s.sni!.includes(':')) fail('Invalid SNI parameter format');
    const primary = s.sni!.slice(0, s.sni!.indexOf(':'));
    const found = before.find((b) => b.name === primary);
    if (!found) fail('SNI section name not found');
    if (found!.client) fail('SNI primary service is a TLS client');
  }
  if (!s.client && s.cert === undefined) fail('TLS server needs a certificate');
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
    if (s.protocol === 'connect' && s.client) {
      if (s.protocolHost === undefined) fail('protocolHost not specified');
      if (s.protocolAuthentication !== undefined && s.protocolAuthentication !== 'basic')
        fail(`protocolAuthentication = ${s.protocolAuthentication} is not supported by ucspi-tunnel yet`);
    } else if (!s.client && ['smtp', 'pop3', 'imap'].includes(s.protocol)) {
      // Served through @ucspi/starttls's server side, the backend's greeting passed on.
    } else {
      // Not built yet: refusing is safer than relaying without the dialogue the line asks for.
      fail(
        `protocol = ${s.protocol}${s.client ? '' : ' in server mode'} is not supported by ucspi-tunnel yet`,
      );
    }
  }
  // What stunnel itself only warns about (observed on 5.68).
  if (s.client && !v.verifyChain && !v.verifyPeer && s.where)
    warnings.push({
      where: s.where,
      message: `Service [${s.name}] needs authentication to prevent MITM attacks`,
    });
  if (sniSecondary) fail('sni (name-based virtual services) is not supported by ucspi-tunnel yet');
  if (s.exec === undefined && s.execArgs !== undefined && s.where)
    warnings.push({ where: s.where, message: 'execArgs without exec: not used' });
  if (v.verifyPeer && s.caFile === undefined)
    fail('verifyPeer (verify = 3 or 4) with CApath alone is not supported by ucspi-tunnel yet: use CAfile');
  if (s.crlPath !== undefined) fail('CRLpath is not supported by ucspi-tunnel yet');
}
