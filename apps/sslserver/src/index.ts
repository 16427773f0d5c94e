export type { EnvLib, RulesLib, TlsLib } from './_deps.js';
export type { ServerIo } from './main.js';
export { main, safe } from './main.js';
export type { ServerFlavour, ServerOptions } from './options.js';
export { parseOptions, USAGE, UsageError } from './options.js';
