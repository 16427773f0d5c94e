// Names: host operands looked up through @ucspi/dns, -4/-6, -h/-p, service names for the port.
// DNS goes to a dnsmasq this file starts on 127.0.0.1:53 (DNSCACHEIP has no port, so port 53:
// root, as CI runs; it fails under CI rather than skip), answering only from its own records.
import { connect as netConnect } from 'node:net';
import { dirname, join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { type Dnsmasq, findTool, run, startDnsmasq, tempDir, toolAvailable } from '@ucspi/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, stopAll, talk } from './_helpers.js';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const sslBin = join(pkgDir, 'dist', 'bin', 'sslserver.js');
const tcpBin = join(pkgDir, 'dist', 'bin', 'tcpserver.js');
const tmp = tempDir();

const canRun = toolAvailable('dnsmasq') && process.getuid?.() === 0;
if (!canRun && process.env.CI) throw new Error('the name tests need dnsmasq and root (port 53)');

let dnsmasq: Dnsmasq | undefined;
beforeAll(async () => {
  if (!canRun) return;
  dnsmasq = await startDnsmasq(53, [
    '--local=/example.test/',
    '--local=/in-addr.arpa/',
    '--local=/ip6.arpa/',
    // A, AAAA and the PTRs of both. 127.0.0.5, not 127.0.0.1: the other test files, run meanwhile,
    // look 127.0.0.1 up at this server too (DNSCACHEIP=127.0.0.1 in vitest.config.ts) and must
    // find no name for it.
    '--host-record=srv.example.test,127.0.0.5,::1',
    '--host-record=v6only.example.test,::1',
  ]);
}, 10_000);
afterAll(async () => {
  await stopAll();
  await dnsmasq?.stop();
  tmp.cleanup();
});

const env = (): NodeJS.ProcessEnv => {
  const e: NodeJS.ProcessEnv = {
    ...process.env,
    DNSCACHEIP: '127.0.0.1',
    DNSREWRITEFILE: join(tmp.path, 'no-dnsrewrite'),
    LOCALDOMAIN: '',
    XDG_CACHE_HOME: join(tmp.path, 'cache'),
  };
  delete e.CERTFILE;
  delete e.KEYFILE;
  return e;
};

/** Everything a server sends, over TLS or not, to a client at host (from localAddress). */
function fetch(port: number, host: string, tls: boolean, localAddress?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const opts = { host, port, ...(localAddress ? { localAddress } : {}) };
    const c = tls ? tlsConnect({ ...opts, rejectUnauthorized: false }) : netConnect(opts);
    let out = '';
    c.on('data', (b: Buffer) => {
      out += b.toString();
    });
    c.on('error', reject);
    c.on('end', () => resolve(out));
  });
}

describe.runIf(canRun)('host names, -4/-6, -h/-p and service names', () => {
  it('sslserver binds the address of a host name; -6 picks its IPv6 address, -4 its IPv4 one', async () => {
    const prog = ['sh', '-c', 'echo "$SSLLOCALIP $SSLREMOTEHOST"'];
    const v4 = await startServer(
      process.execPath,
      [sslBin, '-1', '-4', '-h', '-p', '-R', '-l', 'x', 'srv.example.test', '0', ...prog],
      env(),
    );
    expect(await fetch(v4.port, '127.0.0.5', true, '127.0.0.5')).toBe('127.0.0.5 srv.example.test\n');
    const v6 = await startServer(
      process.execPath,
      [sslBin, '-1', '-6', '-H', '-R', '-l', 'x', 'srv.example.test', '0', ...prog],
      env(),
    );
    const out = await fetch(v6.port, '::1', true);
    expect(out).toBe('::1 \n');
    await v4.stop();
    await v6.stop();
  });

  it("bad input: a name with no address, a port that is no service (exit 111, the originals' words)", async () => {
    const none = await run(process.execPath, [sslBin, '-H', '-R', 'nosuch.example.test', '0', 'true'], {
      env: env(),
    });
    expect(none.code).toBe(111);
    expect(none.stderr.toString()).toMatch(/^sslserver: fatal: no IP address for: nosuch\.example\.test$/m);
    // tcpserver is IPv4 only, as ucspi-tcp: a name with only an AAAA record has no address for it.
    const v6only = await run(process.execPath, [tcpBin, '-H', '-R', 'v6only.example.test', '0', 'true'], {
      env: env(),
    });
    expect(v6only.code).toBe(111);
    expect(v6only.stderr.toString()).toMatch(/^tcpserver: fatal: no IP address for v6only\.example\.test$/m);
    const port = await run(process.execPath, [tcpBin, '-H', '-R', '127.0.0.1', 'nosuchservice', 'true'], {
      env: env(),
    });
    expect(port.code).toBe(111);
    expect(port.stderr.toString()).toMatch(
      /^tcpserver: fatal: unable to figure out port number for nosuchservice$/m,
    );
  });

  it('a service name as the port, from /etc/services', async () => {
    // discard is 9/tcp in every services file; binding it needs root, which this file has.
    const s = await startServer(
      process.execPath,
      [tcpBin, '-1', '-H', '-R', '127.0.0.1', 'discard', 'echo', 'ok'],
      env(),
    );
    expect(s.port).toBe(9);
    expect(await talk(9)).toBe('ok\n');
    await s.stop();
  });

  it.runIf(toolAvailable('tcpserver'))(
    'tcpserver with a host name and -h -p: the same environment as ucspi-tcp',
    async () => {
      const prog = ['sh', '-c', 'env | grep -E "^TCP(LOCAL|REMOTE)(IP|HOST)=" | sort'];
      const args = ['-1', '-h', '-p', '-R', '-l', 'x', 'srv.example.test', '0', ...prog];
      const ours = await startServer(process.execPath, [tcpBin, ...args], env());
      const theirs = await startServer(findTool('tcpserver') ?? 'tcpserver', args, env());
      const a = await fetch(ours.port, '127.0.0.5', false, '127.0.0.5');
      const b = await fetch(theirs.port, '127.0.0.5', false, '127.0.0.5');
      expect(a).toBe(
        'TCPLOCALHOST=x\nTCPLOCALIP=127.0.0.5\nTCPREMOTEHOST=srv.example.test\nTCPREMOTEIP=127.0.0.5\n',
      );
      expect(a).toBe(b);
      await ours.stop();
      await theirs.stop();
    },
  );
});
