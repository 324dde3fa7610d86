/* The output side of a task, shared by the local engine, MPI workers and
 * rank 0: a core's output tiles encoded into one blob (on the rank and
 * thread that computed them), and the ordered store of blobs that keeps
 * the file's bytes independent of arrival order. */
#ifndef TS_ENGINE_ORDER_H
#define TS_ENGINE_ORDER_H

#include "core/blob.h"
#include "engine/progress.h"
#include "tessera/io.h"
#include "tessera/job.h"
#include "tessera/kernel.h"
#include "tessera/partition.h"

/* A task's result (a ts_blob): [uint64 size][uint64 CRC-32][bytes] per
 * output tile (size | TS_TILE_PUT and no bytes: the encoder stored it
 * itself, ts_encoder_put), level 0's first, then each level the task makes itself;
 * with a pyramid taller than that, one more record: the core at level
 * task_levels, raw, a piece of an upper tile (pyramid.h). An upper tile's
 * task: its one tile, then itself halved (but from the top level). */

#define TS_TILE_PUT ((uint64_t)1 << 63)

/* A task's core at each level it makes (core[0]: level 0's), and their
 * pixels (im[L], packed; set by the caller). */
typedef struct ts_core_levels {
  int n;
  ts_rect core[TS_MAX_LEVELS];
  ts_image im[TS_MAX_LEVELS];
} ts_core_levels;
/* The rects (g NULL: flat, level 0 only). */
void ts_core_levels_of(const ts_levels *g, ts_rect core, ts_core_levels *c);

/* Encode one tile (level L, rect r, pixels at src) and append its record
 * to b: stored by the encoder itself when it puts its tiles. */
ts_status ts_encode_tile(ts_encoder *enc, int L, ts_rect r, const void *src, int64_t stride, ts_blob *b,
                         ts_error *err);
/* Encode the output tiles (out_tile-sized, on each level's tile grid) of
 * every level of c, appending to b. With n > 1 encoders the tiles are
 * spread over n OpenMP threads (encs[i] and parts[i] per thread) and
 * joined in order: the same bytes for any n. */
ts_status ts_encode_core(ts_encoder **encs, ts_blob *parts, int n, const ts_core_levels *c, int64_t out_tile,
                         ts_blob *b, ts_error *err);

/* The per-thread tools of a rank that computes tasks (a worker, or rank 0
 * when idle): scratch, a tile encoder and an encoding buffer per thread,
 * allocated once for the run. */
typedef struct ts_tile_threads {
  int n;
  ts_scratch **scratch;
  ts_encoder **encs;
  ts_blob *parts;
} ts_tile_threads;

ts_status ts_tile_threads_init(ts_tile_threads *c, int n, const char *output, const ts_writer_options *o, ts_error *err);
void ts_tile_threads_free(ts_tile_threads *c);

/* Ordered store. Not thread-safe: the caller serializes. A ring of
 * `nslots` pending results indexed by task % nslots: tasks in flight lie in
 * [next, next + nslots), so each has its own slot and a put is O(1). The
 * slots' buffers come from a pool and go back to it once stored, so the
 * memory held is that of the results actually waiting, and it is reused
 * (warm) rather than first-touched again. */
struct ts_tail;
struct ts_tile_seq;
typedef struct ts_order {
  ts_writer *writer;
  const ts_levels *levels; /* NULL: flat */
  const struct ts_tile_seq *seq; /* a pyramid with upper levels: what each task is (NULL: grid tasks) */
  struct ts_tail *tail;    /* the upper levels' pieces (NULL: none) */
  int replaying;           /* --resume: results carry no pyramid piece, and no checkpoint is taken */
  int in_place;            /* ... and their tiles are already in the store (adopted, not written) */
  const ts_grid *grid;
  int64_t out_tile;
  ts_progress *progress; /* may be NULL */
  int64_t next;          /* the next task to store */
  int64_t nslots;
  struct ts_order_slot {
    int64_t task; /* -1 = free */
    ts_blob b;
  } *slots;
  ts_blob *pool; /* free buffers */
  int64_t npool, cappool;
  struct ts_journal *journal; /* NULL: no checkpoints */
  struct ts_jtile *jt;        /* one task's tile locations */
  int64_t njt;
} ts_order;

ts_status ts_order_init(ts_order *o, ts_writer *w, const ts_grid *g, const ts_levels *levels,
                        const struct ts_tile_seq *seq, int64_t out_tile, ts_progress *progress, int64_t nslots,
                        ts_error *err);
/* How many output tiles task t's result holds. */
int64_t ts_order_result_tiles(const ts_order *o, int64_t t);
void ts_order_free(ts_order *o);
/* Hand over task t's blob: stored now if it is next (then every waiting
 * one that follows), else copied into its slot. *placed = 0 means its slot
 * is still taken (t is too far ahead): call again after another put. */
ts_status ts_order_put(ts_order *o, int64_t t, const ts_blob *b, int *placed, ts_error *err);


#endif
