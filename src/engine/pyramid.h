/* The levels of a pyramid that no task makes alone (ts_levels.task_levels
 * and up), built on the owner as the tasks' pieces arrive, in task order:
 * a level's tile is encoded and written as soon as every piece it covers
 * is in, then halved into the level above. Only tiles still waiting for
 * pieces are held: about a row of them per level, for the walk's stripes.
 * Not thread-safe: the ordered store calls it under its lock. */
#ifndef TS_ENGINE_PYRAMID_H
#define TS_ENGINE_PYRAMID_H

#include "core/blob.h"
#include "tessera/io.h"
#include "tessera/partition.h"

typedef struct ts_tail_tile {
  unsigned char *px; /* tile x tile pixels, packed */
  int64_t filled;    /* pixels in so far */
} ts_tail_tile;

typedef struct ts_tail {
  const ts_levels *g;
  ts_dtype dtype;
  int channels;
  ts_downsample mode;
  ts_writer *writer;
  ts_encoder *enc;
  size_t px, tile_bytes;
  ts_tail_tile *t[TS_MAX_LEVELS]; /* per level >= task_levels: across x down */
  unsigned char **pool;           /* free tile buffers, reused warm */
  int64_t npool;
  unsigned char *half;            /* a tile halved */
  int64_t written;                /* tail tiles written */
  struct ts_tail_write {          /* those written since the owner last drained them (journal) */
    int level;
    int64_t x, y;
    uint64_t size;
    uint32_t crc;
  } *log;
  int64_t nlog, caplog;
} ts_tail;

ts_status ts_tail_init(ts_tail *t, const ts_levels *g, ts_dtype dtype, int channels, ts_downsample mode,
                       ts_writer *writer, const char *output, const ts_writer_options *o, ts_error *err);
/* Pixels of level L (r in that level's coordinates, src with its stride). */
ts_status ts_tail_add(ts_tail *t, int L, ts_rect r, const void *src, int64_t stride, ts_error *err);
void ts_tail_free(ts_tail *t);
/* The unfinished tiles, for a checkpoint; and setting them again on
 * --resume (the replay writes the finished ones from the journal). */
ts_status ts_tail_snapshot(void *tail, ts_blob *out, ts_error *err);
ts_status ts_tail_restore(ts_tail *t, const unsigned char *p, size_t n, ts_error *err);

#endif
