export type { CdbErrorCode } from './errors.js';
export { CdbError, CdbErrorCodes } from './errors.js';
export { cdbHash } from './hash.js';
export { Cdb } from './reader.js';
export type { CdbWriterOptions } from './writer.js';
export { CdbFileWriter, CdbMaker, writeCdbFile } from './writer.js';
