// `logId`: what stands between the brackets of a connection's log lines (stunnel 5.68's meanings).
// sequential: the connection number, counted over every service; unique: a random 22-character
// word of letters and digits (128 bits), new for each connection; thread: stunnel's thread id, and
// process: its process id. ucspi-tunnel is one process without threads, so both print its pid.
import { randomBytes } from 'node:crypto';

/** stunnel's four kinds of connection identifier. */
export type LogIdKind = 'sequential' | 'unique' | 'thread' | 'process';

const DIGITS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** 128 random bits written with letters and digits: 22 characters, as stunnel's unique ids. */
function uniqueWord(): string {
  let n = BigInt(`0x${randomBytes(16).toString('hex')}`);
  let word = '';
  for (let i = 0; i < 22; i++) {
    word = DIGITS[Number(n % 62n)] + word;
    n /= 62n;
  }
  return word;
}

/** The identifier that connection number `seq` of a service with this `logId` is logged with. */
export function connectionLabel(kind: LogIdKind, seq: number): string | number {
  if (kind === 'unique') return uniqueWord();
  if (kind === 'thread' || kind === 'process') return process.pid;
  return seq;
}
