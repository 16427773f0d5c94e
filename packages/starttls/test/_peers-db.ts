import { spawn } from 'node:child_process';
import { chmodSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { findTool, run, type TestPki, waitForLine } from '@ucspi/testkit';
import { openUp, type Peer, started } from './_peers.js';

/**
 * PostgreSQL 15 (Debian's postgresql): initdb and postgres run as the `postgres` user (runuser;
 * the tests run as root) in `dir`, listening on loopback with ssl=on. Takes a few seconds.
 */
export async function startPostgres(dir: string, pki: TestPki, port: number): Promise<Peer> {
  const bin = findPostgresBin();
  if (!bin) throw new Error('the PostgreSQL server is not installed');
  const { cert, key } = openUp(dir, pki);
  const data = join(dir, 'pgdata');
  // postgres wants its key private and its own.
  chmodSync(key, 0o600);
  await runChecked(['chown', 'postgres', dir, cert, key]);
  await runChecked([
    'runuser',
    '-u',
    'postgres',
    '--',
    join(bin, 'initdb'),
    '-D',
    data,
    '-A',
    'trust',
    '-U',
    'postgres',
  ]);
  const child = spawn(
    'runuser',
    [
      '-u',
      'postgres',
      '--',
      join(bin, 'postgres'),
      '-D',
      data,
      '-k',
      dir,
      '-p',
      String(port),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'ssl=on',
      '-c',
      `ssl_cert_file=${cert}`,
      '-c',
      `ssl_key_file=${key}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const peer = started(child, { postgres: port });
  try {
    await waitForLine(
      child.stderr as NonNullable<typeof child.stderr>,
      /ready to accept connections/,
      30_000,
    );
  } catch (err) {
    await peer.stop();
    throw new Error(`postgres did not start: ${(err as Error).message}\n${peer.log()}`);
  }
  return peer;
}

/** The directory of Debian's PostgreSQL server binaries (the newest version installed), or undefined. */
export function findPostgresBin(): string | undefined {
  try {
    const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a));
    for (const v of versions) {
      const bin = join('/usr/lib/postgresql', v, 'bin');
      if (existsSync(join(bin, 'postgres')) && existsSync(join(bin, 'initdb'))) return bin;
    }
  } catch {
    // not installed
  }
  return undefined;
}

export async function runChecked(argv: string[]): Promise<void> {
  const r = await run(argv[0] as string, argv.slice(1), { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`${argv.join(' ')} failed (${r.code}): ${r.stderr}`);
}

/**
 * MariaDB (Debian's mariadb-server): a fresh data directory made by mariadb-install-db and a
 * mariadbd on loopback with the test certificate, as the `mysql` user. Takes a few seconds.
 */
export async function startMariadb(dir: string, pki: TestPki, port: number): Promise<Peer> {
  const installDb = findTool('mariadb-install-db');
  const mariadbd = findTool('mariadbd');
  if (!installDb || !mariadbd) throw new Error('mariadb-server is not installed');
  const { cert, key } = openUp(dir, pki);
  const data = join(dir, 'mariadb-data');
  await runChecked(['chown', 'mysql', dir, cert, key]);
  await runChecked([
    installDb,
    '--no-defaults',
    '--user=mysql',
    `--datadir=${data}`,
    '--auth-root-authentication-method=normal',
    '--skip-test-db',
  ]);
  const child = spawn(
    mariadbd,
    [
      '--no-defaults',
      '--user=mysql',
      `--datadir=${data}`,
      `--socket=${join(dir, 'mariadb.sock')}`,
      `--pid-file=${join(dir, 'mariadb.pid')}`,
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      `--ssl-cert=${cert}`,
      `--ssl-key=${key}`,
      '--skip-log-bin',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const peer = started(child, { mysql: port });
  try {
    await waitForLine(child.stderr as NonNullable<typeof child.stderr>, /ready for connections/, 30_000);
  } catch (err) {
    await peer.stop();
    throw new Error(`mariadbd did not start: ${(err as Error).message}\n${peer.log()}`);
  }
  return peer;
}
