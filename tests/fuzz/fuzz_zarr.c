/* The Zarr readers: a store made from the input, then opened as a tile
 * image (ts_reader_open, every rect at most 4 Mpx) or, when the first
 * byte's bit 1 is set, as a list-mode stack (every image, same budget).
 *
 * The input is segments split by "\xffZRS": the array's metadata (its
 * file: .zarray when the first byte is even, else zarr.json), then chunk
 * files under the keys of a 2 x 2 chunk grid in each key encoding (v2 "/"
 * and ".", v3 "c/", 3-D and 4-D keys), in that order. */
#include <sys/stat.h>
#include "io/backends.h"
#include "tessera/io.h"
#include "fuzz.h"

static const char *const keys[] = {"0/0", "0/1", "1/0", "1/1", "0.0", "0.1", "1.0", "1.1", "c/0/0", "c/0/1",
                                   "c/1/0", "c/1/1", "0/0/0", "c/0/0/0", "0/0/0/0", "1/0/0", "1/0/0/0", NULL};

static const char *make_store(const uint8_t *data, size_t n) {
  static char dir[256];
  snprintf(dir, sizeof dir, "%s/tessera-fuzz-%d.zarr", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (int)getpid());
  ts_remove_path(dir);
  if (mkdir(dir, 0777) != 0) abort();
  const uint8_t *p = n ? data + 1 : data, *end = data + n;
  for (int seg = -1; p <= end && (seg < 0 || keys[seg]); seg++) {
    const uint8_t *q = p;
    while (q + 4 <= end && memcmp(q, "\xffZRS", 4) != 0) q++;
    if (q + 4 > end) q = end;
    char path[512];
    const char *name = seg < 0 ? (n && (data[0] & 1) ? "zarr.json" : ".zarray") : keys[seg];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    for (char *s = strchr(path + strlen(dir) + 1, '/'); s; s = strchr(s + 1, '/')) { /* the key's directories */
      *s = '\0';
      mkdir(path, 0777);
      *s = '/';
    }
    FILE *f = fopen(path, "wb");
    if (f) fwrite(p, 1, (size_t)(q - p), f), fclose(f);
    p = q + 4;
  }
  return dir;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  static unsigned char *buf;
  enum { T = 64 };
  if (!buf && !(buf = malloc(T * T * 4 * 4))) abort();
  const char *dir = make_store(data, n);
  ts_error e;
  if (n && (data[0] & 2)) { /* a stack */
    ts_zarr_stack *z = NULL;
    ts_image_info info;
    int64_t count = 0;
    if (ts_zarr_stack_open(dir, &z, &info, &count, &e) == TS_OK) {
      int64_t px = (int64_t)ts_dtype_size(info.dtype) * info.channels, bytes = info.w * info.h * px;
      unsigned char *im = bytes <= (16 << 20) ? malloc((size_t)bytes) : NULL;
      for (int64_t i = 0; im && i < count && i * info.w * info.h < (4 << 20); i++)
        if (ts_zarr_stack_read(z, i, im, &e)) break;
      free(im);
      ts_zarr_stack_close(z);
    }
    return 0;
  }
  ts_reader *r = NULL;
  if (ts_reader_open(dir, &r, &e) == TS_OK) {
    fuzz_read_all(r, buf, T);
    ts_reader_close(&r);
  }
  return 0;
}
