/* TIFF writer: tiled BigTIFF with none/deflate/lzw/zstd/jpeg compression
 * (predictors for the lossless ones). Tiles arrive as rects on the tile
 * grid; edge tiles are zero-padded, so the bytes written depend only on the
 * pixels and the order of the calls. Tiles are compressed by per-thread
 * encoders outside the writer's lock; only the raw write is serial. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>
#include <unistd.h>
#include "io/backends.h"
#include "core/zstream.h"
#include "io/tiff_util.h"
#include "tessera/io.h"

typedef struct tiff_writer {
  TIFF *tif;
  char *path;
  char msg[512];
  ts_writer_options o;
  size_t px, tile_bytes;
  uint16_t comp;
  void *tile; /* staging for jpeg, which libtiff encodes from pixels */
} tiff_writer;


struct ts_encoder_state {
  tiff_writer w; /* a copy of the settings: encoders need no open file */
  TIFF *t;   /* one-tile in-memory TIFF, kept: codec state is costly to build */
  ts_membuf m;
  void *tile; /* the staged (zero-padded) tile; predictors encode in place */
  char msg[512];
  ts_zstream z;          /* deflate tiles: ISA-L or zlib, not libtiff's codec */
  unsigned char *zbuf;
  size_t zcap;
};

/* The tags of an output of w x h: the file itself, and the one-tile
 * in-memory handles that encode tiles with exactly the same settings. */
static void configure(TIFF *t, const ts_writer_options *o, uint16_t comp, int64_t w, int64_t h) {
  int is_float = o->dtype == TS_F32;
  ts_tiff_set_image(t, w, h, o->channels, o->dtype, comp, o->level);
  TIFFSetField(t, TIFFTAG_TILEWIDTH, (uint32_t)o->tile);
  TIFFSetField(t, TIFFTAG_TILELENGTH, (uint32_t)o->tile);
  if (comp == COMPRESSION_ADOBE_DEFLATE || comp == COMPRESSION_LZW || comp == COMPRESSION_ZSTD)
    TIFFSetField(t, TIFFTAG_PREDICTOR, is_float ? PREDICTOR_FLOATINGPOINT : PREDICTOR_HORIZONTAL);
  if (comp == COMPRESSION_JPEG) {
    TIFFSetField(t, TIFFTAG_JPEGQUALITY, o->quality);
    if (o->channels == 3) { /* store YCbCr, hand libtiff RGB */
      TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_YCBCR);
      TIFFSetField(t, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
    }
  }
}

/* Settings derived from the options, shared by the writer and encoders. */
static void derive(tiff_writer *w, const ts_writer_options *o) {
  static const uint16_t codes[] = {COMPRESSION_NONE, COMPRESSION_ADOBE_DEFLATE, COMPRESSION_LZW,
                                   COMPRESSION_ZSTD, COMPRESSION_JPEG};
  w->o = *o;
  w->o.description = NULL;
  w->comp = codes[o->compression];
  w->px = ts_dtype_size(o->dtype) * (size_t)o->channels;
  w->tile_bytes = (size_t)(o->tile * o->tile) * w->px;
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
  tiff_writer probe;
  derive(&probe, o);
  uint16_t comp = probe.comp;
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
  derive(w, o);
  w->tile = malloc(w->tile_bytes);
  if (!w->tile) {
    writer_free(w);
    return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  }
  TIFFOpenOptions *opts = ts_tiff_options(w->msg);
  w->tif = TIFFOpenExt(path, "w8", opts); /* w8: BigTIFF */
  TIFFOpenOptionsFree(opts);
  if (!w->tif) {
    ts_status st = ts_fail(err, TS_ERR_IO, "%s: cannot create output: %s", path,
                           w->msg[0] ? w->msg : "libtiff error");
    writer_free(w);
    return st;
  }
  configure(w->tif, o, comp, o->w, o->h);
  char sw[64];
  snprintf(sw, sizeof sw, "tessera %s", ts_version());
  TIFFSetField(w->tif, TIFFTAG_SOFTWARE, sw);
  if (o->description) TIFFSetField(w->tif, TIFFTAG_IMAGEDESCRIPTION, o->description);
  *ctx = w;
  return TS_OK;
}


static ts_status tiff_encoder_new(const char *path, const ts_writer_options *o,
                                  ts_encoder_state **out, ts_error *err) {
  ts_encoder_state *e = calloc(1, sizeof *e);
  if (e) derive(&e->w, o);
  if (!e || !(e->tile = malloc(e->w.tile_bytes)) || !(e->w.path = strdup(path))) {
    if (e) free(e->tile);
    free(e);
    return ts_fail(err, TS_ERR_NOMEM, "out of memory for a tile encoder");
  }
  *out = e;
  return TS_OK;
}

static void tiff_encoder_free(ts_encoder_state *e) {
  if (e->t) TIFFCleanup(e->t);
  free(e->w.path);
  free(e->m.p);
  free(e->tile);
  free(e->zbuf);
  ts_zstream_free(&e->z);
  free(e);
}

/* TIFF's predictors (TIFF 6 section 14; Adobe's technical note 3 for
 * floating point) on a staged tile of T x T pixels, in place, as libtiff
 * applies them before its codecs: horizontal differencing per sample, and
 * for f32 the bytes of each row regrouped most significant first, then
 * differenced bytewise. */
static void predict(void *tile, int64_t T, int ch, ts_dtype dt, unsigned char *row) {
  const int64_t wc = T * ch;
  for (int64_t y = 0; y < T; y++) {
    if (dt == TS_U8) {
      unsigned char *p = (unsigned char *)tile + y * wc;
      for (int64_t i = wc - 1; i >= ch; i--) p[i] = (unsigned char)(p[i] - p[i - ch]);
    } else if (dt == TS_U16) {
      uint16_t *p = (uint16_t *)tile + y * wc;
      for (int64_t i = wc - 1; i >= ch; i--) p[i] = (uint16_t)(p[i] - p[i - ch]);
    } else { /* f32, little-endian host: byte b of a sample is plane 3 - b */
      unsigned char *p = (unsigned char *)tile + y * wc * 4;
      memcpy(row, p, (size_t)wc * 4);
      for (int64_t i = 0; i < wc; i++)
        for (int b = 0; b < 4; b++) p[(3 - b) * wc + i] = row[4 * i + b];
      for (int64_t i = 4 * wc - 1; i >= ch; i--) p[i] = (unsigned char)(p[i] - p[i - ch]);
    }
  }
}

/* Deflate tiles: the predictor, then one zlib stream through
 * core/zstream.c (ISA-L's fast level by default, zlib's for the others):
 * libtiff's codec runs zlib at level 6, ten times slower than the kernels. */
static ts_status deflate_tile(ts_encoder_state *e, ts_rect r, const void **data, size_t *size, ts_error *err) {
  const tiff_writer *w = &e->w;
  const size_t need = ts_zbound(w->tile_bytes), row = (size_t)(w->o.tile * w->o.channels) * 4;
  if (e->zcap < need + row) {
    free(e->zbuf);
    e->zcap = 0;
    if (!(e->zbuf = malloc(need + row))) return ts_fail(err, TS_ERR_NOMEM, "out of memory for a tile encoder");
    e->zcap = need + row;
  }
  predict(e->tile, w->o.tile, w->o.channels, w->o.dtype, e->zbuf + need);
  *size = ts_zcompress(&e->z, w->o.level, e->tile, w->tile_bytes, e->zbuf, need);
  *data = e->zbuf;
  if (!*size)
    return ts_fail(err, TS_ERR_NOMEM, "%s: cannot compress tile at (%lld, %lld): out of memory", w->path,
                   (long long)r.x, (long long)r.y);
  return TS_OK;
}

/* Stage the tile (zero-padded at the image edge) and compress it with a
 * one-tile in-memory TIFF carrying the output's tags, so the bytes equal
 * what the file's own handle would produce. JPEG tiles share the file's
 * JPEGTABLES and are encoded at write time: here they stay pixels. */
static ts_status tiff_encode(ts_encoder_state *e, ts_rect r, const void *src, int64_t src_stride,
                             const void **data, size_t *size, ts_error *err) {
  const tiff_writer *w = &e->w;
  const int64_t T = w->o.tile;
  if (r.x % T || r.y % T || r.w > T || r.h > T || r.w <= 0 || r.h <= 0)
    return ts_fail(err, TS_ERR_INTERNAL, "%s: tile of %lldx%lld at (%lld, %lld) is not on the "
                   "%lld-pixel tile grid", w->path, (long long)r.w, (long long)r.h, (long long)r.x,
                   (long long)r.y, (long long)T);
  if (r.w < T || r.h < T) memset(e->tile, 0, w->tile_bytes);
  for (int64_t y = 0; y < r.h; y++)
    memcpy((char *)e->tile + y * T * (int64_t)w->px, (const char *)src + y * src_stride,
           (size_t)r.w * w->px);
  *data = e->tile;
  *size = w->tile_bytes;
  if (w->comp == COMPRESSION_NONE || w->comp == COMPRESSION_JPEG) return TS_OK;
  if (w->comp == COMPRESSION_ADOBE_DEFLATE) return deflate_tile(e, r, data, size, err);
  e->msg[0] = '\0';
  if (!e->t) {
    e->m.size = e->m.pos = 0;
    TIFFOpenOptions *opts = ts_tiff_options(e->msg);
    e->t = ts_tiff_mem_open("tile", "w", &e->m, opts);
    TIFFOpenOptionsFree(opts);
    if (!e->t)
      return ts_fail(err, TS_ERR_NOMEM, "%s: cannot set up a tile encoder: %s", w->path, e->msg);
    configure(e->t, &w->o, w->comp, T, T);
  }
  /* rewriting tile 0: libtiff reuses its slot when the new bytes fit and
   * appends otherwise; each tile starts from fresh codec state, so the
   * bytes do not depend on the tiles before it */
  if (TIFFWriteEncodedTile(e->t, 0, e->tile, (tmsize_t)w->tile_bytes) < 0) {
    ts_status st = ts_fail(err, TS_ERR_IO, "%s: cannot compress tile at (%lld, %lld): %s", w->path,
                           (long long)r.x, (long long)r.y, e->msg[0] ? e->msg : "libtiff error");
    TIFFCleanup(e->t);
    e->t = NULL;
    return st;
  }
  uint64_t off = TIFFGetStrileOffset(e->t, 0), n = TIFFGetStrileByteCount(e->t, 0);
  *data = e->m.p + off;
  *size = (size_t)n;
  /* appends grow the memory file: start a new one now and then (the bytes
   * just returned stay valid until the next call) */
  if (e->m.size > 8 * w->tile_bytes + (1u << 20)) {
    TIFFCleanup(e->t);
    e->t = NULL;
  }
  return TS_OK;
}

static ts_status tiff_write_encoded(void *ctx, ts_rect r, const void *data, size_t size,
                                    ts_error *err) {
  tiff_writer *w = ctx;
  uint32_t t = TIFFComputeTile(w->tif, (uint32_t)r.x, (uint32_t)r.y, 0, 0);
  w->msg[0] = '\0';
  tmsize_t done;
  if (w->comp == COMPRESSION_JPEG) {
    memcpy(w->tile, data, w->tile_bytes); /* libtiff may touch its input */
    done = TIFFWriteEncodedTile(w->tif, t, w->tile, (tmsize_t)w->tile_bytes);
  } else {
    done = TIFFWriteRawTile(w->tif, t, (void *)data, (tmsize_t)size);
  }
  if (done < 0)
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

/* Checkpoints: tiles are written raw, appended in the order of the calls,
 * and the directory only at the end; so a tile's bytes stay where they
 * were written, and syncing the data is enough (the journal holds the
 * offsets). JPEG tiles are encoded here against tables libtiff keeps in the
 * directory: not resumable. */
static ts_status tiff_locate(void *ctx, ts_rect r, uint64_t *offset, uint64_t *size, ts_error *err) {
  tiff_writer *w = ctx;
  uint32_t t = TIFFComputeTile(w->tif, (uint32_t)r.x, (uint32_t)r.y, 0, 0);
  int bad = 0;
  *offset = TIFFGetStrileOffsetWithErr(w->tif, t, &bad);
  *size = TIFFGetStrileByteCountWithErr(w->tif, t, &bad);
  return bad || !*offset ? ts_fail(err, TS_ERR_INTERNAL, "%s: tile at (%lld, %lld) was not written", w->path,
                                   (long long)r.x, (long long)r.y)
                         : TS_OK;
}

static ts_status tiff_sync(void *ctx, ts_error *err) {
  tiff_writer *w = ctx; /* never called for JPEG: resume.c keeps no journal for it */
  if (!TIFFFlushData(w->tif) || fsync(TIFFFileno(w->tif)) != 0)
    return ts_fail(err, TS_ERR_IO, "%s: cannot sync the output to disk", w->path);
  return TS_OK;
}

const ts_writer_ops ts_tiff_writer_ops = {
    .name = "tiff",
    .open = tiff_wopen,
    .encoder_new = tiff_encoder_new,
    .encode = tiff_encode,
    .encoder_free = tiff_encoder_free,
    .write_encoded = tiff_write_encoded,
    .finish = tiff_finish,
    .abort = tiff_abort,
    .locate = tiff_locate,
    .sync = tiff_sync,
};
