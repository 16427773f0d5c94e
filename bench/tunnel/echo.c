// Echo backend for bench/tunnel/run.mjs's relay mode: both tunnels `connect` to it. One thread, epoll,
// no process per connection, so that it costs little CPU and memory next to the tunnels it serves on
// a 2-core machine (ucspi-tcp's tcpserver running cat would fork and exec for every connection).
//   echo PORT   listens on 127.0.0.1:PORT; every connection gets back what it sends; at the client's
//               end of input, what is still buffered is sent, then the connection is closed.
// Backpressure: a connection's bytes are read only once the previous read has been written back.
#define _GNU_SOURCE  // accept4
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF (128 * 1024)

struct conn {
  int fd;
  int eof;
  unsigned events;
  size_t off, len;
  char *buf;  // allocated on the first read, so that an idle connection holds no buffer
};

static int ep;

static void drop(struct conn *c) {
  close(c->fd);  // closing removes it from the epoll set
  free(c->buf);
  free(c);
}

static void want(struct conn *c, unsigned events) {
  if (c->events == events) return;
  struct epoll_event ev = {.events = events, .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
  c->events = events;
}

/** Moves bytes until the socket would block either way; then waits for the side it needs. */
static void serve(struct conn *c) {
  for (;;) {
    if (c->len > 0) {
      ssize_t w = write(c->fd, c->buf + c->off, c->len);
      if (w < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return want(c, EPOLLOUT);
        return drop(c);
      }
      c->off += (size_t)w;
      c->len -= (size_t)w;
      continue;
    }
    if (c->eof) return drop(c);
    if (!c->buf && !(c->buf = malloc(BUF))) return drop(c);
    ssize_t r = read(c->fd, c->buf, BUF);
    if (r == 0) {
      c->eof = 1;
      continue;
    }
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return want(c, EPOLLIN);
      return drop(c);
    }
    c->off = 0;
    c->len = (size_t)r;
  }
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: echo PORT\n");
    return 100;
  }
  signal(SIGPIPE, SIG_IGN);
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1]))};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (ls < 0 || bind(ls, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(ls, 1024) < 0) {
    perror("echo: listen");
    return 111;
  }
  ep = epoll_create1(0);
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &lev);
  struct epoll_event evs[64];
  for (;;) {
    int n = epoll_wait(ep, evs, 64, -1);
    if (n < 0 && errno != EINTR) {
      perror("echo: epoll_wait");
      return 111;
    }
    for (int i = 0; i < n; i++) {
      struct conn *c = evs[i].data.ptr;
      if (c) {
        serve(c);
        continue;
      }
      int fd;
      while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
        c = calloc(1, sizeof *c);
        if (!c) {
          close(fd);
          continue;
        }
        c->fd = fd;
        c->events = EPOLLIN;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
      }
    }
  }
}
