export { checkVariable, childEnv, childEnvList, EnvBase } from './child.js';
export type { ConnectionInfo, EnvDelta } from './connection.js';
export { isIPv6Connection, sslEnv, tcpEnv, unmapIPv4 } from './connection.js';
export type { EnvErrorCode } from './errors.js';
export { EnvError, EnvErrorCodes } from './errors.js';
export { decodeEnvList, encodeEnvList, MAX_ENV_LIST_BYTES } from './list.js';
export { logField } from './log.js';
export type { ModSslOptions } from './modssl.js';
export { certificateEnv, modSslEnv, onelineDn, peerCertificate, peerVerifyError } from './modssl.js';
