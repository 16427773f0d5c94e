/* Lookup benchmark anchor: tinycdb's own cdb_find over the same keys as the Node.js run.
   usage: lookup DB KEYSFILE ROUNDS  -> prints "<lookups> <seconds>" */
#include <cdb.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 4) return 100;
  int fd = open(argv[1], O_RDONLY);
  struct cdb c;
  if (fd < 0 || cdb_init(&c, fd) != 0) return 111;
  FILE *f = fopen(argv[2], "r");
  if (!f) return 111;
  size_t cap = 1 << 20, n = 0;
  char **keys = malloc(cap * sizeof *keys);
  unsigned *lens = malloc(cap * sizeof *lens);
  char line[256];
  while (fgets(line, sizeof line, f)) {
    size_t l = strcspn(line, "\n");
    if (n == cap) { cap *= 2; keys = realloc(keys, cap * sizeof *keys); lens = realloc(lens, cap * sizeof *lens); }
    keys[n] = malloc(l); memcpy(keys[n], line, l); lens[n++] = l;
  }
  int rounds = atoi(argv[3]);
  unsigned long found = 0;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (int r = 0; r < rounds; r++)
    for (size_t i = 0; i < n; i++)
      if (cdb_find(&c, keys[i], lens[i]) > 0) found += cdb_datalen(&c);
  clock_gettime(CLOCK_MONOTONIC, &b);
  double s = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
  printf("%lu %.6f %lu\n", (unsigned long)n * rounds, s, found);
  return 0;
}
