import { compileRules } from '../compile.js';
import { errorStr } from '../errorstr.js';

/** Streams a CLI main() uses; the bins pass process.stdin/stdout/stderr. */
export interface CliIo {
  stdin: AsyncIterable<Uint8Array>;
  stdout: { write(s: string | Uint8Array): unknown };
  stderr: { write(s: string | Uint8Array): unknown };
}

const USAGE = 'tcprules: usage: tcprules rules.cdb rules.tmp\n';

/**
 * tcprules rules.cdb rules.tmp < rules.txt — compile rules text into a cdb, replacing rules.cdb
 * atomically. Exit 0, 100 (usage, parse error) or 111 (system error), with the original's
 * messages. Like the original it takes no options: every argument is a file name.
 */
export async function tcprules(argv: readonly string[], io: CliIo): Promise<number> {
  const [cdb, tmp] = argv;
  if (cdb === undefined || tmp === undefined) {
    io.stderr.write(USAGE);
    return 100;
  }
  try {
    await compileRules(readInput(io.stdin), cdb, tmp);
    return 0;
  } catch (err) {
    const e = err as { code?: string; text?: Buffer; line?: number };
    switch (e.code) {
      case 'UCSPI_ERR_RULES_PARSE':
        // The original's line, then where it is: log scanners keep matching the prefix.
        io.stderr.write(
          Buffer.concat([
            Buffer.from('tcprules: fatal: unable to parse this line: '),
            e.text ?? Buffer.alloc(0),
            Buffer.from(` (line ${e.line})\n`),
          ]),
        );
        return 100;
      case 'UCSPI_ERR_CDB_CREATE':
      case 'UCSPI_ERR_CDB_WRITE':
        io.stderr.write(`tcprules: fatal: unable to create ${tmp}: ${errorStr(err)}\n`);
        return 111;
      case 'UCSPI_ERR_CDB_RENAME':
        io.stderr.write(`tcprules: fatal: unable to move ${tmp} to ${cdb}: ${errorStr(err)}\n`);
        return 111;
      case 'UCSPI_ERR_CDB_TOO_LARGE':
        io.stderr.write(`tcprules: fatal: unable to create ${tmp}: the cdb would pass the 4 GiB limit\n`);
        return 111;
      case 'UCSPI_ERR_RULES_INPUT':
        io.stderr.write(`tcprules: fatal: unable to read input: ${errorStr((err as Error).cause)}\n`);
        return 111;
      default:
        throw err;
    }
  }
}

/** Tag errors of standard input so they are reported as the original's "unable to read input". */
async function* readInput(stdin: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  try {
    for await (const chunk of stdin) yield chunk;
  } catch (cause) {
    throw Object.assign(new Error('unable to read input', { cause }), { code: 'UCSPI_ERR_RULES_INPUT' });
  }
}
