export type { IdentQuery } from './ident.js';
export { IDENT_PORT, identLookup, parseIdentReply } from './ident.js';
