/* Literals and runs: images after a predictor (TIFF's) or a filter
 * (PNG's Sub) are mostly small differences, where LZ77's matches are
 * short, rare and cost more than they save, plus flat regions. So
 * tessera's fast codecs take every run of TS_RUN_MIN or more equal bytes
 * as a match at distance 1 and leave everything else to the entropy
 * coder: zlib's Z_RLE strategy without its short runs.
 *
 * On the pyramid benchmark's tiles (a blurred 16384^2 u8 image, 64 KiB
 * predicted tiles, one core; bench/bench_pyramid.py --coders): deflate
 * of literals and runs makes 753 MB/s and 22.6% of the input, where
 * LZ77 at its fastest made 219 MB/s and 25.4% (libdeflate 1) or 401
 * MB/s and 26.9% (ISA-L 1) and zlib's level 6 12 MB/s and 22.4%; the
 * same runs handed to zstd's entropy coder make 634 MB/s and 22.8%,
 * where zstd's level 3 made 261 MB/s and 24.7%. The bytes are a
 * function of the input alone. Internal to the library. */
#ifndef TS_CORE_RUNS_H
#define TS_CORE_RUNS_H

#include <stddef.h>
#include <stdint.h>

#define TS_RUN_MIN 16

/* A run of equal bytes: len (>= TS_RUN_MIN) bytes from at. */
typedef struct ts_run {
  uint32_t at, len;
} ts_run;

/* The runs of src[0..n) (n < 2^32), in order, at most cap of them (n /
 * TS_RUN_MIN + 1 always suffice). Every run of TS_RUN_MIN or more holds
 * an aligned 8-byte word of one value: it is found from the word (one
 * test per 8 bytes) and extended both ways. */
size_t ts_find_runs(const void *src, size_t n, ts_run *runs, size_t cap);

/* A raw deflate stream (RFC 1951) of literals and runs: one dynamic
 * Huffman block per TS_RUNS_BLOCK bytes of input, a stored one where
 * that is not larger. */
#define TS_RUNS_BLOCK 65536
/* Stored blocks at worst (two per block of 65536: at most 65535 bytes
 * each, 5 bytes of header), and the 8 bytes the writer stores past its
 * last byte. */
#define TS_RUNS_BOUND(n) ((n) + 10 * ((n) / TS_RUNS_BLOCK + 1) + 8)

/* Deflate src[0..n) into dst (cap bytes; TS_RUNS_BOUND(n) always
 * suffice); the stream's size, or 0 when it does not fit. */
size_t ts_deflate_runs(const void *src, size_t n, void *dst, size_t cap);

#endif
