// The option table: each stunnel 5.68 option name (lower case), where it may be written, and what
// it does to the configuration. Options we do not honour yet are never silently ignored: they warn
// (naming the file and line) when going on is safe, and fail the configuration (exit 1, as any
// stunnel configuration error) when going on would weaken what the line asks for. One table, so
// over 300 lines: an option is found in one place, whatever its kind.

import { canSpawnPty } from '@ucspi/exec';
import { chrootOption, jailPath } from './chroot.js';
import { OptionError } from './errors.js';
import { checkRulesFile } from './rules-file.js';
import { checkSniPattern } from './sni-pattern.js';
import { parseSocketOption, unsupportedSocketOption } from './socket-values.js';
import { applySslOption, parseSecurityLevel, parseTicketSecret } from './tls-values.js';
import type { GlobalConfig, ServiceConfig, Where } from './types.js';
import {
  checkPort,
  parseBoolean,
  parseDebug,
  parseSeconds,
  parseTlsVersion,
  splitArgs,
  splitHostPort,
} from './values.js';

/** What a handler may touch. */
export interface OptionContext {
  globals: GlobalConfig;
  /** The section (or the global part's service defaults). */
  service: ServiceConfig;
  /** The line being read. */
  where: Where;
  /** Record a warning about this line. */
  warn(message: string): void;
}

type Handler = (ctx: OptionContext, value: string) => void;

interface OptionSpec {
  /** Valid in the global part only, in a section only (or as a default in the global part), or both. */
  scope: 'global' | 'service' | 'both';
  /** For `both`: what it does in the global part; `service` applies in sections. */
  global?: Handler;
  service?: Handler;
}

const notYet = (what: string) => `${what} is not supported by ucspi-tunnel yet`;

/** Refuse the line: honouring it matters for safety and we cannot yet. */
const refuse =
  (what: string): Handler =>
  () => {
    throw new OptionError(notYet(what));
  };
/** Accept the line with a warning: going on without it is safe. */
const warnOnly =
  (message: string): Handler =>
  (ctx) =>
    ctx.warn(message);
/** A yes/no option that is fine one way and refused (or warned about) the other way. */
const boolGuard =
  (fine: boolean, otherwise: Handler): Handler =>
  (ctx, v) => {
    if (parseBoolean(v) !== fine) otherwise(ctx, v);
  };

const svc = (spec: Handler): OptionSpec => ({ scope: 'service', service: spec });
const glob = (spec: Handler): OptionSpec => ({ scope: 'global', global: spec });

function setVerifyLevel(s: ServiceConfig, value: string): void {
  if (!/^[0-4]$/.test(value)) throw new OptionError('Bad verify level');
  const level = Number(value);
  // stunnel 5's verify levels as its verifyChain / verifyPeer / requireCert switches.
  s.verify = {
    request: true,
    require: level >= 2,
    verifyChain: level >= 1 && level <= 3,
    verifyPeer: level >= 3,
  };
}

/** `socket = a|l|r:OPTION=VALUE`: kept when Node.js can set it, else warned about naming the line. */
function socketOption(ctx: OptionContext, value: string): void {
  const line = parseSocketOption(value);
  const why = unsupportedSocketOption(line);
  if (why) ctx.warn(why);
  else ctx.service.socketOptions.push(line);
}

const endpoint = (value: string): string => {
  const { port } = splitHostPort(value);
  checkPort(port);
  return value;
};

/** Every option stunnel 5.68 knows on Unix, by lower-case name. */
export const OPTIONS: ReadonlyMap<string, OptionSpec> = new Map<string, OptionSpec>([
  // ---- global only
  ['chroot', glob(chrootOption)],
  [
    'compression',
    glob(warnOnly('compression is obsolete and never used (Node.js builds OpenSSL without it)')),
  ],
  // Beyond stunnel: TERM lets connections in progress finish for this long (see main.ts).
  ['draintimeout', glob((ctx, v) => void (ctx.globals.drainTimeout = parseSeconds(v, 'drain')))],
  ['egd', glob(warnOnly('EGD is obsolete: OpenSSL seeds itself from the system'))],
  ['engine', glob(refuse('engine (OpenSSL engines)'))],
  ['enginectrl', glob(refuse('engineCtrl (OpenSSL engines)'))],
  ['enginedefault', glob(refuse('engineDefault (OpenSSL engines)'))],
  ['fips', glob(boolGuard(false, refuse('fips = yes')))],
  [
    'foreground',
    glob((ctx, v) => {
      const l = v.toLowerCase();
      if (l !== 'yes' && l !== 'no' && l !== 'quiet')
        throw new OptionError("The argument needs to be either 'yes', 'quiet' or 'no'");
      ctx.globals.foreground = l;
    }),
  ],
  [
    'log',
    glob((ctx, v) => {
      const l = v.toLowerCase();
      if (l !== 'append' && l !== 'overwrite')
        throw new OptionError("The argument needs to be either 'append' or 'overwrite'");
      ctx.globals.logOverwrite = l === 'overwrite';
    }),
  ],
  ['output', glob((ctx, v) => void (ctx.globals.output = v))],
  ['pid', glob((ctx, v) => void (ctx.globals.pid = v === '' ? undefined : v))],
  ['rndbytes', glob(warnOnly('RNDbytes is obsolete: OpenSSL seeds itself from the system'))],
  ['rndfile', glob(warnOnly('RNDfile is obsolete: OpenSSL seeds itself from the system'))],
  ['rndoverwrite', glob(warnOnly('RNDoverwrite is obsolete: OpenSSL seeds itself from the system'))],
  [
    'syslog',
    glob((ctx, v) => {
      ctx.globals.syslog = parseBoolean(v);
    }),
  ],
  // ---- both
  [
    'debug',
    {
      scope: 'both',
      global: (ctx, v) => {
        const d = parseDebug(v);
        ctx.globals.debugLevel = d.level;
        if (d.facility) ctx.globals.debugFacility = d.facility;
      },
      service: (ctx, v) => {
        const d = parseDebug(v);
        ctx.service.debugLevel = d.level;
      },
    },
  ],
  [
    'service',
    {
      scope: 'both',
      // The global one is syslog's tag (stunnel's openlog ident); its libwrap use does not apply.
      global: (ctx, v) => void (ctx.globals.service = v),
      service: warnOnly('service names the service for libwrap, which ucspi-tunnel does not have'),
    },
  ],
  [
    'setuid',
    {
      scope: 'both',
      global: (ctx, v) => void (ctx.globals.setuid = v),
      service: warnOnly(notYet('setuid in a section (the owner of a Unix accept socket)')),
    },
  ],
  [
    'setgid',
    {
      scope: 'both',
      global: (ctx, v) => void (ctx.globals.setgid = v),
      service: warnOnly(notYet('setgid in a section (the group of a Unix accept socket)')),
    },
  ],
  // In the global part a default for every later section, as the other service-level options.
  ['socket', { scope: 'both', global: socketOption, service: socketOption }],
  // ---- service level
  ['accept', svc((ctx, v) => void ctx.service.accept.push(endpoint(v)))],
  ['acceptproxy', svc((ctx, v) => void (ctx.service.acceptProxy = parseBoolean(v)))],
  ['caengine', svc(refuse('CAengine'))],
  ['capath', svc((ctx, v) => void (ctx.service.caPath = v))],
  ['cafile', svc((ctx, v) => void (ctx.service.caFile = v))],
  ['cert', svc((ctx, v) => void (ctx.service.cert = v))],
  ['checkemail', svc((ctx, v) => void ctx.service.checkEmail.push(v))],
  ['checkhost', svc((ctx, v) => void ctx.service.checkHost.push(v))],
  ['checkip', svc((ctx, v) => void ctx.service.checkIP.push(v))],
  ['ciphers', svc((ctx, v) => void (ctx.service.ciphers = v))],
  ['ciphersuites', svc((ctx, v) => void (ctx.service.ciphersuites = v))],
  ['client', svc((ctx, v) => void (ctx.service.client = parseBoolean(v)))],
  ['config', svc(warnOnly(`${notYet('config (OpenSSL configuration commands)')}: not applied`))],
  ['connect', svc((ctx, v) => void ctx.service.connect.push(endpoint(v)))],
  ['crlpath', svc((ctx, v) => void (ctx.service.crlPath = v))],
  ['crlfile', svc((ctx, v) => void (ctx.service.crlFile = v))],
  ['curves', svc((ctx, v) => void (ctx.service.curves = v))],
  ['curve', svc((ctx, v) => void (ctx.service.curves = v))],
  ['delay', svc((ctx, v) => void (ctx.service.delay = parseBoolean(v)))],
  ['engineid', svc(refuse('engineId (OpenSSL engines)'))],
  ['enginenum', svc(refuse('engineNum (OpenSSL engines)'))],
  ['exec', svc((ctx, v) => void (ctx.service.exec = v))],
  ['execargs', svc((ctx, v) => void (ctx.service.execArgs = splitArgs(v)))],
  [
    'failover',
    svc((ctx, v) => {
      const l = v.toLowerCase();
      if (l !== 'rr' && l !== 'prio') throw new OptionError("The argument needs to be either 'rr' or 'prio'");
      ctx.service.failover = l;
    }),
  ],
  ['ident', svc((ctx, v) => void (ctx.service.ident = v))],
  ['include', svc(() => undefined)], // handled by the parser before this table
  ['key', svc((ctx, v) => void (ctx.service.key = v))],
  ['libwrap', svc(boolGuard(false, refuse('libwrap = yes (TCP Wrappers)')))],
  ['local', svc((ctx, v) => void (ctx.service.local = v))],
  [
    'logid',
    svc((ctx, v) => {
      const l = v.toLowerCase();
      if (l !== 'sequential' && l !== 'unique' && l !== 'thread' && l !== 'process')
        throw new OptionError('Invalid connection identifier type');
      ctx.service.logId = l;
    }),
  ],
  ['ocsp', svc(refuse('OCSP'))],
  ['ocspaia', svc(boolGuard(false, refuse('OCSPaia = yes')))],
  ['ocspflag', svc(warnOnly(`${notYet('OCSPflag')}: OCSP is not used`))],
  ['ocspnonce', svc(warnOnly(`${notYet('OCSPnonce')}: OCSP is not used`))],
  ['ocsprequire', svc(warnOnly(`${notYet('OCSPrequire')}: OCSP is not used`))],
  ['options', svc((ctx, v) => void (ctx.service.sslOptions = applySslOption(ctx.service.sslOptions, v)))],
  ['protocol', svc((ctx, v) => void (ctx.service.protocol = v.toLowerCase()))],
  [
    'protocolauthentication',
    // stunnel takes any word and falls back (connect: basic, smtp: PLAIN); here a typo is refused.
    svc((ctx, v) => {
      const a = v.toLowerCase();
      if (!['basic', 'ntlm', 'plain', 'login'].includes(a))
        throw new OptionError(
          'Unknown protocolAuthentication: basic or ntlm (connect), plain or login (smtp)',
        );
      ctx.service.protocolAuthentication = a;
    }),
  ],
  ['protocoldomain', svc(warnOnly(`${notYet('protocolDomain')}: not used`))],
  ['protocolheader', svc(warnOnly(`${notYet('protocolHeader')}: not sent`))],
  ['protocolhost', svc((ctx, v) => void (ctx.service.protocolHost = v))],
  ['protocolpassword', svc((ctx, v) => void (ctx.service.protocolPassword = v))],
  ['protocolusername', svc((ctx, v) => void (ctx.service.protocolUsername = v))],
  ['pskidentity', svc(refuse('PSKidentity'))],
  ['psksecrets', svc(refuse('PSKsecrets'))],
  [
    'pty',
    // The `exec` program on a pseudo terminal (exec-program.ts), which only @ucspi/exec's addon makes.
    svc((ctx, v) => {
      const on = parseBoolean(v);
      if (on && !canSpawnPty)
        throw new OptionError(
          'pty = yes needs the native addon of @ucspi/exec (Linux x64/arm64): not loaded here',
        );
      ctx.service.pty = on;
    }),
  ],
  // Several lines accumulate; checked when the section ends (validate.ts), resolved at start (daemon.ts).
  ['redirect', svc((ctx, v) => void ctx.service.redirect.push({ value: endpoint(v), where: ctx.where }))],
  [
    'renegotiation',
    svc(
      boolGuard(
        false,
        warnOnly('client-initiated renegotiation is always refused (TLS 1.2; TLS 1.3 has none)'),
      ),
    ),
  ],
  ['requirecert', svc((ctx, v) => void (ctx.service.verify.require = parseBoolean(v)))],
  ['reset', svc((ctx, v) => void (ctx.service.reset = parseBoolean(v)))],
  // Only a connect+exec section without accept (stunnel's local mode) retries: see local-mode.ts.
  ['retry', svc((ctx, v) => void (ctx.service.retry = parseBoolean(v)))],
  // Beyond stunnel: sslserver's rules per client address (a cdb made by tcprules).
  ['rules', svc((ctx, v) => void (ctx.service.rules = checkRulesFile(v, jailPath(ctx.globals.chroot, v))))],
  ['securitylevel', svc((ctx, v) => void (ctx.service.securityLevel = parseSecurityLevel(v)))],
  ['sessioncachesize', svc(warnOnly(`${notYet('sessionCacheSize')}: OpenSSL's default size is used`))],
  ['sessioncachetimeout', svc((ctx, v) => void (ctx.service.sessionTimeout = parseSeconds(v, 'session')))],
  ['session', svc((ctx, v) => void (ctx.service.sessionTimeout = parseSeconds(v, 'session')))],
  ['sessionresume', svc((ctx, v) => void (ctx.service.sessionResume = parseBoolean(v)))],
  ['sessiond', svc(warnOnly(`${notYet('sessiond')}: sessions are cached in this process only`))],
  [
    'sni',
    svc((ctx, v) => {
      // `PRIMARY:PATTERN` names an SNI secondary (server mode); a plain name is what a client sends.
      if (v.includes(':')) checkSniPattern(v.slice(v.indexOf(':') + 1));
      ctx.service.sni = v;
    }),
  ],
  [
    'sslversion',
    svc((ctx, v) => {
      const ver = parseTlsVersion(v);
      ctx.service.sslVersionMin = ver === 'all' ? undefined : ver;
      ctx.service.sslVersionMax = ver === 'all' ? undefined : ver;
    }),
  ],
  [
    'sslversionmax',
    svc((ctx, v) => {
      const ver = parseTlsVersion(v);
      ctx.service.sslVersionMax = ver === 'all' ? undefined : ver;
    }),
  ],
  [
    'sslversionmin',
    svc((ctx, v) => {
      const ver = parseTlsVersion(v);
      ctx.service.sslVersionMin = ver === 'all' ? undefined : ver;
    }),
  ],
  ['stack', svc(warnOnly('stack is meaningless here (no threads)'))],
  [
    'ticketkeysecret',
    svc((ctx, v) => void (ctx.service.ticketKeySecret = parseTicketSecret('ticketKeySecret', v))),
  ],
  [
    'ticketmacsecret',
    svc((ctx, v) => void (ctx.service.ticketMacSecret = parseTicketSecret('ticketMacSecret', v))),
  ],
  ['timeoutbusy', svc((ctx, v) => void (ctx.service.timeoutBusy = parseSeconds(v, 'busy')))],
  ['timeoutclose', svc((ctx, v) => void (ctx.service.timeoutClose = parseSeconds(v, 'close')))],
  ['timeoutconnect', svc((ctx, v) => void (ctx.service.timeoutConnect = parseSeconds(v, 'connect')))],
  ['timeoutidle', svc((ctx, v) => void (ctx.service.timeoutIdle = parseSeconds(v, 'idle')))],
  [
    'transparent',
    svc((_ctx, v) => {
      const l = v.toLowerCase();
      if (l === 'none' || l === 'no') return;
      if (!['source', 'destination', 'both', 'yes'].includes(l))
        throw new OptionError('Selected transparent proxy mode is not available');
      throw new OptionError(notYet(`transparent = ${l}`));
    }),
  ],
  ['verify', svc((ctx, v) => setVerifyLevel(ctx.service, v))],
  [
    'verifychain',
    svc((ctx, v) => {
      ctx.service.verify.verifyChain = parseBoolean(v);
      if (ctx.service.verify.verifyChain) ctx.service.verify.request = true;
    }),
  ],
  [
    'verifypeer',
    svc((ctx, v) => {
      ctx.service.verify.verifyPeer = parseBoolean(v);
      if (ctx.service.verify.verifyPeer) ctx.service.verify.request = true;
    }),
  ],
]);

/** A fresh service with stunnel 5.68's defaults. */
export function defaultService(): ServiceConfig {
  return {
    name: '',
    where: undefined,
    accept: [],
    connect: [],
    exec: undefined,
    execArgs: undefined,
    pty: false,
    client: false,
    cert: undefined,
    key: undefined,
    caFile: undefined,
    caPath: undefined,
    crlFile: undefined,
    crlPath: undefined,
    ciphers: undefined,
    ciphersuites: undefined,
    curves: undefined,
    sslVersionMin: undefined,
    sslVersionMax: undefined,
    verify: { request: false, require: undefined, verifyChain: false, verifyPeer: false },
    checkHost: [],
    checkIP: [],
    checkEmail: [],
    logId: 'sequential',
    socketOptions: [],
    sni: undefined,
    rules: undefined,
    failover: 'prio',
    delay: false,
    acceptProxy: false,
    ident: undefined,
    protocol: undefined,
    protocolHost: undefined,
    protocolUsername: undefined,
    protocolPassword: undefined,
    protocolAuthentication: undefined,
    timeoutBusy: 300,
    timeoutClose: 60,
    timeoutConnect: 10,
    timeoutIdle: 43200,
    local: undefined,
    debugLevel: undefined,
    sessionTimeout: 300,
    sessionResume: true,
    ticketKeySecret: undefined,
    ticketMacSecret: undefined,
    // stunnel's default NO_SSLv2 and NO_SSLv3 are always set by node:tls.
    sslOptions: 0n,
    securityLevel: 2,
    otherEndpoints: 0,
    redirect: [],
    reset: true,
    retry: false,
  };
}

/** A copy of the global part's service defaults for a new section (lists copied, not shared). */
export function copyService(s: ServiceConfig): ServiceConfig {
  return {
    ...s,
    accept: [...s.accept],
    connect: [...s.connect],
    execArgs: s.execArgs ? [...s.execArgs] : undefined,
    verify: { ...s.verify },
    checkHost: [...s.checkHost],
    checkIP: [...s.checkIP],
    checkEmail: [...s.checkEmail],
    socketOptions: [...s.socketOptions],
    redirect: [...s.redirect],
  };
}

/** stunnel 5.68's global defaults. */
export function defaultGlobals(): GlobalConfig {
  return {
    foreground: 'no',
    pid: undefined,
    output: undefined,
    logOverwrite: false,
    debugLevel: 5,
    debugFacility: 'daemon',
    syslog: true,
    setuid: undefined,
    setgid: undefined,
    chroot: undefined,
    service: undefined,
    drainTimeout: 25,
  };
}
