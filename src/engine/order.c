/* Encoding a task's output tiles, and storing tasks in order. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "engine/order.h"
#include "engine/journal.h"
#include "engine/pyramid.h"




ts_status ts_tile_threads_init(ts_tile_threads *c, int n, const char *output, const ts_writer_options *o, ts_error *err) {
  memset(c, 0, sizeof *c);
  c->scratch = calloc((size_t)n, sizeof *c->scratch);
  c->encs = calloc((size_t)n, sizeof *c->encs);
  c->parts = calloc((size_t)n, sizeof *c->parts);
  if (!c->scratch || !c->encs || !c->parts) {
    ts_tile_threads_free(c);
    return ts_fail(err, TS_ERR_NOMEM, "out of memory for %d threads' buffers", n);
  }
  c->n = n;
  for (int i = 0; i < n; i++) {
    if (!(c->scratch[i] = ts_scratch_new())) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
    ts_status st = ts_encoder_new(output, o, &c->encs[i], err);
    if (st) return st;
  }
  return TS_OK;
}

void ts_tile_threads_free(ts_tile_threads *c) {
  for (int i = 0; i < c->n; i++) {
    if (c->scratch) ts_scratch_free(&c->scratch[i]);
    if (c->encs) ts_encoder_free(&c->encs[i]);
    if (c->parts) ts_blob_free(&c->parts[i]);
  }
  free(c->scratch);
  free(c->encs);
  free(c->parts);
  memset(c, 0, sizeof *c);
}

/* Output tile i (row-major) of a core. */
static ts_rect out_tile(ts_rect core, int64_t T, int64_t i) {
  const int64_t across = (core.w + T - 1) / T;
  ts_rect r = {core.x + (i % across) * T, core.y + (i / across) * T, T, T};
  if (r.x + r.w > core.x + core.w) r.w = core.x + core.w - r.x;
  if (r.y + r.h > core.y + core.h) r.h = core.y + core.h - r.y;
  return r;
}

static int64_t out_tiles(ts_rect core, int64_t T) {
  return ((core.w + T - 1) / T) * ((core.h + T - 1) / T);
}

/* Tile i of a task's output over its levels: level 0's tiles, then
 * level 1's, ... (*L and the level's core rect set). */
static ts_rect level_tile(const ts_core_levels *c, int64_t T, int64_t i, int *L) {
  for (*L = 0; *L < c->n - 1 && i >= out_tiles(c->core[*L], T); (*L)++) i -= out_tiles(c->core[*L], T);
  return out_tile(c->core[*L], T, i);
}

static int64_t level_tiles(const ts_core_levels *c, int64_t T) {
  int64_t n = 0;
  for (int L = 0; L < c->n; L++) n += out_tiles(c->core[L], T);
  return n;
}

ts_status ts_encode_tile(ts_encoder *enc, int L, ts_rect r, const void *src, int64_t stride, ts_blob *b,
                         ts_error *err) {
  /* [u64 size][u64 crc][bytes]; the encoder writes the bytes in place
   * when it can (no copy of every tile from its buffer into the result) */
  uint64_t head[2];
  const size_t at = b->size, bound = ts_encoder_bound(enc);
  if (bound && ts_blob_reserve(b, at + sizeof head + bound))
    return ts_fail(err, TS_ERR_NOMEM, "out of memory for encoded tiles");
  unsigned char *dst = bound ? b->p + at + sizeof head : NULL;
  const void *data;
  size_t size;
  ts_status st = ts_encoder_encode(enc, L, r, src, stride, dst, bound, &data, &size, err);
  if (st) return st;
  /* the CRC the journal needs is computed here, in parallel where the
   * tiles are encoded, not at the serial store */
  head[0] = size;
  head[1] = ts_crc32(data, size);
  const int put = ts_encoder_puts(enc);
  if (put && (st = ts_encoder_put(enc, L, r, data, size, err))) return st;
  if (put) head[0] |= TS_TILE_PUT;
  if (data == dst && !put) { /* in place already: the head before it */
    memcpy(b->p + at, head, sizeof head);
    b->size = at + sizeof head + size;
    return TS_OK;
  }
  if (ts_blob_append(b, head, sizeof head) || (!put && ts_blob_append(b, data, size)))
    return ts_fail(err, TS_ERR_NOMEM, "out of memory for encoded tiles");
  return TS_OK;
}

/* Encode tiles [i0, i1) of the core into b (appending). */
static ts_status encode_range(ts_encoder *enc, const ts_core_levels *c, int64_t T, int64_t i0, int64_t i1, ts_blob *b,
                              ts_error *err) {
  for (int64_t i = i0; i < i1; i++) {
    int L;
    ts_rect r = level_tile(c, T, i, &L);
    const ts_image *out = &c->im[L];
    ts_status st = ts_encode_tile(enc, L, r, ts_image_at(out, r.x - c->core[L].x, r.y - c->core[L].y), out->stride,
                                  b, err);
    if (st) return st;
  }
  return TS_OK;
}

ts_status ts_encode_core(ts_encoder **encs, ts_blob *parts, int n, const ts_core_levels *c, int64_t out_tile,
                         ts_blob *b, ts_error *err) {
  const int64_t count = level_tiles(c, out_tile);
  if (n <= 1 || count == 1) return encode_range(encs[0], c, out_tile, 0, count, b, err);
  if (n > count) n = (int)count;
  ts_status st = TS_OK;
#pragma omp parallel num_threads(n)
  {
    int i = omp_get_thread_num(), nt = omp_get_num_threads();
    ts_error e = {0};
    parts[i].size = 0;
    ts_status s = encode_range(encs[i], c, out_tile, count * i / nt, count * (i + 1) / nt, &parts[i], &e);
#pragma omp critical(ts_encode_error)
    if (s && st == TS_OK) st = ts_fail(err, s, "%s", e.msg);
  }
  for (int i = 0; st == TS_OK && i < n; i++)
    if (ts_blob_append(b, parts[i].p, parts[i].size))
      st = ts_fail(err, TS_ERR_NOMEM, "out of memory for encoded tiles");
  return st;
}

/* What task t's result holds: the levels of a grid task's core (g >= 0),
 * or one upper tile (*L, *up); and the piece of the level above it. */
static int64_t result_of(const ts_order *o, int64_t t, ts_core_levels *c, int *L, ts_rect *up) {
  const int64_t g = o->seq ? ts_tile_seq_at(o->seq, t, L, up) : t;
  if (g >= 0) {
    ts_core_levels_of(o->levels, ts_grid_core(o->grid, g), c);
  } else { /* levels below L hold nothing: level_tile skips them */
    memset(c, 0, sizeof *c);
    c->n = *L + 1;
    c->core[*L] = *up;
  }
  return g;
}

int64_t ts_order_result_tiles(const ts_order *o, int64_t t) {
  ts_core_levels c;
  int L;
  ts_rect up;
  result_of(o, t, &c, &L, &up);
  return level_tiles(&c, o->out_tile);
}

/* Store task t's encoded tiles; with a journal, note where they went and
 * checkpoint when one is due. Then its piece of the pyramid above. */
static ts_status store(ts_order *o, int64_t t, const ts_blob *b, ts_error *err) {
  const unsigned char *p = b->p;
  ts_core_levels c;
  int Lt = 0;
  ts_rect up = {0};
  const int64_t g = result_of(o, t, &c, &Lt, &up);
  const ts_rect core = g >= 0 ? c.core[0] : (ts_rect){0};
  const int64_t n = level_tiles(&c, o->out_tile);
  if (o->journal && n > o->njt) {
    ts_jtile *jt = realloc(o->jt, (size_t)n * sizeof *jt);
    if (!jt) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
    o->jt = jt;
    o->njt = n;
  }
  for (int64_t i = 0; i < n; i++) {
    uint64_t head[2]; /* size, crc */
    memcpy(head, p, sizeof head);
    const int put = (head[0] & TS_TILE_PUT) != 0; /* in the store already */
    const uint64_t size = head[0] & ~TS_TILE_PUT;
    int L;
    ts_rect r = level_tile(&c, o->out_tile, i, &L);
    ts_status st = put || o->in_place ? ts_writer_adopt(o->writer, L, r, size, err)
                                      : ts_writer_write_encoded(o->writer, L, r, p + sizeof head, size, err);
    if (st == TS_OK && o->journal) {
      st = ts_writer_locate(o->writer, L, r, &o->jt[i].off, &o->jt[i].size, err);
      if (st == TS_OK && o->jt[i].size != size)
        st = ts_fail(err, TS_ERR_INTERNAL, "tile at (%lld, %lld): %llu bytes stored, %llu given", (long long)r.x,
                     (long long)r.y, (unsigned long long)o->jt[i].size, (unsigned long long)size);
      o->jt[i].crc = (uint32_t)head[1];
    }
    if (st) return st;
    p += sizeof head + (put ? 0 : size);
  }
  if (o->tail && !o->replaying) {
    /* the piece: a grid task's core at the first upper level, or an upper
     * tile halved (none from the top) */
    const int L = g >= 0 ? o->levels->task_levels : Lt + 1;
    if (g < 0) ts_tail_done(o->tail, Lt, up);
    if (L < o->levels->n) {
      const ts_rect r = g >= 0 ? ts_level_rect(o->levels, core, L)
                               : (ts_rect){up.x / 2, up.y / 2, (up.w + 1) / 2, (up.h + 1) / 2};
      uint64_t head[2];
      memcpy(head, p, sizeof head);
      if (head[0] != (uint64_t)(r.w * r.h) * o->tail->px)
        return ts_fail(err, TS_ERR_INTERNAL, "task %lld: a pyramid piece of %llu bytes, expected %lldx%lld",
                       (long long)t, (unsigned long long)head[0], (long long)r.w, (long long)r.h);
      ts_status st = ts_tail_add(o->tail, L, r, p + sizeof head, r.w * (int64_t)o->tail->px, err);
      if (st) return st;
    }
  }
  if (o->journal) {
    ts_status st = ts_journal_task(o->journal, t, o->jt, n, err);
    if (st == TS_OK && !o->replaying && ts_journal_due(o->journal))
      st = ts_journal_checkpoint(o->journal, o->writer, err);
    if (st) return st;
  }
  if (o->progress) ts_progress_tick(o->progress, core.w * core.h);
  return TS_OK;
}

void ts_core_levels_of(const ts_levels *g, ts_rect core, ts_core_levels *c) {
  c->n = g ? g->task_levels : 1;
  for (int L = 0; L < c->n; L++) c->core[L] = L ? ts_level_rect(g, core, L) : core;
}

ts_status ts_order_init(ts_order *o, ts_writer *w, const ts_grid *g, const ts_levels *levels, const ts_tile_seq *seq,
                        int64_t out_tile, ts_progress *progress, int64_t nslots, ts_error *err) {
  memset(o, 0, sizeof *o);
  o->levels = levels;
  o->seq = seq;
  o->writer = w;
  o->grid = g;
  o->out_tile = out_tile;
  o->progress = progress;
  o->nslots = nslots < 1 ? 1 : nslots;
  o->slots = calloc((size_t)o->nslots, sizeof *o->slots);
  if (!o->slots) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  for (int64_t i = 0; i < o->nslots; i++) o->slots[i].task = -1;
  return TS_OK;
}

void ts_order_free(ts_order *o) {
  for (int64_t i = 0; o->slots && i < o->nslots; i++) ts_blob_free(&o->slots[i].b);
  for (int64_t i = 0; i < o->npool; i++) ts_blob_free(&o->pool[i]);
  free(o->slots);
  free(o->pool);
  free(o->jt);
  o->jt = NULL;
  o->slots = NULL;
  o->pool = NULL;
  o->npool = o->cappool = 0;
}

/* A slot's buffer goes back to the pool once stored. */
static void recycle(ts_order *o, struct ts_order_slot *s) {
  if (o->npool == o->cappool) {
    int64_t cap = o->cappool ? 2 * o->cappool : 8;
    ts_blob *pool = realloc(o->pool, (size_t)cap * sizeof *pool);
    if (!pool) { /* cannot keep it: let it go */
      ts_blob_free(&s->b);
      return;
    }
    o->pool = pool;
    o->cappool = cap;
  }
  o->pool[o->npool++] = s->b;
  memset(&s->b, 0, sizeof s->b);
}

ts_status ts_order_put(ts_order *o, int64_t t, const ts_blob *b, int *placed, ts_error *err) {
  *placed = 1;
  if (t != o->next) {
    struct ts_order_slot *s = &o->slots[t % o->nslots];
    if (s->task >= 0) {
      *placed = 0;
      return TS_OK;
    }
    if (!s->b.p && o->npool > 0) s->b = o->pool[--o->npool]; /* a warm buffer */
    s->b.size = 0;
    if (ts_blob_append(&s->b, b->p, b->size))
      return ts_fail(err, TS_ERR_NOMEM, "out of memory for a pending result");
    s->task = t;
    return TS_OK;
  }
  ts_status st = store(o, t, b, err);
  o->next++;
  while (st == TS_OK) { /* then those waiting for it */
    struct ts_order_slot *s = &o->slots[o->next % o->nslots];
    if (s->task != o->next) break;
    st = store(o, o->next, &s->b, err);
    s->task = -1;
    recycle(o, s);
    o->next++;
  }
  return st;
}

