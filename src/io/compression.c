/* The names of the output compressions, shared by every writer. */
#include <string.h>
#include "tessera/io.h"

static const char *const compression_names[] = {"none", "deflate", "lzw", "zstd", "jpeg"};

ts_status ts_compression_parse(const char *s, ts_compression *out) {
  for (unsigned i = 0; i < sizeof compression_names / sizeof *compression_names; i++)
    if (strcmp(s, compression_names[i]) == 0) {
      *out = (ts_compression)i;
      return TS_OK;
    }
  return TS_ERR_USAGE;
}

const char *ts_compression_name(ts_compression c) {
  return (unsigned)c < sizeof compression_names / sizeof *compression_names ? compression_names[c] : "?";
}
