export type { AcceptTlsOptions, AcceptTlsResult } from './accept.js';
export { acceptTls, negotiated } from './accept.js';
export type { ClientTls, ClientTlsOptions } from './client.js';
export { loadClientTls } from './client.js';
export type { ConnectTlsOptions } from './connect.js';
export { connectTls } from './connect.js';
export { developmentCertificate, developmentCertificateDir } from './devcert.js';
export type { TlsErrorCode } from './errors.js';
export { TlsConfigError, TlsConnectError, TlsErrorCodes } from './errors.js';
export type { CertEvaluation, EvaluationPolicy } from './evaluate.js';
export {
  applyEvaluationPolicy,
  certificateDigest,
  evaluateCertificate,
  mostSeriousError,
} from './evaluate.js';
export type { HandshakeResult } from './handshake.js';
export { opensslReason, surfaceTlsErrors, waitForHandshake } from './handshake.js';
export { evaluationArgs, evaluationEnv } from './hook.js';
export { readKeyPasswordFromFd } from './password.js';
export type { ClientCertPolicy, ServerTls, ServerTlsOptions, SniEntry } from './server.js';
export { loadServerTls } from './server.js';
export type { TicketKeyRing } from './ticket-keys.js';
export { checkTicketKeys, installTicketKeys, readTicketKeysFile, TICKET_KEYS_BYTES } from './ticket-keys.js';
export type { StunnelVerifyLevel, VerifyPolicy } from './verifylevel.js';
export { stunnelVerifyPolicy } from './verifylevel.js';
