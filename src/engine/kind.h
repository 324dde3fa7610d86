/* A task kind: one mode of work (tile mode, list mode) behind one table,
 * so that one local loop (engine/local.c), one rank-0 loop (mpi/root.c)
 * and one worker loop (mpi/worker.c) run every kind. As libvips' one
 * threadpool serves every sink, a new mode is a new table here, never a
 * new loop.
 *
 * A job runs as passes: a tile job with global kernels has one statistics
 * pass per stage of each (compute gives a partial, absorb merges it), then
 * the pass that writes; a list job has that one pass. Each pass hands out
 * tasks by position, 0..n-1; the kind maps a position to its task number.
 *
 * Where each call runs:
 * - the owner (rank 0, or the one process): open, start, begin_pass, task,
 *   store, absorb, end_pass, finish, pack. Not thread-safe: the loops call
 *   them under their locks.
 * - a reader (the owner; a worker with --io direct): read. Not thread-safe.
 * - a computing rank (workers; the owner when it computes): prepare,
 *   enter_pass (workers), compute (thread-safe for distinct `thread`),
 *   flush.
 * One ts_kind per rank holds what that rank needs of all of them. */
#ifndef TS_ENGINE_KIND_H
#define TS_ENGINE_KIND_H

#include <stdio.h>
#include "core/blob.h"
#include "tessera/job.h"

typedef struct ts_kind ts_kind;

typedef struct ts_kind_ops {
  const char *name;
  /* ---- the owner ---- */
  /* Before the first pass: size the ordered store for `inflight` results
   * at once and store again what a --resume keeps. */
  ts_status (*start)(ts_kind *k, int64_t inflight, ts_error *err);
  /* Start pass p: *n tasks to run (0: a resume had it done). `announce`
   * (appended) is what computing ranks need to enter the pass. */
  ts_status (*begin_pass)(ts_kind *k, int p, int64_t *n, ts_blob *announce, ts_error *err);
  int64_t (*task)(const ts_kind *k, int64_t pos);
  /* A task's result, in any order. *placed = 0: its turn in the ordered
   * store is not yet free; call again after another store. */
  ts_status (*store)(ts_kind *k, int64_t task, const unsigned char *res, size_t n, int *placed, ts_error *err);
  /* A statistics pass's partial from flush (any rank), merged. */
  ts_status (*absorb)(ts_kind *k, const unsigned char *partial, size_t n, ts_error *err);
  /* The pass's tasks are all stored (or absorbed): resolve, save for resume. */
  ts_status (*end_pass)(ts_kind *k, int p, ts_error *err);
  /* The run's end with status st (TS_STOPPED: stopped early after what
   * was stored): complete or keep or drop the output; fill the kind's
   * figures in stats. Returns the run's status. */
  ts_status (*finish)(ts_kind *k, ts_status st, ts_run_stats *stats, ts_error *err);
  /* What workers need to open their side (the set-up broadcast). */
  ts_status (*pack)(const ts_kind *k, ts_blob *setup, ts_error *err);
  /* ---- a reader ---- */
  /* Append task t's input (its payload) to b. A bad input may become a
   * payload that fails as a task (list mode), so the run goes on. */
  ts_status (*read)(ts_kind *k, int64_t t, ts_blob *b, ts_error *err);
  /* May task t be read now (NULL: always)? A task built from other tasks'
   * results (a pyramid's upper tile) waits until they are stored; the
   * loops ask under their store lock and read it there. */
  int (*ready)(const ts_kind *k, int64_t t);
  /* Is task t's payload the owner's to read even with --io direct (NULL: no)? */
  int (*owner_reads)(const ts_kind *k, int64_t t);
  /* ---- a computing rank ---- */
  /* Per-thread state for `threads` threads (buffers allocated once). */
  ts_status (*prepare)(ts_kind *k, int threads, ts_error *err);
  ts_status (*enter_pass)(ts_kind *k, int p, const unsigned char *announce, size_t n, ts_error *err);
  /* Compute task t from its payload on thread slot `thread`; with
   * nthreads > 1 the task may use that many OpenMP threads (slots
   * 0..nthreads-1). The result (appended to out) goes to store. */
  ts_status (*compute)(ts_kind *k, int thread, int nthreads, int64_t t, const unsigned char *payload, size_t n,
                       ts_blob *out, ts_error *err);
  /* A statistics pass: every thread's partial merged into out (appended;
   * nothing outside statistics passes), and the partials reset. */
  ts_status (*flush)(ts_kind *k, ts_blob *out, ts_error *err);
  void (*close)(ts_kind **k);
} ts_kind_ops;

/* What the loops read of every kind. */
struct ts_kind {
  const ts_kind_ops *ops;
  int passes;           /* statistics passes + 1 */
  int serial_io;        /* read and store share one lock (HDF5 is not thread-safe) */
  int bands;            /* one task may run on several threads (row bands) */
  int64_t max_payload;  /* about the largest payload read makes (batch sizing; a hint) */
  int64_t max_threads;  /* more threads than this would idle (0: any) */
};

/* A kind as the registry knows it. */
typedef struct ts_kind_def {
  const char *name;
  /* Is this job this kind's? */
  int (*claims)(const ts_job *job);
  /* The owner: validate the job, open input and output (nothing is left
   * behind on error). log: progress (NULL: none). */
  ts_status (*open)(const ts_job *job, FILE *log, ts_kind **k, ts_error *err);
  /* A worker, from the owner's pack: direct = read inputs itself. */
  ts_status (*open_worker)(const unsigned char *setup, size_t n, int rank, int direct, ts_kind **k,
                           ts_error *err);
} ts_kind_def;

extern const ts_kind_def ts_kind_tile, ts_kind_list;

/* A path that could not be opened on a worker: say where it looked (its
 * working directory, which need not be rank 0's). Appends to err's
 * message; returns st. */
ts_status ts_note_relative(const char *path, ts_status st, ts_error *err);

/* The kind that runs `job` (registry.c); its index for the set-up. */
int ts_kind_find(const ts_job *job);
const ts_kind_def *ts_kind_at(int i);

#endif
