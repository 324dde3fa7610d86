/* Unit tests of the core pieces with no file and no MPI: boundary mapping
 * (scipy.ndimage's definitions), the task grid (every pixel exactly once,
 * in stripe order), the pipeline parser (halo sums, dtype flow, errors),
 * input assembly (tile + halo from the synthetic reader equals a
 * per-pixel computation of the same mapping), the u8 table and the
 * float-to-u8 store (SIMD equals the scalar loop at every length), the
 * separable passes (the AVX2 loops give the portable loops' bits; the
 * fixed-point u8 Gaussian's too, within its error bound of the exact
 * filter), the zlib streams (written by libdeflate or as literals and
 * runs, read by ISA-L; checked against zlib itself both ways, corruption
 * caught, the same bytes from a fresh compressor), the zstd frames of
 * runs, and GDAL_METADATA after a pipeline (what still holds). One test
 * writes files (in a directory of its own under the working directory):
 * a compressed COG's two ways to its layout. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tessera/tessera.h"
#include <zlib.h>
#include <zstd.h>
#include "core/runs.h"
#include "core/text.h"
#include "core/zstream.h"
#include "kernels/common.h"
#include "io/tiff_util.h"
#include "partition/assemble.h"

static int passed, failed;
#define CHECK(cond)                                                     \
  do {                                                                  \
    if (cond) {                                                         \
      passed++;                                                         \
    } else {                                                            \
      failed++;                                                         \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                   \
  } while (0)

/* The examples of scipy.ndimage's documentation, for n = 4 (a b c d). */
static void test_boundary(void) {
  static const struct {
    ts_boundary b;
    int64_t left[3], right[3]; /* maps of -3..-1 and 4..6 */
  } cases[] = {
      {TS_BOUNDARY_REFLECT, {2, 1, 0}, {3, 2, 1}}, /* d c b a | a b c d | d c b a */
      {TS_BOUNDARY_MIRROR, {3, 2, 1}, {2, 1, 0}},  /* d c b | a b c d | c b a */
      {TS_BOUNDARY_NEAREST, {0, 0, 0}, {3, 3, 3}},
      {TS_BOUNDARY_WRAP, {1, 2, 3}, {0, 1, 2}},
      {TS_BOUNDARY_CONSTANT, {-1, -1, -1}, {-1, -1, -1}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    for (int k = 0; k < 3; k++) {
      CHECK(ts_boundary_map(-3 + k, 4, cases[i].b) == cases[i].left[k]);
      CHECK(ts_boundary_map(4 + k, 4, cases[i].b) == cases[i].right[k]);
    }
  for (int b = 0; b <= TS_BOUNDARY_WRAP; b++) {
    for (int64_t i = 0; i < 4; i++) CHECK(ts_boundary_map(i, 4, (ts_boundary)b) == i);
    /* far outside (halo wider than the image) stays in range */
    int64_t m = ts_boundary_map(-1001, 3, (ts_boundary)b);
    CHECK(b == TS_BOUNDARY_CONSTANT ? m == -1 : (m >= 0 && m < 3));
    CHECK(b == TS_BOUNDARY_CONSTANT || ts_boundary_map(0, 1, (ts_boundary)b) == 0);
  }
  ts_boundary parsed;
  CHECK(ts_boundary_parse("wrap", &parsed) == TS_OK && parsed == TS_BOUNDARY_WRAP);
  CHECK(ts_boundary_parse("bounce", &parsed) != TS_OK);
}

static void test_grid(void) {
  const int64_t W = 1000, H = 700;
  int64_t tiles[] = {16, 96, 128, 4096};
  for (size_t k = 0; k < sizeof tiles / sizeof *tiles; k++) {
    for (int64_t stripe = 0; stripe <= 512; stripe += 256) {
      ts_grid g;
      ts_error err = {0};
      CHECK(ts_grid_init(&g, W, H, tiles[k], 5, stripe, &err) == TS_OK);
      unsigned char *seen = calloc((size_t)(W * H), 1);
      int64_t prev_stripe = 0;
      for (int64_t t = 0; t < g.ntasks; t++) {
        ts_rect r = ts_grid_core(&g, t), in = ts_grid_input(&g, t);
        CHECK(in.x == r.x - 5 && in.w == r.w + 10 && in.y == r.y - 5 && in.h == r.h + 10);
        int64_t s = r.x / (g.stripe * g.tile);
        CHECK(s >= prev_stripe); /* stripes are walked in order */
        prev_stripe = s;
        for (int64_t y = r.y; y < r.y + r.h; y++)
          for (int64_t x = r.x; x < r.x + r.w; x++) seen[y * W + x]++;
      }
      int once = 1;
      for (int64_t i = 0; i < W * H; i++) once &= seen[i] == 1;
      CHECK(once); /* every pixel belongs to exactly one task */
      free(seen);
    }
  }
  ts_grid g;
  ts_error err = {0};
  CHECK(ts_grid_init(&g, 0, 10, 16, 0, 0, &err) != TS_OK);
}

static void test_pipeline(void) {
  ts_pipeline *p = NULL;
  ts_error err = {0};
  CHECK(ts_pipeline_parse("gaussian sigma=2 | median size=5 | sobel", TS_U8, 1, &p, &err) == TS_OK);
  CHECK(p && p->n == 3 && p->halo == 8 + 2 + 1);
  CHECK(p && strstr(p->text, "gaussian sigma=2 | median size=5 | sobel") != NULL);
  ts_pipeline_free(&p);
  CHECK(p == NULL);
  CHECK(ts_pipeline_parse("open size=7 | grayscale | scale factor=2 dtype=f32", TS_U16, 3, &p, &err) == TS_OK);
  CHECK(p && p->halo == 6 && p->out_channels == 1 && p->out_dtype == TS_F32);
  ts_pipeline_free(&p);
  CHECK(ts_pipeline_parse("   ", TS_F32, 2, &p, &err) == TS_OK && p->n == 0 && p->halo == 0);
  ts_pipeline_free(&p);
  ts_error_clear(&err);
  CHECK(ts_pipeline_parse("gaussian sigma=2 sigma=3", TS_U8, 1, &p, &err) == TS_ERR_PIPELINE);
  CHECK(p == NULL && strstr(err.msg, "twice") != NULL);
  ts_error_clear(&err);
  CHECK(ts_pipeline_parse("box size=3 |", TS_U8, 1, &p, &err) == TS_ERR_PIPELINE);
  CHECK(strstr(err.msg, "empty stage") != NULL);
  ts_error_clear(&err);
  CHECK(ts_pipeline_parse("convolve weights=1,,2", TS_U8, 1, &p, &err) == TS_ERR_PIPELINE);
  CHECK(strstr(err.msg, "comma-separated") != NULL);
  CHECK(ts_kernel_find("gaussian") != NULL && ts_kernel_find("nope") == NULL);
  /* the registry is sorted and every kernel has its metadata */
  const ts_kernel_def *const *reg = ts_kernel_registry();
  for (int i = 0; reg[i]; i++) {
    CHECK(reg[i]->summary && reg[i]->halo_doc && reg[i]->dtypes);
    CHECK((reg[i]->flags & TS_KERNEL_WHOLE) ? reg[i]->apply_image != NULL : reg[i]->apply != NULL);
    if (reg[i + 1]) CHECK(strcmp(reg[i]->name, reg[i + 1]->name) < 0);
  }
}

/* Fetching tile + halo through runs equals mapping every pixel by hand. */
static ts_status read_reader(void *r, ts_rect src, void *dst, int64_t stride, ts_error *err) {
  return ts_reader_read(r, src, dst, stride, err);
}

static void test_fetch(void) {
  ts_reader *r = NULL;
  ts_error err = {0};
  CHECK(ts_reader_open("synth:37x23:u16:3", &r, &err) == TS_OK);
  if (!r) return;
  const int C = 3;
  uint16_t *whole = malloc(37 * 23 * C * 2);
  CHECK(ts_reader_read(r, (ts_rect){0, 0, 37, 23}, whole, 37 * C * 2, &err) == TS_OK);
  ts_rect rects[] = {{-50, -40, 140, 110}, {-3, -3, 9, 9}, {30, 17, 20, 20}, {5, 5, 10, 10}};
  for (int b = 0; b <= TS_BOUNDARY_WRAP; b++)
    for (size_t k = 0; k < sizeof rects / sizeof *rects; k++) {
      ts_rect rc = rects[k];
      uint16_t *buf = malloc((size_t)(rc.w * rc.h * C * 2));
      void *scratch = malloc(ts_assemble_scratch_bytes(rc));
      ts_image dst = ts_image_packed(buf, rc.w, rc.h, C, TS_U16);
      CHECK(ts_assemble_rect(read_reader, r, 37, 23, rc, (ts_boundary)b, 1234, &dst, scratch, &err) == TS_OK);
      int ok = 1;
      for (int64_t y = 0; y < rc.h; y++)
        for (int64_t x = 0; x < rc.w; x++) {
          int64_t mx = ts_boundary_map(rc.x + x, 37, (ts_boundary)b);
          int64_t my = ts_boundary_map(rc.y + y, 23, (ts_boundary)b);
          for (int c = 0; c < C; c++) {
            uint16_t want = (mx < 0 || my < 0) ? 1234 : whole[(my * 37 + mx) * C + c];
            ok &= buf[(y * rc.w + x) * C + c] == want;
          }
        }
      CHECK(ok);
      free(buf);
      free(scratch);
    }
  free(whole);
  ts_reader_close(&r);
  CHECK(r == NULL);
}

static void test_lut(void) {
  uint8_t lut[256], in[300], a[300], b[300];
  srand(7);
  for (int i = 0; i < 256; i++) lut[i] = (uint8_t)rand();
  for (int i = 0; i < 300; i++) in[i] = (uint8_t)rand();
  int same = 1;
  for (int off = 0; off < 3; off++)
    for (int64_t n = 0; n + off <= 297; n++) {
      memset(a, 0xAB, sizeof a);
      memset(b, 0xAB, sizeof b);
      ts_lut_u8(lut, in + off, a + off, n);
      ts_lut_u8_scalar(lut, in + off, b + off, n);
      same &= memcmp(a, b, sizeof a) == 0; /* nothing written past n either */
    }
  CHECK(same);
}

/* float -> u8: the SSE2 path equals ts_sat_u8 at every length and value
 * class (negative, NaN, halves, above 255, infinities). */
static void test_row_from_float(void) {
  float src[300];
  uint8_t a[300];
  const float special[] = {-1.f, -0.f, 0.f, 0.49999f, 0.5f, 1.5f, 254.5f, 254.99f, 255.f, 255.5f, 1e9f,
                           -1e9f, __builtin_nanf(""), __builtin_inff(), -__builtin_inff()};
  srand(11);
  for (int i = 0; i < 300; i++)
    src[i] = i % 3 ? special[rand() % (int)(sizeof special / sizeof *special)] : (float)(rand() % 70000) / 256.f - 10.f;
  int same = 1;
  for (int64_t n = 0; n <= 300; n++) {
    memset(a, 0xAB, sizeof a);
    ts_row_from_float(TS_U8, src, a, n);
    for (int64_t i = 0; i < 300; i++) same &= a[i] == (i < n ? ts_sat_u8(src[i]) : 0xAB);
  }
  CHECK(same);
}

/* The separable passes: the AVX2 loops give exactly the portable loops'
 * floats, for every dtype, 1 and 3 channels, widths around the 32- and
 * 8-sample blocks, radii from 1 to 17, Gaussian weights and weights with
 * zeros (skipped on both paths). Skipped on a CPU without AVX2. */
static void test_separable_paths(void) {
  if (!ts_separable_simd()) {
    printf("separable: no AVX2 here, only the portable loops run\n");
    return;
  }
  enum { MAXR = 17, MAXW = 1100 + 2 * MAXR, H = 2 * MAXR + 1 };
  static unsigned char data[H * MAXW * 3 * 4];
  static float a[MAXW * 3], b[MAXW * 3], ha[MAXW * 3], hb[MAXW * 3];
  const int radii[] = {1, 2, 5, 8, 17};
  const int64_t widths[] = {1, 7, 8, 9, 31, 32, 33, 40, 63, 64, 65, 100, 1040, 1100};
  const ts_dtype dts[] = {TS_U8, TS_U16, TS_F32};
  int same = 1;
  srand(5);
  for (size_t i = 0; i < sizeof data; i++) data[i] = (unsigned char)rand();
  for (int d = 0; d < 3; d++)
    for (int C = 1; C <= 3; C += 2)
      for (size_t ri = 0; ri < sizeof radii / sizeof *radii; ri++)
        for (int zeros = 0; zeros < 2; zeros++)
          for (size_t wi = 0; wi < sizeof widths / sizeof *widths; wi++) {
            const int r = radii[ri];
            const int64_t w = widths[wi] + 2 * r, n = w * C, nout = widths[wi] * C;
            float wt[2 * MAXR + 1];
            ts_gaussian_weights(r / 2.0 + 0.3, r, wt);
            if (zeros) wt[0] = wt[2 * r] = 0.f, wt[r / 2] = wt[2 * r - r / 2] = 0.f;
            ts_image im = ts_image_packed(data, w, 2 * r + 1, C, dts[d]);
            if (dts[d] == TS_F32) { /* finite floats of mixed sign and size, not raw bytes */
              float *f = (float *)data;
              for (int64_t k = 0; k < (2 * r + 1) * n; k++) f[k] = (float)(rand() % 20001 - 10000) / (float)(1 + rand() % 97);
            }
            ts_vpass_with(0, &im, 0, wt, r, a, n);
            ts_vpass_with(1, &im, 0, wt, r, b, n);
            same &= memcmp(a, b, (size_t)n * sizeof *a) == 0;
            ts_hpass_with(0, a, nout, C, wt, r, ha);
            ts_hpass_with(1, a, nout, C, wt, r, hb);
            same &= memcmp(ha, hb, (size_t)nout * sizeof *ha) == 0;
          }
  CHECK(same);
}

/* The fixed-point u8 Gaussian: the AVX2 rows equal the portable ones byte
 * for byte, and every output is within its stated bound of the exact
 * filter (real weights, double sums): |out - exact| <= 1/2 + (2r + 1)/128
 * (separable_u8.c). Random bytes, and rows of 0 and 255 (the extremes the
 * bound is about), 1 and 3 channels, widths around the 16- and 32-sample
 * steps, radii 1 to 31. */
static void test_separable_u8(void) {
  enum { MAXR = TS_FIXED_MAX_RADIUS, H = 2 * MAXR + 1, MAXW = 200 + 2 * MAXR };
  static uint8_t data[H * MAXW * 3];
  static int16_t tmp[MAXW * 3];
  static uint8_t a[MAXW * 3], b[MAXW * 3];
  const int radii[] = {1, 2, 4, 8, 13, 31};
  const double sigmas[] = {0.4, 0.6, 1.0, 2.0, 3.3, 7.7};
  const int64_t widths[] = {1, 15, 16, 17, 31, 32, 33, 47, 64, 100, 200};
  const int simd = ts_separable_simd();
  int same = 1, within = 1, took = 1;
  double worst = 0;
  srand(9);
  for (int pattern = 0; pattern < 2; pattern++) {
    for (size_t i = 0; i < sizeof data; i++) data[i] = pattern ? (uint8_t)(rand() % 2 ? 255 : 0) : (uint8_t)rand();
    for (int C = 1; C <= 3; C += 2)
      for (size_t ri = 0; ri < sizeof radii / sizeof *radii; ri++)
        for (size_t wi = 0; wi < sizeof widths / sizeof *widths; wi++) {
          const int r = radii[ri];
          float w[H];
          int16_t W[H];
          ts_gaussian_weights(sigmas[ri], r, w);
          took &= ts_fixed_weights(w, r, W);
          const int64_t wout = widths[wi], nout = wout * C;
          ts_image im = ts_image_packed(data, wout + 2 * r, 2 * r + 1, C, TS_U8);
          ts_separable_u8_rows(0, &im, 0, W, r, tmp, a, nout);
          if (simd) {
            ts_separable_u8_rows(1, &im, 0, W, r, tmp, b, nout);
            same &= memcmp(a, b, (size_t)nout) == 0;
          }
          for (int64_t i = 0; i < nout; i++) {
            double exact = 0;
            for (int ky = 0; ky <= 2 * r; ky++)
              for (int kx = 0; kx <= 2 * r; kx++)
                exact += (double)w[ky] * w[kx] * ((const uint8_t *)TS_CROW(&im, ky))[i + (int64_t)kx * C];
            const double d = fabs(a[i] - exact);
            if (d > worst) worst = d;
            within &= d <= 0.5 + (2 * r + 1) / 128.0;
          }
        }
  }
  printf("separable u8: worst |out - exact| %.4f\n", worst);
  CHECK(took);
  CHECK(same);
  CHECK(within);
  /* what the path refuses: too wide, asymmetric or negative weights */
  float w[2 * MAXR + 3];
  int16_t W[2 * MAXR + 3];
  ts_gaussian_weights(9.0, MAXR + 1, w);
  CHECK(!ts_fixed_weights(w, MAXR + 1, W));
  float neg[3] = {-0.1f, 1.2f, -0.1f}, asym[3] = {0.2f, 0.5f, 0.3f};
  CHECK(!ts_fixed_weights(neg, 1, W) && !ts_fixed_weights(asym, 1, W));
}

/* The literals-and-runs encoder against zlib's inflate: every length up
 * to 300 and around the block size, data of every kind it treats apart
 * (random: stored blocks; one value; runs long and short; few symbols;
 * one symbol and none; codes at the length limit), the exact bound allocated (ASan sees the 8 bytes
 * it may store past its last byte), too little room refused, and the
 * zlib and gzip wrappers. */
static int inflates_to(const unsigned char *z, size_t got, int wbits, const unsigned char *want, size_t n) {
  unsigned char *back = malloc(n + 1);
  z_stream s = {0};
  int ok = inflateInit2(&s, wbits) == Z_OK;
  s.next_in = (unsigned char *)z, s.avail_in = (uInt)got, s.next_out = back, s.avail_out = (uInt)n + 1;
  ok = ok && inflate(&s, Z_FINISH) == Z_STREAM_END && s.total_out == n && memcmp(back, want, n) == 0 && s.avail_in == 0;
  inflateEnd(&s);
  free(back);
  return ok;
}

static void fill_kind(unsigned char *b, size_t n, int kind, unsigned *seed) {
  for (size_t i = 0; i < n; i++)
    b[i] = kind == 0   ? (unsigned char)rand_r(seed)
           : kind == 1 ? 0
           : kind == 2 ? (unsigned char)(i / 1000)                                                  /* runs of 1000 */
           : kind == 3 ? (unsigned char)(rand_r(seed) % 50 == 0 ? rand_r(seed) : (i ? b[i - 1] : 0)) /* runs ~50 */
           : kind == 4 ? (unsigned char)(i % 17 < 9 ? 3 : rand_r(seed) % 4)                          /* runs of 9 */
           : kind == 5 ? (unsigned char)(rand_r(seed) % 2)
           : kind == 6 ? (unsigned char)(rand_r(seed) % 3 ? 7 : rand_r(seed))
           /* geometric, halving per symbol, and every byte in stretches of 16: codes at the limit, back to back */
           : (unsigned char)(i % 1024 >= 16 ? __builtin_ctz((unsigned)rand_r(seed) | 1u << 24) : rand_r(seed));
}

static void test_deflate_runs(void) {
  unsigned seed = 7;
  const size_t big[] = {8, 15, 16, 17, 65535, 65536, 65537, 131072, 200001};
  for (size_t k = 0; k < 300 + sizeof big / sizeof *big; k++) {
    const size_t n = k < 300 ? k : big[k - 300];
    for (int kind = 0; kind < 8; kind++) {
      if (k < 300 && kind != 6 && kind != 1) continue;
      unsigned char *src = malloc(n + 1), *dst = malloc(TS_RUNS_BOUND(n)), *again = malloc(TS_RUNS_BOUND(n));
      fill_kind(src, n, kind, &seed);
      const size_t got = ts_deflate_runs(src, n, dst, TS_RUNS_BOUND(n));
      CHECK(got > 0 && inflates_to(dst, got, -15, src, n));
      CHECK(ts_deflate_runs(src, n, again, TS_RUNS_BOUND(n)) == got && memcmp(again, dst, got) == 0);
      CHECK(ts_deflate_runs(src, n, again, got - 1) == 0); /* too little room: refused */
      if (kind == 1 && n >= 4096) CHECK(got < n / 100);     /* runs cost next to nothing */
      if (kind == 0 && n >= 4096) CHECK(got <= n + 10 * (n / 65536 + 1)); /* stored */
      free(src), free(dst), free(again);
    }
  }
  ts_zstream z = {0};
  const size_t n = 100000, cap = ts_zbound(n);
  unsigned char *src = malloc(n), *dst = malloc(cap), *back = malloc(n);
  fill_kind(src, n, 3, &seed);
  size_t got = ts_zcompress_filtered(&z, -1, src, n, dst, cap); /* the zlib wrapper, Adler-32 */
  CHECK(got > 0 && inflates_to(dst, got, 15, src, n) && ts_zdecompress(&z, dst, got, back, n) == 0);
  CHECK(got < n / 10); /* the runs (about 50 long) */
  got = ts_gzcompress(&z, -1, src, n, dst, cap); /* gzip's, CRC-32 and size */
  CHECK(got > 0 && inflates_to(dst, got, 16 + 15, src, n));
  ts_zstream_free(&z);
  /* zstd: the runs as sequences through zstd's entropy coder, a level given zstd's own;
   * every kind round-trips, the frame holds its size, a fresh context writes the same */
  const size_t zcap = ZSTD_compressBound(n);
  unsigned char *zdst = malloc(zcap), *zagain = malloc(zcap);
  for (int kind = 0; kind < 8; kind++) {
    fill_kind(src, n, kind, &seed);
    for (int level = -1; level <= 3; level += 4) {
      ts_zstd a = {0}, b = {0};
      const size_t k = ts_zstd_filtered(&a, level, src, n, zdst, zcap);
      CHECK(k > 0 && ZSTD_getFrameContentSize(zdst, k) == n);
      CHECK(ZSTD_decompress(back, n, zdst, k) == n && memcmp(back, src, n) == 0);
      ts_zstd_filtered(&a, level, src + 1, n - 1, zagain, zcap); /* the context reused */
      CHECK(ts_zstd_filtered(&a, level, src, n, zagain, zcap) == k && memcmp(zagain, zdst, k) == 0);
      CHECK(ts_zstd_filtered(&b, level, src, n, zagain, zcap) == k && memcmp(zagain, zdst, k) == 0);
      if (kind == 1) CHECK(k < n / 100);
      ts_zstd_free(&a), ts_zstd_free(&b);
    }
  }
  free(zdst), free(zagain);
  free(src), free(dst), free(back);
}

static void test_zstream(void) {
  ts_zstream z = {0};
  const size_t sizes[] = {1, 100, 16384, 65536, 200001};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    const size_t n = sizes[k], cap = ts_zbound(n);
    unsigned char *src = malloc(n), *dst = malloc(cap), *back = malloc(n + 1);
    for (int kind = 0; kind < 6; kind++) { /* random (stored blocks at worst), then an image-like ramp */
      const int level = (int[]){-1, -1, 0, 0, 9, 9}[kind]; /* the default (fast) level, stored, best */
      for (size_t i = 0; i < n; i++) src[i] = kind % 2 ? (unsigned char)(i / 64 + (i % 7 == 0)) : (unsigned char)rand();
      size_t got = ts_zcompress(&z, level, src, n, dst, cap);
      CHECK(got > 0 && got <= cap);
      CHECK(ts_zdecompress(&z, dst, got, back, n) == 0 && memcmp(back, src, n) == 0);
      uLongf zn = (uLongf)n; /* zlib reads it */
      CHECK(uncompress(back, &zn, dst, (uLong)got) == Z_OK && zn == n && memcmp(back, src, n) == 0);
      CHECK(ts_zdecompress(&z, dst, got, back, n + 1) != 0); /* another size */
      if (n > 1) CHECK(ts_zdecompress(&z, dst, got, back, n - 1) != 0);
      CHECK(ts_zdecompress(&z, dst, got - 1, back, n) != 0); /* truncated */
      dst[got - 1] ^= 1;                                      /* the Adler-32 */
      CHECK(ts_zdecompress(&z, dst, got, back, n) != 0);
      { /* the bytes are the input's and the level's alone: a fresh stream writes them too */
        ts_zstream fresh = {0};
        unsigned char *again = malloc(cap);
        dst[got - 1] ^= 1;
        CHECK(ts_zcompress(&fresh, level, src, n, again, cap) == got && memcmp(again, dst, got) == 0);
        dst[got - 1] ^= 1;
        ts_zstream_free(&fresh);
        free(again);
      }
      uLongf zc = (uLongf)cap; /* and it reads zlib's (h5py's gzip level 4) */
      CHECK(compress2(dst, &zc, src, (uLong)n, 4) == Z_OK);
      CHECK(ts_zdecompress(&z, dst, zc, back, n) == 0 && memcmp(back, src, n) == 0);
    }
    free(src), free(dst), free(back);
  }
  CHECK(ts_crc32_update(0, "123456789", 9) == 0xCBF43926u); /* CRC-32's check value */
  CHECK(ts_crc32_update(ts_crc32_update(0, "1234", 4), "56789", 5) == 0xCBF43926u);
  ts_zstream_free(&z);
}

/* A 1100x700 COG of 3 levels compressed with c whose tiles are stored row
 * by row, or each level's from its last tile back; the file's bytes in
 * *bytes. */
static size_t cog_file(const char *path, ts_compression c, int backwards, unsigned char **bytes) {
  ts_error err = {0};
  const ts_writer_options o = {.w = 1100, .h = 700, .channels = 1, .dtype = TS_U8, .tile = 256, .compression = c,
                               .level = -1, .quality = 90, .force = 1, .levels = 3, .layout = TS_LAYOUT_COG};
  ts_writer *w = NULL;
  ts_encoder *e = NULL;
  CHECK(ts_writer_open(path, &o, &w, &err) == TS_OK && ts_encoder_new(path, &o, &e, &err) == TS_OK);
  static unsigned char px[256 * 256];
  int64_t lw = o.w, lh = o.h;
  for (int L = 0; w && e && L < 3; L++, lw = (lw + 1) / 2, lh = (lh + 1) / 2) {
    const int64_t across = (lw + 255) / 256, n = across * ((lh + 255) / 256);
    for (int64_t k = 0; k < n; k++) {
      const int64_t i = backwards ? n - 1 - k : k;
      ts_rect r = {(i % across) * 256, (i / across) * 256, 256, 256};
      if (r.x + r.w > lw) r.w = lw - r.x;
      if (r.y + r.h > lh) r.h = lh - r.y;
      for (int64_t y = 0; y < r.h; y++)
        for (int64_t x = 0; x < r.w; x++)
          px[y * 256 + x] = (unsigned char)((r.x + x) / 3 + (r.y + y) / 5 + 40 * L + ((x * y) % 7 == 0));
      const void *data = NULL;
      size_t size = 0;
      CHECK(ts_encoder_encode(e, L, r, px, 256, NULL, 0, &data, &size, &err) == TS_OK);
      CHECK(ts_writer_write_encoded(w, L, r, data, size, &err) == TS_OK);
    }
  }
  ts_encoder_free(&e);
  CHECK(w && ts_writer_finish(&w, &err) == TS_OK);
  if (err.code) fprintf(stderr, "%s\n", err.msg);
  FILE *f = fopen(path, "rb");
  size_t n = 0;
  *bytes = NULL;
  if (f && fseek(f, 0, SEEK_END) == 0 && (n = (size_t)ftell(f)) > 0 && (*bytes = malloc(n))) {
    rewind(f);
    CHECK(fread(*bytes, 1, n, f) == n);
  }
  if (f) fclose(f);
  return n;
}

/* A compressed COG's tiles stored in each row's order fill the rows'
 * regions, whose unused ends finish cuts out of the file (COLLAPSE_RANGE,
 * where the filesystem can); stored out of order they are appended, and
 * finish copies them into the same layout. The same file either way, for
 * every codec. */
static void test_cog_layout(void) {
  char dir[] = "cog-XXXXXX", a[64], b[64];
  CHECK(mkdtemp(dir) != NULL);
  snprintf(a, sizeof a, "%s/rows.tif", dir);
  snprintf(b, sizeof b, "%s/backwards.tif", dir);
  const ts_compression codecs[] = {TS_COMPRESS_DEFLATE, TS_COMPRESS_ZSTD, TS_COMPRESS_LZW, TS_COMPRESS_JPEG};
  for (size_t k = 0; k < sizeof codecs / sizeof *codecs; k++) {
    unsigned char *x = NULL, *y = NULL;
    const size_t nx = cog_file(a, codecs[k], 0, &x), ny = cog_file(b, codecs[k], 1, &y);
    CHECK(nx > 4096 && nx == ny && x && y && memcmp(x, y, nx) == 0);
    CHECK(x && ts_tiff_cog_layout(x, nx < TS_TIFF_HEAD_BYTES ? nx : TS_TIFF_HEAD_BYTES) == 1);
    free(x), free(y);
    unlink(a), unlink(b);
  }
  rmdir(dir);
}

/* ts_tiff_cog_layout on a head made of a header (classic or BigTIFF,
 * either byte order) and structural metadata; GDAL's rule for LAYOUT=COG. */
static int ghost(const char *header, size_t hn, const char *size, const char *md, size_t n) {
  unsigned char h[TS_TIFF_HEAD_BYTES] = {0};
  memcpy(h, header, hn);
  const int k = snprintf((char *)h + hn, sizeof h - hn, "GDAL_STRUCTURAL_METADATA_SIZE=%s bytes\n%s", size, md);
  return ts_tiff_cog_layout(h, n ? n : hn + (size_t)k);
}

static void test_cog_ghost(void) {
  const char *all = "LAYOUT=IFDS_BEFORE_DATA\nBLOCK_ORDER=ROW_MAJOR\nBLOCK_LEADER=SIZE_AS_UINT4\n"
                    "BLOCK_TRAILER=LAST_4_BYTES_REPEATED\nKNOWN_INCOMPATIBLE_EDITION=NO\n ";
  const char *edited = "LAYOUT=IFDS_BEFORE_DATA\nBLOCK_ORDER=ROW_MAJOR\nBLOCK_LEADER=SIZE_AS_UINT4\n"
                       "BLOCK_TRAILER=LAST_4_BYTES_REPEATED\nKNOWN_INCOMPATIBLE_EDITION=YES\n";
  const char *no_trailer = "LAYOUT=IFDS_BEFORE_DATA\nBLOCK_ORDER=ROW_MAJOR\nBLOCK_LEADER=SIZE_AS_UINT4\n";
  static const char big_le[16] = {'I', 'I', 43, 0, 8, 0, 0, 0}, big_be[16] = {'M', 'M', 0, 43, 0, 8, 0, 0};
  static const char classic_le[16] = {'I', 'I', 42, 0}, classic_be[16] = {'M', 'M', 0, 42};
  static const char not_tiff[16] = {'X', 'X', 43, 0, 8};
  CHECK(ghost(big_le, 16, "000140", all, 0) == 1);
  CHECK(ghost(big_be, 16, "000140", all, 0) == 1);
  CHECK(ghost(classic_le, 8, "000140", all, 0) == 1);
  CHECK(ghost(classic_be, 8, "000140", all, 0) == 1);
  CHECK(ghost(classic_le, 16, "000140", all, 0) == 0); /* the ghost where a BigTIFF's would be */
  CHECK(ghost(big_le, 16, "000140", edited, 0) == -1);
  CHECK(ghost(big_le, 16, "000140", no_trailer, 0) == 0);
  CHECK(ghost(big_le, 16, "000010", all, 0) == 0);     /* the keys past the size it gives */
  CHECK(ghost(big_le, 16, "999999", all, 0) == 1);     /* a size past what was read: what was read */
  CHECK(ghost(big_le, 16, "00014x", all, 0) == 0);
  CHECK(ghost(big_le, 16, "000140", all, 100) == 0);   /* cut short */
  CHECK(ghost(big_le, 16, "000140", all, 16 + 43) == 0);
  CHECK(ghost(big_le, 16, "000140", all, 7) == 0);
  CHECK(ghost(not_tiff, 16, "000140", all, 0) == 0);
}

/* ts_utf8_copy: well-formed text kept, each maximal subpart of an
 * ill-formed sequence one U+FFFD (Unicode 3.9's examples), and a
 * character that does not fit whole left out. */
static int utf8_is(const char *in, size_t cap, const char *want) {
  char out[64];
  memset(out, 'x', sizeof out);
  ts_utf8_copy(out, cap, in);
  return strlen(out) < cap && !strcmp(out, want);
}

static void test_utf8(void) {
#define R "\xEF\xBF\xBD"
  CHECK(utf8_is("plain \xC3\xA9\xE2\x82\xAC\xF0\x9D\x84\x9E", 64, "plain \xC3\xA9\xE2\x82\xAC\xF0\x9D\x84\x9E"));
  CHECK(utf8_is("caf\xE9", 64, "caf" R));
  CHECK(utf8_is("\xE2\x82", 64, R));                     /* a truncated character: one */
  CHECK(utf8_is("\xE2\x82\xE2\x82\xAC", 64, R "\xE2\x82\xAC"));
  CHECK(utf8_is("\xC0\xAF", 64, R R));                   /* overlong: its lead starts nothing */
  CHECK(utf8_is("\xE0\x80\xAF", 64, R R R));
  CHECK(utf8_is("\xED\xA0\x80", 64, R R R));            /* a surrogate */
  CHECK(utf8_is("\xF4\x90\x80\x80", 64, R R R R));     /* past U+10FFFF */
  CHECK(utf8_is("\xF0\x9F\x98", 64, R));
  CHECK(utf8_is("\x80\xBF\xFF\xFE", 64, R R R R));
  /* Unicode 3.9's table 3-8 */
  CHECK(utf8_is("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64", 64, "a" R R R "b" R "c" R R "d"));
  CHECK(utf8_is("a\xC3\xA9\xE2\x82\xAC", 4, "a\xC3\xA9"));  /* the euro does not fit */
  CHECK(utf8_is("a\xC3\xA9", 3, "a"));
  CHECK(utf8_is("\xE9", 3, ""));
  CHECK(utf8_is("", 1, ""));
#undef R
  char *d = ts_utf8_dup("\xFF\xFF");
  CHECK(d && !strcmp(d, "\xEF\xBF\xBD\xEF\xBF\xBD"));
  free(d);
}

/* GDAL_METADATA after a pipeline: ts_image_meta_for_output's text, or
 * NULL when the tag was dropped. */
static char *gdal_after(const char *text, int changed, int channels) {
  ts_meta_tag t = {42112, 2, strlen(text) + 1, strlen(text) + 1, (unsigned char *)strdup(text)};
  ts_meta_tag nodata = {42113, 2, 2, 2, (unsigned char *)strdup("7")};
  ts_meta_tag tags[2] = {nodata, t};
  ts_image_meta in = {2, tags, 0.5, 0.25}, out;
  ts_error err = {0};
  char *r = NULL;
  CHECK(ts_image_meta_for_output(&in, changed, channels, &out, &err) == TS_OK);
  CHECK(out.um_x == 0.5 && out.um_y == 0.25 && out.n >= 1 && out.tags[0].tag == 42113);
  const ts_meta_tag *g = ts_meta_find(&out, 42112);
  if (g) {
    CHECK(g->count == g->bytes && g->data[g->bytes - 1] == '\0' && strlen((char *)g->data) + 1 == g->bytes);
    r = strdup((char *)g->data);
  }
  ts_image_meta_free(&out);
  free(t.data), free(nodata.data);
  return r;
}

static void test_gdal_metadata(void) {
  const char *gdal = "<GDALMetadata>\n"
                     "  <Item name=\"AREA_OR_POINT\">Point</Item>\n"
                     "  <Item name=\"STATISTICS_MEAN\" sample=\"0\">99.5</Item>\n"
                     "  <Item name=\"SCALE\" sample=\"0\" role=\"scale\">0.5</Item>\n"
                     "  <Item name=\"STATISTICS_MEAN\" sample=\"2\">3</Item>\n"
                     "  <Item name=\"OFFSET\" sample=\"2\" role=\"offset\">1</Item>\n"
                     "</GDALMetadata>";
  char *r = gdal_after(gdal, 0, 3);
  CHECK(r && strcmp(r, gdal) == 0);
  free(r);
  r = gdal_after(gdal, 1, 3);
  CHECK(r && strcmp(r, "<GDALMetadata>\n"
                       "  <Item name=\"AREA_OR_POINT\">Point</Item>\n"
                       "  <Item name=\"SCALE\" sample=\"0\" role=\"scale\">0.5</Item>\n"
                       "  <Item name=\"OFFSET\" sample=\"2\" role=\"offset\">1</Item>\n"
                       "</GDALMetadata>") == 0);
  free(r);
  r = gdal_after(gdal, 1, 1);
  CHECK(r && strcmp(r, "<GDALMetadata>\n"
                       "  <Item name=\"AREA_OR_POINT\">Point</Item>\n"
                       "  <Item name=\"SCALE\" sample=\"0\" role=\"scale\">0.5</Item>\n"
                       "</GDALMetadata>") == 0);
  free(r);
  /* on one line, single quotes, an attribute that only ends in "name" */
  r = gdal_after("<GDALMetadata><Item name='STATISTICS_MAXIMUM' sample='0'>9</Item><Item rename='x' "
                 "name='B'>&lt;/Item&gt;</Item></GDALMetadata>", 1, 1);
  CHECK(r && strcmp(r, "<GDALMetadata><Item rename='x' name='B'>&lt;/Item&gt;</Item></GDALMetadata>") == 0);
  free(r);
  /* nothing left: no tag */
  CHECK(gdal_after("<GDALMetadata>\n  <Item name=\"STATISTICS_MEAN\" sample=\"0\">1</Item>\n</GDALMetadata>", 1, 1) ==
        NULL);
  CHECK(gdal_after("<GDALMetadata>\n  <Item name=\"X\" sample=\"1\">1</Item>\n</GDALMetadata>", 0, 1) == NULL);
  ts_image_meta none;
  ts_error err = {0};
  CHECK(ts_image_meta_for_output(NULL, 1, 1, &none, &err) == TS_OK && none.n == 0 && none.tags == NULL);
}

/* The levels' nodata: what ts_reduce_make takes, and ts_downsample_image
 * (whole blocks branch-free, edges block by block) against a plain
 * reference: skip nodata, none left: nodata, a mean on nodata: the next
 * value (down at the type's top). */
static uint16_t ref_mean_nd(const uint16_t *q, int k, uint16_t nd, uint16_t top) {
  unsigned s = 0, n = 0;
  for (int i = 0; i < k; i++)
    if (q[i] != nd) s += q[i], n++;
  if (!n) return nd;
  const unsigned v = (s + n / 2) / n;
  return v == nd ? (uint16_t)(nd < top ? nd + 1 : nd - 1) : (uint16_t)v;
}

static void test_nodata_reduce(void) {
  CHECK(ts_reduce_make(TS_DOWNSAMPLE_MEAN, "0", TS_U8).has_nodata);
  CHECK(ts_reduce_make(TS_DOWNSAMPLE_MEAN, "255 ", TS_U8).nodata == 255);
  CHECK(!ts_reduce_make(TS_DOWNSAMPLE_MEAN, "256", TS_U8).has_nodata);
  CHECK(!ts_reduce_make(TS_DOWNSAMPLE_MEAN, "-9999", TS_U16).has_nodata);
  CHECK(!ts_reduce_make(TS_DOWNSAMPLE_MEAN, "1.5", TS_U16).has_nodata);
  CHECK(!ts_reduce_make(TS_DOWNSAMPLE_MEAN, "none", TS_F32).has_nodata);
  CHECK(!ts_reduce_make(TS_DOWNSAMPLE_MEAN, NULL, TS_F32).has_nodata);
  ts_reduce r = ts_reduce_make(TS_DOWNSAMPLE_MEAN, "nan", TS_F32);
  CHECK(r.has_nodata && isnan(r.nodata));
  r = ts_reduce_make(TS_DOWNSAMPLE_MEAN, "0.1", TS_F32);
  CHECK(r.has_nodata && r.nodata == (double)0.1f);

  /* u8 and u16, random blocks rich in nodata, 1 and 3 channels, even
   * and odd sizes */
  unsigned seed = 12345;
  for (int t = 0; t < 8; t++) {
    const int ch = t & 1 ? 3 : 1, w = 37 + (t & 2 ? 1 : 0) * 27, h = 21 + (t & 4 ? 1 : 0), dw = (w + 1) / 2,
              dh = (h + 1) / 2;
    const uint16_t nd = t < 4 ? 100 : 65535, top = t < 4 ? 255 : 65535;
    const ts_dtype dt = t < 4 ? TS_U8 : TS_U16;
    uint16_t *a = malloc(sizeof *a * (size_t)(w * h * ch)), *want = malloc(sizeof *want * (size_t)(dw * dh * ch));
    unsigned char *src = malloc((size_t)(w * h * ch) * 2), *dst = malloc((size_t)(dw * dh * ch) * 2);
    for (int i = 0; i < w * h * ch; i++) {
      seed = seed * 1103515245u + 12345u;
      const unsigned v = (seed >> 16) % 8;
      a[i] = v < 3 ? nd : (uint16_t)(t < 4 ? 95 + (seed >> 8) % 11 : 65530 + (seed >> 8) % 5); /* means land on 100 */
      if (dt == TS_U8) src[i] = (unsigned char)a[i];
      else memcpy(src + 2 * i, &a[i], 2);
    }
    for (int y = 0; y < dh; y++)
      for (int x = 0; x < dw; x++)
        for (int c = 0; c < ch; c++) {
          uint16_t q[4];
          int k = 0;
          for (int yy = 2 * y; yy < 2 * y + 2 && yy < h; yy++)
            for (int xx = 2 * x; xx < 2 * x + 2 && xx < w; xx++) q[k++] = a[(yy * w + xx) * ch + c];
          want[(y * dw + x) * ch + c] = ref_mean_nd(q, k, nd, top);
        }
    ts_image si = ts_image_packed(src, w, h, ch, dt), di = ts_image_packed(dst, dw, dh, ch, dt);
    ts_reduce rd = {.mode = TS_DOWNSAMPLE_MEAN, .has_nodata = 1, .nodata = nd};
    ts_downsample_image(&si, &di, &rd);
    int bad = 0;
    for (int i = 0; i < dw * dh * ch; i++) {
      uint16_t got = dt == TS_U8 ? dst[i] : 0;
      if (dt == TS_U16) memcpy(&got, dst + 2 * i, 2);
      bad += got != want[i];
    }
    CHECK(bad == 0);
    free(a), free(want), free(src), free(dst);
  }

  /* every sum of three valid u16 samples (the 64-bit division by 3) */
  const int64_t nb = 3 * 65534 + 1;
  uint16_t *row = malloc(sizeof *row * (size_t)(4 * nb)), *out = malloc(sizeof *out * (size_t)nb);
  for (int64_t s3 = 0; s3 < nb; s3++) {
    int64_t left = s3;
    uint16_t *b0 = row + 2 * s3, *b1 = row + 2 * nb + 2 * s3;
    uint16_t v[3];
    for (int i = 0; i < 3; i++) v[i] = (uint16_t)(left > 65534 ? 65534 : left), left -= v[i];
    b0[0] = v[0], b0[1] = v[1], b1[0] = v[2], b1[1] = 65535;
  }
  ts_image si = ts_image_packed(row, 2 * nb, 2, 1, TS_U16), di = ts_image_packed(out, nb, 1, 1, TS_U16);
  ts_reduce rd = {.mode = TS_DOWNSAMPLE_MEAN, .has_nodata = 1, .nodata = 65535};
  ts_downsample_image(&si, &di, &rd);
  int bad = 0;
  for (int64_t s3 = 0; s3 < nb; s3++) bad += out[s3] != (uint16_t)((s3 + 1) / 3);
  CHECK(bad == 0);
  free(row), free(out);

  /* f32: NaN nodata skipped; a sum that starts from nodata keeps -0.0 */
  float f[8] = {NAN, -0.0f, 1.0f, NAN, NAN, NAN, 2.0f, 4.0f}, fo[2]; /* blocks: {-0}, {1, 2, 4} */
  ts_image fs = ts_image_packed(f, 4, 2, 1, TS_F32), fd = ts_image_packed(fo, 2, 1, 1, TS_F32);
  rd = ts_reduce_make(TS_DOWNSAMPLE_MEAN, "nan", TS_F32);
  ts_downsample_image(&fs, &fd, &rd);
  CHECK(fo[0] == 0.0f && signbit(fo[0]) && fo[1] == 7.0f / 3.0f);
  /* a mean on f32 nodata becomes the next float up */
  float g[4] = {1.0f, 2.0f, 1.5f, 1.5f}, go[1];
  fs = ts_image_packed(g, 2, 2, 1, TS_F32), fd = ts_image_packed(go, 1, 1, 1, TS_F32);
  rd = ts_reduce_make(TS_DOWNSAMPLE_MEAN, "1.5", TS_F32);
  ts_downsample_image(&fs, &fd, &rd);
  CHECK(go[0] == nextafterf(1.5f, INFINITY));

  /* --nodata's tag: replaced, then dropped */
  ts_image_meta m = {0};
  ts_error err = {0};
  CHECK(ts_image_meta_put_text(&m, 42113, "7", &err) == TS_OK && m.n == 1);
  CHECK(ts_image_meta_put_text(&m, 42113, "nan", &err) == TS_OK && m.n == 1 &&
        !strcmp((const char *)ts_meta_find(&m, 42113)->data, "nan") && ts_meta_find(&m, 42113)->count == 4);
  CHECK(ts_image_meta_put_text(&m, 42113, NULL, &err) == TS_OK && m.n == 0 && !ts_meta_find(&m, 42113));
  ts_image_meta_free(&m);
}

int main(void) {
  test_boundary();
  test_grid();
  test_pipeline();
  test_fetch();
  test_lut();
  test_row_from_float();
  test_separable_paths();
  test_separable_u8();
  test_zstream();
  test_deflate_runs();
  test_cog_layout();
  test_cog_ghost();
  test_utf8();
  test_gdal_metadata();
  test_nodata_reduce();
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
