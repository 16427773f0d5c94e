export type { GetoptErrorCode } from './errors.js';
export { GetoptError, GetoptErrorCodes } from './errors.js';
export type { GetoptResult, ParsedOption } from './getopt.js';
export { getopt } from './getopt.js';
