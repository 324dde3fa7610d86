/* sobel: gradient magnitude hypot(sobel_y, sobel_x) as scipy.ndimage.sobel
 * along both axes, rounded and saturated to the dtype. Integer inputs give
 * exact float derivatives (|g| < 2^24), so only the sqrt rounds. */
#include "kernels/common.h"
#include "kernels/defs.h"

static ts_status sobel_prepare(ts_kernel *k, ts_error *err) {
  k->halo = 1;
  return TS_OK;
}

static ts_status sobel_apply(const ts_kernel *k, const ts_image *in, ts_image *out,
                             ts_scratch *s, ts_error *err) {
  const int C = in->channels;
  const int64_t nin = in->w * C, nout = out->w * C;
  float *a = ts_scratch_get(s, 0, (size_t)nin * sizeof(float));
  float *b = ts_scratch_get(s, 1, (size_t)nin * sizeof(float));
  float *c = ts_scratch_get(s, 2, (size_t)nin * sizeof(float));
  float *sm = ts_scratch_get(s, 3, (size_t)nin * sizeof(float));
  float *dv = ts_scratch_get(s, 4, (size_t)nin * sizeof(float));
  float *mag = ts_scratch_get(s, 5, (size_t)nout * sizeof(float));
  if (!a || !b || !c || !sm || !dv || !mag) return TS_SCRATCH_OOM(err, k);
  /* rows y, y+1, y+2 rotate through a, b, c: each input row converts once */
  ts_row_to_float(in->dtype, TS_CROW(in, 0), a, nin);
  ts_row_to_float(in->dtype, TS_CROW(in, 1), b, nin);
  for (int64_t y = 0; y < out->h; y++) {
    ts_row_to_float(in->dtype, TS_CROW(in, y + 2), c, nin);
    for (int64_t i = 0; i < nin; i++) {
      sm[i] = a[i] + 2.f * b[i] + c[i]; /* smoothing across rows */
      dv[i] = c[i] - a[i];              /* derivative across rows */
    }
    const float *restrict sm0 = sm, *restrict sm2 = sm + 2 * C;
    const float *restrict d0 = dv, *restrict d1 = dv + C, *restrict d2 = dv + 2 * C;
    for (int64_t i = 0; i < nout; i++) {
      float gx = sm2[i] - sm0[i];
      float gy = d0[i] + 2.f * d1[i] + d2[i];
      mag[i] = sqrtf(gx * gx + gy * gy);
    }
    ts_row_from_float(out->dtype, mag, TS_ROW(out, y), nout);
    float *t = a;
    a = b;
    b = c;
    c = t;
  }
  return TS_OK;
}

const ts_kernel_def ts_kernel_sobel = {
    .name = "sobel",
    .summary = "Sobel gradient magnitude, rounded and saturated",
    .params = NULL,
    .nparams = 0,
    .dtypes = TS_DTYPES_ALL,
    .channels = TS_CHANNELS_ANY,
    .halo_doc = "1",
    .prepare = sobel_prepare,
    .apply = sobel_apply,
};
