#!/usr/bin/env node
// Not implemented yet: fail loudly rather than pretend (see the README).
process.stderr.write('ucspi-tunnel: fatal: not implemented yet in this release of @ucspi/tunnel\n');
process.exitCode = 100;
