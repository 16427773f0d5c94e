#!/usr/bin/env node
// Not implemented yet: fail loudly rather than pretend (see the README).
process.stderr.write('tcpclient: fatal: not implemented yet in this release of @ucspi/client\n');
process.exitCode = 100;
