/* The task grid and its walk order: vertical stripes, row-major inside a
 * stripe, so consecutive tasks share most of their source blocks and the
 * reader's cache needs only about one stripe-row of them. */
#include "tessera/partition.h"

ts_status ts_grid_init(ts_grid *g, int64_t w, int64_t h, int64_t tile, int64_t halo,
                       int64_t stripe_px, ts_error *err) {
  if (w <= 0 || h <= 0)
    return ts_fail(err, TS_ERR_RANGE, "image size %lldx%lld is empty", (long long)w, (long long)h);
  if (tile <= 0) return ts_fail(err, TS_ERR_USAGE, "tile size must be positive");
  g->w = w;
  g->h = h;
  g->tile = tile;
  g->halo = halo;
  g->cols = (w + tile - 1) / tile;
  g->rows = (h + tile - 1) / tile;
  g->stripe = g->cols;
  if (stripe_px > 0 && stripe_px < w) {
    g->stripe = (stripe_px + tile - 1) / tile;
    if (g->stripe < 1) g->stripe = 1;
    if (g->stripe > g->cols) g->stripe = g->cols;
  }
  g->ntasks = g->cols * g->rows;
  return TS_OK;
}

ts_rect ts_grid_core(const ts_grid *g, int64_t t) {
  int64_t per_stripe = g->stripe * g->rows;
  int64_t s = t / per_stripe, rem = t % per_stripe;
  int64_t first = s * g->stripe;
  int64_t sw = g->cols - first < g->stripe ? g->cols - first : g->stripe;
  int64_t row = rem / sw, col = first + rem % sw;
  ts_rect r = {col * g->tile, row * g->tile, g->tile, g->tile};
  if (r.x + r.w > g->w) r.w = g->w - r.x;
  if (r.y + r.h > g->h) r.h = g->h - r.y;
  return r;
}

ts_rect ts_grid_input_halo(const ts_grid *g, int64_t t, int64_t halo) {
  ts_rect r = ts_grid_core(g, t);
  r.x -= halo;
  r.y -= halo;
  r.w += 2 * halo;
  r.h += 2 * halo;
  return r;
}

ts_rect ts_grid_input(const ts_grid *g, int64_t t) { return ts_grid_input_halo(g, t, g->halo); }
