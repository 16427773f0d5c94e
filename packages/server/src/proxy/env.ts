// What a PROXY header tells the program beyond the addresses (which replace TCPREMOTEIP and the
// others): the balancer's own address and the v2 TLVs, as PROXY* variables.
import type { ProxyHeader } from './header.js';

const printable = (b: Buffer) => b.every((c) => c >= 0x21 && c <= 0x7e);

/**
 * The PROXY* variables for one connection: PROXYVERSION (1 or 2), PROXYPEERIP and PROXYPEERPORT
 * (the balancer, the TCP peer itself), and from v2 TLVs PROXYALPN, PROXYAUTHORITY, PROXYUNIQUEID
 * (hex), PROXYNETNS, PROXYSSL (the PP2_CLIENT_* bits, decimal), PROXYSSLVERIFY (0: the client's
 * certificate was verified), PROXYSSLVERSION, PROXYSSLCIPHER, PROXYSSLCN, PROXYSSLSIGALG and
 * PROXYSSLKEYALG. A TLV the balancer did not send leaves its variable unset.
 */
export function proxyEnv(header: ProxyHeader, peer: { ip: string; port: number }): Array<[string, string]> {
  const env: Array<[string, string]> = [
    ['PROXYVERSION', String(header.version)],
    ['PROXYPEERIP', peer.ip],
    ['PROXYPEERPORT', String(peer.port)],
  ];
  const add = (name: string, value: string | undefined) => {
    if (value !== undefined) env.push([name, value]);
  };
  if (header.alpn && printable(header.alpn)) add('PROXYALPN', header.alpn.toString('latin1'));
  add('PROXYAUTHORITY', header.authority);
  add('PROXYUNIQUEID', header.uniqueId?.toString('hex'));
  add('PROXYNETNS', header.netns);
  const ssl = header.ssl;
  if (ssl) {
    add('PROXYSSL', String(ssl.client));
    add('PROXYSSLVERIFY', String(ssl.verify));
    add('PROXYSSLVERSION', ssl.version);
    add('PROXYSSLCIPHER', ssl.cipher);
    add('PROXYSSLCN', ssl.cn);
    add('PROXYSSLSIGALG', ssl.sigAlg);
    add('PROXYSSLKEYALG', ssl.keyAlg);
  }
  return env;
}
