export type { ExecErrorCode } from './errors.js';
export { ExecError } from './errors.js';
export type { ChildRun, ExitStatus, ProgramSpec, PumpOptions, UcspiTlsRun } from './spawn.js';
export {
  nativeSpawn,
  pumpStreams,
  spawnOnSocket,
  spawnPumped,
  spawnUcspiTls,
  UCSPI_TLS_FDS,
} from './spawn.js';
