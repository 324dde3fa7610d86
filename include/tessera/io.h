/* tessera: image readers and writers.
 *
 * Each format is a const table of callbacks (ts_reader_ops / ts_writer_ops)
 * taking a context pointer; format.c picks the table. Readers read any rect
 * inside the image into a caller buffer, through a small cache of decoded
 * source blocks, so no step holds the whole image. Writers take rects
 * encoded by per-thread encoders (compression runs in parallel), stored
 * one at a time under a temporary name, and only ts_writer_finish gives
 * the file its final name. */
#ifndef TESSERA_IO_H
#define TESSERA_IO_H

#include "tessera/image.h"

/* TIFF output layouts (--layout): tags and IFD order (tiff_write.c). */
typedef enum ts_layout {
  TS_LAYOUT_PLAIN = 0, /* BigTIFF, reduced levels as SubIFDs */
  TS_LAYOUT_OME,       /* plain + OME-XML in the main IFD's ImageDescription */
  TS_LAYOUT_COG        /* Cloud-Optimized GeoTIFF: IFDs first, smallest overview's data first */
} ts_layout;
TS_API ts_status ts_layout_parse(const char *s, ts_layout *out);
TS_API const char *ts_layout_name(ts_layout l);

/* What an input says about where its pixels are and what they mean,
 * carried to TIFF outputs: raw TIFF tags (values little-endian, as a
 * BigTIFF writer stores them) and the physical pixel size. */
typedef struct ts_meta_tag {
  uint16_t tag, type; /* TIFF tag number and field type */
  uint64_t count;
  size_t bytes;
  unsigned char *data;
} ts_meta_tag;
typedef struct ts_image_meta {
  int n;
  ts_meta_tag *tags; /* GeoTIFF, GDAL_NODATA, GDAL_METADATA, resolution, ICC */
  double um_x, um_y; /* pixel size in micrometres (0: unknown): OME-XML, else the resolution tags */
} ts_image_meta;
TS_API void ts_image_meta_free(ts_image_meta *m);
/* The tag of that number, or NULL. */
TS_API const ts_meta_tag *ts_meta_find(const ts_image_meta *m, uint16_t tag);
/* *out = what of `in` still holds for an output of `channels` samples
 * made by a pipeline (changed != 0: it changed the values): a copy, but
 * GDAL_METADATA without the statistics (STATISTICS_* items) when the
 * values changed and without the items of bands the output lacks, as
 * gdal_translate does; the tag is dropped when no item is left. in may
 * be NULL (then *out is empty). Free with ts_image_meta_free. */
TS_API ts_status ts_image_meta_for_output(const ts_image_meta *in, int changed, int channels, ts_image_meta *out,
                                          ts_error *err);
/* Set ASCII tag `tag` of m to text (replacing the one there), or drop it
 * (text NULL). */
TS_API ts_status ts_image_meta_put_text(ts_image_meta *m, uint16_t tag, const char *text, ts_error *err);

typedef struct ts_image_info {
  int64_t w, h;
  int channels;
  ts_dtype dtype;
  int64_t block_w, block_h; /* native read unit: a tile, or strip rows x w */
  int64_t pages;            /* images in the file (TIFF directories); 1 for other formats */
  int64_t page;             /* the one read (0-based) */
  int64_t levels;           /* resolutions of that page (pyramidal TIFFs: SubIFDs or reduced IFDs); 1 otherwise */
  int64_t level;            /* the one read (open: the one asked for, --input-level) */
  int64_t masks;            /* that page's transparency masks (GDAL's internal masks; not read) */
  char format[16];          /* "tiff", "synthetic" */
  char detail[512];         /* human-readable layout: tiling, compression... */
} ts_image_info;

typedef struct ts_reader_ops {
  const char *name;
  /* Open image `page` (0: the first) of `path`, fill *info, return a
   * context in *ctx. Formats of one image refuse page > 0. */
  ts_status (*open)(const char *path, int64_t page, void **ctx, ts_image_info *info, ts_error *err);
  /* Keep at most `blocks` decoded source blocks in the cache. */
  void (*set_cache)(void *ctx, int64_t blocks);
  /* Read rect r (inside the image) into dst with row stride dst_stride. */
  ts_status (*read)(void *ctx, ts_rect r, void *dst, int64_t dst_stride, ts_error *err);
  void (*close)(void *ctx);
  /* What the file says of georeferencing, resolution, colour (NULL: nothing). */
  const ts_image_meta *(*meta)(void *ctx);
} ts_reader_ops;

typedef struct ts_reader {
  const ts_reader_ops *ops;
  void *ctx;
  ts_image_info info;
  char *path;
} ts_reader;

/* Open by content (a TIFF file) or by name ("synth:WxH[:dtype[:channels]]"
 * for the built-in deterministic test pattern). */
TS_API ts_status ts_reader_open(const char *path, ts_reader **out, ts_error *err);
/* The same for image `page` of a multi-page TIFF (--page). */
TS_API ts_status ts_reader_open_page(const char *path, int64_t page, ts_reader **out, ts_error *err);
/* ... at resolution `level` of a pyramidal TIFF (--input-level; 0: the full one). */
TS_API ts_status ts_reader_open_level(const char *path, int64_t page, int64_t level, ts_reader **out, ts_error *err);
/* The input's metadata, or NULL. Valid while the reader is open. */
TS_API const ts_image_meta *ts_reader_meta(const ts_reader *r);
TS_API void ts_reader_set_cache(ts_reader *r, int64_t blocks);
TS_API ts_status ts_reader_read(ts_reader *r, ts_rect rect, void *dst, int64_t dst_stride,
                                ts_error *err);
TS_API void ts_reader_close(ts_reader **r);
/* A reader over an image in memory (list mode pads whole images through
 * the same boundary code as tile mode). The view must outlive the reader;
 * nothing to close. */
TS_API ts_reader ts_reader_view(const ts_image *im);

typedef enum ts_compression {
  TS_COMPRESS_NONE = 0,
  TS_COMPRESS_DEFLATE,
  TS_COMPRESS_LZW,
  TS_COMPRESS_ZSTD,
  TS_COMPRESS_JPEG,
  TS_COMPRESS_BLOSC_LZ4,  /* Zarr only: Blosc with LZ4, byte shuffle */
  TS_COMPRESS_BLOSC_ZSTD  /* Zarr only: Blosc with zstd, byte shuffle */
} ts_compression;

/* "zlib" is deflate's other name (Zarr's word for it). */
TS_API ts_status ts_compression_parse(const char *s, ts_compression *out);
TS_API const char *ts_compression_name(ts_compression c);
/* Does compression c (or a deflate stream, deflated != 0: PNG, HDF5
 * images) take this level (-1: the default)? A usage error naming the
 * range if not. */
TS_API ts_status ts_compression_level_check(ts_compression c, int deflated, int level, ts_error *err);

typedef struct ts_writer_options {
  int64_t w, h;
  int channels;
  ts_dtype dtype;
  int64_t tile; /* output tile size, a multiple of 16 */
  ts_compression compression;
  int quality;  /* jpeg quality 1..100 */
  int level;    /* deflate 0..9 or zstd 1..22 level; -1: the format's default */
  int force;    /* replace an existing output */
  const char *description; /* stored in ImageDescription, may be NULL */
  int levels;              /* resolutions (1: flat); level L + 1 is ceil(level L / 2) per side */
  ts_layout layout;
  const char *downsample;  /* how levels were made, named in the metadata; not sent to workers */
  const ts_image_meta *meta; /* carried to the output (TIFF), may be NULL; not sent to workers */
  int has_nodata;          /* the output's nodata value (TIFF: GDAL_NODATA in meta; Zarr: fill_value; */
  double nodata;           /*   HDF5: the fill value and a _FillValue attribute), exact in the dtype */
  int put;                 /* encoders store the tiles they make (Zarr, a worker with --io direct) */
  int reopen;              /* a store resumed in place: keep what the partial holds */
  int zarr_format;         /* Zarr output: 2 (0: the default) or 3 */
  int shard;               /* Zarr v3: N x N chunks per shard file (0, 1: none) */
} ts_writer_options;

typedef struct ts_encoder_state ts_encoder_state; /* a backend's per-thread state */

typedef struct ts_writer_ops {
  const char *name;
  ts_status (*open)(const char *path, const ts_writer_options *o, void **ctx, ts_error *err);
  /* Per-thread encoders: encode() may run in many threads at once, each
   * with its own state; it turns the pixels of tile rect r (x, y multiples
   * of the tile; w, h the tile or up to the image edge) into the bytes
   * write_encoded() stores. When dst is not NULL and cap is at least
   * bound(e), it writes them there (*data == dst), sparing the caller a
   * copy; else *data is its own buffer. bound (NULL: no such hint) is the
   * most bytes one tile can take. */
  ts_status (*encoder_new)(const char *path, const ts_writer_options *o, ts_encoder_state **e,
                           ts_error *err);
  ts_status (*encode)(ts_encoder_state *e, int level, ts_rect r, const void *src, int64_t src_stride, void *dst,
                      size_t cap, const void **data, size_t *size, ts_error *err);
  size_t (*bound)(const ts_encoder_state *e);
  void (*encoder_free)(ts_encoder_state *e);
  /* An encoder that stores its own tiles (NULL: none does): puts says
   * whether this one does (o->put, where the format can); put stores an
   * encoded tile where the writer would (a directory store's chunk). */
  ts_status (*put)(ts_encoder_state *e, int level, ts_rect r, const void *data, size_t size, ts_error *err);
  int (*puts)(const ts_encoder_state *e);
  /* Store one encoded tile of level L (r in that level's pixels); calls
   * are serialized by the caller. */
  ts_status (*write_encoded)(void *ctx, int level, ts_rect r, const void *data, size_t size, ts_error *err);
  /* A tile of `size` bytes already in place: put by a worker, or kept
   * from the run a resume finishes (NULL: the format has none). */
  ts_status (*adopt)(void *ctx, int level, ts_rect r, uint64_t size, ts_error *err);
  ts_status (*finish)(void *ctx, ts_error *err); /* flush and close */
  /* Close what a stopped run keeps, tiles where they were written (NULL:
   * finish does that). */
  ts_status (*keep)(void *ctx, ts_error *err);
  void (*abort)(void *ctx);                      /* close, keep nothing */
  /* For checkpoints (NULL: the format cannot be resumed): where the bytes
   * of the tile at r lie in the file, and making everything written so far
   * durable (flush, fsync). */
  ts_status (*locate)(void *ctx, int level, ts_rect r, uint64_t *offset, uint64_t *size, ts_error *err);
  ts_status (*sync)(void *ctx, ts_error *err);
  /* A store resumed in place (NULL: a file, replayed from its previous
   * copy): the bytes of a tile locate placed at offset; 0, or -1 when
   * they are not there. */
  int (*read_back)(void *ctx, uint64_t offset, uint64_t size, void *dst);
} ts_writer_ops;

typedef struct ts_writer ts_writer;

/* Check the options (dtype, channels and compression fit the format) and
 * that `path` may be written: an existing file is refused unless o->force.
 * Creates `path` + ".partial" and writes there. */
TS_API ts_status ts_writer_open(const char *path, const ts_writer_options *o,
                                ts_writer **out, ts_error *err);
/* The file an output spec names (FILE.h5:/dataset -> FILE.h5), malloc'ed. */
TS_API char *ts_output_file(const char *spec);

/* A tile encoder for one thread (compression happens here, in parallel,
 * on any rank): it needs only the output's path (for the format and the
 * messages) and the options ts_writer_open accepted. */
typedef struct ts_encoder ts_encoder;
TS_API ts_status ts_encoder_new(const char *path, const ts_writer_options *o, ts_encoder **out,
                                ts_error *err);
TS_API void ts_encoder_free(ts_encoder **e);
/* Encode the tile at r from src; *data and *size stay valid until the next
 * call on the same encoder. With dst (cap >= ts_encoder_bound(e) > 0) the
 * bytes are written there when the format can (*data == dst). */
TS_API ts_status ts_encoder_encode(ts_encoder *e, int level, ts_rect r, const void *src, int64_t src_stride,
                                   void *dst, size_t cap, const void **data, size_t *size, ts_error *err);
/* The most bytes one encoded tile takes (0: the encoder takes no dst). */
TS_API size_t ts_encoder_bound(const ts_encoder *e);
/* Does this encoder store its tiles itself (ts_encoder_put)? */
TS_API int ts_encoder_puts(const ts_encoder *e);
TS_API ts_status ts_encoder_put(ts_encoder *e, int level, ts_rect r, const void *data, size_t size, ts_error *err);
/* Store an encoded tile. Not thread-safe: one caller at a time. The order
 * of the calls sets the file's byte layout. */
TS_API ts_status ts_writer_write_encoded(ts_writer *w, int level, ts_rect r, const void *data, size_t size,
                                         ts_error *err);
/* Checkpoints: can this writer be resumed (locate and sync exist); the
 * file offset and size of the tile stored at r; make all writes durable;
 * the temporary file's name. */
TS_API int ts_writer_resumable(const ts_writer *w);
TS_API ts_status ts_writer_locate(ts_writer *w, int level, ts_rect r, uint64_t *offset, uint64_t *size,
                                  ts_error *err);
TS_API ts_status ts_writer_sync(ts_writer *w, ts_error *err);
TS_API const char *ts_writer_tmp(const ts_writer *w);
/* A tile an encoder put, or a resume kept in place (ts_writer_in_place). */
TS_API ts_status ts_writer_adopt(ts_writer *w, int level, ts_rect r, uint64_t size, ts_error *err);
/* Is the output a directory store (Zarr), kept in place by a resume and
 * read back from there (0: a file, set aside and copied)? */
TS_API int ts_writer_in_place(const ts_writer *w);
TS_API int ts_writer_read_back(ts_writer *w, uint64_t offset, uint64_t size, void *dst);
/* Is the output spec such a store? */
TS_API int ts_output_in_place(const char *spec);
/* Remove a file, or a directory and all it holds: 0, or -1 (errno). */
TS_API int ts_remove_path(const char *path);
/* Complete the file and rename it to its final name. Frees *w. */
TS_API ts_status ts_writer_finish(ts_writer **w, ts_error *err);
/* Complete the file as far as it goes (a readable file: tiles never
 * written are absent) and keep it under its temporary name, for a job
 * stopped early. *kept: that name (malloc'ed). Frees *w. */
TS_API ts_status ts_writer_keep(ts_writer **w, char **kept, ts_error *err);
/* Drop the partial file. Frees *w. Safe on NULL. */
TS_API void ts_writer_abort(ts_writer **w);

/* Every image of a list-mode input (a directory of image files, @LIST.txt,
 * FILE.h5:/stack or a Zarr stack), decoded, in the list's order: fn gets
 * each one's name and pixels (valid during the call). An image that
 * cannot be read, or above max_pixels (0: no limit), is the error, naming
 * it. For kernels that load data once per rank (patch_replace's db=). */
typedef ts_status (*ts_image_fn)(void *ctx, const char *name, const ts_image *im, ts_error *err);
TS_API ts_status ts_images_each(const char *spec, int64_t max_pixels, ts_image_fn fn, void *ctx, ts_error *err);

#endif
