import { getopt } from '@ucspi/getopt';

/** Which program main() behaves as. */
export type ServerFlavour = 'tcpserver' | 'sslserver';

/** Parsed command line of tcpserver / sslserver. */
export interface ServerOptions {
  flavour: ServerFlavour;
  verbosity: 0 | 1 | 2 | 3; // -q 0, -Q 1, -v 2, -V 3
  printPort: boolean;
  limit: number;
  rules?: string;
  allowNoRules: boolean;
  banner: string;
  gid?: number;
  uid?: number;
  envIds: boolean;
  backlog: number;
  localName?: string;
  remoteHost: boolean;
  paranoid: boolean;
  remoteInfo: boolean;
  noDelay: boolean;
  ipOptions: boolean;
  infoTimeout: number;
  handshakeTimeout: number;
  idleTimeout: number;
  tcpEnv: boolean;
  modSsl: boolean;
  ucspiTls: boolean;
  keyPasswordFd3: boolean;
  clientCert: 'none' | 'mail' | 'host';
  /** -I: the interface (scope) for an IPv6 link-local host operand; TCP6INTERFACE. */
  netInterface?: string;
  host: string;
  /** -4 / -6: which of a host name's addresses to bind (sslserver); undefined: the first one. */
  family?: 4 | 6;
  port: string;
  prog: string[];
}

/** Thrown for a bad command line: main prints the usage line and exits 100. */
export class UsageError extends Error {
  readonly code = 'UCSPI_ERR_SERVER_USAGE';
  readonly temporary = false;
}

/** The usage lines of the originals. */
export const USAGE: Record<ServerFlavour, string> = {
  tcpserver:
    'tcpserver: usage: tcpserver [ -1UXpPhHrRoOdDqQv ] [ -c limit ] [ -x rules.cdb ] [ -B banner ] [ -g gid ] [ -u uid ] [ -b backlog ] [ -l localname ] [ -t timeout ] host port program',
  sslserver:
    'sslserver: usage: sslserver [ -1346UXpPhHrRoOdDqQvVeEsSnNmzZ ] [ -c limit ] [ -x rules.cdb ] [ -B banner ] [ -g gid ] [ -u uid ] [ -b backlog ] [ -l localname ] [ -t timeout ] [ -T timeout ] [ -w timeout ] [ -I interface ] host port program',
};

const OPTSTRING: Record<ServerFlavour, string> = {
  tcpserver: '1UXpPhHrRoOdDqQvc:x:B:g:u:b:l:t:',
  sslserver: '1346UXpPhHrRoOdDqQvVeEsSnNmzZc:x:B:g:u:b:l:t:T:w:I:',
};

function positive(value: string | undefined, allowZero = false): number {
  if (value === undefined || !/^\d+$/.test(value)) throw new UsageError(`bad number: ${value}`);
  const n = Number(value);
  if (!allowZero && n === 0) throw new UsageError(`bad number: ${value}`);
  return n;
}

/** Parse argv (without the program name) exactly as getopt does: stop at the first operand. */
export function parseOptions(
  flavour: ServerFlavour,
  argv: readonly string[],
  env: Record<string, string | undefined>,
): ServerOptions {
  let parsed: ReturnType<typeof getopt>;
  try {
    parsed = getopt([...argv], OPTSTRING[flavour]);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const o: ServerOptions = {
    flavour,
    verbosity: 1,
    printPort: false,
    limit: 40,
    allowNoRules: false,
    banner: '',
    envIds: false,
    backlog: 20,
    remoteHost: true,
    paranoid: false,
    // tcpserver's default is -r, sslserver's is -R (their man pages).
    remoteInfo: flavour === 'tcpserver',
    noDelay: false,
    ipOptions: false,
    infoTimeout: 26,
    handshakeTimeout: 26,
    idleTimeout: 3600,
    tcpEnv: false,
    modSsl: false,
    ucspiTls: false,
    keyPasswordFd3: false,
    clientCert: 'none',
    host: '',
    port: '',
    prog: [],
  };
  for (const { option, argument } of parsed.options) {
    switch (option) {
      case '1':
        o.printPort = true;
        break;
      case 'q':
        o.verbosity = 0;
        break;
      case 'Q':
        o.verbosity = 1;
        break;
      case 'v':
        o.verbosity = 2;
        break;
      case 'V':
        o.verbosity = 3;
        break;
      case 'c':
        o.limit = positive(argument);
        break;
      case 'x':
        o.rules = argument;
        break;
      case 'X':
        o.allowNoRules = true;
        break;
      case 'B':
        o.banner = argument ?? '';
        break;
      case 'g':
        o.gid = positive(argument, true);
        break;
      case 'u':
        o.uid = positive(argument, true);
        break;
      case 'U': {
        o.gid = positive(env.GID, true);
        o.uid = positive(env.UID, true);
        break;
      }
      case 'b':
        o.backlog = positive(argument, true);
        break;
      case 'l':
        o.localName = argument;
        break;
      case 'h':
        o.remoteHost = true;
        break;
      case 'H':
        o.remoteHost = false;
        break;
      case 'p':
        o.paranoid = true;
        break;
      case 'P':
        o.paranoid = false;
        break;
      case 'r':
        o.remoteInfo = true;
        break;
      case 'R':
        o.remoteInfo = false;
        break;
      case 'o':
        o.ipOptions = true;
        break;
      case 'O':
        o.ipOptions = false;
        break;
      case 'd':
        o.noDelay = false;
        break;
      case 'D':
        o.noDelay = true;
        break;
      case 't':
        o.infoTimeout = positive(argument, true);
        break;
      case 'T':
        o.handshakeTimeout = positive(argument, true);
        break;
      case 'w':
        o.idleTimeout = positive(argument, true);
        break;
      case 'e':
        o.tcpEnv = true;
        break;
      case 'E':
        o.tcpEnv = false;
        break;
      case 's':
        o.modSsl = true;
        break;
      case 'S':
        o.modSsl = false;
        break;
      case 'n':
        o.ucspiTls = true;
        break;
      case 'N':
        o.ucspiTls = false;
        break;
      case '3':
        o.keyPasswordFd3 = true;
        break;
      case 'm':
        o.clientCert = 'mail';
        break;
      case 'z':
        o.clientCert = 'host';
        break;
      case 'Z':
        o.clientCert = 'none';
        break;
      case '4':
        o.family = 4;
        break;
      case '6':
        o.family = 6;
        break;
      case 'I':
        if (!argument) throw new UsageError('-I needs an interface name');
        o.netInterface = argument;
        break;
      default:
        throw new UsageError(`illegal option -- ${option}`);
    }
  }
  const [host, port, ...prog] = parsed.operands;
  if (host === undefined || port === undefined || prog.length === 0) throw new UsageError('missing operands');
  o.host = host;
  o.port = port;
  o.prog = prog;
  return o;
}
