#!/usr/bin/env node
import { main } from '../main.js';

main(process.argv.slice(2), process.env, { stderr: process.stderr }).then((code) => {
  // Nothing is left to do: standard input may still be open (a terminal), a lookup or a hook may
  // still run; stderr is written synchronously.
  process.exit(code);
});
