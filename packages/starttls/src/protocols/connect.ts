/**
 * HTTP CONNECT through a proxy: RFC 9110 section 9.3.6 (CONNECT, formerly RFC 7231 section
 * 4.3.6), RFC 2817 section 5.2, basic proxy authentication as RFC 7617 and RFC 9110 section
 * 11.7.2 (Proxy-Authorization). Any 2xx opens the tunnel; its header section ends the dialogue
 * and nothing may follow it before TLS.
 */
import { show } from '../_reply.js';
import { StartTlsErrorCodes } from '../errors.js';
import type { Dialogue, StartTlsProtocol } from '../protocol.js';

/** HTTP CONNECT, proxy port 8080 (3128 for squid). */
export const protocol: StartTlsProtocol = { name: 'connect', defaultPort: 8080, client };

/** `host:port` of the CONNECT request (RFC 9110 section 9.3.6 authority-form; IPv6 in brackets). */
export function connectTarget(d: Dialogue): string {
  const { host, port } = d.options;
  if (!host || /[\s\x00-\x1f\x7f/@?#]/.test(host)) {
    d.fail(
      StartTlsErrorCodes.BAD_OPTION,
      `needs the target as host (host:port, [v6]:port) without spaces, not ${show(host ?? '')}`,
    );
  }
  if (/^\[[0-9a-fA-F:.]+\]:\d{1,5}$/.test(host) || /^[^:]+:\d{1,5}$/.test(host)) return host;
  if (port === undefined || !Number.isInteger(port) || port < 1 || port > 65535) {
    d.fail(
      StartTlsErrorCodes.BAD_OPTION,
      `the CONNECT target ${show(host)} has no port and no valid port option`,
    );
  }
  const bare = host.startsWith('[') ? host : host.includes(':') ? `[${host}]` : host;
  return `${bare}:${port}`;
}

async function client(d: Dialogue): Promise<void> {
  const target = connectTarget(d);
  const lines = [`CONNECT ${target} HTTP/1.1`, `Host: ${target}`];
  const shown = [...lines];
  const { username, password } = d.options;
  if (username !== undefined || password !== undefined) {
    const user = username ?? '';
    // RFC 7617 section 2: the user-id cannot contain a colon; neither may carry control characters.
    if (user.includes(':') || /[\x00-\x1f\x7f]/.test(user + (password ?? ''))) {
      d.fail(
        StartTlsErrorCodes.BAD_OPTION,
        'the proxy user name must not contain a colon or control characters',
      );
    }
    const token = Buffer.from(`${user}:${password ?? ''}`, 'utf8').toString('base64');
    lines.push(`Proxy-Authorization: Basic ${token}`);
    shown.push('Proxy-Authorization: Basic <redacted>');
  }
  d.write(`${lines.join('\r\n')}\r\n\r\n`, shown.join(' | '));
  for (;;) {
    const status = await d.readLine();
    const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(status);
    if (!m)
      d.fail(StartTlsErrorCodes.PROTOCOL, `not an HTTP status line: ${show(status)}`, { reply: status });
    const code = Number(m[1]);
    const headers: string[] = [];
    for (;;) {
      const line = await d.readLine();
      if (line === '') break;
      if (headers.length >= 100) d.fail(StartTlsErrorCodes.PROTOCOL, 'more than 100 header lines');
      headers.push(line);
    }
    if (code >= 100 && code < 200) continue; // interim response (RFC 9110 section 15.2), the final one follows
    if (code >= 200 && code < 300) return;
    const reply = [status, ...headers].join('\n');
    // 407 is the standard answer; some proxies (tinyproxy for wrong credentials) answer 401.
    if (code === 407 || code === 401) {
      d.fail(
        StartTlsErrorCodes.PROXY_AUTH,
        `the proxy ${username === undefined ? 'requires' : 'refused the'} authentication: ${show(status)}`,
        { reply },
      );
    }
    d.fail(StartTlsErrorCodes.REFUSED, `the proxy refused the tunnel: ${show(status)}`, {
      reply,
      temporary: code >= 500,
    });
  }
}
