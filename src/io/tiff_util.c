/* libtiff glue shared by the TIFF reader and writer. */
#define _GNU_SOURCE /* memmem */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "io/tiff_util.h"

static int on_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap) {
  char *msg = user; /* the first error since the owner last cleared msg */
  if (msg && msg[0] == '\0') vsnprintf(msg, 512, fmt, ap);
  return 1;
}

static int on_warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap) {
  return 1; /* unknown tags and the like: not the user's problem */
}

/* Warnings that mean the pixels are wrong: libtiff recovers (pads a short
 * offsets array, fills a short strip, skips a bad code) and the decode
 * "succeeds" with garbage. Decided by class: the module is one that reads
 * image data (the strile arrays, a strip or tile, a codec's decoder), or
 * the text says the data is corrupt or short. Everything else (unknown or
 * mistyped metadata tags, unsorted directories, nonstandard tile sizes)
 * leaves the pixels alone and stays quiet. README: "Bad input". */
int ts_tiff_warning_is_corrupt(const char *module, const char *text) {
  static const char *const modules[] = {"TIFFFetchStripThing", "TIFFFillStrip", "TIFFFillTile", "TIFFReadEncodedStrip",
                                        "TIFFReadEncodedTile", "TIFFReadRawStrip", "TIFFReadRawTile", "TIFFReadScanline",
                                        "TIFFStartStrip", "TIFFStartTile", "JPEGLib", "OJPEGReadHeaderInfoSec", NULL};
  static const char *const words[] = {"corrupt", "truncat", "premature", "not enough data", "cannot read offset",
                                      "byte count", "unexpected end", "too short", NULL};
  const char *m = module ? module : "";
  for (int i = 0; modules[i]; i++)
    if (!strcmp(m, modules[i])) return 1;
  /* the codecs' decoders: ZIPDecode, LZWDecode, PackBitsDecode, Fax3Decode2D... */
  if (strstr(m, "Decode")) return 1;
  for (int i = 0; words[i]; i++) {
    const size_t k = strlen(words[i]);
    for (const char *t = text; *t; t++)
      if (!strncasecmp(t, words[i], k)) return 1;
  }
  return 0;
}

static int on_read_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap) {
  ts_tiff_log *log = user;
  if (log->error[0] == '\0') vsnprintf(log->error, sizeof log->error, fmt, ap);
  return 1;
}

static int on_read_warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap) {
  ts_tiff_log *log = user;
  char text[400];
  vsnprintf(text, sizeof text, fmt, ap);
  if (log->corrupt[0] == '\0' && ts_tiff_warning_is_corrupt(module, text))
    snprintf(log->corrupt, sizeof log->corrupt, "%.80s: %s", module ? module : "libtiff", text);
  return 1;
}

TIFFOpenOptions *ts_tiff_read_options(ts_tiff_log *log) {
  TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
  TIFFOpenOptionsSetErrorHandlerExtR(opts, on_read_error, log);
  TIFFOpenOptionsSetWarningHandlerExtR(opts, on_read_warning, log);
  return opts;
}

TIFFOpenOptions *ts_tiff_options(char *msg) {
  TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
  TIFFOpenOptionsSetErrorHandlerExtR(opts, on_error, msg);
  TIFFOpenOptionsSetWarningHandlerExtR(opts, on_warning, msg);
  return opts;
}

/* In-memory file procs for TIFFClientOpen: a read-only buffer (cap 0)
 * refuses writes. */
static tmsize_t mem_read(thandle_t h, void *buf, tmsize_t n) {
  ts_membuf *m = h;
  uint64_t left = m->pos < m->size ? m->size - m->pos : 0;
  if ((uint64_t)n > left) n = (tmsize_t)left;
  memcpy(buf, m->p + m->pos, (size_t)n);
  m->pos += (uint64_t)n;
  return n;
}
static tmsize_t mem_write(thandle_t h, void *buf, tmsize_t n) {
  ts_membuf *m = h;
  if (m->pos + (uint64_t)n > m->cap) {
    if (m->readonly) return -1;
    uint64_t cap = 2 * (m->pos + (uint64_t)n);
    unsigned char *p = realloc(m->p, (size_t)cap);
    if (!p) return -1;
    m->p = p;
    m->cap = cap;
  }
  memcpy(m->p + m->pos, buf, (size_t)n);
  m->pos += (uint64_t)n;
  if (m->pos > m->size) m->size = m->pos;
  return n;
}
static toff_t mem_seek(thandle_t h, toff_t off, int whence) {
  ts_membuf *m = h;
  m->pos = whence == SEEK_SET ? off : whence == SEEK_CUR ? m->pos + off : m->size + off;
  return m->pos;
}
static int mem_close(thandle_t h) { return 0; }
static toff_t mem_size(thandle_t h) { return ((ts_membuf *)h)->size; }
static int mem_map(thandle_t h, void **base, toff_t *size) { return 0; }
static void mem_unmap(thandle_t h, void *base, toff_t size) {}

TIFF *ts_tiff_mem_open(const char *name, const char *mode, ts_membuf *m, TIFFOpenOptions *opts) {
  return TIFFClientOpenExt(name, mode, m, mem_read, mem_write, mem_seek, mem_close, mem_size, mem_map,
                           mem_unmap, opts);
}

void ts_tiff_set_image(TIFF *t, int64_t w, int64_t h, int channels, ts_dtype dt, uint16_t comp, int level) {
  TIFFSetField(t, TIFFTAG_IMAGEWIDTH, (uint32_t)w);
  TIFFSetField(t, TIFFTAG_IMAGELENGTH, (uint32_t)h);
  TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, (uint16_t)(8 * ts_dtype_size(dt)));
  TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, (uint16_t)channels);
  TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, dt == TS_F32 ? SAMPLEFORMAT_IEEEFP : SAMPLEFORMAT_UINT);
  TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
  TIFFSetField(t, TIFFTAG_PHOTOMETRIC, channels >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK);
  if (channels == 2 || channels == 4) {
    uint16_t extra = EXTRASAMPLE_UNASSALPHA;
    TIFFSetField(t, TIFFTAG_EXTRASAMPLES, 1, &extra);
  }
  TIFFSetField(t, TIFFTAG_COMPRESSION, comp);
  if (level >= 0 && comp == COMPRESSION_ADOBE_DEFLATE) TIFFSetField(t, TIFFTAG_ZIPQUALITY, level);
  /* zstd 3 (zstd's own default) rather than libtiff's 9: on 16384^2 u8
   * tiles, 5x the speed for 9% more bytes (README, Performance) */
  if (comp == COMPRESSION_ZSTD) TIFFSetField(t, TIFFTAG_ZSTD_LEVEL, level >= 0 ? level : TS_TIFF_ZSTD_LEVEL);
}

/* Is `what` within [p, p + n)? */
static int has(const unsigned char *p, size_t n, const char *what) { return memmem(p, n, what, strlen(what)) != NULL; }

int ts_tiff_cog_layout(const unsigned char *head, size_t n) {
  static const char size_line[] = "GDAL_STRUCTURAL_METADATA_SIZE="; /* then 6 digits and " bytes\n" */
  if (n < 8 || !((head[0] == 'I' && head[1] == 'I') || (head[0] == 'M' && head[1] == 'M'))) return 0;
  const int big = head[0] == 'I' ? head[2] == 43 && head[3] == 0 : head[2] == 0 && head[3] == 43;
  const size_t at = big ? 16 : 8, line = sizeof size_line - 1 + 13;
  if (n < at + line || memcmp(head + at, size_line, sizeof size_line - 1)) return 0;
  size_t size = 0;
  for (const unsigned char *d = head + at + sizeof size_line - 1; d < head + at + sizeof size_line - 1 + 6; d++) {
    if (*d < '0' || *d > '9') return 0;
    size = size * 10 + (size_t)(*d - '0');
  }
  const unsigned char *md = head + at + line;
  if (size > n - at - line) size = n - at - line; /* what of it was read */
  if (has(md, size, "KNOWN_INCOMPATIBLE_EDITION=YES")) return -1;
  return has(md, size, "LAYOUT=IFDS_BEFORE_DATA") && has(md, size, "BLOCK_ORDER=ROW_MAJOR") &&
         has(md, size, "BLOCK_LEADER=SIZE_AS_UINT4") && has(md, size, "BLOCK_TRAILER=LAST_4_BYTES_REPEATED");
}
