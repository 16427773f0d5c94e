export type { IdentQuery, IdentResult } from './ident.js';
export { IDENT_PORT, identLookup, identQuery, parseIdentReply } from './ident.js';
