import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, tempDir } from '@ucspi/testkit';
import { afterAll, expect, it } from 'vitest';

// node-forge (1.8 MB) only builds the development certificate: importing @ucspi/tls must not load
// it, so that a server with CERTFILE and KEYFILE never pays for it.
const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'index.js');
const cache = tempDir();
afterAll(() => cache.cleanup());

it('loads node-forge only when a development certificate is made', async () => {
  const script = `
    import { createRequire } from 'node:module';
    const require = createRequire(import.meta.url);
    const forgeLoaded = () => Object.keys(require.cache).some((k) => k.includes('node-forge'));
    const tls = await import(${JSON.stringify(dist)});
    const atImport = forgeLoaded();
    await tls.developmentCertificate({ XDG_CACHE_HOME: ${JSON.stringify(cache.path)} });
    console.log(JSON.stringify({ atImport, afterMaking: forgeLoaded() }));
  `;
  const r = await run(process.execPath, ['--input-type=module', '-e', script]);
  expect(r.stderr.toString()).toBe('');
  expect(JSON.parse(r.stdout.toString())).toEqual({ atImport: false, afterMaking: true });
});
