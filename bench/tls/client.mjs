// N full TLS 1.3 handshakes (no resumption) at concurrency C against 127.0.0.1:PORT; prints seconds.
import { connect } from 'node:tls';

const [port, n, c] = process.argv.slice(2).map(Number);
let next = 0;
const one = () =>
  new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', rejectUnauthorized: false, minVersion: 'TLSv1.3' }, () => {
      s.destroy();
      resolve();
    });
    s.on('error', reject);
  });
const t = process.hrtime.bigint();
await Promise.all(
  Array.from({ length: c }, async () => {
    while (next++ < n) await one();
  }),
);
process.stdout.write(`${Number(process.hrtime.bigint() - t) / 1e9}\n`);
