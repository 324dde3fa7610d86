/* Separable float passes shared by gaussian, box, unsharp and friends. The
 * loops run k outer and samples inner, so the inner loops are plain
 * multiply-adds over contiguous arrays that the compiler vectorizes. */
#include <stdlib.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <string.h>
#include "kernels/common.h"

void ts_row_to_float(ts_dtype dt, const void *src, float *restrict dst, int64_t n) {
  if (dt == TS_U8) {
    const uint8_t *restrict s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = s[i];
  } else if (dt == TS_U16) {
    const uint16_t *restrict s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = s[i];
  } else {
    memcpy(dst, src, (size_t)n * sizeof(float));
  }
}

void ts_row_from_float(ts_dtype dt, const float *restrict src, void *dst, int64_t n) {
  if (dt == TS_U8) {
    uint8_t *restrict d = dst;
    int64_t i = 0;
#ifdef __SSE2__
    /* 16 at a time: max with 0 first (MAXPS gives its second operand for
     * NaN, so NaN becomes 0), min 255, + 0.5, truncate, pack: the values
     * ts_sat_u8 gives, which gcc leaves scalar (its NaN test) */
    const __m128 lo = _mm_setzero_ps(), hi = _mm_set1_ps(255.f), half = _mm_set1_ps(0.5f);
    for (const int64_t whole = n > 0 ? n - n % 16 : 0; i < whole; i += 16) {
      __m128i q[4];
      for (int j = 0; j < 4; j++)
        q[j] = _mm_cvttps_epi32(_mm_add_ps(_mm_min_ps(_mm_max_ps(_mm_loadu_ps(src + i + 4 * j), lo), hi), half));
      _mm_storeu_si128((__m128i *)(d + i),
                       _mm_packus_epi16(_mm_packs_epi32(q[0], q[1]), _mm_packs_epi32(q[2], q[3])));
    }
#endif
    for (; i < n; i++) d[i] = ts_sat_u8(src[i]);
  } else if (dt == TS_U16) {
    uint16_t *restrict d = dst;
    for (int64_t i = 0; i < n; i++) d[i] = ts_sat_u16(src[i]);
  } else {
    memcpy(dst, src, (size_t)n * sizeof(float));
  }
}

/* See common.h. */
ts_status ts_point_rows(const ts_kernel *k, const ts_image *in, ts_image *out, ts_point_op op, ts_scratch *s,
                        ts_error *err) {
  const int64_t n = in->w * in->channels;
  float *f = ts_scratch_get(s, 0, (size_t)(n > 256 ? n : 256) * sizeof(float));
  if (!f) return TS_SCRATCH_OOM(err, k);
  if (in->dtype == TS_U8 && out->dtype == TS_U8) {
    uint8_t lut[256];
    for (int i = 0; i < 256; i++) f[i] = (float)i;
    op(k, f, 256);
    ts_row_from_float(TS_U8, f, lut, 256);
    for (int64_t y = 0; y < in->h; y++) ts_lut_u8(lut, TS_CROW(in, y), TS_ROW(out, y), n);
    return TS_OK;
  }
  for (int64_t y = 0; y < in->h; y++) {
    ts_row_to_float(in->dtype, TS_CROW(in, y), f, n);
    op(k, f, n);
    ts_row_from_float(out->dtype, f, TS_ROW(out, y), n);
  }
  return TS_OK;
}

/* One template per input dtype: T is the sample type, A the type in which
 * two samples are added before conversion (exact for integers). */
#define TS_VPASS(T, A)                                                        \
  static void vpass_##T(const ts_image *in, int64_t y, const float *w, int r, \
                        int sym, float *restrict dst, int64_t n) {            \
    const T *restrict c = TS_CROW(in, y + r);                                 \
    const float wc = w[r];                                                    \
    for (int64_t i = 0; i < n; i++) dst[i] = wc * (float)c[i];                \
    for (int k = 0; k < r; k++) {                                             \
      const T *restrict a = TS_CROW(in, y + k);                               \
      const T *restrict b = TS_CROW(in, y + 2 * r - k);                       \
      const float wa = w[k], wb = w[2 * r - k];                               \
      if (sym) {                                                              \
        if (wa == 0.f) continue;                                              \
        for (int64_t i = 0; i < n; i++) dst[i] += wa * (float)((A)a[i] + (A)b[i]); \
      } else {                                                                \
        if (wa != 0.f)                                                        \
          for (int64_t i = 0; i < n; i++) dst[i] += wa * (float)a[i];         \
        if (wb != 0.f)                                                        \
          for (int64_t i = 0; i < n; i++) dst[i] += wb * (float)b[i];         \
      }                                                                       \
    }                                                                         \
  }
TS_VPASS(uint8_t, int)
TS_VPASS(uint16_t, int)
TS_VPASS(float, float)

void ts_vpass(const ts_image *in, int64_t y, const float *w, int r, int sym,
              float *restrict dst, int64_t n) {
  if (in->dtype == TS_U8)
    vpass_uint8_t(in, y, w, r, sym, dst, n);
  else if (in->dtype == TS_U16)
    vpass_uint16_t(in, y, w, r, sym, dst, n);
  else
    vpass_float(in, y, w, r, sym, dst, n);
}

void ts_hpass(const float *restrict src, int64_t n, int C, const float *w, int r, int sym,
              float *restrict dst) {
  const float wc = w[r];
  const float *restrict c = src + (int64_t)r * C;
  for (int64_t i = 0; i < n; i++) dst[i] = wc * c[i];
  for (int k = 0; k < r; k++) {
    const float *restrict a = src + (int64_t)k * C;
    const float *restrict b = src + (int64_t)(2 * r - k) * C;
    const float wa = w[k], wb = w[2 * r - k];
    if (sym) {
      if (wa == 0.f) continue;
      for (int64_t i = 0; i < n; i++) dst[i] += wa * (a[i] + b[i]);
    } else {
      if (wa != 0.f)
        for (int64_t i = 0; i < n; i++) dst[i] += wa * a[i];
      if (wb != 0.f)
        for (int64_t i = 0; i < n; i++) dst[i] += wb * b[i];
    }
  }
}

ts_status ts_separable(const ts_kernel *k, const ts_image *in, ts_image *out,
                       const float *w, int r, ts_row_emit emit, ts_scratch *s,
                       ts_error *err) {
  const int C = in->channels;
  const int64_t nin = in->w * C, nout = out->w * C;
  float *tmp = ts_scratch_get(s, 0, (size_t)nin * sizeof(float));
  float *row = ts_scratch_get(s, 1, (size_t)nout * sizeof(float));
  if (!tmp || !row) return TS_SCRATCH_OOM(err, k);
  for (int64_t y = 0; y < out->h; y++) {
    ts_vpass(in, y, w, r, 1, tmp, nin);
    ts_hpass(tmp, nout, C, w, r, 1, row);
    emit(k, in, y, row, out);
  }
  return TS_OK;
}

void ts_emit_store(const ts_kernel *k, const ts_image *in, int64_t y, const float *row,
                   ts_image *out) {
  ts_row_from_float(out->dtype, row, TS_ROW(out, y), out->w * out->channels);
}

ts_status ts_weights_alloc(ts_kernel *k, int64_t n, ts_error *err) {
  free(k->weights);
  k->weights = malloc((size_t)n * sizeof(float));
  k->nweights = n;
  if (!k->weights) return ts_fail(err, TS_ERR_NOMEM, "%s: out of memory", k->def->name);
  return TS_OK;
}

int64_t ts_gaussian_radius(double sigma) { return (int64_t)(4.0 * sigma + 0.5); }

void ts_gaussian_weights(double sigma, int64_t radius, float *w) {
  /* summed and normalized in double, rounded to float once */
  double sum = 0;
  for (int64_t i = -radius; i <= radius; i++) sum += exp(-0.5 / (sigma * sigma) * (double)(i * i));
  for (int64_t i = -radius; i <= radius; i++)
    w[i + radius] = (float)(exp(-0.5 / (sigma * sigma) * (double)(i * i)) / sum);
}
