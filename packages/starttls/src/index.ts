export type { LineMessage, OutcomeMessage, UpgradeMessage } from './diagnostics.js';
export { channels } from './diagnostics.js';
export type { StartTlsErrorCode, StartTlsErrorDetails } from './errors.js';
export { StartTlsError, StartTlsErrorCodes } from './errors.js';
export type { Dialogue, StartTlsClientOptions, StartTlsProtocol, StartTlsServerOptions } from './protocol.js';
export {
  clientProtocols,
  isClientProtocol,
  isServerProtocol,
  loadProtocol,
  serverProtocols,
} from './registry.js';
export type { Handshake } from './starttls.js';
export { afterTlsClient, startTlsClient, startTlsServer } from './starttls.js';
