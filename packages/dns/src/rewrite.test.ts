import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '@ucspi/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { DnsErrorCodes } from './errors.js';
import { applyRewriteRule, applyRewriteRules, expandAlternatives, loadRewriteRules } from './rewrite.js';

const tmp = tempDir('ucspi-dns-');
afterAll(() => tmp.cleanup());
const missing = join(tmp.path, 'no-such-dnsrewrite');

describe('applyRewriteRule (dns_qualify.c doit)', () => {
  it('? replaces the suffix only when the prefix has no dot or bracket', () => {
    expect(applyRewriteRule('www', '?:+.a.test')).toBe('www+.a.test');
    expect(applyRewriteRule('www.b', '?:+.a.test')).toBe('www.b');
    expect(applyRewriteRule('[www]', '?:.a.test')).toBe('[www]');
    expect(applyRewriteRule('www.x', '?.x:.y')).toBe('www.y');
  });
  it('= applies only to the whole name', () => {
    expect(applyRewriteRule('mail', '=mail:mx.a.test')).toBe('mx.a.test');
    expect(applyRewriteRule('xmail', '=mail:mx.a.test')).toBe('xmail');
  });
  it('* replaces any matching suffix, case-insensitively', () => {
    expect(applyRewriteRule('a.test.', '*.:')).toBe('a.test');
    expect(applyRewriteRule('Host.LOCAL', '*.local:.a.test')).toBe('Host.a.test');
    expect(applyRewriteRule('host.other', '*.local:.a.test')).toBe('host.other');
  });
  it('- replaces the whole name', () => {
    expect(applyRewriteRule('x.old.test', '-.old.test:new.test')).toBe('new.test');
    expect(applyRewriteRule('x.other.test', '-.old.test:new.test')).toBe('x.other.test');
  });
  it('ignores unknown kinds, comments and lines without a colon', () => {
    expect(applyRewriteRule('www', '#?:.a.test')).toBe('www');
    expect(applyRewriteRule('www', '?.a.test')).toBe('www');
    expect(applyRewriteRule('www', '')).toBe('www');
  });
  it('applies the instructions in order', () => {
    expect(applyRewriteRules('www.', ['*.:', '?:.a.test'])).toBe('www.a.test');
    expect(applyRewriteRules('www.', ['?:.a.test', '*.:'])).toBe('www');
  });
});

describe('expandAlternatives', () => {
  it('tries base+suffix for each alternative, not the bare base', () => {
    expect(expandAlternatives('www+.a.test+.b.test')).toEqual(['www.a.test', 'www.b.test']);
    expect(expandAlternatives('www.a.test')).toEqual(['www.a.test']);
    expect(expandAlternatives('www+')).toEqual(['www']);
  });
});

describe('loadRewriteRules (dns_rcrw.c)', () => {
  it('reads $DNSREWRITEFILE, one instruction per line, trailing blanks removed', async () => {
    const file = join(tmp.path, 'dnsrewrite');
    writeFileSync(file, '=mail:mx.a.test \t\r\n*.:\n-.x:y');
    const r = await loadRewriteRules({ DNSREWRITEFILE: file, LOCALDOMAIN: 'ignored.test' });
    expect(r).toEqual({ rules: ['=mail:mx.a.test', '*.:', '-.x:y'], source: 'file' });
  });
  it('an existing empty file means no rewriting at all', async () => {
    const file = join(tmp.path, 'empty');
    writeFileSync(file, '');
    expect(await loadRewriteRules({ DNSREWRITEFILE: file, LOCALDOMAIN: 'a.test' })).toEqual({
      rules: [''],
      source: 'file',
    });
  });
  it('builds ?:+.d1+.d2 and *.: from $LOCALDOMAIN', async () => {
    const r = await loadRewriteRules({ DNSREWRITEFILE: missing, LOCALDOMAIN: 'a.test b.test' });
    expect(r).toEqual({ rules: ['?:+.a.test+.b.test', '*.:'], source: 'localdomain' });
  });
  it('uses the first search or domain line of resolv.conf', async () => {
    const conf = join(tmp.path, 'resolv.conf');
    writeFileSync(conf, 'nameserver 1.2.3.4\nsearch\ta.test  b.test\ndomain c.test\n');
    const r = await loadRewriteRules({ DNSREWRITEFILE: missing }, { resolvConfPath: conf });
    expect(r).toEqual({ rules: ['?:+.a.test+.b.test', '*.:'], source: 'resolvconf' });
  });
  it('falls back to the host name domain', async () => {
    const opts = { resolvConfPath: missing };
    expect(await loadRewriteRules({ DNSREWRITEFILE: missing }, { ...opts, hostname: 'box.a.test' })).toEqual({
      rules: ['?:.a.test', '*.:'],
      source: 'hostname',
    });
    expect(await loadRewriteRules({ DNSREWRITEFILE: missing }, { ...opts, hostname: 'box' })).toEqual({
      rules: ['*.:'],
      source: 'hostname',
    });
  });
  it('an unreadable rewrite file is a temporary error naming the file', async () => {
    const dir = join(tmp.path, 'a-directory');
    mkdirSync(dir);
    await expect(loadRewriteRules({ DNSREWRITEFILE: dir })).rejects.toMatchObject({
      code: DnsErrorCodes.REWRITE_READ,
      temporary: true,
      path: dir,
    });
  });
});
