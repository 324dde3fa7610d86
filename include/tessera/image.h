/* tessera: strided image views.
 *
 * A ts_image is a view: it never owns its pixels. Channels are interleaved;
 * sizes and strides are int64 so images pass 2^31 pixels. */
#ifndef TESSERA_IMAGE_H
#define TESSERA_IMAGE_H

#include <stddef.h>
#include <stdint.h>
#include "tessera/status.h"

typedef enum ts_dtype { TS_U8 = 0, TS_U16 = 1, TS_F32 = 2, TS_DTYPE_COUNT } ts_dtype;

#define TS_DTYPE_BIT(d) (1u << (d))
#define TS_DTYPES_ALL (TS_DTYPE_BIT(TS_U8) | TS_DTYPE_BIT(TS_U16) | TS_DTYPE_BIT(TS_F32))
#define TS_MAX_CHANNELS 4

/* Pyramid levels an output may have (sides up to 2^32). */
#define TS_MAX_LEVELS 32

typedef struct ts_rect {
  int64_t x, y, w, h;
} ts_rect;

typedef struct ts_image {
  int64_t w, h;   /* pixels */
  int channels;   /* 1..4, interleaved */
  ts_dtype dtype;
  int64_t stride; /* bytes from one row to the next */
  void *data;     /* first pixel of row 0; not owned */
} ts_image;

/* Bytes per sample of a dtype (1, 2, 4). */
TS_API size_t ts_dtype_size(ts_dtype d);
/* "u8", "u16", "f32". */
TS_API const char *ts_dtype_name(ts_dtype d);
/* Parse a dtype name; returns TS_OK or TS_ERR_USAGE. */
TS_API ts_status ts_dtype_parse(const char *s, ts_dtype *out);
/* Largest value of the dtype as a float: 255, 65535, and 1.0 for f32 (the
 * nominal range of float images). */
TS_API float ts_dtype_max(ts_dtype d);

/* Bytes in one pixel. */
static inline size_t ts_pixel_size(const ts_image *im) {
  return ts_dtype_size(im->dtype) * (size_t)im->channels;
}
/* Pointer to pixel (x, y). */
static inline void *ts_image_at(const ts_image *im, int64_t x, int64_t y) {
  return (char *)im->data + y * im->stride + x * (int64_t)ts_pixel_size(im);
}
/* A view of a rect inside `im` (the rect must lie inside). */
TS_API ts_image ts_image_sub(const ts_image *im, ts_rect r);
/* A packed view of w x h over `data` (stride = w * pixel size). */
TS_API ts_image ts_image_packed(void *data, int64_t w, int64_t h, int channels,
                                ts_dtype dtype);
/* Bytes a packed w x h x channels image of dtype needs, or -1 on overflow. */
TS_API int64_t ts_image_bytes(int64_t w, int64_t h, int channels, ts_dtype dtype);
/* Copy pixels between views of equal size, channels and dtype. */
TS_API void ts_image_copy(const ts_image *src, ts_image *dst);

#endif
