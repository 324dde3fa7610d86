/* zlib streams: written by libdeflate, read by ISA-L; see zstream.h. */
#include "core/zstream.h"
#include <isa-l/crc.h>
#include <isa-l/igzip_lib.h>
#include <libdeflate.h>
#include <stdlib.h>
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
  /* libdeflate's worst case for any level (stored blocks), with the
   * zlib wrapper's 6 bytes and 12 to spare (gzip's is 18) */
  return libdeflate_zlib_compress_bound(NULL, n) + 12;
}

int ts_zlevel(int level) { return level < 0 ? TS_ZLEVEL : level; }

/* The thread's compressor for `level` (libdeflate builds one per level; a
 * job writes one level, so it is built once). */
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
