export { developmentCertificate, developmentCertificateDir } from './devcert.js';
export type { TlsErrorCode } from './errors.js';
export { TlsConfigError, TlsErrorCodes } from './errors.js';
export type { CertEvaluation, EvaluationPolicy } from './evaluate.js';
export { applyEvaluationPolicy, certificateDigest, evaluateCertificate } from './evaluate.js';
export { readKeyPasswordFromFd } from './password.js';
export type { ClientCertPolicy, ServerTls, ServerTlsOptions, SniEntry } from './server.js';
export { loadServerTls } from './server.js';
