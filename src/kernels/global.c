/* Global kernels: their parameters come from a statistic of the whole
 * image, gathered in passes before the kernel runs (the scheduler's job).
 * Statistics follow scikit-image 0.19 exactly: for u8 and u16 a histogram
 * with one bin per integer value from the image's min to its max (skimage
 * ignores nbins for integer images); for f32 numpy.histogram with 256 bins
 * over [min, max], binned with numpy's own float32 arithmetic. That makes
 * two stages for f32 (min/max, then the histogram) and one for integers.
 *
 *   threshold method=otsu   skimage.filters.threshold_otsu
 *   normalize               min/max of the whole image to [low, high]
 *   equalize                skimage.exposure.equalize_hist */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "kernels/common.h"
#include "kernels/defs.h"
#include "kernels/global.h"

enum { NBINS_F32 = 256 };

/* ---- shared statistics: min/max and histograms --------------------- */

int64_t ts_g_stats_size(const ts_kernel *k, int stage) {
  if (k->in_dtype == TS_F32) return stage == 0 ? 2 : NBINS_F32;
  return k->in_dtype == TS_U8 ? 256 : 65536;
}

/* Fold every sample of im into p[0] (min) and p[1] (max). */
static void minmax_rows(const ts_image *im, double *p) {
  const int64_t n = im->w * im->channels;
  for (int64_t y = 0; y < im->h; y++) {
#define TS_MINMAX_ROW(T)                        \
  {                                             \
    const T *restrict r = TS_CROW(im, y);       \
    T lo = r[0], hi = r[0]; /* local: vectorizes */ \
    for (int64_t i = 1; i < n; i++) {           \
      lo = r[i] < lo ? r[i] : lo;               \
      hi = r[i] > hi ? r[i] : hi;               \
    }                                           \
    if (lo < p[0]) p[0] = lo;                   \
    if (hi > p[1]) p[1] = hi;                   \
  }
    if (im->dtype == TS_U8) TS_MINMAX_ROW(uint8_t)
    else if (im->dtype == TS_U16) TS_MINMAX_ROW(uint16_t)
    else TS_MINMAX_ROW(float)
#undef TS_MINMAX_ROW
  }
}

static void minmax_merge(const ts_kernel *k, int stage, double *into, const double *from) {
  if (from[0] < into[0]) into[0] = from[0];
  if (from[1] > into[1]) into[1] = from[1];
}

/* Is this stage the min/max one? (f32 stage 0) */
static int is_minmax(const ts_kernel *k, int stage) { return k->in_dtype == TS_F32 && stage == 0; }

void ts_g_stats_init(const ts_kernel *k, int stage, double *p) {
  int64_t n = ts_g_stats_size(k, stage);
  for (int64_t i = 0; i < n; i++) p[i] = 0;
  if (is_minmax(k, stage)) {
    p[0] = INFINITY;
    p[1] = -INFINITY;
  }
}

void ts_g_merge(const ts_kernel *k, int stage, double *into, const double *from) {
  if (is_minmax(k, stage)) {
    minmax_merge(k, stage, into, from);
    return;
  }
  for (int64_t i = 0, n = ts_g_stats_size(k, stage); i < n; i++) into[i] += from[i];
}

/* numpy's 256 float32 bin edges over [lo, hi] (linspace in float64, cast). */
static void f32_edges(float lo, float hi, float *edges) {
  float delta = hi - lo, step = delta / (float)NBINS_F32;
  for (int i = 0; i <= NBINS_F32; i++) edges[i] = (float)((double)i * (double)step + (double)lo);
  edges[NBINS_F32] = hi;
}

/* numpy.histogram's bin of x (lo <= x <= hi), float32 arithmetic. */
static int f32_bin(float x, float lo, float norm, const float *edges) {
  int i = (int)((x - lo) * norm);
  if (i >= NBINS_F32) i = NBINS_F32 - 1;
  if (x < edges[i]) i--;
  else if (i != NBINS_F32 - 1 && x >= edges[i + 1]) i++;
  return i;
}

/* The histogram range of f32 stage 2: numpy widens an empty range. */
static void f32_range(const ts_kernel *k, float *lo, float *hi) {
  *lo = (float)k->g[2];
  *hi = (float)k->g[3];
  if (*lo == *hi) {
    *lo -= 0.5f;
    *hi += 0.5f;
  }
}

void ts_g_accumulate(const ts_kernel *k, int stage, const ts_image *im, double *p) {
  if (is_minmax(k, stage)) {
    minmax_rows(im, p);
    return;
  }
  const int64_t n = im->w * im->channels;
  if (im->dtype == TS_F32) { /* numpy's bins: edges once per call, not per row */
    float lo, hi, edges[NBINS_F32 + 1];
    f32_range(k, &lo, &hi);
    f32_edges(lo, hi, edges);
    float norm = (float)((double)NBINS_F32 / (double)(hi - lo));
    for (int64_t y = 0; y < im->h; y++) {
      const float *r = TS_CROW(im, y);
      for (int64_t i = 0; i < n; i++) p[f32_bin(r[i], lo, norm, edges)] += 1;
    }
    return;
  }
  for (int64_t y = 0; y < im->h; y++) {
    if (im->dtype == TS_U8) {
      const uint8_t *r = TS_CROW(im, y);
      for (int64_t i = 0; i < n; i++) p[r[i]] += 1;
    } else {
      const uint16_t *r = TS_CROW(im, y);
      for (int64_t i = 0; i < n; i++) p[r[i]] += 1;
    }
  }
}

/* The merged statistics as skimage's (counts, bin_centers) over [first,
 * last] bins; returns the bin count. Integers: first/last non-empty value.
 * On f32 stage 0 it only records min/max (in g[2], g[3]) and returns 0. */
static int64_t histogram(ts_kernel *k, int stage, const double *m, const double **counts, double *centers) {
  if (is_minmax(k, stage)) {
    k->g[2] = m[0];
    k->g[3] = m[1];
    return 0;
  }
  if (k->in_dtype == TS_F32) {
    float lo, hi, edges[NBINS_F32 + 1];
    f32_range(k, &lo, &hi);
    f32_edges(lo, hi, edges);
    for (int i = 0; i < NBINS_F32; i++) centers[i] = (float)((edges[i] + edges[i + 1]) / 2.f);
    *counts = m;
    return NBINS_F32;
  }
  int64_t n = ts_g_stats_size(k, stage), first = 0, last = n - 1;
  while (first < n && m[first] == 0) first++;
  while (last > first && m[last] == 0) last--;
  for (int64_t i = first; i <= last; i++) centers[i - first] = (double)i;
  *counts = m + first;
  return last - first + 1;
}

/* ---- threshold method=otsu ------------------------------------------ */

int ts_otsu_stages(const ts_kernel *k) {
  if ((int)k->v[1].num != 1) return 0; /* method=value */
  return k->in_dtype == TS_F32 ? 2 : 1;
}

ts_status ts_otsu_resolve(ts_kernel *k, int stage, const double *m, ts_error *err) {
  double *centers = malloc(65536 * sizeof *centers);
  if (!centers) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  const double *counts;
  int64_t n = histogram(k, stage, m, &counts, centers);
  if (is_minmax(k, stage)) {
    free(centers);
    return TS_OK;
  }
  double t;
  int64_t nonzero = 0;
  for (int64_t i = 0; i < n; i++) nonzero += counts[i] > 0;
  if (nonzero <= 1) { /* one value: skimage returns it */
    int64_t i = 0;
    while (i + 1 < n && counts[i] == 0) i++;
    t = k->in_dtype == TS_F32 ? k->g[2] : centers[i];
  } else {
    /* skimage's formula, in its order of operations */
    double *w1 = malloc((size_t)n * sizeof *w1), *w2 = malloc((size_t)n * sizeof *w2);
    double *m1 = malloc((size_t)n * sizeof *m1), *m2 = malloc((size_t)n * sizeof *m2);
    if (!w1 || !w2 || !m1 || !m2) {
      free(w1), free(w2), free(m1), free(m2), free(centers);
      return ts_fail(err, TS_ERR_NOMEM, "out of memory");
    }
    double c = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
      c += counts[i];
      s += counts[i] * centers[i];
      w1[i] = c;
      m1[i] = s / c;
    }
    c = s = 0;
    for (int64_t i = n - 1; i >= 0; i--) {
      c += counts[i];
      s += counts[i] * centers[i];
      w2[i] = c;
      m2[i] = s / c;
    }
    int64_t best = 0;
    double best_v = -1;
    for (int64_t i = 0; i + 1 < n; i++) {
      double d = m1[i] - m2[i + 1], v = w1[i] * w2[i + 1] * (d * d);
      if (v > best_v) best_v = v, best = i;
    }
    t = centers[best];
    free(w1), free(w2), free(m1), free(m2);
  }
  free(centers);
  k->g[0] = t;
  snprintf(k->resolved, sizeof k->resolved, "value=%.9g", t);
  return TS_OK;
}

/* ---- normalize -------------------------------------------------------- */

static int normalize_stages(const ts_kernel *k) { return 1; }
static int64_t minmax_size(const ts_kernel *k, int stage) { return 2; }
static void minmax_init(const ts_kernel *k, int stage, double *p) {
  p[0] = INFINITY;
  p[1] = -INFINITY;
}
static void minmax_accumulate(const ts_kernel *k, int stage, const ts_image *im, double *p) {
  minmax_rows(im, p);
}
static ts_status normalize_resolve(ts_kernel *k, int stage, const double *m, ts_error *err) {
  if (!(m[0] <= m[1])) return ts_fail(err, TS_ERR_INTERNAL, "normalize: no pixels were seen");
  k->g[0] = m[0];
  k->g[1] = m[1];
  snprintf(k->resolved, sizeof k->resolved, "min=%.9g max=%.9g", m[0], m[1]);
  return TS_OK;
}
static ts_status normalize_prepare(ts_kernel *k, ts_error *err) {
  /* low/high default to the dtype's range */
  if (!k->v[0].given) k->v[0].num = 0;
  if (!k->v[1].given) k->v[1].num = ts_dtype_max(k->in_dtype);
  if (!(k->v[0].num < k->v[1].num))
    return ts_fail(err, TS_ERR_PIPELINE, "normalize: low=%g must be below high=%g", k->v[0].num, k->v[1].num);
  return TS_OK;
}
/* mode=max and round=truncate, in double as numpy computes
 * img * (255.0 / img.max()) and .astype(uint8) truncates. */
static void normalize_exact_row(const ts_kernel *k, ts_dtype out_dtype, float *f, int64_t n) {
  const double mn = k->g[0], mx = k->g[1], range = mx - mn, lo = k->v[0].num, hi = k->v[1].num;
  const int by_max = (int)k->v[2].num == 1, trunc_ = (int)k->v[3].num == 1;
  const double factor = by_max ? hi / mx : 0, top = ts_dtype_max(out_dtype);
  for (int64_t i = 0; i < n; i++) {
    double v = by_max ? (mx != 0 ? f[i] * factor : f[i]) : range > 0 ? (f[i] - mn) / range * (hi - lo) + lo : lo;
    if (out_dtype != TS_F32) {
      v = v > 0 ? (v < top ? v : top) : 0;
      v = trunc_ ? trunc(v) : floor(v + 0.5);
    }
    f[i] = (float)v;
  }
}

/* skimage.exposure.rescale_intensity: (x - min) / (max - min) * (high - low)
 * + low in float; mode=max or round=truncate in double, as above. */
static void normalize_op(const ts_kernel *k, float *restrict f, int64_t n) {
  if ((int)k->v[2].num == 1 || (int)k->v[3].num == 1) {
    normalize_exact_row(k, k->out_dtype, f, n);
    return;
  }
  const double mn = k->g[0], range = k->g[1] - k->g[0], lo = k->v[0].num, span = k->v[1].num - lo;
  for (int64_t i = 0; i < n; i++) f[i] = (float)(range > 0 ? (f[i] - mn) / range * span + lo : lo);
}

static ts_status normalize_apply(const ts_kernel *k, const ts_image *in, ts_image *out, ts_scratch *s,
                                 ts_error *err) {
  return ts_point_rows(k, in, out, normalize_op, s, err);
}

/* ---- equalize ---------------------------------------------------------- */

static int equalize_stages(const ts_kernel *k) { return k->in_dtype == TS_F32 ? 2 : 1; }

/* Resolve: weights = the CDF (and for f32, bin centers after it). */
static ts_status equalize_resolve(ts_kernel *k, int stage, const double *m, ts_error *err) {
  double *centers = malloc(65536 * sizeof *centers);
  if (!centers) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  const double *counts;
  int64_t n = histogram(k, stage, m, &counts, centers);
  if (is_minmax(k, stage)) {
    free(centers);
    return TS_OK;
  }
  ts_status st = ts_weights_alloc(k, 2 * n, err);
  if (st == TS_OK) {
    double c = 0, total = 0;
    for (int64_t i = 0; i < n; i++) total += counts[i];
    for (int64_t i = 0; i < n; i++) {
      c += counts[i];
      k->weights[i] = (float)(c / total);
      k->weights[n + i] = (float)centers[i];
    }
    k->g[0] = centers[0]; /* the first bin's value (integers: the image min) */
    snprintf(k->resolved, sizeof k->resolved, "%lld bins from %.9g", (long long)n, centers[0]);
  }
  free(centers);
  return st;
}

/* out = interp(x, centers, cdf) scaled to the dtype's range; for integers
 * x is a bin center, so it is cdf[x - min]. */
static ts_status equalize_apply(const ts_kernel *k, const ts_image *in, ts_image *out, ts_scratch *s,
                                ts_error *err) {
  const int64_t n = in->w * in->channels, bins = k->nweights / 2;
  const float *cdf = k->weights, *centers = k->weights + bins, hi = ts_dtype_max(in->dtype);
  float *f = ts_scratch_get(s, 0, (size_t)n * sizeof(float));
  if (!f) return TS_SCRATCH_OOM(err, k);
  const int64_t first = (int64_t)k->g[0];
  for (int64_t y = 0; y < in->h; y++) {
    ts_row_to_float(in->dtype, TS_CROW(in, y), f, n);
    for (int64_t i = 0; i < n; i++) {
      float v;
      if (in->dtype != TS_F32) {
        int64_t b = (int64_t)f[i] - first;
        v = cdf[b < 0 ? 0 : b >= bins ? bins - 1 : b];
      } else if (f[i] <= centers[0]) {
        v = cdf[0];
      } else if (f[i] >= centers[bins - 1]) {
        v = cdf[bins - 1];
      } else { /* numpy.interp: the bin whose centers enclose x */
        int64_t lo = 0, up = bins - 1;
        while (up - lo > 1) {
          int64_t mid = (lo + up) / 2;
          if (centers[mid] <= f[i]) lo = mid;
          else up = mid;
        }
        double t = ((double)f[i] - centers[lo]) / ((double)centers[up] - centers[lo]);
        v = (float)(cdf[lo] + t * (cdf[up] - cdf[lo]));
      }
      f[i] = v * hi;
    }
    ts_row_from_float(out->dtype, f, TS_ROW(out, y), n);
  }
  return TS_OK;
}

static const ts_param_def normalize_params[] = {
    {"low", TS_PARAM_FLOAT, NULL, -1e30, 1e30, TS_PARAM_OPTIONAL, NULL,
     "output for the image's minimum (default 0)"},
    {"high", TS_PARAM_FLOAT, NULL, -1e30, 1e30, TS_PARAM_OPTIONAL, NULL,
     "output for the image's maximum (default: the dtype's max, 1.0 for f32)"},
    {"mode", TS_PARAM_CHOICE, "range", 0, 0, 0, "range|max",
     "max: x * high / max (0 stays 0, low is unused), as img * (255.0 / img.max())"},
    {"round", TS_PARAM_CHOICE, "nearest", 0, 0, 0, "nearest|truncate",
     "truncate: toward zero, as numpy's astype"},
};

const ts_kernel_def ts_kernel_normalize = {
    .name = "normalize",
    .summary = "global: min/max of the whole image to [low, high] (skimage rescale_intensity)",
    .params = normalize_params,
    .nparams = 4,
    .dtypes = TS_DTYPES_ALL,
    .channels = TS_CHANNELS_ANY,
    .halo_doc = "0",
    .prepare = normalize_prepare,
    .apply = normalize_apply,
    .stages = normalize_stages,
    .stats_size = minmax_size,
    .stats_init = minmax_init,
    .accumulate = minmax_accumulate,
    .merge = minmax_merge,
    .resolve = normalize_resolve,
};

const ts_kernel_def ts_kernel_equalize = {
    .name = "equalize",
    .summary = "global: histogram equalization of the whole image (skimage equalize_hist)",
    .dtypes = TS_DTYPES_ALL,
    .channels = TS_CHANNELS_ANY,
    .halo_doc = "0",
    .apply = equalize_apply,
    .stages = equalize_stages,
    .stats_size = ts_g_stats_size,
    .stats_init = ts_g_stats_init,
    .accumulate = ts_g_accumulate,
    .merge = ts_g_merge,
    .resolve = equalize_resolve,
};

/* ---- one whole image (list mode) ----------------------------------------- */

ts_status ts_global_resolve_image(ts_kernel *g, const ts_image *im, ts_scratch *s, int slot, ts_error *err) {
  const int stages = ts_kernel_stages(g);
  for (int stage = 0; stage < stages; stage++) {
    int64_t n = g->def->stats_size(g, stage);
    double *partial = ts_scratch_get(s, slot, (size_t)n * sizeof *partial);
    if (!partial) return TS_SCRATCH_OOM(err, g);
    g->def->stats_init(g, stage, partial);
    g->def->accumulate(g, stage, im, partial);
    ts_status st = g->def->resolve(g, stage, partial, err);
    if (st) return st;
  }
  return TS_OK;
}
