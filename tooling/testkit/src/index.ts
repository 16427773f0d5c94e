export type { TestPki } from './ca.js';
export { createTestPki, TEST_KEY_PASSWORD } from './ca.js';
export type { Dnsmasq } from './dnsmasq.js';
export { startDnsmasq } from './dnsmasq.js';
export { freePort } from './net.js';
export type { ProcessResult, RunOptions } from './process.js';
export { binPath, run, runBin } from './process.js';
export { tempDir } from './tmp.js';
export { findTool, toolAvailable } from './tools.js';
