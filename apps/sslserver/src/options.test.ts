import { describe, expect, it } from 'vitest';
import { parseOptions, UsageError } from './options.js';

describe('parseOptions', () => {
  it('parses tcpserver options and stops at the first operand', () => {
    const o = parseOptions(
      'tcpserver',
      ['-1vHR', '-c', '5', '-x', 'r.cdb', '-B', 'hi', '0', '0', 'prog', '-v'],
      {},
    );
    expect(o).toMatchObject({
      printPort: true,
      verbosity: 2,
      remoteHost: false,
      remoteInfo: false,
      limit: 5,
      rules: 'r.cdb',
      banner: 'hi',
      host: '0',
      port: '0',
      prog: ['prog', '-v'],
    });
  });

  it('parses the sslserver-only options', () => {
    const o = parseOptions('sslserver', ['-VesmT', '3', '-w', '9', 'h', '1', 'p'], {});
    expect(o).toMatchObject({
      verbosity: 3,
      tcpEnv: true,
      modSsl: true,
      clientCert: 'mail',
      handshakeTimeout: 3,
      idleTimeout: 9,
    });
  });

  it('ident: tcpserver defaults to -r, sslserver to -R, the last of -r/-R wins', () => {
    expect(parseOptions('tcpserver', ['h', '1', 'p'], {}).remoteInfo).toBe(true);
    expect(parseOptions('sslserver', ['h', '1', 'p'], {}).remoteInfo).toBe(false);
    expect(parseOptions('tcpserver', ['-r', '-R', 'h', '1', 'p'], {}).remoteInfo).toBe(false);
    expect(parseOptions('sslserver', ['-R', '-r', 'h', '1', 'p'], {}).remoteInfo).toBe(true);
  });

  it('-U takes $GID and $UID', () => {
    expect(parseOptions('tcpserver', ['-U', 'h', '1', 'p'], { GID: '7', UID: '8' })).toMatchObject({
      gid: 7,
      uid: 8,
    });
    expect(() => parseOptions('tcpserver', ['-U', 'h', '1', 'p'], {})).toThrow(UsageError);
  });

  it('rejects bad input with UsageError', () => {
    expect(() => parseOptions('tcpserver', ['-c', '0', 'h', '1', 'p'], {})).toThrow(UsageError);
    expect(() => parseOptions('tcpserver', ['-c', 'x', 'h', '1', 'p'], {})).toThrow(UsageError);
    expect(() => parseOptions('tcpserver', ['-e', 'h', '1', 'p'], {})).toThrow(/illegal option -- e/);
    expect(() => parseOptions('tcpserver', ['-c'], {})).toThrow(/requires an argument/);
    expect(() => parseOptions('tcpserver', ['h', '1'], {})).toThrow(UsageError);
    expect(() => parseOptions('tcpserver', ['-I', 'eth0', 'h', '1', 'p'], {})).toThrow(/illegal option -- I/);
    expect(parseOptions('sslserver', ['-I', 'eth0', 'h', '1', 'p'], {}).netInterface).toBe('eth0');
  });
});
