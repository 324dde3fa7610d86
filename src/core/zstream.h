/* zlib streams (HDF5's deflate filter) through libdeflate, two to three
 * times faster than zlib here on both sides. One ts_zstream per thread:
 * the compressor and decompressor are allocated on first use and reused.
 * Internal to the library. */
#ifndef TS_CORE_ZSTREAM_H
#define TS_CORE_ZSTREAM_H

#include <stddef.h>

typedef struct ts_zstream {
  struct libdeflate_compressor *c;
  struct libdeflate_decompressor *d;
  int level;
} ts_zstream;

/* Upper bound of the compressed size of n bytes at z's level. */
size_t ts_zbound(ts_zstream *z, size_t n);
/* Compress src[0..n) into dst (cap bytes); the stream's size, or 0 when
 * out of memory or it does not fit. The level is z->level (1-12; 0
 * means 4, h5py's gzip default). */
size_t ts_zcompress(ts_zstream *z, const void *src, size_t n, void *dst, size_t cap);
/* Inflate exactly `n` bytes from src[0..size); 0 on success, -1 when the
 * stream is corrupt or inflates to another size. */
int ts_zdecompress(ts_zstream *z, const void *src, size_t size, void *dst, size_t n);
void ts_zstream_free(ts_zstream *z);

#endif
