/* A validated job, ready to run: input open, pipeline prepared for its
 * dtype and channels, task grid built, output open under its temporary
 * name. Every check that can fail on bad input happens here, before any
 * task runs. Shared by the local engine and MPI rank 0. */
#ifndef TS_SCHED_PLAN_H
#define TS_SCHED_PLAN_H

#include "tessera/tessera.h"

typedef struct ts_plan {
  const ts_job *job;
  ts_reader *reader;
  ts_pipeline *pipe;
  ts_grid grid;
  int64_t out_tile;
  ts_writer_options wopts;
  ts_writer *writer;
} ts_plan;

/* Validate and open everything. On error, nothing is left behind. */
ts_status ts_plan_open(ts_plan *p, const ts_job *job, ts_error *err);
/* Size the reader's cache for the grid's walk order. */
void ts_plan_size_cache(ts_reader *r, const ts_grid *g);
/* Close what is open; drops the output unless it was finished. */
void ts_plan_close(ts_plan *p);
/* The output tile for a job: its own, or the largest of 256..16 dividing
 * the task tile. */
int64_t ts_plan_out_tile(const ts_job *job);
double ts_now(void);

#endif
