/* Zarr chunks' compressors and the metadata's words for them and for
 * element types (zarr.h). zlib chunks go through tessera's zlib streams
 * (libdeflate's level 1 by default), zstd through one context per thread,
 * Blosc through c-blosc's context calls (no global state, one internal
 * thread: tessera's own threads run in parallel). */
#include <blosc.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>
#include "io/zarr.h"

#define ZSTD_DEFAULT 3  /* as TIFF's zstd tiles (tiff_util.h) */
/* Blosc's clevel by default: numcodecs' 5 for LZ4 (its level changes
 * little there); 3 for zstd, which c-blosc maps to zstd level 5 (5 to 9):
 * measured on a 16384^2 u8 gaussian pyramid, 3.2 s and 142 MB against
 * 5.8 s and 138 MB at 5 (bench/bench_zarr.py's job, 2 cores). */
#define BLOSC_LZ4_DEFAULT 5
#define BLOSC_ZSTD_DEFAULT 3

ts_status ts_zarr_codec_for(ts_compression c, int level, ts_dtype dtype, ts_zarr_codec *z, const char *path,
                            ts_error *err) {
  memset(z, 0, sizeof *z);
  z->typesize = (int)ts_dtype_size(dtype);
  switch (c) {
  case TS_COMPRESS_NONE: z->kind = TS_ZC_NONE; return TS_OK;
  case TS_COMPRESS_DEFLATE: z->kind = TS_ZC_ZLIB; z->level = level; return TS_OK; /* -1: TS_ZLEVEL */
  case TS_COMPRESS_ZSTD: z->kind = TS_ZC_ZSTD; z->level = level < 0 ? ZSTD_DEFAULT : level; return TS_OK;
  case TS_COMPRESS_BLOSC_LZ4:
  case TS_COMPRESS_BLOSC_ZSTD:
    z->kind = TS_ZC_BLOSC;
    z->level = level >= 0 ? level : c == TS_COMPRESS_BLOSC_LZ4 ? BLOSC_LZ4_DEFAULT : BLOSC_ZSTD_DEFAULT;
    strcpy(z->cname, c == TS_COMPRESS_BLOSC_LZ4 ? "lz4" : "zstd");
    z->shuffle = 1;
    return TS_OK;
  default:
    return ts_fail(err, TS_ERR_USAGE, "%s: Zarr output takes --compression none, zlib (deflate), zstd, blosc-lz4 or "
                   "blosc-zstd, not %s", path, ts_compression_name(c));
  }
}

void ts_zarr_state_free(ts_zarr_state *s) {
  ts_zstream_free(&s->z);
  ZSTD_freeCCtx(s->zstd_c);
  ZSTD_freeDCtx(s->zstd_d);
  memset(s, 0, sizeof *s);
}

size_t ts_zarr_bound(const ts_zarr_codec *z, size_t n) {
  switch (z->kind) {
  case TS_ZC_ZLIB:
  case TS_ZC_GZIP: return ts_zbound(n) + 18;
  case TS_ZC_ZSTD: return ZSTD_compressBound(n);
  case TS_ZC_BLOSC: return n + BLOSC_MAX_OVERHEAD;
  default: return n;
  }
}

size_t ts_zarr_encode(const ts_zarr_codec *z, ts_zarr_state *s, const void *src, size_t n, void *dst, size_t cap) {
  switch (z->kind) {
  case TS_ZC_ZLIB: return ts_zcompress(&s->z, z->level, src, n, dst, cap);
  case TS_ZC_GZIP: return ts_gzcompress(&s->z, z->level, src, n, dst, cap);
  case TS_ZC_ZSTD: {
    if (!s->zstd_c && !(s->zstd_c = ZSTD_createCCtx())) return 0;
    size_t r = ZSTD_compressCCtx(s->zstd_c, dst, cap, src, n, z->level); /* the frame holds its content size */
    return ZSTD_isError(r) ? 0 : r;
  }
  case TS_ZC_BLOSC: {
    if (n > BLOSC_MAX_BUFFERSIZE) return 0;
    int r = blosc_compress_ctx(z->level, z->shuffle, (size_t)z->typesize, n, src, dst, cap, z->cname, 0, 1);
    return r > 0 ? (size_t)r : 0;
  }
  default: return 0;
  }
}

static int gunzip(const void *src, size_t size, void *dst, size_t n) {
  z_stream zs = {0};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) return -1;
  zs.next_in = (Bytef *)src;
  zs.avail_in = (uInt)size;
  zs.next_out = dst;
  zs.avail_out = (uInt)n;
  int r = size <= UINT32_MAX && n <= UINT32_MAX ? inflate(&zs, Z_FINISH) : Z_DATA_ERROR;
  const int ok = r == Z_STREAM_END && zs.total_out == n;
  inflateEnd(&zs);
  return ok ? 0 : -1;
}

int ts_zarr_decode(const ts_zarr_codec *z, ts_zarr_state *s, const void *src, size_t size, void *dst, size_t n) {
  switch (z->kind) {
  case TS_ZC_NONE:
    if (size != n) return -1;
    memcpy(dst, src, n);
    return 0;
  case TS_ZC_ZLIB: return ts_zdecompress(&s->z, src, size, dst, n);
  case TS_ZC_GZIP: return gunzip(src, size, dst, n);
  case TS_ZC_ZSTD: {
    if (!s->zstd_d && !(s->zstd_d = ZSTD_createDCtx())) return -1;
    unsigned long long want = ZSTD_getFrameContentSize(src, size);
    if (want != ZSTD_CONTENTSIZE_UNKNOWN && want != n) return -1;
    size_t r = ZSTD_decompressDCtx(s->zstd_d, dst, n, src, size);
    return !ZSTD_isError(r) && r == n ? 0 : -1;
  }
  case TS_ZC_BLOSC: {
    size_t nbytes = 0;
    if (size > BLOSC_MAX_BUFFERSIZE || blosc_cbuffer_validate(src, size, &nbytes) != 0 || nbytes != n) return -1;
    return blosc_decompress_ctx(src, dst, n, 1) == (int)n ? 0 : -1;
  }
  }
  return -1;
}

/* ---- metadata ---- */

json_t *ts_zarr_compressor_v2(const ts_zarr_codec *z) {
  switch (z->kind) {
  case TS_ZC_ZLIB: return json_pack("{s:s, s:i}", "id", "zlib", "level", ts_zlevel(z->level));
  case TS_ZC_ZSTD: return json_pack("{s:s, s:i}", "id", "zstd", "level", z->level);
  case TS_ZC_BLOSC:
    return json_pack("{s:s, s:s, s:i, s:i, s:i}", "id", "blosc", "cname", z->cname, "clevel", z->level, "shuffle",
                     z->shuffle, "blocksize", 0);
  default: return json_null();
  }
}

json_t *ts_zarr_codecs_v3(const ts_zarr_codec *z) {
  json_t *a = json_array();
  json_array_append_new(a, json_pack("{s:s, s:{s:s}}", "name", "bytes", "configuration", "endian", "little"));
  json_t *c = NULL;
  switch (z->kind) {
  case TS_ZC_ZLIB:
  case TS_ZC_GZIP: c = json_pack("{s:s, s:{s:i}}", "name", "gzip", "configuration", "level", ts_zlevel(z->level)); break;
  case TS_ZC_ZSTD:
    c = json_pack("{s:s, s:{s:i, s:b}}", "name", "zstd", "configuration", "level", z->level, "checksum", 0);
    break;
  case TS_ZC_BLOSC:
    c = json_pack("{s:s, s:{s:s, s:i, s:s, s:i, s:i}}", "name", "blosc", "configuration", "cname", z->cname, "clevel",
                  z->level, "shuffle", z->shuffle == 1 ? "shuffle" : z->shuffle == 2 ? "bitshuffle" : "noshuffle",
                  "typesize", z->typesize, "blocksize", 0);
    break;
  default: break;
  }
  if (c) json_array_append_new(a, c);
  return a;
}

static ts_status unknown(const char *id, const char *what, ts_error *err) {
  return ts_fail(err, TS_ERR_FORMAT, "%s: compressor '%s' is not one tessera reads (none, zlib, gzip, zstd, blosc)",
                 what, id ? id : "?");
}

ts_status ts_zarr_parse_v2(const json_t *compressor, int typesize, ts_zarr_codec *z, const char *what, ts_error *err) {
  memset(z, 0, sizeof *z);
  z->typesize = typesize;
  if (!compressor || json_is_null(compressor)) return TS_OK;
  const char *id = json_string_value(json_object_get(compressor, "id"));
  if (!id) return ts_fail(err, TS_ERR_FORMAT, "%s: compressor without an \"id\"", what);
  if (strcmp(id, "zlib") == 0) z->kind = TS_ZC_ZLIB;
  else if (strcmp(id, "gzip") == 0) z->kind = TS_ZC_GZIP;
  else if (strcmp(id, "zstd") == 0) z->kind = TS_ZC_ZSTD;
  else if (strcmp(id, "blosc") == 0) z->kind = TS_ZC_BLOSC; /* the chunk's header says the rest */
  else return unknown(id, what, err);
  return TS_OK;
}

ts_status ts_zarr_parse_v3(const json_t *codec, int typesize, ts_zarr_codec *z, const char *what, ts_error *err) {
  memset(z, 0, sizeof *z);
  z->typesize = typesize;
  const char *id = json_string_value(json_object_get(codec, "name"));
  if (!id) return ts_fail(err, TS_ERR_FORMAT, "%s: a codec without a \"name\"", what);
  if (strcmp(id, "gzip") == 0) z->kind = TS_ZC_GZIP;
  else if (strcmp(id, "zlib") == 0) z->kind = TS_ZC_ZLIB;
  else if (strcmp(id, "zstd") == 0) z->kind = TS_ZC_ZSTD;
  else if (strcmp(id, "blosc") == 0) z->kind = TS_ZC_BLOSC;
  else return unknown(id, what, err);
  return TS_OK;
}

static const char *const v2_types[] = {"|u1", "<u2", "<f4"}, *const v3_types[] = {"uint8", "uint16", "float32"};

const char *ts_zarr_dtype_v2(ts_dtype d) { return v2_types[d]; }
const char *ts_zarr_dtype_v3(ts_dtype d) { return v3_types[d]; }

int ts_zarr_parse_dtype_v2(const char *s, ts_dtype *d, int *big) {
  *big = 0;
  if (!s) return -1;
  if (strcmp(s, "|u1") == 0 || strcmp(s, "<u1") == 0 || strcmp(s, ">u1") == 0) return *d = TS_U8, 0;
  if (strcmp(s, "<u2") == 0 || strcmp(s, ">u2") == 0) return *d = TS_U16, *big = s[0] == '>', 0;
  if (strcmp(s, "<f4") == 0 || strcmp(s, ">f4") == 0) return *d = TS_F32, *big = s[0] == '>', 0;
  return -1;
}

int ts_zarr_parse_dtype_v3(const char *s, ts_dtype *d) {
  for (int i = 0; s && i < TS_DTYPE_COUNT; i++)
    if (strcmp(s, v3_types[i]) == 0) return *d = (ts_dtype)i, 0;
  return -1;
}

ts_status ts_zarr_put_json(int dirfd, const char *name, const json_t *doc, const char *store, ts_error *err) {
  char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
  if (!text) return ts_fail(err, TS_ERR_NOMEM, "out of memory for %s/%s", store, name);
  const size_t n = strlen(text);
  text[n] = '\n'; /* json_dumps's terminator, now the last line's end */
  int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  int ok = fd >= 0 && write(fd, text, n + 1) == (ssize_t)(n + 1);
  int e = errno;
  if (fd >= 0 && close(fd) != 0) ok = 0;
  free(text);
  return ok ? TS_OK : ts_fail(err, TS_ERR_IO, "%s/%s: cannot write: %s", store, name, strerror(e));
}

uint32_t ts_crc32c(const void *p, size_t n) {
  static uint32_t table[256];
  static int ready;
  if (!ready) { /* reflected Castagnoli polynomial; the same table on every thread */
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
      table[i] = c;
    }
    ready = 1;
  }
  const unsigned char *b = p;
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) c = table[(c ^ b[i]) & 0xff] ^ (c >> 8);
  return ~c;
}
