import { constants } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { OptionError } from './errors.js';
import { applySslOption, parseSecurityLevel, parseTicketSecret } from './tls-values.js';

const HEX16 = '00112233445566778899aabbccddeeff';

/** The OptionError a call throws: its lines before, and its message. */
function failure(f: () => unknown): string[] {
  try {
    f();
  } catch (err) {
    if (err instanceof OptionError) return [...err.before, err.message];
    throw err;
  }
  throw new Error('no error');
}

describe('parseTicketSecret', () => {
  it('reads 16 or 32 bytes of hex, colons anywhere between bytes, any case', () => {
    expect(parseTicketSecret('ticketKeySecret', HEX16).toString('hex')).toBe(HEX16);
    expect(
      parseTicketSecret('ticketKeySecret', `:${HEX16.toUpperCase().replace(/(..)/g, '$1::')}`),
    ).toHaveLength(16);
    expect(parseTicketSecret('ticketMacSecret', HEX16 + HEX16)).toHaveLength(32);
  });
  it("refuses in stunnel's two lines", () => {
    const notHex = [
      'Required ticketKeySecret is 16 or 32 byte hexadecimal key',
      'Failed to read ticketKeySecret',
    ];
    expect(failure(() => parseTicketSecret('ticketKeySecret', `0:${HEX16.slice(1)}0`))).toEqual(notHex);
    expect(failure(() => parseTicketSecret('ticketKeySecret', HEX16.slice(1)))).toEqual(notHex);
    expect(failure(() => parseTicketSecret('ticketKeySecret', ''))).toEqual(notHex);
    expect(failure(() => parseTicketSecret('ticketMacSecret', '00'))).toEqual([
      'ticketMacSecret value has 1 bytes instead of required 16 or 32 bytes',
      'Failed to read ticketMacSecret',
    ]);
  });
});

describe('applySslOption', () => {
  it('sets, clears (last line wins) and keeps bit 31 positive', () => {
    const ticket = BigInt(constants.SSL_OP_NO_TICKET);
    expect(applySslOption(0n, 'no_ticket')).toBe(ticket);
    expect(applySslOption(applySslOption(0n, 'NO_TICKET'), '-NO_TICKET')).toBe(0n);
    expect(applySslOption(0n, 'SINGLE_DH_USE')).toBe(0n);
    expect(applySslOption(0n, 'CRYPTOPRO_TLSEXT_BUG')).toBe(2n ** 31n);
  });
  it('refuses unknown names as stunnel, and names that cannot be honoured naming them', () => {
    expect(failure(() => applySslOption(0n, 'BOGUS'))).toEqual(['Illegal TLS option']);
    expect(failure(() => applySslOption(0n, 'SSL_OP_NO_TICKET'))).toEqual(['Illegal TLS option']);
    expect(failure(() => applySslOption(0n, 'ENABLE_KTLS'))[0]).toMatch(/ENABLE_KTLS cannot be honoured/);
    expect(failure(() => applySslOption(0n, '-NO_RENEGOTIATION'))[0]).toMatch(/cannot be honoured/);
  });
});

describe('parseSecurityLevel', () => {
  it('reads 0-5 as strtol would, and nothing else', () => {
    expect(['0', '02', '+3', '5'].map(parseSecurityLevel)).toEqual([0, 2, 3, 5]);
    for (const bad of ['6', '-1', '3x', '', 'two'])
      expect(failure(() => parseSecurityLevel(bad))).toEqual(['Illegal security level']);
  });
});
