/* zlib streams: written by ts_deflate_runs or libdeflate, read by ISA-L; see zstream.h. */
#include "core/zstream.h"
#include <isa-l/crc.h>
#include <isa-l/igzip_lib.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_compressSequences: in zstd 1.5 since 1.5.0, exported */
#include <libdeflate.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include "core/runs.h"
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

/* ISA-L's AVX2 and AVX-512 routines can return with the upper halves of
 * the vector registers dirty; the SSE code compiled around them (the
 * kernels: tessera builds for baseline x86-64) then pays a merge on
 * every instruction that writes an xmm register. Measured here: the
 * resize kernel ran 3x slower after an ISA-L call until vzeroupper. */
#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx"))) static void clean_upper_avx(void) { _mm256_zeroupper(); }
static void clean_upper(void) {
  if (__builtin_cpu_supports("avx")) clean_upper_avx();
}
#else
static void clean_upper(void) {}
#endif

size_t ts_zbound(size_t n) {
  /* the larger writer's worst case (stored blocks), and gzip's wrapper
   * (18 bytes; zlib's is 6) */
  const size_t a = libdeflate_zlib_compress_bound(NULL, n), b = TS_RUNS_BOUND(n);
  return (a > b ? a : b) + 18;
}

int ts_zlevel(int level) { return level < 0 ? TS_ZLEVEL : level; }

/* The thread's libdeflate compressor for `level` (one per level; a job
 * writes one level, so it is built once). */
static struct libdeflate_compressor *compressor(ts_zstream *z, int level) {
  if (z->lc && z->lc_level == level) return z->lc;
  libdeflate_free_compressor(z->lc);
  z->lc = libdeflate_alloc_compressor(level);
  z->lc_level = level;
  return z->lc;
}

size_t ts_zcompress(ts_zstream *z, int level, const void *src, size_t n, void *dst, size_t cap) {
  struct libdeflate_compressor *c = compressor(z, ts_zlevel(level));
  return c ? libdeflate_zlib_compress(c, src, n, dst, cap) : 0;
}

size_t ts_gzcompress(ts_zstream *z, int level, const void *src, size_t n, void *dst, size_t cap) {
  struct libdeflate_compressor *c = compressor(z, ts_zlevel(level));
  return c ? libdeflate_gzip_compress(c, src, n, dst, cap) : 0;
}

size_t ts_zcompress_filtered(ts_zstream *z, int level, const void *src, size_t n, void *dst, size_t cap) {
  if (level >= 0) return ts_zcompress(z, level, src, n, dst, cap);
  unsigned char *out = dst; /* CMF 0x78 (deflate, 32 KiB window), FLG 0x01 (fastest; a multiple of 31) */
  if (cap < 6) return 0;
  const size_t k = ts_deflate_runs(src, n, out + 2, cap - 6);
  if (!k) return 0;
  const uint32_t a = libdeflate_adler32(1, src, n);
  out[0] = 0x78, out[1] = 0x01;
  out[k + 2] = (unsigned char)(a >> 24), out[k + 3] = (unsigned char)(a >> 16);
  out[k + 4] = (unsigned char)(a >> 8), out[k + 5] = (unsigned char)a;
  return k + 6;
}

size_t ts_zstd_filtered(ts_zstd *z, int level, const void *src, size_t n, void *dst, size_t cap) {
  if (!z->c && !(z->c = ZSTD_createCCtx())) return 0;
  if (level >= 0 || n > UINT32_MAX) { /* zstd's own level (resetting any parameter set before) */
    const size_t r = ZSTD_compressCCtx(z->c, dst, cap, src, n, level >= 0 ? level : ZSTD_CLEVEL_DEFAULT);
    return ZSTD_isError(r) ? 0 : r;
  }
  /* the runs as sequences (a literal, then a match at distance 1); the
   * runs are found into the back of the same buffer */
  const size_t most = n / TS_RUN_MIN + 1, need = most * (sizeof(ZSTD_Sequence) + sizeof(ts_run));
  if (z->cap < need) {
    free(z->buf);
    z->cap = 0;
    if (!(z->buf = malloc(need))) return 0;
    z->cap = need;
  }
  ZSTD_Sequence *seq = z->buf;
  ts_run *runs = (ts_run *)(seq + most);
  const size_t k = ts_find_runs(src, n, runs, most);
  size_t at = 0;
  for (size_t i = 0; i < k; i++) {
    seq[i] = (ZSTD_Sequence){1, (unsigned)(runs[i].at + 1 - at), runs[i].len - 1, 0};
    at = runs[i].at + runs[i].len;
  }
  ZSTD_CCtx_reset(z->c, ZSTD_reset_session_and_parameters);
  if (ZSTD_isError(ZSTD_CCtx_setParameter(z->c, ZSTD_c_compressionLevel, 1)) ||
      ZSTD_isError(ZSTD_CCtx_setParameter(z->c, ZSTD_c_blockDelimiters, ZSTD_sf_noBlockDelimiters)))
    return 0;
  const size_t r = ZSTD_compressSequences(z->c, dst, cap, seq, k, src, n);
  return ZSTD_isError(r) ? 0 : r;
}

void ts_zstd_free(ts_zstd *z) {
  ZSTD_freeCCtx(z->c);
  free(z->buf);
  memset(z, 0, sizeof *z);
}

int ts_zdecompress(ts_zstream *z, const void *src, size_t size, void *dst, size_t n) {
  if (!z->d && !(z->d = malloc(sizeof *z->d))) return -1;
  if (size > UINT32_MAX || n > UINT32_MAX) return -1;
  struct inflate_state *s = z->d;
  isal_inflate_init(s);
  s->crc_flag = ISAL_ZLIB; /* the zlib header, and the Adler-32 checked */
  s->next_in = (uint8_t *)src;
  s->avail_in = (uint32_t)size;
  s->next_out = dst;
  s->avail_out = (uint32_t)n;
  const int r = isal_inflate_stateless(s);
  clean_upper();
  return r == ISAL_DECOMP_OK && s->block_state == ISAL_BLOCK_FINISH && s->total_out == n ? 0 : -1;
}

void ts_zstream_free(ts_zstream *z) {
  libdeflate_free_compressor(z->lc);
  free(z->d);
  z->lc = NULL;
  z->d = NULL;
}

uint32_t ts_crc32_update(uint32_t crc, const void *p, size_t n) {
  crc = crc32_gzip_refl(crc, p, (uint64_t)n);
  clean_upper();
  return crc;
}
