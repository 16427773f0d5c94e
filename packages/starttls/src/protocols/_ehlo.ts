import { hostname } from 'node:os';
import type { Reply } from '../_reply.js';
import { checkToken } from '../_reply.js';
import type { Dialogue } from '../protocol.js';

/** The EHLO/LHLO argument: the `helo` option or os.hostname(), one printable word. */
export function ehloName(d: Dialogue): string {
  return checkToken(d, 'helo', d.options.helo ?? hostname());
}

/** Whether an EHLO reply lists `keyword` (RFC 5321 section 4.1.1.1: keywords follow the first line). */
export function hasKeyword(reply: Reply, keyword: string): boolean {
  return reply.lines.slice(1).some((l) => l.trim().split(/\s+/)[0]?.toUpperCase() === keyword);
}
