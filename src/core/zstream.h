/* zlib streams (TIFF's, HDF5's, PNG's and Zarr's deflate): written by
 * libdeflate, read by ISA-L's igzip.
 *
 * Writing: libdeflate's level 1 deflated these tiles at 216 MB/s (25.2%
 * of the input) where ISA-L's level 1 made 310 MB/s (26.8%), zlib's 71;
 * but ISA-L 2.30's streams are not a function of the input alone: the
 * same tile compressed in the same process gave a different (valid)
 * tokenisation depending on where its buffers lay, so one run in 50
 * wrote other bytes, which breaks tessera's byte-identical outputs
 * (tests/tiling: test_deflate_output_identical_run_to_run).
 * Reading: ISA-L inflates 10-20% faster than the others; inflating has
 * one answer. One ts_zstream per thread: the compressor and the inflater
 * are allocated on first use and reused. Internal to the library. */
#ifndef TS_CORE_ZSTREAM_H
#define TS_CORE_ZSTREAM_H

#include <stddef.h>
#include <stdint.h>

/* The deflate level tessera writes by default: libdeflate's fastest. HDF5
 * datasets and Zarr arrays record it as their deflate filter's level. */
#define TS_ZLEVEL 1

typedef struct ts_zstream {
  struct libdeflate_compressor *lc; /* at level lc_level */
  int lc_level;
  struct inflate_state *d;
} ts_zstream;

/* Upper bound of the compressed size of n bytes (stored blocks, at worst). */
size_t ts_zbound(size_t n);
/* Compress src[0..n) into dst (cap bytes, at least ts_zbound(n)) at
 * deflate `level` 0..9 (-1: TS_ZLEVEL; 0 stores), libdeflate's levels.
 * The bytes are a function of the input and the level alone. The
 * stream's size, or 0 when out of memory or it does not fit. */
size_t ts_zcompress(ts_zstream *z, int level, const void *src, size_t n, void *dst, size_t cap);
/* The same as a gzip stream (no name, no time; Zarr v3's gzip codec). */
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
