/* TIFF writer: tiled BigTIFF, flat or pyramidal, in three layouts.
 *
 * The file is tessera's own: a 16-byte BigTIFF header, then the tiles in
 * the order they are stored (any level, as the engine finishes them),
 * then the IFDs, written at the end when every tile's offset and size is
 * known. Tiles are compressed by per-thread encoders (io/tiff_encode.c),
 * so the writer itself only places bytes and the file depends only on
 * the pixels and the order of the calls.
 *
 * Layouts (ts_layout):
 * - plain: the full resolution in the first IFD, reduced levels as its
 *   SubIFDs (tag 330), NewSubfileType 1, as vips --subifd and Bio-Formats;
 * - ome: the same, with OME-XML in the first IFD's ImageDescription;
 * - cog: Cloud-Optimized GeoTIFF (GDAL's COG driver's layout): IFDs first
 *   (full resolution, then overviews in a chain), then the tile data from
 *   the smallest overview to the full resolution, each level row-major.
 *   Uncompressed, every tile's place is known at open (place_tiles).
 *   Compressed, a tile's size is known only once it is made: each row of
 *   tiles gets a region of the file as large as its tiles can be (JPEG:
 *   short of pathology, ts_tiff_tile_room), in the final order, 4 KiB-
 *   aligned (place_rows); a row's tiles are written one after another
 *   at its start, and finish cuts the unused end of
 *   every region out of the file (fallocate's COLLAPSE_RANGE, a change of
 *   the file's extents: no byte is copied). Where the filesystem cannot,
 *   or a tile came out of its row's order or over its room, finish copies
 *   the tiles into a new file laid out the same.
 *   As GDAL's COG driver writes it, the file also carries GDAL's
 *   structural metadata between the header and the first IFD (cog_ghost),
 *   and each tile's bytes come between a leader (their size) and a
 *   trailer (their last 4 bytes again): a reader over HTTP takes a
 *   tile's size from the bytes it fetches and never needs the
 *   TileByteCounts array, and `gdalinfo` reports LAYOUT=COG.
 * Metadata carried from the input (GeoTIFF, GDAL, resolution, ICC) is
 * written as the input stored it; README "Metadata" says what is kept,
 * rewritten and dropped. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <tiffio.h>
#include <unistd.h>
#include "core/blob.h"
#include "io/backends.h"
#include "io/tiff_encode.h"
#include "io/tiff_util.h"
#include "tessera/io.h"

typedef struct level {
  int64_t w, h, across, down;
  uint64_t *off, *size; /* per tile, row-major; size 0: not written */
  uint64_t *place;      /* an uncompressed COG: where each tile goes (NULL: appended) */
  uint64_t *row_at, *row_end; /* a compressed COG: each row's region, where its next tile goes (NULL: appended) */
  int64_t *row_next;    /* ... and that tile's column */
} level;

typedef struct tiff_writer {
  int fd;
  char *path;
  ts_writer_options o;
  size_t px, tile_bytes;
  uint16_t comp;
  int n; /* levels */
  level lv[TS_MAX_LEVELS];
  uint64_t end; /* where the next tile goes (appended) */
  uint64_t tile_room; /* a compressed COG with row regions: the room each tile has (ts_tiff_tile_room) */
  uint64_t frame;     /* a COG: the bytes of a tile's leader, and of its trailer (TS_COG_FRAME); else 0 */
  int copy;           /* a compressed COG whose tiles finish copies into place: the filesystem cannot
                         cut, or a tile came out of its row's order or over its room (then appended) */
  uint64_t unflushed; /* bytes written since writeback was last started (see start_writeback) */
  char *description;
  ts_image_meta meta; /* a copy */
} tiff_writer;

/* ---- the file ---- */

static void writer_free(tiff_writer *w) {
  for (int L = 0; L < w->n; L++) {
    level *l = &w->lv[L];
    free(l->off), free(l->size), free(l->place), free(l->row_at), free(l->row_end), free(l->row_next);
  }
  ts_image_meta_free(&w->meta);
  free(w->description);
  free(w->path);
  free(w);
}

static void tiff_abort(void *ctx) {
  tiff_writer *w = ctx;
  if (w->fd >= 0) close(w->fd);
  writer_free(w);
}

static ts_status write_all(int fd, const void *p, size_t n, uint64_t off) {
  while (n > 0) {
    ssize_t k = pwrite(fd, p, n, (off_t)off);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return TS_ERR_IO;
    p = (const char *)p + k, n -= (size_t)k, off += (uint64_t)k;
  }
  return TS_OK;
}

/* A COG's structural metadata, GDAL's "ghost area" (GDAL's COG driver
 * page, "Header ghost area"), written from byte 16 of every COG: what
 * GDAL 3.6's COG driver writes without a mask, to the byte. The size
 * counts what follows its own line; the final "NO\n " leaves GDAL room to
 * write "YES\n" in place when it edits the file out of this layout. */
static const char cog_ghost[] = "GDAL_STRUCTURAL_METADATA_SIZE=000140 bytes\n"
                                "LAYOUT=IFDS_BEFORE_DATA\n"
                                "BLOCK_ORDER=ROW_MAJOR\n"
                                "BLOCK_LEADER=SIZE_AS_UINT4\n"
                                "BLOCK_TRAILER=LAST_4_BYTES_REPEATED\n"
                                "KNOWN_INCOMPATIBLE_EDITION=NO\n ";
_Static_assert(sizeof cog_ghost - 1 == 43 + 140, "the ghost area's size line");
/* Where its "NO\n " (its last 4 bytes) lies in the file. */
#define TS_COG_EDITION ((uint64_t)(16 + sizeof cog_ghost - 1 - 4))

/* A COG's first IFD: after the header and the ghost area, 8-aligned. */
#define TS_COG_IFDS ((uint64_t)(16 + sizeof cog_ghost - 1 + 7) / 8 * 8)
/* A COG tile's leader (its size, uint32 little-endian) and trailer (its
 * last 4 bytes repeated) are this long each. */
#define TS_COG_FRAME ((uint64_t)4)

/* The BigTIFF header (the first IFD's offset is filled in at the end),
 * and a COG's ghost area after it. */
static ts_status write_head(int fd, int cog) {
  static const unsigned char header[16] = {'I', 'I', 43, 0, 8, 0, 0, 0};
  ts_status st = write_all(fd, header, sizeof header, 0);
  return st || !cog ? st : write_all(fd, cog_ghost, sizeof cog_ghost - 1, sizeof header);
}

/* A tile's bytes at `at`; with a frame (a COG), its leader before them
 * and its trailer after, in one call. The trailer is the last 4 bytes
 * of leader and data together, which a tile shorter than 4 bytes needs. */
static ts_status write_framed(int fd, const void *data, size_t size, uint64_t frame, uint64_t at) {
  if (!frame) return write_all(fd, data, size, at);
  const uint32_t n = (uint32_t)size;
  unsigned char lead[4] = {(unsigned char)n, (unsigned char)(n >> 8), (unsigned char)(n >> 16), (unsigned char)(n >> 24)};
  unsigned char trail[4];
  for (int k = 0; k < 4; k++) {
    const int64_t p = (int64_t)size - 4 + k; /* in data; before it, in the leader */
    trail[k] = p >= 0 ? ((const unsigned char *)data)[p] : lead[4 + p];
  }
  struct iovec v[3] = {{lead, 4}, {(void *)data, size}, {trail, 4}};
  const ssize_t k = pwritev(fd, v, 3, (off_t)at);
  if (k == (ssize_t)(size + 8)) return TS_OK;
  if (k < 0 && errno != EINTR) return TS_ERR_IO;
  /* short or interrupted: the three again, each to its end */
  return write_all(fd, lead, 4, at) || write_all(fd, data, size, at + 4) || write_all(fd, trail, 4, at + 4 + size)
             ? TS_ERR_IO
             : TS_OK;
}

/* Append s (well-formed UTF-8: ts_utf8_copy), XML-escaped (attribute
 * values and text alike); the characters XML 1.0 does not allow (controls,
 * U+FFFE, U+FFFF) become '?'. */
static int put_escaped(ts_blob *b, const char *s) {
  int bad = 0;
  for (const char *c = s; *c; c++) {
    const unsigned char u = (unsigned char)*c;
    const int nonchar = u == 0xEF && (unsigned char)c[1] == 0xBF && ((unsigned char)c[2] & 0xFE) == 0xBE;
    const char *esc = *c == '<' ? "&lt;" : *c == '>' ? "&gt;" : *c == '&' ? "&amp;" : *c == '"' ? "&quot;"
                    : (u < 0x20 && u != '\t' && u != '\n' && u != '\r') || nonchar ? "?" : NULL;
    bad |= esc ? ts_blob_append(b, esc, strlen(esc)) : ts_blob_append(b, c, 1);
    c += nonchar ? 2 : 0;
  }
  return bad;
}

/* The OME-XML of the main IFD (OME 2016-06, as Bio-Formats 6 reads it):
 * one image named after the output file, one plane, interleaved samples
 * as one channel of n samples; the levels are found by readers through
 * the SubIFDs. */
static char *ome_xml(const tiff_writer *w) {
  const ts_writer_options *o = &w->o;
  static const char *const types[] = {"uint8", "uint16", "float"};
  char name[TS_FINAL_NAME_CAP];
  ts_output_final_name(w->path, name, sizeof name);
  char phys[160] = "";
  if (w->meta.um_x > 0 && w->meta.um_y > 0)
    snprintf(phys, sizeof phys, " PhysicalSizeX=\"%.17g\" PhysicalSizeXUnit=\"\xc2\xb5m\" PhysicalSizeY=\"%.17g\""
             " PhysicalSizeYUnit=\"\xc2\xb5m\"", w->meta.um_x, w->meta.um_y);
  ts_blob b = {0};
  char head[2048];
  int len = snprintf(head, sizeof head,
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<OME xmlns=\"http://www.openmicroscopy.org/Schemas/OME/2016-06\" "
      "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
      "xsi:schemaLocation=\"http://www.openmicroscopy.org/Schemas/OME/2016-06 "
      "http://www.openmicroscopy.org/Schemas/OME/2016-06/ome.xsd\" Creator=\"tessera %s\">"
      "<Image ID=\"Image:0\" Name=\"", ts_version());
  int bad = ts_blob_append(&b, head, (size_t)len) || put_escaped(&b, name);
  len = snprintf(head, sizeof head,
      "\"><Pixels ID=\"Pixels:0\" DimensionOrder=\"XYCZT\" Type=\"%s\" "
      "SizeX=\"%lld\" SizeY=\"%lld\" SizeC=\"%d\" SizeZ=\"1\" SizeT=\"1\" Interleaved=\"%s\"%s>"
      "<Channel ID=\"Channel:0:0\" SamplesPerPixel=\"%d\"/>"
      "<TiffData IFD=\"0\" PlaneCount=\"1\"/></Pixels></Image>",
      types[o->dtype], (long long)o->w, (long long)o->h, o->channels, o->channels > 1 ? "true" : "false", phys,
      o->channels);
  bad |= ts_blob_append(&b, head, (size_t)len);
  if (w->description) { /* the pipeline, escaped */
    static const char open[] = "<StructuredAnnotations><CommentAnnotation ID=\"Annotation:0\" "
                               "Namespace=\"tessera/pipeline\"><Value>";
    bad |= ts_blob_append(&b, open, sizeof open - 1) || put_escaped(&b, w->description);
    static const char close[] = "</Value></CommentAnnotation></StructuredAnnotations>";
    bad |= ts_blob_append(&b, close, sizeof close - 1);
  }
  bad |= ts_blob_append(&b, "</OME>", 7); /* with the terminating 0 */
  if (bad) {
    ts_blob_free(&b);
    return NULL;
  }
  return (char *)b.p;
}

static ts_status place_tiles(tiff_writer *w, ts_error *err);
static ts_status place_rows(tiff_writer *w, ts_error *err);

static ts_status tiff_wopen(const char *path, const ts_writer_options *o, void **ctx, ts_error *err) {
  const uint16_t comp = ts_tiff_compression(o->compression);
  if (!comp)
    return ts_fail(err, TS_ERR_USAGE, "%s: --compression %s is a Zarr compressor; TIFF output takes none, deflate, "
                   "lzw, zstd or jpeg", path, ts_compression_name(o->compression));
  if (!TIFFIsCODECConfigured(comp))
    return ts_fail(err, TS_ERR_USAGE, "%s compression is not available in this libtiff",
                   ts_compression_name(o->compression));
  if (o->w > UINT32_MAX || o->h > UINT32_MAX)
    return ts_fail(err, TS_ERR_RANGE, "%s: %lldx%lld exceeds TIFF's 2^32-1 limit per side", path,
                   (long long)o->w, (long long)o->h);
  if (o->layout == TS_LAYOUT_COG && o->tile != 256 && o->tile != 512)
    return ts_fail(err, TS_ERR_USAGE, "%s: --layout cog takes output tiles of 256 or 512 (--out-tile), not %lld", path,
                   (long long)o->tile);
  tiff_writer *w = calloc(1, sizeof *w);
  if (!w || !(w->path = strdup(path))) {
    free(w);
    return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  }
  w->fd = -1;
  w->o = *o;
  w->comp = comp;
  w->px = ts_dtype_size(o->dtype) * (size_t)o->channels;
  w->tile_bytes = (size_t)(o->tile * o->tile) * w->px;
  w->n = o->levels < 1 ? 1 : o->levels;
  int bad = o->description && !(w->description = strdup(o->description));
  for (int i = 0; !bad && o->meta && i < o->meta->n; i++) { /* a copy: the reader may close first */
    const ts_meta_tag *t = &o->meta->tags[i];
    ts_meta_tag *nt = realloc(w->meta.tags, (size_t)(w->meta.n + 1) * sizeof *nt);
    if (!nt) bad = 1;
    else {
      w->meta.tags = nt;
      nt[w->meta.n] = *t;
      if (!(nt[w->meta.n].data = malloc(t->bytes ? t->bytes : 1))) bad = 1;
      else memcpy(nt[w->meta.n++].data, t->data, t->bytes);
    }
  }
  if (o->meta) w->meta.um_x = o->meta->um_x, w->meta.um_y = o->meta->um_y;
  for (int L = 0; !bad && L < w->n; L++) {
    level *l = &w->lv[L];
    l->w = L ? (w->lv[L - 1].w + 1) / 2 : o->w;
    l->h = L ? (w->lv[L - 1].h + 1) / 2 : o->h;
    l->across = (l->w + o->tile - 1) / o->tile;
    l->down = (l->h + o->tile - 1) / o->tile;
    l->off = calloc((size_t)(l->across * l->down), sizeof *l->off);
    l->size = calloc((size_t)(l->across * l->down), sizeof *l->size);
    bad = !l->off || !l->size;
  }
  if (bad) {
    writer_free(w);
    return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  }
  const int cog = o->layout == TS_LAYOUT_COG;
  w->frame = cog ? TS_COG_FRAME : 0;
  w->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (w->fd < 0 || write_head(w->fd, cog)) {
    ts_status st = ts_fail(err, TS_ERR_IO, "%s: cannot create output: %s", path, strerror(errno));
    tiff_abort(w);
    return st;
  }
  w->end = cog ? TS_COG_IFDS : 16;
  if (cog) { /* no copy at the end */
    ts_status st = comp == COMPRESSION_NONE ? place_tiles(w, err) : place_rows(w, err);
    if (st) {
      tiff_abort(w);
      return st;
    }
  }
  *ctx = w;
  return TS_OK;
}

static ts_status tile_index(tiff_writer *w, int L, ts_rect r, int64_t *i, ts_error *err) {
  const int64_t T = w->o.tile;
  if (L < 0 || L >= w->n || r.x % T || r.y % T || r.x / T >= w->lv[L].across || r.y / T >= w->lv[L].down)
    return ts_fail(err, TS_ERR_INTERNAL, "%s: no tile at (%lld, %lld) of level %d", w->path, (long long)r.x,
                   (long long)r.y, L);
  *i = (r.y / T) * w->lv[L].across + r.x / T;
  return TS_OK;
}

/* Every TS_WRITEBACK_BYTES written, ask the kernel to start writing the
 * file's dirty pages to disk (sync_file_range, SYNC_FILE_RANGE_WRITE: it
 * starts the I/O and does not wait for it). The disk then writes while
 * the kernels compute, and the fsync that must come before the rename (and
 * each checkpoint's) waits only for the last few megabytes: measured here,
 * a 358 MB pyramid's final fsync took 0.13-0.18 s, a fifth of the run. A
 * hint only: where the call is refused (not every filesystem has it)
 * nothing changes. A COG whose tile came out of place will be copied
 * into the final file at the end and dropped: no more of it is written
 * back early. */
#define TS_WRITEBACK_BYTES ((uint64_t)8 << 20)

static void start_writeback(tiff_writer *w, size_t just_written) {
  if (w->copy) return;
  w->unflushed += just_written;
  if (w->unflushed < TS_WRITEBACK_BYTES) return;
  w->unflushed = 0;
  (void)sync_file_range(w->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

static ts_status tiff_write_encoded(void *ctx, int L, ts_rect r, const void *data, size_t size, ts_error *err) {
  tiff_writer *w = ctx;
  int64_t i = 0;
  ts_status st = tile_index(w, L, r, &i, err);
  if (st) return st;
  level *l = &w->lv[L];
  const int64_t row = i / l->across, col = i % l->across;
  /* in its row's region if it is the row's next tile (they come in order:
   * tasks and upper tiles are stored row-major), else appended */
  const int in_row = l->row_at && !w->copy && col == l->row_next[row] && size <= w->tile_room;
  if (l->row_at && !in_row) w->copy = 1;
  /* where its leader goes, if it has one; its bytes follow */
  const uint64_t at = l->place ? l->place[i] - w->frame : in_row ? l->row_end[row] : w->end;
  const uint64_t framed = size + 2 * w->frame;
  if (l->place && size != w->tile_bytes)
    return ts_fail(err, TS_ERR_INTERNAL, "%s: an uncompressed tile of %zu bytes", w->path, size);
  if (write_framed(w->fd, data, size, w->frame, at))
    return ts_fail(err, TS_ERR_IO, "%s: cannot write tile at (%lld, %lld): %s", w->path, (long long)r.x,
                   (long long)r.y, strerror(errno));
  l->off[i] = at + w->frame;
  l->size[i] = size;
  if (in_row) l->row_end[row] += framed, l->row_next[row]++;
  else if (!l->place) w->end += framed;
  start_writeback(w, framed);
  return TS_OK;
}

/* ---- IFDs ---- */

enum { BYTE = 1, ASCII = 2, SHORT = 3, LONG = 4, RATIONAL = 5, UNDEFINED = 7, DOUBLE = 12, LONG8 = 16, IFD8 = 18 };

typedef struct entry {
  uint16_t tag, type;
  uint64_t count;
  size_t at, bytes; /* the value's bytes in the IFD's arena */
} entry;

typedef struct ifd {
  entry e[64];
  int n, bad;
  ts_blob arena;
  int subifd; /* the entry of tag 330, patched when the level IFDs are placed */
} ifd;

static void put(ifd *d, uint16_t tag, uint16_t type, uint64_t count, const void *v, size_t bytes) {
  for (int i = 0; i < d->n; i++)
    if (d->e[i].tag == tag) return; /* the first one wins: tessera's own before the input's */
  if (d->n == 64 || ts_blob_append(&d->arena, v, bytes)) {
    d->bad = 1;
    return;
  }
  d->e[d->n++] = (entry){tag, type, count, d->arena.size - bytes, bytes};
}
static void put_short(ifd *d, uint16_t tag, uint16_t v) { put(d, tag, SHORT, 1, &v, 2); }
static void put_long(ifd *d, uint16_t tag, uint32_t v) { put(d, tag, LONG, 1, &v, 4); }
static void put_ascii(ifd *d, uint16_t tag, const char *s) { put(d, tag, ASCII, strlen(s) + 1, s, strlen(s) + 1); }

static int by_tag(const void *a, const void *b) {
  return (int)((const entry *)a)->tag - (int)((const entry *)b)->tag;
}

/* Lay the IFD out at `base` (8-aligned): its entries sorted by tag, its
 * `next` link, then the values that do not fit in an entry, each
 * 8-aligned. Returns the size; fills out when given. */
static size_t serialize(ifd *d, uint64_t base, uint64_t next, unsigned char *out) {
  qsort(d->e, (size_t)d->n, sizeof *d->e, by_tag);
  size_t pos = 8 + (size_t)d->n * 20 + 8, extra = pos;
  for (int i = 0; i < d->n; i++) {
    const entry *e = &d->e[i];
    unsigned char *p = out ? out + 8 + (size_t)i * 20 : NULL;
    if (p) {
      memcpy(p, &e->tag, 2);
      memcpy(p + 2, &e->type, 2);
      memcpy(p + 4, &e->count, 8);
      memset(p + 12, 0, 8);
    }
    if (e->bytes <= 8) {
      if (p) memcpy(p + 12, d->arena.p + e->at, e->bytes);
    } else {
      extra = (extra + 7) & ~(size_t)7;
      uint64_t at = base + extra;
      if (p) {
        memcpy(p + 12, &at, 8);
        memcpy(out + extra, d->arena.p + e->at, e->bytes);
      }
      extra += e->bytes;
    }
  }
  if (out) {
    uint64_t n = (uint64_t)d->n;
    memcpy(out, &n, 8);
    memcpy(out + 8 + (size_t)d->n * 20, &next, 8);
  }
  return (extra + 7) & ~(size_t)7;
}

/* A level's IFD, with the tiles' offsets as lv[L].off holds them (put
 * copies them into the IFD). */
static void level_ifd(const tiff_writer *w, int L, ifd *d) {
  const ts_writer_options *o = &w->o;
  const level *l = &w->lv[L];
  const int ch = o->channels, jpeg_rgb = w->comp == COMPRESSION_JPEG && ch == 3;
  uint16_t bits[8], fmt[8];
  for (int c = 0; c < ch && c < 8; c++) bits[c] = (uint16_t)(8 * ts_dtype_size(o->dtype)), fmt[c] = o->dtype == TS_F32 ? 3 : 1;
  if (L > 0) put_long(d, 254, 1); /* NewSubfileType: a reduced image */
  put_long(d, 256, (uint32_t)l->w);
  put_long(d, 257, (uint32_t)l->h);
  put(d, 258, SHORT, (uint64_t)ch, bits, 2 * (size_t)ch);
  put_short(d, 259, w->comp);
  put_short(d, 262, jpeg_rgb ? PHOTOMETRIC_YCBCR : ch >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK);
  put_short(d, 277, (uint16_t)ch);
  put_short(d, 284, PLANARCONFIG_CONTIG);
  if (ts_tiff_has_predictor(w->comp)) put_short(d, 317, o->dtype == TS_F32 ? PREDICTOR_FLOATINGPOINT : PREDICTOR_HORIZONTAL);
  put_long(d, 322, (uint32_t)o->tile);
  put_long(d, 323, (uint32_t)o->tile);
  const size_t nt = (size_t)(l->across * l->down);
  put(d, 324, LONG8, nt, l->off, 8 * nt);
  put(d, 325, LONG8, nt, l->size, 8 * nt);
  if (ch == 2 || ch == 4) put_short(d, 338, EXTRASAMPLE_UNASSALPHA);
  put(d, 339, SHORT, (uint64_t)ch, fmt, 2 * (size_t)ch);
  if (jpeg_rgb) {
    const uint16_t sub[2] = {2, 2};
    const uint32_t refbw[12] = {0, 1, 255, 1, 128, 1, 255, 1, 128, 1, 255, 1};
    put(d, 530, SHORT, 2, sub, sizeof sub);
    put(d, 532, RATIONAL, 6, refbw, sizeof refbw);
  }
  /* the input's metadata: all of it on the full resolution; GDAL reads an
   * overview's nodata from its own IFD */
  for (int i = 0; i < w->meta.n; i++) {
    const ts_meta_tag *t = &w->meta.tags[i];
    if (L == 0 || t->tag == 42113) put(d, t->tag, t->type, t->count, t->data, t->bytes);
  }
}

/* Every IFD: the main one's tags, the levels', and where each goes
 * (chained from `base` for a COG, else SubIFDs of the first). The tiles'
 * offsets are lv[].off's: where they were written, or (finish_cog) where
 * they will be. */
typedef struct layout {
  ifd d[TS_MAX_LEVELS];
  uint64_t at[TS_MAX_LEVELS];
  size_t size[TS_MAX_LEVELS];
} layout;

static void layout_free(layout *y, int n) {
  for (int L = 0; L < n; L++) ts_blob_free(&y->d[L].arena);
}

static ts_status build(tiff_writer *w, int chain, uint64_t base, layout *y, ts_error *err) {
  char sw[64], *xml = NULL;
  snprintf(sw, sizeof sw, "tessera %s", ts_version());
  if (w->o.layout == TS_LAYOUT_OME && !(xml = ome_xml(w))) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  int bad = 0;
  for (int L = 0; L < w->n; L++) {
    ifd *d = &y->d[L];
    if (L == 0) {
      if (xml) put_ascii(d, 270, xml);
      else if (w->description) put_ascii(d, 270, w->description);
      put_ascii(d, 305, sw);
      if (!chain && w->n > 1) { /* SubIFDs: offsets patched below */
        uint64_t zero[TS_MAX_LEVELS] = {0};
        put(d, 330, IFD8, (uint64_t)(w->n - 1), zero, 8 * (size_t)(w->n - 1));
      }
    }
    level_ifd(w, L, d);
    bad |= d->bad;
  }
  free(xml);
  if (bad) return ts_fail(err, TS_ERR_NOMEM, "out of memory for the TIFF directories");
  uint64_t at = base;
  for (int L = 0; L < w->n; L++) {
    y->at[L] = at;
    y->size[L] = serialize(&y->d[L], at, 0, NULL);
    at += y->size[L];
  }
  if (!chain && w->n > 1) { /* the SubIFDs' offsets, now known */
    ifd *d = &y->d[0];
    for (int i = 0; i < d->n; i++)
      if (d->e[i].tag == 330) memcpy(d->arena.p + d->e[i].at, &y->at[1], 8 * (size_t)(w->n - 1));
  }
  return TS_OK;
}

/* Write the IFDs at w->end (in place) or at TS_COG_IFDS (chain, before the data). */
static ts_status write_ifds(tiff_writer *w, int fd, int chain, layout *y, ts_error *err) {
  ts_blob b = {0};
  ts_status st = TS_OK;
  for (int L = 0; st == TS_OK && L < w->n; L++) {
    const uint64_t next = chain && L + 1 < w->n ? y->at[L + 1] : 0;
    if (ts_blob_reserve(&b, y->size[L])) st = ts_fail(err, TS_ERR_NOMEM, "out of memory for the TIFF directories");
    else {
      memset(b.p, 0, y->size[L]);
      serialize(&y->d[L], y->at[L], next, b.p);
      if (write_all(fd, b.p, y->size[L], y->at[L]))
        st = ts_fail(err, TS_ERR_IO, "%s: cannot write the TIFF directory: %s", w->path, strerror(errno));
    }
  }
  ts_blob_free(&b);
  if (st == TS_OK && write_all(fd, &y->at[0], 8, 8))
    st = ts_fail(err, TS_ERR_IO, "%s: cannot write the TIFF header: %s", w->path, strerror(errno));
  return st;
}

static ts_status finish_in_place(tiff_writer *w, ts_error *err) {
  layout y = {0};
  const uint64_t base = (w->end + 7) & ~(uint64_t)7;
  ts_status st = build(w, 0, base, &y, err);
  if (st == TS_OK) st = write_ifds(w, w->fd, 0, &y, err);
  layout_free(&y, w->n);
  return st;
}

/* A compressed COG's rows of tiles start on multiples of this: the
 * filesystem block fallocate moves whole (a fixed figure, not the
 * filesystem's, so that the file is the same on every one). */
#define TS_COG_ALIGN ((uint64_t)4096)

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

/* Where the IFDs, chained from TS_COG_IFDS, end: their size does not
 * depend on the offsets they hold. */
static ts_status ifds_end(tiff_writer *w, uint64_t *end, ts_error *err) {
  layout probe = {0};
  ts_status st = build(w, 1, TS_COG_IFDS, &probe, err);
  *end = st == TS_OK ? probe.at[w->n - 1] + probe.size[w->n - 1] : 0;
  layout_free(&probe, w->n);
  return st;
}

/* An uncompressed COG: every tile is tile_bytes, so each tile's place in
 * the final order is known before any is written. */
static ts_status place_tiles(tiff_writer *w, ts_error *err) {
  uint64_t pos;
  ts_status st = ifds_end(w, &pos, err);
  for (int L = w->n - 1; st == TS_OK && L >= 0; L--) {
    const int64_t nt = w->lv[L].across * w->lv[L].down;
    if (!(w->lv[L].place = malloc((size_t)nt * sizeof *w->lv[L].place))) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < nt; i++, pos += w->tile_bytes + 2 * w->frame) w->lv[L].place[i] = pos + w->frame;
  }
  return st;
}

/* A row's region: room for all its tiles at their largest, framed. */
static uint64_t row_room(const tiff_writer *w, int L) {
  return align_up((uint64_t)w->lv[L].across * (w->tile_room + 2 * w->frame), TS_COG_ALIGN);
}

/* Can the file, which holds only its header (size bytes), grow to end
 * (the largest file allowed: ulimit -f, the filesystem's) and have a range
 * cut out of it (COLLAPSE_RANGE: ext4, XFS)? Tried on the file itself:
 * set to end, a block cut, set back. */
static int can_place_rows(int fd, uint64_t end, uint64_t size) {
  const int ok = end <= (uint64_t)INT64_MAX && end >= 3 * TS_COG_ALIGN && ftruncate(fd, (off_t)end) == 0 &&
                 fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, (off_t)TS_COG_ALIGN, (off_t)TS_COG_ALIGN) == 0;
  return ftruncate(fd, (off_t)size) == 0 && ok;
}

/* A compressed COG: each row of tiles gets a region in the final order,
 * after the IFDs, from the smallest level to the full one. The file is
 * sparse until finish cuts the regions' unused ends out. Where the
 * filesystem cannot cut (tmpfs, NFS, ext4 with clusters over 4 KiB), the
 * tiles are appended instead and finish copies them: regions would only
 * be holes there, or on a filesystem without holes, zeros written over
 * the whole size the tiles could take. So too where the regions' end lies
 * past the largest file allowed, though the tiles themselves may fit. */
static ts_status place_rows(tiff_writer *w, ts_error *err) {
  uint64_t pos, end;
  ts_status st = ifds_end(w, &pos, err);
  if (st) return st;
  w->tile_room = ts_tiff_tile_room(w->comp, w->tile_bytes);
  pos = end = align_up(pos, TS_COG_ALIGN);
  for (int L = 0; L < w->n; L++) end += (uint64_t)w->lv[L].down * row_room(w, L);
  if (!can_place_rows(w->fd, end, w->end)) {
    w->copy = 1;
    return TS_OK;
  }
  for (int L = w->n - 1; st == TS_OK && L >= 0; L--) {
    level *l = &w->lv[L];
    l->row_at = malloc((size_t)l->down * sizeof *l->row_at);
    l->row_end = malloc((size_t)l->down * sizeof *l->row_end);
    l->row_next = calloc((size_t)l->down, sizeof *l->row_next);
    if (!l->row_at || !l->row_end || !l->row_next) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
    for (int64_t y = 0; y < l->down; y++, pos += row_room(w, L)) l->row_at[y] = l->row_end[y] = pos;
  }
  w->end = pos; /* a tile out of its row's order goes after the regions */
  return st;
}

/* Where each tile of a compressed COG goes in the final file: after the
 * IFDs, from the smallest level to the full one, row-major, framed, each
 * row starting on TS_COG_ALIGN (zeros before it) and the last one's
 * trailer ending the file. moved[L] gets one offset per tile (its bytes,
 * after the leader). */
static ts_status cog_order(tiff_writer *w, uint64_t **moved, ts_error *err) {
  uint64_t pos;
  ts_status st = ifds_end(w, &pos, err);
  for (int L = w->n - 1; st == TS_OK && L >= 0; L--) {
    const level *l = &w->lv[L];
    if (!(moved[L] = calloc((size_t)(l->across * l->down) + 1, 8))) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < l->across * l->down; i++) {
      if (i % l->across == 0) pos = align_up(pos, TS_COG_ALIGN);
      moved[L][i] = pos + w->frame, pos += l->size[i] + 2 * w->frame;
    }
  }
  return st;
}

/* What finish cuts out of row y of level L's region: its end past the
 * 4 KiB after its last tile (0 for the last region: the file ends there). */
static uint64_t row_cut(const tiff_writer *w, int L, int64_t y) {
  if (L == 0 && y == w->lv[0].down - 1) return 0;
  const uint64_t from = align_up(w->lv[L].row_end[y], TS_COG_ALIGN), to = w->lv[L].row_at[y] + row_room(w, L);
  return to > from ? to - from : 0;
}

/* Cut each row region's unused end out of the file, from the last region
 * to the first so that the ones before keep their place; then move every
 * tile's offset down by the cuts before its row (one pass: a cut that
 * failed and the ones before it moved nothing). 0 when the filesystem
 * cannot cut (nothing of the file is lost: off[] says where the tiles
 * are). */
static int collapse_rows(tiff_writer *w) {
  int64_t regions = 0, failed = -1; /* numbered in file order: the smallest level's rows first */
  for (int L = 0; L < w->n; L++) regions += w->lv[L].down;
  int64_t r = regions;
  for (int L = 0; L < w->n && failed < 0; L++)
    for (int64_t y = w->lv[L].down - 1; y >= 0 && failed < 0; y--) {
      const uint64_t n = row_cut(w, L, y), to = w->lv[L].row_at[y] + row_room(w, L);
      r--;
      if (n && fallocate(w->fd, FALLOC_FL_COLLAPSE_RANGE, (off_t)(to - n), (off_t)n) != 0) failed = r;
    }
  uint64_t gone = 0;
  r = 0;
  for (int L = w->n - 1; L >= 0; L--)
    for (int64_t y = 0; y < w->lv[L].down; y++, r++) {
      level *l = &w->lv[L];
      for (int64_t i = y * l->across; i < (y + 1) * l->across; i++)
        if (l->size[i]) l->off[i] -= gone;
      if (r > failed) gone += row_cut(w, L, y);
    }
  return failed < 0;
}

/* COG: IFDs (chained) from byte 16, then each level's tiles from the
 * smallest level to the full one (cog_order). Written in row regions, the
 * file becomes that by cutting the regions' unused ends out; else (a
 * tile out of order or over its room, regions that could not be placed)
 * the tiles are copied into OUT.cog in that order, which then replaces
 * the data file (*copied). */
static ts_status finish_cog(tiff_writer *w, int *copied, ts_error *err) {
  layout y = {0};
  uint64_t *moved[TS_MAX_LEVELS] = {0}, *written[TS_MAX_LEVELS];
  char *tmp = NULL;
  int out = -1;
  ts_status st = cog_order(w, moved, err);
  *copied = !(st == TS_OK && w->lv[0].row_at && !w->copy && collapse_rows(w));
  for (int L = 0; st == TS_OK && !*copied && L < w->n; L++)
    for (int64_t i = 0; st == TS_OK && i < w->lv[L].across * w->lv[L].down; i++)
      if (w->lv[L].off[i] != moved[L][i])
        st = ts_fail(err, TS_ERR_INTERNAL, "%s: level %d's tile %lld lies at %llu after the cuts, not %llu", w->path,
                     L, (long long)i, (unsigned long long)w->lv[L].off[i], (unsigned long long)moved[L][i]);
  if (st == TS_OK) {
    for (int L = 0; L < w->n; L++) written[L] = w->lv[L].off, w->lv[L].off = moved[L];
    st = build(w, 1, TS_COG_IFDS, &y, err);
    for (int L = 0; L < w->n; L++) w->lv[L].off = written[L];
  }
  if (st == TS_OK && !*copied) st = write_ifds(w, w->fd, 1, &y, err);
  if (st == TS_OK && *copied && !(tmp = ts_concat(w->path, ".cog"))) st = ts_fail(err, TS_ERR_NOMEM, "out of memory");
  if (st == TS_OK && *copied) {
    out = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (out < 0 || write_head(out, 1))
      st = ts_fail(err, TS_ERR_IO, "%s: cannot create %s: %s", w->path, tmp, strerror(errno));
    if (st == TS_OK) st = write_ifds(w, out, 1, &y, err);
  }
  for (int L = w->n - 1; st == TS_OK && out >= 0 && L >= 0; L--)
    for (int64_t i = 0; st == TS_OK && i < w->lv[L].across * w->lv[L].down; i++) {
      loff_t from = (loff_t)(w->lv[L].off[i] - w->frame), to = (loff_t)(moved[L][i] - w->frame);
      size_t left = w->lv[L].size[i] + 2 * w->frame; /* with its leader and trailer */
      while (st == TS_OK && left > 0) {
        ssize_t k = copy_file_range(w->fd, &from, out, &to, left, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0)
          st = ts_fail(err, TS_ERR_IO, "%s: cannot copy the tiles into %s: %s", w->path, tmp,
                       k < 0 ? strerror(errno) : "short copy");
        else left -= (size_t)k;
      }
    }
  for (int L = 0; L < w->n; L++) free(moved[L]);
  layout_free(&y, w->n);
  if (st == TS_OK && out >= 0 && fsync(out) != 0) st = ts_fail(err, TS_ERR_IO, "%s: cannot sync the output to disk", tmp);
  if (out >= 0) close(out);
  if (st == TS_OK && out >= 0 && rename(tmp, w->path) != 0)
    st = ts_fail(err, TS_ERR_IO, "%s: cannot rename %s to it: %s", w->path, tmp, strerror(errno));
  if (st && tmp) unlink(tmp);
  free(tmp);
  return st;
}

/* Placed tiles: the IFDs go where they were reserved, from TS_COG_IFDS. */
static ts_status finish_placed(tiff_writer *w, ts_error *err) {
  layout y = {0};
  ts_status st = build(w, 1, TS_COG_IFDS, &y, err);
  if (st == TS_OK) st = write_ifds(w, w->fd, 1, &y, err);
  layout_free(&y, w->n);
  return st;
}

/* A COG kept unfinished (a stop) has its IFDs after the data, and some
 * tiles are not there yet: its ghost area says so as GDAL says it of a
 * COG it has edited out of the layout (KNOWN_INCOMPATIBLE_EDITION=YES,
 * in the room the "NO\n " left), so no reader takes it for a COG. */
static ts_status mark_edited(tiff_writer *w, ts_error *err) {
  if (write_all(w->fd, "YES\n", 4, TS_COG_EDITION))
    return ts_fail(err, TS_ERR_IO, "%s: cannot write the TIFF header: %s", w->path, strerror(errno));
  return TS_OK;
}

static ts_status close_writer(tiff_writer *w, int keep, ts_error *err) {
  int copy = 0;
  ts_status st = keep && w->o.layout == TS_LAYOUT_COG ? mark_edited(w, err) : TS_OK;
  if (st == TS_OK)
    st = w->lv[0].place                         ? finish_placed(w, err)
         : keep || w->o.layout != TS_LAYOUT_COG ? finish_in_place(w, err)
                                                : finish_cog(w, &copy, err);
  /* the data must be on disk before the rename makes it the output */
  if (st == TS_OK && !copy && fsync(w->fd) != 0)
    st = ts_fail(err, TS_ERR_IO, "%s: cannot sync the output to disk", w->path);
  close(w->fd);
  w->fd = -1;
  writer_free(w);
  return st;
}

static ts_status tiff_finish(void *ctx, ts_error *err) { return close_writer(ctx, 0, err); }
static ts_status tiff_keep(void *ctx, ts_error *err) { return close_writer(ctx, 1, err); }

/* Checkpoints: tiles stay where they were written and the IFDs come only
 * at the end, so syncing the data is enough (the journal holds the
 * offsets). */
static ts_status tiff_locate(void *ctx, int L, ts_rect r, uint64_t *offset, uint64_t *size, ts_error *err) {
  tiff_writer *w = ctx;
  int64_t i = 0;
  ts_status st = tile_index(w, L, r, &i, err);
  if (st) return st;
  *offset = w->lv[L].off[i];
  *size = w->lv[L].size[i];
  return !*offset ? ts_fail(err, TS_ERR_INTERNAL, "%s: tile at (%lld, %lld) was not written", w->path,
                            (long long)r.x, (long long)r.y)
                  : TS_OK;
}

static ts_status tiff_sync(void *ctx, ts_error *err) {
  tiff_writer *w = ctx;
  if (fsync(w->fd) != 0) return ts_fail(err, TS_ERR_IO, "%s: cannot sync the output to disk", w->path);
  return TS_OK;
}

const ts_writer_ops ts_tiff_writer_ops = {
    .name = "tiff",
    .open = tiff_wopen,
    .encoder_new = ts_tiff_encoder_new,
    .encode = ts_tiff_encode,
    .bound = ts_tiff_bound,
    .encoder_free = ts_tiff_encoder_free,
    .write_encoded = tiff_write_encoded,
    .finish = tiff_finish,
    .keep = tiff_keep,
    .abort = tiff_abort,
    .locate = tiff_locate,
    .sync = tiff_sync,
};
