// Bulk load client for bench/server/run.mjs, in C so that the client is not what limits the
// measurement (a Node.js client spends about 3 ms of CPU per MiB on TLS both ways, which caps every
// server near 340 MiB/s on this machine). One connection to 127.0.0.1:PORT, plain TCP or TLS
// (OpenSSL, certificate not verified): write MIB MiB in 64 KiB writes while reading everything
// back through the server's `cat`, then half-close (TLS: close_notify, then TCP FIN) and read to the
// end. Prints one JSON line: {"seconds":S,"mibPerSecond":R}.
//   bulk tls|plain PORT MIB
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
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

static long long g_sent, g_got;

static void die(const char *what) {
  fprintf(stderr, "bulk: %s: %s\n", what, strerror(errno));
  ERR_print_errors_fp(stderr);
  exit(111);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: bulk tls|plain PORT MIB\n");
    return 100;
  }
  int tls = strcmp(argv[1], "tls") == 0;
  long long total = atoll(argv[3]) * 1024LL * 1024LL;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((unsigned short)atoi(argv[2]));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("connect");

  SSL *ssl = NULL;
  if (tls) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) != 1) die("handshake");
  }
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
      g_sent = sent;
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
      g_got = got;
    }
    if (got >= total) break;
    if (want_write || (sent >= total && closed_write)) {
      struct pollfd p = {fd, (short)((want_read ? POLLIN : 0) | (want_write ? POLLOUT : 0)), 0};
      poll(&p, 1, 10000);
    }
  }
done:
  if (got < total) {
    fprintf(stderr, "bulk: connection ended after %lld of %lld bytes\n", got, total);
    return 111;
  }
  double s = now() - t0;
  printf("{\"seconds\":%.6f,\"mibPerSecond\":%.3f}\n", s, (double)total / 1048576.0 / s);
  return 0;
}
