/* Tile mode's HDF5 reader: FILE.h5:/image through ts_reader_open, a
 * small chunk cache, and rects across the image (at most 4 Mpx). */
#include <hdf5.h>
#include "fuzz.h"
#include "tessera/io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  static unsigned char *buf;
  enum { T = 64 };
  if (!buf && !(buf = malloc(T * T * 4 * 4))) abort();
  const char *file = fuzz_file(data, n, ".h5");
  char spec[300];
  snprintf(spec, sizeof spec, "%s:/image", file);
  ts_reader *r = NULL;
  ts_error e;
  if (ts_reader_open(spec, &r, &e) == TS_OK) {
    ts_reader_set_cache(r, 2);
    const ts_image_info *i = &r->info;
    int64_t budget = 4 << 20, px = (int64_t)ts_dtype_size(i->dtype) * i->channels;
    for (int64_t y = 0; y < i->h && budget > 0; y += T)
      for (int64_t x = 0; x < i->w && budget > 0; x += T) {
        ts_rect rect = {x, y, i->w - x < T ? i->w - x : T, i->h - y < T ? i->h - y : T};
        if (ts_reader_read(r, rect, buf, rect.w * px, &e)) budget = 0;
        budget -= T * T;
      }
    ts_reader_close(&r);
  }
  if (H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) != 0) abort(); /* every file, dataset, space closed */
  return 0;
}
