/* TIFF reader: tiled or stripped, classic or BigTIFF, any compression
 * libtiff decodes; u8, u16, f32 with 1-4 contiguous samples. Rects are
 * served from a small LRU cache of decoded source blocks (tiles, strips,
 * or bands of scanlines for very tall strips), so memory never depends on
 * the image size. libtiff errors go to a per-handle handler into the
 * reader's own error record: no global handlers. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <tiffio.h>
#include <unistd.h>
#include "io/backends.h"
#include "io/tiff_util.h"

/* Strips larger than this are read as bands of scanlines instead. */
#define TS_MAX_STRIP_BYTES (8 << 20)
#define TS_BAND_BYTES (1 << 20)

typedef struct block {
  int64_t index; /* -1 = empty */
  uint64_t used; /* LRU clock */
  void *data;
} block;

typedef struct tiff_reader {
  TIFF *tif;
  char *path;
  ts_tiff_log log; /* first libtiff error, and first corrupt-data warning, since the last reset */
  ts_image_info info;
  int tiled, scanline;
  int invert; /* MinIsWhite: samples inverted on read, so 0 is black as everywhere else */
  int64_t bw, bh;      /* block size */
  int64_t rps;         /* strips: rows per strip (bh may be a band of them) */
  int64_t bcols;       /* blocks across */
  size_t block_bytes;  /* bw * bh * pixel */
  size_t px;           /* bytes per pixel */
  block *cache;
  int64_t cap, n;
  uint64_t clock;
  ts_membuf mem; /* opened from memory: the file's bytes (not owned) */
  int in_memory;
  ts_image_meta meta; /* the tags outputs carry (tiff_meta.c) */
  int nsub;           /* the page's SubIFDs (its levels when > 0) */
  int masks;          /* the page's transparency masks (not read) */
} tiff_reader;

static const char *libtiff_msg(tiff_reader *r) {
  return r->log.error[0] ? r->log.error : r->log.corrupt[0] ? r->log.corrupt : "libtiff error";
}

/* A warning libtiff passed over that means the pixels would be wrong. */
static ts_status corrupt(tiff_reader *r, const char *where, ts_error *err) {
  return ts_fail(err, TS_ERR_FORMAT, "%s: corrupt or truncated TIFF%s: libtiff %s", r->path, where, r->log.corrupt);
}

static void tiff_close(void *ctx) {
  tiff_reader *r = ctx;
  if (!r) return;
  if (r->tif) TIFFClose(r->tif);
  ts_image_meta_free(&r->meta);
  for (int64_t i = 0; i < r->n; i++) free(r->cache[i].data);
  free(r->cache);
  free(r->path);
  free(r);
}

static const char *sample_desc(int bits, int fmt, char *buf, size_t cap) {
  const char *kind = fmt == SAMPLEFORMAT_INT ? "signed integer"
                     : fmt == SAMPLEFORMAT_IEEEFP ? "float"
                     : fmt == SAMPLEFORMAT_UINT ? "unsigned integer"
                     : "complex or undefined";
  snprintf(buf, cap, "%d-bit %s", bits, kind);
  return buf;
}

static const char *compression_desc(uint16_t c) {
  switch (c) {
    case COMPRESSION_NONE: return "none";
    case COMPRESSION_LZW: return "lzw";
    case COMPRESSION_ADOBE_DEFLATE: case COMPRESSION_DEFLATE: return "deflate";
    case COMPRESSION_JPEG: return "jpeg";
    case COMPRESSION_OJPEG: return "old-style jpeg";
    case COMPRESSION_PACKBITS: return "packbits";
    case COMPRESSION_ZSTD: return "zstd";
    case COMPRESSION_LZMA: return "lzma";
    case COMPRESSION_WEBP: return "webp";
    case COMPRESSION_CCITTFAX3: case COMPRESSION_CCITTFAX4: return "ccitt fax";
    default: return "other";
  }
}

/* Refuse files whose data runs past their end before any work starts. */
static ts_status check_extent(tiff_reader *r, ts_error *err) {
  struct stat st;
  if (r->in_memory) st.st_size = (off_t)r->mem.size;
  else if (fstat(TIFFFileno(r->tif), &st) != 0) return TS_OK;
  uint32_t n = r->tiled ? TIFFNumberOfTiles(r->tif) : TIFFNumberOfStrips(r->tif);
  /* as many offsets as the image has tiles or strips (libtiff pads a short
   * array with a warning, handled as corrupt; an absent one leaves none) */
  const int64_t need = r->tiled ? ((r->info.w + r->bw - 1) / r->bw) * ((r->info.h + r->bh - 1) / r->bh)
                                 : (r->info.h + r->rps - 1) / r->rps;
  if ((int64_t)n < need)
    return ts_fail(err, TS_ERR_FORMAT, "%s: corrupt: its %s offsets list %u, the image needs %lld", r->path,
                   r->tiled ? "tile" : "strip", n, (long long)need);
  for (uint32_t i = 0; i < n; i++) {
    int bad = 0;
    uint64_t off = TIFFGetStrileOffsetWithErr(r->tif, i, &bad);
    uint64_t len = TIFFGetStrileByteCountWithErr(r->tif, i, &bad);
    if (bad)
      return ts_fail(err, TS_ERR_FORMAT, "%s: cannot read the offset of %s %u: %s", r->path,
                     r->tiled ? "tile" : "strip", i, libtiff_msg(r));
    if (off + len > (uint64_t)st.st_size || off + len < off)
      return ts_fail(err, TS_ERR_FORMAT, "%s: truncated or corrupt: %s %u of %u ends at byte %llu "
                     "but the file has %lld bytes", r->path, r->tiled ? "tile" : "strip", i, n,
                     (unsigned long long)(off + len), (long long)st.st_size);
  }
  return TS_OK;
}

/* Pages and levels. A directory whose NewSubfileType says "reduced
 * resolution" is a level of the page before it (GDAL's COG, vips
 * --pyramid without --subifd), wherever it lies before the next page; a
 * page's SubIFDs are its levels when it has them (OME-TIFF, vips
 * --subifd). A transparency mask after a page (GDAL's internal nodata
 * masks, one per level, interleaved with the levels or after them) is
 * neither: it is counted and not read. Selects the directory of
 * info->level of `page`. */
static ts_status find_level(tiff_reader *r, int64_t page, int64_t level, ts_image_info *info, ts_error *err) {
  const tdir_t nd = TIFFNumberOfDirectories(r->tif);
  int64_t pages = 0, dir = -1, reduced = 0;
  tdir_t lev[TS_MAX_LEVELS]; /* the directories of the page's levels 1.. */
  for (tdir_t d = 0; d < nd; d++) { /* read in turn: TIFFSetDirectory(d) starts from the first */
    if (d > 0 && !TIFFReadDirectory(r->tif))
      return ts_fail(err, TS_ERR_FORMAT, "%s: cannot read directory %u: %s", r->path, (unsigned)d, libtiff_msg(r));
    uint32_t sft = 0;
    TIFFGetField(r->tif, TIFFTAG_SUBFILETYPE, &sft);
    const int ours = pages > 0 && pages - 1 == page;
    if ((sft & FILETYPE_MASK) && pages > 0) {
      r->masks += ours;
      continue;
    }
    if ((sft & FILETYPE_REDUCEDIMAGE) && pages > 0) {
      if (ours && reduced < TS_MAX_LEVELS - 1) lev[reduced++] = d;
      continue;
    }
    if (pages++ == page) dir = d;
  }
  info->pages = pages;
  info->page = page;
  if (dir < 0)
    return ts_fail(err, TS_ERR_USAGE, "%s: has %lld page%s; --page %lld is not one (0 to %lld)", r->path,
                   (long long)pages, pages == 1 ? "" : "s", (long long)page, (long long)pages - 1);
  if (nd > 1 && !TIFFSetDirectory(r->tif, (tdir_t)dir))
    return ts_fail(err, TS_ERR_FORMAT, "%s: cannot read page %lld: %s", r->path, (long long)page, libtiff_msg(r));
  uint16_t nsub = 0;
  uint64_t *subs = NULL, sub[TS_MAX_LEVELS];
  if (TIFFGetField(r->tif, TIFFTAG_SUBIFD, &nsub, &subs) && nsub > 0) {
    if (nsub >= TS_MAX_LEVELS) nsub = TS_MAX_LEVELS - 1;
    memcpy(sub, subs, nsub * sizeof *sub); /* libtiff's array goes with the directory */
    reduced = nsub;
    r->nsub = nsub;
  } else {
    nsub = 0;
  }
  info->levels = 1 + reduced;
  info->masks = r->masks;
  info->level = level;
  if (level >= info->levels)
    return ts_fail(err, TS_ERR_USAGE, "%s: page %lld has %lld level%s; --input-level %lld is not one (0 to %lld)",
                   r->path, (long long)page, (long long)info->levels, info->levels == 1 ? "" : "s", (long long)level,
                   (long long)info->levels - 1);
  int ok = level == 0 || (nsub ? TIFFSetSubDirectory(r->tif, sub[level - 1]) : TIFFSetDirectory(r->tif, lev[level - 1]));
  if (!ok)
    return ts_fail(err, TS_ERR_FORMAT, "%s: cannot read level %lld of page %lld: %s", r->path, (long long)level,
                   (long long)page, libtiff_msg(r));
  return TS_OK;
}

/* Open `path`, or with bytes != NULL the file's n bytes in memory. */
static ts_status open_tiff(const char *path, const void *bytes, size_t n, int64_t page, void **ctx,
                           ts_image_info *info, ts_error *err) {
  tiff_reader *r = calloc(1, sizeof *r);
  if (!r || !(r->path = strdup(path))) {
    free(r);
    return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  }
  *ctx = r;
  TIFFOpenOptions *opts = ts_tiff_read_options(&r->log);
  /* a hostile header cannot make libtiff allocate more than this at once */
  TIFFOpenOptionsSetMaxSingleMemAlloc(opts, (tmsize_t)1 << 31);
  if (bytes) {
    r->in_memory = 1;
    r->mem = (ts_membuf){.p = (unsigned char *)bytes, .size = n, .readonly = 1};
    r->tif = ts_tiff_mem_open(path, "rm", &r->mem, opts);
  } else {
    r->tif = TIFFOpenExt(path, "rm", opts) /* m: no mmap, RSS stays small */;
  }
  TIFFOpenOptionsFree(opts);
  if (!r->tif) return ts_fail(err, TS_ERR_FORMAT, "%s: cannot read TIFF: %s", path, libtiff_msg(r));
  ts_status fst = find_level(r, page, info->level, info, err);
  if (fst) return fst;

  uint32_t w = 0, h = 0;
  uint16_t spp = 1, bits = 1, fmt = SAMPLEFORMAT_UINT, planar = PLANARCONFIG_CONTIG,
           photo = PHOTOMETRIC_MINISBLACK, comp = COMPRESSION_NONE;
  TIFFGetField(r->tif, TIFFTAG_IMAGEWIDTH, &w);
  TIFFGetField(r->tif, TIFFTAG_IMAGELENGTH, &h);
  TIFFGetFieldDefaulted(r->tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
  TIFFGetFieldDefaulted(r->tif, TIFFTAG_BITSPERSAMPLE, &bits);
  TIFFGetFieldDefaulted(r->tif, TIFFTAG_SAMPLEFORMAT, &fmt);
  TIFFGetFieldDefaulted(r->tif, TIFFTAG_PLANARCONFIG, &planar);
  TIFFGetField(r->tif, TIFFTAG_PHOTOMETRIC, &photo);
  TIFFGetFieldDefaulted(r->tif, TIFFTAG_COMPRESSION, &comp);
  char buf[96];

  if (bits == 8 && fmt == SAMPLEFORMAT_UINT) info->dtype = TS_U8;
  else if (bits == 16 && fmt == SAMPLEFORMAT_UINT) info->dtype = TS_U16;
  else if (bits == 32 && fmt == SAMPLEFORMAT_IEEEFP) info->dtype = TS_F32;
  else
    return ts_fail(err, TS_ERR_FORMAT, "%s: unsupported sample format: %s; tessera reads 8- and "
                   "16-bit unsigned integer and 32-bit float samples", path,
                   sample_desc(bits, fmt, buf, sizeof buf));
  if (spp < 1 || spp > TS_MAX_CHANNELS)
    return ts_fail(err, TS_ERR_FORMAT, "%s: %u samples per pixel; tessera reads 1 to %d", path, spp,
                   TS_MAX_CHANNELS);
  if (spp > 1 && planar != PLANARCONFIG_CONTIG)
    return ts_fail(err, TS_ERR_FORMAT, "%s: separate planar configuration is not supported; "
                   "tessera reads interleaved (contiguous) samples", path);
  if (photo == PHOTOMETRIC_PALETTE)
    return ts_fail(err, TS_ERR_FORMAT, "%s: palette (colormap) images are not supported in tile "
                   "mode; convert to RGB first", path);
  if (photo == PHOTOMETRIC_MINISWHITE) {
    if (info->dtype == TS_F32 || spp > 2)
      return ts_fail(err, TS_ERR_FORMAT, "%s: MinIsWhite (white is 0) is read for 8- and 16-bit gray images; this "
                     "one is %s with %u samples", path, sample_desc(bits, fmt, buf, sizeof buf), spp);
    r->invert = 1;
  }
  if (photo == PHOTOMETRIC_YCBCR) {
    if (comp != COMPRESSION_JPEG)
      return ts_fail(err, TS_ERR_FORMAT, "%s: YCbCr without JPEG compression is not supported", path);
    TIFFSetField(r->tif, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB); /* libtiff converts */
  }
  if (!TIFFIsCODECConfigured(comp))
    return ts_fail(err, TS_ERR_FORMAT, "%s: compression %u (%s) is not available in this libtiff",
                   path, comp, compression_desc(comp));

  info->w = w;
  info->h = h;
  info->channels = spp;
  if (w == 0 || h == 0) return TS_OK; /* ts_reader_open reports it */
  r->px = ts_dtype_size(info->dtype) * spp;
  r->tiled = TIFFIsTiled(r->tif);
  uint32_t rps = h;
  if (r->tiled) {
    uint32_t tw = 0, th = 0;
    TIFFGetField(r->tif, TIFFTAG_TILEWIDTH, &tw);
    TIFFGetField(r->tif, TIFFTAG_TILELENGTH, &th);
    if (tw == 0 || th == 0)
      return ts_fail(err, TS_ERR_FORMAT, "%s: tiled TIFF with tile size %ux%u", path, tw, th);
    r->bw = tw;
    r->bh = th;
  } else {
    TIFFGetFieldDefaulted(r->tif, TIFFTAG_ROWSPERSTRIP, &rps);
    if (rps == 0 || rps > h) rps = h;
    r->rps = rps;
    r->bw = w;
    r->bh = rps;
    if ((uint64_t)rps * w * r->px > TS_MAX_STRIP_BYTES) {
      /* a tall strip (often the whole image): read bands of scanlines */
      r->scanline = 1;
      int64_t rows = TS_BAND_BYTES / ((int64_t)w * (int64_t)r->px);
      r->bh = rows < 1 ? 1 : rows;
    }
  }
  if (ts_image_bytes(w, h, spp, info->dtype) < 0) return TS_OK; /* reported by the caller */
  int64_t bb = ts_image_bytes(r->bw, r->bh, spp, info->dtype);
  if (bb < 0 || bb > ((int64_t)1 << 31))
    return ts_fail(err, TS_ERR_FORMAT, "%s: a %s of %lldx%lld pixels is too large to decode",
                   path, r->tiled ? "tile" : "strip", (long long)r->bw, (long long)r->bh);
  r->block_bytes = (size_t)bb;
  r->bcols = (w + r->bw - 1) / r->bw;
  info->block_w = r->bw;
  info->block_h = r->bh;
  snprintf(info->format, sizeof info->format, "tiff");
  char layout[96], pages[96] = "", sub[96] = "", masks[64] = "";
  if (r->tiled) snprintf(layout, sizeof layout, "tiles %lldx%lld", (long long)r->bw, (long long)r->bh);
  else snprintf(layout, sizeof layout, "strips of %u row%s%s", rps, rps == 1 ? "" : "s",
                r->scanline ? " (read in bands of rows)" : "");
  if (info->pages > 1)
    snprintf(pages, sizeof pages, ", %lld pages (reads page %lld; --page N picks another)", (long long)info->pages,
             (long long)page);
  char subs[24] = "";
  if (r->nsub) snprintf(subs, sizeof subs, " %d SubIFD%s:", r->nsub, r->nsub == 1 ? "" : "s");
  if (info->levels > 1)
    snprintf(sub, sizeof sub, ",%s %lld levels (reads level %lld; --input-level N picks another)", subs,
             (long long)info->levels, (long long)info->level);
  if (r->masks)
    snprintf(masks, sizeof masks, ", %d transparency mask%s (not read)", r->masks, r->masks == 1 ? "" : "s");
  unsigned char head[TS_TIFF_HEAD_BYTES]; /* a file's; bytes in memory are read where they are */
  const ssize_t got = bytes ? (ssize_t)n : pread(TIFFFileno(r->tif), head, sizeof head, 0);
  const int cog = got > 0 ? ts_tiff_cog_layout(bytes ? bytes : head, (size_t)got) : 0;
  snprintf(info->detail, sizeof info->detail, "%s%s, %s, compression %s, photometric %u%s%s%s%s",
           TIFFIsBigTIFF(r->tif) ? "BigTIFF" : "classic TIFF",
           cog > 0 ? " in GDAL's COG layout" : cog < 0 ? " (edited out of GDAL's COG layout)" : "", layout,
           compression_desc(comp), photo, r->invert ? " (MinIsWhite: inverted on read)" : "", pages, sub, masks);
  if (!bytes) {
    ts_status mst = ts_tiff_meta_read(path, TIFFCurrentDirOffset(r->tif), &r->meta, err);
    if (mst) return mst;
  }
  r->info = *info;
  r->cap = 64;
  if (r->log.corrupt[0]) return corrupt(r, "", err); /* the directory's own warnings (a short offsets array) */
  return check_extent(r, err);
}

static const ts_image_meta *tiff_meta(void *ctx) { return &((tiff_reader *)ctx)->meta; }

static ts_status tiff_open(const char *path, int64_t page, void **ctx, ts_image_info *info, ts_error *err) {
  return open_tiff(path, NULL, 0, page, ctx, info, err);
}

ts_status ts_tiff_open_memory(const char *name, const void *bytes, size_t n, void **ctx, ts_image_info *info,
                              ts_error *err) {
  return open_tiff(name, bytes, n, 0, ctx, info, err);
}

static void tiff_set_cache(void *ctx, int64_t blocks) {
  tiff_reader *r = ctx;
  if (blocks < 4) blocks = 4;
  if (blocks < r->n) { /* shrink: drop the oldest */
    for (int64_t i = blocks; i < r->n; i++) free(r->cache[i].data);
    r->n = blocks;
  }
  r->cap = blocks;
}

/* Decode block `index` into b->data. */
static ts_status decode(tiff_reader *r, int64_t index, block *b, ts_error *err) {
  int64_t bx = index % r->bcols, by = index / r->bcols;
  r->log.error[0] = r->log.corrupt[0] = '\0';
  tmsize_t got, want = (tmsize_t)r->block_bytes;
  if (r->tiled) {
    uint32_t t = TIFFComputeTile(r->tif, (uint32_t)(bx * r->bw), (uint32_t)(by * r->bh), 0, 0);
    got = TIFFReadEncodedTile(r->tif, t, b->data, (tmsize_t)r->block_bytes);
    if (got < 0 || got < want)
      return ts_fail(err, TS_ERR_FORMAT, "%s: cannot decode tile %u (x %lld, y %lld): %s", r->path,
                     t, (long long)(bx * r->bw), (long long)(by * r->bh),
                     got < 0 ? libtiff_msg(r) : "it decodes to fewer bytes than a tile holds (truncated)");
  } else if (!r->scanline) {
    got = TIFFReadEncodedStrip(r->tif, (uint32_t)by, b->data, (tmsize_t)r->block_bytes);
    const int64_t rows = (by + 1) * r->bh <= r->info.h ? r->bh : r->info.h - by * r->bh; /* the last is shorter */
    want = (tmsize_t)(rows * r->info.w * (int64_t)r->px);
    if (got < 0 || got < want)
      return ts_fail(err, TS_ERR_FORMAT, "%s: cannot decode strip %lld (rows from %lld): %s",
                     r->path, (long long)by, (long long)(by * r->bh),
                     got < 0 ? libtiff_msg(r) : "it decodes to fewer bytes than its rows hold (truncated)");
  } else {
    int64_t y0 = by * r->bh, y1 = y0 + r->bh > r->info.h ? r->info.h : y0 + r->bh;
    size_t row = (size_t)r->info.w * r->px;
    for (int64_t y = y0; y < y1; y++)
      if (TIFFReadScanline(r->tif, (char *)b->data + (size_t)(y - y0) * row, (uint32_t)y, 0) < 0)
        return ts_fail(err, TS_ERR_FORMAT, "%s: cannot decode row %lld: %s", r->path, (long long)y,
                       libtiff_msg(r));
  }
  if (r->log.corrupt[0]) return corrupt(r, ", in the data", err); /* decoded, but padded or guessed */
  if (r->invert) { /* MinIsWhite: v -> max - v */
    if (r->info.dtype == TS_U8)
      for (size_t i = 0; i < r->block_bytes; i++) ((uint8_t *)b->data)[i] = (uint8_t)~((uint8_t *)b->data)[i];
    else
      for (size_t i = 0; i < r->block_bytes / 2; i++) ((uint16_t *)b->data)[i] = (uint16_t)~((uint16_t *)b->data)[i];
  }
  b->index = index;
  return TS_OK;
}

/* The cached block `index`, decoding it into the least recently used slot
 * when it is not there. */
static ts_status get_block(tiff_reader *r, int64_t index, block **out, ts_error *err) {
  block *victim = NULL;
  for (int64_t i = 0; i < r->n; i++) {
    block *b = &r->cache[i];
    if (b->index == index) {
      b->used = ++r->clock;
      *out = b;
      return TS_OK;
    }
    if (!victim || b->used < victim->used) victim = b;
  }
  if (r->n < r->cap) {
    block *grown = realloc(r->cache, (size_t)r->cap * sizeof *grown);
    if (!grown) return ts_fail(err, TS_ERR_NOMEM, "%s: out of memory for the tile cache", r->path);
    r->cache = grown;
    victim = &r->cache[r->n];
    victim->data = malloc(r->block_bytes);
    if (!victim->data) return ts_fail(err, TS_ERR_NOMEM, "%s: out of memory for the tile cache", r->path);
    r->n++;
  }
  victim->index = -1;
  victim->used = ++r->clock;
  ts_status st = decode(r, index, victim, err);
  if (st) return st;
  *out = victim;
  return TS_OK;
}

static ts_status tiff_read(void *ctx, ts_rect rc, void *dst, int64_t dst_stride, ts_error *err) {
  tiff_reader *r = ctx;
  const int64_t bx0 = rc.x / r->bw, bx1 = (rc.x + rc.w - 1) / r->bw;
  const int64_t by0 = rc.y / r->bh, by1 = (rc.y + rc.h - 1) / r->bh;
  const int64_t bstride = r->bw * (int64_t)r->px;
  for (int64_t by = by0; by <= by1; by++)
    for (int64_t bx = bx0; bx <= bx1; bx++) {
      block *b = NULL;
      ts_status st = get_block(r, by * r->bcols + bx, &b, err);
      if (st) return st;
      /* intersection of the block with the rect */
      int64_t x0 = bx * r->bw > rc.x ? bx * r->bw : rc.x;
      int64_t x1 = (bx + 1) * r->bw < rc.x + rc.w ? (bx + 1) * r->bw : rc.x + rc.w;
      int64_t y0 = by * r->bh > rc.y ? by * r->bh : rc.y;
      int64_t y1 = (by + 1) * r->bh < rc.y + rc.h ? (by + 1) * r->bh : rc.y + rc.h;
      size_t len = (size_t)(x1 - x0) * r->px;
      for (int64_t y = y0; y < y1; y++)
        memcpy((char *)dst + (y - rc.y) * dst_stride + (x0 - rc.x) * (int64_t)r->px,
               (char *)b->data + (y - by * r->bh) * bstride + (x0 - bx * r->bw) * (int64_t)r->px,
               len);
    }
  return TS_OK;
}

const ts_reader_ops ts_tiff_reader_ops = {
    .name = "tiff",
    .open = tiff_open,
    .meta = tiff_meta,
    .set_cache = tiff_set_cache,
    .read = tiff_read,
    .close = tiff_close,
};
