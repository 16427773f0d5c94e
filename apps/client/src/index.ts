export { ClientErrorCodes } from './errors.js';
export type { ClientIo } from './main.js';
export { main } from './main.js';
export type { ClientOptions } from './options.js';
export { parseOptions, USAGE } from './options.js';
