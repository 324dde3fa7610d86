/* A pipeline over one whole image (list mode). Kernels with a halo see the
 * image padded by the boundary mode before each kernel, which equals
 * chaining the scipy/OpenCV calls one by one; global kernels resolve
 * their statistics on this image alone; whole-image kernels (resize,
 * crop, otsu...) run as they are and may change the size. */
#include <stdlib.h>
#include <string.h>
#include "kernels/global.h"
#include "partition/assemble.h"
#include "tessera/pipeline.h"

/* scratch slots of the image runner (the pipeline's are 8..14; kernels own
 * 0..7, and 15 is a whole-image kernel's for an intermediate image: blend
 * resizes with= into it) */
enum { SLOT_A = 10, SLOT_B = 11, SLOT_PAD = 12, SLOT_STATS = 13, SLOT_RUNS = 14 };

/* Rows of an image in memory, as the assembly reads them. */
static ts_status read_image(void *im_, ts_rect r, void *dst, int64_t stride, ts_error *err) {
  const ts_image *im = im_;
  const size_t row = (size_t)r.w * ts_pixel_size(im);
  for (int64_t y = 0; y < r.h; y++) memcpy((char *)dst + y * stride, ts_image_at(im, r.x, r.y + y), row);
  return TS_OK;
}

/* im padded by h on each side with the boundary mode, into slot SLOT_PAD:
 * tile mode's input assembly, over the image in memory. */
static ts_status pad(const ts_image *im, int64_t h, ts_boundary b, double cval, ts_scratch *s, ts_image *out,
                     ts_error *err) {
  const ts_rect rect = {-h, -h, im->w + 2 * h, im->h + 2 * h};
  void *p = ts_scratch_get(s, SLOT_PAD, (size_t)ts_image_bytes(rect.w, rect.h, im->channels, im->dtype));
  void *runs = ts_scratch_get(s, SLOT_RUNS, ts_assemble_scratch_bytes(rect));
  if (!p || !runs)
    return ts_fail(err, TS_ERR_NOMEM, "out of memory for a %lldx%lld image", (long long)rect.w, (long long)rect.h);
  *out = ts_image_packed(p, rect.w, rect.h, im->channels, im->dtype);
  return ts_assemble_rect(read_image, (void *)im, im->w, im->h, rect, b, cval, out, runs, err);
}

/* A pixel kernel over the whole image cur into next (in `slot`). A global
 * kernel resolves its statistics on this image alone, into a copy whose
 * weights are this image's and freed here. */
static ts_status run_pixels(const ts_kernel *k, const ts_image *cur, ts_image *next, int slot, ts_boundary b,
                            double cval, ts_scratch *s, ts_error *err) {
  ts_kernel g = *k;
  const int global = ts_kernel_stages(k) > 0;
  if (global) {
    g.weights = NULL;
    g.nweights = 0;
  }
  ts_status st = global ? ts_global_resolve_image(&g, cur, s, SLOT_STATS, err) : TS_OK;
  ts_image src = *cur;
  if (!st && k->halo > 0) st = pad(cur, k->halo, b, cval, s, &src, err);
  if (!st) {
    int64_t bytes = ts_image_bytes(cur->w, cur->h, k->out_channels, k->out_dtype);
    void *buf = bytes < 0 ? NULL : ts_scratch_get(s, slot, (size_t)bytes);
    if (!buf)
      st = ts_fail(err, TS_ERR_NOMEM, "out of memory for a %lldx%lld image", (long long)cur->w, (long long)cur->h);
    else {
      *next = ts_image_packed(buf, cur->w, cur->h, k->out_channels, k->out_dtype);
      st = k->def->apply(&g, &src, next, s, err);
    }
  }
  if (global) free(g.weights);
  return st;
}

ts_status ts_pipeline_run_image(const ts_pipeline *p, const ts_image *in, ts_boundary b, double cval, ts_image *out,
                                ts_emits *em, ts_scratch *s, ts_error *err) {
  ts_image cur = *in;
  int slot = SLOT_A;
  for (int i = 0; i < p->n; i++) {
    const ts_kernel *k = &p->k[i];
    ts_image next;
    /* apply_image, when a kernel has one, is its list-mode form (a tile
     * kernel's may emit values: patch_replace's chosen patches) */
    ts_status st = k->def->apply_image ? k->def->apply_image(k, &cur, &next, slot, em, s, err)
                                       : run_pixels(k, &cur, &next, slot, b, cval, s, err);
    if (st) return st;
    if (next.data != cur.data) slot = slot == SLOT_A ? SLOT_B : SLOT_A; /* else: pixels passed through */
    cur = next;
  }
  *out = cur;
  return TS_OK;
}
