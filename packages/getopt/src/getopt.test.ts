import { describe, expect, it } from 'vitest';
import { GetoptErrorCodes, getopt } from './index.js';

describe('getopt', () => {
  const opts = 'vqc:x:B:';

  it('parses flags, clustered flags and options with glued or separate arguments', () => {
    const r = getopt(['-vq', '-c10', '-x', 'rules.cdb', 'host', 'port'], opts);
    expect(r.options).toEqual([
      { option: 'v' },
      { option: 'q' },
      { option: 'c', argument: '10' },
      { option: 'x', argument: 'rules.cdb' },
    ]);
    expect(r.operands).toEqual(['host', 'port']);
  });

  it('stops at the first operand and leaves the rest untouched', () => {
    const r = getopt(['-v', '0', '443', 'prog', '-v', '--'], opts);
    expect(r.options).toEqual([{ option: 'v' }]);
    expect(r.operands).toEqual(['0', '443', 'prog', '-v', '--']);
  });

  it('drops a first -- and treats a lone - as an operand', () => {
    expect(getopt(['-v', '--', '-q'], opts)).toEqual({ options: [{ option: 'v' }], operands: ['-q'] });
    expect(getopt(['-', '-v'], opts)).toEqual({ options: [], operands: ['-', '-v'] });
  });

  it('takes the next word as an argument even if it looks like an option', () => {
    expect(getopt(['-B', '-v', 'x'], opts).options).toEqual([{ option: 'B', argument: '-v' }]);
    expect(getopt(['-vB', ''], opts).options).toEqual([{ option: 'v' }, { option: 'B', argument: '' }]);
  });

  it('a letter with an argument ends its cluster', () => {
    expect(getopt(['-vcq', 'x'], opts)).toEqual({
      options: [{ option: 'v' }, { option: 'c', argument: 'q' }],
      operands: ['x'],
    });
  });

  it('rejects an unknown letter with djb getopt wording', () => {
    expect(() => getopt(['-vz', 'x'], opts)).toThrowError(
      expect.objectContaining({
        code: GetoptErrorCodes.UNKNOWN_OPTION,
        option: 'z',
        message: 'illegal option -- z',
      }),
    );
  });

  it('rejects a missing argument', () => {
    expect(() => getopt(['-c'], opts)).toThrowError(
      expect.objectContaining({
        code: GetoptErrorCodes.MISSING_ARGUMENT,
        message: 'option requires an argument -- c',
        temporary: false,
      }),
    );
  });

  it('rejects a malformed option string', () => {
    expect(() => getopt([], ':a')).toThrowError(
      expect.objectContaining({ code: GetoptErrorCodes.BAD_OPTSTRING }),
    );
  });

  it('returns no options for empty argv', () => {
    expect(getopt([], opts)).toEqual({ options: [], operands: [] });
  });
});
