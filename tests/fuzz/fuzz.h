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

/* Does the input hold the bytes of s anywhere? */
static inline int fuzz_has(const uint8_t *data, size_t n, const char *s) {
  const size_t k = strlen(s);
  for (size_t i = 0; i + k <= n; i++)
    if (!memcmp(data + i, s, k)) return 1;
  return 0;
}

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

#ifdef TESSERA_IO_H
/* Read every rect of an open reader's image in T x T pieces through buf
 * (T * T * 16 bytes), at most 4 Mpx, stopping at the first error. */
static inline void fuzz_read_all(ts_reader *r, unsigned char *buf, int64_t T) {
  ts_error e;
  ts_reader_set_cache(r, 2);
  const ts_image_info *i = &r->info;
  int64_t budget = 4 << 20, px = (int64_t)ts_dtype_size(i->dtype) * i->channels;
  for (int64_t y = 0; y < i->h && budget > 0; y += T)
    for (int64_t x = 0; x < i->w && budget > 0; x += T) {
      ts_rect rect = {x, y, i->w - x < T ? i->w - x : T, i->h - y < T ? i->h - y : T};
      if (ts_reader_read(r, rect, buf, rect.w * px, &e)) budget = 0;
      budget -= T * T;
    }
}
#endif

#endif
