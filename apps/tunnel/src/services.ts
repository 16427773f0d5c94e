// Building a configuration's services before anything is bound: each service's TLS contexts
// (files read, OpenSSL settings applied), its connect and redirect targets (names resolved), and
// the SNI secondaries linked to their primaries. A failure names the service as stunnel does.
import { jailedPaths } from './config/chroot.js';
import type { TunnelConfig } from './config/types.js';
import { redirectTargets } from './redirect.js';
import type { RuntimeService } from './serve.js';
import { linkSniSecondaries } from './sni.js';
import { tuningFor } from './socket-options.js';
import { Targets } from './targets.js';
import { clientSide, serverSide } from './tls-setup.js';
import { StunnelTlsError } from './tls-tuning.js';

/** A service whose TLS contexts could not be made: `Service [NAME]: Failed to initialize TLS context`. */
export class ServiceSetupError extends Error {
  override readonly name = 'ServiceSetupError';
  constructor(readonly lines: string[]) {
    super(lines.at(-1));
  }
}

/** Build every service (files read, contexts made, names resolved) before anything is bound. */
export async function prepareServices(config: TunnelConfig): Promise<RuntimeService[]> {
  const out: RuntimeService[] = [];
  for (const s of config.services) {
    const label = config.inetd ? 'Inetd mode' : `Service [${s.name}]`;
    const r: RuntimeService = { config: s };
    // chroot: CApath and CRLpath are inside the jail, also when read at start (config/chroot.ts).
    const files = jailedPaths(s, config.globals.chroot);
    try {
      if (s.client) r.clientTls = await clientSide(files);
      else r.serverTls = await serverSide(files);
    } catch (err) {
      // An OpenSSL setting's own message stands alone, as stunnel prints it.
      const reason = err instanceof StunnelTlsError ? err.message : `${label}: ${(err as Error).message}`;
      throw new ServiceSetupError([reason, `${label}: Failed to initialize TLS context`]);
    }
    if (s.connect.length > 0) {
      try {
        r.targets = await Targets.create(s.connect, s.failover, s.delay, tuningFor(s.socketOptions, ['r']));
      } catch (err) {
        throw new ServiceSetupError([
          `${label}: ${(err as Error).message}`,
          `${label}: Cannot resolve connect target`,
        ]);
      }
    }
    if (s.redirect.length > 0) {
      const made = await redirectTargets(s, label);
      if (Array.isArray(made)) throw new ServiceSetupError(made);
      r.redirectTargets = made;
    }
    out.push(r);
  }
  linkSniSecondaries(out);
  return out;
}
