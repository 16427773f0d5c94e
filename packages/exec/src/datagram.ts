// A Unix datagram socket for syslog's /dev/log, which node:dgram (UDP only) cannot reach.
import { closeSync, writeSync } from 'node:fs';
import { constants } from 'node:os';
import { native } from './_native.js';

/** Whether {@link DatagramSender} can connect here (it needs @ucspi/exec's native addon). */
export function canSendDatagrams(): boolean {
  return native !== undefined;
}

/**
 * Datagrams to the Unix socket at `path`, as syslog(3) sends them: connected once (so that it keeps
 * working after a chroot), each {@link send} one datagram, never blocking. A datagram the receiver
 * cannot take now (its queue full) is dropped; a receiver that went away (a restarted syslog
 * daemon) is connected to again on the next send.
 */
export class DatagramSender {
  #fd = -1;

  constructor(readonly path: string) {}

  /** Connect now (before a chroot); returns 0 or the errno (ENOSYS: no native addon). */
  connect(): number {
    if (this.#fd >= 0) return 0;
    if (!native) return constants.errno.ENOSYS;
    const r = native.connectDatagram(this.path);
    if (r < 0) return -r;
    this.#fd = r;
    return 0;
  }

  /** Send one datagram; returns 0 or the errno of the failure (the datagram is then lost). */
  send(data: Buffer): number {
    for (let attempt = 0; attempt < 2; attempt++) {
      const e = this.connect();
      if (e) return e;
      try {
        writeSync(this.#fd, data);
        return 0;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // The receiver was replaced (ECONNREFUSED, ENOTCONN): connect again, once.
        if (attempt === 0 && (code === 'ECONNREFUSED' || code === 'ENOTCONN')) {
          this.close();
          continue;
        }
        return (err as NodeJS.ErrnoException).errno
          ? -(err as NodeJS.ErrnoException).errno!
          : constants.errno.EIO;
      }
    }
    return constants.errno.EIO;
  }

  close(): void {
    if (this.#fd < 0) return;
    try {
      closeSync(this.#fd);
    } catch {
      // Already closed.
    }
    this.#fd = -1;
  }
}
