import { createTestPki, freePort, type TestPki, tempDir } from '@ucspi/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Peer } from './_peers.js';
import { findPostgresBin, startMariadb, startPostgres } from './_peers-db.js';
import { runClient } from './_script.js';
import { canRunPeer, firstChunk } from './_talk.js';

// The client side against real database servers on loopback high ports: PostgreSQL (SSLRequest)
// and MariaDB (the MySQL protocol's SSLRequest packet). Each test goes on over TLS.

let pki: TestPki;
const cleanups: Array<() => void | Promise<void>> = [];
beforeAll(() => {
  const dir = tempDir('starttls-peers-db-');
  cleanups.push(dir.cleanup);
  pki = createTestPki(dir.path);
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** Under CI the PostgreSQL server must be there; locally its absence skips (as toolAvailable). */
function postgresAvailable(): boolean {
  if (findPostgresBin()) return canRunPeer('runuser');
  if (process.env.CI === 'true')
    throw new Error('the PostgreSQL server is not installed (.ci/run installs postgresql)');
  process.stderr.write('starttls tests: postgresql not installed; skipping its tests\n');
  return false;
}

describe.skipIf(!postgresAvailable())('postgres', () => {
  let pg: Peer;
  beforeAll(async () => {
    const dir = tempDir('starttls-pg-');
    cleanups.push(dir.cleanup);
    pg = await startPostgres(dir.path, pki, await freePort());
    cleanups.push(() => pg.stop());
  }, 90_000);

  it('SSLRequest, S, TLS; the startup message over TLS is answered', async () => {
    const tls = await runClient(pg.ports.postgres as number, 'postgres', pki);
    const params = Buffer.from('user\0postgres\0database\0postgres\0\0', 'latin1');
    const head = Buffer.alloc(8);
    head.writeInt32BE(8 + params.length, 0);
    head.writeInt32BE(196608, 4); // protocol 3.0
    tls.write(Buffer.concat([head, params]));
    const answer = await firstChunk(tls);
    expect(String.fromCharCode(answer[0] as number)).toBe('R'); // AuthenticationOk (trust)
    tls.destroy();
  });
});

describe.skipIf(!canRunPeer('mariadbd'))('mariadb (MySQL protocol)', () => {
  let db: Peer;
  beforeAll(async () => {
    const dir = tempDir('starttls-mariadb-');
    cleanups.push(dir.cleanup);
    db = await startMariadb(dir.path, pki, await freePort());
    cleanups.push(() => db.stop());
  }, 90_000);

  it('greeting with CLIENT_SSL, SSLRequest, TLS; the login packet over TLS is answered', async () => {
    const tls = await runClient(db.ports.mysql as number, 'mysql', pki);
    // HandshakeResponse41 (sequence 2): the SSLRequest's flags and fields, user "nobody", no password.
    const payload = Buffer.concat([
      Buffer.from(`85ae7f000000000121${'00'.repeat(23)}`, 'hex'),
      Buffer.from('nobody\0', 'latin1'),
      Buffer.from([0]),
      Buffer.from('mysql_native_password\0', 'latin1'),
      Buffer.from([0]),
    ]);
    tls.write(Buffer.concat([Buffer.from([payload.length, 0, 0, 2]), payload]));
    const answer = await firstChunk(tls);
    expect(answer[3]).toBe(3); // the server's reply has the next sequence id
    expect([0x00, 0xfe, 0xff]).toContain(answer[4]); // OK, auth switch, or "access denied"
    tls.destroy();
  });
});
