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

ts_status ts_pipeline_run_bands(const ts_pipeline *p, const ts_image *in, ts_image *out,
                                ts_scratch **scratch, int nthreads, ts_error *err) {
  if (nthreads <= 1 || p->n == 0) return ts_pipeline_run(p, in, out, scratch[0], err);
  if (in->w != out->w + 2 * p->halo || in->h != out->h + 2 * p->halo)
    return ts_fail(err, TS_ERR_INTERNAL, "pipeline input does not match output with halo");
  const ts_image *src = in;
  ts_image mid[2];
  int64_t rem = p->halo;
  ts_status st = TS_OK;
  for (int i = 0; i < p->n && st == TS_OK; i++) {
    const ts_kernel *k = &p->k[i];
    rem -= k->halo;
    ts_image *dst = out;
    if (i + 1 < p->n) {
      int64_t w = out->w + 2 * rem, h = out->h + 2 * rem;
      int64_t bytes = ts_image_bytes(w, h, k->out_channels, k->out_dtype);
      void *buf = ts_scratch_get(scratch[0], i % 2 ? SLOT_B : SLOT_A, (size_t)bytes);
      if (!buf) return ts_fail(err, TS_ERR_NOMEM, "out of memory for a %lldx%lld intermediate",
                               (long long)w, (long long)h);
      mid[i % 2] = ts_image_packed(buf, w, h, k->out_channels, k->out_dtype);
      dst = &mid[i % 2];
    }
    /* every kernel computes each output row from its input rows alone, so
     * a band of rows is the same pure function on sub-views: the same
     * bytes for any number of bands */
    const int64_t h = dst->h;
    const int nb = (int)(h < nthreads ? h : nthreads);
#pragma omp parallel for num_threads(nb) schedule(static, 1)
    for (int b = 0; b < nb; b++) {
      int64_t y0 = h * b / nb, y1 = h * (b + 1) / nb;
      ts_image bin = ts_image_sub(src, (ts_rect){0, y0, src->w, y1 - y0 + 2 * k->halo});
      ts_image bout = ts_image_sub(dst, (ts_rect){0, y0, dst->w, y1 - y0});
      ts_error e = {0};
      ts_status s = k->def->apply(k, &bin, &bout, scratch[b], &e);
      if (s) {
#pragma omp critical(ts_band_error)
        if (st == TS_OK) st = ts_fail(err, s, "%s", e.msg);
      }
    }
    src = dst;
  }
  return st;
}
