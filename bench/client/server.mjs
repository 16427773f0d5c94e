// The servers of bench/client: `first CERT KEY` answers the first bytes of each TLS connection and
// prints the epoch time (ms) at which they arrived; `bulk CERT KEY MIB` sends MIB MiB to each TLS
// connection and ends it; `plain-first` is `first` without TLS. Prints its port first.

import { readFileSync } from 'node:fs';
import { createServer as netServer } from 'node:net';
import { createServer as tlsServer } from 'node:tls';

const [mode, cert, key, mib] = process.argv.slice(2);
const now = () => performance.timeOrigin + performance.now();
const onFirst = (s) => {
  s.on('error', () => {});
  s.once('data', () => {
    process.stdout.write(`${now()}\n`);
    s.end('y\n');
  });
};
const chunk = Buffer.alloc(64 * 1024, 120);
const onBulk = (s) => {
  s.on('error', () => {});
  let left = Number(mib) * 16;
  const pump = () => {
    while (left > 0) {
      left--;
      if (!s.write(chunk)) return s.once('drain', pump);
    }
    s.end();
  };
  pump();
};
const server =
  mode === 'plain-first'
    ? netServer(onFirst)
    : tlsServer(
        { cert: readFileSync(cert), key: readFileSync(key), allowHalfOpen: true },
        mode === 'bulk' ? onBulk : onFirst,
      );
server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
