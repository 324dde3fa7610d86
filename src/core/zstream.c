/* zlib streams through ISA-L; see zstream.h. */
#include "core/zstream.h"
#include <isa-l/crc.h>
#include <isa-l/igzip_lib.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
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
  /* ISA-L falls back to stored blocks (5 bytes per at most 64 KiB; counted
   * here per 16 KiB, to spare) when coding would expand; the zlib header
   * and trailer are 6 bytes; a dynamic block header at most
   * ISAL_DEF_MAX_HDR_SIZE */
  return n + 5 * (n / 16384 + 1) + 6 + ISAL_DEF_MAX_HDR_SIZE;
}

int ts_zlevel(int level) { return level < 0 ? TS_ZLEVEL : level; }

/* zlib's own levels, into a zlib or a gzip stream */
static size_t zlib_level(int level, int gzip, const void *src, size_t n, void *dst, size_t cap) {
  if (!gzip) {
    uLongf got = (uLongf)cap;
    return compress2(dst, &got, src, (uLong)n, level) == Z_OK ? (size_t)got : 0;
  }
  z_stream zs = {0};
  if (n > UINT32_MAX || cap > UINT32_MAX || deflateInit2(&zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return 0;
  zs.next_in = (Bytef *)src;
  zs.avail_in = (uInt)n;
  zs.next_out = dst;
  zs.avail_out = (uInt)cap;
  const int r = deflate(&zs, Z_FINISH);
  const size_t got = zs.total_out;
  deflateEnd(&zs);
  return r == Z_STREAM_END ? got : 0;
}

static size_t compress_as(ts_zstream *z, int level, int gzip, const void *src, size_t n, void *dst, size_t cap) {
  if (level >= 0 && level != 1) return zlib_level(level, gzip, src, n, dst, cap);
  if (!z->c) {
    z->c = calloc(1, sizeof *z->c); /* ISA-L 2.30 reads a field its init leaves unset */
    z->level_buf = malloc(ISAL_DEF_LVL1_DEFAULT);
    if (!z->c || !z->level_buf) {
      ts_zstream_free(z);
      return 0;
    }
  }
  if (n > UINT32_MAX || cap > UINT32_MAX) return 0;
  struct isal_zstream *s = z->c;
  isal_deflate_stateless_init(s);
  s->level = TS_ZLEVEL;
  s->level_buf = z->level_buf;
  s->level_buf_size = ISAL_DEF_LVL1_DEFAULT;
  s->gzip_flag = gzip ? IGZIP_GZIP_NO_HDR : IGZIP_ZLIB;
  s->end_of_stream = 1;
  s->flush = NO_FLUSH;
  s->next_in = (uint8_t *)src;
  s->avail_in = (uint32_t)n;
  s->next_out = dst;
  s->avail_out = (uint32_t)cap;
  /* gzip: a fixed header (no name, no time), the same bytes every run */
  static const unsigned char head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
  if (gzip && cap < sizeof head) return 0;
  if (gzip) memcpy(dst, head, sizeof head), s->next_out += sizeof head, s->avail_out -= sizeof head;
  const int r = isal_deflate_stateless(s);
  clean_upper();
  return r == COMP_OK ? (size_t)s->total_out + (gzip ? sizeof head : 0) : 0;
}

size_t ts_zcompress(ts_zstream *z, int level, const void *src, size_t n, void *dst, size_t cap) {
  return compress_as(z, level, 0, src, n, dst, cap);
}

size_t ts_gzcompress(ts_zstream *z, int level, const void *src, size_t n, void *dst, size_t cap) {
  return compress_as(z, level, 1, src, n, dst, cap);
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
  free(z->c);
  free(z->level_buf);
  free(z->d);
  z->c = NULL;
  z->level_buf = NULL;
  z->d = NULL;
}

uint32_t ts_crc32_update(uint32_t crc, const void *p, size_t n) {
  crc = crc32_gzip_refl(crc, p, (uint64_t)n);
  clean_upper();
  return crc;
}
