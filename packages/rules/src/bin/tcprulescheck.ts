#!/usr/bin/env node
import { tcprulescheck } from '../cli/tcprulescheck.js';

process.exitCode = await tcprulescheck(process.argv.slice(2), process.env, process);
