/* Whole-image kernels that measure (list mode): otsu and stats emit values
 * and leave the image unchanged; blend mixes in a second image. */
#include <math.h>
#include <string.h>
#include "kernels/common.h"
#include "kernels/defs.h"
#include "kernels/global.h"

/* ---- otsu ------------------------------------------------------------- */

static int otsu_stages(const ts_kernel *k) { return k->in_dtype == TS_F32 ? 2 : 1; }

/* skimage.filters.threshold_otsu of the image (one channel): the same
 * statistics and formula as threshold method=otsu. */
static ts_status otsu_image(const ts_kernel *k, const ts_image *in, ts_image *out, int slot, ts_emits *em,
                            ts_scratch *s, ts_error *err) {
  ts_kernel g = *k;
  ts_status st = ts_global_resolve_image(&g, in, s, 0, err);
  if (st) return st;
  double *v = ts_emit_values(em, k->def->name, 1);
  if (!v) return TS_SCRATCH_OOM(err, k);
  v[0] = g.g[0];
  *out = *in; /* pixels unchanged */
  return TS_OK;
}

const ts_kernel_def ts_kernel_otsu = {
    .name = "otsu",
    .summary = "list mode: emits skimage's threshold_otsu of the (one-channel) image; pixels unchanged",
    .dtypes = TS_DTYPES_ALL,
    .channels = 1u << 1,
    .halo_doc = "whole image",
    .flags = TS_KERNEL_WHOLE,
    .apply_image = otsu_image,
    /* the statistics of threshold method=otsu, run on one image */
    .stages = otsu_stages,
    .stats_size = ts_g_stats_size,
    .stats_init = ts_g_stats_init,
    .accumulate = ts_g_accumulate,
    .merge = ts_g_merge,
    .resolve = ts_otsu_resolve,
};

/* ---- stats -------------------------------------------------------------- */

/* min, max, mean, std (numpy's, ddof=0) per channel, in double: emits
 * [min, max, mean, std] for channel 0, then channel 1... */
static ts_status stats_image(const ts_kernel *k, const ts_image *in, ts_image *out, int slot, ts_emits *em,
                             ts_scratch *s, ts_error *err) {
  const int C = in->channels;
  double *v = ts_emit_values(em, k->def->name, 4 * C);
  if (!v) return TS_SCRATCH_OOM(err, k);
  const double n = (double)(in->w * in->h);
  for (int c = 0; c < C; c++) {
    double mn = INFINITY, mx = -INFINITY, sum = 0;
    for (int64_t y = 0; y < in->h; y++)
      for (int64_t x = 0; x < in->w; x++) {
        double a = ts_sample(in, x, y, c);
        mn = a < mn ? a : mn;
        mx = a > mx ? a : mx;
        sum += a;
      }
    const double mean = sum / n;
    double ss = 0; /* two passes, as numpy's var: mean of squared deviations */
    for (int64_t y = 0; y < in->h; y++)
      for (int64_t x = 0; x < in->w; x++) {
        double a = ts_sample(in, x, y, c);
        ss += (a - mean) * (a - mean);
      }
    v[4 * c] = mn;
    v[4 * c + 1] = mx;
    v[4 * c + 2] = mean;
    v[4 * c + 3] = sqrt(ss / n);
  }
  *out = *in; /* pixels unchanged */
  return TS_OK;
}

const ts_kernel_def ts_kernel_stats = {
    .name = "stats",
    .summary = "list mode: emits min, max, mean, std per channel; pixels unchanged",
    .dtypes = TS_DTYPES_ALL,
    .channels = TS_CHANNELS_ANY,
    .halo_doc = "whole image",
    .flags = TS_KERNEL_WHOLE,
    .apply_image = stats_image,
};

/* ---- blend -------------------------------------------------------------- */

/* cv2.addWeighted(img, alpha, other, beta, gamma): the sum in float,
 * rounded half to even (cvRound) and saturated. fit=resize first resizes
 * `other` to the image's size with linear interpolation. */
static ts_status blend_image(const ts_kernel *k, const ts_image *in, ts_image *out, int slot, ts_emits *em,
                             ts_scratch *s, ts_error *err) {
  const ts_image *b = k->aux;
  if (!b) return ts_fail(err, TS_ERR_INTERNAL, "blend: with=%s was not loaded", k->v[0].str);
  if (b->channels != in->channels || b->dtype != in->dtype)
    return ts_fail(err, TS_ERR_PIPELINE, "blend: the image is %s with %d channel(s) but with=%s is %s with %d",
                   ts_dtype_name(in->dtype), in->channels, k->v[0].str, ts_dtype_name(b->dtype), b->channels);
  ts_image other = *b;
  if (b->w != in->w || b->h != in->h) {
    if ((int)k->v[4].num != 1)
      return ts_fail(err, TS_ERR_PIPELINE, "blend: the image is %lldx%lld but with=%s is %lldx%lld (fit=resize "
                     "resizes it)", (long long)in->w, (long long)in->h, k->v[0].str, (long long)b->w,
                     (long long)b->h);
    ts_kernel r = {.def = &ts_kernel_resize, .in_dtype = in->dtype, .out_dtype = in->dtype,
                   .in_channels = in->channels, .out_channels = in->channels};
    r.v[0] = (ts_value){.num = (double)in->w, .given = 1};
    r.v[1] = (ts_value){.num = (double)in->h, .given = 1};
    r.v[3] = (ts_value){.num = 1 /* linear */};
    ts_status st = ts_kernel_resize.apply_image(&r, b, &other, 15, em, s, err);
    if (st) return st;
  }
  int64_t bytes = ts_image_bytes(in->w, in->h, in->channels, in->dtype);
  void *p = ts_scratch_get(s, slot, (size_t)bytes);
  const int64_t n = in->w * in->channels;
  float *fa = ts_scratch_get(s, 0, (size_t)n * sizeof(float)), *fb = ts_scratch_get(s, 1, (size_t)n * sizeof(float));
  if (!p || !fa || !fb) return TS_SCRATCH_OOM(err, k);
  *out = ts_image_packed(p, in->w, in->h, in->channels, in->dtype);
  const float alpha = (float)k->v[1].num, beta = (float)k->v[2].num, gamma = (float)k->v[3].num;
  for (int64_t y = 0; y < in->h; y++) {
    ts_row_to_float(in->dtype, TS_CROW(in, y), fa, n);
    ts_row_to_float(in->dtype, TS_CROW(&other, y), fb, n);
    if (in->dtype == TS_F32) {
      float *o = TS_ROW(out, y);
      for (int64_t i = 0; i < n; i++) o[i] = fa[i] * alpha + fb[i] * beta + gamma;
      continue;
    }
    /* half to even, as cvRound: adding and taking away 1.5 * 2^23 rounds
     * a float below 2^22 in magnitude to an integer in the current
     * (nearest-even) mode; unlike nearbyintf it vectorizes without
     * SSE4.1. Clamped first, so the sum stays in that range. */
    const float top = ts_dtype_max(in->dtype), magic = 12582912.0f;
    uint8_t *o8 = TS_ROW(out, y);
    uint16_t *o16 = TS_ROW(out, y);
    for (int64_t i = 0; i < n; i++) {
      float v = fa[i] * alpha + fb[i] * beta + gamma;
      v = v > -1.f ? (v < top + 1.f ? v : top + 1.f) : -1.f;
      v = (v + magic) - magic;
      v = v > 0 ? (v < top ? v : top) : 0;
      if (in->dtype == TS_U8) o8[i] = (uint8_t)v;
      else o16[i] = (uint16_t)v;
    }
  }
  return TS_OK;
}

static const ts_param_def blend_params[] = {
    {"with", TS_PARAM_STRING, NULL, 0, 0, 0, NULL, "the second image (PNG, JPEG or TIFF), read once per rank"},
    {"alpha", TS_PARAM_FLOAT, "0.5", -1e30, 1e30, 0, NULL, "weight of the image"},
    {"beta", TS_PARAM_FLOAT, "0.5", -1e30, 1e30, 0, NULL, "weight of with="},
    {"gamma", TS_PARAM_FLOAT, "0", -1e30, 1e30, 0, NULL, "added to the sum"},
    {"fit", TS_PARAM_CHOICE, "error", 0, 0, 0, "error|resize",
     "when sizes differ: error (naming both sizes), or resize with= to the image (linear)"},
};

const ts_kernel_def ts_kernel_blend = {
    .name = "blend",
    .summary = "list mode: alpha*img + beta*with + gamma (cv2.addWeighted)",
    .params = blend_params,
    .nparams = 5,
    .dtypes = TS_DTYPES_ALL,
    .channels = TS_CHANNELS_ANY,
    .halo_doc = "whole image",
    .flags = TS_KERNEL_WHOLE,
    .apply_image = blend_image,
};
