/* The decoders' pixel buffers: sized once per image, kept between images. */
#include "io/codec.h"

ts_status ts_codec_check(const char *name, int64_t w, int64_t h, int64_t max_pixels, ts_error *err) {
  if (w < 1 || h < 1)
    return ts_fail(err, TS_ERR_FORMAT, "%s: its header gives a %lldx%lld image", name, (long long)w, (long long)h);
  if (max_pixels > 0 && w > max_pixels / h)
    return ts_fail(err, TS_ERR_RANGE, "%s: its header gives a %lldx%lld image (%.3g pixels), above the limit of "
                   "%lld (--max-image-pixels); refused before decoding", name, (long long)w, (long long)h,
                   (double)w * (double)h, (long long)max_pixels);
  return TS_OK;
}

/* Size px for a w x h x c image of dtype and view it. */
ts_status ts_codec_image(const char *name, int64_t w, int64_t h, int c, ts_dtype dt, ts_blob *px, ts_image *im,
                         ts_error *err) {
  int64_t bytes = ts_image_bytes(w, h, c, dt);
  if (w < 1 || h < 1 || bytes < 0 || bytes > ((int64_t)1 << 34))
    return ts_fail(err, TS_ERR_FORMAT, "%s: unsupported image size %lldx%lld", name, (long long)w, (long long)h);
  if (ts_blob_reserve(px, (size_t)bytes))
    return ts_fail(err, TS_ERR_NOMEM, "%s: out of memory for a %lldx%lld image", name, (long long)w, (long long)h);
  *im = ts_image_packed(px->p, w, h, c, dt);
  return TS_OK;
}
