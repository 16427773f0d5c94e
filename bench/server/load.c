// Load client for bench/server/run.mjs, in C so that the client is not what limits the measurement:
// a Node.js client spends about 2 ms of CPU per TLS connection and 3 ms per MiB, a large share of a
// 2-core machine, which squeezes the differences between servers. Talks to 127.0.0.1:PORT, plain TCP
// or TLS 1.3 (OpenSSL, certificate not verified, no session resumption). Prints one JSON line.
//   load bulk tls|plain PORT MIB
//     one connection: write MIB MiB in 64 KiB writes while reading everything back through the
//     server's `cat`, then half-close (TLS: close_notify, then TCP FIN) and read to the end;
//     {"seconds":S,"mibPerSecond":R}
//   load conns tls|tls-resume|plain PORT N CONC
//     N connections, CONC threads each opening one at a time: connect, handshake, send "ping\n",
//     read the 5-byte echo, close (TLS: close_notify first); {"seconds":S,"p50":MS,"p99":MS}, the
//     percentiles of each connection's time from connect to the echo read (a small request's latency)
//     tls-resume: each thread offers the session (ticket) of its previous connection, whichever
//     server gave it (bench/scaleout: two servers behind a balancer); the line adds "resumed":K, the
//     connections whose session was resumed
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what) {
  fprintf(stderr, "load: %s: %s\n", what, strerror(errno));
  ERR_print_errors_fp(stderr);
  exit(111);
}

static SSL_CTX *ctx;
static struct sockaddr_in addr;

static int dial(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect");
  return fd;
}

static SSL *handshake(int fd) {
  SSL *ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  if (SSL_connect(ssl) != 1) die("handshake");
  return ssl;
}

static int conns_tls, conns_resume;
static long conns_left, conns_total, conns_resumed;
static double *conns_ms;  // per connection: connect to echo read, in ms
static pthread_mutex_t conns_lock = PTHREAD_MUTEX_INITIALIZER;

static void *conns_worker(void *arg) {
  (void)arg;
  SSL_SESSION *last = NULL;  // tls-resume: the ticket of this thread's previous connection
  for (;;) {
    pthread_mutex_lock(&conns_lock);
    long mine = conns_left-- > 0;
    long slot = conns_total - conns_left - 1;
    pthread_mutex_unlock(&conns_lock);
    if (!mine) {
      if (last) SSL_SESSION_free(last);
      return NULL;
    }
    double t0 = now();
    int fd = dial();
    char buf[64];
    int got = 0;
    if (conns_tls) {
      SSL *ssl = SSL_new(ctx);
      SSL_set_fd(ssl, fd);
      if (last) SSL_set_session(ssl, last);
      if (SSL_connect(ssl) != 1) die("handshake");
      if (SSL_write(ssl, "ping\n", 5) != 5) die("SSL_write");
      while (got < 5) {
        int r = SSL_read(ssl, buf, sizeof buf);
        if (r <= 0) die("SSL_read");
        got += r;
      }
      conns_ms[slot] = (now() - t0) * 1000;
      if (conns_resume) {
        // TLS 1.3 tickets come after the handshake, before the echo: this connection's is in now.
        if (SSL_session_reused(ssl)) __atomic_add_fetch(&conns_resumed, 1, __ATOMIC_RELAXED);
        SSL_SESSION *next = SSL_get1_session(ssl);
        if (last) SSL_SESSION_free(last);
        last = next;
      }
      SSL_shutdown(ssl);
      SSL_free(ssl);
    } else {
      if (write(fd, "ping\n", 5) != 5) die("write");
      while (got < 5) {
        int r = (int)read(fd, buf, sizeof buf);
        if (r <= 0) die("read");
        got += r;
      }
      conns_ms[slot] = (now() - t0) * 1000;
    }
    close(fd);
  }
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int conns(int tls, long n, int conc) {
  conns_tls = tls;
  conns_left = conns_total = n;
  if (n < 1 || !(conns_ms = calloc((size_t)n, sizeof *conns_ms))) die("conns");
  pthread_t t[256];
  if (conc < 1 || conc > 256) conc = 8;
  double t0 = now();
  for (int i = 0; i < conc; i++) pthread_create(&t[i], NULL, conns_worker, NULL);
  for (int i = 0; i < conc; i++) pthread_join(t[i], NULL);
  double seconds = now() - t0;
  qsort(conns_ms, (size_t)n, sizeof *conns_ms, by_value);
  printf("{\"seconds\":%.6f,\"p50\":%.3f,\"p99\":%.3f,\"resumed\":%ld}\n", seconds, conns_ms[n / 2],
         conns_ms[n * 99 / 100], conns_resumed);
  return 0;
}

static int bulk(int tls, long long total) {
  int fd = dial();
  SSL *ssl = tls ? handshake(fd) : NULL;
  // Non-blocking from here: one loop writes while it can and reads whatever has come back.
  int fl = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &fl, sizeof fl);
  if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) die("fcntl");

  static char out[64 * 1024], in[256 * 1024];
  memset(out, 'x', sizeof out);
  long long sent = 0, got = 0;
  int closed_write = 0;
  double t0 = now();
  while (got < total) {
    int want_write = 0, want_read = 1;
    if (sent < total) {
      size_t n = (size_t)(total - sent < (long long)sizeof out ? total - sent : (long long)sizeof out);
      int w;
      if (tls) {
        w = SSL_write(ssl, out, (int)n);
        if (w <= 0) {
          int e = SSL_get_error(ssl, w);
          if (e == SSL_ERROR_WANT_WRITE) want_write = 1;
          else if (e != SSL_ERROR_WANT_READ) die("SSL_write");
          w = 0;
        }
      } else {
        w = (int)write(fd, out, n);
        if (w < 0) {
          if (errno != EAGAIN) die("write");
          want_write = 1;
          w = 0;
        }
      }
      sent += w;
    } else if (!closed_write) {
      // close_notify (TLS 1.3 lets the peer go on sending), then FIN once it has left.
      int r = tls ? SSL_shutdown(ssl) : 0;
      if (r >= 0) {
        closed_write = 1;
        shutdown(fd, SHUT_WR);
      } else if (SSL_get_error(ssl, r) == SSL_ERROR_WANT_WRITE) {
        want_write = 1;
      } else {
        die("SSL_shutdown");
      }
    }
    for (;;) {
      int r;
      if (tls) {
        r = SSL_read(ssl, in, sizeof in);
        if (r <= 0) {
          int e = SSL_get_error(ssl, r);
          if (e == SSL_ERROR_ZERO_RETURN) goto done;
          if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) die("SSL_read");
          break;
        }
      } else {
        r = (int)read(fd, in, sizeof in);
        if (r == 0) goto done;
        if (r < 0) {
          if (errno != EAGAIN) die("read");
          break;
        }
      }
      got += r;
    }
    if (got >= total) break;
    if (want_write || (sent >= total && closed_write)) {
      struct pollfd p = {fd, (short)((want_read ? POLLIN : 0) | (want_write ? POLLOUT : 0)), 0};
      poll(&p, 1, 10000);
    }
  }
done:
  if (got < total) {
    fprintf(stderr, "load: connection ended after %lld of %lld bytes\n", got, total);
    return 111;
  }
  double s = now() - t0;
  printf("{\"seconds\":%.6f,\"mibPerSecond\":%.3f}\n", s, (double)total / 1048576.0 / s);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 5 || (strcmp(argv[1], "bulk") != 0 && strcmp(argv[1], "conns") != 0)) {
    fprintf(stderr, "usage: load bulk tls|plain PORT MIB | load conns tls|tls-resume|plain PORT N CONC\n");
    return 100;
  }
  conns_resume = strcmp(argv[2], "tls-resume") == 0;
  int tls = conns_resume || strcmp(argv[2], "tls") == 0;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((unsigned short)atoi(argv[3]));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (tls) {
    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  }
  if (strcmp(argv[1], "bulk") == 0) return bulk(tls, atoll(argv[4]) * 1024LL * 1024LL);
  return conns(tls, atol(argv[4]), argc > 5 ? atoi(argv[5]) : 8);
}
