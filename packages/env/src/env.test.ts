import { describe, expect, it } from 'vitest';
import {
  childEnv,
  childEnvList,
  decodeEnvList,
  EnvBase,
  EnvErrorCodes,
  encodeEnvList,
  logField,
  sslEnv,
  tcpEnv,
} from './index.js';

const v4 = { localIp: '127.0.0.1', localPort: 443, remoteIp: '127.0.0.2', remotePort: 50204 };

describe('tcpEnv / sslEnv', () => {
  it('sets the tcp-environ set for IPv4 and marks unknown names for removal', () => {
    expect(tcpEnv({ ...v4, localHost: 'l', remoteHost: '' })).toEqual({
      PROTO: 'TCP',
      TCPLOCALIP: '127.0.0.1',
      TCPLOCALPORT: '443',
      TCPLOCALHOST: 'l',
      TCPREMOTEIP: '127.0.0.2',
      TCPREMOTEPORT: '50204',
      TCPREMOTEHOST: '',
      TCPREMOTEINFO: undefined,
    });
  });

  it('reports IPv4-mapped addresses as IPv4', () => {
    const e = tcpEnv({ ...v4, localIp: '::ffff:127.0.0.1', remoteIp: '::FFFF:10.0.0.1' });
    expect(e.PROTO).toBe('TCP');
    expect(e.TCPREMOTEIP).toBe('10.0.0.1');
    expect(e.TCPLOCALIP).toBe('127.0.0.1');
  });

  it('sets PROTO=TCP6 with both the TCP6* and TCP* sets for IPv6', () => {
    const e = tcpEnv({ localIp: '::1', localPort: 1, remoteIp: 'fe80::1', remotePort: 2, interface: 'eth0' });
    expect(e).toMatchObject({
      PROTO: 'TCP6',
      TCP6LOCALIP: '::1',
      TCP6REMOTEIP: 'fe80::1',
      TCPREMOTEIP: 'fe80::1',
    });
    expect(e.TCP6INTERFACE).toBe('eth0');
    expect(e.TCP6REMOTEPORT).toBe('2');
  });

  it('sslEnv sets PROTO=SSL and the SSL* set', () => {
    expect(sslEnv({ ...v4, remoteInfo: 'joe' })).toMatchObject({
      PROTO: 'SSL',
      SSLLOCALIP: '127.0.0.1',
      SSLREMOTEPORT: '50204',
      SSLREMOTEINFO: 'joe',
      SSLREMOTEHOST: undefined,
    });
  });
});

describe('childEnv', () => {
  it('applies deltas in order, undefined removes, rules last', () => {
    const parent = { PATH: '/bin', TCPREMOTEHOST: 'stale', KEEP: 'x', GONE: undefined };
    const env = childEnv(parent, tcpEnv(v4), [
      ['RELAYCLIENT', ''],
      ['TCPLOCALPORT', '25'],
    ]);
    expect(env.PATH).toBe('/bin');
    expect(env.KEEP).toBe('x');
    expect('GONE' in env).toBe(false);
    expect('TCPREMOTEHOST' in env).toBe(false);
    expect(env.RELAYCLIENT).toBe('');
    expect(env.TCPLOCALPORT).toBe('25');
    expect(parent.TCPREMOTEHOST).toBe('stale');
  });

  it('rejects variables an environment cannot carry', () => {
    for (const [n, v] of [
      ['', 'x'],
      ['A=B', 'x'],
      ['A', 'x\0y'],
    ] as const) {
      expect(() => childEnv({}, [[n, v]])).toThrowError(
        expect.objectContaining({ code: EnvErrorCodes.BAD_VARIABLE }),
      );
    }
  });
});

describe('childEnvList', () => {
  it('is childEnv as NAME=value strings, in the same order, from a base prepared once', () => {
    const parent = { PATH: '/bin', TCPREMOTEHOST: 'stale', KEEP: 'x', GONE: undefined, PROTO: 'old' };
    const base = new EnvBase(parent);
    const deltas = [
      tcpEnv(v4),
      [
        ['RELAYCLIENT', ''],
        ['TCPLOCALPORT', '25'],
        ['PATH', '/usr/bin'],
      ] as Array<[string, string]>,
    ] as const;
    const list = childEnvList(base, ...deltas);
    expect(list).toEqual(Object.entries(childEnv(parent, ...deltas)).map(([k, v]) => `${k}=${v}`));
    expect(list[0]).toBe('PATH=/usr/bin'); // an overridden variable keeps its place
    expect(list).not.toContain('TCPREMOTEHOST=stale');
    expect(childEnvList(base)).toEqual(['PATH=/bin', 'TCPREMOTEHOST=stale', 'KEEP=x', 'PROTO=old']);
    expect(() => childEnvList(base, [['A=B', 'x']])).toThrowError(
      expect.objectContaining({ code: EnvErrorCodes.BAD_VARIABLE }),
    );
  });
});

describe('env lists (UCSPI-TLS)', () => {
  it('round-trips and uses the documented framing', () => {
    const vars = { SSL_PROTOCOL: 'TLSv1.3', SSL_CIPHER: 'TLS_AES_256_GCM_SHA384', EMPTY: '', EQ: 'a=b' };
    const buf = encodeEnvList(vars);
    expect(buf.toString()).toBe(
      'SSL_PROTOCOL=TLSv1.3\0SSL_CIPHER=TLS_AES_256_GCM_SHA384\0EMPTY=\0EQ=a=b\0\0',
    );
    expect(decodeEnvList(buf)).toEqual(vars);
    expect(encodeEnvList({}).toString()).toBe('\0\0');
    expect(decodeEnvList(Buffer.from('\0\0'))).toEqual({});
  });

  it('rejects malformed lists', () => {
    for (const bad of ['A=1', 'A=1\0', 'NOEQ\0\0', '=x\0\0', 'A=1\0\0junk', '\0\0\0', 'A=1\0\0\0']) {
      expect(() => decodeEnvList(Buffer.from(bad)), JSON.stringify(bad)).toThrowError(
        expect.objectContaining({ code: EnvErrorCodes.BAD_LIST }),
      );
    }
    expect(() => decodeEnvList(Buffer.alloc(2 << 20, 0x41))).toThrowError(/longer than/);
  });
});

describe('logField', () => {
  it('replaces what tcpserver replaces and truncates at 100', () => {
    expect(logField(undefined)).toBe('');
    expect(logField('host.example')).toBe('host.example');
    expect(logField('a b%c:d\te\u00e9')).toBe('a?b?c?d?e??');
    expect(logField('x'.repeat(150))).toHaveLength(100);
  });
});
