/* box: mean over a size x size window (scipy.ndimage.uniform_filter).
 * Sums with unit weights (exact for u8), then one multiply by 1/size^2. */
#include "kernels/common.h"
#include "kernels/defs.h"

static ts_status box_prepare(ts_kernel *k, ts_error *err) {
  int64_t size = (int64_t)k->v[0].num;
  ts_status st = ts_weights_alloc(k, size, err);
  if (st) return st;
  for (int64_t i = 0; i < size; i++) k->weights[i] = 1.0f;
  k->halo = size / 2;
  return TS_OK;
}

static void box_emit(const ts_kernel *k, const ts_image *in, int64_t y, const float *sum,
                     ts_image *out) {
  const float inv = (float)(1.0 / (k->v[0].num * k->v[0].num));
  float *row = (float *)sum;
  const int64_t n = out->w * out->channels;
  for (int64_t i = 0; i < n; i++) row[i] *= inv;
  ts_row_from_float(out->dtype, row, TS_ROW(out, y), n);
}

static ts_status box_apply(const ts_kernel *k, const ts_image *in, ts_image *out,
                           ts_scratch *s, ts_error *err) {
  return ts_separable(k, in, out, k->weights, (int)k->halo, box_emit, s, err);
}

static const ts_param_def box_params[] = {
    {"size", TS_PARAM_INT, "3", 1, 255, TS_PARAM_ODD, NULL, "window side in pixels (odd)"},
};

const ts_kernel_def ts_kernel_box = {
    .name = "box",
    .summary = "mean over a size x size window (scipy.ndimage.uniform_filter)",
    .params = box_params,
    .nparams = 1,
    .dtypes = TS_DTYPES_ALL,
    .channels = TS_CHANNELS_ANY,
    .halo_doc = "size/2",
    .prepare = box_prepare,
    .apply = box_apply,
};
