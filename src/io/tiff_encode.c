/* TIFF tiles, encoded; see tiff_encode.h. */
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>
#include <zstd.h>
#include "core/zstream.h"
#include "io/tiff_encode.h"
#include "io/tiff_util.h"

struct ts_encoder_state {
  ts_writer_options o;
  size_t px, tile_bytes;
  uint16_t comp;
  char *path;
  TIFF *t;   /* one-tile in-memory TIFF, kept: codec state is costly to build */
  ts_membuf m;
  void *tile; /* the staged (zero-padded) tile; predictors encode in place */
  char msg[512];
  ts_zstream z; /* deflate tiles (core/zstream.h), not libtiff's codec */
  ts_zstd zstd; /* zstd tiles: one context, reused */
  unsigned char *zbuf;
  size_t zcap;
};

uint16_t ts_tiff_compression(ts_compression c) {
  static const uint16_t codes[] = {COMPRESSION_NONE, COMPRESSION_ADOBE_DEFLATE, COMPRESSION_LZW, COMPRESSION_ZSTD,
                                   COMPRESSION_JPEG};
  return (unsigned)c < sizeof codes / sizeof *codes ? codes[c] : 0; /* 0: not a TIFF compression (blosc) */
}

int ts_tiff_has_predictor(uint16_t comp) {
  return comp == COMPRESSION_ADOBE_DEFLATE || comp == COMPRESSION_LZW || comp == COMPRESSION_ZSTD;
}

/* ---- encoders ---- */

/* The in-memory TIFF's tags: the output's, for one tile. JPEG tiles carry
 * their own tables (JPEGTABLESMODE 0), so each tile is a complete JPEG
 * stream, made on any thread, and the file needs no JPEGTables. */
static void configure(TIFF *t, const ts_encoder_state *e) {
  const ts_writer_options *o = &e->o;
  ts_tiff_set_image(t, o->tile, o->tile, o->channels, o->dtype, e->comp, o->level);
  TIFFSetField(t, TIFFTAG_TILEWIDTH, (uint32_t)o->tile);
  TIFFSetField(t, TIFFTAG_TILELENGTH, (uint32_t)o->tile);
  if (ts_tiff_has_predictor(e->comp))
    TIFFSetField(t, TIFFTAG_PREDICTOR, o->dtype == TS_F32 ? PREDICTOR_FLOATINGPOINT : PREDICTOR_HORIZONTAL);
  if (e->comp == COMPRESSION_JPEG) {
    TIFFSetField(t, TIFFTAG_JPEGQUALITY, o->quality);
    TIFFSetField(t, TIFFTAG_JPEGTABLESMODE, 0);
    if (o->channels == 3) { /* store YCbCr, hand libtiff RGB */
      TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_YCBCR);
      TIFFSetField(t, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
    }
  }
}

ts_status ts_tiff_encoder_new(const char *path, const ts_writer_options *o, ts_encoder_state **out,
                              ts_error *err) {
  ts_encoder_state *e = calloc(1, sizeof *e);
  if (e) {
    e->o = *o;
    e->o.description = e->o.downsample = NULL;
    e->o.meta = NULL;
    e->comp = ts_tiff_compression(o->compression);
    e->px = ts_dtype_size(o->dtype) * (size_t)o->channels;
    e->tile_bytes = (size_t)(o->tile * o->tile) * e->px;
  }
  if (!e || !(e->tile = malloc(e->tile_bytes)) || !(e->path = strdup(path))) {
    if (e) free(e->tile);
    free(e);
    return ts_fail(err, TS_ERR_NOMEM, "out of memory for a tile encoder");
  }
  *out = e;
  return TS_OK;
}

void ts_tiff_encoder_free(ts_encoder_state *e) {
  if (e->t) TIFFCleanup(e->t);
  free(e->path);
  free(e->m.p);
  free(e->tile);
  free(e->zbuf);
  ts_zstream_free(&e->z);
  ts_zstd_free(&e->zstd);
  free(e);
}

/* TIFF's predictors (TIFF 6 section 14; Adobe's technical note 3 for
 * floating point), as libtiff applies them before its codecs to the
 * staged, zero-padded T x T tile: horizontal differencing per sample, and
 * for f32 the bytes of each row regrouped most significant first, then
 * differenced bytewise.
 *
 * Integers are differenced while staged, from the source rows: a loop
 * with no dependence between iterations, which the compiler vectorizes
 * (differencing the staged tile in place, backwards, ran a byte per
 * cycle: 15% of a deflate pyramid's time). A sample of the padding is 0
 * minus the sample ch before it: the last real ones, then zeros. */
#define TS_STAGE_PREDICTED(T)                                                                              \
  static void stage_predicted_##T(T *restrict d, const T *restrict s, int64_t n, int64_t wc, int ch) {      \
    for (int64_t i = 0; i < ch && i < n; i++) d[i] = s[i];                                                 \
    for (int64_t i = ch; i < n; i++) d[i] = (T)(s[i] - s[i - ch]);                                         \
    for (int64_t i = n; i < wc; i++) d[i] = (T)(i - ch < n ? -s[i - ch] : 0);                              \
  }
TS_STAGE_PREDICTED(uint8_t)
TS_STAGE_PREDICTED(uint16_t)

static void predict_f32(void *tile, int64_t T, int ch, unsigned char *row) {
  const int64_t wc = T * ch;
  for (int64_t y = 0; y < T; y++) { /* little-endian host: byte b of a sample is plane 3 - b */
    unsigned char *p = (unsigned char *)tile + y * wc * 4;
    memcpy(row, p, (size_t)wc * 4);
    for (int64_t i = 0; i < wc; i++)
      for (int b = 0; b < 4; b++) p[(3 - b) * wc + i] = row[4 * i + b];
    for (int64_t i = 4 * wc - 1; i >= ch; i--) p[i] = (unsigned char)(p[i] - p[i - ch]);
  }
}

/* Deflate and zstd tiles: the predictor, then one stream through
 * core/zstream.c, by default literals and runs (a deflate of them, or
 * zstd's entropy coder over them), a level given libdeflate's or zstd's
 * (libtiff's codecs run zlib at level 6, thirty times slower, and build
 * a zstd context per tile). */
size_t ts_tiff_stream_bound(uint16_t comp, size_t tile_bytes) {
  return comp == COMPRESSION_ZSTD ? ZSTD_compressBound(tile_bytes) : ts_zbound(tile_bytes);
}
static size_t stream_bound(const ts_encoder_state *e) { return ts_tiff_stream_bound(e->comp, e->tile_bytes); }

/* Deflate and zstd: their streams' bound. LZW: its worst case, a code of
 * at most 12 bits per input byte, and a clear code each time the table of
 * 4094 entries fills (libtiff's encoder). JPEG has no useful bound: twice
 * the raw tile, and its own tables, which a tile of any quality rarely
 * comes near; the writer treats a tile over its room as out of place. */
size_t ts_tiff_tile_room(uint16_t comp, size_t tile_bytes) {
  if (comp == COMPRESSION_ADOBE_DEFLATE || comp == COMPRESSION_ZSTD) return ts_tiff_stream_bound(comp, tile_bytes);
  if (comp == COMPRESSION_LZW) return tile_bytes + tile_bytes / 2 + tile_bytes / 2048 + 64;
  if (comp == COMPRESSION_JPEG) return 2 * tile_bytes + 4096;
  return tile_bytes;
}

/* Into dst when given (it holds stream_bound), else into the encoder's buffer. */
static ts_status stream_tile(ts_encoder_state *e, ts_rect r, unsigned char *dst, const void **data, size_t *size,
                             ts_error *err) {
  const int zstd = e->comp == COMPRESSION_ZSTD;
  const size_t need = stream_bound(e), row = (size_t)(e->o.tile * e->o.channels) * 4;
  if (e->zcap < need + row) {
    free(e->zbuf);
    e->zcap = 0;
    if (!(e->zbuf = malloc(need + row))) return ts_fail(err, TS_ERR_NOMEM, "out of memory for a tile encoder");
    e->zcap = need + row;
  }
  if (e->o.dtype == TS_F32) predict_f32(e->tile, e->o.tile, e->o.channels, e->zbuf + need);
  unsigned char *out = dst ? dst : e->zbuf;
  *size = zstd ? ts_zstd_filtered(&e->zstd, e->o.level, e->tile, e->tile_bytes, out, need)
               : ts_zcompress_filtered(&e->z, e->o.level, e->tile, e->tile_bytes, out, need);
  *data = out;
  if (!*size)
    return ts_fail(err, TS_ERR_NOMEM, "%s: cannot compress tile at (%lld, %lld): out of memory", e->path,
                   (long long)r.x, (long long)r.y);
  return TS_OK;
}

/* dst: uncompressed tiles are staged there, deflate and zstd streams
 * written there; LZW and JPEG go through libtiff and take none. */
size_t ts_tiff_bound(const ts_encoder_state *e) {
  if (e->comp == COMPRESSION_NONE) return e->tile_bytes;
  return e->comp == COMPRESSION_ADOBE_DEFLATE || e->comp == COMPRESSION_ZSTD ? stream_bound(e) : 0;
}

/* Stage the tile (zero-padded at the level's edge) and compress it. */
ts_status ts_tiff_encode(ts_encoder_state *e, int L, ts_rect r, const void *src, int64_t src_stride, void *dst,
                         size_t cap, const void **data, size_t *size, ts_error *err) {
  const int64_t T = e->o.tile;
  if (r.x % T || r.y % T || r.w > T || r.h > T || r.w <= 0 || r.h <= 0)
    return ts_fail(err, TS_ERR_INTERNAL, "%s: tile of %lldx%lld at (%lld, %lld) is not on the "
                   "%lld-pixel tile grid", e->path, (long long)r.w, (long long)r.h, (long long)r.x,
                   (long long)r.y, (long long)T);
  const int streamed = e->comp == COMPRESSION_ADOBE_DEFLATE || e->comp == COMPRESSION_ZSTD;
  const int64_t row = T * (int64_t)e->px, ch = e->o.channels;
  char *tile = e->comp == COMPRESSION_NONE && dst ? dst : e->tile; /* an uncompressed tile is its staging */
  if (streamed && e->o.dtype == TS_U8) { /* staged with the predictor applied */
    for (int64_t y = 0; y < r.h; y++)
      stage_predicted_uint8_t((uint8_t *)tile + y * row, (const uint8_t *)((const char *)src + y * src_stride),
                              r.w * ch, T * ch, (int)ch);
  } else if (streamed && e->o.dtype == TS_U16) {
    for (int64_t y = 0; y < r.h; y++)
      stage_predicted_uint16_t((uint16_t *)(tile + y * row), (const uint16_t *)((const char *)src + y * src_stride),
                               r.w * ch, T * ch, (int)ch);
  } else {
    for (int64_t y = 0; y < r.h; y++) {
      memcpy(tile + y * row, (const char *)src + y * src_stride, (size_t)r.w * e->px);
      if (r.w < T) memset(tile + y * row + r.w * (int64_t)e->px, 0, (size_t)(row - r.w * (int64_t)e->px));
    }
  }
  if (r.h < T) memset(tile + r.h * row, 0, (size_t)((T - r.h) * row));
  *data = tile;
  *size = e->tile_bytes;
  if (e->comp == COMPRESSION_NONE) return TS_OK;
  if (streamed) return stream_tile(e, r, dst, data, size, err);
  e->msg[0] = '\0';
  if (!e->t) {
    e->m.size = e->m.pos = 0;
    TIFFOpenOptions *opts = ts_tiff_options(e->msg);
    e->t = ts_tiff_mem_open("tile", "w", &e->m, opts);
    TIFFOpenOptionsFree(opts);
    if (!e->t) return ts_fail(err, TS_ERR_NOMEM, "%s: cannot set up a tile encoder: %s", e->path, e->msg);
    configure(e->t, e);
  }
  /* rewriting tile 0: libtiff reuses its slot when the new bytes fit and
   * appends otherwise; each tile starts from fresh codec state, so the
   * bytes do not depend on the tiles before it */
  if (TIFFWriteEncodedTile(e->t, 0, e->tile, (tmsize_t)e->tile_bytes) < 0) {
    ts_status st = ts_fail(err, TS_ERR_IO, "%s: cannot compress tile at (%lld, %lld): %s", e->path, (long long)r.x,
                           (long long)r.y, e->msg[0] ? e->msg : "libtiff error");
    TIFFCleanup(e->t);
    e->t = NULL;
    return st;
  }
  uint64_t off = TIFFGetStrileOffset(e->t, 0), n = TIFFGetStrileByteCount(e->t, 0);
  *data = e->m.p + off;
  *size = (size_t)n;
  /* appends grow the memory file: start a new one now and then (the bytes
   * just returned stay valid until the next call) */
  if (e->m.size > 8 * e->tile_bytes + (1u << 20)) {
    TIFFCleanup(e->t);
    e->t = NULL;
  }
  return TS_OK;
}
