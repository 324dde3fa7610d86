/* The built-in deterministic test pattern, as a reader: "synth:WxH",
 * "synth:WxH:u16", "synth:WxH:f32:3". Smooth ramps, disks with sharp edges
 * and hashed noise, so every kernel has something to do. Pure integer and
 * float arithmetic without library calls: the same bytes on every run. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "io/backends.h"
#include "core/saturate.h"

typedef struct synth {
  ts_image_info info;
} synth;

static ts_status synth_open(const char *path, int64_t page, void **ctx, ts_image_info *info, ts_error *err) {
  if (page) return ts_fail(err, TS_ERR_USAGE, "%s: one image; --page is for multi-page TIFF files", path);
  long long w = 0, h = 0;
  char dt[8] = "u8";
  int ch = 1, n = 0;
  const char *spec = path + 6;
  if (sscanf(spec, "%lldx%lld%n", &w, &h, &n) != 2)
    return ts_fail(err, TS_ERR_USAGE, "%s: expected synth:WIDTHxHEIGHT[:DTYPE[:CHANNELS]]", path);
  if (spec[n] == ':') {
    int m = 0;
    if (sscanf(spec + n + 1, "%7[a-z0-9]%n", dt, &m) != 1)
      return ts_fail(err, TS_ERR_USAGE, "%s: bad dtype", path);
    n += 1 + m;
    if (spec[n] == ':' && sscanf(spec + n + 1, "%d", &ch) != 1)
      return ts_fail(err, TS_ERR_USAGE, "%s: bad channel count", path);
  }
  if (ts_dtype_parse(dt, &info->dtype))
    return ts_fail(err, TS_ERR_USAGE, "%s: dtype '%s' is not one of u8, u16, f32", path, dt);
  if (ch < 1 || ch > TS_MAX_CHANNELS)
    return ts_fail(err, TS_ERR_USAGE, "%s: channels must be 1 to %d", path, TS_MAX_CHANNELS);
  synth *s = calloc(1, sizeof *s);
  if (!s) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  info->w = w;
  info->h = h;
  info->channels = ch;
  info->block_w = info->block_h = 256;
  snprintf(info->format, sizeof info->format, "synthetic");
  snprintf(info->detail, sizeof info->detail, "built-in deterministic pattern");
  s->info = *info;
  *ctx = s;
  return TS_OK;
}

static inline uint32_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return (uint32_t)x;
}

/* The pattern at (x, y, channel c), in [0, 1]. */
static inline float pattern(int64_t x, int64_t y, int c) {
  int64_t xs = x + 37 * c;
  int64_t tx = xs % 512, ty = y % 384;
  float a = (float)(tx < 256 ? tx : 511 - tx) / 255.f;
  float b = (float)(ty < 192 ? ty : 383 - ty) / 191.f;
  float v = 0.12f + 0.55f * a * b;
  int64_t dx = (xs & 255) - 128, dy = (y & 255) - 128;
  if (dx * dx + dy * dy < 80 * 80) v += 0.22f;
  uint32_t hsh = mix(((uint64_t)y << 32) ^ (uint64_t)(xs * 4 + c));
  v += ((float)(hsh & 255) / 255.f - 0.5f) * 0.1f;
  return v;
}

static ts_status synth_read(void *ctx, ts_rect r, void *dst, int64_t stride, ts_error *err) {
  synth *s = ctx;
  const int C = s->info.channels;
  for (int64_t y = 0; y < r.h; y++) {
    char *row = (char *)dst + y * stride;
    for (int64_t x = 0; x < r.w; x++)
      for (int c = 0; c < C; c++) {
        float v = pattern(r.x + x, r.y + y, c);
        int64_t i = x * C + c;
        if (s->info.dtype == TS_U8) ((uint8_t *)row)[i] = ts_sat_u8(v * 255.f);
        else if (s->info.dtype == TS_U16) ((uint16_t *)row)[i] = ts_sat_u16(v * 65535.f);
        else ((float *)row)[i] = v;
      }
  }
  return TS_OK;
}

static void synth_close(void *ctx) { free(ctx); }

const ts_reader_ops ts_synth_reader_ops = {
    .name = "synthetic",
    .open = synth_open,
    .read = synth_read,
    .close = synth_close,
};
