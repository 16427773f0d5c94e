import { X509Certificate } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TlsConfigError, TlsErrorCodes } from './errors.js';

/** Read a configured file; a failure names the variable or option and the file. */
export async function readConfigFile(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (cause) {
    const reason = (cause as { code?: string }).code === 'ENOENT' ? 'no such file' : (cause as Error).message;
    throw new TlsConfigError(TlsErrorCodes.FILE, `unable to read ${what} ${path}: ${reason}`, {
      path,
      cause,
    });
  }
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Every certificate in a PEM file, in file order, each parsed (a bad one is an error). */
export function pemCertificates(pem: Buffer, path: string, what: string): string[] {
  const blocks = pem.toString('latin1').match(PEM_CERT) ?? [];
  if (blocks.length === 0)
    throw new TlsConfigError(TlsErrorCodes.BAD_PEM, `${what} ${path} holds no PEM certificate`, { path });
  for (const b of blocks) {
    try {
      new X509Certificate(b);
    } catch (cause) {
      throw new TlsConfigError(TlsErrorCodes.BAD_PEM, `${what} ${path} holds a malformed certificate`, {
        path,
        cause,
      });
    }
  }
  return blocks.map((b) => `${b}\n`);
}

/**
 * The certificates of an OpenSSL hashed directory (CApath): files named `<hash>.<n>`, plus
 * `*.pem`/`*.crt`. node:tls has no CApath; they are loaded once, at startup.
 */
export async function caDirectory(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (cause) {
    throw new TlsConfigError(TlsErrorCodes.FILE, `unable to read CADIR ${dir}: ${(cause as Error).message}`, {
      path: dir,
      cause,
    });
  }
  const out: string[] = [];
  for (const name of names.sort()) {
    if (!/^[0-9a-f]{8}\.\d+$|\.(pem|crt)$/i.test(name)) continue;
    const path = join(dir, name);
    out.push(...pemCertificates(await readConfigFile(path, 'CADIR file'), path, 'CADIR file'));
  }
  return out;
}

/**
 * The CRLs in PEM files, one entry per CRL: node:tls reads one CRL per entry, and a file may hold
 * several (OpenSSL checks the whole chain, so the CRL of every CA in it is needed).
 */
export async function readCrls(files: readonly string[]): Promise<string[]> {
  const crl: string[] = [];
  for (const f of files) {
    const blocks = (await readConfigFile(f, 'CRL file'))
      .toString('latin1')
      .match(/-----BEGIN X509 CRL-----[\s\S]+?-----END X509 CRL-----/g);
    if (!blocks)
      throw new TlsConfigError(TlsErrorCodes.BAD_PEM, `CRL file ${f} holds no PEM CRL`, { path: f });
    crl.push(...blocks);
  }
  return crl;
}
