/* Run a prepared pipeline on one task: each kernel reads its input with
 * its halo and writes an output smaller by twice the halo; intermediates
 * ping-pong between two scratch buffers. */
#include "tessera/pipeline.h"

enum { SLOT_A = 8, SLOT_B = 9 };

ts_status ts_pipeline_run(const ts_pipeline *p, const ts_image *in, ts_image *out,
                          ts_scratch *scratch, ts_error *err) {
  if (in->w != out->w + 2 * p->halo || in->h != out->h + 2 * p->halo)
    return ts_fail(err, TS_ERR_INTERNAL, "pipeline input %lldx%lld does not match output %lldx%lld "
                   "with halo %lld", (long long)in->w, (long long)in->h, (long long)out->w,
                   (long long)out->h, (long long)p->halo);
  if (p->n == 0) {
    ts_image_copy(in, out);
    return TS_OK;
  }
  const ts_image *src = in;
  ts_image mid[2];
  int64_t rem = p->halo;
  for (int i = 0; i < p->n; i++) {
    const ts_kernel *k = &p->k[i];
    rem -= k->halo;
    ts_image *dst = out;
    if (i + 1 < p->n) {
      int64_t w = out->w + 2 * rem, h = out->h + 2 * rem;
      int64_t bytes = ts_image_bytes(w, h, k->out_channels, k->out_dtype);
      void *buf = ts_scratch_get(scratch, i % 2 ? SLOT_B : SLOT_A, (size_t)bytes);
      if (!buf) return ts_fail(err, TS_ERR_NOMEM, "out of memory for a %lldx%lld intermediate",
                               (long long)w, (long long)h);
      mid[i % 2] = ts_image_packed(buf, w, h, k->out_channels, k->out_dtype);
      dst = &mid[i % 2];
    }
    ts_status st = k->def->apply(k, src, dst, scratch, err);
    if (st) return st;
    src = dst;
  }
  return TS_OK;
}
