// Dropping privileges after binding: -g and -u, through @ucspi/exec's jail(), the one code path
// of the toolkit (supplementary groups cleared, then the group, then the user).
import { jail } from '@ucspi/exec';
import { errorStr } from '@ucspi/rules';
import { ServerError, ServerErrorCodes } from './errors.js';

/** -g and -u: the numeric group and user to become. */
export interface PrivilegeDrop {
  gid?: number;
  uid?: number;
}

/**
 * Become `gid` (setgroups([gid]) first, as djb's prot_gid, so no supplementary group of root
 * stays), then `uid` (prot_uid). Either may be left out.
 *
 * @throws {ServerError} UCSPI_ERR_SERVER_SETGID `unable to set gid: REASON`, or
 *   UCSPI_ERR_SERVER_SETUID `unable to set uid: REASON` (temporary, as the originals' exit 111).
 */
export function dropPrivileges(drop: PrivilegeDrop): void {
  if (drop.gid !== undefined) {
    try {
      jail({ gid: drop.gid });
    } catch (err) {
      const cause = (err as { cause?: unknown }).cause ?? err;
      throw new ServerError(ServerErrorCodes.SETGID, `unable to set gid: ${errorStr(cause)}`, true, cause);
    }
  }
  if (drop.uid !== undefined) {
    try {
      jail({ uid: drop.uid });
    } catch (err) {
      const cause = (err as { cause?: unknown }).cause ?? err;
      throw new ServerError(ServerErrorCodes.SETUID, `unable to set uid: ${errorStr(cause)}`, true, cause);
    }
  }
}
