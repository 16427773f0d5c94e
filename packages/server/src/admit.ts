// Admission: the rules decision and the per-address limit, before any TLS work.
import type { ConnectionInfo } from '@ucspi/env';
import type { RulesFile } from '@ucspi/rules';

/** How a connection is admitted. */
export interface AdmitOptions {
  /** -x: the rules; undefined: every connection is allowed. */
  rules?: RulesFile;
  /** -X: a rules file that does not exist allows every connection. */
  allowNoRules: boolean;
  /** MAXCONIP from the environment, 0 for none. */
  maxPerIp: number;
  /** Whether a rule's +MAXCONIP=n sets the limit for its addresses (sslserver), capped at `limit`. */
  maxPerIpFromRules: boolean;
  /** -c, the cap of a rule's MAXCONIP. */
  limit: number;
}

/** The decision on one connection. */
export type Admission =
  | {
      verdict: 'allow';
      /** The matching rule's variables (+NAME=value), in rule order. */
      env: Array<[string, string]>;
      /** The per-address limit that applies, 0 for none. */
      maxPerIp: number;
      /** Whether that limit came from the rule. */
      fromRule: boolean;
    }
  | { verdict: 'deny' }
  /** The rules could not be read: the original's child died (exit 111), so the connection is dropped. */
  | { verdict: 'drop'; file: string; error: unknown };

/** The rules decision for `info`: tcpserver's lookup order (info@ip, ip prefixes, =host, ...). */
export async function admit(info: ConnectionInfo, options: AdmitOptions): Promise<Admission> {
  let env: Array<[string, string]> = [];
  if (options.rules) {
    try {
      const match = await options.rules.lookup({
        ip: info.remoteIp,
        ...(info.remoteHost !== undefined ? { host: info.remoteHost } : {}),
        ...(info.remoteInfo !== undefined ? { info: info.remoteInfo } : {}),
      });
      if (match && !match.allow) return { verdict: 'deny' };
      env = match?.env ?? [];
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (!(code === 'UCSPI_ERR_RULES_NO_CDB' && options.allowNoRules))
        return {
          verdict: 'drop',
          file: options.rules.path,
          error: (err as { cause?: unknown }).cause ?? err,
        };
    }
  }
  const fromRule = options.maxPerIpFromRules ? env.findLast(([n]) => n === 'MAXCONIP')?.[1] : undefined;
  const maxPerIp = fromRule !== undefined ? Math.min(Number(fromRule) || 0, options.limit) : options.maxPerIp;
  return { verdict: 'allow', env, maxPerIp, fromRule: fromRule !== undefined };
}
