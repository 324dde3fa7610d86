/* Input assembly. Coordinates outside the image map back inside (or to
 * the constant); the mapped indices form a few runs, each ascending,
 * descending (a reflection) or constant, so each (row run x column run)
 * block is one read call, reversed in place when it runs backwards. */
#include <string.h>
#include "core/saturate.h"
#include "partition/assemble.h"

typedef struct run {
  int64_t dst, src, len; /* src: first source index in ascending order */
  int dir;               /* +1, -1, or 0 = constant */
} run;

/* Split the mapping of [start, start + n) into runs; returns the count.
 * `runs` has room for n entries. */
static int64_t make_runs(int64_t start, int64_t n, int64_t size, ts_boundary mode, run *runs) {
  int64_t count = 0;
  for (int64_t i = 0; i < n;) {
    int64_t m = ts_boundary_map(start + i, size, mode);
    run rn = {i, m, 1, m < 0 ? 0 : 1};
    int64_t j = i + 1;
    if (m >= 0 && j < n) {
      int64_t m2 = ts_boundary_map(start + j, size, mode);
      if (m2 >= 0 && m2 == m - 1) rn.dir = -1; /* not the constant (-1) after index 0 of a 1-pixel side */
    }
    for (; j < n; j++) {
      int64_t mj = ts_boundary_map(start + j, size, mode);
      if (rn.dir == 0 ? mj >= 0 : mj < 0 || mj != m + rn.dir * (j - i)) break;
    }
    rn.len = j - i;
    if (rn.dir < 0) rn.src = m - (rn.len - 1);
    runs[count++] = rn;
    i = j;
  }
  return count;
}

static void fill_constant(ts_image *dst, ts_rect b, double cval) {
  const int C = dst->channels;
  for (int64_t y = b.y; y < b.y + b.h; y++)
    for (int64_t x = b.x; x < b.x + b.w; x++)
      for (int c = 0; c < C; c++) {
        if (dst->dtype == TS_U8) ((uint8_t *)TS_ROW(dst, y))[x * C + c] = ts_sat_u8((float)cval);
        else if (dst->dtype == TS_U16) ((uint16_t *)TS_ROW(dst, y))[x * C + c] = ts_sat_u16((float)cval);
        else ((float *)TS_ROW(dst, y))[x * C + c] = (float)cval;
      }
}

static void reverse_cols(ts_image *dst, ts_rect b) {
  const size_t px = ts_pixel_size(dst);
  unsigned char tmp[16];
  for (int64_t y = b.y; y < b.y + b.h; y++)
    for (int64_t i = 0, j = b.w - 1; i < j; i++, j--) {
      unsigned char *p = ts_image_at(dst, b.x + i, y), *q = ts_image_at(dst, b.x + j, y);
      memcpy(tmp, p, px);
      memcpy(p, q, px);
      memcpy(q, tmp, px);
    }
}

static void reverse_rows(ts_image *dst, ts_rect b) {
  const size_t len = (size_t)b.w * ts_pixel_size(dst);
  for (int64_t i = 0, j = b.h - 1; i < j; i++, j--) {
    unsigned char *p = ts_image_at(dst, b.x, b.y + i), *q = ts_image_at(dst, b.x, b.y + j);
    for (size_t k = 0; k < len; k++) {
      unsigned char t = p[k];
      p[k] = q[k];
      q[k] = t;
    }
  }
}

size_t ts_assemble_scratch_bytes(ts_rect rect) { return (size_t)(rect.w + rect.h) * sizeof(run); }

ts_status ts_assemble_rect(ts_read_rect_fn read, void *ctx, int64_t w, int64_t h, ts_rect rect, ts_boundary mode,
                           double cval, ts_image *dst, void *scratch, ts_error *err) {
  run *xr = scratch, *yr = xr + rect.w;
  int64_t nx = make_runs(rect.x, rect.w, w, mode, xr);
  int64_t ny = make_runs(rect.y, rect.h, h, mode, yr);
  for (int64_t j = 0; j < ny; j++)
    for (int64_t i = 0; i < nx; i++) {
      ts_rect b = {xr[i].dst, yr[j].dst, xr[i].len, yr[j].len};
      if (xr[i].dir == 0 || yr[j].dir == 0) {
        fill_constant(dst, b, cval);
        continue;
      }
      ts_rect src = {xr[i].src, yr[j].src, b.w, b.h};
      ts_status st = read(ctx, src, ts_image_at(dst, b.x, b.y), dst->stride, err);
      if (st) return st;
      if (xr[i].dir < 0) reverse_cols(dst, b);
      if (yr[j].dir < 0) reverse_rows(dst, b);
    }
  return TS_OK;
}
