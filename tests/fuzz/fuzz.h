/* Shared by the libFuzzer harnesses: the input as a file on tmpfs, so
 * each harness goes through the real open path (stat, magic, libtiff's or
 * HDF5's own file driver) rather than a test-only entry point. */
#ifndef TS_FUZZ_H
#define TS_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Write the input to a file of this process (suffix: ".tif", ".h5"...)
 * and return its path (static; overwritten by the next call). */
static inline const char *fuzz_file(const uint8_t *data, size_t n, const char *suffix) {
  static char path[256];
  const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  snprintf(path, sizeof path, "%s/tessera-fuzz-%d%s", dir, (int)getpid(), suffix);
  FILE *f = fopen(path, "wb");
  if (!f) abort();
  if (n && fwrite(data, 1, n, f) != n) abort();
  if (fclose(f)) abort();
  return path;
}

/* libFuzzer calls this at exit too: leave no file behind. */
static inline void fuzz_unlink(const char *suffix) {
  char path[256];
  const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  snprintf(path, sizeof path, "%s/tessera-fuzz-%d%s", dir, (int)getpid(), suffix);
  unlink(path);
}

#endif
