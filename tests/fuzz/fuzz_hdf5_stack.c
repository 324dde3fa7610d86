/* List mode's HDF5 stack input: FILE.h5:/stack enumerated, then the
 * first few slices read and viewed as a worker does. */
#include <hdf5.h>
#include "fuzz.h"
#include "io/list.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  static ts_blob b, px, work;
  static ts_zstream z;
  const char *file = fuzz_file(data, n, ".h5");
  char spec[300];
  snprintf(spec, sizeof spec, "%s:/stack", file);
  ts_inputs in;
  ts_error e;
  if (ts_inputs_open(spec, NULL, 0, 0, &in, &e) == TS_OK) {
    /* list mode refuses slices above --max-image-pixels before reading */
    const int small = ts_codec_check(spec, in.w, in.h, (int64_t)1 << 24, &e) == TS_OK;
    for (int64_t i = 0; small && i < in.n && i < 4; i++) {
      b.size = 0;
      if (ts_inputs_read(&in, i, &b, &e)) continue;
      ts_image im;
      ts_payload_image("fuzz", b.p, b.size, (int64_t)1 << 24, &px, &im, &z, &work, &e);
    }
    ts_inputs_free(&in);
  }
  if (H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) != 0) abort(); /* every file, dataset, space closed */
  if (b.cap > (64u << 20)) ts_blob_free(&b);
  if (px.cap > (64u << 20)) ts_blob_free(&px);
  return 0;
}
