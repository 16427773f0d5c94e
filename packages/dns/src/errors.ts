/** Stable error codes of @ucspi/dns. Match on `err.code`, never on the class. */
export const DnsErrorCodes = {
  /** A forward lookup timed out (no server answered in time). Temporary. */
  TIMEOUT: 'UCSPI_ERR_DNS_TIMEOUT',
  /** A forward lookup failed temporarily otherwise (SERVFAIL, REFUSED, connection refused). */
  TEMPORARY: 'UCSPI_ERR_DNS_TEMPORARY',
  /** The name does not exist or has no address of the asked type (NXDOMAIN or NODATA). Permanent. */
  NOTFOUND: 'UCSPI_ERR_DNS_NOTFOUND',
  /** The argument is not a usable name or IP address (empty, too long, not an IP for reverse). */
  BAD_NAME: 'UCSPI_ERR_DNS_BAD_NAME',
  /** DNSCACHEIP holds something that is not an IP address. Permanent. */
  BAD_DNSCACHEIP: 'UCSPI_ERR_DNS_BAD_DNSCACHEIP',
  /** $DNSREWRITEFILE (or /etc/dnsrewrite, /etc/resolv.conf) exists but could not be read. Temporary. */
  REWRITE_READ: 'UCSPI_ERR_DNS_REWRITE_READ',
} as const;

export type DnsErrorCode = (typeof DnsErrorCodes)[keyof typeof DnsErrorCodes];

const TEMPORARY_CODES: ReadonlySet<DnsErrorCode> = new Set([
  DnsErrorCodes.TIMEOUT,
  DnsErrorCodes.TEMPORARY,
  DnsErrorCodes.REWRITE_READ,
]);

/**
 * A failure of a DNS lookup or of the resolver configuration. `temporary` is true for the codes a
 * retry may cure (timeouts, server failures, unreadable configuration): apps map it to exit 111,
 * everything else to 100.
 */
export class DnsError extends Error {
  readonly code: DnsErrorCode;
  /** True when a later retry may succeed (exit 111), false for permanent failures (exit 100). */
  readonly temporary: boolean;
  /** The name or IP address that was being looked up, when there was one. */
  readonly hostname?: string;
  /** The file involved (for UCSPI_ERR_DNS_REWRITE_READ). */
  readonly path?: string;
  /** The underlying error from node:dns or node:fs. */
  override readonly cause?: unknown;

  constructor(
    code: DnsErrorCode,
    message: string,
    extra: { hostname?: string; path?: string; cause?: unknown } = {},
  ) {
    super(message);
    this.name = 'DnsError';
    this.code = code;
    this.temporary = TEMPORARY_CODES.has(code);
    if (extra.hostname !== undefined) this.hostname = extra.hostname;
    if (extra.path !== undefined) this.path = extra.path;
    if (extra.cause !== undefined) this.cause = extra.cause;
  }
}
