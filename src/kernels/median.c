/* median: exact median over a size x size window, per channel
 * (scipy.ndimage.median_filter). 3x3 uses sorted columns shared between
 * neighbours (about 13 min/max per pixel, vectorized); u8 uses Huang's
 * sliding histogram; u16 and f32 gather the window and select. */
#include <string.h>
#include "kernels/common.h"
#include "kernels/defs.h"

#define MIN(a, b) ((b) < (a) ? (b) : (a))
#define MAX(a, b) ((a) < (b) ? (b) : (a))

#define TS_MEDIAN3(T)                                                                   \
  static ts_status median3_##T(const ts_kernel *k, const ts_image *in, ts_image *out,   \
                               ts_scratch *s, ts_error *err) {                          \
    const int C = in->channels;                                                         \
    const int64_t nin = in->w * C, nout = out->w * C;                                   \
    T *lo = ts_scratch_get(s, 0, (size_t)nin * sizeof(T));                              \
    T *mi = ts_scratch_get(s, 1, (size_t)nin * sizeof(T));                              \
    T *hi = ts_scratch_get(s, 2, (size_t)nin * sizeof(T));                              \
    if (!lo || !mi || !hi) return TS_SCRATCH_OOM(err, k);                               \
    for (int64_t y = 0; y < out->h; y++) {                                              \
      const T *restrict r0 = TS_CROW(in, y), *restrict r1 = TS_CROW(in, y + 1),         \
                        *restrict r2 = TS_CROW(in, y + 2);                              \
      T *restrict l = lo, *restrict m = mi, *restrict h = hi;                           \
      for (int64_t i = 0; i < nin; i++) { /* sort each column of three */               \
        T a = r0[i], b = r1[i], c = r2[i];                                              \
        T t = MIN(a, b);                                                                \
        b = MAX(a, b);                                                                  \
        a = t;                                                                          \
        t = MIN(b, c);                                                                  \
        c = MAX(b, c);                                                                  \
        b = t;                                                                          \
        t = MIN(a, b);                                                                  \
        b = MAX(a, b);                                                                  \
        a = t;                                                                          \
        l[i] = a;                                                                       \
        m[i] = b;                                                                       \
        h[i] = c;                                                                       \
      }                                                                                 \
      T *restrict o = TS_ROW(out, y);                                                   \
      for (int64_t i = 0; i < nout; i++) {                                              \
        /* median of 9 = med3(max of mins, med of medians, min of maxes) */             \
        T maxlo = MAX(MAX(l[i], l[i + C]), l[i + 2 * C]);                               \
        T minhi = MIN(MIN(h[i], h[i + C]), h[i + 2 * C]);                               \
        T a = m[i], b = m[i + C], c = m[i + 2 * C];                                     \
        T medm = MAX(MIN(a, b), MIN(MAX(a, b), c));                                     \
        o[i] = MAX(MIN(maxlo, medm), MIN(MAX(maxlo, medm), minhi));                     \
      }                                                                                 \
    }                                                                                   \
    return TS_OK;                                                                       \
  }
TS_MEDIAN3(uint8_t)
TS_MEDIAN3(uint16_t)
TS_MEDIAN3(float)

/* Huang's algorithm for u8: per output row and channel, a 256-bin
 * histogram slides along x; the median moves a few bins per step. */
static ts_status median_hist_u8(const ts_kernel *k, const ts_image *in, ts_image *out,
                                ts_error *err) {
  const int C = in->channels;
  const int64_t size = 2 * k->halo + 1, rank = size * size / 2;
  for (int64_t y = 0; y < out->h; y++) {
    uint8_t *o = TS_ROW(out, y);
    for (int c = 0; c < C; c++) {
      int32_t hist[256];
      memset(hist, 0, sizeof hist);
      for (int64_t dy = 0; dy < size; dy++) {
        const uint8_t *r = TS_CROW(in, y + dy);
        for (int64_t dx = 0; dx < size; dx++) hist[r[dx * C + c]]++;
      }
      /* m = median bin, below = count of values < m */
      int m = 0;
      int64_t below = 0;
      while (below + hist[m] <= rank) below += hist[m++];
      o[c] = (uint8_t)m;
      for (int64_t x = 1; x < out->w; x++) {
        for (int64_t dy = 0; dy < size; dy++) {
          const uint8_t *r = TS_CROW(in, y + dy);
          int gone = r[(x - 1) * C + c], come = r[(x - 1 + size) * C + c];
          hist[gone]--;
          hist[come]++;
          below += (come < m) - (gone < m);
        }
        while (below > rank) below -= hist[--m];
        while (below + hist[m] <= rank) below += hist[m++];
        o[x * C + c] = (uint8_t)m;
      }
    }
  }
  return TS_OK;
}

/* Quickselect of the rank-th smallest (Hoare partition, middle pivot). */
#define TS_SELECT(T)                                             \
  static T select_##T(T *v, int64_t n, int64_t rank) {           \
    int64_t lo = 0, hi = n - 1;                                  \
    while (lo < hi) {                                            \
      T pivot = v[lo + (hi - lo) / 2];                           \
      int64_t i = lo, j = hi;                                    \
      while (i <= j) {                                           \
        while (v[i] < pivot) i++;                                \
        while (pivot < v[j]) j--;                                \
        if (i <= j) {                                            \
          T t = v[i];                                            \
          v[i++] = v[j];                                         \
          v[j--] = t;                                            \
        }                                                        \
      }                                                          \
      if (rank <= j)                                             \
        hi = j;                                                  \
      else if (rank >= i)                                        \
        lo = i;                                                  \
      else                                                       \
        break;                                                   \
    }                                                            \
    return v[rank];                                              \
  }                                                              \
  static ts_status median_sel_##T(const ts_kernel *k, const ts_image *in, ts_image *out, \
                                  ts_scratch *s, ts_error *err) {                       \
    const int C = in->channels;                                                         \
    const int64_t size = 2 * k->halo + 1, n = size * size;                              \
    T *win = ts_scratch_get(s, 0, (size_t)n * sizeof(T));                               \
    if (!win) return TS_SCRATCH_OOM(err, k);                                            \
    for (int64_t y = 0; y < out->h; y++) {                                              \
      T *o = TS_ROW(out, y);                                                            \
      for (int64_t x = 0; x < out->w; x++)                                              \
        for (int c = 0; c < C; c++) {                                                   \
          int64_t j = 0;                                                                \
          for (int64_t dy = 0; dy < size; dy++) {                                       \
            const T *r = (const T *)TS_CROW(in, y + dy) + x * C + c;                    \
            for (int64_t dx = 0; dx < size; dx++) win[j++] = r[dx * C];                 \
          }                                                                             \
          o[x * C + c] = select_##T(win, n, n / 2);                                     \
        }                                                                               \
    }                                                                                   \
    return TS_OK;                                                                       \
  }
TS_SELECT(uint16_t)
TS_SELECT(float)

static ts_status median_prepare(ts_kernel *k, ts_error *err) {
  k->halo = (int64_t)k->v[0].num / 2;
  return TS_OK;
}

static ts_status median_apply(const ts_kernel *k, const ts_image *in, ts_image *out,
                              ts_scratch *s, ts_error *err) {
  if (k->halo == 0) {
    ts_image_copy(in, out);
    return TS_OK;
  }
  if (k->halo == 1) {
    if (in->dtype == TS_U8) return median3_uint8_t(k, in, out, s, err);
    if (in->dtype == TS_U16) return median3_uint16_t(k, in, out, s, err);
    return median3_float(k, in, out, s, err);
  }
  if (in->dtype == TS_U8) return median_hist_u8(k, in, out, err);
  if (in->dtype == TS_U16) return median_sel_uint16_t(k, in, out, s, err);
  return median_sel_float(k, in, out, s, err);
}

static const ts_param_def median_params[] = {
    {"size", TS_PARAM_INT, "3", 1, 63, TS_PARAM_ODD, NULL, "window side in pixels (odd)"},
};

const ts_kernel_def ts_kernel_median = {
    .name = "median",
    .summary = "median over a size x size window (scipy.ndimage.median_filter)",
    .params = median_params,
    .nparams = 1,
    .dtypes = TS_DTYPES_ALL,
    .channels = TS_CHANNELS_ANY,
    .halo_doc = "size/2",
    .prepare = median_prepare,
    .apply = median_apply,
};
