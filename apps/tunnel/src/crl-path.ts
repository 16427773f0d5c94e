// `CRLpath = DIR`: OpenSSL's hashed CRL directory (files HASH.rN, as `openssl rehash` names them).
// stunnel hands the directory to OpenSSL, which looks a CRL up there at each verification;
// node:tls takes CRLs only when a context is made, so every CRL file of the directory is read when
// the service is built: at start, on HUP and by -t (as CApath is read once at start).
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** OpenSSL's name for a CRL in a hashed directory: the issuer name's hash, `.r`, a number. */
const HASHED_CRL = /^[0-9a-f]{8}\.r[0-9]+$/i;

/** The CRL files to load for a service: CRLfile first, then CRLpath's hashed files in name order. */
export async function crlFiles(crlFile: string | undefined, crlPath: string | undefined): Promise<string[]> {
  const files = crlFile !== undefined ? [crlFile] : [];
  if (crlPath === undefined) return files;
  let names: string[];
  try {
    names = await readdir(crlPath);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new Error(`Cannot read CRLpath ${crlPath}: ${e.code ?? e.message}`);
  }
  const hashed = names.filter((n) => HASHED_CRL.test(n)).sort();
  // No CRL at all would switch revocation checking off here, where OpenSSL in stunnel would fail
  // every peer for want of a CRL: refused rather than weakened.
  if (hashed.length === 0)
    throw new Error(`CRLpath ${crlPath} holds no CRL file (HASH.rN: run openssl rehash)`);
  return [...files, ...hashed.map((n) => join(crlPath, n))];
}
