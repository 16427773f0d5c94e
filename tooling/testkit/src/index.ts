export { run, runBin, binPath } from './process.js';
export type { ProcessResult, RunOptions } from './process.js';
export { findTool, toolAvailable } from './tools.js';
export { tempDir } from './tmp.js';
export { freePort } from './net.js';
