import { CdbFileWriter } from '@ucspi/cdb';
import { parseRuleLine } from './parse.js';

/**
 * Compile rules text into a cdb as tcprules does: create (truncate) `tmpPath` first, add the
 * records as lines are parsed, then finish, fsync and rename to `cdbPath`. On a parse error the
 * writer is closed and the error thrown before any rename, so the existing cdb is untouched (the
 * partial temporary file is left behind, as the original leaves it).
 *
 * @throws {RulesError} UCSPI_ERR_RULES_PARSE; {CdbError} UCSPI_ERR_CDB_CREATE / _WRITE / _RENAME
 *   with the system error as cause; an error of the input stream as it is.
 */
export async function compileRules(
  input: AsyncIterable<Uint8Array> | Iterable<Uint8Array> | Uint8Array,
  cdbPath: string,
  tmpPath: string,
): Promise<{ records: number }> {
  const writer = await CdbFileWriter.create(tmpPath);
  let records = 0;
  let lineNumber = 0;
  const addLine = async (line: Buffer) => {
    for (const rule of parseRuleLine(line, ++lineNumber)) {
      await writer.add(rule.key, rule.data);
      records++;
    }
  };
  try {
    const chunks = input instanceof Uint8Array ? [input] : input;
    let rest: Buffer = Buffer.alloc(0);
    for await (const chunk of chunks) {
      let buf = rest.length > 0 ? Buffer.concat([rest, chunk]) : Buffer.from(chunk);
      let nl = buf.indexOf(0x0a);
      while (nl >= 0) {
        await addLine(buf.subarray(0, nl + 1));
        buf = buf.subarray(nl + 1);
        nl = buf.indexOf(0x0a);
      }
      rest = Buffer.from(buf);
    }
    // A last line without a newline is processed normally.
    if (rest.length > 0) await addLine(rest);
    await writer.finish(cdbPath);
  } catch (err) {
    await writer.abort();
    throw err;
  }
  return { records };
}
