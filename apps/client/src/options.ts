// tcpclient's command line: indimail's option letters (ucspi-tcp's plus the TLS ones), -4/-6 of
// its IPv6 build, and -E for the certificate evaluation hook. Parsed getopt-style: the first
// operand ends the options, so `tcpclient host port prog -v` passes -v to prog.
import { isIP } from 'node:net';
import { getopt } from '@ucspi/getopt';
import { UsageError } from './errors.js';

/** Parsed command line of tcpclient. */
export interface ClientOptions {
  /** -q 0, -Q 1 (default), -v 2 */
  verbosity: 0 | 1 | 2;
  /** -d (default) keeps Nagle's algorithm, -D sets TCP_NODELAY. */
  noDelay: boolean;
  /** -h (default) / -H: look up TCPREMOTEHOST. */
  remoteHost: boolean;
  /** -r (default) / -R: ask the server's ident service for TCPREMOTEINFO. */
  remoteInfo: boolean;
  /** -i localip */
  localIp?: string;
  /** -p localport */
  localPort?: number;
  /** -l localname: TCPLOCALHOST without a lookup. */
  localName?: string;
  /** -t: the ident lookup's timeout, ms (default 26 s). */
  infoTimeoutMs: number;
  /** -T x+y: the connection attempts' timeouts, ms (default 2+58 s). */
  connectTimeoutMs: [number, number];
  /** -a: give up when no byte moves for this long, ms (default 300 s). */
  dataTimeoutMs: number;
  /** -4 / -6: only that family's addresses of a host name. */
  family?: 4 | 6;
  /** -n given: TLS. `certFile` is its argument ('' = TLS_CERTFILE or the default). */
  tls: boolean;
  certFile?: string;
  /** -C certdir */
  certDir?: string;
  /** -c cafile */
  caFile?: string;
  /** -L crlfile */
  crlFile?: string;
  /** -f cipher_list (or a file holding it) */
  cipherList?: string;
  /** -M: the protocol version to pin; undefined negotiates TLS 1.2 to 1.3. */
  tlsVersion?: 'TLSv1.2' | 'TLSv1.3';
  /** -s: the STARTTLS protocol. */
  starttls?: string;
  /** -m host: the name the server's certificate must match. */
  matchHost?: string;
  /** -z: TLS_PROVIDER for prog. */
  provider: boolean;
  /** -E prog: the certificate evaluation hook. */
  evalProg?: string;
  /** The host (or `/path` of a UNIX socket), the port, and the program with its arguments. */
  host: string;
  port?: string;
  prog: string[];
}

/** The usage message (tcpclient's own first line, then what each letter takes). */
export const USAGE = `tcpclient: usage: tcpclient [ -46hHrRdDqQvz ] [ -i localip ] [ -p localport ] [ -l localname ] [ -T timeoutconn ] [ -t timeoutinfo ] [ -a timeoutdata ] [ -n clientcert ] [ -C certdir ] [ -c cafile ] [ -L crlfile ] [ -s starttlsType ] [ -f cipherlist ] [ -M tls_method ] [ -m host ] [ -E prog ] host port [program]
  -n FILE   TLS, presenting the certificate and key in FILE ("" = $TLS_CERTFILE or CERTDIR/clientcert.pem, none if that is missing)
  -s PROTO  STARTTLS first (smtp, pop3, imap, ...); implies TLS
  -m HOST   the server's certificate must match HOST (SAN dNSName, else CN)
  -E PROG   after the TLS handshake run PROG ANYERROR HOSTMISMATCH SELFSIGNED OTHERERROR SUGGESTION
            (each 0 or 1; EPIC5 server_ssl_eval) with SSL_* variables describing the certificate,
            stdin /dev/null, stdout to stderr: exit 0 accepts the certificate, anything else rejects`;

const OPTSTRING = 'dDvqQhHrRz46i:p:t:T:l:a:n:C:c:L:s:f:M:m:E:';

function seconds(letter: string, value: string): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`bad number for -${letter}: ${value}`);
  return Number(value) * 1000;
}

/** -M's names (SSL_CTX methods); only TLS 1.2 and 1.3 remain in OpenSSL 3 and node:tls. */
function tlsMethod(value: string): ClientOptions['tlsVersion'] {
  switch (value) {
    case 'SSLv23':
    case 'TLS':
      return undefined;
    case 'TLSv1_2':
    case 'TLSv1.2':
      return 'TLSv1.2';
    case 'TLSv1_3':
    case 'TLSv1.3':
      return 'TLSv1.3';
    case 'SSLv3':
    case 'TLSv1':
    case 'TLSv1_1':
      throw new UsageError(`-M ${value}: protocol no longer supported (TLSv1_2 and TLSv1_3 are)`);
    default:
      throw new UsageError(`-M ${value}: unknown TLS method`);
  }
}

/** Parse argv (without the program name); throws UsageError. */
export function parseOptions(argv: readonly string[]): ClientOptions {
  let parsed: ReturnType<typeof getopt>;
  try {
    parsed = getopt([...argv], OPTSTRING);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const o: ClientOptions = {
    verbosity: 1,
    noDelay: false,
    remoteHost: true,
    remoteInfo: true,
    infoTimeoutMs: 26_000,
    connectTimeoutMs: [2000, 58_000],
    dataTimeoutMs: 300_000,
    tls: false,
    provider: false,
    host: '',
    prog: [],
  };
  for (const { option, argument = '' } of parsed.options) {
    switch (option) {
      case 'q':
        o.verbosity = 0;
        break;
      case 'Q':
        o.verbosity = 1;
        break;
      case 'v':
        o.verbosity = 2;
        break;
      case 'd':
        o.noDelay = false;
        break;
      case 'D':
        o.noDelay = true;
        break;
      case 'h':
        o.remoteHost = true;
        break;
      case 'H':
        o.remoteHost = false;
        break;
      case 'r':
        o.remoteInfo = true;
        break;
      case 'R':
        o.remoteInfo = false;
        break;
      case 'z':
        o.provider = true;
        break;
      case '4':
        o.family = 4;
        break;
      case '6':
        o.family = 6;
        break;
      case 'i':
        if (!isIP(argument)) throw new UsageError(`-i ${argument}: not an IP address`);
        o.localIp = argument;
        break;
      case 'p':
        if (!/^\d+$/.test(argument) || Number(argument) > 65535)
          throw new UsageError(`-p ${argument}: not a port number`);
        o.localPort = Number(argument);
        break;
      case 't':
        o.infoTimeoutMs = seconds('t', argument);
        break;
      case 'a':
        o.dataTimeoutMs = seconds('a', argument);
        break;
      case 'T': {
        // x+y; `x` alone skips the second try (y = 0), as ucspi-tcp's scan of "x" leaves y 0.
        const m = /^(\d+)(?:\+(\d*))?$/.exec(argument);
        if (!m) throw new UsageError(`bad timeout for -T: ${argument}`);
        o.connectTimeoutMs = [Number(m[1]) * 1000, Number(m[2] || 0) * 1000];
        break;
      }
      case 'l':
        o.localName = argument;
        break;
      case 'n':
        o.tls = true;
        o.certFile = argument;
        break;
      case 'C':
        o.certDir = argument;
        break;
      case 'c':
        o.caFile = argument;
        break;
      case 'L':
        o.crlFile = argument;
        break;
      case 'f':
        o.cipherList = argument;
        break;
      case 'M':
        o.tlsVersion = tlsMethod(argument);
        break;
      case 's':
        if (!/^[a-z][a-z0-9-]*$/i.test(argument))
          throw new UsageError(`-s ${argument}: unknown STARTTLS protocol`);
        o.starttls = argument.toLowerCase();
        break;
      case 'm':
        if (argument === '') throw new UsageError('-m needs a host name');
        o.matchHost = argument;
        break;
      case 'E':
        if (argument === '') throw new UsageError('-E needs a program');
        o.evalProg = argument;
        break;
    }
  }
  const rest = parsed.operands;
  if (rest.length === 0) throw new UsageError('');
  let host = rest[0]!;
  // ucspi-tcp: an empty host or `0` is the local machine.
  if (host === '' || host === '0') host = '127.0.0.1';
  o.host = host;
  if (host.startsWith('/')) o.prog = rest.slice(1);
  else {
    if (rest.length < 2) throw new UsageError('');
    o.port = rest[1]!;
    o.prog = rest.slice(2);
  }
  // -s implies TLS (indimail refuses -s without -n): the dialogue is pointless without it.
  if (o.starttls && !o.tls) {
    o.tls = true;
    o.certFile = '';
  }
  if (o.evalProg && !o.tls) throw new UsageError('-E needs TLS (-n or -s)');
  return o;
}
