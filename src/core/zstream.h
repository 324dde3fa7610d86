/* Compressed streams: zlib's (TIFF's, HDF5's, PNG's and Zarr's deflate)
 * and zstd frames for bytes after a predictor (TIFF's tiles).
 *
 * zlib streams are written by libdeflate's LZ77 (ts_zcompress; level 1
 * by default) or, for bytes after a predictor or filter, by default as
 * literals and runs (ts_zcompress_filtered, core/runs.h: faster and
 * there about as small as LZ77's level 6; on unfiltered pixels LZ77
 * wins: 34% of the input against 85% on the benchmark's tiles), and read
 * by ISA-L's igzip, which inflates 10-20% faster than the others. ISA-L
 * does not write any more: 2.30's deflate was not a function of the
 * input alone (the same tile compressed in the same process came out as
 * another valid tokenisation depending on the stream and buffer it was
 * handed), so one run in 50 wrote other bytes, against tessera's
 * byte-identical outputs (tests/tiling:
 * test_deflate_output_identical_run_to_run). One ts_zstream (and one
 * ts_zstd) per thread: allocated on first use and reused. Internal to
 * the library. */
#ifndef TS_CORE_ZSTREAM_H
#define TS_CORE_ZSTREAM_H

#include <stddef.h>
#include <stdint.h>

/* The deflate level tessera writes by default (libdeflate's fastest);
 * HDF5 datasets and Zarr arrays record it as their filter's level. */
#define TS_ZLEVEL 1

typedef struct ts_zstream {
  struct libdeflate_compressor *lc; /* at level lc_level */
  int lc_level;
  struct inflate_state *d;
} ts_zstream;

/* Upper bound of the compressed size of n bytes (stored blocks, at worst). */
size_t ts_zbound(size_t n);
/* Compress src[0..n) into dst (cap bytes, at least ts_zbound(n)) at
 * deflate `level` 0..9 (-1: TS_ZLEVEL; 0 stores), libdeflate's. The
 * bytes are a function of the input and the level alone. The stream's
 * size, or 0 when out of memory or it does not fit. */
size_t ts_zcompress(ts_zstream *z, int level, const void *src, size_t n, void *dst, size_t cap);
/* The same for bytes after a predictor or filter: by default (level < 0)
 * literals and runs (core/runs.h); a level given, as ts_zcompress. */
size_t ts_zcompress_filtered(ts_zstream *z, int level, const void *src, size_t n, void *dst, size_t cap);
/* The same as a gzip stream (no name, no time; Zarr v3's gzip codec). */
size_t ts_gzcompress(ts_zstream *z, int level, const void *src, size_t n, void *dst, size_t cap);
/* The deflate level a stream of ts_zcompress(level) was made at, as HDF5
 * records it. */
int ts_zlevel(int level);
/* Inflate exactly `n` bytes from src[0..size); 0 on success, -1 when the
 * stream is corrupt (its Adler-32 included) or inflates to another size. */
int ts_zdecompress(ts_zstream *z, const void *src, size_t size, void *dst, size_t n);
void ts_zstream_free(ts_zstream *z);

/* A zstd frame of bytes after a predictor (bound: ZSTD_compressBound):
 * by default (level < 0) the literals and runs through zstd's entropy
 * coder (ZSTD_compressSequences), a level given zstd's own. The frame
 * holds its content size. The size, or 0 when out of memory or it does
 * not fit. */
typedef struct ts_zstd {
  void *c;   /* ZSTD_CCtx */
  void *buf; /* the sequences, and the runs behind them */
  size_t cap;
} ts_zstd;
size_t ts_zstd_filtered(ts_zstd *z, int level, const void *src, size_t n, void *dst, size_t cap);
void ts_zstd_free(ts_zstd *z);
/* CRC-32 (zlib's and gzip's), continuing from crc (0 to start). */
uint32_t ts_crc32_update(uint32_t crc, const void *p, size_t n);

#endif
