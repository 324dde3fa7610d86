/* List mode's whole-image decoders (PNG, JPEG, TIFF, by their magic) from
 * memory, as a worker decodes the bytes rank 0 sent. One source, built
 * once per format so each has its own corpus and dictionary. */
#include "fuzz.h"
#include "io/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  static ts_blob px, work;
  static ts_zstream z;
  ts_image im;
  ts_error e;
  if (ts_decode("fuzz", data, n, (int64_t)1 << 24 /* 256 MiB at most: the fuzzer's 2 GiB */, &px, &im, &z, &work, &e) == TS_OK) {
    /* touch the first and last pixel row: the view must be inside px */
    volatile unsigned char sink = ((unsigned char *)im.data)[0];
    sink ^= ((unsigned char *)im.data)[(im.h - 1) * im.stride + im.w * (int64_t)ts_pixel_size(&im) - 1];
    (void)sink;
  }
  /* keep buffers from growing without bound across inputs */
  if (px.cap > (64u << 20)) ts_blob_free(&px);
  return 0;
}
