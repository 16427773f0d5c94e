export type { ClientProgOptions } from './client.js';
export { CLIENT_PROG_FDS, spawnClientProg } from './client.js';
export type { ExecErrorCode } from './errors.js';
export { ExecError } from './errors.js';
export type { PausableListener } from './listener.js';
export { listenPausable } from './listener.js';
export type { NativeStatus } from './native-status.js';
export { nativeNotice, nativeStatus } from './native-status.js';
export { GROWN_PIPE_BYTES, grownPipePages, growPipe } from './pipes.js';
export type { JailSpec } from './process.js';
export { canKillIpOptions, jail, killIpOptions } from './process.js';
export { type RelayOptions, type RelayResult, relayStreams } from './relay.js';
export type { ChildRun, ExitStatus, HandOverRun, ProgramSpec, PumpOptions, UcspiTlsRun } from './spawn.js';
export {
  nativeSpawn,
  PUMP_BUFFER_BYTES,
  pumpStreams,
  spawnHandOver,
  spawnOnSocket,
  spawnPumped,
  spawnUcspiTls,
  UCSPI_TLS_FDS,
} from './spawn.js';
