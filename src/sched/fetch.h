/* Assemble a task's input (core + halo) from a reader, applying the
 * boundary mode where the rect passes the image border. */
#ifndef TS_SCHED_FETCH_H
#define TS_SCHED_FETCH_H

#include "tessera/io.h"
#include "tessera/partition.h"

/* Fill dst (rect.w x rect.h, the reader's dtype and channels) with the
 * pixels of `rect`, which may extend past the image: outside, coordinates
 * map by `mode` (scipy.ndimage's meaning) or take `cval`. `scratch` holds
 * ts_fetch_scratch_bytes(rect) bytes. Reader calls: a few per side. */
ts_status ts_fetch_rect(ts_reader *r, ts_rect rect, ts_boundary mode, double cval,
                        ts_image *dst, void *scratch, ts_error *err);
size_t ts_fetch_scratch_bytes(ts_rect rect);

#endif
