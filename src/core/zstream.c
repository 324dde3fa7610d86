/* zlib streams through libdeflate; see zstream.h. */
#include "core/zstream.h"
#include <libdeflate.h>

static int ready(ts_zstream *z) {
  if (!z->c) z->c = libdeflate_alloc_compressor(z->level > 0 ? z->level : 4);
  return z->c != NULL;
}

size_t ts_zbound(ts_zstream *z, size_t n) {
  return ready(z) ? libdeflate_zlib_compress_bound(z->c, n) : 0;
}

size_t ts_zcompress(ts_zstream *z, const void *src, size_t n, void *dst, size_t cap) {
  return ready(z) ? libdeflate_zlib_compress(z->c, src, n, dst, cap) : 0;
}

int ts_zdecompress(ts_zstream *z, const void *src, size_t size, void *dst, size_t n) {
  if (!z->d && !(z->d = libdeflate_alloc_decompressor())) return -1;
  size_t got = 0;
  return libdeflate_zlib_decompress(z->d, src, size, dst, n, &got) == LIBDEFLATE_SUCCESS && got == n ? 0 : -1;
}

void ts_zstream_free(ts_zstream *z) {
  if (z->c) libdeflate_free_compressor(z->c);
  if (z->d) libdeflate_free_decompressor(z->d);
  z->c = NULL;
  z->d = NULL;
}
