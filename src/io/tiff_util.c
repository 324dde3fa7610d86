/* libtiff glue shared by the TIFF reader and writer. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "io/tiff_util.h"

static int on_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap) {
  char *msg = user; /* the first error since the owner last cleared msg */
  if (msg && msg[0] == '\0') vsnprintf(msg, 512, fmt, ap);
  return 1;
}

static int on_warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap) {
  return 1; /* unknown tags and the like: not the user's problem */
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
  if (level >= 0 && comp == COMPRESSION_ZSTD) TIFFSetField(t, TIFFTAG_ZSTD_LEVEL, level);
}
