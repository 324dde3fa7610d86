/* A validated job, ready to run: input open, pipeline prepared for its
 * dtype and channels, task grid built, output open under its temporary
 * name. Every check that can fail on bad input happens here, before any
 * task runs. Shared by the local engine and MPI rank 0. */
#ifndef TS_ENGINE_PLAN_H
#define TS_ENGINE_PLAN_H

#include "tessera/tessera.h"

#include "core/clock.h"
#include "engine/journal.h"

typedef struct ts_plan {
  const ts_job *job;
  ts_reader *reader;
  ts_pipeline *pipe;
  ts_grid grid;
  int64_t out_tile;
  ts_levels levels; /* the output's resolutions (levels.n 1: flat) */
  ts_reduce reduce; /* how a level is made from the one below */
  ts_writer_options wopts;
  char *description;  /* the pipeline's text made well-formed UTF-8 (wopts.description) */
  ts_image_meta meta; /* the input's metadata that holds for the output (wopts.meta) */
  ts_writer *writer;
  /* checkpoints and --resume (resume.c) */
  ts_journal *journal;      /* NULL: this output format cannot be resumed */
  ts_journal_state saved;   /* --resume: what the previous run's journal said */
  char *prev_partial, *prev_journal; /* the previous run's files, until replayed */
  int64_t resumed;          /* tasks replayed from the previous run */
  int passes_saved;         /* statistics passes in the journal */
} ts_plan;

/* Validate and open everything. On error, nothing is left behind. */
ts_status ts_plan_open(ts_plan *p, const ts_job *job, ts_error *err);
/* resume.c. Before the writer opens: a leftover OUT.partial / OUT.journal
 * is refused (naming --resume and --force), dropped (--force), or with
 * --resume checked against this job's fingerprint and set aside for the
 * replay. Then the writer and a new journal open. */
ts_status ts_plan_open_output(ts_plan *p, ts_error *err);
struct ts_order;
/* --resume: store the previous run's journaled tasks again, from its file
 * (checked by CRC; the first bad one ends the replay), through o, which
 * journals them anew; then drop the previous files. Sets p->resumed. */
ts_status ts_plan_replay(ts_plan *p, struct ts_order *o, ts_error *err);
/* A statistics pass's merged partial saved by the previous run (NULL: none),
 * and saving this run's. */
const ts_jpass *ts_plan_saved_pass(const ts_plan *p, int64_t kernel, int64_t stage);
ts_status ts_plan_pass_done(ts_plan *p, int64_t kernel, int64_t stage, const double *v, int64_t n, ts_error *err);
/* The end: complete and rename the output, drop the journal. */
ts_status ts_plan_finish(ts_plan *p, ts_error *err);
/* The end of a run stopped early after `written` tasks (in_stats: inside a
 * statistics pass): checkpoint and keep OUT.partial and OUT.journal for
 * --resume; records the stop in stats. Returns TS_STOPPED or an error. */
ts_status ts_plan_stopped(ts_plan *p, int64_t written, int in_stats, ts_run_stats *stats, ts_error *err);

/* Size the reader's cache for the grid's walk order. */
void ts_plan_size_cache(ts_reader *r, const ts_grid *g);
/* Close what is open; drops the output unless it was finished. */
void ts_plan_close(ts_plan *p);
/* The output tile for a job: its own, or the largest of 256..16 dividing
 * the task tile. */
int64_t ts_plan_out_tile(const ts_job *job);

#endif
