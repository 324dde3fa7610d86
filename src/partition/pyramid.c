/* Pyramid levels: their sizes, which of them a task makes itself, and the
 * 2x2 reduction. The reduction of a block depends only on its samples, so
 * any cut of a level into aligned pieces gives the same next level: tasks,
 * tiles and ranks never change the bytes. */
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

void ts_downsample_image(const ts_image *src, ts_image *dst, ts_downsample m) {
  const int64_t dh = (src->h + 1) / 2;
  const int ch = src->channels;
  for (int64_t y = 0; y < dh; y++) {
    const int two = 2 * y + 1 < src->h;
    const void *a = ts_image_at(src, 0, 2 * y), *b = ts_image_at(src, 0, two ? 2 * y + 1 : 2 * y);
    void *o = ts_image_at(dst, 0, y);
    if (src->dtype == TS_U8 && m == TS_DOWNSAMPLE_MEAN && two) { /* whole blocks fast, the odd column below */
      const int64_t done = mean_u8(a, b, o, src->w, ch);
      if (2 * done < src->w)
        row_uint8_t((const uint8_t *)a + 2 * done * ch, (const uint8_t *)b + 2 * done * ch, 1, (uint8_t *)o + done * ch,
                    src->w - 2 * done, ch, m);
    } else if (src->dtype == TS_U8) row_uint8_t(a, b, two, o, src->w, src->channels, m);
    else if (src->dtype == TS_U16) row_uint16_t(a, b, two, o, src->w, src->channels, m);
    else row_float(a, b, two, o, src->w, src->channels, m);
  }
}
