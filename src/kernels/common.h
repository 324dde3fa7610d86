/* Helpers shared by the kernel files: float row conversion, rounding and
 * saturating stores, and the separable passes. Internal to src/kernels. */
#ifndef TS_KERNELS_COMMON_H
#define TS_KERNELS_COMMON_H

#include <math.h>
#include <stdint.h>
#include "core/saturate.h"
#include "tessera/kernel.h"

/* Sample c of pixel (x, y), any dtype. For whole-image kernels' scans, not
 * inner loops of filters. */
static inline double ts_sample(const ts_image *im, int64_t x, int64_t y, int c) {
  const void *r = TS_CROW(im, y);
  const int64_t i = x * im->channels + c;
  return im->dtype == TS_U8 ? ((const uint8_t *)r)[i] : im->dtype == TS_U16 ? ((const uint16_t *)r)[i]
                                                                            : ((const float *)r)[i];
}

/* Convert n samples of dtype at src to float. */
void ts_row_to_float(ts_dtype dt, const void *src, float *restrict dst, int64_t n);
/* Round/saturate n floats into dtype at dst. */
void ts_row_from_float(ts_dtype dt, const float *restrict src, void *dst, int64_t n);

/* out[i] = lut[in[i]] for i < n (in and out do not overlap): SIMD where the CPU
 * has it (lut.c); _scalar is the portable loop, for tests to compare. */
void ts_lut_u8(const uint8_t lut[256], const uint8_t *in, uint8_t *out, int64_t n);
void ts_lut_u8_scalar(const uint8_t lut[256], const uint8_t *restrict in, uint8_t *restrict out, int64_t n);

/* Point kernels: run `op` over each row as floats (in row -> f, op(f),
 * f -> out row, rounded and saturated). u8 to u8 goes through a table of
 * op on the 256 levels: the same values, since op works sample by sample.
 * Uses scratch slot 0. */
typedef void (*ts_point_op)(const ts_kernel *k, float *restrict f, int64_t n);
ts_status ts_point_rows(const ts_kernel *k, const ts_image *in, ts_image *out, ts_point_op op, ts_scratch *s,
                        ts_error *err);

/* The separable passes, for symmetric weights (w[k] == w[2r-k]; zero
 * weights skipped). Vertical: dst[i] = sum_k w[k] * in(row y + k)[i] for
 * i < n samples, k in 0..2r. Horizontal, on interleaved samples:
 * dst[i] = sum_k w[k] src[i + k*C], i < n. `simd` picks the AVX2 loops
 * (ts_separable_simd() says whether this CPU has them) or the portable
 * ones; both give the same bits (separable.c says why). */
void ts_vpass_with(int simd, const ts_image *in, int64_t y, const float *w, int r, float *restrict dst, int64_t n);
void ts_hpass_with(int simd, const float *restrict src, int64_t n, int C, const float *w, int r,
                   float *restrict dst);
int ts_separable_simd(void);

/* Full separable filter with the same weights on both axes, result as float
 * rows handed to `emit(k, in, y, row, out)` for each output row y.
 * Uses scratch slots 0 and 1. */
typedef void (*ts_row_emit)(const ts_kernel *k, const ts_image *in, int64_t y,
                            const float *row, ts_image *out);
ts_status ts_separable(const ts_kernel *k, const ts_image *in, ts_image *out,
                       const float *w, int r, ts_row_emit emit, ts_scratch *s,
                       ts_error *err);
/* The u8 Gaussian in fixed point (separable_u8.c, which says how and how
 * close): ts_fixed_weights turns symmetric float weights of radius r into
 * 2r + 1 Q15 weights summing to 2^15 (0 when they cannot be: r above
 * TS_FIXED_MAX_RADIUS, a weight outside 0..32767); ts_separable_u8_rows
 * makes output row y (nout samples) with the AVX2 loops (simd) or the
 * portable ones, the same bytes either way, tmp holding in->w * channels
 * int16; ts_separable_u8 filters u8 into u8 so, and anything else (or
 * weights it cannot take) with ts_separable and ts_emit_store. Uses
 * scratch slot 0. */
#define TS_FIXED_MAX_RADIUS 31
int ts_fixed_weights(const float *w, int r, int16_t *W);
void ts_separable_u8_rows(int simd, const ts_image *in, int64_t y, const int16_t *W, int r, int16_t *tmp,
                          uint8_t *out_row, int64_t nout);
ts_status ts_separable_u8(const ts_kernel *k, const ts_image *in, ts_image *out, const float *w, int r,
                          ts_scratch *s, ts_error *err);

/* The usual emit: store the float row into out's dtype. */
void ts_emit_store(const ts_kernel *k, const ts_image *in, int64_t y, const float *row,
                   ts_image *out);

/* prepare() helpers */
ts_status ts_weights_alloc(ts_kernel *k, int64_t n, ts_error *err);
/* 1-D Gaussian weights exactly as scipy.ndimage's _gaussian_kernel1d,
 * radius = int(4 sigma + 0.5) (truncate = 4.0). Returns the radius. */
int64_t ts_gaussian_radius(double sigma);
void ts_gaussian_weights(double sigma, int64_t radius, float *w);

#define TS_SCRATCH_OOM(err, k) \
  ts_fail(err, TS_ERR_NOMEM, "%s: out of memory for scratch buffers", (k)->def->name)

#endif
