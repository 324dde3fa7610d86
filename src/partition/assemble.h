/* Assemble a task's input (core + halo) from a read callback, applying
 * the boundary mode where the rect passes the image border. */
#ifndef TS_PARTITION_ASSEMBLE_H
#define TS_PARTITION_ASSEMBLE_H

#include "tessera/partition.h"

/* Read `src` (inside the image) into dst, rows `stride` bytes apart. */
typedef ts_status (*ts_read_rect_fn)(void *ctx, ts_rect src, void *dst, int64_t stride, ts_error *err);

/* Fill dst (rect.w x rect.h) with the pixels of `rect` of a w x h image,
 * which may extend past the image: outside, coordinates map by `mode`
 * (scipy.ndimage's meaning) or take `cval`. `scratch` holds
 * ts_assemble_scratch_bytes(rect) bytes. Read calls: a few per side. */
ts_status ts_assemble_rect(ts_read_rect_fn read, void *ctx, int64_t w, int64_t h, ts_rect rect, ts_boundary mode,
                           double cval, ts_image *dst, void *scratch, ts_error *err);
size_t ts_assemble_scratch_bytes(ts_rect rect);

#endif
