/* Whole-image kernels from scikit-image (list mode): tv_denoise
 * (restoration.denoise_tv_chambolle) and hog (feature.hog), written to give
 * the same numbers as skimage 0.19, the version Debian 12 ships. */
#include <math.h>
#include <string.h>
#include "kernels/common.h"
#include "kernels/defs.h"

/* ---- tv_denoise ----------------------------------------------------------- */

/* Chambolle's projection algorithm on one channel f (w x h, float64), as
 * skimage's _denoise_tv_chambolle_nd for ndim = 2: p is the dual field
 * (p0 along rows, p1 along columns), out = f + d where d is p's negative
 * divergence; stop when the energy changes by less than eps * E_0, or
 * after max_iter iterations. Result in out. */
static void chambolle(const double *restrict f, double *restrict out, double *restrict p0, double *restrict p1,
                      int64_t w, int64_t h, double weight, double eps, int max_iter) {
  const int64_t n = w * h;
  const double tau = 1.0 / 4.0; /* 1 / (2 ndim) */
  memset(p0, 0, (size_t)n * sizeof *p0);
  memset(p1, 0, (size_t)n * sizeof *p1);
  double e_init = 0, e_prev = 0;
  for (int i = 0; i < max_iter; i++) {
    double e = 0;
    if (i == 0) {
      memcpy(out, f, (size_t)n * sizeof *out);
    } else {
      for (int64_t y = 0; y < h; y++)
        for (int64_t x = 0; x < w; x++) {
          const int64_t j = y * w + x;
          double d = -(p0[j] + p1[j]);
          if (y > 0) d += p0[j - w];
          if (x > 0) d += p1[j - 1];
          out[j] = f[j] + d;
          e += d * d;
        }
    }
    /* forward differences (0 on the last row / column), then the p update */
    double tv = 0;
    for (int64_t y = 0; y < h; y++)
      for (int64_t x = 0; x < w; x++) {
        const int64_t j = y * w + x;
        const double g0 = y < h - 1 ? out[j + w] - out[j] : 0, g1 = x < w - 1 ? out[j + 1] - out[j] : 0;
        double norm = sqrt(g0 * g0 + g1 * g1);
        tv += norm;
        norm = norm * (tau / weight) + 1.0;
        p0[j] = (p0[j] - tau * g0) / norm;
        p1[j] = (p1[j] - tau * g1) / norm;
      }
    e = (e + weight * tv) / (double)n;
    if (i == 0) {
      e_init = e_prev = e;
    } else {
      if (fabs(e_prev - e) < eps * e_init) break;
      e_prev = e;
    }
  }
}

/* skimage converts integer images with img_as_float (x / max of the dtype)
 * and keeps floats; each channel is denoised on its own (channel_axis=-1).
 * The result is f32. */
static ts_status tv_image(const ts_kernel *k, const ts_image *in, ts_image *out, int slot, ts_emits *em,
                          ts_scratch *s, ts_error *err) {
  (void)em;
  const int64_t n = in->w * in->h;
  const size_t bytes = (size_t)n * sizeof(double);
  double *f = ts_scratch_get(s, 0, bytes), *u = ts_scratch_get(s, 1, bytes), *p0 = ts_scratch_get(s, 2, bytes),
         *p1 = ts_scratch_get(s, 3, bytes);
  void *o = ts_scratch_get(s, slot, (size_t)ts_image_bytes(in->w, in->h, in->channels, TS_F32));
  if (!f || !u || !p0 || !p1 || !o) return TS_SCRATCH_OOM(err, k);
  *out = ts_image_packed(o, in->w, in->h, in->channels, TS_F32);
  const double scale = in->dtype == TS_F32 ? 1.0 : 1.0 / ts_dtype_max(in->dtype);
  for (int c = 0; c < in->channels; c++) {
    for (int64_t y = 0; y < in->h; y++)
      for (int64_t x = 0; x < in->w; x++) f[y * in->w + x] = ts_sample(in, x, y, c) * scale;
    chambolle(f, u, p0, p1, in->w, in->h, k->v[0].num, k->v[1].num, (int)k->v[2].num);
    for (int64_t y = 0; y < in->h; y++) {
      float *row = TS_ROW(out, y);
      for (int64_t x = 0; x < in->w; x++) row[x * in->channels + c] = (float)u[y * in->w + x];
    }
  }
  return TS_OK;
}

static ts_status tv_prepare(ts_kernel *k, ts_error *err) {
  (void)err;
  k->out_dtype = TS_F32;
  return TS_OK;
}

static const ts_param_def tv_params[] = {
    {"weight", TS_PARAM_FLOAT, "0.1", 0, 1e30, TS_PARAM_MIN_OPEN, NULL,
     "denoising weight: larger removes more (skimage's weight)"},
    {"eps", TS_PARAM_FLOAT, "0.0002", 0, 1, 0, NULL, "stop when the energy changes by less than eps * E_0"},
    {"max_iter", TS_PARAM_INT, "200", 1, 1e6, 0, NULL, "at most this many iterations (skimage's max_num_iter)"},
};

const ts_kernel_def ts_kernel_tv_denoise = {
    .name = "tv_denoise",
    .summary = "list mode: Chambolle total-variation denoising (skimage denoise_tv_chambolle); "
               "f32 output, integers scaled to [0, 1]",
    .params = tv_params,
    .nparams = 3,
    .dtypes = TS_DTYPES_ALL,
    .channels = TS_CHANNELS_ANY,
    .halo_doc = "whole image",
    .flags = TS_KERNEL_WHOLE,
    .prepare = tv_prepare,
    .apply_image = tv_image,
};

/* ---- hog -------------------------------------------------------------------- */

/* A one- or two-element list parameter as (rows, columns). */
static void pair(const ts_value *v, int *r, int *c) {
  *r = (int)v->list[0];
  *c = (int)v->list[v->count > 1 ? 1 : 0];
}

static ts_status hog_prepare(ts_kernel *k, ts_error *err) {
  for (int i = 1; i <= 2; i++) {
    const ts_value *v = &k->v[i];
    int bad = v->count < 1 || v->count > 2;
    for (int64_t j = 0; !bad && j < v->count; j++) bad = v->list[j] < 1 || v->list[j] != floor(v->list[j]);
    if (bad)
      return ts_fail(err, TS_ERR_PIPELINE, "hog: %s must be one or two positive integers (rows,columns), as 16 or 16,16",
                     k->def->params[i].name);
  }
  return TS_OK;
}

/* skimage.feature.hog(image, orientations, pixels_per_cell, cells_per_block,
 * block_norm='L2-Hys', channel_axis=-1 when there are channels):
 *  - the image is cast (not scaled) to float64, or kept f32; central
 *    differences, 0 on the border rows and columns; with channels, each
 *    pixel takes the gradient of the channel of largest magnitude;
 *  - orientation = degrees(atan2(g_row, g_col)) mod 180; bin i takes
 *    [i 180/n, (i+1) 180/n); each cell's bin is the mean magnitude over the
 *    cell, summed in float32 as skimage's Cython code does;
 *  - blocks of b_row x b_col cells, L2-Hys normalized (clip at 0.2), in
 *    row-major order of (block row, block column, cell row, cell column,
 *    orientation). As in skimage, an image with no whole block but with
 *    as many cells as a block less one, in each direction (an image smaller
 *    than one cell, with one-cell blocks) gives no values, and an image
 *    with fewer cells is an error. */
static ts_status hog_image(const ts_kernel *k, const ts_image *in, ts_image *out, int slot, ts_emits *em,
                           ts_scratch *s, ts_error *err) {
  (void)slot;
  const int nor = (int)k->v[0].num;
  int cr, cc, br, bc;
  pair(&k->v[1], &cr, &cc);
  pair(&k->v[2], &br, &bc);
  const int64_t w = in->w, h = in->h, C = in->channels;
  const int64_t ncr = h / cr, ncc = w / cc;
  const int64_t nbr = ncr - br + 1, nbc = ncc - bc + 1;
  if (nbr < 0 || nbc < 0) /* skimage raises too ("negative dimensions") */
    return ts_fail(err, TS_ERR_PIPELINE, "hog: the %lldx%lld image holds %lldx%lld cells of %dx%d pixels, fewer than "
                   "a block of %dx%d cells", (long long)w, (long long)h, (long long)ncc, (long long)ncr, cc, cr, bc, br);
  const int64_t per_block = (int64_t)br * bc * nor;
  double *v = ts_emit_values(em, k->def->name, nbr * nbc * per_block);
  if (!v) return TS_SCRATCH_OOM(err, k);
  *out = *in; /* pixels unchanged */
  if (nbr * nbc == 0) return TS_OK;
  const int f32 = in->dtype == TS_F32;
  double *mag = ts_scratch_get(s, 0, (size_t)(w * h) * sizeof(double));
  double *ori = ts_scratch_get(s, 1, (size_t)(w * h) * sizeof(double));
  double *hist = ts_scratch_get(s, 2, (size_t)(ncr * ncc * nor) * sizeof(double));
  double *blk = ts_scratch_get(s, 3, (size_t)per_block * sizeof(double));
  if (!mag || !ori || !hist || !blk) return TS_SCRATCH_OOM(err, k);
  for (int64_t y = 0; y < h; y++)
    for (int64_t x = 0; x < w; x++) {
      double grow = 0, gcol = 0, best = -1;
      for (int c = 0; c < C; c++) {
        double gr = 0, gc = 0, m;
        if (y > 0 && y < h - 1) gr = ts_sample(in, x, y + 1, c) - ts_sample(in, x, y - 1, c);
        if (x > 0 && x < w - 1) gc = ts_sample(in, x + 1, y, c) - ts_sample(in, x - 1, y, c);
        if (f32) { /* float32 arithmetic, as skimage on a float32 image */
          gr = (float)gr;
          gc = (float)gc;
          m = hypotf((float)gr, (float)gc);
        } else {
          m = hypot(gr, gc);
        }
        if (m > best) best = m, grow = gr, gcol = gc; /* first channel of largest magnitude (argmax) */
      }
      mag[y * w + x] = hypot(grow, gcol);
      double a = atan2(grow, gcol) * (180.0 / 3.141592653589793);
      a = fmod(a, 180.0); /* numpy's %: the result takes the divisor's sign */
      if (a < 0) a += 180.0; /* -1e-17 becomes 180.0, in no bin, as in numpy */
      ori[y * w + x] = a;
    }
  const float per180 = 180.f / (float)nor;
  for (int64_t r = 0; r < ncr; r++)
    for (int64_t q = 0; q < ncc; q++)
      for (int i = 0; i < nor; i++) {
        const double lo = per180 * (float)i, hi = per180 * (float)(i + 1);
        float total = 0.f;
        for (int64_t y = r * cr; y < (r + 1) * cr; y++)
          for (int64_t x = q * cc; x < (q + 1) * cc; x++) {
            const double a = ori[y * w + x];
            if (a < hi && a >= lo) total = (float)(total + mag[y * w + x]);
          }
        hist[(r * ncc + q) * nor + i] = total / (float)(cr * cc);
      }
  const double e2 = 1e-5 * 1e-5;
  for (int64_t r = 0; r < nbr; r++)
    for (int64_t q = 0; q < nbc; q++) {
      int64_t m = 0;
      for (int a = 0; a < br; a++)
        for (int b = 0; b < bc; b++)
          for (int i = 0; i < nor; i++) blk[m++] = hist[((r + a) * ncc + q + b) * nor + i];
      double ss = 0;
      for (int64_t j = 0; j < m; j++) ss += blk[j] * blk[j];
      double norm = sqrt(ss + e2);
      ss = 0;
      for (int64_t j = 0; j < m; j++) {
        blk[j] = blk[j] / norm;
        blk[j] = blk[j] < 0.2 ? blk[j] : 0.2;
        ss += blk[j] * blk[j];
      }
      norm = sqrt(ss + e2);
      double *dst = v + (r * nbc + q) * per_block;
      for (int64_t j = 0; j < m; j++) dst[j] = f32 ? (double)(float)(blk[j] / norm) : blk[j] / norm;
    }
  return TS_OK;
}

static const ts_param_def hog_params[] = {
    {"orientations", TS_PARAM_INT, "9", 1, 360, 0, NULL, "orientation bins over 0-180 degrees"},
    {"pixels_per_cell", TS_PARAM_LIST, "8", 1, 1e6, 0, NULL, "cell size: rows,columns (one number: square)"},
    {"cells_per_block", TS_PARAM_LIST, "3", 1, 1e6, 0, NULL,
     "block size in cells: rows,columns (one number: square); blocks are L2-Hys normalized"},
};

const ts_kernel_def ts_kernel_hog = {
    .name = "hog",
    .summary = "list mode: emits the HOG feature vector (skimage feature.hog, L2-Hys); pixels unchanged",
    .params = hog_params,
    .nparams = 3,
    .dtypes = TS_DTYPES_ALL,
    .channels = TS_CHANNELS_ANY,
    .halo_doc = "whole image",
    .flags = TS_KERNEL_WHOLE,
    .prepare = hog_prepare,
    .apply_image = hog_image,
};
