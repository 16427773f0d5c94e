export { getopt } from './getopt.js';
export type { GetoptResult, ParsedOption } from './getopt.js';
export { GetoptError, GetoptErrorCodes } from './errors.js';
export type { GetoptErrorCode } from './errors.js';
