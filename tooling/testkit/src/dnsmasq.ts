// A DNS server for tests: Debian's dnsmasq on loopback, answering only from the records it is
// given (no upstream, no /etc/hosts).
import { type ChildProcess, spawn } from 'node:child_process';
import { findTool } from './tools.js';

export interface Dnsmasq {
  child: ChildProcess;
  /** Stop it and wait until it is reaped. */
  stop(): Promise<void>;
}

/**
 * Start dnsmasq on `address`:`port` (default 127.0.0.1; another loopback address such as 127.0.0.2
 * lets two test files each have their own resolver on port 53) with `records` (its own options,
 * such as `--host-record=name,ip` and `--local=/zone/`); resolves once it has logged that it
 * started (its sockets are bound by then), rejects within 5 s otherwise. Port 53 needs root.
 */
export function startDnsmasq(
  port: number,
  records: readonly string[],
  address = '127.0.0.1',
): Promise<Dnsmasq> {
  const exe = findTool('dnsmasq') ?? 'dnsmasq';
  const child = spawn(
    exe,
    [
      '--no-daemon',
      '--keep-in-foreground',
      '--conf-file=/dev/null',
      '--pid-file=',
      '--user=root',
      `--port=${port}`,
      `--listen-address=${address}`,
      '--bind-interfaces',
      '--no-resolv',
      '--no-hosts',
      ...records,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const hard = setTimeout(() => child.kill('SIGKILL'), 3000);
      child.once('exit', () => {
        clearTimeout(hard);
        resolve();
      });
      child.kill('SIGTERM');
    });
  return new Promise((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`dnsmasq did not start within 5 s:\n${log}`));
    }, 5000);
    const onData = (b: Buffer) => {
      log += b.toString();
      if (/started, version/.test(log)) {
        clearTimeout(timer);
        resolve({ child, stop });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`dnsmasq exited (${code ?? signal}):\n${log}`));
    });
  });
}
