/* The smallest tessera plugin: a 3 x 3 Laplacian, as
 * scipy.ndimage.laplace (the sum of the second differences along y and x),
 * on one-channel images. Build it outside the tree with
 *
 *     cc -O2 -shared -fPIC -o laplace.so laplace.c $(pkg-config --cflags tessera)
 *
 * and run `tessera run --plugin ./laplace.so --pipeline laplace ...`. */
#include <math.h>
#include "tessera/plugin.h"

static const ts_param_def params[] = {
    {"scale", TS_PARAM_FLOAT, "1", -1e6, 1e6, 0, NULL, "multiply the result by this"},
};

static ts_status prepare(ts_kernel *k, ts_error *err) {
  k->halo = 1; /* one pixel of context on each side */
  return TS_OK;
}

static double at(const ts_image *im, int64_t x, int64_t y) {
  const char *row = (const char *)im->data + y * im->stride;
  switch (im->dtype) {
    case TS_U8: return ((const unsigned char *)row)[x];
    case TS_U16: return ((const unsigned short *)row)[x];
    default: return ((const float *)row)[x];
  }
}

static void put(ts_image *im, int64_t x, int64_t y, double v) {
  char *row = (char *)im->data + y * im->stride;
  const double top = im->dtype == TS_U8 ? 255 : 65535;
  if (im->dtype == TS_F32) {
    ((float *)row)[x] = (float)v;
    return;
  }
  v = v < 0 ? 0 : v > top ? top : nearbyint(v); /* rounded half to even, saturated */
  if (im->dtype == TS_U8) ((unsigned char *)row)[x] = (unsigned char)v;
  else ((unsigned short *)row)[x] = (unsigned short)v;
}

/* in: (out->w + 2) x (out->h + 2); pure, no allocation */
static ts_status apply(const ts_kernel *k, const ts_image *in, ts_image *out, ts_scratch *s, ts_error *err) {
  const double scale = k->v[0].num;
  for (int64_t y = 0; y < out->h; y++)
    for (int64_t x = 0; x < out->w; x++) {
      const double c = at(in, x + 1, y + 1);
      const double v = at(in, x, y + 1) + at(in, x + 2, y + 1) + at(in, x + 1, y) + at(in, x + 1, y + 2) - 4 * c;
      put(out, x, y, scale * v);
    }
  return TS_OK;
}

static const ts_kernel_def laplace = {
    .name = "laplace",
    .summary = "3x3 Laplacian, as scipy.ndimage.laplace (a plugin: plugins/laplace.c)",
    .params = params, .nparams = 1,
    .dtypes = TS_DTYPES_ALL, .channels = 1u << 1,
    .halo_doc = "1",
    .prepare = prepare, .apply = apply,
};

static const ts_kernel_def *const kernels[] = {&laplace, NULL};
static const ts_plugin_info info = TS_PLUGIN_INFO("laplace", kernels);

TS_PLUGIN_EXPORT const ts_plugin_info *tessera_plugin(void) { return &info; }
