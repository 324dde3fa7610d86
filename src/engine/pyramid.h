/* The levels of a pyramid that no task makes alone (ts_levels.task_levels
 * and up) are tasks of their own: one per output tile, computed and
 * compressed by workers like any other. Each task's result carries its
 * core (or its tile) halved, a piece of the level above; the owner
 * gathers the pieces of each upper tile (ts_tail), and the tile's task is
 * ready once all of them are in.
 *
 * The task sequence (ts_tile_seq) fixes where each upper tile's task
 * stands: TS_TAIL_DELAY positions after the last task it needs, so that by
 * the time the loops reach it the pieces are usually in; the loops wait
 * when they are not (kind.h: ready). The sequence is the same on every
 * rank and for any ranks and threads, and the ordered store writes in it,
 * so the file is too. The owner holds only the upper tiles whose task has
 * not been stored: about a row of them per level. Not thread-safe: the
 * loops call it under their store lock. */
#ifndef TS_ENGINE_PYRAMID_H
#define TS_ENGINE_PYRAMID_H

#include "core/blob.h"
#include "tessera/io.h"
#include "tessera/partition.h"

#define TS_TAIL_DELAY 32

typedef struct ts_tile_seq {
  int64_t n;              /* tasks: the grid's and the upper tiles' */
  int64_t *item;          /* per task: >= 0 a grid task, else -1 - an upper tile's id */
  int64_t base[TS_MAX_LEVELS]; /* id of level L's first tile (row-major) */
  const ts_levels *g;
} ts_tile_seq;

ts_status ts_tile_seq_build(ts_tile_seq *s, const ts_grid *grid, const ts_levels *g, ts_error *err);
void ts_tile_seq_free(ts_tile_seq *s);
/* Task t: its grid task (>= 0), or -1 and the upper tile's level and rect. */
int64_t ts_tile_seq_at(const ts_tile_seq *s, int64_t t, int *level, ts_rect *r);

typedef struct ts_tail_tile {
  unsigned char *px; /* tile x tile pixels, packed */
  int64_t filled;    /* pixels in so far */
} ts_tail_tile;

typedef struct ts_tail {
  const ts_levels *g;
  ts_dtype dtype;
  int channels;
  size_t px, tile_bytes;
  ts_tail_tile *t[TS_MAX_LEVELS]; /* per level >= task_levels: across x down */
  unsigned char **pool;           /* free tile buffers, reused warm */
  int64_t npool;
} ts_tail;

ts_status ts_tail_init(ts_tail *t, const ts_levels *g, ts_dtype dtype, int channels, ts_error *err);
void ts_tail_free(ts_tail *t);
/* Pixels of level L (r in that level's coordinates, src with its stride). */
ts_status ts_tail_add(ts_tail *t, int L, ts_rect r, const void *src, int64_t stride, ts_error *err);
/* Has the tile of level L at r all its pieces? */
int ts_tail_ready(const ts_tail *t, int L, ts_rect r);
/* Its pixels (tile x tile, packed), appended to b: the task's payload. */
ts_status ts_tail_payload(const ts_tail *t, int L, ts_rect r, ts_blob *b, ts_error *err);
/* Its task is stored: the buffer goes back to the pool. */
void ts_tail_done(ts_tail *t, int L, ts_rect r);
/* The tiles still held, for a checkpoint; and setting them again on
 * --resume. */
ts_status ts_tail_snapshot(void *tail, ts_blob *out, ts_error *err);
ts_status ts_tail_restore(ts_tail *t, const unsigned char *p, size_t n, ts_error *err);

#endif
