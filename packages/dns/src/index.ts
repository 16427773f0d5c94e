export type { DnsClient, DnsClientOptions } from './client.js';
export { arpaName, createDnsClient, DEFAULT_TIMEOUT_MS, parseDnsCacheIp } from './client.js';
export type { DnsErrorCode } from './errors.js';
export { DnsError, DnsErrorCodes } from './errors.js';
export type { RewriteConfigOptions, RewriteRules, RewriteSource } from './rewrite.js';
export {
  applyRewriteRule,
  applyRewriteRules,
  expandAlternatives,
  loadRewriteRules,
} from './rewrite.js';
export { SERVICES_FILE, servicePort } from './services.js';
