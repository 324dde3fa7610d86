/* Point kernels (halo 0): threshold, invert, scale, grayscale. Rows go
 * through float (exact for u8 and u16) and back with rounding and
 * saturation. */
#include "kernels/common.h"
#include "kernels/defs.h"
#include "kernels/global.h"

/* threshold: x > t -> max of the dtype (1.0 for f32), else 0; t is
 * `value`, or with method=otsu the Otsu threshold of the whole image
 * (skimage.filters.threshold_otsu), resolved from its histogram. */
static void threshold_op(const ts_kernel *k, float *restrict f, int64_t n) {
  const double v = (int)k->v[1].num == 1 ? k->g[0] : k->v[0].num;
  const float hi = ts_dtype_max(k->in_dtype);
  for (int64_t i = 0; i < n; i++) f[i] = (double)f[i] > v ? hi : 0.f;
}
static ts_status threshold_apply(const ts_kernel *k, const ts_image *in, ts_image *out,
                                 ts_scratch *s, ts_error *err) {
  return ts_point_rows(k, in, out, threshold_op, s, err);
}

/* invert: max - x (255 - x, 65535 - x, 1 - x for f32) */
static void invert_op(const ts_kernel *k, float *restrict f, int64_t n) {
  const float hi = ts_dtype_max(k->in_dtype);
  for (int64_t i = 0; i < n; i++) f[i] = hi - f[i];
}
/* Integers: the subtraction itself, which the compiler vectorizes (a
 * quarter of the 256-entry table's time on 137 x 236 u8 images). */
#define TS_INVERT_ROWS(T, HI)                                      \
  for (int64_t y = 0; y < in->h; y++) {                            \
    const T *restrict a = TS_CROW(in, y);                          \
    T *restrict b = TS_ROW(out, y);                                \
    for (int64_t i = 0; i < n; i++) b[i] = (T)(HI - a[i]);         \
  }
static ts_status invert_apply(const ts_kernel *k, const ts_image *in, ts_image *out,
                              ts_scratch *s, ts_error *err) {
  const int64_t n = in->w * in->channels;
  if (in->dtype == TS_U8) TS_INVERT_ROWS(uint8_t, 255)
  else if (in->dtype == TS_U16) TS_INVERT_ROWS(uint16_t, 65535)
  else return ts_point_rows(k, in, out, invert_op, s, err);
  return TS_OK;
}
#undef TS_INVERT_ROWS

/* scale: x * factor + offset, converted to `dtype` with saturation */
static void scale_op(const ts_kernel *k, float *restrict f, int64_t n) {
  const float a = (float)k->v[0].num, b = (float)k->v[1].num;
  for (int64_t i = 0; i < n; i++) f[i] = f[i] * a + b;
}
static ts_status scale_apply(const ts_kernel *k, const ts_image *in, ts_image *out,
                             ts_scratch *s, ts_error *err) {
  return ts_point_rows(k, in, out, scale_op, s, err);
}
static ts_status scale_prepare(ts_kernel *k, ts_error *err) {
  int d = (int)k->v[2].num; /* same|u8|u16|f32 */
  k->out_dtype = d == 0 ? k->in_dtype : (ts_dtype)(d - 1);
  return TS_OK;
}

/* grayscale: RGB(A) -> 1 channel with OpenCV's cvtColor RGB2GRAY weights
 * (0.299, 0.587, 0.114): u8 in OpenCV 4's 15-bit fixed point with rounding
 * (bit-exact), u16 and f32 as a float sum (u16 rounded to nearest; OpenCV's
 * u16 SIMD path rounds in steps and differs by at most 1 level). 1 channel passes through, 2 (gray+alpha)
 * drops the alpha. */
enum { R2Y = 9798, G2Y = 19235, B2Y = 3735, GRAY_SHIFT = 15 };

static ts_status grayscale_apply(const ts_kernel *k, const ts_image *in, ts_image *out,
                                 ts_scratch *s, ts_error *err) {
  const int C = in->channels;
  for (int64_t y = 0; y < in->h; y++) {
    const void *src = TS_CROW(in, y);
    void *dst = TS_ROW(out, y);
    if (C <= 2) {
      for (int64_t x = 0; x < in->w; x++) {
        if (in->dtype == TS_U8) ((uint8_t *)dst)[x] = ((const uint8_t *)src)[x * C];
        else if (in->dtype == TS_U16) ((uint16_t *)dst)[x] = ((const uint16_t *)src)[x * C];
        else ((float *)dst)[x] = ((const float *)src)[x * C];
      }
    } else if (in->dtype == TS_U8) {
      const uint8_t *restrict p = src;
      uint8_t *restrict o = dst;
      for (int64_t x = 0; x < in->w; x++, p += C)
        o[x] = (uint8_t)((p[0] * R2Y + p[1] * G2Y + p[2] * B2Y + (1 << (GRAY_SHIFT - 1))) >> GRAY_SHIFT);
    } else if (in->dtype == TS_U16) {
      const uint16_t *restrict p = src;
      uint16_t *restrict o = dst;
      for (int64_t x = 0; x < in->w; x++, p += C)
        o[x] = (uint16_t)lrintf(0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2]);
    } else {
      const float *restrict p = src;
      float *restrict o = dst;
      for (int64_t x = 0; x < in->w; x++, p += C)
        o[x] = 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
    }
  }
  return TS_OK;
}
static ts_status grayscale_prepare(ts_kernel *k, ts_error *err) {
  k->out_channels = 1;
  return TS_OK;
}

static ts_status threshold_prepare(ts_kernel *k, ts_error *err) {
  int otsu = (int)k->v[1].num == 1;
  if (!otsu && !k->v[0].given)
    return ts_fail(err, TS_ERR_PIPELINE, "threshold: parameter 'value' is required (or method=otsu)");
  if (otsu && k->v[0].given)
    return ts_fail(err, TS_ERR_PIPELINE, "threshold: method=otsu computes the value; do not give value=");
  return TS_OK;
}

static const ts_param_def threshold_params[] = {
    {"value", TS_PARAM_FLOAT, NULL, -1e30, 1e30, TS_PARAM_OPTIONAL, NULL,
     "pixels above it become the dtype's max (1.0 for f32), others 0"},
    {"method", TS_PARAM_CHOICE, "value", 0, 0, 0, "value|otsu",
     "otsu: the value is skimage's threshold_otsu of the whole image"},
};
static const ts_param_def scale_params[] = {
    {"factor", TS_PARAM_FLOAT, "1", -1e30, 1e30, 0, NULL, "multiplier"},
    {"offset", TS_PARAM_FLOAT, "0", -1e30, 1e30, 0, NULL, "added after the multiply"},
    {"dtype", TS_PARAM_CHOICE, "same", 0, 0, 0, "same|u8|u16|f32", "output dtype (saturating)"},
};

const ts_kernel_def ts_kernel_threshold = {
    .name = "threshold",
    .summary = "binary threshold: x > value -> max of dtype, else 0; method=otsu is global",
    .params = threshold_params,
    .nparams = 2,
    .dtypes = TS_DTYPES_ALL,
    .channels = TS_CHANNELS_ANY,
    .halo_doc = "0",
    .prepare = threshold_prepare,
    .apply = threshold_apply,
    .stages = ts_otsu_stages,
    .stats_size = ts_g_stats_size,
    .stats_init = ts_g_stats_init,
    .accumulate = ts_g_accumulate,
    .merge = ts_g_merge,
    .resolve = ts_otsu_resolve,
};

const ts_kernel_def ts_kernel_invert = {
    .name = "invert",
    .summary = "max - x (1 - x for f32)",
    .dtypes = TS_DTYPES_ALL,
    .channels = TS_CHANNELS_ANY,
    .halo_doc = "0",
    .apply = invert_apply,
};

const ts_kernel_def ts_kernel_scale = {
    .name = "scale",
    .summary = "x*factor + offset, converted to dtype with rounding and saturation",
    .params = scale_params,
    .nparams = 3,
    .dtypes = TS_DTYPES_ALL,
    .channels = TS_CHANNELS_ANY,
    .halo_doc = "0",
    .prepare = scale_prepare,
    .apply = scale_apply,
};

const ts_kernel_def ts_kernel_grayscale = {
    .name = "grayscale",
    .summary = "RGB(A) to one channel, OpenCV RGB2GRAY weights (0.299, 0.587, 0.114)",
    .dtypes = TS_DTYPES_ALL,
    .channels = TS_CHANNELS_ANY,
    .halo_doc = "0",
    .prepare = grayscale_prepare,
    .apply = grayscale_apply,
};
