/* Tile mode's HDF5 reader: FILE.h5:/image through ts_reader_open, a
 * small chunk cache, and rects across the image (at most 4 Mpx). */
#include <hdf5.h>
#include "tessera/io.h"
#include "fuzz.h"

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
    fuzz_read_all(r, buf, T);
    ts_reader_close(&r);
  }
  if (H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) != 0) abort(); /* every file, dataset, space closed */
  return 0;
}
