/* The u8 Gaussian in fixed point: integer weights, exact integer sums.
 *
 * Why: the float passes (separable.c) spend about 11 vector operations per
 * sample; in 16-bit lanes, with madd summing two taps per 32-bit lane,
 * the same filter takes about half, and the result is stored as bytes
 * with no float conversion. OpenCV's 8-bit Gaussian works the same way.
 *
 * The arithmetic (the same in the portable and the AVX2 loops: sums of
 * integer products are exact in any order, so both give the same bytes):
 * - weights: W[k] = round(w[k] * 2^15), then the centre set so that the
 *   2r + 1 of them sum to exactly 2^15 (a flat image stays flat);
 * - vertical: V = (sum_k W[k] * in(y + k) + 2^8) >> 9, the column sum
 *   with 6 fractional bits (0 <= V <= 255 * 64 = 16320);
 * - horizontal: out = (sum_k W[k] * V[i + kC] + 2^20) >> 21.
 * How far this is from the exact filter (real weights w, real sums): the
 * weights' rounding errors sum to zero (the centre takes the rest), so on
 * samples in 0..255 they move a pass by at most 255 * 2r * 2^-16; V's
 * rounding adds at most 2^-7. Both passes together: E <= 2 * 510r / 2^16
 * + 2^-7 = (2r + 1) / 128, below 1/2 for r <= 31 (r = 8, sigma 2: 0.13).
 * So out, the exact value rounded, and scipy's float64 result rounded are
 * within 1 level of each other, as the float path is (tests/reference:
 * gaussian u8 within 1 level). The path is taken for r <= 31 (sigma <
 * 7.75) with every weight in 0..32767; other weights go to the float
 * passes. */
#include <stdint.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif
#include "kernels/common.h"

int ts_fixed_weights(const float *w, int r, int16_t *W) {
  if (r < 1 || r > TS_FIXED_MAX_RADIUS) return 0;
  int32_t side = 0;
  for (int k = 0; k < r; k++) {
    if (!(w[k] >= 0.f) || w[k] != w[2 * r - k]) return 0; /* symmetric, not negative (nor NaN) */
    const long q = lrintf(w[k] * 32768.f);
    if (q > 32767) return 0;
    W[k] = W[2 * r - k] = (int16_t)q;
    side += 2 * (int32_t)q;
  }
  const int32_t centre = 32768 - side;
  if (centre < 0 || centre > 32767) return 0;
  W[r] = (int16_t)centre;
  return 1;
}

/* ---- portable ---- */

static void vpass_fixed_portable(const ts_image *in, int64_t y, const int16_t *W, int r, int16_t *dst, int64_t i0,
                                 int64_t n) {
  const uint8_t *c = TS_CROW(in, y + r);
  for (int64_t i = i0; i < n; i++) {
    int32_t s = W[r] * (int32_t)c[i];
    for (int k = 0; k < r; k++)
      s += W[k] * ((int32_t)((const uint8_t *)TS_CROW(in, y + k))[i] + ((const uint8_t *)TS_CROW(in, y + 2 * r - k))[i]);
    dst[i] = (int16_t)((s + 256) >> 9);
  }
}

static void hpass_fixed_portable(const int16_t *src, int64_t i0, int64_t n, int C, const int16_t *W, int r,
                                 uint8_t *dst) {
  for (int64_t i = i0; i < n; i++) {
    int32_t s = W[r] * (int32_t)src[i + (int64_t)r * C];
    for (int k = 0; k < r; k++) s += W[k] * ((int32_t)src[i + (int64_t)k * C] + src[i + (int64_t)(2 * r - k) * C]);
    dst[i] = (uint8_t)((s + (1 << 20)) >> 21); /* <= 255 by the bounds above */
  }
}

/* ---- AVX2: 32 samples a step, in two halves of 16; madd multiplies two
 * taps' samples (one 16-bit pair per 32-bit lane, interleaved by unpack)
 * by their two weights and adds them. unpacklo/hi take samples 0-3, 8-11
 * / 4-7, 12-15 of a half, and packs_epi32 of the two puts them back in
 * order. The taps are paired in a fixed order: pair sums (k, k + 1) for
 * even k < r - 1, then the centre with the last pair sum when r is odd,
 * or alone (with a zero weight) when r is even. Row pointers and weights
 * are set up once per row, so the loop holds only loads and arithmetic. ---- */

#if defined(__x86_64__) && defined(__GNUC__)
#define TS_AVX2 __attribute__((target("avx2")))

typedef struct plan {
  int full;                               /* pairs of pair sums */
  __m256i w[TS_FIXED_MAX_RADIUS / 2 + 1]; /* their weights, then the last pair's */
} plan;

TS_AVX2 static void plan_init(plan *p, const int16_t *W, int r) {
  p->full = r / 2;
  for (int j = 0; j < p->full; j++)
    p->w[j] = _mm256_set1_epi32((int32_t)((uint32_t)(uint16_t)W[2 * j] | (uint32_t)(uint16_t)W[2 * j + 1] << 16));
  const uint32_t last = r % 2 ? (uint32_t)(uint16_t)W[r - 1] | (uint32_t)(uint16_t)W[r] << 16 : (uint16_t)W[r];
  p->w[p->full] = _mm256_set1_epi32((int32_t)last);
}

/* lo/hi += madd of the two 16-sample vectors a, b with weight pair w */
#define TS_MADD2(lo, hi, a, b, w)                                               \
  do {                                                                          \
    lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(a, b), w)); \
    hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(a, b), w)); \
  } while (0)

TS_AVX2 static inline __m256i u8x16(const uint8_t *p) {
  return _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)p));
}

TS_AVX2 static void vpass_fixed_avx2(const ts_image *in, int64_t y, const plan *p, const int16_t *W, int r,
                                     int16_t *dst, int64_t n) {
  const uint8_t *ra[TS_FIXED_MAX_RADIUS], *rb[TS_FIXED_MAX_RADIUS];
  for (int k = 0; k < r; k++) ra[k] = TS_CROW(in, y + k), rb[k] = TS_CROW(in, y + 2 * r - k);
  const uint8_t *rc = TS_CROW(in, y + r);
  const __m256i round = _mm256_set1_epi32(256), zero = _mm256_setzero_si256();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256i lo = round, hi = round;
    for (int j = 0; j < p->full; j++) {
      const int k = 2 * j;
      const __m256i a = _mm256_add_epi16(u8x16(ra[k] + i), u8x16(rb[k] + i));
      const __m256i b = _mm256_add_epi16(u8x16(ra[k + 1] + i), u8x16(rb[k + 1] + i));
      TS_MADD2(lo, hi, a, b, p->w[j]);
    }
    const __m256i c = u8x16(rc + i);
    if (r % 2) {
      const __m256i a = _mm256_add_epi16(u8x16(ra[r - 1] + i), u8x16(rb[r - 1] + i));
      TS_MADD2(lo, hi, a, c, p->w[p->full]);
    } else {
      TS_MADD2(lo, hi, c, zero, p->w[p->full]);
    }
    _mm256_storeu_si256((__m256i *)(dst + i),
                        _mm256_packs_epi32(_mm256_srai_epi32(lo, 9), _mm256_srai_epi32(hi, 9)));
  }
  if (i < n) vpass_fixed_portable(in, y, W, r, dst, i, n);
}

TS_AVX2 static inline __m256i i16x16(const int16_t *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* 16 outputs at s (the row's sample i), in order */
TS_AVX2 static inline __m256i hsum16(const int16_t *s, int64_t C, const plan *p, int r) {
  const __m256i zero = _mm256_setzero_si256();
  __m256i lo = _mm256_set1_epi32(1 << 20), hi = lo;
  for (int j = 0; j < p->full; j++) {
    const int k = 2 * j;
    const __m256i a = _mm256_add_epi16(i16x16(s + k * C), i16x16(s + (2 * r - k) * C));
    const __m256i b = _mm256_add_epi16(i16x16(s + (k + 1) * C), i16x16(s + (2 * r - k - 1) * C));
    TS_MADD2(lo, hi, a, b, p->w[j]);
  }
  const __m256i c = i16x16(s + r * C);
  if (r % 2) {
    const __m256i a = _mm256_add_epi16(i16x16(s + (r - 1) * C), i16x16(s + (r + 1) * C));
    TS_MADD2(lo, hi, a, c, p->w[p->full]);
  } else {
    TS_MADD2(lo, hi, c, zero, p->w[p->full]);
  }
  return _mm256_packs_epi32(_mm256_srai_epi32(lo, 21), _mm256_srai_epi32(hi, 21));
}

TS_AVX2 static void hpass_fixed_avx2(const int16_t *src, int64_t n, int C, const plan *p, const int16_t *W, int r,
                                     uint8_t *dst) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) { /* packus works per 128-bit lane; the permute restores the order */
    const __m256i q = _mm256_packus_epi16(hsum16(src + i, C, p, r), hsum16(src + i + 16, C, p, r));
    _mm256_storeu_si256((__m256i *)(dst + i), _mm256_permute4x64_epi64(q, 0xD8));
  }
  if (i < n) hpass_fixed_portable(src, i, n, C, W, r, dst);
}
#endif

void ts_separable_u8_rows(int simd, const ts_image *in, int64_t y, const int16_t *W, int r, int16_t *tmp,
                          uint8_t *out_row, int64_t nout) {
  const int C = in->channels;
  const int64_t nin = in->w * C;
#if defined(__x86_64__) && defined(__GNUC__)
  if (simd) {
    plan p;
    plan_init(&p, W, r);
    vpass_fixed_avx2(in, y, &p, W, r, tmp, nin);
    hpass_fixed_avx2(tmp, nout, C, &p, W, r, out_row);
    return;
  }
#endif
  vpass_fixed_portable(in, y, W, r, tmp, 0, nin);
  hpass_fixed_portable(tmp, 0, nout, C, W, r, out_row);
}

ts_status ts_separable_u8(const ts_kernel *k, const ts_image *in, ts_image *out, const float *w, int r,
                          ts_scratch *s, ts_error *err) {
  int16_t W[2 * TS_FIXED_MAX_RADIUS + 1];
  if (in->dtype != TS_U8 || out->dtype != TS_U8 || !ts_fixed_weights(w, r, W))
    return ts_separable(k, in, out, w, r, ts_emit_store, s, err);
  const int64_t nin = in->w * in->channels, nout = out->w * out->channels;
  int16_t *tmp = ts_scratch_get(s, 0, (size_t)nin * sizeof *tmp);
  if (!tmp) return TS_SCRATCH_OOM(err, k);
  const int simd = ts_separable_simd();
  for (int64_t y = 0; y < out->h; y++) ts_separable_u8_rows(simd, in, y, W, r, tmp, TS_ROW(out, y), nout);
  return TS_OK;
}
