import { Cdb } from '@ucspi/cdb';
import { errorStr } from '../errorstr.js';
import { lookupRules } from '../lookup.js';
import type { CliIo } from './tcprules.js';

/**
 * tcprulescheck rules.cdb — show which rule tcpserver would apply to the client described by
 * TCPREMOTEIP (default 0.0.0.0), TCPREMOTEHOST and TCPREMOTEINFO (unset and set-but-empty
 * differ), in the original's words. Exit 0; 100 for usage; 111 when the cdb cannot be read.
 */
export async function tcprulescheck(
  argv: readonly string[],
  env: Record<string, string | undefined>,
  io: Omit<CliIo, 'stdin'>,
): Promise<number> {
  const fn = argv[0];
  if (fn === undefined) {
    io.stderr.write('tcprulescheck: usage: tcprulescheck rules.cdb\n');
    return 100;
  }
  let cdb: Cdb;
  try {
    cdb = await Cdb.open(fn);
  } catch (err) {
    io.stderr.write(`tcprulescheck: fatal: unable to read ${fn}: ${errorStr(err)}\n`);
    return 111;
  }
  const query = {
    ip: env.TCPREMOTEIP ?? '0.0.0.0',
    ...(env.TCPREMOTEHOST !== undefined ? { host: env.TCPREMOTEHOST } : {}),
    ...(env.TCPREMOTEINFO !== undefined ? { info: env.TCPREMOTEINFO } : {}),
  };
  try {
    // The servers' own lookup, so that what this prints is what they do.
    const match = lookupRules(cdb, query);
    if (match) {
      io.stdout.write(
        Buffer.concat([
          Buffer.from('rule '),
          Buffer.from(match.key),
          Buffer.from(':\n'),
          describe(match.data),
        ]),
      );
      return 0;
    }
  } catch (err) {
    io.stderr.write(`tcprulescheck: fatal: unable to read ${fn}: ${errorStr(err)}\n`);
    return 111;
  }
  io.stdout.write('default:\nallow connection\n');
  return 0;
}

/** The original's walk over the items: `D` ends with "deny connection"; `+` lines before it. */
function describe(data: Buffer): Buffer {
  const out: Buffer[] = [];
  let pos = 0;
  for (;;) {
    const nul = data.indexOf(0, pos);
    if (nul < 0) break;
    if (data[pos] === 0x44) {
      out.push(Buffer.from('deny connection\n'));
      return Buffer.concat(out);
    }
    if (data[pos] === 0x2b)
      out.push(Buffer.from('set environment variable '), data.subarray(pos + 1, nul), Buffer.from('\n'));
    pos = nul + 1;
  }
  out.push(Buffer.from('allow connection\n'));
  return Buffer.concat(out);
}
