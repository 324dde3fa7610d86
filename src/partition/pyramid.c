/* Pyramid levels: their sizes, which of them a task makes itself, and the
 * 2x2 reduction. The reduction of a block depends only on its samples, so
 * any cut of a level into aligned pieces gives the same next level: tasks,
 * tiles and ranks never change the bytes. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif
#include "core/params.h"
#include "tessera/partition.h"

static const char *const names[] = {"mean", "nearest", "max", "min"};

const char *ts_downsample_name(ts_downsample d) {
  return (unsigned)d < sizeof names / sizeof *names ? names[d] : "?";
}

ts_status ts_downsample_parse(const char *s, ts_downsample *out) {
  const int i = ts_name_index(names, sizeof names / sizeof *names, s);
  if (i >= 0) *out = (ts_downsample)i;
  return i >= 0 ? TS_OK : TS_ERR_USAGE;
}

ts_reduce ts_reduce_make(ts_downsample mode, const char *nodata, ts_dtype dtype) {
  ts_reduce r = {.mode = mode};
  if (!nodata) return r;
  char *end;
  const double v = strtod(nodata, &end);
  while (*end == ' ') end++;
  if (end == nodata || *end) return r; /* not a number: GDAL would not read one either */
  if (dtype == TS_F32) {
    r.has_nodata = 1;
    r.nodata = isnan(v) ? (double)NAN : (double)(float)v; /* the float the samples are compared with */
  } else if (v == floor(v) && v >= 0 && v <= (dtype == TS_U8 ? 255 : 65535)) {
    r.has_nodata = 1;
    r.nodata = v;
  }
  return r;
}

void ts_levels_init(ts_levels *g, int64_t w, int64_t h, int64_t tile, int64_t task_tile, int max_reduced) {
  memset(g, 0, sizeof *g);
  g->tile = tile;
  g->w[0] = w, g->h[0] = h;
  g->n = 1;
  while (g->n < TS_MAX_LEVELS && (max_reduced < 0 || g->n <= max_reduced) &&
         (g->w[g->n - 1] > tile || g->h[g->n - 1] > tile)) {
    g->w[g->n] = (g->w[g->n - 1] + 1) / 2;
    g->h[g->n] = (g->h[g->n - 1] + 1) / 2;
    g->n++;
  }
  /* a task's core at level L is whole tiles while task_tile / 2^L is a
   * multiple of the tile; task_tile is a multiple of 16 * tile's factors,
   * so the core stays aligned to 2^task_levels for its piece */
  g->task_levels = 1;
  while (g->task_levels < g->n && task_tile % ((int64_t)1 << g->task_levels) == 0 &&
         (task_tile >> g->task_levels) % tile == 0)
    g->task_levels++;
}

ts_rect ts_level_rect(const ts_levels *g, ts_rect r, int L) {
  const int64_t x1 = (r.x + r.w + ((int64_t)1 << L) - 1) >> L, y1 = (r.y + r.h + ((int64_t)1 << L) - 1) >> L;
  ts_rect o = {r.x >> L, r.y >> L, 0, 0};
  o.w = (x1 < g->w[L] ? x1 : g->w[L]) - o.x;
  o.h = (y1 < g->h[L] ? y1 : g->h[L]) - o.y;
  return o;
}

int64_t ts_level_across(const ts_levels *g, int L) { return (g->w[L] + g->tile - 1) / g->tile; }
int64_t ts_level_down(const ts_levels *g, int L) { return (g->h[L] + g->tile - 1) / g->tile; }

/* One output row from two input rows (b == a at an odd bottom edge: the
 * block's second row does not exist, and n counts what does). */
#define ROW(T, ACC, MEAN)                                                                                 \
  static void row_##T(const T *a, const T *b, int two_rows, T *o, int64_t sw, int ch, ts_downsample m) { \
    const int64_t dw = (sw + 1) / 2;                                                                    \
    for (int64_t x = 0; x < dw; x++) {                                                                  \
      const int two_cols = 2 * x + 1 < sw;                                                              \
      for (int c = 0; c < ch; c++) {                                                                    \
        const int64_t i = 2 * x * ch + c, j = two_cols ? i + ch : i;                                    \
        T v = a[i];                                                                                     \
        if (m == TS_DOWNSAMPLE_MEAN) {                                                                  \
          const int n = (1 + two_cols) * (1 + two_rows);                                                \
          ACC s = (ACC)a[i];                                                                            \
          if (two_cols) s += (ACC)a[j];                                                                 \
          if (two_rows) {                                                                               \
            s += (ACC)b[i];                                                                             \
            if (two_cols) s += (ACC)b[j];                                                               \
          }                                                                                             \
          v = MEAN;                                                                                     \
        } else if (m == TS_DOWNSAMPLE_MAX || m == TS_DOWNSAMPLE_MIN) {                                  \
          const T q[4] = {a[i], a[j], b[i], b[j]};                                                      \
          for (int k = 1; k < 4; k++)                                                                   \
            if (m == TS_DOWNSAMPLE_MAX ? q[k] > v : q[k] < v) v = q[k];                                  \
        }                                                                                               \
        o[x * ch + c] = v;                                                                              \
      }                                                                                                 \
    }                                                                                                   \
  }
/* integers: half away from zero, (s + n/2) / n for sums >= 0; f32: the
 * sum in the order a + a' + b + b', then one division */
ROW(uint8_t, unsigned, (uint8_t)((s + (unsigned)n / 2) / (unsigned)n))
ROW(uint16_t, unsigned, (uint16_t)((s + (unsigned)n / 2) / (unsigned)n))
ROW(float, float, s / (float)n)

/* The same, skipping nodata samples (nd; NaN: NaN ones, IS_ND): the
 * samples that exist, in the order a, a', b, b', those not nodata summed
 * or compared; none: nd; a mean equal to nd: repl. */
#define ROW_ND(T, ACC, IS_ND, MEAN)                                                                         \
  static void row_nd_##T(const T *a, const T *b, int two_rows, T *o, int64_t sw, int ch, ts_downsample m,  \
                         T nd, T repl) {                                                                  \
    const int64_t dw = (sw + 1) / 2;                                                                      \
    for (int64_t x = 0; x < dw; x++) {                                                                    \
      const int two_cols = 2 * x + 1 < sw;                                                                \
      for (int c = 0; c < ch; c++) {                                                                      \
        const int64_t i = 2 * x * ch + c;                                                                 \
        T q[4];                                                                                           \
        int k = 0, n = 0;                                                                                 \
        q[k++] = a[i];                                                                                    \
        if (two_cols) q[k++] = a[i + ch];                                                                 \
        if (two_rows) {                                                                                   \
          q[k++] = b[i];                                                                                  \
          if (two_cols) q[k++] = b[i + ch];                                                               \
        }                                                                                                 \
        ACC s = 0;                                                                                        \
        T v = nd;                                                                                         \
        for (int j = 0; j < k; j++) {                                                                     \
          if (IS_ND(q[j])) continue;                                                                      \
          if (n++ == 0) s = (ACC)q[j], v = q[j];                                                          \
          else if (m == TS_DOWNSAMPLE_MEAN) s += (ACC)q[j];                                               \
          else if (m == TS_DOWNSAMPLE_MAX ? q[j] > v : q[j] < v) v = q[j];                                \
        }                                                                                                 \
        if (n && m == TS_DOWNSAMPLE_MEAN) {                                                               \
          v = MEAN;                                                                                       \
          if (v == nd) v = repl;                                                                          \
        }                                                                                                 \
        o[x * ch + c] = v;                                                                                \
      }                                                                                                   \
    }                                                                                                     \
  }
#define IS_EQ(v) ((v) == nd)
#define IS_ND_F(v) (isnan(nd) ? isnan(v) : (v) == nd)
ROW_ND(uint8_t, unsigned, IS_EQ, (uint8_t)((s + (unsigned)n / 2) / (unsigned)n))
ROW_ND(uint16_t, unsigned, IS_EQ, (uint16_t)((s + (unsigned)n / 2) / (unsigned)n))
ROW_ND(float, float, IS_ND_F, s / (float)n)
#undef IS_EQ
#undef IS_ND_F

/* The common case with nodata: means of whole blocks, without branches
 * so that gcc vectorizes them. A nodata sample adds 0 (-0.0f for floats:
 * x + -0.0f is x for every x, +0.0f included, so the sums are row_nd's
 * bit for bit) and n counts the rest; the division by n in 1..4 is shifts
 * and a multiply (u16 sums reach 3 * 65535 + 1: the 64-bit one). */
static inline unsigned div3_u16(unsigned t) { return (unsigned)(((uint64_t)t * 0xAAAAAAABu) >> 33); }
#define MEAN_ND_INT(T, U, DIV3)                                                                    \
  static inline T block_nd_##T(T p0, T p1, T p2, T p3, T nd, T repl) {                             \
    const U v0 = p0 != nd, v1 = p1 != nd, v2 = p2 != nd, v3 = p3 != nd, n = v0 + v1 + v2 + v3;     \
    const U t = (U)((v0 ? p0 : 0) + (v1 ? p1 : 0) + (v2 ? p2 : 0) + (v3 ? p3 : 0) + (n >> 1));      \
    const U q = n == 4 ? t >> 2 : n == 2 ? t >> 1 : n == 3 ? (U)DIV3(t) : t; /* n 0: t 0 */        \
    const T v = n ? (T)q : nd;                                                                     \
    return n && v == nd ? repl : v;                                                                \
  }
/* u8: 16-bit lanes; x / 3 == x * 0x5556 >> 16 for x < 2^15 (sums reach 766) */
#define DIV3_U8(t) (((uint32_t)(t) * 0x5556u) >> 16)
MEAN_ND_INT(uint8_t, uint16_t, DIV3_U8)
MEAN_ND_INT(uint16_t, uint32_t, div3_u16)
static inline float block_nd_float(float p0, float p1, float p2, float p3, float nd, float repl) {
  const int nan = nd != nd;
  const unsigned v0 = nan ? p0 == p0 : p0 != nd, v1 = nan ? p1 == p1 : p1 != nd, v2 = nan ? p2 == p2 : p2 != nd,
                 v3 = nan ? p3 == p3 : p3 != nd, n = v0 + v1 + v2 + v3;
  const float s = (((v0 ? p0 : -0.0f) + (v1 ? p1 : -0.0f)) + (v2 ? p2 : -0.0f)) + (v3 ? p3 : -0.0f);
  const float v = n ? s / (float)(n ? n : 1) : nd; /* (no division by 0 even where it is not used) */
  return n && v == nd ? repl : v;
}
#define MEAN_ND(T)                                                                                   \
  __attribute__((target_clones("avx2", "default"))) static void mean_nd_##T(const T *a, const T *b, T *o, int64_t full, int ch, T nd, T repl) {        \
    if (ch == 1)                                                                                     \
      for (int64_t x = 0; x < full; x++)                                                             \
        o[x] = block_nd_##T(a[2 * x], a[2 * x + 1], b[2 * x], b[2 * x + 1], nd, repl);                 \
    else                                                                                             \
      for (int64_t x = 0; x < full; x++)                                                             \
        for (int c = 0; c < ch; c++) {                                                               \
          const int64_t i = 2 * x * ch + c;                                                          \
          o[x * ch + c] = block_nd_##T(a[i], a[i + ch], b[i], b[i + ch], nd, repl);                  \
        }                                                                                            \
  }
MEAN_ND(uint8_t)
MEAN_ND(uint16_t)
MEAN_ND(float)

#if defined(__x86_64__) && defined(__GNUC__)
/* u8 means of whole blocks, one channel, 32 outputs at a time: each row's
 * horizontal pairs summed by maddubs (a byte times 1 plus the next), the
 * two rows added, + 2, >> 2: the scalar loop's values. gcc's own
 * vectorization of the stride-2 loop spent 4% of a pyramid job. */
__attribute__((target("avx2"))) static int64_t mean_u8_c1_avx2(const uint8_t *a, const uint8_t *b, uint8_t *o,
                                                                int64_t full) {
  const __m256i one = _mm256_set1_epi8(1), two = _mm256_set1_epi16(2);
  int64_t x = 0;
  for (; x + 32 <= full; x += 32) {
    __m256i s[2];
    for (int j = 0; j < 2; j++) {
      const __m256i ra = _mm256_loadu_si256((const __m256i *)(a + 2 * x + 32 * j));
      const __m256i rb = _mm256_loadu_si256((const __m256i *)(b + 2 * x + 32 * j));
      s[j] = _mm256_add_epi16(_mm256_maddubs_epi16(ra, one), _mm256_maddubs_epi16(rb, one));
      s[j] = _mm256_srli_epi16(_mm256_add_epi16(s[j], two), 2);
    }
    /* packus interleaves the 128-bit lanes: put them back in order */
    _mm256_storeu_si256((__m256i *)(o + x), _mm256_permute4x64_epi64(_mm256_packus_epi16(s[0], s[1]), 0xD8));
  }
  return x;
}
/* Three channels (RGB), 4 output pixels (12 samples) at a time: a
 * 128-bit lane holds 4 input pixels of a row; byte shuffles widen the
 * left and the right pixel of each pair to 16 bits (the lane's 6 samples
 * in 6 of its 8 words), the four are added, + 2, >> 2, and the two lanes'
 * 6 bytes are packed together. Loads stay inside the 24 input bytes. */
__attribute__((target("avx2"))) static int64_t mean_u8_c3_avx2(const uint8_t *a, const uint8_t *b, uint8_t *o,
                                                                int64_t full) {
  const int8_t z = -1; /* a shuffle index that makes a zero byte */
  const __m256i left = _mm256_setr_epi8(0, z, 1, z, 2, z, 6, z, 7, z, 8, z, z, z, z, z, /* pixels 0 and 2 */
                                        4, z, 5, z, 6, z, 10, z, 11, z, 12, z, z, z, z, z);
  const __m256i right = _mm256_setr_epi8(3, z, 4, z, 5, z, 9, z, 10, z, 11, z, z, z, z, z, /* pixels 1 and 3 */
                                         7, z, 8, z, 9, z, 13, z, 14, z, 15, z, z, z, z, z);
  const __m128i gather = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13, z, z, z, z);
  const __m256i two = _mm256_set1_epi16(2);
  int64_t x = 0;
  for (; x + 4 <= full; x += 4) {
    /* lane 0: input bytes 0-15 (pixels 0-3 in bytes 0-11); lane 1: bytes 8-23 (pixels 4-7 in its bytes 4-15) */
    const __m256i ra = _mm256_loadu2_m128i((const __m128i *)(a + 6 * x + 8), (const __m128i *)(a + 6 * x));
    const __m256i rb = _mm256_loadu2_m128i((const __m128i *)(b + 6 * x + 8), (const __m128i *)(b + 6 * x));
    __m256i s = _mm256_add_epi16(_mm256_shuffle_epi8(ra, left), _mm256_shuffle_epi8(ra, right));
    s = _mm256_add_epi16(s, _mm256_add_epi16(_mm256_shuffle_epi8(rb, left), _mm256_shuffle_epi8(rb, right)));
    s = _mm256_srli_epi16(_mm256_add_epi16(s, two), 2);
    const __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi16(s, s), 0x08); /* each lane's 8 bytes, low half */
    const __m128i q = _mm_shuffle_epi8(_mm256_castsi256_si128(p), gather);
    _mm_storel_epi64((__m128i *)(o + 3 * x), q);
    const int32_t last = _mm_extract_epi32(q, 2);
    memcpy(o + 3 * x + 8, &last, 4);
  }
  return x;
}

static int64_t mean_u8_simd(const uint8_t *a, const uint8_t *b, uint8_t *o, int64_t full, int ch) {
  if (!__builtin_cpu_supports("avx2")) return 0;
  return ch == 1 ? mean_u8_c1_avx2(a, b, o, full) : ch == 3 ? mean_u8_c3_avx2(a, b, o, full) : 0;
}
#else
static int64_t mean_u8_simd(const uint8_t *a, const uint8_t *b, uint8_t *o, int64_t full, int ch) { return 0; }
#endif

/* The common case: u8 means of whole 2x2 blocks (all but an odd last
 * column), kept simple enough for gcc to vectorize past the SIMD part. */
static int64_t mean_u8(const uint8_t *a, const uint8_t *b, uint8_t *o, int64_t sw, int ch) {
  const int64_t full = sw / 2;
  const int64_t done = mean_u8_simd(a, b, o, full, ch);
  if (ch == 1) {
    for (int64_t x = done; x < full; x++)
      o[x] = (uint8_t)(((unsigned)a[2 * x] + a[2 * x + 1] + b[2 * x] + b[2 * x + 1] + 2) >> 2);
  } else {
    for (int64_t x = done; x < full; x++)
      for (int c = 0; c < ch; c++) {
        const int64_t i = 2 * x * ch + c;
        o[x * ch + c] = (uint8_t)(((unsigned)a[i] + a[i + ch] + b[i] + b[i + ch] + 2) >> 2);
      }
  }
  return full;
}

/* GDAL's stand-in for a mean that lands on nodata: the next value up,
 * down at the top of the type. */
static double replacement(ts_dtype t, double nd) {
  if (t == TS_F32) return nextafterf((float)nd, (float)nd < FLT_MAX ? INFINITY : -INFINITY);
  return nd < (t == TS_U8 ? 255 : 65535) ? nd + 1 : nd - 1;
}

void ts_downsample_image(const ts_image *src, ts_image *dst, const ts_reduce *r) {
  const int64_t dh = (src->h + 1) / 2;
  const int ch = src->channels;
  const ts_downsample m = r->mode;
  const int nd = r->has_nodata && m != TS_DOWNSAMPLE_NEAREST;
  const double repl = nd ? replacement(src->dtype, r->nodata) : 0;
  for (int64_t y = 0; y < dh; y++) {
    const int two = 2 * y + 1 < src->h;
    const void *a = ts_image_at(src, 0, 2 * y), *b = ts_image_at(src, 0, two ? 2 * y + 1 : 2 * y);
    void *o = ts_image_at(dst, 0, y);
    if (nd) { /* whole blocks of a mean fast, the rest (an odd column, row, max and min) block by block */
      const int64_t done = m == TS_DOWNSAMPLE_MEAN && two ? src->w / 2 : 0;
      const int64_t at = 2 * done * ch;
      if (src->dtype == TS_U8) {
        const uint8_t v = (uint8_t)r->nodata, rv = (uint8_t)repl;
        mean_nd_uint8_t(a, b, o, done, ch, v, rv);
        row_nd_uint8_t((const uint8_t *)a + at, (const uint8_t *)b + at, two, (uint8_t *)o + done * ch,
                       src->w - 2 * done, ch, m, v, rv);
      } else if (src->dtype == TS_U16) {
        const uint16_t v = (uint16_t)r->nodata, rv = (uint16_t)repl;
        mean_nd_uint16_t(a, b, o, done, ch, v, rv);
        row_nd_uint16_t((const uint16_t *)a + at, (const uint16_t *)b + at, two, (uint16_t *)o + done * ch,
                        src->w - 2 * done, ch, m, v, rv);
      } else {
        const float v = (float)r->nodata, rv = (float)repl;
        mean_nd_float(a, b, o, done, ch, v, rv);
        row_nd_float((const float *)a + at, (const float *)b + at, two, (float *)o + done * ch, src->w - 2 * done, ch,
                     m, v, rv);
      }
    } else if (src->dtype == TS_U8 && m == TS_DOWNSAMPLE_MEAN && two) { /* whole blocks fast, the odd column below */
      const int64_t done = mean_u8(a, b, o, src->w, ch);
      if (2 * done < src->w)
        row_uint8_t((const uint8_t *)a + 2 * done * ch, (const uint8_t *)b + 2 * done * ch, 1, (uint8_t *)o + done * ch,
                    src->w - 2 * done, ch, m);
    } else if (src->dtype == TS_U8) row_uint8_t(a, b, two, o, src->w, src->channels, m);
    else if (src->dtype == TS_U16) row_uint16_t(a, b, two, o, src->w, src->channels, m);
    else row_float(a, b, two, o, src->w, src->channels, m);
  }
}
