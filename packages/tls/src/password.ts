import { close, read } from 'node:fs';
import { TlsConfigError, TlsErrorCodes } from './errors.js';

/**
 * Read a key password from a file descriptor as sslserver -3 does: up to the first NUL byte (or
 * end of file), at most 4 KiB; the descriptor is closed afterwards. The password never appears in
 * an error message.
 *
 * @throws {TlsConfigError} UCSPI_ERR_TLS_PASSWORD_FD
 */
export function readKeyPasswordFromFd(fd: number): Promise<Buffer> {
  const buf = Buffer.alloc(4096);
  return new Promise((resolve, reject) => {
    let len = 0;
    const done = (err?: unknown) => close(fd, () => finish(err));
    const finish = (err?: unknown) => {
      if (err)
        reject(
          new TlsConfigError(
            TlsErrorCodes.PASSWORD_FD,
            `unable to read the key password from descriptor ${fd}: ${(err as Error).message}`,
            { cause: err },
          ),
        );
      else {
        const nul = buf.subarray(0, len).indexOf(0);
        resolve(Buffer.from(buf.subarray(0, nul < 0 ? len : nul)));
      }
    };
    const next = () =>
      read(fd, buf, len, buf.length - len, null, (err, n) => {
        if (err) return done(err);
        len += n;
        if (n === 0 || buf.subarray(0, len).includes(0) || len === buf.length) return done();
        next();
      });
    next();
  });
}
