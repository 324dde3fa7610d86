/* Tile mode's TIFF reader, through the real read path: ts_reader_open on a
 * file, a cache of two blocks (so blocks are evicted and decoded again),
 * then rects across the image, assembled with a halo and a boundary mode
 * as a tile's input is. Reads are bounded: at most 4 Mpx per input. */
#include "fuzz.h"
#include "partition/assemble.h"
#include "tessera/io.h"
#include "tessera/partition.h"

static ts_status read_rect(void *ctx, ts_rect r, void *dst, int64_t stride, ts_error *err) {
  return ts_reader_read(ctx, r, dst, stride, err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  static unsigned char *buf, *scratch;
  enum { T = 64, H = 3, MAXB = (T + 2 * H) * (T + 2 * H) * 4 * 4 };
  if (!buf && (!(buf = malloc(MAXB)) || !(scratch = malloc(1 << 20)))) abort();
  ts_reader *r = NULL;
  ts_error e;
  if (ts_reader_open(fuzz_file(data, n, ".tif"), &r, &e) == TS_OK) {
    ts_reader_set_cache(r, 2);
    const ts_image_info *i = &r->info;
    int64_t budget = 4 << 20; /* pixels */
    int mode = (int)(n % 5); /* one of the five boundary modes per input */
    /* a very wide stripped image decodes whole rows for each 64-pixel rect
     * through a 4-block cache: one row of rects is enough */
    if (i->block_w * i->block_h * (int64_t)ts_dtype_size(i->dtype) * i->channels > (4 << 20) || i->w > (1 << 16))
      budget = (i->w + T - 1) / T * T * T < budget ? (i->w + T - 1) / T * T * T : budget;
    for (int64_t y = 0; y < i->h && budget > 0; y += T)
      for (int64_t x = 0; x < i->w && budget > 0; x += T) {
        ts_rect rect = {x - H, y - H, T + 2 * H, T + 2 * H};
        ts_image im = {rect.w, rect.h, i->channels, i->dtype, rect.w * (int64_t)ts_dtype_size(i->dtype) * i->channels,
                       buf};
        if (ts_assemble_scratch_bytes(rect) > (1 << 20)) abort();
        if (ts_assemble_rect(read_rect, r, i->w, i->h, rect, (ts_boundary)mode, 0, &im, scratch, &e)) {
          budget = 0; /* the first error ends the image, as it ends a run */
          break;
        }
        budget -= T * T;
      }
    /* what outputs would carry, touched as the writer copies it */
    const ts_image_meta *m = ts_reader_meta(r);
    unsigned sum = 0;
    for (int k = 0; m && k < m->n; k++)
      for (size_t b = 0; b < m->tags[k].bytes; b++) sum += m->tags[k].data[b];
    /* what of it holds after a pipeline: GDAL_METADATA's items parsed and
     * filtered, GDAL_NODATA's text read as the levels' nodata */
    for (int changed = 0; changed < 2; changed++) {
      ts_image_meta o;
      if (ts_image_meta_for_output(m, changed, changed ? 1 : i->channels, &o, &e) != TS_OK) continue;
      for (int k = 0; k < o.n; k++) sum += (unsigned)o.tags[k].bytes;
      const ts_meta_tag *nd = ts_meta_find(&o, 42113);
      sum += (unsigned)ts_reduce_make(TS_DOWNSAMPLE_MEAN, nd && nd->type == 2 ? (const char *)nd->data : NULL,
                                      i->dtype).has_nodata;
      ts_image_meta_free(&o);
    }
    const int64_t levels = i->levels;
    ts_reader_close(&r);
    /* every level of a pyramid opens (a few: each walks the directories) */
    for (int64_t L = 1; L < levels && L < 4; L++)
      if (ts_reader_open_level(fuzz_file(data, n, ".tif"), 0, L, &r, &e) == TS_OK) ts_reader_close(&r);
    if (sum == 0xdeadbeef) fputs("", stderr); /* keep the reads */
  }
  return 0;
}
