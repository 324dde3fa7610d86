/* erode, dilate, open, close: grey morphology with a square footprint
 * (scipy.ndimage.grey_erosion etc.), separable min/max: exact. */
#include "kernels/common.h"
#include "kernels/defs.h"

#define MIN(a, b) ((b) < (a) ? (b) : (a))
#define MAX(a, b) ((a) < (b) ? (b) : (a))

/* One template per dtype and operation: vertical extreme over `size` rows
 * into tmp, then horizontal extreme over `size` samples C apart. */
#define TS_MINMAX(T, NAME, OP)                                                         \
  static ts_status NAME##_##T(const ts_image *in, ts_image *out, int64_t size,         \
                              T *restrict tmp) {                                       \
    const int C = in->channels;                                                        \
    const int64_t nin = in->w * C, nout = out->w * C;                                  \
    for (int64_t y = 0; y < out->h; y++) {                                             \
      const T *restrict r = TS_CROW(in, y);                                            \
      for (int64_t i = 0; i < nin; i++) tmp[i] = r[i];                                 \
      for (int64_t dy = 1; dy < size; dy++) {                                          \
        r = TS_CROW(in, y + dy);                                                       \
        for (int64_t i = 0; i < nin; i++) tmp[i] = OP(tmp[i], r[i]);                   \
      }                                                                                \
      T *restrict o = TS_ROW(out, y);                                                  \
      for (int64_t i = 0; i < nout; i++) o[i] = tmp[i];                                \
      for (int64_t dx = 1; dx < size; dx++) {                                          \
        const T *restrict t = tmp + dx * C;                                            \
        for (int64_t i = 0; i < nout; i++) o[i] = OP(o[i], t[i]);                      \
      }                                                                                \
    }                                                                                  \
    return TS_OK;                                                                      \
  }
TS_MINMAX(uint8_t, erode, MIN)
TS_MINMAX(uint16_t, erode, MIN)
TS_MINMAX(float, erode, MIN)
TS_MINMAX(uint8_t, dilate, MAX)
TS_MINMAX(uint16_t, dilate, MAX)
TS_MINMAX(float, dilate, MAX)

static ts_status minmax(const ts_kernel *k, const ts_image *in, ts_image *out, int is_max,
                        ts_scratch *s, ts_error *err) {
  const int64_t size = (int64_t)k->v[0].num;
  void *tmp = ts_scratch_get(s, 0, (size_t)(in->w * in->channels) * ts_dtype_size(in->dtype));
  if (!tmp) return TS_SCRATCH_OOM(err, k);
  switch (in->dtype) {
    case TS_U8: return is_max ? dilate_uint8_t(in, out, size, tmp) : erode_uint8_t(in, out, size, tmp);
    case TS_U16: return is_max ? dilate_uint16_t(in, out, size, tmp) : erode_uint16_t(in, out, size, tmp);
    default: return is_max ? dilate_float(in, out, size, tmp) : erode_float(in, out, size, tmp);
  }
}

static ts_status erode_apply(const ts_kernel *k, const ts_image *in, ts_image *out,
                             ts_scratch *s, ts_error *err) {
  return minmax(k, in, out, 0, s, err);
}

static ts_status dilate_apply(const ts_kernel *k, const ts_image *in, ts_image *out,
                              ts_scratch *s, ts_error *err) {
  return minmax(k, in, out, 1, s, err);
}

/* open = dilate(erode(x)), close = erode(dilate(x)); the middle image, one
 * size/2 larger than the output on each side, lives in scratch slot 1. */
static ts_status compose(const ts_kernel *k, const ts_image *in, ts_image *out, int first_max,
                         ts_scratch *s, ts_error *err) {
  const int64_t r = (int64_t)k->v[0].num / 2;
  const int64_t mw = out->w + 2 * r, mh = out->h + 2 * r;
  void *buf = ts_scratch_get(s, 1, (size_t)ts_image_bytes(mw, mh, in->channels, in->dtype));
  if (!buf) return TS_SCRATCH_OOM(err, k);
  ts_image mid = ts_image_packed(buf, mw, mh, in->channels, in->dtype);
  ts_status st = minmax(k, in, &mid, first_max, s, err);
  return st ? st : minmax(k, &mid, out, !first_max, s, err);
}

static ts_status open_apply(const ts_kernel *k, const ts_image *in, ts_image *out,
                            ts_scratch *s, ts_error *err) {
  return compose(k, in, out, 0, s, err);
}

static ts_status close_apply(const ts_kernel *k, const ts_image *in, ts_image *out,
                             ts_scratch *s, ts_error *err) {
  return compose(k, in, out, 1, s, err);
}

static ts_status single_prepare(ts_kernel *k, ts_error *err) {
  k->halo = (int64_t)k->v[0].num / 2;
  return TS_OK;
}

static ts_status double_prepare(ts_kernel *k, ts_error *err) {
  k->halo = 2 * ((int64_t)k->v[0].num / 2);
  return TS_OK;
}

static const ts_param_def morph_params[] = {
    {"size", TS_PARAM_INT, "3", 1, 255, TS_PARAM_ODD, NULL,
     "square footprint side in pixels (odd)"},
};

#define TS_MORPH_DEF(NAME, SUMMARY, PREP, HALO)                                      \
  const ts_kernel_def ts_kernel_##NAME = {                                          \
      .name = #NAME, .summary = SUMMARY, .params = morph_params, .nparams = 1,      \
      .dtypes = TS_DTYPES_ALL, .channels = TS_CHANNELS_ANY, .halo_doc = HALO,       \
      .prepare = PREP, .apply = NAME##_apply,                                       \
  };
TS_MORPH_DEF(erode, "grey erosion: minimum over a square (scipy grey_erosion)", single_prepare, "size/2")
TS_MORPH_DEF(dilate, "grey dilation: maximum over a square (scipy grey_dilation)", single_prepare, "size/2")
TS_MORPH_DEF(open, "grey opening: dilate(erode(x)) (scipy grey_opening)", double_prepare, "2*(size/2)")
TS_MORPH_DEF(close, "grey closing: erode(dilate(x)) (scipy grey_closing)", double_prepare, "2*(size/2)")
