/* Image views. */
#include <string.h>
#include "tessera/image.h"

static const char *const dtype_names[TS_DTYPE_COUNT] = {"u8", "u16", "f32"};

size_t ts_dtype_size(ts_dtype d) { return d == TS_U8 ? 1 : d == TS_U16 ? 2 : 4; }

const char *ts_dtype_name(ts_dtype d) {
  return (unsigned)d < TS_DTYPE_COUNT ? dtype_names[d] : "?";
}

ts_status ts_dtype_parse(const char *s, ts_dtype *out) {
  for (int d = 0; d < TS_DTYPE_COUNT; d++)
    if (strcmp(s, dtype_names[d]) == 0) {
      *out = (ts_dtype)d;
      return TS_OK;
    }
  return TS_ERR_USAGE;
}

float ts_dtype_max(ts_dtype d) { return d == TS_U8 ? 255.0f : d == TS_U16 ? 65535.0f : 1.0f; }

ts_image ts_image_sub(const ts_image *im, ts_rect r) {
  ts_image s = *im;
  s.w = r.w;
  s.h = r.h;
  s.data = ts_image_at(im, r.x, r.y);
  return s;
}

ts_image ts_image_packed(void *data, int64_t w, int64_t h, int channels, ts_dtype dtype) {
  ts_image im = {.w = w, .h = h, .channels = channels, .dtype = dtype, .data = data};
  im.stride = w * (int64_t)ts_pixel_size(&im);
  return im;
}

int64_t ts_image_bytes(int64_t w, int64_t h, int channels, ts_dtype dtype) {
  int64_t px, row, all;
  if (w < 0 || h < 0 || channels < 1) return -1;
  if (__builtin_mul_overflow(w, (int64_t)channels * (int64_t)ts_dtype_size(dtype), &row))
    return -1;
  px = row;
  if (__builtin_mul_overflow(px, h, &all)) return -1;
  return all;
}

void ts_image_copy(const ts_image *src, ts_image *dst) {
  size_t row = (size_t)src->w * ts_pixel_size(src);
  for (int64_t y = 0; y < src->h; y++)
    memcpy((char *)dst->data + y * dst->stride, (const char *)src->data + y * src->stride, row);
}
