/* libtiff glue shared by the TIFF reader and writer. Internal to src/io. */
#ifndef TS_IO_TIFF_UTIL_H
#define TS_IO_TIFF_UTIL_H

#include <tiffio.h>
#include "tessera/image.h"

/* Open options whose error handler keeps the first libtiff error in
 * msg[512] (per handle, never global handlers) and drops warnings. Free
 * with TIFFOpenOptionsFree. */
TIFFOpenOptions *ts_tiff_options(char *msg);

/* A reader's libtiff messages: the first error, and the first warning
 * that means corrupt or truncated data (ts_tiff_warning_is_corrupt), which
 * the reader turns into an error. */
typedef struct ts_tiff_log {
  char error[512];
  char corrupt[512];
} ts_tiff_log;
TIFFOpenOptions *ts_tiff_read_options(ts_tiff_log *log);
int ts_tiff_warning_is_corrupt(const char *module, const char *text);

/* A growable in-memory file (an encoder's one-tile TIFF), or a read-only
 * view of a file's bytes (list mode decodes TIFFs sent by rank 0). */
typedef struct ts_membuf {
  unsigned char *p;
  uint64_t size, cap, pos;
  int readonly;
} ts_membuf;
TIFF *ts_tiff_mem_open(const char *name, const char *mode, ts_membuf *m, TIFFOpenOptions *opts);

/* The tags of one image, the same for the tiled writer and list mode's
 * whole-image encoder: size, samples, dtype, photometric, extra samples,
 * compression and, when level >= 0, its level (deflate or zstd). */
#define TS_TIFF_ZSTD_LEVEL 3
void ts_tiff_set_image(TIFF *t, int64_t w, int64_t h, int channels, ts_dtype dt, uint16_t comp, int level);

/* What a TIFF's first n bytes say of GDAL's COG layout, by GDAL's own
 * rule for LAYOUT=COG: 1 when its structural metadata ("ghost area",
 * after the header) declares IFDs before the data, tiles row-major with
 * leaders and trailers; -1 when it says the file was edited out of that
 * layout since (KNOWN_INCOMPATIBLE_EDITION=YES); else 0. */
#define TS_TIFF_HEAD_BYTES 1024
int ts_tiff_cog_layout(const unsigned char *head, size_t n);

#endif
