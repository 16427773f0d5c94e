// The sibling libraries (@ucspi/env, @ucspi/rules, @ucspi/tls) are loaded at startup through
// their agreed public APIs (see the monorepo's contracts). They are imported dynamically and
// checked so that a missing or incomplete build fails loudly with one clear fatal line instead
// of a stack trace. The types below restate only the agreed signatures this app calls.
import type { SecureContext, TLSSocket, TlsOptions } from 'node:tls';

/** @ucspi/env's ConnectionInfo. */
export interface ConnectionInfo {
  localIp: string;
  localPort: number;
  localHost?: string;
  remoteIp: string;
  remotePort: number;
  remoteHost?: string;
  remoteInfo?: string;
  interface?: string;
}
/** @ucspi/env's EnvDelta: undefined removes a variable. */
export type EnvDelta = Record<string, string | undefined>;
/** @ucspi/rules' RuleMatch. */
export interface RuleMatch {
  key: string;
  allow: boolean;
  env: Array<[string, string]>;
}
/** @ucspi/tls' ServerTls. */
export interface ServerTls {
  secureContext: SecureContext;
  serverOptions: TlsOptions;
  describe(): string[];
  checkPeer(socket: TLSSocket, remoteHost?: string): { ok: boolean; reason?: string };
}

/** The parts of @ucspi/env used here. */
export interface EnvLib {
  tcpEnv(c: ConnectionInfo): EnvDelta;
  sslEnv(c: ConnectionInfo): EnvDelta;
  modSslEnv(socket: TLSSocket, opts?: { verify?: string }): Record<string, string>;
  childEnv(
    parent: Record<string, string | undefined>,
    ...deltas: Array<EnvDelta | Array<[string, string]>>
  ): Record<string, string>;
  encodeEnvList(vars: Record<string, string>): Buffer;
}
/** The parts of @ucspi/rules used here. */
export interface RulesLib {
  RulesFile: new (
    path: string,
  ) => { lookup(q: { ip: string; host?: string; info?: string }): Promise<RuleMatch | undefined> };
  errorStr(err: unknown): string;
}
/** The parts of @ucspi/tls used here. */
export interface TlsLib {
  loadServerTls(
    env: Record<string, string | undefined>,
    opts: { clientCert?: 'none' | 'mail' | 'host'; keyPassword?: string | Buffer },
  ): Promise<ServerTls>;
  readKeyPasswordFromFd(fd: number): Promise<Buffer>;
  developmentCertificate(): Promise<{ certFile: string; keyFile: string; warning: string }>;
}

/** A library is missing or lacks an agreed export (build the workspace first). */
export class MissingLibraryError extends Error {
  readonly code = 'UCSPI_ERR_SERVER_LIBRARY';
  readonly temporary = true;
}

async function load<T>(name: string, exportsNeeded: readonly string[]): Promise<T> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(name)) as Record<string, unknown>;
  } catch (err) {
    throw new MissingLibraryError(`unable to load ${name}: ${(err as Error).message}`);
  }
  const missing = exportsNeeded.filter((e) => typeof mod[e] !== 'function');
  if (missing.length > 0)
    throw new MissingLibraryError(`${name} does not provide ${missing.join(', ')} (not built yet?)`);
  return mod as T;
}

/** Load @ucspi/env with the functions this app calls. */
export const loadEnvLib = () =>
  load<EnvLib>('@ucspi/env', ['tcpEnv', 'sslEnv', 'modSslEnv', 'childEnv', 'encodeEnvList']);
/** Load @ucspi/rules with the functions this app calls. */
export const loadRulesLib = () => load<RulesLib>('@ucspi/rules', ['RulesFile', 'errorStr']);
/** Load @ucspi/tls with the functions this app calls. */
export const loadTlsLib = () =>
  load<TlsLib>('@ucspi/tls', ['loadServerTls', 'readKeyPasswordFromFd', 'developmentCertificate']);
