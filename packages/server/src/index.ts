export type { ConnectionInfo } from '@ucspi/env';
export { errorStr } from '@ucspi/rules';
export type { Admission, AdmitOptions } from './admit.js';
export { admit } from './admit.js';
export type { DrainResult } from './drain.js';
export { createServer } from './engine.js';
export type { ServerErrorCode } from './errors.js';
export { exitCodeOf, ServerError, ServerErrorCodes } from './errors.js';
export type {
  DenyEvent,
  DrainEvent,
  DropEvent,
  EndEvent,
  OkEvent,
  ProxyEvent,
  ServerEvent,
  StatusEvent,
  WarningEvent,
} from './events.js';
export type { FactOptions } from './facts.js';
export { gatherFacts, plainIp } from './facts.js';
export type { BindAddress, BindAddressOptions } from './listen.js';
export { resolveBindAddress, resolvePort } from './listen.js';
export type { PrivilegeDrop } from './privileges.js';
export { dropPrivileges } from './privileges.js';
export type { ProxyV2Extras } from './proxy/encode.js';
export { proxyV1Header, proxyV2Header } from './proxy/encode.js';
export { proxyEnv } from './proxy/env.js';
export type { ProxyEndpoint, ProxyHeader, ProxyParse, ProxySsl } from './proxy/header.js';
export { PROXY_V1_MAX, PROXY_V2_SIGNATURE, ProxyHeaderError, parseProxyHeader } from './proxy/header.js';
export { readProxyHeader } from './proxy/read.js';
export type { Slot, SlotStatus } from './slots.js';
export { Slots } from './slots.js';
export type { Connection, ConnectionHandler, RulesSettings, ServerOptions, UcspiServer } from './types.js';
