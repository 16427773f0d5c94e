// Whether the native spawner is in use, and the one line a server prints at start (with -v) when
// it is not: the fallback works, but slower and without the features only the addon has.
import { nativeLoad } from './_native.js';

/** Where the native spawner came from, or why there is none. */
export interface NativeStatus {
  /** Whether the addon is loaded and used. */
  loaded: boolean;
  /** The addon file loaded (a source build in build/Release, or a prebuild in prebuilds/). */
  path?: string;
  /** Why no addon is in use, in a few words (`UCSPI_EXEC_NATIVE=0`, `darwin is not supported`, ...). */
  reason?: string;
}

/** Where the native spawner came from, or why there is none. */
export function nativeStatus(): NativeStatus {
  return {
    loaded: nativeLoad.binding !== undefined,
    ...(nativeLoad.path !== undefined ? { path: nativeLoad.path } : {}),
    ...(nativeLoad.reason !== undefined ? { reason: nativeLoad.reason } : {}),
  };
}

/**
 * One line for a server to log once at start (sslserver and tcpserver do with -v) when the native
 * spawner is not in use, or undefined when it is. It names the reason and what the fallback costs
 * (measured figures in the README: about 1 ms of server CPU per program started instead of 0.08 ms),
 * and what is unavailable without it. Prefix it with the program's name.
 */
export function nativeNotice(): string | undefined {
  if (nativeLoad.binding) return undefined;
  return (
    `no native spawner (${nativeLoad.reason ?? 'not loaded'}): programs start through child_process.spawn, ` +
    'about 1 ms more server CPU per connection; no -O, no -c kernel backlog, no SSL_CHROOT/SSL_UID/SSL_GID'
  );
}
