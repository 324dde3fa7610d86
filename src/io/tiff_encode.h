/* TIFF tiles, encoded: the per-thread encoders the TIFF writer hands out
 * (io/tiff_write.c keeps the file). Uncompressed tiles are staged;
 * deflate and zstd tiles get TIFF's predictor while staged, then one
 * stream through core/zstream.c; LZW and JPEG tiles go through libtiff's
 * codecs on a one-tile in-memory TIFF. Internal to src/io. */
#ifndef TS_IO_TIFF_ENCODE_H
#define TS_IO_TIFF_ENCODE_H

#include <stdint.h>
#include "tessera/io.h"

/* The TIFF Compression tag of c (0: not a TIFF compression: blosc). */
uint16_t ts_tiff_compression(ts_compression c);
/* Does a tile of this compression carry a predictor (deflate, LZW, zstd)? */
int ts_tiff_has_predictor(uint16_t comp);
/* The most bytes a deflate or zstd tile of tile_bytes takes. */
size_t ts_tiff_stream_bound(uint16_t comp, size_t tile_bytes);
/* The room a compressed COG's row regions give each tile (tiff_write.c):
 * the most it can take, or for JPEG, what it takes short of pathology. */
size_t ts_tiff_tile_room(uint16_t comp, size_t tile_bytes);

/* The writer's encoder ops (ts_writer_ops). */
ts_status ts_tiff_encoder_new(const char *path, const ts_writer_options *o, ts_encoder_state **out, ts_error *err);
void ts_tiff_encoder_free(ts_encoder_state *e);
size_t ts_tiff_bound(const ts_encoder_state *e);
ts_status ts_tiff_encode(ts_encoder_state *e, int L, ts_rect r, const void *src, int64_t src_stride, void *dst,
                         size_t cap, const void **data, size_t *size, ts_error *err);

#endif
