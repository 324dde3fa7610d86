/* The pyramid's upper levels on the owner (pyramid.h). */
#include <stdlib.h>
#include <string.h>
#include "engine/journal.h"
#include "engine/pyramid.h"

/* A snapshot: per unfinished tile [int64 level][int64 index][int64 filled][pixels]. */
ts_status ts_tail_snapshot(void *tail, ts_blob *out, ts_error *err) {
  ts_tail *t = tail;
  for (int L = t->g->task_levels; L < t->g->n; L++)
    for (int64_t i = 0; i < ts_level_across(t->g, L) * ts_level_down(t->g, L); i++) {
      const ts_tail_tile *tt = &t->t[L][i];
      if (!tt->px) continue;
      const int64_t head[3] = {L, i, tt->filled};
      if (ts_blob_append(out, head, sizeof head) || ts_blob_append(out, tt->px, t->tile_bytes))
        return ts_fail(err, TS_ERR_NOMEM, "out of memory for a checkpoint");
    }
  return TS_OK;
}

ts_status ts_tail_restore(ts_tail *t, const unsigned char *p, size_t n, ts_error *err) {
  const size_t rec = 3 * sizeof(int64_t) + t->tile_bytes;
  for (size_t at = 0; at < n; at += rec) {
    int64_t head[3];
    if (n - at < rec) return ts_fail(err, TS_ERR_FORMAT, "the journal's pyramid snapshot is cut short");
    memcpy(head, p + at, sizeof head);
    const int L = (int)head[0];
    if (L < t->g->task_levels || L >= t->g->n || head[1] < 0 ||
        head[1] >= ts_level_across(t->g, L) * ts_level_down(t->g, L) || head[2] <= 0 || head[2] > t->g->tile * t->g->tile)
      return ts_fail(err, TS_ERR_FORMAT, "the journal's pyramid snapshot names no tile of this job");
    ts_tail_tile *tt = &t->t[L][head[1]];
    if (!tt->px && !(tt->px = malloc(t->tile_bytes))) return ts_fail(err, TS_ERR_NOMEM, "out of memory for the pyramid");
    memcpy(tt->px, p + at + sizeof head, t->tile_bytes);
    tt->filled = head[2];
  }
  return TS_OK;
}

ts_status ts_tail_init(ts_tail *t, const ts_levels *g, ts_dtype dtype, int channels, ts_downsample mode,
                       ts_writer *writer, const char *output, const ts_writer_options *o, ts_error *err) {
  memset(t, 0, sizeof *t);
  t->g = g;
  t->dtype = dtype;
  t->channels = channels;
  t->mode = mode;
  t->writer = writer;
  t->px = ts_dtype_size(dtype) * (size_t)channels;
  t->tile_bytes = (size_t)(g->tile * g->tile) * t->px;
  for (int L = g->task_levels; L < g->n; L++)
    if (!(t->t[L] = calloc((size_t)(ts_level_across(g, L) * ts_level_down(g, L)), sizeof **t->t)))
      return ts_fail(err, TS_ERR_NOMEM, "out of memory for the pyramid");
  if (!(t->half = malloc(t->tile_bytes / 4 + t->px * (size_t)g->tile * 2)))
    return ts_fail(err, TS_ERR_NOMEM, "out of memory for the pyramid");
  return ts_encoder_new(output, o, &t->enc, err);
}

void ts_tail_free(ts_tail *t) {
  for (int L = 0; L < TS_MAX_LEVELS; L++) {
    if (!t->t[L]) continue;
    for (int64_t i = 0; i < ts_level_across(t->g, L) * ts_level_down(t->g, L); i++) free(t->t[L][i].px);
    free(t->t[L]);
  }
  for (int64_t i = 0; i < t->npool; i++) free(t->pool[i]);
  free(t->pool);
  free(t->half);
  free(t->log);
  ts_encoder_free(&t->enc);
  memset(t, 0, sizeof *t);
}

/* A tile is done: write it, give its buffer back, and halve it into the
 * level above. */
static ts_status complete(ts_tail *t, int L, int64_t tx, int64_t ty, ts_error *err) {
  const int64_t T = t->g->tile, across = ts_level_across(t->g, L);
  ts_tail_tile *tt = &t->t[L][ty * across + tx];
  ts_rect r = {tx * T, ty * T, T, T};
  if (r.x + r.w > t->g->w[L]) r.w = t->g->w[L] - r.x;
  if (r.y + r.h > t->g->h[L]) r.h = t->g->h[L] - r.y;
  const void *data;
  size_t size;
  ts_status st = ts_encoder_encode(t->enc, L, r, tt->px, T * (int64_t)t->px, &data, &size, err);
  if (st == TS_OK) st = ts_writer_write_encoded(t->writer, L, r, data, size, err);
  if (st) return st;
  t->written++;
  if (t->nlog == t->caplog) {
    int64_t cap = 2 * t->caplog + 16;
    struct ts_tail_write *lg = realloc(t->log, (size_t)cap * sizeof *lg);
    if (!lg) return ts_fail(err, TS_ERR_NOMEM, "out of memory for the pyramid");
    t->log = lg, t->caplog = cap;
  }
  t->log[t->nlog++] = (struct ts_tail_write){L, r.x, r.y, size, ts_crc32(data, size)};
  if (L + 1 < t->g->n) {
    ts_image src = ts_image_packed(tt->px, r.w, r.h, t->channels, t->dtype);
    src.stride = T * (int64_t)t->px;
    ts_image half = ts_image_packed(t->half, (r.w + 1) / 2, (r.h + 1) / 2, t->channels, t->dtype);
    ts_downsample_image(&src, &half, t->mode);
    ts_rect up = {r.x / 2, r.y / 2, half.w, half.h};
    st = ts_tail_add(t, L + 1, up, half.data, half.stride, err);
  }
  /* the buffer goes back to the pool (the level above is done with t->half) */
  unsigned char **pool = realloc(t->pool, (size_t)(t->npool + 1) * sizeof *pool);
  if (pool) t->pool = pool, t->pool[t->npool++] = tt->px;
  else free(tt->px);
  tt->px = NULL;
  return st;
}

ts_status ts_tail_add(ts_tail *t, int L, ts_rect r, const void *src, int64_t stride, ts_error *err) {
  const int64_t T = t->g->tile, across = ts_level_across(t->g, L);
  for (int64_t ty = r.y / T; ty <= (r.y + r.h - 1) / T; ty++)
    for (int64_t tx = r.x / T; tx <= (r.x + r.w - 1) / T; tx++) {
      ts_tail_tile *tt = &t->t[L][ty * across + tx];
      if (!tt->px) {
        tt->px = t->npool ? t->pool[--t->npool] : malloc(t->tile_bytes);
        if (!tt->px) return ts_fail(err, TS_ERR_NOMEM, "out of memory for the pyramid");
        tt->filled = 0;
      }
      /* the part of r in this tile */
      const int64_t x0 = r.x > tx * T ? r.x : tx * T, y0 = r.y > ty * T ? r.y : ty * T;
      const int64_t x1 = r.x + r.w < (tx + 1) * T ? r.x + r.w : (tx + 1) * T;
      const int64_t y1 = r.y + r.h < (ty + 1) * T ? r.y + r.h : (ty + 1) * T;
      for (int64_t y = y0; y < y1; y++)
        memcpy(tt->px + ((y - ty * T) * T + (x0 - tx * T)) * (int64_t)t->px,
               (const unsigned char *)src + (y - r.y) * stride + (x0 - r.x) * (int64_t)t->px,
               (size_t)(x1 - x0) * t->px);
      tt->filled += (x1 - x0) * (y1 - y0);
      const int64_t tw = ((tx + 1) * T < t->g->w[L] ? T : t->g->w[L] - tx * T);
      const int64_t th = ((ty + 1) * T < t->g->h[L] ? T : t->g->h[L] - ty * T);
      if (tt->filled == tw * th) {
        ts_status st = complete(t, L, tx, ty, err);
        if (st) return st;
      }
    }
  return TS_OK;
}
