/* convolve: 2-D correlation with a user's odd square weight matrix, as
 * scipy.ndimage.correlate (no flip), optionally normalized to sum 1. */
#include <math.h>
#include <string.h>
#include "kernels/common.h"
#include "kernels/defs.h"

static ts_status convolve_prepare(ts_kernel *k, ts_error *err) {
  const ts_value *w = &k->v[0];
  int64_t side = (int64_t)llround(sqrt((double)w->count));
  if (side * side != w->count || side % 2 == 0)
    return ts_fail(err, TS_ERR_PIPELINE,
                   "convolve: weights has %lld values; it needs an odd square count "
                   "(9 for 3x3, 25 for 5x5, ...)", (long long)w->count);
  double sum = 0;
  for (int64_t i = 0; i < w->count; i++) sum += w->list[i];
  if (k->v[1].num != 0 && sum == 0)
    return ts_fail(err, TS_ERR_PIPELINE, "convolve: normalize=true but the weights sum to 0");
  ts_status st = ts_weights_alloc(k, w->count, err);
  if (st) return st;
  for (int64_t i = 0; i < w->count; i++)
    k->weights[i] = (float)(k->v[1].num != 0 ? w->list[i] / sum : w->list[i]);
  k->halo = side / 2;
  return TS_OK;
}

static ts_status convolve_apply(const ts_kernel *k, const ts_image *in, ts_image *out,
                                ts_scratch *s, ts_error *err) {
  const int C = in->channels;
  const int64_t side = 2 * k->halo + 1, nin = in->w * C, nout = out->w * C;
  float *f = ts_scratch_get(s, 0, (size_t)nin * sizeof(float));
  float *acc = ts_scratch_get(s, 1, (size_t)nout * sizeof(float));
  if (!f || !acc) return TS_SCRATCH_OOM(err, k);
  for (int64_t y = 0; y < out->h; y++) {
    memset(acc, 0, (size_t)nout * sizeof(float));
    for (int64_t ky = 0; ky < side; ky++) {
      ts_row_to_float(in->dtype, TS_CROW(in, y + ky), f, nin);
      for (int64_t kx = 0; kx < side; kx++) {
        const float w = k->weights[ky * side + kx];
        if (w == 0.f) continue;
        const float *restrict src = f + kx * C;
        float *restrict a = acc;
        for (int64_t i = 0; i < nout; i++) a[i] += w * src[i];
      }
    }
    ts_row_from_float(out->dtype, acc, TS_ROW(out, y), nout);
  }
  return TS_OK;
}

static const ts_param_def convolve_params[] = {
    {"weights", TS_PARAM_LIST, NULL, -1e9, 1e9, 0, NULL,
     "row-major odd square matrix, comma-separated: 1,2,1,2,4,2,1,2,1"},
    {"normalize", TS_PARAM_BOOL, "false", 0, 1, 0, NULL, "divide the weights by their sum"},
};

const ts_kernel_def ts_kernel_convolve = {
    .name = "convolve",
    .summary = "correlate with an odd square weight matrix (scipy.ndimage.correlate)",
    .params = convolve_params,
    .nparams = 2,
    .dtypes = TS_DTYPES_ALL,
    .channels = TS_CHANNELS_ANY,
    .halo_doc = "side/2 of the weight matrix",
    .prepare = convolve_prepare,
    .apply = convolve_apply,
};
