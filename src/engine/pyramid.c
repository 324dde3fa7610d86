/* The pyramid's upper levels as tasks (pyramid.h). */
#include <stdlib.h>
#include <string.h>
#include "engine/pyramid.h"

/* ---- the sequence ---- */

typedef struct keyed {
  int64_t key, kind, id; /* kind 0: grid task id; 1 + L: upper tile id of level L */
} keyed;

static int by_key(const void *a, const void *b) {
  const keyed *x = a, *y = b;
  if (x->key != y->key) return x->key < y->key ? -1 : 1;
  if (x->kind != y->kind) return x->kind < y->kind ? -1 : 1;
  return x->id < y->id ? -1 : x->id > y->id;
}

/* Grid task g's key is g; an upper tile's is the largest key of the tasks
 * it needs plus the delay: it comes after all of them, at least
 * TS_TAIL_DELAY tasks later while there are that many. */
ts_status ts_tile_seq_build(ts_tile_seq *s, const ts_grid *grid, const ts_levels *g, ts_error *err) {
  memset(s, 0, sizeof *s);
  s->g = g;
  int64_t tiles = 0;
  for (int L = g->task_levels; L < g->n; L++) s->base[L] = tiles, tiles += ts_level_across(g, L) * ts_level_down(g, L);
  int64_t *key = malloc((size_t)(tiles + 1) * sizeof *key);
  keyed *all = malloc((size_t)(grid->ntasks + tiles) * sizeof *all);
  s->item = malloc((size_t)(grid->ntasks + tiles) * sizeof *s->item);
  if (!key || !all || !s->item) {
    free(key), free(all);
    ts_tile_seq_free(s);
    return ts_fail(err, TS_ERR_NOMEM, "out of memory for the pyramid's tasks");
  }
  for (int64_t i = 0; i < tiles; i++) key[i] = -1;
  const int tl = g->task_levels;
  const int64_t T = g->tile;
  for (int64_t t = 0; t < grid->ntasks; t++) { /* each core's piece lands in these tiles */
    const ts_rect r = ts_level_rect(g, ts_grid_core(grid, t), tl);
    for (int64_t ty = r.y / T; ty <= (r.y + r.h - 1) / T; ty++)
      for (int64_t tx = r.x / T; tx <= (r.x + r.w - 1) / T; tx++) {
        int64_t *k = &key[s->base[tl] + ty * ts_level_across(g, tl) + tx];
        if (t + TS_TAIL_DELAY > *k) *k = t + TS_TAIL_DELAY;
      }
    all[t] = (keyed){t, 0, t};
  }
  int64_t n = grid->ntasks;
  for (int L = tl; L < g->n; L++)
    for (int64_t i = 0; i < ts_level_across(g, L) * ts_level_down(g, L); i++) {
      const int64_t id = s->base[L] + i, k = key[id];
      all[n++] = (keyed){k, 1 + L, id};
      if (L + 1 < g->n) { /* its halved tile is a piece of the tile above */
        const int64_t tx = i % ts_level_across(g, L), ty = i / ts_level_across(g, L);
        int64_t *up = &key[s->base[L + 1] + (ty / 2) * ts_level_across(g, L + 1) + tx / 2];
        if (k + TS_TAIL_DELAY > *up) *up = k + TS_TAIL_DELAY;
      }
    }
  qsort(all, (size_t)n, sizeof *all, by_key);
  for (int64_t i = 0; i < n; i++) s->item[i] = all[i].kind == 0 ? all[i].id : -1 - all[i].id;
  s->n = n;
  free(key);
  free(all);
  return TS_OK;
}

void ts_tile_seq_free(ts_tile_seq *s) {
  free(s->item);
  s->item = NULL;
  s->n = 0;
}

int64_t ts_tile_seq_at(const ts_tile_seq *s, int64_t t, int *level, ts_rect *r) {
  const int64_t v = s->item[t];
  if (v >= 0) return v;
  const int64_t id = -1 - v;
  int L = s->g->n - 1;
  while (L > s->g->task_levels && s->base[L] > id) L--;
  const int64_t i = id - s->base[L], across = ts_level_across(s->g, L), T = s->g->tile;
  *level = L;
  *r = (ts_rect){(i % across) * T, (i / across) * T, T, T};
  if (r->x + r->w > s->g->w[L]) r->w = s->g->w[L] - r->x;
  if (r->y + r->h > s->g->h[L]) r->h = s->g->h[L] - r->y;
  return -1;
}

/* ---- the upper tiles ---- */

ts_status ts_tail_init(ts_tail *t, const ts_levels *g, ts_dtype dtype, int channels, ts_error *err) {
  memset(t, 0, sizeof *t);
  t->g = g;
  t->dtype = dtype;
  t->channels = channels;
  t->px = ts_dtype_size(dtype) * (size_t)channels;
  t->tile_bytes = (size_t)(g->tile * g->tile) * t->px;
  for (int L = g->task_levels; L < g->n; L++)
    if (!(t->t[L] = calloc((size_t)(ts_level_across(g, L) * ts_level_down(g, L)), sizeof **t->t)))
      return ts_fail(err, TS_ERR_NOMEM, "out of memory for the pyramid");
  return TS_OK;
}

void ts_tail_free(ts_tail *t) {
  for (int L = 0; L < TS_MAX_LEVELS; L++) {
    if (!t->t[L]) continue;
    for (int64_t i = 0; i < ts_level_across(t->g, L) * ts_level_down(t->g, L); i++) free(t->t[L][i].px);
    free(t->t[L]);
  }
  for (int64_t i = 0; i < t->npool; i++) free(t->pool[i]);
  free(t->pool);
  memset(t, 0, sizeof *t);
}

static ts_tail_tile *tile_at(const ts_tail *t, int L, int64_t x, int64_t y) {
  return &t->t[L][(y / t->g->tile) * ts_level_across(t->g, L) + x / t->g->tile];
}

ts_status ts_tail_add(ts_tail *t, int L, ts_rect r, const void *src, int64_t stride, ts_error *err) {
  const int64_t T = t->g->tile;
  for (int64_t ty = r.y / T; ty <= (r.y + r.h - 1) / T; ty++)
    for (int64_t tx = r.x / T; tx <= (r.x + r.w - 1) / T; tx++) {
      ts_tail_tile *tt = tile_at(t, L, tx * T, ty * T);
      if (!tt->px) {
        tt->px = t->npool ? t->pool[--t->npool] : malloc(t->tile_bytes);
        if (!tt->px) return ts_fail(err, TS_ERR_NOMEM, "out of memory for the pyramid");
        memset(tt->px, 0, t->tile_bytes); /* the padding of edge tiles: the payload's bytes are defined */
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
    }
  return TS_OK;
}

int ts_tail_ready(const ts_tail *t, int L, ts_rect r) {
  const ts_tail_tile *tt = tile_at(t, L, r.x, r.y);
  return tt->px && tt->filled == r.w * r.h;
}

ts_status ts_tail_payload(const ts_tail *t, int L, ts_rect r, ts_blob *b, ts_error *err) {
  const ts_tail_tile *tt = tile_at(t, L, r.x, r.y);
  if (!tt->px || tt->filled != r.w * r.h)
    return ts_fail(err, TS_ERR_INTERNAL, "pyramid tile (%lld, %lld) of level %d read before its pieces are in",
                   (long long)r.x, (long long)r.y, L);
  return ts_blob_append(b, tt->px, t->tile_bytes) ? ts_fail(err, TS_ERR_NOMEM, "out of memory for a task") : TS_OK;
}

void ts_tail_done(ts_tail *t, int L, ts_rect r) {
  ts_tail_tile *tt = tile_at(t, L, r.x, r.y);
  if (!tt->px) return;
  unsigned char **pool = realloc(t->pool, (size_t)(t->npool + 1) * sizeof *pool);
  if (pool) t->pool = pool, t->pool[t->npool++] = tt->px;
  else free(tt->px);
  tt->px = NULL;
  tt->filled = 0;
}

/* A snapshot: per held tile [int64 level][int64 index][int64 filled][pixels]. */
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
        head[1] >= ts_level_across(t->g, L) * ts_level_down(t->g, L) || head[2] < 0 || head[2] > t->g->tile * t->g->tile)
      return ts_fail(err, TS_ERR_FORMAT, "the journal's pyramid snapshot names no tile of this job");
    ts_tail_tile *tt = &t->t[L][head[1]];
    if (!tt->px && !(tt->px = malloc(t->tile_bytes))) return ts_fail(err, TS_ERR_NOMEM, "out of memory for the pyramid");
    memcpy(tt->px, p + at + sizeof head, t->tile_bytes);
    tt->filled = head[2];
  }
  return TS_OK;
}
