import { GetoptError, GetoptErrorCodes } from './errors.js';

/** One option as it appeared on the command line, in order. */
export interface ParsedOption {
  /** The option letter, e.g. `'v'`. */
  readonly option: string;
  /** The option's argument, for letters followed by `:` in the option string. */
  readonly argument?: string;
}

/** The result of {@link getopt}. */
export interface GetoptResult {
  /** Every option in command-line order; repeated letters appear repeatedly (the last one usually wins). */
  readonly options: ParsedOption[];
  /** The words after the options: the first operand and everything after it, untouched. */
  readonly operands: string[];
}

/**
 * Parse `args` (argv without the program name) against an option string in getopt(3) form:
 * each letter is a flag, a letter followed by `:` takes an argument (`-xfile` or `-x file`).
 *
 * Parsing follows djb's subgetopt, as ucspi-tcp and ucspi-ssl use it: flags may be clustered
 * (`-vD`), a lone `-` is an operand, `--` ends the options and is dropped, and parsing stops at
 * the first operand, so `sslserver 0 443 prog -v` passes `-v` to prog. Nothing is permuted.
 *
 * @throws {GetoptError} `UCSPI_ERR_GETOPT_UNKNOWN_OPTION` for a letter not in `optstring`,
 *   `UCSPI_ERR_GETOPT_MISSING_ARGUMENT` when an option's argument is missing. The message is the
 *   one djb's getopt prints after the program name: `illegal option -- x` or
 *   `option requires an argument -- x`.
 */
export function getopt(args: readonly string[], optstring: string): GetoptResult {
  const spec = parseOptstring(optstring);
  const options: ParsedOption[] = [];
  let i = 0;
  for (; i < args.length; i++) {
    const word = args[i]!;
    if (word === '--') {
      i++;
      break;
    }
    if (word.length < 2 || word[0] !== '-') break;
    for (let j = 1; j < word.length; j++) {
      const letter = word[j]!;
      const takesArgument = spec.get(letter);
      if (takesArgument === undefined) {
        throw new GetoptError(GetoptErrorCodes.UNKNOWN_OPTION, letter, `illegal option -- ${letter}`);
      }
      if (!takesArgument) {
        options.push({ option: letter });
        continue;
      }
      // The rest of this word is the argument; if there is none, the next word is, whatever it is.
      let argument = word.slice(j + 1);
      if (argument === '') {
        if (i + 1 >= args.length) {
          throw new GetoptError(
            GetoptErrorCodes.MISSING_ARGUMENT,
            letter,
            `option requires an argument -- ${letter}`,
          );
        }
        argument = args[++i]!;
      }
      options.push({ option: letter, argument });
      break;
    }
  }
  return { options, operands: args.slice(i) };
}

function parseOptstring(optstring: string): Map<string, boolean> {
  const spec = new Map<string, boolean>();
  for (let k = 0; k < optstring.length; k++) {
    const letter = optstring[k]!;
    if (letter === ':' || letter === '-') {
      throw new GetoptError(GetoptErrorCodes.BAD_OPTSTRING, letter, `bad option string: ${optstring}`);
    }
    const takesArgument = optstring[k + 1] === ':';
    spec.set(letter, takesArgument);
    if (takesArgument) k++;
  }
  return spec;
}
