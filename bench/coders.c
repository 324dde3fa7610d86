/* The coders of compressed TIFF tiles, one core, on the same tiles:
 * tessera's literals and runs (src/core/runs.c) as deflate and through
 * zstd's entropy coder, against the LZ77 coders at the levels people
 * use: ISA-L 1, libdeflate 1, zstd 3 and zlib 6 (libtiff's default).
 * Every stream is decoded back (zlib's inflate, zstd) and compared with
 * its tile before it counts. bench/bench_pyramid.py --coders writes the
 * tiles (the benchmark's blurred image after TIFF's horizontal
 * predictor, 256 x 256 u8 tiles) and runs it.
 *
 *   cc -O2 -Isrc bench/coders.c src/core/zstream.c src/core/runs.c -lisal -ldeflate -lzstd -lz -o coders
 *   coders TILES TILE_BYTES [REPEAT]
 * prints one line per coder: its name, MB/s of input (best of REPEAT
 * passes over every tile, default 5, the coders in turns), the output as
 * % of the input, and how many times faster tessera's coder of the same
 * format is (deflate's for the deflate coders, zstd's for zstd's). */
#include <isa-l/igzip_lib.h>
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>
#include <zstd.h>
#include "core/runs.h"
#include "core/zstream.h"

enum { TESSERA_DEFLATE, TESSERA_ZSTD, ISAL_1, LIBDEFLATE_1, ZSTD_3, ZLIB_6, NCODERS };
static const char *const names[NCODERS] = {"tessera deflate (literals and runs)",
                                           "tessera zstd (the runs, zstd's entropy coder)",
                                           "ISA-L level 1",
                                           "libdeflate level 1",
                                           "zstd level 3",
                                           "zlib level 6 (libtiff's default)"};

typedef struct coders {
  ts_zstd ts;
  struct libdeflate_compressor *ld;
  ZSTD_CCtx *zc;
  struct isal_zstream isal;
  unsigned char *isal_level;
  z_stream zl; /* set up once and reset per tile, as libtiff does per tile */
} coders;

/* Tile src[0..n) coded by coder c into dst (cap bytes): the size, or 0. */
static size_t code(coders *k, int c, const unsigned char *src, size_t n, unsigned char *dst, size_t cap) {
  switch (c) {
  case TESSERA_DEFLATE: return ts_deflate_runs(src, n, dst, cap);
  case TESSERA_ZSTD: return ts_zstd_filtered(&k->ts, -1, src, n, dst, cap);
  case ISAL_1:
    isal_deflate_stateless_init(&k->isal);
    k->isal.level = 1, k->isal.level_buf = k->isal_level, k->isal.level_buf_size = ISAL_DEF_LVL1_DEFAULT;
    k->isal.next_in = (unsigned char *)src, k->isal.avail_in = (uint32_t)n, k->isal.end_of_stream = 1;
    k->isal.next_out = dst, k->isal.avail_out = (uint32_t)cap;
    return isal_deflate_stateless(&k->isal) == COMP_OK ? k->isal.total_out : 0;
  case LIBDEFLATE_1: return libdeflate_deflate_compress(k->ld, src, n, dst, cap);
  case ZSTD_3: {
    const size_t r = ZSTD_compressCCtx(k->zc, dst, cap, src, n, 3);
    return ZSTD_isError(r) ? 0 : r;
  }
  default:
    if (deflateReset(&k->zl) != Z_OK) return 0;
    k->zl.next_in = (unsigned char *)src, k->zl.avail_in = (uInt)n, k->zl.next_out = dst, k->zl.avail_out = (uInt)cap;
    return deflate(&k->zl, Z_FINISH) == Z_STREAM_END ? k->zl.total_out : 0;
  }
}

/* The stream decodes to the tile exactly. */
static int decodes_to(int c, const unsigned char *z, size_t k, const unsigned char *want, size_t n, unsigned char *back) {
  if (c == TESSERA_ZSTD || c == ZSTD_3) return ZSTD_decompress(back, n, z, k) == n && memcmp(back, want, n) == 0;
  z_stream s = {0};
  if (inflateInit2(&s, -15) != Z_OK) return 0;
  s.next_in = (unsigned char *)z, s.avail_in = (uInt)k, s.next_out = back, s.avail_out = (uInt)n;
  const int ok = inflate(&s, Z_FINISH) == Z_STREAM_END && s.total_out == n && memcmp(back, want, n) == 0;
  inflateEnd(&s);
  return ok;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: coders TILES TILE_BYTES [REPEAT]\n");
    return 2;
  }
  FILE *f = fopen(argv[1], "rb");
  const size_t tile = strtoul(argv[2], NULL, 10);
  const int repeat = argc > 3 ? atoi(argv[3]) : 5;
  if (!f) {
    fprintf(stderr, "coders: cannot read %s\n", argv[1]);
    return 1;
  }
  if (!tile || repeat < 1) {
    fprintf(stderr, "coders: TILE_BYTES and REPEAT must be positive numbers\n");
    return 2;
  }
  fseek(f, 0, SEEK_END);
  const size_t n = (size_t)ftell(f) / tile * tile;
  fseek(f, 0, SEEK_SET);
  unsigned char *in = malloc(n);
  if (!n || !in || fread(in, 1, n, f) != n) {
    fprintf(stderr, "coders: %s holds no whole tile of %zu bytes\n", argv[1], tile);
    return 1;
  }
  fclose(f);
  const size_t cap = ZSTD_compressBound(tile) + TS_RUNS_BOUND(tile); /* more than any coder's bound */
  unsigned char *out = malloc(cap), *back = malloc(tile);
  coders k = {.ld = libdeflate_alloc_compressor(1), .zc = ZSTD_createCCtx(), .isal_level = malloc(ISAL_DEF_LVL1_DEFAULT)};
  if (!k.ld || !k.zc || !k.isal_level || deflateInit2(&k.zl, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    fprintf(stderr, "coders: out of memory\n");
    return 1;
  }
  int bad = 0;
  size_t total[NCODERS] = {0};
  for (int c = 0; c < NCODERS; c++)
    for (size_t at = 0; at < n; at += tile) { /* checked once, untimed */
      const size_t got = code(&k, c, in + at, tile, out, cap);
      if (!got || !decodes_to(c, out, got, in + at, tile, back)) {
        fprintf(stderr, "coders: %s: the tile at byte %zu does not decode to itself\n", names[c], at);
        bad = 1;
        break;
      }
      total[c] += got;
    }
  double best[NCODERS];
  for (int c = 0; c < NCODERS; c++) best[c] = 1e30;
  for (int r = 0; r < repeat; r++) /* in turns: a drift of the machine's speed reaches every coder alike */
    for (int c = 0; c < NCODERS; c++) {
      const double t0 = now();
      for (size_t at = 0; at < n; at += tile) code(&k, c, in + at, tile, out, cap);
      const double s = now() - t0;
      best[c] = s < best[c] ? s : best[c];
    }
  printf("%-46s %9s %8s %14s\n", "coder", "MB/s", "% input", "tessera's x");
  for (int c = 0; c < NCODERS; c++)
    printf("%-46s %9.0f %7.1f%% %13.2fx\n", names[c], (double)n / best[c] / 1e6, 100.0 * (double)total[c] / (double)n,
           best[c] / best[c == TESSERA_ZSTD || c == ZSTD_3 ? TESSERA_ZSTD : TESSERA_DEFLATE]);
  return bad;
}
