/* zlib streams (HDF5's deflate filter) through ISA-L's igzip: on 128 x 128
 * to 256 x 64 u8 images it deflates at level 1 three times as fast as
 * libdeflate at level 4 (44 against 133 µs on natural images, 1.2% larger)
 * and inflates 10-20% faster; zlib is slower still. One ts_zstream per
 * thread: the compressor's state and the inflater are allocated on first
 * use and reused. Internal to the library. */
#ifndef TS_CORE_ZSTREAM_H
#define TS_CORE_ZSTREAM_H

#include <stddef.h>
#include <stdint.h>

/* ISA-L's compression level tessera writes (it has 0 to 3; 1 is its
 * fast one, within 0.3-1.2% of libdeflate's level 4 in size on images). HDF5 datasets record it
 * as their deflate filter's level. */
#define TS_ZLEVEL 1

typedef struct ts_zstream {
  struct isal_zstream *c;
  unsigned char *level_buf;
  struct inflate_state *d;
} ts_zstream;

/* Upper bound of the compressed size of n bytes (stored blocks, at worst). */
size_t ts_zbound(size_t n);
/* Compress src[0..n) into dst (cap bytes, at least ts_zbound(n)) at
 * deflate `level`: -1 (the default) and 1 through ISA-L's fast level, 0
 * and 2..9 through zlib's levels (stored, or smaller and slower). The
 * stream's size, or 0 when out of memory or it does not fit. */
size_t ts_zcompress(ts_zstream *z, int level, const void *src, size_t n, void *dst, size_t cap);
/* The same as a gzip stream (fixed header: no name, no time; Zarr v3's gzip codec). */
size_t ts_gzcompress(ts_zstream *z, int level, const void *src, size_t n, void *dst, size_t cap);
/* The deflate level a stream of ts_zcompress(level) was made at, as HDF5
 * records it. */
int ts_zlevel(int level);
/* Inflate exactly `n` bytes from src[0..size); 0 on success, -1 when the
 * stream is corrupt (its Adler-32 included) or inflates to another size. */
int ts_zdecompress(ts_zstream *z, const void *src, size_t size, void *dst, size_t n);
void ts_zstream_free(ts_zstream *z);
/* CRC-32 (zlib's and gzip's), continuing from crc (0 to start). */
uint32_t ts_crc32_update(uint32_t crc, const void *p, size_t n);

#endif
