export { ConfigError, type ConfigReader, parseConfig } from './config/parse.js';
export type { ConfigWarning, GlobalConfig, ServiceConfig, TunnelConfig, Where } from './config/types.js';
export { main } from './main.js';
