// `rules = FILE.cdb` at run time: @ucspi/server's engine looks the client's address up in the cdb
// before any TLS work (a deny rule, or a rule's +MAXCONIP=n reached, refuses it), and the tunnel
// logs a refusal as stunnel logs one by libwrap: `Service [NAME] REFUSED by libwrap from IP:PORT`
// becomes `Service [NAME] REFUSED by rules from IP:PORT`.
import type { RulesSettings, ServerEvent } from '@ucspi/server';
import { systemErrorText } from './config/rules-file.js';
import type { ServiceConfig } from './config/types.js';
import { LOG } from './log.js';
import { addr, unmapped } from './serve.js';

/** The engine's admission settings of a service: its rules, and a rule's MAXCONIP honoured. */
export function rulesSettings(s: ServiceConfig): RulesSettings {
  return s.rules !== undefined ? { rules: s.rules, maxPerIpFromRules: true } : {};
}

/**
 * The log lines of a connection the engine refused before the tunnel saw it (a deny rule, a
 * rule's MAXCONIP, a rules file that could no longer be read), or undefined for other events.
 */
export function refusalLines(e: ServerEvent, service: string): Array<[number, string]> | undefined {
  if (e.type !== 'deny' && e.type !== 'drop') return undefined;
  const from = addr(unmapped(e.info.remoteIp), e.info.remotePort);
  const reset: [number, string] = [
    LOG.notice,
    'Connection reset: 0 byte(s) sent to TLS, 0 byte(s) sent to socket',
  ];
  if (e.type === 'drop') {
    // The cdb was there at start (checked then) and has gone or broken since: sslserver drops too.
    const why = systemErrorText(e.error as NodeJS.ErrnoException);
    return [
      [LOG.err, `Service [${service}] REFUSED from ${from}: cannot read rules file ${e.file}: ${why}`],
      reset,
    ];
  }
  const by = e.reason === 'rules' ? 'rules' : `MAXCONIP=${e.limit}`;
  return [[LOG.warning, `Service [${service}] REFUSED by ${by} from ${from}`], reset];
}
