// The stunnel.conf line grammar, as stunnel 5.68's options_file() reads it (stunnel-behaviour.md
// section 2): a UTF-8 byte order mark on line 1 skipped; blanks around a line stripped; empty lines
// and lines starting with `;` or `#` are comments (no trailing comments); `[name]` opens a section;
// anything else is split at its first `=`. Option names and keyword values are case-insensitive.
// `include` reads a folder's regular files in alphabetical order as if written at that point.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, OptionError } from './errors.js';
import { copyService, defaultGlobals, defaultService, OPTIONS, type OptionContext } from './options.js';
import type { ConfigWarning, ServiceConfig, TunnelConfig, Where } from './types.js';
import { validateGlobals, validateService } from './validate.js';

export { ConfigError };

/** `PATH:LINE: "TEXT": MESSAGE`, stunnel's form for an error on a line. */
export function lineMessage(where: Where, message: string): string {
  return `${where.file}:${where.line}: "${where.text}": ${message}`;
}

/** stunnel's CONFLINELEN. */
const MAX_LINE = 16 * 1024;

/** How files are read (tests may give their own). */
export interface ConfigReader {
  readFile(path: string): string;
  /** The names of the regular files in a folder, or throws with the system error. */
  listFolder(path: string): string[];
}

const fsReader: ConfigReader = {
  readFile: (path) => readFileSync(path, 'utf8'),
  listFolder: (path) =>
    readdirSync(path)
      .filter((name) => {
        try {
          return statSync(join(path, name)).isFile();
        } catch {
          return false;
        }
      })
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
};

/** The system error as stunnel prints it: `No such file or directory (2)`. */
export function sysText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const texts: Record<string, [string, number]> = {
    ENOENT: ['No such file or directory', 2],
    EACCES: ['Permission denied', 13],
    ENOTDIR: ['Not a directory', 20],
    EISDIR: ['Is a directory', 21],
  };
  const t = e.code ? texts[e.code] : undefined;
  return t ? `${t[0]} (${t[1]})` : (e.message ?? String(err));
}

class Parser {
  readonly globals = defaultGlobals();
  /** Service-level options of the global part: defaults for every later section. */
  readonly defaults = defaultService();
  readonly services: ServiceConfig[] = [];
  readonly warnings: ConfigWarning[] = [];
  current: ServiceConfig | undefined;
  bom = false;

  constructor(private readonly reader: ConfigReader) {}

  /** Read one file's text (the top file or an included one). */
  text(text: string, file: string, top: boolean): void {
    if (top && text.startsWith('\uFEFF')) {
      this.bom = true;
      text = text.slice(1);
    }
    const lines = text.split('\n');
    if (lines.at(-1) === '') lines.pop();
    for (const [i, raw] of lines.entries()) {
      const text = raw.replace(/\r$/, '');
      this.line(text, { file, line: i + 1, text });
    }
  }

  line(raw: string, where: Where): void {
    const fail = (message: string): never => {
      throw new ConfigError(lineMessage(where, message));
    };
    if (raw.length > MAX_LINE) fail('Line too long');
    const line = raw.trim();
    if (line === '' || line.startsWith(';') || line.startsWith('#')) return;
    if (line.startsWith('[') && line.endsWith(']')) {
      this.openSection(line.slice(1, -1), where);
      return;
    }
    const eq = line.indexOf('=');
    if (eq < 0) fail("No '=' found");
    const name = line.slice(0, eq).trimEnd();
    const value = line.slice(eq + 1).trimStart();
    const key = name.toLowerCase();
    if (key === 'include') {
      this.include(value, where);
      return;
    }
    const spec = OPTIONS.get(key);
    const ctx: OptionContext = {
      globals: this.globals,
      service: this.current ?? this.defaults,
      where,
      warn: (message) => this.warnings.push({ where, message }),
    };
    // In the global part a name is tried as a global option first, then as a service default;
    // inside a section only service-level options are valid (stunnel's lookup order).
    let handler = this.current === undefined ? spec?.global : undefined;
    if (!handler && spec?.scope !== 'global') handler = spec?.service;
    if (!spec || !handler) fail('Specified option name is not valid here');
    try {
      handler!(ctx, value);
    } catch (err) {
      if (err instanceof OptionError) throw new ConfigError(lineMessage(where, err.message), err.before);
      throw err;
    }
  }

  include(path: string, where: Where): void {
    let names: string[];
    try {
      names = this.reader.listFolder(path);
    } catch (err) {
      throw new ConfigError(lineMessage(where, 'Failed to include directory'), [`scandir: ${sysText(err)}`]);
    }
    for (const name of names) {
      const file = join(path, name);
      let text: string;
      try {
        text = this.reader.readFile(file);
      } catch (err) {
        throw new ConfigError(`Cannot read configuration file ${file}: ${sysText(err)}`);
      }
      this.text(text, file, false);
    }
  }

  openSection(name: string, where: Where): void {
    this.closeSection();
    if (this.current === undefined) validateGlobals(this.globals);
    const s = copyService(this.defaults);
    s.name = name;
    s.where = where;
    this.current = s;
  }

  closeSection(): void {
    if (!this.current) return;
    validateService(this.current, this.services, false, this.warnings);
    this.services.push(this.current);
  }

  finish(source: string): TunnelConfig {
    const inetd = this.current === undefined;
    if (inetd) {
      validateGlobals(this.globals);
      validateService(this.defaults, [], true, this.warnings);
      // stunnel's name for the inetd-mode service (its `service` option, default stunnel).
      this.defaults.name = 'stunnel';
      this.services.push(this.defaults);
    } else this.closeSection();
    return {
      source,
      globals: this.globals,
      services: this.services,
      inetd,
      warnings: this.warnings,
      bom: this.bom,
    };
  }
}

/**
 * Parse a configuration given as text; `file` is the name its messages use. Included folders are
 * read through `reader` (the file system by default).
 *
 * @throws {ConfigError} in stunnel's words.
 */
export function parseConfig(text: string, file: string, reader: ConfigReader = fsReader): TunnelConfig {
  const p = new Parser(reader);
  p.text(text, file, true);
  return p.finish(file);
}
