// Growing the pipes of a busy connection. A pipe holds 64 KiB: a bulk transfer then moves 64 KiB
// per wake-up of the program and of the server. Under pressure (a write that must wait, a read
// that found the pipe full) the server's pipes grow to 256 KiB, within a budget: the kernel
// counts every pipe page against its user (/proc/sys/fs/pipe-user-pages-soft, 64 MiB by default)
// and, past that, gives the user's new pipes 2 pages only, programs' pipes included. Unprivileged,
// the enlarged pipes of this process stay within an eighth of that limit; the pages return to the
// budget when the pipe closes.
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { handleFd, native } from './_native.js';

const PAGE = 4096;
/** The size a pipe grows to. */
export const GROWN_PIPE_BYTES = 256 * 1024;
const EXTRA_PAGES = (GROWN_PIPE_BYTES - 64 * 1024) / PAGE;
/** Extra pages in enlarged pipes when the soft limit is unknown or 0 (unlimited), and for root. */
const DEFAULT_BUDGET = 16 * 1024;

const grown = Symbol('grown');
let unprivilegedBudget: number | undefined;
let used = 0;

function budget(): number {
  // Root (CAP_SYS_RESOURCE) is not held to the soft limit; the cap still bounds kernel memory.
  if (process.geteuid?.() === 0) return DEFAULT_BUDGET;
  if (unprivilegedBudget === undefined) {
    let soft = 0;
    try {
      soft = Number(readFileSync('/proc/sys/fs/pipe-user-pages-soft', 'latin1').trim()) || 0;
    } catch {
      // Not Linux's procfs: keep the default.
    }
    unprivilegedBudget = soft > 0 ? Math.floor(soft / 8) : DEFAULT_BUDGET;
  }
  return unprivilegedBudget;
}

/** Extra pages held by enlarged pipes of this process now. */
export function grownPipePages(): number {
  return used;
}

/**
 * Grow the pipe behind `socket` (a net.Socket on a pipe descriptor) to {@link GROWN_PIPE_BYTES},
 * once, if the budget allows. Returns whether it grew. Without the native addon, on a socket that
 * is no pipe, or when the kernel refuses, nothing happens.
 */
export function growPipe(socket: Socket): boolean {
  if (!native) return false;
  const s = socket as Socket & { [grown]?: boolean };
  if (s[grown] || socket.destroyed) return false;
  const fd = handleFd(socket);
  if (fd === undefined) return false;
  if (used + EXTRA_PAGES > budget()) return false;
  s[grown] = true;
  if (native.setPipeSize(fd, GROWN_PIPE_BYTES) < GROWN_PIPE_BYTES) return false;
  used += EXTRA_PAGES;
  socket.once('close', () => {
    used -= EXTRA_PAGES;
  });
  return true;
}
