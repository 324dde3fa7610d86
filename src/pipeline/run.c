/* Run a prepared pipeline (or its first n kernels) on one task: each
 * kernel reads its input with its halo and writes an output smaller by
 * twice the halo; intermediates ping-pong between two scratch buffers.
 * With several threads, each kernel's output rows are split into bands:
 * every kernel computes a row from its input rows alone, so a band is the
 * same pure function on sub-views and the bytes do not depend on the
 * thread count. */
#include "tessera/pipeline.h"

enum { SLOT_A = 8, SLOT_B = 9 };

int64_t ts_pipeline_halo_upto(const ts_pipeline *p, int n) {
  int64_t h = 0;
  for (int i = 0; i < n && i < p->n; i++) h += p->k[i].halo;
  return h;
}

/* Apply kernel k from src to dst with nthreads bands. */
static ts_status apply(const ts_kernel *k, const ts_image *src, ts_image *dst, ts_scratch **scratch,
                       int nthreads, ts_error *err) {
  if (nthreads <= 1) return k->def->apply(k, src, dst, scratch[0], err);
  ts_status st = TS_OK;
  const int64_t h = dst->h;
  const int nb = (int)(h < nthreads ? h : nthreads);
  const int64_t a = k->align > 1 ? k->align : 1; /* bands start on its block grid */
#pragma omp parallel for num_threads(nb) schedule(static, 1)
  for (int b = 0; b < nb; b++) {
    int64_t y0 = h * b / nb / a * a, y1 = b + 1 == nb ? h : h * (b + 1) / nb / a * a;
    if (y1 <= y0) continue;
    ts_image bin = ts_image_sub(src, (ts_rect){0, y0, src->w, y1 - y0 + 2 * k->halo});
    ts_image bout = ts_image_sub(dst, (ts_rect){0, y0, dst->w, y1 - y0});
    ts_error e = {0};
    ts_status s = k->def->apply(k, &bin, &bout, scratch[b], &e);
    if (s) {
#pragma omp critical(ts_band_error)
      if (st == TS_OK) st = ts_fail(err, s, "%s", e.msg);
    }
  }
  return st;
}

ts_status ts_pipeline_run_upto(const ts_pipeline *p, int n, const ts_image *in, ts_image *out,
                               ts_scratch **scratch, int nthreads, ts_error *err) {
  const int64_t halo = ts_pipeline_halo_upto(p, n);
  if (in->w != out->w + 2 * halo || in->h != out->h + 2 * halo)
    return ts_fail(err, TS_ERR_INTERNAL, "pipeline input %lldx%lld does not match output %lldx%lld "
                   "with halo %lld", (long long)in->w, (long long)in->h, (long long)out->w,
                   (long long)out->h, (long long)halo);
  if (n == 0) {
    ts_image_copy(in, out);
    return TS_OK;
  }
  const ts_image *src = in;
  ts_image mid[2];
  int64_t rem = halo;
  for (int i = 0; i < n; i++) {
    const ts_kernel *k = &p->k[i];
    rem -= k->halo;
    ts_image *dst = out;
    if (i + 1 < n) {
      int64_t w = out->w + 2 * rem, h = out->h + 2 * rem;
      int64_t bytes = ts_image_bytes(w, h, k->out_channels, k->out_dtype);
      void *buf = ts_scratch_get(scratch[0], i % 2 ? SLOT_B : SLOT_A, (size_t)bytes);
      if (!buf) return ts_fail(err, TS_ERR_NOMEM, "out of memory for a %lldx%lld intermediate",
                               (long long)w, (long long)h);
      mid[i % 2] = ts_image_packed(buf, w, h, k->out_channels, k->out_dtype);
      dst = &mid[i % 2];
    }
    ts_status st = apply(k, src, dst, scratch, nthreads, err);
    if (st) return st;
    src = dst;
  }
  return TS_OK;
}

ts_status ts_pipeline_run(const ts_pipeline *p, const ts_image *in, ts_image *out,
                          ts_scratch *scratch, ts_error *err) {
  return ts_pipeline_run_upto(p, p->n, in, out, &scratch, 1, err);
}

ts_status ts_pipeline_run_bands(const ts_pipeline *p, const ts_image *in, ts_image *out,
                                ts_scratch **scratch, int nthreads, ts_error *err) {
  return ts_pipeline_run_upto(p, p->n, in, out, scratch, nthreads, err);
}
