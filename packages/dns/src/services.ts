// Service names to port numbers, as getservbyname(3) does from /etc/services (the files backend):
// `name port/proto [alias...] [# comment]`, names and aliases compared exactly, the first match wins.
import { readFile } from 'node:fs/promises';

/** The services database read by {@link servicePort} unless told otherwise. */
export const SERVICES_FILE = '/etc/services';

/**
 * The port of a service operand: a decimal number (0 to 65535) as is, otherwise the port that
 * `file` lists for `name` and `proto` (tcpserver's and tcpclient's getservbyname(name, "tcp")).
 * Undefined when the name is not listed, the file cannot be read, or the number is out of range.
 */
export async function servicePort(
  name: string,
  proto: 'tcp' | 'udp' = 'tcp',
  file: string = SERVICES_FILE,
): Promise<number | undefined> {
  if (/^\d+$/.test(name)) {
    const n = Number(name);
    return n <= 65535 ? n : undefined;
  }
  if (name === '') return undefined;
  let text: string;
  try {
    text = await readFile(file, 'latin1');
  } catch {
    return undefined;
  }
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const [service, portProto, ...aliases] = line.split(/\s+/);
    const m = /^(\d+)\/(\w+)$/.exec(portProto ?? '');
    if (!m || m[2] !== proto) continue;
    if (service === name || aliases.includes(name)) {
      const port = Number(m[1]);
      return port <= 65535 ? port : undefined;
    }
  }
  return undefined;
}
