// Load client for bench/server/run.mjs, run as its own process so that it never shares an event
// loop with a server under test. Prints one JSON line with its result.
//   node load.mjs MODE tls|plain PORT [args]
//   conns N CONC   : N connections, CONC at a time: connect, send 5 bytes, read the echo, close
//   bulk MIB       : one connection, MIB MiB written and read back concurrently through cat
//   idle N         : N connections opened (handshake done) and held until stdin closes
//   latency N      : one connection, N request/response round trips of 16 bytes
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

const [mode, proto, portText, a1, a2] = process.argv.slice(2);
const port = Number(portText);
const open = () =>
  new Promise((resolve, reject) => {
    const s =
      proto === 'tls'
        ? tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () => resolve(s))
        : netConnect({ port, host: '127.0.0.1' }, () => resolve(s));
    s.on('error', reject);
  });
const now = () => Number(process.hrtime.bigint()) / 1e6;

async function conns(n, conc) {
  let next = 0;
  const one = async () => {
    const s = await open();
    await new Promise((resolve, reject) => {
      let got = 0;
      s.on('data', (b) => {
        got += b.length;
        if (got >= 5) s.end();
      });
      s.on('close', resolve);
      s.on('error', reject);
      s.write('ping\n');
    });
  };
  const t = now();
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (next++ < n) await one();
    }),
  );
  return { seconds: (now() - t) / 1000 };
}

async function bulk(mib) {
  const total = mib * 1024 * 1024;
  const s = await open();
  const chunk = Buffer.alloc(64 * 1024, 'x');
  const t = now();
  await new Promise((resolve, reject) => {
    let got = 0;
    s.on('data', (b) => {
      got += b.length;
      if (got >= total) resolve();
    });
    s.on('error', reject);
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        sent += chunk.length;
        if (!s.write(chunk)) return s.once('drain', pump);
      }
      s.end();
    };
    pump();
  });
  const seconds = (now() - t) / 1000;
  s.destroy();
  return { seconds, mibPerSecond: mib / seconds };
}

async function idle(n) {
  const all = [];
  for (let i = 0; i < n; i++) all.push(await open());
  process.stdout.write(`${JSON.stringify({ ready: n })}\n`);
  await new Promise((r) => process.stdin.on('end', r).resume());
  for (const s of all) s.destroy();
  return { closed: n };
}

async function latency(n) {
  const s = await open();
  const times = [];
  const msg = Buffer.alloc(16, 'l');
  for (let i = 0; i < n; i++) {
    const t = now();
    await new Promise((resolve) => {
      let got = 0;
      const on = (b) => {
        got += b.length;
        if (got >= 16) {
          s.off('data', on);
          resolve();
        }
      };
      s.on('data', on);
      s.write(msg);
    });
    times.push(now() - t);
  }
  s.destroy();
  times.sort((x, y) => x - y);
  return { p50: times[Math.floor(n * 0.5)], p99: times[Math.floor(n * 0.99)] };
}

const result =
  mode === 'conns'
    ? await conns(Number(a1), Number(a2))
    : mode === 'bulk'
      ? await bulk(Number(a1))
      : mode === 'idle'
        ? await idle(Number(a1))
        : await latency(Number(a1));
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
