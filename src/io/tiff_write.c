/* TIFF writer: tiled BigTIFF with none/deflate/lzw/zstd/jpeg compression
 * (predictors for the lossless ones). Tiles arrive as rects on the tile
 * grid; edge tiles are zero-padded, so the bytes written depend only on the
 * pixels and the order of the calls. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>
#include <unistd.h>
#include "io/backends.h"
#include "tessera/tessera.h"

typedef struct tiff_writer {
  TIFF *tif;
  char *path;
  char msg[512];
  ts_writer_options o;
  size_t px, tile_bytes;
  void *tile;
} tiff_writer;

static int on_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap) {
  tiff_writer *w = user;
  if (w && w->msg[0] == '\0') vsnprintf(w->msg, sizeof w->msg, fmt, ap);
  return 1;
}

static int on_warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap) {
  return 1;
}

static void writer_free(tiff_writer *w) {
  free(w->tile);
  free(w->path);
  free(w);
}

static void tiff_abort(void *ctx) {
  tiff_writer *w = ctx;
  if (w->tif) TIFFClose(w->tif);
  writer_free(w);
}

static ts_status tiff_wopen(const char *path, const ts_writer_options *o, void **ctx, ts_error *err) {
  static const uint16_t codes[] = {COMPRESSION_NONE, COMPRESSION_ADOBE_DEFLATE, COMPRESSION_LZW,
                                   COMPRESSION_ZSTD, COMPRESSION_JPEG};
  uint16_t comp = codes[o->compression];
  if (!TIFFIsCODECConfigured(comp))
    return ts_fail(err, TS_ERR_USAGE, "%s compression is not available in this libtiff",
                   ts_compression_name(o->compression));
  if (o->w > UINT32_MAX || o->h > UINT32_MAX)
    return ts_fail(err, TS_ERR_RANGE, "%s: %lldx%lld exceeds TIFF's 2^32-1 limit per side", path,
                   (long long)o->w, (long long)o->h);
  tiff_writer *w = calloc(1, sizeof *w);
  if (!w || !(w->path = strdup(path))) {
    free(w);
    return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  }
  w->o = *o;
  w->px = ts_dtype_size(o->dtype) * (size_t)o->channels;
  w->tile_bytes = (size_t)(o->tile * o->tile) * w->px;
  w->tile = calloc(1, w->tile_bytes);
  if (!w->tile) {
    writer_free(w);
    return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  }
  TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
  TIFFOpenOptionsSetErrorHandlerExtR(opts, on_error, w);
  TIFFOpenOptionsSetWarningHandlerExtR(opts, on_warning, w);
  w->tif = TIFFOpenExt(path, "w8", opts); /* w8: BigTIFF */
  TIFFOpenOptionsFree(opts);
  if (!w->tif) {
    ts_status st = ts_fail(err, TS_ERR_IO, "%s: cannot create output: %s", path,
                           w->msg[0] ? w->msg : "libtiff error");
    writer_free(w);
    return st;
  }
  TIFF *t = w->tif;
  int is_float = o->dtype == TS_F32;
  TIFFSetField(t, TIFFTAG_IMAGEWIDTH, (uint32_t)o->w);
  TIFFSetField(t, TIFFTAG_IMAGELENGTH, (uint32_t)o->h);
  TIFFSetField(t, TIFFTAG_TILEWIDTH, (uint32_t)o->tile);
  TIFFSetField(t, TIFFTAG_TILELENGTH, (uint32_t)o->tile);
  TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, (uint16_t)(8 * ts_dtype_size(o->dtype)));
  TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, (uint16_t)o->channels);
  TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, is_float ? SAMPLEFORMAT_IEEEFP : SAMPLEFORMAT_UINT);
  TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
  TIFFSetField(t, TIFFTAG_PHOTOMETRIC, o->channels >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK);
  if (o->channels == 2 || o->channels == 4) {
    uint16_t extra = EXTRASAMPLE_UNASSALPHA;
    TIFFSetField(t, TIFFTAG_EXTRASAMPLES, 1, &extra);
  }
  TIFFSetField(t, TIFFTAG_COMPRESSION, comp);
  if (comp == COMPRESSION_ADOBE_DEFLATE || comp == COMPRESSION_LZW || comp == COMPRESSION_ZSTD)
    TIFFSetField(t, TIFFTAG_PREDICTOR, is_float ? PREDICTOR_FLOATINGPOINT : PREDICTOR_HORIZONTAL);
  if (comp == COMPRESSION_JPEG) {
    TIFFSetField(t, TIFFTAG_JPEGQUALITY, o->quality);
    if (o->channels == 3) { /* store YCbCr, hand libtiff RGB */
      TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_YCBCR);
      TIFFSetField(t, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
    }
  }
  char sw[64];
  snprintf(sw, sizeof sw, "tessera %s", ts_version());
  TIFFSetField(t, TIFFTAG_SOFTWARE, sw);
  if (o->description) TIFFSetField(t, TIFFTAG_IMAGEDESCRIPTION, o->description);
  *ctx = w;
  return TS_OK;
}

static ts_status tiff_wwrite(void *ctx, ts_rect r, const void *src, int64_t src_stride,
                             ts_error *err) {
  tiff_writer *w = ctx;
  const int64_t T = w->o.tile;
  if (r.x % T || r.y % T || r.w > T || r.h > T || r.w <= 0 || r.h <= 0)
    return ts_fail(err, TS_ERR_INTERNAL, "%s: write of %lldx%lld at (%lld, %lld) is not on the "
                   "%lld-pixel tile grid", w->path, (long long)r.w, (long long)r.h, (long long)r.x,
                   (long long)r.y, (long long)T);
  /* always stage in our own buffer: predictors encode in place, and edge
   * tiles need zero padding */
  if (r.w < T || r.h < T) memset(w->tile, 0, w->tile_bytes);
  for (int64_t y = 0; y < r.h; y++)
    memcpy((char *)w->tile + y * T * (int64_t)w->px, (const char *)src + y * src_stride,
           (size_t)r.w * w->px);
  w->msg[0] = '\0';
  uint32_t t = TIFFComputeTile(w->tif, (uint32_t)r.x, (uint32_t)r.y, 0, 0);
  if (TIFFWriteEncodedTile(w->tif, t, w->tile, (tmsize_t)w->tile_bytes) < 0)
    return ts_fail(err, TS_ERR_IO, "%s: cannot write tile at (%lld, %lld): %s", w->path,
                   (long long)r.x, (long long)r.y, w->msg[0] ? w->msg : "libtiff error");
  return TS_OK;
}

static ts_status tiff_finish(void *ctx, ts_error *err) {
  tiff_writer *w = ctx;
  ts_status st = TS_OK;
  w->msg[0] = '\0';
  if (!TIFFWriteDirectory(w->tif))
    st = ts_fail(err, TS_ERR_IO, "%s: cannot write the TIFF directory: %s", w->path,
                 w->msg[0] ? w->msg : "libtiff error");
  /* the data must be on disk before the rename makes it the output */
  if (st == TS_OK && fsync(TIFFFileno(w->tif)) != 0)
    st = ts_fail(err, TS_ERR_IO, "%s: cannot sync the output to disk", w->path);
  TIFFClose(w->tif);
  w->tif = NULL;
  writer_free(w);
  return st;
}

const ts_writer_ops ts_tiff_writer_ops = {
    .name = "tiff",
    .open = tiff_wopen,
    .write = tiff_wwrite,
    .finish = tiff_finish,
    .abort = tiff_abort,
};
