// Addresses as stunnel writes them in its log lines.

/** `IP:PORT` as stunnel writes it (`[IP]:PORT` for IPv6). */
export const addr = (ip: string, port: number) => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);
/** An IPv4 client of a dual-stack listener, written as IPv4. */
export const unmapped = (ip: string) => ip.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, '$1');
