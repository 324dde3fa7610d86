/* Separable float passes shared by gaussian, box, unsharp and friends
 * (the passes' own comment below says how they are computed), and the
 * float row conversions of the other kernels. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <stdlib.h>
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

#if defined(__x86_64__) && defined(__GNUC__)
/* The SSE2 store below, 32 at a time: the same operations, so the same
 * bytes (packs and packus work per 128-bit lane; the permute puts the
 * four groups of 8 back in order). Returns how many it stored. */
__attribute__((target("avx2"))) static int64_t row_to_u8_avx2(const float *src, uint8_t *d, int64_t n) {
  const __m256 lo = _mm256_setzero_ps(), hi = _mm256_set1_ps(255.f), half = _mm256_set1_ps(0.5f);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256i q[4];
    for (int j = 0; j < 4; j++)
      q[j] = _mm256_cvttps_epi32(
          _mm256_add_ps(_mm256_min_ps(_mm256_max_ps(_mm256_loadu_ps(src + i + 8 * j), lo), hi), half));
    const __m256i p = _mm256_packus_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    _mm256_storeu_si256((__m256i *)(d + i), _mm256_permutevar8x32_epi32(p, order));
  }
  return i;
}
#endif

void ts_row_from_float(ts_dtype dt, const float *restrict src, void *dst, int64_t n) {
  if (dt == TS_U8) {
    uint8_t *restrict d = dst;
    int64_t i = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx2")) i = row_to_u8_avx2(src, d, n);
#endif
#ifdef __SSE2__
    /* 16 at a time: max with 0 first (MAXPS gives its second operand for
     * NaN, so NaN becomes 0), min 255, + 0.5, truncate, pack: the values
     * ts_sat_u8 gives, which gcc leaves scalar (its NaN test) */
    const __m128 lo = _mm_setzero_ps(), hi = _mm_set1_ps(255.f), half = _mm_set1_ps(0.5f);
    for (const int64_t whole = n > 0 ? n - n % 16 : 0; i + 16 <= whole; i += 16) {
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

/* The passes. Every output sample is the same float expression in the
 * same order, whatever the code path: s = w[r] * centre, then for
 * k = 0..r-1 with w[k] != 0, s = s + w[k] * (a_k + b_k), where a_k + b_k
 * is the pair of samples k and 2r - k (integers added exactly before the
 * conversion). No fused multiply-add (the build is ISO C, so gcc does not
 * contract), so the portable loops below and the AVX2 ones give the same
 * bits, and the output does not depend on the CPU that computed it.
 *
 * The portable loops run k outer and samples inner (vectorized by the
 * compiler for SSE2, the partial sums kept in dst). The AVX2 ones hold 32
 * sums in four registers over every k: no store and reload of dst per tap,
 * and twice the width. Measured on a 16384^2 u8 Gaussian job (when u8
 * still took these passes): 1.16 s of CPU before, 0.57 s after. */

/* One template per input dtype: T is the sample type, A the type in which
 * two samples are added before conversion (exact for integers). Samples
 * [i0, n) of the vertical pass. */
#define TS_VPASS(T, A)                                                                                      \
  static void vpass_##T(const ts_image *in, int64_t y, const float *w, int r, float *restrict dst, int64_t i0, \
                        int64_t n) {                                                                        \
    const T *restrict c = TS_CROW(in, y + r);                                                               \
    const float wc = w[r];                                                                                  \
    for (int64_t i = i0; i < n; i++) dst[i] = wc * (float)c[i];                                             \
    for (int k = 0; k < r; k++) {                                                                           \
      const T *restrict a = TS_CROW(in, y + k);                                                             \
      const T *restrict b = TS_CROW(in, y + 2 * r - k);                                                     \
      const float wa = w[k];                                                                                \
      if (wa == 0.f) continue;                                                                              \
      for (int64_t i = i0; i < n; i++) dst[i] += wa * (float)((A)a[i] + (A)b[i]);                           \
    }                                                                                                       \
  }
TS_VPASS(uint8_t, int)
TS_VPASS(uint16_t, int)
TS_VPASS(float, float)

static void vpass_portable(const ts_image *in, int64_t y, const float *w, int r, float *restrict dst, int64_t i0,
                           int64_t n) {
  if (in->dtype == TS_U8)
    vpass_uint8_t(in, y, w, r, dst, i0, n);
  else if (in->dtype == TS_U16)
    vpass_uint16_t(in, y, w, r, dst, i0, n);
  else
    vpass_float(in, y, w, r, dst, i0, n);
}

static void hpass_portable(const float *restrict src, int64_t i0, int64_t n, int C, const float *w, int r,
                           float *restrict dst) {
  const float wc = w[r];
  const float *restrict c = src + (int64_t)r * C;
  for (int64_t i = i0; i < n; i++) dst[i] = wc * c[i];
  for (int k = 0; k < r; k++) {
    const float *restrict a = src + (int64_t)k * C;
    const float *restrict b = src + (int64_t)(2 * r - k) * C;
    const float wa = w[k];
    if (wa == 0.f) continue;
    for (int64_t i = i0; i < n; i++) dst[i] += wa * (a[i] + b[i]);
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
#define TS_AVX2 __attribute__((target("avx2")))

/* 8 samples of a row as floats, and 8 pairs added then converted */
TS_AVX2 static inline __m256 one_u8(const uint8_t *a) {
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)a)));
}
TS_AVX2 static inline __m256 pair_u8(const uint8_t *a, const uint8_t *b) {
  return _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)a)),
                                             _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)b))));
}
TS_AVX2 static inline __m256 one_u16(const uint16_t *a) {
  return _mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)a)));
}
TS_AVX2 static inline __m256 pair_u16(const uint16_t *a, const uint16_t *b) {
  return _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)a)),
                                             _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)b))));
}
TS_AVX2 static inline __m256 one_f32(const float *a) { return _mm256_loadu_ps(a); }
TS_AVX2 static inline __m256 pair_f32(const float *a, const float *b) {
  return _mm256_add_ps(_mm256_loadu_ps(a), _mm256_loadu_ps(b));
}

/* s = s + w * x, as two roundings */
TS_AVX2 static inline __m256 madd(__m256 s, __m256 w, __m256 x) { return _mm256_add_ps(s, _mm256_mul_ps(w, x)); }

#define TS_VPASS_AVX2(T, SFX)                                                                                  \
  TS_AVX2 static void vpass_avx2_##SFX(const ts_image *in, int64_t y, const float *w, int r, float *restrict dst, \
                                       int64_t n) {                                                            \
    const T *c = TS_CROW(in, y + r);                                                                           \
    const __m256 wc = _mm256_set1_ps(w[r]);                                                                    \
    int64_t i = 0;                                                                                             \
    for (; i + 32 <= n; i += 32) {                                                                             \
      __m256 s0 = _mm256_mul_ps(wc, one_##SFX(c + i)), s1 = _mm256_mul_ps(wc, one_##SFX(c + i + 8));           \
      __m256 s2 = _mm256_mul_ps(wc, one_##SFX(c + i + 16)), s3 = _mm256_mul_ps(wc, one_##SFX(c + i + 24));     \
      for (int k = 0; k < r; k++) {                                                                            \
        if (w[k] == 0.f) continue;                                                                             \
        const T *a = (const T *)TS_CROW(in, y + k) + i, *b = (const T *)TS_CROW(in, y + 2 * r - k) + i;        \
        const __m256 wk = _mm256_set1_ps(w[k]);                                                                \
        s0 = madd(s0, wk, pair_##SFX(a, b));                                                                   \
        s1 = madd(s1, wk, pair_##SFX(a + 8, b + 8));                                                           \
        s2 = madd(s2, wk, pair_##SFX(a + 16, b + 16));                                                         \
        s3 = madd(s3, wk, pair_##SFX(a + 24, b + 24));                                                         \
      }                                                                                                        \
      _mm256_storeu_ps(dst + i, s0);                                                                           \
      _mm256_storeu_ps(dst + i + 8, s1);                                                                       \
      _mm256_storeu_ps(dst + i + 16, s2);                                                                      \
      _mm256_storeu_ps(dst + i + 24, s3);                                                                      \
    }                                                                                                          \
    for (; i + 8 <= n; i += 8) {                                                                               \
      __m256 s = _mm256_mul_ps(wc, one_##SFX(c + i));                                                          \
      for (int k = 0; k < r; k++)                                                                              \
        if (w[k] != 0.f)                                                                                       \
          s = madd(s, _mm256_set1_ps(w[k]),                                                                    \
                   pair_##SFX((const T *)TS_CROW(in, y + k) + i, (const T *)TS_CROW(in, y + 2 * r - k) + i));   \
      _mm256_storeu_ps(dst + i, s);                                                                            \
    }                                                                                                          \
    if (i < n) vpass_##T(in, y, w, r, dst, i, n); /* the last few samples */                                \
  }
TS_VPASS_AVX2(uint8_t, u8)
TS_VPASS_AVX2(uint16_t, u16)
TS_VPASS_AVX2(float, f32)

TS_AVX2 static void hpass_avx2(const float *restrict src, int64_t n, int C, const float *w, int r,
                               float *restrict dst) {
  const float *c = src + (int64_t)r * C;
  const __m256 wc = _mm256_set1_ps(w[r]);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256 s0 = _mm256_mul_ps(wc, _mm256_loadu_ps(c + i)), s1 = _mm256_mul_ps(wc, _mm256_loadu_ps(c + i + 8));
    __m256 s2 = _mm256_mul_ps(wc, _mm256_loadu_ps(c + i + 16)), s3 = _mm256_mul_ps(wc, _mm256_loadu_ps(c + i + 24));
    for (int k = 0; k < r; k++) {
      if (w[k] == 0.f) continue;
      const float *a = src + (int64_t)k * C + i, *b = src + (int64_t)(2 * r - k) * C + i;
      const __m256 wk = _mm256_set1_ps(w[k]);
      s0 = madd(s0, wk, pair_f32(a, b));
      s1 = madd(s1, wk, pair_f32(a + 8, b + 8));
      s2 = madd(s2, wk, pair_f32(a + 16, b + 16));
      s3 = madd(s3, wk, pair_f32(a + 24, b + 24));
    }
    _mm256_storeu_ps(dst + i, s0);
    _mm256_storeu_ps(dst + i + 8, s1);
    _mm256_storeu_ps(dst + i + 16, s2);
    _mm256_storeu_ps(dst + i + 24, s3);
  }
  for (; i + 8 <= n; i += 8) {
    __m256 s = _mm256_mul_ps(wc, _mm256_loadu_ps(c + i));
    for (int k = 0; k < r; k++)
      if (w[k] != 0.f)
        s = madd(s, _mm256_set1_ps(w[k]), pair_f32(src + (int64_t)k * C + i, src + (int64_t)(2 * r - k) * C + i));
    _mm256_storeu_ps(dst + i, s);
  }
  if (i < n) hpass_portable(src, i, n, C, w, r, dst);
}

int ts_separable_simd(void) { return __builtin_cpu_supports("avx2"); }
#else
int ts_separable_simd(void) { return 0; }
#endif

void ts_vpass_with(int simd, const ts_image *in, int64_t y, const float *w, int r, float *restrict dst, int64_t n) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (simd) {
    if (in->dtype == TS_U8)
      vpass_avx2_u8(in, y, w, r, dst, n);
    else if (in->dtype == TS_U16)
      vpass_avx2_u16(in, y, w, r, dst, n);
    else
      vpass_avx2_f32(in, y, w, r, dst, n);
    return;
  }
#endif
  vpass_portable(in, y, w, r, dst, 0, n);
}

void ts_hpass_with(int simd, const float *restrict src, int64_t n, int C, const float *w, int r,
                   float *restrict dst) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (simd) {
    hpass_avx2(src, n, C, w, r, dst);
    return;
  }
#endif
  hpass_portable(src, 0, n, C, w, r, dst);
}

ts_status ts_separable(const ts_kernel *k, const ts_image *in, ts_image *out,
                       const float *w, int r, ts_row_emit emit, ts_scratch *s,
                       ts_error *err) {
  const int C = in->channels;
  const int64_t nin = in->w * C, nout = out->w * C;
  float *tmp = ts_scratch_get(s, 0, (size_t)nin * sizeof(float));
  float *row = ts_scratch_get(s, 1, (size_t)nout * sizeof(float));
  if (!tmp || !row) return TS_SCRATCH_OOM(err, k);
  const int simd = ts_separable_simd();
  for (int64_t y = 0; y < out->h; y++) {
    ts_vpass_with(simd, in, y, w, r, tmp, nin);
    ts_hpass_with(simd, tmp, nout, C, w, r, row);
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
