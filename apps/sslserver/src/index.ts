export type { ServerIo } from './main.js';
export { main } from './main.js';
export type { ServerFlavour, ServerOptions } from './options.js';
export { parseOptions, USAGE, UsageError } from './options.js';
