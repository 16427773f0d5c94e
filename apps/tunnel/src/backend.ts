// The backend side of a connection: the service's `connect` targets tried in order, each attempt
// logged as stunnel logs its s_connect steps.
import type { Socket } from 'node:net';
import { addr, unmapped } from './address.js';
import { LOG, safe, type TunnelLog } from './log.js';
import type { RuntimeService } from './serve.js';
import { connectFirst, errnoText, type Targets } from './targets.js';

/**
 * Connect to the first target that answers, or log why none did and resolve undefined. `redirect`:
 * the service's redirect targets instead of its `connect` ones (redirect.ts).
 */
export async function connectBackend(
  service: RuntimeService,
  id: number,
  log: TunnelLog,
  redirect = false,
): Promise<Socket | undefined> {
  const s = service.config;
  const lines = redirect ? s.redirect.map((l) => l.value) : s.connect;
  let order: Awaited<ReturnType<Targets['order']>>;
  try {
    order = await (redirect ? service.redirectTargets : service.targets)!.order();
  } catch (err) {
    log.write(LOG.err, id, `Error resolving "${lines.join(', ')}": ${safe((err as Error).message)}`);
    return undefined;
  }
  const socket = await connectFirst(order, s.timeoutConnect * 1000, s.local, (t, outcome) => {
    const where = addr(t.host, t.port);
    if (outcome === 'connected') log.write(LOG.notice, id, `s_connect: connected ${where}`);
    else if (outcome === 'timeout')
      log.write(LOG.err, id, `s_connect: s_poll_wait ${where}: TIMEOUTconnect exceeded`);
    else log.write(LOG.err, id, `s_connect: connect ${where}: ${errnoText(outcome)}`);
  });
  if (!socket) {
    log.write(LOG.err, id, 'No more addresses to connect');
    return undefined;
  }
  log.write(
    LOG.notice,
    id,
    `Service [${s.name}] connected remote server from ${addr(unmapped(socket.localAddress ?? ''), socket.localPort ?? 0)}`,
  );
  return socket;
}
