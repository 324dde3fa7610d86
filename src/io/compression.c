/* The names of the output compressions and layouts, shared by every writer. */
#include <string.h>
#include "core/params.h"
#include "tessera/io.h"

static const char *const compression_names[] = {"none", "deflate", "lzw", "zstd", "jpeg", "blosc-lz4", "blosc-zstd"};

ts_status ts_compression_parse(const char *s, ts_compression *out) {
  if (strcmp(s, "zlib") == 0) s = "deflate";
  const int i = ts_name_index(compression_names, sizeof compression_names / sizeof *compression_names, s);
  if (i >= 0) *out = (ts_compression)i;
  return i >= 0 ? TS_OK : TS_ERR_USAGE;
}

const char *ts_compression_name(ts_compression c) {
  return (unsigned)c < sizeof compression_names / sizeof *compression_names ? compression_names[c] : "?";
}

ts_status ts_compression_level_check(ts_compression c, int deflated, int level, ts_error *err) {
  if (level < 0) return TS_OK; /* the format's default */
  if (deflated || c == TS_COMPRESS_DEFLATE)
    return level <= 9 ? TS_OK : ts_fail(err, TS_ERR_USAGE, "--compression-level %d: deflate takes 0 to 9", level);
  if (c == TS_COMPRESS_ZSTD)
    return level >= 1 && level <= 22 ? TS_OK
                                     : ts_fail(err, TS_ERR_USAGE, "--compression-level %d: zstd takes 1 to 22", level);
  if (c == TS_COMPRESS_BLOSC_LZ4 || c == TS_COMPRESS_BLOSC_ZSTD)
    return level <= 9 ? TS_OK : ts_fail(err, TS_ERR_USAGE, "--compression-level %d: blosc takes 0 to 9", level);
  if (c == TS_COMPRESS_JPEG)
    return ts_fail(err, TS_ERR_USAGE, "--compression-level is for deflate and zstd; JPEG takes --jpeg-quality");
  return ts_fail(err, TS_ERR_USAGE, "--compression-level %d: --compression %s has no level (deflate, zstd and blosc do)",
                 level, ts_compression_name(c));
}

static const char *const layout_names[] = {"plain", "ome", "cog"};

ts_status ts_layout_parse(const char *s, ts_layout *out) {
  const int i = ts_name_index(layout_names, sizeof layout_names / sizeof *layout_names, s);
  if (i >= 0) *out = (ts_layout)i;
  return i >= 0 ? TS_OK : TS_ERR_USAGE;
}

const char *ts_layout_name(ts_layout l) {
  return (unsigned)l < sizeof layout_names / sizeof *layout_names ? layout_names[l] : "?";
}
