#!/usr/bin/env node
import { main } from '../main.js';

main(process.argv.slice(2), { stderr: process.stderr }).then((code) => {
  // Connections still open at a TERM end with the process, as stunnel's do.
  process.exit(code);
});
