#!/usr/bin/env node
import { tcprules } from '../cli/tcprules.js';

process.exitCode = await tcprules(process.argv.slice(2), process);
