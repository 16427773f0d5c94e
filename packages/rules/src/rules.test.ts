import { writeFileSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { Cdb, CdbMaker, writeCdbFile } from '@ucspi/cdb';
import { tempDir } from '@ucspi/testkit';
import { describe, expect, it } from 'vitest';
import {
  decodeRuleData,
  encodeRuleData,
  errorStr,
  lookupRules,
  parseRuleLine,
  parseRules,
  RulesErrorCodes,
  RulesFile,
  ruleKeys,
} from './index.js';

const b = (s: string) => Buffer.from(s, 'latin1');
const keys = (text: string) => parseRules(text).map((r) => r.key.toString('latin1'));

describe('parseRuleLine', () => {
  it('encodes deny, allow and instructions as tcprules does', () => {
    expect(parseRuleLine(b('1.2.3.4:deny,X="y"'), 1)[0]!.data).toEqual(b('D\0+X=y\0'));
    expect(parseRuleLine(b(':allow\n'), 1)[0]).toMatchObject({
      key: b(''),
      allow: true,
      data: b(''),
      env: [],
    });
    const r = parseRuleLine(b(':allow,A="1",B="2"'), 3)[0]!;
    expect(r.data).toEqual(b('+A=1\0+B=2\0'));
    expect(r.env).toEqual([
      ['A', '1'],
      ['B', '2'],
    ]);
    expect(r.line).toBe(3);
  });

  it('takes any byte as the quote of a value', () => {
    const value = (line: string) => parseRuleLine(b(line), 1)[0]!.env[0];
    expect(value(':allow,X="a b"')).toEqual(['X', 'a b']);
    expect(value(':allow,X=/a"b/')).toEqual(['X', 'a"b']);
    expect(value(':allow,X=||')).toEqual(['X', '']);
    expect(value(':allow,X=xhix')).toEqual(['X', 'hi']);
    expect(value(':allow,X=="q"=')).toEqual(['X', '"q"']);
    expect(value(':allow,A B=:x:')).toEqual(['A B', 'x']);
  });

  it('skips comments, empty lines and lines without a colon; keeps leading spaces in keys', () => {
    expect(parseRuleLine(b('# 1.2.3.4:deny'), 1)).toEqual([]);
    expect(parseRuleLine(b('\n'), 1)).toEqual([]);
    expect(parseRuleLine(b(''), 1)).toEqual([]);
    expect(parseRuleLine(b('no colon here deny'), 1)).toEqual([]);
    expect(parseRuleLine(b('   \t\n'), 1)).toEqual([]);
    expect(parseRuleLine(b('  1.2.3.4:allow \t \n'), 1)[0]!.key).toEqual(b('  1.2.3.4'));
  });

  it('rejects what tcprules rejects, naming the line', () => {
    for (const bad of [
      'a:allow\r',
      'a:Allow',
      'a: allow',
      'a:denyx',
      'a:allow,',
      'a:allow,X',
      'a:allow,X=',
      'a:allow,X="y',
      'a:allow,X="y"z',
      'x-5:allow',
      '4-5-6:allow',
      '1.2.a-3:allow',
    ]) {
      expect(() => parseRuleLine(b(`${bad}\n`), 7), bad).toThrowError(
        expect.objectContaining({ code: RulesErrorCodes.PARSE, line: 7, text: b(bad), temporary: false }),
      );
    }
    expect(() => parseRuleLine(b('a:allow\r\n'), 2)).toThrowError(
      'unable to parse this line: a:allow\r (line 2)',
    );
  });

  it('expands address ranges like doaddressdata', () => {
    expect(keys('127.0-5.:allow')).toEqual(['127.0.', '127.1.', '127.2.', '127.3.', '127.4.', '127.5.']);
    expect(keys('1.2.3.250-300:allow')).toEqual([
      '1.2.3.250',
      '1.2.3.251',
      '1.2.3.252',
      '1.2.3.253',
      '1.2.3.254',
      '1.2.3.255',
    ]);
    expect(keys('100-102.:allow')).toEqual(['100.', '101.', '102.']);
    expect(keys('172.16.5.10-20:allow')).toHaveLength(11);
    expect(keys('1.2.3.9-5:allow')).toEqual([]);
    expect(keys('1.2.3.-2:allow')).toEqual(['1.2.3.0', '1.2.3.1', '1.2.3.2']);
    expect(keys('=a-b.example:allow')).toEqual(['=a-b.example']);
    expect(keys('x-y@1.2.3.4:allow')).toEqual(['x-y@1.2.3.4']);
  });

  it('parses a whole file, last line without newline included', () => {
    expect(keys('a:allow\nb:deny')).toEqual(['a', 'b']);
  });
});

describe('rule data', () => {
  it('round-trips and reads as tcpserver does', () => {
    expect(encodeRuleData(false, [['X', 'y']])).toEqual(b('D\0+X=y\0'));
    expect(decodeRuleData(b('D\0+X=y\0'))).toEqual({ allow: false, env: [['X', 'y']] });
    expect(decodeRuleData(b(''))).toEqual({ allow: true, env: [] });
    // Items without '=' or an empty name are ignored; a trailing item without its NUL too.
    expect(decodeRuleData(b('+NOEQ\0+=v\0+A=\0+B=1'))).toEqual({ allow: true, env: [['A', '']] });
  });
});

describe('ruleKeys', () => {
  it('follows tcpserver order', () => {
    expect(ruleKeys({ ip: '1.2.3.4', host: 'a.b.c', info: 'joe' })).toEqual([
      'joe@1.2.3.4',
      'joe@=a.b.c',
      '1.2.3.4',
      '=a.b.c',
      '1.2.3.',
      '1.2.',
      '1.',
      '=.b.c',
      '=.c',
      '=',
      '',
    ]);
  });

  it('distinguishes unset from set-but-empty host and info', () => {
    expect(ruleKeys({ ip: '1.2' })).toEqual(['1.2', '1.', '']);
    expect(ruleKeys({ ip: '1.2', host: '' })).toEqual(['1.2', '=', '1.', '=', '']);
    expect(ruleKeys({ ip: '1.2', info: '' })).toEqual(['@1.2', '1.2', '1.', '']);
    expect(ruleKeys({ ip: '1.2', host: 'h.' })).toEqual(['1.2', '=h.', '1.', '=.', '=', '']);
  });

  it('tries only the exact text and the defaults for IPv6', () => {
    expect(ruleKeys({ ip: '::1' })).toEqual(['::1', '']);
  });
});

describe('lookupRules and RulesFile', () => {
  it('the first rule for a key wins and the first key in order wins', () => {
    const m = new CdbMaker();
    for (const r of parseRules('1.2.3.:deny\n1.2.3.:allow\n=.example:allow,H="1"\n:allow,DEF="1"\n'))
      m.add(r.key, r.data);
    const db = Cdb.fromBuffer(m.toBuffer());
    expect(lookupRules(db, { ip: '1.2.3.4' })).toMatchObject({ key: '1.2.3.', allow: false });
    expect(lookupRules(db, { ip: '9.9.9.9', host: 'www.example' })).toMatchObject({
      key: '=.example',
      env: [['H', '1']],
    });
    expect(lookupRules(db, { ip: '9.9.9.9' })).toMatchObject({ key: '', env: [['DEF', '1']] });
    expect(lookupRules(Cdb.fromBuffer(new CdbMaker().toBuffer()), { ip: '9.9.9.9' })).toBeUndefined();
  });

  it('re-reads the file when tcprules replaces it, and reports a missing file', async () => {
    const tmp = tempDir();
    try {
      const path = join(tmp.path, 'rules.cdb');
      const rf = new RulesFile(path);
      await expect(rf.lookup({ ip: '1.2.3.4' })).rejects.toMatchObject({ code: RulesErrorCodes.NO_CDB });
      await writeCdbFile(path, join(tmp.path, 't'), [['1.2.3.4', 'D\0']]);
      expect(await rf.lookup({ ip: '1.2.3.4' })).toMatchObject({ allow: false });
      const [a, c] = await Promise.all([rf.lookup({ ip: '1.2.3.4' }), rf.lookup({ ip: '1.2.3.4' })]);
      expect(a?.allow).toBe(false);
      expect(c?.allow).toBe(false);
      await writeCdbFile(join(tmp.path, 'new'), join(tmp.path, 't'), [['1.2.3.4', '+OK=1\0']]);
      await rename(join(tmp.path, 'new'), path);
      expect(await rf.lookup({ ip: '1.2.3.4' })).toMatchObject({ allow: true, env: [['OK', '1']] });
      writeFileSync(path, 'short');
      await expect(rf.lookup({ ip: '1.2.3.4' })).rejects.toMatchObject({
        code: RulesErrorCodes.READ,
        temporary: true,
      });
    } finally {
      tmp.cleanup();
    }
  });
});

describe('errorStr', () => {
  it('gives djb texts and follows causes', () => {
    expect(errorStr(Object.assign(new Error('x'), { code: 'ENOENT' }))).toBe('file does not exist');
    expect(errorStr(Object.assign(new Error('x'), { code: 'EADDRINUSE' }))).toBe('address already used');
    expect(
      errorStr(
        Object.assign(new Error('wrap', { cause: Object.assign(new Error(), { code: 'EACCES' }) }), {
          code: 'UCSPI_ERR_CDB_CREATE',
        }),
      ),
    ).toBe('access denied');
    expect(errorStr(new Error('plain'))).toBe('plain');
  });
});
