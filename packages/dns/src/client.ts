// The DNS client: djbdns's qualification and rewriting, forward and reverse lookups, the paranoid
// check, all through one resolver on $DNSCACHEIP. Over 300 lines: the lookups share its servers,
// its timeouts and its error mapping.
import diagnostics_channel from 'node:diagnostics_channel';
import { Resolver } from 'node:dns/promises';
import { BlockList, isIP, isIPv4 } from 'node:net';
import { debuglog } from 'node:util';
import { unmapIPv4 } from '@ucspi/env';
import { DnsError, DnsErrorCodes } from './errors.js';
import {
  applyRewriteRules,
  expandAlternatives,
  loadRewriteRules,
  type RewriteConfigOptions,
  type RewriteRules,
} from './rewrite.js';

/** Default bound on every single lookup, in milliseconds. */
export const DEFAULT_TIMEOUT_MS = 5000;

// djbdns's dns_rcrw.c re-reads its configuration every 10 minutes (or after 100 uses).
const RULES_TTL_MS = 10 * 60 * 1000;

/** Published for every finished query: `{ type, name, ok, code? }`. */
const queryChannel = diagnostics_channel.channel('ucspi:dns:query');
// NODE_DEBUG=ucspi prints the same as a line per failed query on stderr.
const debug = debuglog('ucspi');

/** Options of {@link createDnsClient}. */
export interface DnsClientOptions {
  /** Bound on each lookup in ms (default 5000). A lookup that takes longer fails with UCSPI_ERR_DNS_TIMEOUT. */
  timeoutMs?: number;
  /**
   * UDP/TCP port of the servers (default 53). djbdns's DNSCACHEIP has no port; this exists so that
   * tests can point the client at a server on an unprivileged port.
   */
  port?: number;
  /** Override the configuration files read for qualification (tests). */
  rewrite?: RewriteConfigOptions;
}

/** The resolver used by the UCSPI tools: qualification, forward and reverse lookups. */
export interface DnsClient {
  /**
   * The fully qualified form of `name` (djbdns dns_ip4_qualify's fqdn). IP literals, `0` and the
   * empty name are returned unchanged. When the rewritten name holds `+` alternatives, the first
   * one with an address (A or AAAA) is returned; none -> UCSPI_ERR_DNS_NOTFOUND.
   */
  qualify(name: string): Promise<string>;
  /** IPv4 addresses of `name` after qualification. `0` and `` are 127.0.0.1 (tcpclient). */
  ip4(name: string): Promise<string[]>;
  /** IPv6 addresses of `name` after qualification. `0` and `` are ::1. */
  ip6(name: string): Promise<string[]>;
  /** IPv4 then IPv6 addresses of `name` after qualification. `0` and `` are 127.0.0.1. */
  addresses(name: string): Promise<string[]>;
  /** The first PTR name of `ip`, or undefined when there is none or the lookup failed (as tcpserver). */
  reverse(ip: string): Promise<string | undefined>;
  /** As {@link DnsClient.reverse}, but undefined unless the name's A (AAAA for IPv6) records contain `ip` (tcpserver -p). */
  reverseParanoid(ip: string): Promise<string | undefined>;
}

/**
 * Parses $DNSCACHEIP into a list of server addresses. djbdns's dns_rcip.c reads dotted IPv4
 * addresses run together with dots (`1.2.3.4.5.6.7.8` = two servers); this also accepts addresses
 * separated by spaces or commas, and IPv6 addresses (as the IPv6 patches of djbdns do).
 * Unset or blank gives `undefined` (use the system's servers). Anything else throws
 * DnsError UCSPI_ERR_DNS_BAD_DNSCACHEIP.
 */
export function parseDnsCacheIp(value: string | undefined): string[] | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const servers: string[] = [];
  for (const token of value.trim().split(/[\s,]+/)) {
    if (isIP(token) !== 0) {
      servers.push(token);
      continue;
    }
    const parts = token.split('.');
    if (parts.length % 4 === 0 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) {
      for (let i = 0; i < parts.length; i += 4) servers.push(parts.slice(i, i + 4).join('.'));
      continue;
    }
    throw new DnsError(
      DnsErrorCodes.BAD_DNSCACHEIP,
      `DNSCACHEIP: not an IP address: ${JSON.stringify(token)}`,
    );
  }
  return servers;
}

/** Maps a node:dns error to a DnsError. */
function mapError(err: unknown, name: string, type: string): DnsError {
  if (err instanceof DnsError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOTFOUND': // NXDOMAIN
    case 'ENODATA': // the name exists, no record of this type
      return new DnsError(DnsErrorCodes.NOTFOUND, `no ${type} record for ${name}`, {
        hostname: name,
        cause: err,
      });
    case 'ETIMEOUT':
      return new DnsError(DnsErrorCodes.TIMEOUT, `timed out looking up ${type} for ${name}`, {
        hostname: name,
        cause: err,
      });
    case 'EBADNAME':
      return new DnsError(DnsErrorCodes.BAD_NAME, `bad name: ${JSON.stringify(name)}`, {
        hostname: name,
        cause: err,
      });
    default:
      return new DnsError(
        DnsErrorCodes.TEMPORARY,
        `temporary failure looking up ${type} for ${name}: ${code ?? String(err)}`,
        { hostname: name, cause: err },
      );
  }
}

/**
 * dns_ip4.c's literal rule: a name made only of digits, dots and brackets is an IPv4 address
 * written out, not a name to look up (`[1.2.3.4]` too). Returns undefined for other names.
 */
function ip4Literal(name: string): string[] | undefined {
  if (!/^[\d.[\]]+$/.test(name)) return undefined;
  const bare = name.replace(/[[\]]/g, '');
  if (isIPv4(bare)) return [bare];
  throw new DnsError(DnsErrorCodes.BAD_NAME, `bad IPv4 address: ${JSON.stringify(name)}`, {
    hostname: name,
  });
}

/** An IPv6 literal, brackets allowed; undefined for other names. */
function ip6Literal(name: string): string | undefined {
  const bare = name.startsWith('[') && name.endsWith(']') ? name.slice(1, -1) : name;
  return isIP(bare) === 6 ? bare : undefined;
}

/**
 * The reverse-lookup name of an IP address: `4.3.2.1.in-addr.arpa` for 1.2.3.4, the 32 nibbles of
 * an IPv6 address reversed under `ip6.arpa`.
 */
export function arpaName(ip: string): string {
  if (isIP(ip) === 4) return `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
  let text = ip.replace(/%.*$/, '');
  // A trailing dotted quad (::ffff:1.2.3.4, ::1.2.3.4) becomes two groups.
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (quad) {
    const [a, b, c, d] = quad.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups =
    tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  const hex = groups.map((g) => g.padStart(4, '0')).join('');
  return `${[...hex].reverse().join('.')}.ip6.arpa`;
}

/**
 * Creates a DNS client. `env` is read for DNSCACHEIP (the servers; unset = the system's, from
 * /etc/resolv.conf), and, on first use and every 10 minutes, DNSREWRITEFILE and LOCALDOMAIN for
 * qualification. Throws DnsError UCSPI_ERR_DNS_BAD_DNSCACHEIP for a malformed DNSCACHEIP.
 */
export function createDnsClient(
  env: Record<string, string | undefined>,
  opts: DnsClientOptions = {},
): DnsClient {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new RangeError(`timeoutMs must be a positive number, got ${timeoutMs}`);
  }
  // One try per server: the overall bound below is what callers rely on.
  const resolver = new Resolver({ timeout: Math.ceil(timeoutMs), tries: 1 });
  const configured = parseDnsCacheIp(env.DNSCACHEIP);
  const servers = configured ?? (opts.port !== undefined ? resolver.getServers() : undefined);
  if (servers !== undefined) {
    resolver.setServers(
      servers.map((ip) => {
        if (opts.port === undefined) return ip;
        // getServers() may already carry a port: `1.2.3.4:53`, `[::1]:53`.
        const host = /^\[(.*)\]:\d+$/.exec(ip)?.[1] ?? /^(\d+\.\d+\.\d+\.\d+):\d+$/.exec(ip)?.[1] ?? ip;
        return isIP(host) === 6 ? `[${host}]:${opts.port}` : `${host}:${opts.port}`;
      }),
    );
  }

  let rules: { value: Promise<RewriteRules>; at: number } | undefined;
  function currentRules(): Promise<RewriteRules> {
    const now = Date.now();
    if (rules === undefined || now - rules.at > RULES_TTL_MS) {
      const value = loadRewriteRules(env, opts.rewrite);
      rules = { value, at: now };
      // A failed read is not cached: the next call tries again.
      value.catch(() => {
        if (rules?.value === value) rules = undefined;
      });
    }
    return rules.value;
  }

  /** Runs one query, bounded by timeoutMs, with errors mapped to DnsError. */
  async function bounded<T>(type: string, name: string, query: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const guard = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new DnsError(DnsErrorCodes.TIMEOUT, `timed out looking up ${type} for ${name}`, {
              hostname: name,
            }),
          ),
        timeoutMs,
      );
    });
    try {
      const result = await Promise.race([query(), guard]);
      if (queryChannel.hasSubscribers) queryChannel.publish({ type, name, ok: true });
      return result;
    } catch (err) {
      const mapped = mapError(err, name, type);
      if (queryChannel.hasSubscribers) {
        queryChannel.publish({ type, name, ok: false, code: mapped.code });
      }
      debug('dns: %s %s: %s', type, name, mapped.code);
      throw mapped;
    } finally {
      clearTimeout(timer);
    }
  }

  // A trailing dot marks an absolute name; c-ares wants it without.
  const absolute = (n: string) => (n.endsWith('.') && n.length > 1 ? n.slice(0, -1) : n);

  function lookupA(name: string): Promise<string[]> {
    const literal = ip4Literal(name);
    if (literal !== undefined) return Promise.resolve(literal);
    if (ip6Literal(name) !== undefined) {
      return Promise.reject(
        new DnsError(DnsErrorCodes.NOTFOUND, `no A record for ${name}`, { hostname: name }),
      );
    }
    return bounded('A', name, () => resolver.resolve4(absolute(name)));
  }

  function lookupAAAA(name: string): Promise<string[]> {
    const literal = ip6Literal(name);
    if (literal !== undefined) return Promise.resolve([literal]);
    if (ip4Literal(name) !== undefined) {
      return Promise.reject(
        new DnsError(DnsErrorCodes.NOTFOUND, `no AAAA record for ${name}`, { hostname: name }),
      );
    }
    return bounded('AAAA', name, () => resolver.resolve6(absolute(name)));
  }

  async function lookupAny(name: string): Promise<string[]> {
    const [a, aaaa] = await Promise.allSettled([lookupA(name), lookupAAAA(name)]);
    const found = [
      ...(a.status === 'fulfilled' ? a.value : []),
      ...(aaaa.status === 'fulfilled' ? aaaa.value : []),
    ];
    if (found.length > 0) return found;
    // Nothing found: a temporary failure of either lookup wins over "not found", since a retry
    // might find the address.
    const errors = [a, aaaa].flatMap((r) => (r.status === 'rejected' ? [r.reason as DnsError] : []));
    throw errors.find((e) => e.temporary) ?? errors[0];
  }

  function isLiteral(name: string): boolean {
    return /^[\d.[\]]+$/.test(name) || ip6Literal(name) !== undefined;
  }

  /**
   * dns_ip4_qualify_rules: rewrite, then try the alternatives in order. "Not found" moves on to
   * the next alternative; any other failure ends the search (djbdns returns -1 at once).
   */
  async function qualified(
    name: string,
    lookup: (n: string) => Promise<string[]>,
  ): Promise<{ fqdn: string; addresses: string[] }> {
    if (isLiteral(name)) return { fqdn: name, addresses: await lookup(name) };
    const { rules: list } = await currentRules();
    const candidates = expandAlternatives(applyRewriteRules(name, list));
    for (const fqdn of candidates) {
      if (fqdn === '') continue;
      try {
        return { fqdn, addresses: await lookup(fqdn) };
      } catch (err) {
        if ((err as DnsError).code !== DnsErrorCodes.NOTFOUND) throw err;
      }
    }
    throw new DnsError(DnsErrorCodes.NOTFOUND, `no IP address for ${name}`, { hostname: name });
  }

  // tcpclient.c: `if (str_equal(hostname,"")) hostname = "127.0.0.1"; ... "0" likewise`.
  const isLocal = (name: string) => name === '' || name === '0';

  async function reverseName(ip: string): Promise<{ ip: string; name: string | undefined }> {
    const bare = unmapIPv4(ip);
    if (isIP(bare) === 0) {
      throw new DnsError(DnsErrorCodes.BAD_NAME, `not an IP address: ${JSON.stringify(ip)}`, {
        hostname: ip,
      });
    }
    try {
      // A PTR query for the arpa name, as djbdns's dns_name4/dns_name6: resolver.reverse() would
      // answer from /etc/hosts first (c-ares's gethostbyaddr), which the originals never read.
      const names = await bounded('PTR', bare, () => resolver.resolvePtr(arpaName(bare)));
      return { ip: bare, name: names[0] };
    } catch {
      // tcpserver.c: dns_name4() failing (temporarily or not) just leaves TCPREMOTEHOST unset.
      return { ip: bare, name: undefined };
    }
  }

  return {
    async qualify(name) {
      if (isLocal(name) || isLiteral(name)) return name;
      const { rules: list } = await currentRules();
      const rewritten = applyRewriteRules(name, list);
      if (!rewritten.includes('+')) return absolute(rewritten);
      return (await qualified(name, lookupAny)).fqdn;
    },
    async ip4(name) {
      if (isLocal(name)) return ['127.0.0.1'];
      return (await qualified(name, lookupA)).addresses;
    },
    async ip6(name) {
      if (isLocal(name)) return ['::1'];
      return (await qualified(name, lookupAAAA)).addresses;
    },
    async addresses(name) {
      if (isLocal(name)) return ['127.0.0.1'];
      return (await qualified(name, lookupAny)).addresses;
    },
    async reverse(ip) {
      return (await reverseName(ip)).name;
    },
    async reverseParanoid(ip) {
      const { ip: bare, name } = await reverseName(ip);
      if (name === undefined) return undefined;
      const family = isIP(bare) === 4 ? 'ipv4' : 'ipv6';
      let forward: string[];
      try {
        // tcpserver.c looks the PTR name up as it is (dns_ip4, no qualification).
        forward =
          family === 'ipv4'
            ? await bounded('A', name, () => resolver.resolve4(name))
            : await bounded('AAAA', name, () => resolver.resolve6(name));
      } catch {
        return undefined;
      }
      const wanted = new BlockList();
      wanted.addAddress(bare, family);
      return forward.some((a) => wanted.check(a, family)) ? name : undefined;
    },
  };
}
