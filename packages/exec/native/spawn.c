// @ucspi/exec's native spawner (Linux): start a program the way tcpserver's fork + exec does, but
// without copying the Node.js process. child_process.spawn forks the whole runtime (page tables of
// tens of MiB, then copy-on-write faults in the parent) and blocks the event loop until the child
// has exec'd: about 2 ms per connection on a small machine. Here the child is a clone sharing the
// parent's memory (CLONE_VM | CLONE_VFORK, as glibc's posix_spawn does) on a stack of its own; the
// calling thread waits only until the execve, typically tens of microseconds.
//
// Unlike posix_spawn, a program that cannot be executed still leaves a real child that exits 111,
// as ucspi-tcp's child does after `unable to run`; the execve errno comes back through shared
// memory so that the caller can log the reason.
//
// Exit statuses are collected by reap(), which the JavaScript side calls on SIGCHLD; it reaps only
// the pids spawned here (libuv reaps its own children by pid, so both coexist).
//
// A program may also run on a new pseudo terminal (stunnel's `pty = yes`): openPty() opens the
// master here, the child becomes a session leader whose controlling terminal is the slave, and
// relayPty() copies between the master and two pipes on a thread of its own (libuv can only watch a
// terminal with blocking writes, which would stall the event loop when the program does not read).
// Only libc proper is used (posix_openpt, not openpty: glibc before 2.34 has that in libutil).
#define _GNU_SOURCE
// Node-API version 8 (Node.js 12.22, 14.17, 16 and later): every function used here is in version 1;
// pinned so that one binary loads in every Node.js the package supports (the prebuilds in prebuilds/).
#define NAPI_VERSION 8
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <node_api.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHILD_STACK (64 * 1024)
#define MAX_FDS 16
#define FD_INHERIT (-1)
#define FD_DEVNULL (-2)
#define FD_TTY (-4) // the slave of the pseudo terminal named by child_args.tty
#define TTY_NAME 128

struct child_args {
  char **candidates; // paths to try, NULL-terminated (PATH search done by the caller)
  char **argv;
  char **envp;
  int fds[MAX_FDS]; // child fd i <- parent fd fds[i], or FD_INHERIT / FD_DEVNULL
  int nfds;
  char tty[TTY_NAME]; // the slave's path when a slot is FD_TTY, else ""
  volatile int err;   // execve's errno, written by the child before it exits 111
};

static int child_main(void *p) {
  struct child_args *a = p;
  // Handlers run in shared memory must never fire here: the parent blocked every signal before
  // clone. Reset dispositions (an ignored SIGPIPE would survive exec), then unblock.
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++) {
    struct sigaction old;
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    if (sigaction(sig, NULL, &old) == 0 && old.sa_handler != SIG_DFL) sigaction(sig, &dfl, NULL);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);

  // A terminal of its own: a new session (so that the tunnel's own terminal, if it has one, is out
  // of reach through /dev/tty), then the slave as its controlling terminal, as login and sshd do.
  int tty = -1;
  if (a->tty[0]) {
    if (setsid() < 0) goto fail;
    tty = open(a->tty, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (tty < 0) goto fail;
    if (tty < a->nfds) {
      // Above every slot number, as the sources are (see Spawn), so that no dup2 overwrites it.
      int hi = fcntl(tty, F_DUPFD_CLOEXEC, a->nfds);
      close(tty);
      if (hi < 0) goto fail;
      tty = hi;
    }
    if (ioctl(tty, TIOCSCTTY, 0) < 0) goto fail;
  }

  for (int i = 0; i < a->nfds; i++) {
    int src = a->fds[i];
    if (src == FD_TTY) {
      if (tty < 0 || dup2(tty, i) < 0) goto fail;
      continue;
    }
    if (src == FD_INHERIT) {
      // The server's own descriptor of that number, kept across execve: Node.js marks fd 2
      // close-on-exec once process.stderr has been used when it is a file (the flag is this
      // process's own: the clone has a copy of the descriptor table).
      int fl = fcntl(i, F_GETFD);
      if (fl >= 0 && (fl & FD_CLOEXEC)) fcntl(i, F_SETFD, fl & ~FD_CLOEXEC);
      continue;
    }
    if (src == FD_DEVNULL) {
      int n = open("/dev/null", O_RDWR);
      if (n < 0) goto fail;
      if (n != i) {
        if (dup2(n, i) < 0) goto fail;
        close(n);
      }
      continue;
    }
    // Every source is a copy numbered nfds or above (see Spawn), so dup2 never meets itself and
    // always gives a descriptor without close-on-exec.
    if (dup2(src, i) < 0) goto fail;
  }
  // Programs expect blocking standard descriptors (libuv's spawn does the same; the flag belongs to
  // the shared open file, and the server no longer reads a socket it handed over).
  for (int i = 0; i < 3; i++) {
    int fl = fcntl(i, F_GETFL);
    if (fl >= 0 && (fl & O_NONBLOCK)) fcntl(i, F_SETFL, fl & ~O_NONBLOCK);
  }

  // execvp's search: EACCES is remembered and the search goes on; ENOENT and ENOTDIR go on;
  // anything else stops it. No /bin/sh fallback for ENOEXEC (djb's pathexec has none either).
  int saved = ENOENT;
  for (char **c = a->candidates; *c; c++) {
    execve(*c, a->argv, a->envp);
    if (errno == EACCES) saved = EACCES;
    else if (errno != ENOENT && errno != ENOTDIR) {
      saved = errno;
      break;
    }
  }
  a->err = saved;
  _exit(111);
fail:
  a->err = errno;
  _exit(111);
}

// ---- pids spawned here, waiting to be reaped ----
static pid_t *tracked = NULL;
static size_t ntracked = 0, captracked = 0;

static int track(pid_t pid) {
  if (ntracked == captracked) {
    size_t cap = captracked ? captracked * 2 : 64;
    pid_t *n = realloc(tracked, cap * sizeof *n);
    if (!n) return -1;
    tracked = n;
    captracked = cap;
  }
  tracked[ntracked++] = pid;
  return 0;
}

static long find_tracked(pid_t pid) {
  for (size_t i = 0; i < ntracked; i++)
    if (tracked[i] == pid) return (long)i;
  return -1;
}

static void untrack_at(size_t i) { tracked[i] = tracked[--ntracked]; }

// ---- helpers ----
#define CHECK(call)                                                                                     \
  do {                                                                                                  \
    if ((call) != napi_ok) {                                                                            \
      napi_throw_error(env, "UCSPI_ERR_EXEC_NATIVE", "N-API call failed: " #call);                     \
      goto out;                                                                                         \
    }                                                                                                   \
  } while (0)

static void free_strings(char **v) {
  if (!v) return;
  for (char **p = v; *p; p++) free(*p);
  free(v);
}

// A JS array of strings as a NULL-terminated char*[] (UTF-8). NULL on failure (exception set).
static char **string_array(napi_env env, napi_value arr) {
  uint32_t n = 0;
  if (napi_get_array_length(env, arr, &n) != napi_ok) {
    napi_throw_type_error(env, "UCSPI_ERR_EXEC_NATIVE", "expected an array of strings");
    return NULL;
  }
  char **v = calloc(n + 1, sizeof *v);
  if (!v) {
    napi_throw_error(env, "UCSPI_ERR_EXEC_NATIVE", "out of memory");
    return NULL;
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value s;
    size_t len = 0;
    if (napi_get_element(env, arr, i, &s) != napi_ok ||
        napi_get_value_string_utf8(env, s, NULL, 0, &len) != napi_ok) {
      napi_throw_type_error(env, "UCSPI_ERR_EXEC_NATIVE", "expected an array of strings");
      free_strings(v);
      return NULL;
    }
    v[i] = malloc(len + 1);
    if (!v[i] || napi_get_value_string_utf8(env, s, v[i], len + 1, &len) != napi_ok) {
      napi_throw_error(env, "UCSPI_ERR_EXEC_NATIVE", "out of memory");
      free_strings(v);
      return NULL;
    }
  }
  return v;
}

static napi_value int_pair(napi_env env, int a, int b) {
  napi_value arr, x, y;
  if (napi_create_array_with_length(env, 2, &arr) != napi_ok) return NULL;
  napi_create_int32(env, a, &x);
  napi_create_int32(env, b, &y);
  napi_set_element(env, arr, 0, x);
  napi_set_element(env, arr, 1, y);
  return arr;
}

// Each libuv threadpool thread keeps one child stack: with CLONE_VFORK the thread resumes only once
// its child has exec'd or exited, so a stack is never used by two children at once.
static __thread char *child_stack = NULL;

struct spawn_work {
  struct child_args a;
  int moved[MAX_FDS];
  int nmoved;
  pid_t pid;
  int err;
  napi_async_work work;
  napi_ref callback;
};

static void free_work(napi_env env, struct spawn_work *w) {
  for (int i = 0; i < w->nmoved; i++) close(w->moved[i]);
  free_strings(w->a.candidates);
  free_strings(w->a.argv);
  free_strings(w->a.envp);
  if (w->callback) napi_delete_reference(env, w->callback);
  if (w->work) napi_delete_async_work(env, w->work);
  free(w);
}

// Runs on a threadpool thread: only this thread waits for the child's execve, not the event loop.
static void spawn_execute(napi_env env, void *data) {
  (void)env;
  struct spawn_work *w = data;
  if (!child_stack) {
    void *s = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (s == MAP_FAILED) {
      w->pid = -1;
      w->err = errno;
      return;
    }
    child_stack = s;
  }
  sigset_t all, old;
  sigfillset(&all);
  // sigprocmask, not pthread_sigmask: on Linux both set the calling thread's mask (glibc and musl
  // make the same rt_sigprocmask call), but glibc 2.32 moved pthread_sigmask into libc under a new
  // symbol version, and an addon linked against it would not load on glibc 2.28 (RHEL 8, Debian 10).
  sigprocmask(SIG_SETMASK, &all, &old);
  w->a.err = 0;
  pid_t pid = clone(child_main, child_stack + CHILD_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, &w->a);
  int cerr = errno;
  sigprocmask(SIG_SETMASK, &old, NULL);
  w->pid = pid;
  w->err = pid < 0 ? cerr : w->a.err;
}

// Back on the main thread: remember the pid for reap(), then callback(pid, errno).
static void spawn_complete(napi_env env, napi_status status, void *data) {
  struct spawn_work *w = data;
  if (status != napi_ok && w->pid == 0) {
    w->pid = -1;
    w->err = ECANCELED;
  }
  if (w->pid > 0 && track(w->pid) < 0) {
    // Cannot remember it: wait for it here rather than leave a zombie nobody reaps.
    kill(w->pid, SIGKILL);
    waitpid(w->pid, NULL, 0);
    w->pid = -1;
    w->err = ENOMEM;
  }
  napi_value cb, global, argv[2];
  if (napi_get_reference_value(env, w->callback, &cb) == napi_ok && napi_get_global(env, &global) == napi_ok) {
    napi_create_int32(env, w->pid, &argv[0]);
    napi_create_int32(env, w->err, &argv[1]);
    napi_call_function(env, global, cb, 2, argv, NULL);
  }
  free_work(env, w);
}

// spawn(candidates: string[], argv: string[], envp: string[], fds: number[], callback(pid, errno),
//       tty?: string)
// The callback gets pid > 0 when the child exists (errno != 0 then means its execve failed and it
// exits 111), or pid -1 when clone failed with errno. The descriptors in fds must stay open until
// the callback runs. With tty (a slave's path from openPty), the child starts a new session with
// that terminal as its controlling terminal, and the slots FD_TTY get the terminal.
static napi_value Spawn(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value args[6], name;
  struct spawn_work *w = calloc(1, sizeof *w);
  if (!w) {
    napi_throw_error(env, "UCSPI_ERR_EXEC_NATIVE", "out of memory");
    return NULL;
  }
  struct child_args *a = &w->a;
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  napi_valuetype cbtype = napi_undefined;
  if (argc < 5 || napi_typeof(env, args[4], &cbtype) != napi_ok || cbtype != napi_function) {
    napi_throw_type_error(env, "UCSPI_ERR_EXEC_NATIVE", "spawn(candidates, argv, envp, fds, callback)");
    goto out;
  }
  if (!(a->candidates = string_array(env, args[0]))) goto out;
  if (!(a->argv = string_array(env, args[1]))) goto out;
  if (!(a->envp = string_array(env, args[2]))) goto out;
  uint32_t nfds = 0;
  CHECK(napi_get_array_length(env, args[3], &nfds));
  if (nfds > MAX_FDS) {
    napi_throw_range_error(env, "UCSPI_ERR_EXEC_NATIVE", "too many descriptors");
    goto out;
  }
  a->nfds = (int)nfds;
  for (uint32_t i = 0; i < nfds; i++) {
    napi_value v;
    CHECK(napi_get_element(env, args[3], i, &v));
    CHECK(napi_get_value_int32(env, v, &a->fds[i]));
  }
  napi_valuetype ttytype = napi_undefined;
  if (argc >= 6 && napi_typeof(env, args[5], &ttytype) == napi_ok && ttytype == napi_string) {
    size_t len = 0;
    CHECK(napi_get_value_string_utf8(env, args[5], a->tty, sizeof a->tty, &len));
    if (len == 0 || len >= sizeof a->tty - 1) {
      napi_throw_range_error(env, "UCSPI_ERR_EXEC_NATIVE", "bad terminal name");
      goto out;
    }
  }
  for (int i = 0; i < a->nfds; i++)
    if (a->fds[i] == FD_TTY && !a->tty[0]) {
      napi_throw_type_error(env, "UCSPI_ERR_EXEC_NATIVE", "a terminal slot without a terminal");
      goto out;
    }
  // The child gets copies made now, on this thread: the caller may close its own descriptors
  // (a peer's reset destroys a socket) before the threadpool gets to the clone, and a number could
  // be reused meanwhile. The copies are numbered nfds or above, so that no dup2 in the child
  // overwrites a source it still needs (a server started with fd 0 closed gets sockets numbered 0).
  int copied[MAX_FDS] = {0};
  for (int i = 0; i < a->nfds; i++) {
    int src = a->fds[i];
    if (src < 0 || copied[i]) continue;
    int hi = fcntl(src, F_DUPFD_CLOEXEC, a->nfds);
    if (hi < 0) {
      char text[80];
      snprintf(text, sizeof text, "unable to move descriptor %d: %s", src, strerror(errno));
      napi_throw_error(env, "UCSPI_ERR_EXEC_SPAWN", text);
      goto out;
    }
    w->moved[w->nmoved++] = hi;
    for (int j = i; j < a->nfds; j++)
      if (a->fds[j] == src && !copied[j]) {
        a->fds[j] = hi;
        copied[j] = 1;
      }
  }
  CHECK(napi_create_reference(env, args[4], 1, &w->callback));
  CHECK(napi_create_string_utf8(env, "ucspi:exec:spawn", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_create_async_work(env, NULL, name, spawn_execute, spawn_complete, w, &w->work));
  CHECK(napi_queue_async_work(env, w->work));
  return NULL;
out:
  free_work(env, w);
  return NULL;
}

static void push_status(napi_env env, napi_value out, uint32_t *n, pid_t pid, int status) {
  napi_value p, s;
  napi_create_int32(env, pid, &p);
  napi_create_int32(env, status, &s);
  napi_set_element(env, out, (*n)++, p);
  napi_set_element(env, out, (*n)++, s);
}

// reap() -> [pid, rawWaitStatus, pid, rawWaitStatus, ...] for every exited child spawned here.
static napi_value Reap(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  uint32_t n = 0;
  if (napi_create_array(env, &out) != napi_ok) return NULL;
  for (;;) {
    // Peek at the next zombie without reaping it: it may be one of libuv's.
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0) break;
    long i = find_tracked(si.si_pid);
    if (i < 0) {
      // Someone else's child is first in line: look at each of ours instead.
      for (size_t k = 0; k < ntracked;) {
        int st;
        pid_t r = waitpid(tracked[k], &st, WNOHANG);
        if (r == tracked[k]) {
          push_status(env, out, &n, r, st);
          untrack_at(k);
        } else if (r < 0 && errno == ECHILD) {
          untrack_at(k); // reaped elsewhere: nothing will ever come
        } else {
          k++;
        }
      }
      break;
    }
    int st;
    pid_t r = waitpid(si.si_pid, &st, WNOHANG);
    if (r != si.si_pid) break;
    push_status(env, out, &n, r, st);
    untrack_at((size_t)i);
  }
  return out;
}

// Throw an Error with code UCSPI_ERR_EXEC_SPAWN and the message "WHAT: strerror(errno)".
static napi_value throw_errno(napi_env env, const char *what) {
  napi_value e, code, msg;
  char text[96];
  snprintf(text, sizeof text, "%s: %s", what, strerror(errno));
  napi_create_string_utf8(env, "UCSPI_ERR_EXEC_SPAWN", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &e);
  napi_throw(env, e);
  return NULL;
}

// socketpair() -> [a, b]: a connected AF_UNIX stream pair, both close-on-exec and blocking.
static napi_value SocketPair(napi_env env, napi_callback_info info) {
  (void)info;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return throw_errno(env, "socketpair");
  return int_pair(env, sv[0], sv[1]);
}

// pipe() -> [readEnd, writeEnd], both close-on-exec and blocking. Pipes move bulk data with less
// kernel work than AF_UNIX stream sockets (no socket buffers to allocate and charge per write).
static napi_value Pipe(napi_env env, napi_callback_info info) {
  (void)info;
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return throw_errno(env, "pipe");
  return int_pair(env, p[0], p[1]);
}

// The first n arguments as int32 (n <= 2); false (and undefined returned to JS) when they are not.
static bool int_args(napi_env env, napi_callback_info info, size_t n, int *out) {
  size_t argc = 2;
  napi_value args[2];
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok || argc < n) return false;
  for (size_t i = 0; i < n; i++)
    if (napi_get_value_int32(env, args[i], &out[i]) != napi_ok) return false;
  return true;
}

static napi_value int_result(napi_env env, int value) {
  napi_value r;
  napi_create_int32(env, value, &r);
  return r;
}

// close(fd) -> errno (0 on success)
static napi_value Close(napi_env env, napi_callback_info info) {
  int a[1];
  if (!int_args(env, info, 1, a)) return NULL;
  return int_result(env, close(a[0]) < 0 ? errno : 0);
}

// setBlocking(fd, blocking) -> errno (0 on success)
static napi_value SetBlocking(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value args[2];
  int fd = -1;
  bool blocking = true;
  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  if (argc < 2 || napi_get_value_int32(env, args[0], &fd) != napi_ok ||
      napi_get_value_bool(env, args[1], &blocking) != napi_ok)
    return NULL;
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, blocking ? (fl & ~O_NONBLOCK) : (fl | O_NONBLOCK)) < 0)
    return int_result(env, errno);
  return int_result(env, 0);
}

// setPipeSize(fd, bytes) -> the pipe's new capacity (the kernel rounds up), or -errno.
static napi_value SetPipeSize(napi_env env, napi_callback_info info) {
  int a[2];
  if (!int_args(env, info, 2, a)) return NULL;
  int n = fcntl(a[0], F_SETPIPE_SZ, a[1]);
  return int_result(env, n < 0 ? -errno : n);
}

// dup(fd) -> a new close-on-exec descriptor for the same open file, or -errno.
static napi_value Dup(napi_env env, napi_callback_info info) {
  int a[1];
  if (!int_args(env, info, 1, a)) return NULL;
  int d = fcntl(a[0], F_DUPFD_CLOEXEC, 3);
  return int_result(env, d < 0 ? -errno : d);
}

// chroot(path) -> errno (0 on success): chroot(2), then chdir("/") so that no directory outside
// the new root stays reachable through the working directory.
static napi_value Chroot(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg;
  char path[4096];
  size_t len = 0;
  napi_get_cb_info(env, info, &argc, &arg, NULL, NULL);
  if (argc < 1 || napi_get_value_string_utf8(env, arg, path, sizeof path, &len) != napi_ok) return NULL;
  if (len >= sizeof path - 1) return int_result(env, ENAMETOOLONG);
  return int_result(env, chroot(path) < 0 || chdir("/") < 0 ? errno : 0);
}

// killIpOptions(fd) -> errno (0 on success): drop the IP options (a source route) a client's SYN
// carried, so that replies take the default route (ucspi-tcp's socket_ipoptionskill, tcpserver -O).
static napi_value KillIpOptions(napi_env env, napi_callback_info info) {
  int a[1];
  if (!int_args(env, info, 1, a)) return NULL;
  return int_result(env, setsockopt(a[0], IPPROTO_IP, IP_OPTIONS, NULL, 0) < 0 ? errno : 0);
}

// connectDatagram(path) -> a descriptor, or -errno: a non-blocking, close-on-exec Unix datagram
// socket connected to `path` (syslog's /dev/log; node:dgram has no AF_UNIX). Each write(2) on it
// sends one datagram; a full receiver queue gives EAGAIN instead of blocking. Connected once, as
// openlog(LOG_NDELAY) does, so that it keeps working after a chroot.
static napi_value ConnectDatagram(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  struct sockaddr_un addr;
  size_t plen = 0;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_string_utf8(env, argv[0], addr.sun_path, sizeof addr.sun_path, &plen) != napi_ok) {
    napi_throw_type_error(env, NULL, "connectDatagram(path)");
    return NULL;
  }
  if (plen == 0 || plen >= sizeof addr.sun_path - 1) return int_result(env, -ENAMETOOLONG);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return int_result(env, -errno);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    int e = errno;
    close(fd);
    return int_result(env, -e);
  }
  return int_result(env, fd);
}

// openPty() -> [masterFd, slavePath]: a new pseudo terminal, the master close-on-exec and not this
// process's controlling terminal. Its settings are the kernel's defaults (echo, canonical input,
// \n written as \r\n), as stunnel's openpty(..., NULL, NULL) leaves them; its window size is 0x0.
static napi_value OpenPty(napi_env env, napi_callback_info info) {
  (void)info;
  char name[TTY_NAME];
  int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (m < 0) return throw_errno(env, "posix_openpt");
  const char *what = "grantpt";
  if (grantpt(m) < 0) goto fail;
  what = "unlockpt";
  if (unlockpt(m) < 0) goto fail;
  what = "ptsname_r";
  int r = ptsname_r(m, name, sizeof name);
  if (r != 0) {
    errno = r;
    goto fail;
  }
  napi_value arr, fd, path;
  if (napi_create_array_with_length(env, 2, &arr) != napi_ok || napi_create_int32(env, m, &fd) != napi_ok ||
      napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &path) != napi_ok) {
    close(m);
    return NULL;
  }
  napi_set_element(env, arr, 0, fd);
  napi_set_element(env, arr, 1, path);
  return arr;
fail:;
  int e = errno;
  close(m);
  errno = e;
  return throw_errno(env, what);
}

// ---- the terminal relay ----
#define RELAY_BYTES (16 * 1024)

struct pty_relay {
  int master; // the terminal (the program's side is the slave)
  int in;     // read end of the pipe JavaScript writes the program's input to
  int out;    // write end of the pipe JavaScript reads the program's output from
  char up[RELAY_BYTES], down[RELAY_BYTES];
};

static int retry(void) { return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR; }

// One relay per terminal, on a thread of its own, every descriptor non-blocking, one buffer per
// direction (a direction reads only once its buffer is passed on: the backpressure). It ends:
// - when the terminal's output is over (read gives EIO once every slave descriptor is closed: the
//   program and whatever it left on the terminal have exited) and passed on: `out` is closed, so
//   JavaScript reads EOF, and `in` too (later writes fail with EPIPE);
// - when `in` ends (the peer ended its side, or JavaScript closed its end): the terminal is hung up
//   as stunnel closes it then (the program, whose controlling terminal it is, gets SIGHUP); what was
//   already read from it is passed on, then `out` is closed;
// - when JavaScript closed the read end of `out`.
static void *relay_main(void *p) {
  struct pty_relay *r = p;
  size_t uplen = 0, upoff = 0, downlen = 0, downoff = 0;
  int master_rd = 1, master_wr = 1, in_open = 1;
  for (;;) {
    if (!master_rd && downoff == downlen) break;
    int want_read = master_rd && downoff == downlen;
    int want_write = master_wr && upoff < uplen;
    // A descriptor is polled only while something is wanted from it: a hung-up terminal or a
    // closed pipe reports POLLHUP whatever the events, and would otherwise spin this loop.
    struct pollfd f[3] = {
        {want_read || want_write ? r->master : -1, (short)((want_read ? POLLIN : 0) | (want_write ? POLLOUT : 0)), 0},
        {in_open && upoff == uplen ? r->in : -1, POLLIN, 0},
        {downoff < downlen ? r->out : -1, POLLOUT, 0},
    };
    if (poll(f, 3, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (f[0].revents && want_read) {
      ssize_t n = read(r->master, r->down, sizeof r->down);
      if (n > 0) {
        downlen = (size_t)n;
        downoff = 0;
      } else if (n == 0 || !retry()) {
        master_rd = 0; // EIO: no slave descriptor is open any more
      }
    }
    if (f[0].revents && want_write) {
      ssize_t n = write(r->master, r->up + upoff, uplen - upoff);
      if (n > 0) upoff += (size_t)n;
      else if (n < 0 && !retry()) master_wr = 0; // hung up: input dropped, output still read
      if (!master_wr || upoff == uplen) upoff = uplen = 0;
    }
    if (f[1].revents) {
      ssize_t n = read(r->in, r->up, sizeof r->up);
      if (n > 0) {
        uplen = master_wr ? (size_t)n : 0;
        upoff = 0;
      } else if (n == 0 || !retry()) {
        in_open = 0;
        if (master_rd || master_wr) {
          close(r->master);
          r->master = -1;
          master_rd = master_wr = 0;
        }
      }
    }
    if (f[2].revents) {
      ssize_t n = write(r->out, r->down + downoff, downlen - downoff);
      if (n > 0) downoff += (size_t)n;
      else if (n < 0 && !retry()) break; // nobody reads the output any more
      if (downoff == downlen) downoff = downlen = 0;
    }
  }
  if (r->master >= 0) close(r->master);
  close(r->in);
  close(r->out);
  free(r);
  return NULL;
}

// relayPty(master, in, out) -> errno (0 on success): start the relay; it owns the three
// descriptors from then on (closed by it, also on failure).
static napi_value RelayPty(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value args[3];
  int fds[3];
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok || argc < 3) return NULL;
  for (int i = 0; i < 3; i++)
    if (napi_get_value_int32(env, args[i], &fds[i]) != napi_ok) return NULL;
  struct pty_relay *r = malloc(sizeof *r);
  int err = ENOMEM;
  if (r) {
    r->master = fds[0];
    r->in = fds[1];
    r->out = fds[2];
    err = 0;
    for (int i = 0; i < 3 && !err; i++) {
      int fl = fcntl(fds[i], F_GETFL);
      if (fl < 0 || fcntl(fds[i], F_SETFL, fl | O_NONBLOCK) < 0) err = errno;
    }
  }
  if (!err) {
    // The thread starts with every signal blocked (it inherits this mask), so that SIGCHLD and the
    // others are handled by Node.js's threads; sigprocmask for the reason given in spawn_execute.
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    pthread_t t;
    err = pthread_create(&t, NULL, relay_main, r);
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (!err) pthread_detach(t);
  }
  if (err) {
    for (int i = 0; i < 3; i++) close(fds[i]);
    free(r);
  }
  return int_result(env, err);
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_property_descriptor props[] = {
      {"spawn", NULL, Spawn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"reap", NULL, Reap, NULL, NULL, NULL, napi_enumerable, NULL},
      {"socketpair", NULL, SocketPair, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pipe", NULL, Pipe, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, Close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setBlocking", NULL, SetBlocking, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setPipeSize", NULL, SetPipeSize, NULL, NULL, NULL, napi_enumerable, NULL},
      {"dup", NULL, Dup, NULL, NULL, NULL, napi_enumerable, NULL},
      {"chroot", NULL, Chroot, NULL, NULL, NULL, napi_enumerable, NULL},
      {"killIpOptions", NULL, KillIpOptions, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openPty", NULL, OpenPty, NULL, NULL, NULL, napi_enumerable, NULL},
      {"relayPty", NULL, RelayPty, NULL, NULL, NULL, napi_enumerable, NULL},
      {"connectDatagram", NULL, ConnectDatagram, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
