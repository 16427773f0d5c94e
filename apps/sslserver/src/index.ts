export type { ServerFlavour, ServerOptions } from './options.js';
export { parseOptions, USAGE, UsageError } from './options.js';
