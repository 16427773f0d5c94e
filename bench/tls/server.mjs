// The server side of bench/tls: a TCP server that wraps each connection in a TLSSocket with
// @ucspi/tls's serverOptions (as sslserver does) and ends it once the handshake is done.
import { createServer } from 'node:net';
import { TLSSocket } from 'node:tls';
import { loadServerTls } from '../../packages/tls/dist/index.js';

const tls = await loadServerTls({ CERTFILE: process.argv[2], KEYFILE: process.argv[3] });
const server = createServer((raw) => {
  const s = new TLSSocket(raw, { isServer: true, ...tls.serverOptions });
  s.on('error', () => raw.destroy());
  s.on('secure', () => s.end());
});
server.listen(Number(process.argv[4]), '127.0.0.1', () => process.stdout.write('ready\n'));
