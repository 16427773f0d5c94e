import { describe, expect, it } from 'vitest';
import { type ConfigReader, parseConfig } from './parse.js';

const CERT = 'cert = /c.pem\n';
const parse = (text: string, reader?: ConfigReader) => parseConfig(text, '/x.conf', reader);
const error = (text: string, reader?: ConfigReader): string => {
  try {
    parse(text, reader);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('no error');
};

describe('the line grammar', () => {
  it('skips a BOM on line 1, comments with ; and #, blank lines; splits at the first =', () => {
    const c = parse(
      '\uFEFF; comment\n  # another\n\n[svc]\n  client = yes  \naccept=127.0.0.1:1\nconnect = a:2\nprotocolPassword = x=y\n',
    );
    expect(c.bom).toBe(true);
    expect(c.inetd).toBe(false);
    expect(c.services).toHaveLength(1);
    const s = c.services[0]!;
    expect(s.name).toBe('svc');
    expect(s.client).toBe(true);
    expect(s.accept).toEqual(['127.0.0.1:1']);
    expect(s.protocolPassword).toBe('x=y');
  });

  it('has no trailing comments', () => {
    expect(error('[s]\nclient = yes ; note\n')).toBe(
      `/x.conf:2: "client = yes ; note": The argument needs to be either 'yes' or 'no'`,
    );
  });

  it('takes option names and keyword values in any case; booleans are yes or no only', () => {
    const s = parse('[s]\nCLIENT = YES\nACCEPT = 1\nConnect = 2\nFailover = RR\n').services[0]!;
    expect(s.client).toBe(true);
    expect(s.failover).toBe('rr');
    expect(error('[s]\nclient = true\n')).toMatch(
      /"client = true": The argument needs to be either 'yes' or 'no'$/,
    );
    expect(error('[s]\nclient = 1\n')).toMatch(/either 'yes' or 'no'$/);
  });

  it('names file, line and the text as written for a line without =, an unknown option', () => {
    expect(error('foreground = yes\nthis has no equals\n')).toBe(
      '/x.conf:2: "this has no equals": No \'=\' found',
    );
    expect(error('bogusOption = 1\n')).toBe(
      '/x.conf:1: "bogusOption = 1": Specified option name is not valid here',
    );
    expect(error('[s]\n =2\n')).toBe('/x.conf:2: " =2": Specified option name is not valid here');
    expect(error('[a]\n[b\n')).toBe('/x.conf:2: "[b": No \'=\' found');
  });

  it('refuses a global option inside a section', () => {
    expect(error('[a]\nforeground = yes\n')).toBe(
      '/x.conf:2: "foreground = yes": Specified option name is not valid here',
    );
  });

  it('copies service-level options of the global part into every later section', () => {
    const c = parse(`${CERT}connect = 9\n[a]\naccept = 1\n[b]\naccept = 2\nconnect = 8\n`);
    expect(c.services.map((s) => [s.name, s.cert, s.connect])).toEqual([
      ['a', '/c.pem', ['9']],
      ['b', '/c.pem', ['9', '8']],
    ]);
  });

  it('accepts duplicate section names and keeps section names as written', () => {
    const c = parse(`${CERT}[ A ]\naccept = 1\nconnect = 2\n[ A ]\naccept = 3\nconnect = 4\n`);
    expect(c.services.map((s) => s.name)).toEqual([' A ', ' A ']);
  });

  it('accumulates several connect lines; the last value wins elsewhere', () => {
    const s = parse(`${CERT}[s]\naccept = 1\nconnect = 2\nconnect = h:3\nTIMEOUTidle = 5\nTIMEOUTidle = 7\n`)
      .services[0]!;
    expect(s.connect).toEqual(['2', 'h:3']);
    expect(s.timeoutIdle).toBe(7);
  });

  it('reads an include folder in alphabetical order, regular files only, as if written there', () => {
    const files: Record<string, string> = {
      '/inc/b.conf': '[b]\naccept = 2\nconnect = 3\n',
      '/inc/a.conf': `${CERT}`,
    };
    const reader: ConfigReader = {
      readFile: (p) => files[p] ?? '',
      listFolder: (p) => {
        if (p !== '/inc') throw Object.assign(new Error('x'), { code: 'ENOENT' });
        return ['a.conf', 'b.conf'];
      },
    };
    const c = parse('include = /inc\n', reader);
    expect(c.services.map((s) => [s.name, s.cert])).toEqual([['b', '/c.pem']]);
    let e: unknown;
    try {
      parse('foreground = yes\ninclude = /nonexist\n', reader);
    } catch (err) {
      e = err;
    }
    expect((e as Error).message).toBe('/x.conf:2: "include = /nonexist": Failed to include directory');
    expect((e as { before: string[] }).before).toEqual(['scandir: No such file or directory (2)']);
  });

  it('an error in an included file names that file', () => {
    const reader: ConfigReader = { readFile: () => 'oops\n', listFolder: () => ['z.conf'] };
    expect(error('include = /d\n', reader)).toBe('/d/z.conf:1: "oops": No \'=\' found');
  });

  it('is inetd mode without sections', () => {
    const c = parse(`${CERT}connect = 2\n`);
    expect(c.inetd).toBe(true);
    expect(c.services[0]!.connect).toEqual(['2']);
  });
});

describe('values', () => {
  it('takes stunnel values and refuses bad ones in its words', () => {
    const base = `${CERT}[s]\naccept = 1\nconnect = 2\n`;
    expect(error(`${base}verify = 5\n`)).toMatch(/"verify = 5": Bad verify level$/);
    expect(error(`${base}TIMEOUTidle = x\n`)).toMatch(/"TIMEOUTidle = x": Illegal idle timeout$/);
    expect(error(`${base}TIMEOUTbusy = -1\n`)).toMatch(/Illegal busy timeout$/);
    expect(error(`${base}failover = foo\n`)).toMatch(/either 'rr' or 'prio'$/);
    expect(error(`${base}sslVersion = SSLv2\n`)).toMatch(/Invalid protocol version$/);
    expect(error(`${base}sslVersionMin = bogus\n`)).toMatch(/Invalid protocol version$/);
    expect(error(`debug = bogus\n${base}`)).toMatch(/"debug = bogus": Illegal debug level$/);
    expect(error(`${base}TIMEOUTocsp = 1\n`)).toMatch(/Specified option name is not valid here$/);
    const s = parse(`debug = daemon.INFO\n${base}sslVersion = TLSv1.2\nverify = 0\nexecArgs = a  b\tc\n`);
    expect(s.globals.debugLevel).toBe(6);
    const svc = s.services[0]!;
    expect([svc.sslVersionMin, svc.sslVersionMax]).toEqual(['TLSv1.2', 'TLSv1.2']);
    expect(svc.verify).toEqual({ request: true, require: false, verifyChain: false, verifyPeer: false });
    expect(svc.execArgs).toEqual(['a', 'b', 'c']);
  });

  it('maps verify levels onto stunnel 5 switches', () => {
    const v = (n: number) =>
      parse(`${CERT}CAfile = /ca\n[s]\naccept = 1\nconnect = 2\nverify = ${n}\n`).services[0]!.verify;
    expect(v(2)).toEqual({ request: true, require: true, verifyChain: true, verifyPeer: false });
    expect(v(3)).toEqual({ request: true, require: true, verifyChain: true, verifyPeer: true });
    expect(v(4)).toEqual({ request: true, require: true, verifyChain: false, verifyPeer: true });
  });
});

describe('section checks', () => {
  it('wants a certificate for a server, checked before the endpoints', () => {
    expect(error('[a]\n')).toBe('Service [a]: TLS server needs a certificate');
  });
  it('wants exactly two endpoints', () => {
    expect(error('[a]\nclient = yes\naccept = 1\n')).toBe(
      'Service [a]: Each service must define two endpoints',
    );
    expect(error('[a]\nclient = yes\naccept = 1\nconnect = 2\nexec = /bin/cat\n')).toBe(
      'Service [a]: Each service must define two endpoints',
    );
  });
  it('inetd mode: no accept, one endpoint', () => {
    expect(error('client = yes\nconnect = 2\naccept = 1\n')).toBe(
      "Inetd mode: 'accept' option is only allowed in a [section]",
    );
    expect(error('client = yes\n')).toBe('Inetd mode: Inetd mode must define one endpoint');
  });
  it('verify needs CAs; checkHost needs verifyChain or verifyPeer', () => {
    const base = '[a]\nclient = yes\naccept = 1\nconnect = 2\n';
    expect(error(`${base}verify = 2\n`)).toBe(
      'Service [a]: Either "CAengine", "CAfile" or "CApath" has to be configured',
    );
    expect(error(`${base}checkHost = x\n`)).toBe(
      'Service [a]: Either "verifyChain" or "verifyPeer" has to be enabled',
    );
  });
  it('protocols: unknown, proxy in client mode, and those not built yet', () => {
    const base = '[a]\nclient = yes\naccept = 1\nconnect = 2\n';
    expect(error(`${base}protocol = bogus\n`)).toBe('Service [a]: Protocol not supported');
    expect(error(`${base}protocol = proxy\n`)).toBe(
      "Service [a]: The 'proxy' protocol is not supported in the client mode",
    );
    expect(error(`${base}protocol = pgsql\n`)).toMatch(/not supported by ucspi-tunnel yet/);
    expect(parse(`${base}protocol = smtp\n`).services[0]!.protocol).toBe('smtp');
    // SMTP AUTH: both names give PLAIN (stunnel's default `basic`) or LOGIN; one alone is warned about.
    const auth = parse(
      `${base}protocol = smtp\nprotocolUsername = u\nprotocolPassword = p\nprotocolAuthentication = LOGIN\n`,
    );
    expect(auth.services[0]!.protocolAuthentication).toBe('login');
    expect(parse(`${base}protocol = smtp\nprotocolUsername = u\n`).warnings.map((w) => w.message)).toContain(
      'SMTP AUTH needs both protocolUsername and protocolPassword: not used',
    );
    expect(error(`${base}protocol = smtp\nprotocolAuthentication = ntlm\n`)).toMatch(
      /protocolAuthentication = ntlm is not supported with protocol = smtp/,
    );
    expect(error(`${base}protocol = smtp\nprotocolAuthentication = cram-md5\n`)).toMatch(
      /^\/x\.conf:6: "protocolAuthentication = cram-md5": Unknown protocolAuthentication/,
    );
    expect(error(`${base}protocol = smtp\nprotocolHost = a b\n`)).toMatch(/protocolHost must be one word/);
    expect(error(`${base}protocol = connect\n`)).toBe('Service [a]: protocolHost not specified');
    expect(error(`${base}protocol = connect\nprotocolHost = h:1\nprotocolAuthentication = NTLM\n`)).toMatch(
      /protocolAuthentication = ntlm is not supported/,
    );
    expect(parse(`${base}protocol = connect\nprotocolHost = h:1\n`).services[0]!.protocol).toBe('connect');
  });
  it('pid and output must be absolute', () => {
    expect(error('pid = rel.pid\n[a]\n')).toBe('Global options: Pid file must include full path name');
    expect(error('output = rel.log\n[a]\n')).toBe('Global options: Log file must include full path name');
  });
});

describe('options not built yet', () => {
  const base = `${CERT}[a]\naccept = 1\nconnect = 2\n`;
  it('warns, naming the line, where going on is safe', () => {
    const c = parse(`compression = zlib\nRNDfile = /dev/urandom\n${base}sessiond = 1.2.3.4:5\nstack = 1\n`);
    expect(c.warnings.map((w) => `${w.where.line}: ${w.message}`)).toEqual([
      expect.stringMatching(/^1: compression is obsolete/),
      expect.stringMatching(/^2: RNDfile is obsolete/),
      expect.stringMatching(/^7: sessiond is not supported by ucspi-tunnel yet/),
      expect.stringMatching(/^8: stack is meaningless/),
    ]);
  });
  it('refuses, naming the line, where going on would be unsafe', () => {
    expect(error(`${base}OCSP = http://ocsp.test/\n`)).toBe(
      '/x.conf:5: "OCSP = http://ocsp.test/": OCSP is not supported by ucspi-tunnel yet',
    );
    expect(error(`engine = auto\n${base}`)).toMatch(/engine \(OpenSSL engines\) is not supported/);
    expect(error(`fips = yes\n${base}`)).toMatch(/fips = yes is not supported/);
    expect(error(`${base}libwrap = yes\n`)).toMatch(/libwrap = yes/);
    expect(error(`${base}transparent = source\n`)).toMatch(/transparent = source is not supported/);
    // pty = yes is built (test/pty.test.ts) where @ucspi/exec's addon is loaded.
    expect(error(`${base}pty = maybe\n`)).toMatch(/The argument needs to be either 'yes' or 'no'/);
    // The harmless spellings pass.
    expect(parse(`fips = no\n${base}libwrap = no\ntransparent = none\npty = no\n`).services).toHaveLength(1);
  });
});
