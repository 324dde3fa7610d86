/* patch_replace: each size x size block of the image, aligned to the
 * image's origin, is replaced by the database patch nearest to it in
 * squared L2 distance (ties: the lowest patch index), as scikit-learn's
 * NearestNeighbors(n_neighbors=1, algorithm='brute') on the raw pixels.
 * A partial block at the right or bottom edge is matched on its own
 * pixels, against the same-shaped top-left corner of every patch, and
 * replaced by that corner. List mode also emits the chosen indices, in
 * block raster order, as /results/patch_replace.
 *
 * The database (db=: a directory of images, @LIST.txt or FILE.h5:/stack,
 * the input's dtype and channels) is cut into patches once per rank
 * (setup): with rotations=4 the stack of images is followed by the stack
 * rotated by 90, then 180, then 270 degrees counter-clockwise (numpy's
 * rot90); within one image, patches at every `stride` pixels in raster
 * order. Patch i is the i-th of that sequence.
 *
 * Distances: |a - b|^2 = |a|^2 + |b|^2 - 2 a.b, and |a|^2 is the same for
 * every b, so the nearest b minimises d(b) = |b|^2 - 2 a.b. All the a.b
 * of blocks x patches come from one matrix product (BLAS gemm).
 *
 * Exactness. Let D = size * size * channels and M the dtype's largest
 * value. Every product term of a.b is an integer in [0, M^2], so every
 * partial sum a gemm forms, in any order and with or without FMA, is an
 * integer in [0, D M^2]. float32 holds every integer up to 2^24 exactly,
 * so when D M^2 <= 2^24 (u8: D <= 258, i.e. size=16 on one channel)
 * sgemm's a.b is exact. Then |b|^2 <= D M^2 <= 2^24 is exact, 2 a.b is
 * exact (a power of two), and d(b) lies in [-|a|^2, |b|^2] (since
 * |a - b|^2 >= 0), a range of integers float32 holds, so the subtraction
 * is exact too, and comparing the floats is comparing the integers.
 * Otherwise (more channels, larger blocks, u16) the same argument holds
 * for float64 with 2^53 (D M^2 <= 2^53: any D below 2 million for u16),
 * and dgemm is used. So every choice equals an int64 brute force. */
#include <cblas.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "tessera/io.h"
#include "tessera/plugin.h"

#define NAME "patch_replace"
enum { SLOT_A = 0, SLOT_C = 1, SLOT_BEST = 2, SLOT_NORM = 3, SLOT_IDX = 4 };
enum { BLOCKS = 256, PATCHES = 2048 }; /* one gemm: BLOCKS x PATCHES dots (2 MiB of floats) */
#define MAX_ELEMENTS ((int64_t)1 << 31) /* patches x D in the database */

static const ts_param_def params[] = {
    {"db", TS_PARAM_STRING, NULL, 0, 0, 0, NULL,
     "the database: a directory of images, @LIST.txt or FILE.h5:/stack (the input's dtype and channels)"},
    {"size", TS_PARAM_INT, "16", 2, 64, 0, NULL, "block and patch side in pixels"},
    {"rotations", TS_PARAM_CHOICE, "1", 0, 0, 0, "1|4", "4: also every database image rotated by 90, 180, 270"},
    {"stride", TS_PARAM_INT, NULL, 1, 1024, TS_PARAM_OPTIONAL, NULL,
     "step between database patches (default: size)"},
};
enum { P_DB, P_SIZE, P_ROT, P_STRIDE };

/* What setup makes: the patches as pixels (to paste), as gemm rows (float
 * or double), and their squared norms. Read-only once made. */
typedef struct db {
  int64_t n, size, d; /* patches, side, elements per patch */
  int channels;
  ts_dtype dtype;
  int f64;            /* dgemm: the float32 bound does not hold */
  unsigned char *px;  /* n x d samples of dtype */
  void *rows;         /* n x d float or double */
  void *norm;         /* n: |b|^2, float or double */
  /* while loading */
  int64_t cap, stride;
  const char *spec;
} db;

static ts_status prepare(ts_kernel *k, ts_error *err) {
  k->align = (int64_t)k->v[P_SIZE].num; /* blocks lie on the image's size x size grid */
  return TS_OK;
}

/* Sample i of an image row as a double. */
static double sample(const ts_image *im, int64_t x, int64_t y, int c) {
  const unsigned char *r = (const unsigned char *)im->data + y * im->stride;
  const int64_t i = x * im->channels + c;
  return im->dtype == TS_U8 ? r[i] : ((const uint16_t *)r)[i];
}

/* Append every patch of im rotated by q quarter turns counter-clockwise
 * (numpy's rot90(im, q): the rotated image's pixel (x, y) is im's
 * (W-1-y, x) for q = 1, (W-1-x, H-1-y) for 2, (y, H-1-x) for 3). */
static ts_status add_patches(db *b, const ts_image *im, int q, ts_error *err) {
  const int64_t W = q % 2 ? im->h : im->w, H = q % 2 ? im->w : im->h, S = b->size;
  if (W < S || H < S) return TS_OK;
  const int64_t per = ((W - S) / b->stride + 1) * ((H - S) / b->stride + 1);
  if (b->n + per > b->cap) {
    int64_t cap = b->cap ? b->cap : 1024;
    while (cap < b->n + per) cap *= 2;
    if (cap * b->d > MAX_ELEMENTS)
      return ts_fail(err, TS_ERR_RANGE, NAME ": db=%s: over %lld patch samples; use a larger stride=", b->spec,
                     (long long)MAX_ELEMENTS);
    unsigned char *px = realloc(b->px, (size_t)(cap * b->d) * ts_dtype_size(b->dtype));
    if (!px) return ts_fail(err, TS_ERR_NOMEM, NAME ": out of memory for the database");
    b->px = px, b->cap = cap;
  }
  const size_t es = ts_dtype_size(b->dtype);
  for (int64_t py = 0; py + S <= H; py += b->stride)
    for (int64_t px = 0; px + S <= W; px += b->stride) {
      unsigned char *dst = b->px + (size_t)(b->n * b->d) * es;
      for (int64_t y = 0; y < S; y++)
        for (int64_t x = 0; x < S; x++) {
          const int64_t X = px + x, Y = py + y; /* in the rotated image */
          const int64_t sx = q == 0 ? X : q == 1 ? im->w - 1 - Y : q == 2 ? im->w - 1 - X : Y;
          const int64_t sy = q == 0 ? Y : q == 1 ? X : q == 2 ? im->h - 1 - Y : im->h - 1 - X;
          const size_t at = (size_t)((y * S + x) * b->channels) * es;
          memcpy(dst + at, (const unsigned char *)im->data + sy * im->stride + sx * b->channels * (int64_t)es,
                 (size_t)b->channels * es);
        }
      b->n++;
    }
  return TS_OK;
}

typedef struct loading {
  db *b;
  int q;
} loading;

static ts_status one_image(void *ctx, const char *name, const ts_image *im, ts_error *err) {
  loading *l = ctx;
  db *b = l->b;
  if (im->dtype != b->dtype || im->channels != b->channels)
    return ts_fail(err, TS_ERR_PIPELINE, NAME ": db=%s: %s is %s with %d channel(s); the input is %s with %d",
                   b->spec, name, ts_dtype_name(im->dtype), im->channels, ts_dtype_name(b->dtype), b->channels);
  return add_patches(b, im, l->q, err);
}

static void teardown(void *state) {
  db *b = state;
  if (!b) return;
  free(b->px);
  free(b->rows);
  free(b->norm);
  free(b);
}

static ts_status setup(const ts_kernel *k, void **state, ts_error *err) {
  db *b = calloc(1, sizeof *b);
  if (!b) return ts_fail(err, TS_ERR_NOMEM, NAME ": out of memory");
  b->size = (int64_t)k->v[P_SIZE].num;
  b->stride = k->v[P_STRIDE].given ? (int64_t)k->v[P_STRIDE].num : b->size;
  b->channels = k->in_channels;
  b->dtype = k->in_dtype;
  b->d = b->size * b->size * b->channels;
  b->spec = k->v[P_DB].str;
  const double M = b->dtype == TS_U8 ? 255.0 : 65535.0;
  b->f64 = (double)b->d * M * M > 16777216.0; /* 2^24: see the comment at the top */
  ts_status st = TS_OK;
  /* rotations outermost: the whole stack, then the whole stack turned once, ... */
  for (int q = 0; st == TS_OK && q < (k->v[P_ROT].num > 0 ? 4 : 1); q++) {
    loading l = {b, q};
    ts_error e = {0};
    if ((st = ts_images_each(b->spec, 0, one_image, &l, &e)))
      ts_fail(err, st, "%s%s", strncmp(e.msg, NAME ":", strlen(NAME ":")) ? NAME ": db: " : "", e.msg);
  }
  if (st == TS_OK && b->n == 0)
    st = ts_fail(err, TS_ERR_PIPELINE, NAME ": db=%s: no image is %lld x %lld or larger, so there are no patches",
                 b->spec, (long long)b->size, (long long)b->size);
  const size_t es = b->f64 ? sizeof(double) : sizeof(float);
  if (st == TS_OK && (!(b->rows = malloc((size_t)(b->n * b->d) * es)) || !(b->norm = malloc((size_t)b->n * es))))
    st = ts_fail(err, TS_ERR_NOMEM, NAME ": out of memory for %lld patches", (long long)b->n);
  for (int64_t i = 0; st == TS_OK && i < b->n; i++) {
    double nn = 0;
    for (int64_t j = 0; j < b->d; j++) {
      const size_t at = (size_t)(i * b->d + j);
      const double v = b->dtype == TS_U8 ? b->px[at] : ((const uint16_t *)b->px)[at];
      nn += v * v; /* exact: an integer below 2^53 */
      if (b->f64) ((double *)b->rows)[at] = v;
      else ((float *)b->rows)[at] = (float)v;
    }
    if (b->f64) ((double *)b->norm)[i] = nn;
    else ((float *)b->norm)[i] = (float)nn;
  }
  if (st) {
    teardown(b);
    return st;
  }
  b->spec = NULL;
  openblas_set_num_threads(1); /* tessera's threads run the tiles; BLAS's own would compete */
  *state = b;
  return TS_OK;
}

/* |corner|^2 of every patch for a bw x bh corner (a partial block's shape). */
static void corner_norms(const db *b, int64_t bw, int64_t bh, void *norm) {
  for (int64_t i = 0; i < b->n; i++) {
    double nn = 0;
    for (int64_t y = 0; y < bh; y++)
      for (int64_t x = 0; x < bw * b->channels; x++) {
        const size_t at = (size_t)(i * b->d + y * b->size * b->channels + x);
        const double v = b->dtype == TS_U8 ? b->px[at] : ((const uint16_t *)b->px)[at];
        nn += v * v;
      }
    if (b->f64) ((double *)norm)[i] = nn;
    else ((float *)norm)[i] = (float)nn;
  }
}

/* The nearest patch of blocks (bx0.., by) .. : nb blocks of one row of
 * blocks, all bw x bh, starting at block column bx0; into idx[0..nb). */
static ts_status match_row(const db *b, const ts_image *in, int64_t by, int64_t bx0, int64_t nb, int64_t bw,
                           int64_t bh, const void *norm, int32_t *idx, ts_scratch *s, ts_error *err) {
  const size_t es = b->f64 ? sizeof(double) : sizeof(float);
  const int64_t S = b->size, C = b->channels;
  void *A = ts_scratch_get(s, SLOT_A, (size_t)(nb * b->d) * es);
  void *Cm = ts_scratch_get(s, SLOT_C, (size_t)(nb * PATCHES) * es);
  double *best = ts_scratch_get(s, SLOT_BEST, (size_t)nb * sizeof(double));
  if (!A || !Cm || !best) return ts_fail(err, TS_ERR_NOMEM, NAME ": out of memory for scratch buffers");
  memset(A, 0, (size_t)(nb * b->d) * es); /* a partial block is zero outside its pixels */
  for (int64_t i = 0; i < nb; i++) {
    for (int64_t y = 0; y < bh; y++)
      for (int64_t x = 0; x < bw * C; x++) {
        const double v = sample(in, (bx0 + i) * S + x / C, by * S + y, (int)(x % C));
        const size_t at = (size_t)(i * b->d + y * S * C + x);
        if (b->f64) ((double *)A)[at] = v;
        else ((float *)A)[at] = (float)v;
      }
    best[i] = 1e300;
    idx[i] = 0;
  }
  for (int64_t j0 = 0; j0 < b->n; j0 += PATCHES) {
    const int64_t pc = b->n - j0 < PATCHES ? b->n - j0 : PATCHES;
    /* Cm (nb x pc) = A (nb x d) . rows[j0..j0+pc)^T */
    if (b->f64)
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)pc, (int)b->d, 1.0, A, (int)b->d,
                  (const double *)b->rows + j0 * b->d, (int)b->d, 0.0, Cm, (int)pc);
    else
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)pc, (int)b->d, 1.0f, A, (int)b->d,
                  (const float *)b->rows + j0 * b->d, (int)b->d, 0.0f, Cm, (int)pc);
    for (int64_t i = 0; i < nb; i++) {
      double bi = best[i];
      int32_t ii = idx[i];
      if (b->f64) {
        const double *c = (const double *)Cm + i * pc, *nn = (const double *)norm + j0;
        for (int64_t j = 0; j < pc; j++) {
          const double dist = nn[j] - 2 * c[j];
          if (dist < bi) bi = dist, ii = (int32_t)(j0 + j);
        }
      } else {
        const float *c = (const float *)Cm + i * pc, *nn = (const float *)norm + j0;
        float bf = bi > 3e38 ? 3e38f : (float)bi;
        for (int64_t j = 0; j < pc; j++) {
          const float dist = nn[j] - 2 * c[j]; /* exact: see the top */
          if (dist < bf) bf = dist, ii = (int32_t)(j0 + j);
        }
        bi = bf;
      }
      best[i] = bi, idx[i] = ii;
    }
  }
  return TS_OK;
}

/* Match and paste every block of in (out has in's size: halo 0); the
 * chosen indices into idx (blocks in raster order) when idx is given. */
static ts_status replace(const ts_kernel *k, const ts_image *in, ts_image *out, int32_t *idx, ts_scratch *s,
                         ts_error *err) {
  const db *b = k->state;
  const int64_t S = b->size, nbx = (in->w + S - 1) / S, nby = (in->h + S - 1) / S;
  const size_t es = ts_dtype_size(b->dtype), pix = es * (size_t)b->channels;
  int32_t *row = ts_scratch_get(s, SLOT_IDX, (size_t)nbx * sizeof(int32_t));
  if (!row) return ts_fail(err, TS_ERR_NOMEM, NAME ": out of memory for scratch buffers");
  const void *full = b->norm;
  void *corner = NULL;
  int64_t cw = -1, ch = -1; /* the corner shape in `corner` */
  for (int64_t by = 0; by < nby; by++) {
    const int64_t bh = in->h - by * S < S ? in->h - by * S : S;
    /* whole blocks of this row in groups, then a partial one at the right */
    const int64_t whole = in->w / S;
    for (int64_t part = 0; part < 2; part++) {
      const int64_t bw = part ? in->w - whole * S : S, first = part ? whole : 0, count = part ? (bw > 0) : whole;
      if (count == 0) continue;
      const void *norm = full;
      if (bw < S || bh < S) {
        if (bw != cw || bh != ch) {
          const size_t ns = (size_t)b->n * (b->f64 ? sizeof(double) : sizeof(float));
          if (!(corner = ts_scratch_get(s, SLOT_NORM, ns)))
            return ts_fail(err, TS_ERR_NOMEM, NAME ": out of memory for scratch buffers");
          corner_norms(b, bw, bh, corner);
          cw = bw, ch = bh;
        }
        norm = corner;
      }
      for (int64_t g = 0; g < count; g += BLOCKS) {
        const int64_t nb = count - g < BLOCKS ? count - g : BLOCKS;
        ts_status st = match_row(b, in, by, first + g, nb, bw, bh, norm, row + first + g, s, err);
        if (st) return st;
      }
    }
    for (int64_t bx = 0; bx < nbx; bx++) { /* paste the chosen patches' pixels */
      const int64_t bw = in->w - bx * S < S ? in->w - bx * S : S;
      const unsigned char *p = b->px + (size_t)(row[bx] * b->d) * es;
      for (int64_t y = 0; y < bh; y++)
        memcpy((unsigned char *)out->data + (by * S + y) * out->stride + bx * S * (int64_t)pix,
               p + (size_t)(y * S) * pix, (size_t)bw * pix);
    }
    if (idx) memcpy(idx + by * nbx, row, (size_t)nbx * sizeof(int32_t));
  }
  return TS_OK;
}

static ts_status apply(const ts_kernel *k, const ts_image *in, ts_image *out, ts_scratch *s, ts_error *err) {
  return replace(k, in, out, NULL, s, err);
}

/* List mode: the same, and the chosen indices as values. */
static ts_status apply_image(const ts_kernel *k, const ts_image *in, ts_image *out, int out_slot, ts_emits *em,
                             ts_scratch *s, ts_error *err) {
  const int64_t S = (int64_t)k->v[P_SIZE].num, n = ((in->w + S - 1) / S) * ((in->h + S - 1) / S);
  const int64_t bytes = ts_image_bytes(in->w, in->h, in->channels, in->dtype);
  void *px = bytes < 0 ? NULL : ts_scratch_get(s, out_slot, (size_t)bytes);
  int32_t *idx = malloc((size_t)n * sizeof *idx);
  double *v = ts_emit_values(em, NAME, n);
  ts_status st = px && idx && v ? TS_OK : ts_fail(err, TS_ERR_NOMEM, NAME ": out of memory for a %lldx%lld image",
                                                  (long long)in->w, (long long)in->h);
  if (st == TS_OK) {
    *out = ts_image_packed(px, in->w, in->h, in->channels, in->dtype);
    st = replace(k, in, out, idx, s, err);
  }
  for (int64_t i = 0; st == TS_OK && i < n; i++) v[i] = idx[i];
  free(idx);
  return st;
}

static const ts_kernel_def patch_replace = {
    .name = NAME,
    .summary = "replace each size x size block by its nearest database patch (squared L2, ties to the lowest "
               "index); list mode emits the indices (a plugin: plugins/patch_replace.c)",
    .params = params, .nparams = 4,
    .dtypes = TS_DTYPE_BIT(TS_U8) | TS_DTYPE_BIT(TS_U16),
    .channels = (1u << 1) | (1u << 2) | (1u << 3) | (1u << 4),
    .halo_doc = "0 (tiles: multiples of size)",
    .prepare = prepare, .apply = apply, .apply_image = apply_image,
    .setup = setup, .teardown = teardown,
};

static const ts_kernel_def *const kernels[] = {&patch_replace, NULL};
static const ts_plugin_info info = TS_PLUGIN_INFO("patch_replace", kernels);

TS_PLUGIN_EXPORT const ts_plugin_info *tessera_plugin(void) { return &info; }
