/* The messages between rank 0 and the workers. Every message is bytes: a
 * fixed header, then for tasks and results an index of `count` items (task
 * number and payload bytes), then the payloads back to back. Rank 0 ->
 * worker on TAG_WORK: a batch of tasks (input pixels with --io root) or
 * STOP. Worker -> rank 0 on TAG_DONE: the batch's results (encoded output
 * tiles), an error (the message follows) or FINAL (the worker's figures
 * follow). Batches make small tasks cheap: rank 0 sizes them so a message
 * carries about 2 ms of work. One tag each way keeps a worker's messages
 * in the order it sent them. */
#ifndef TS_SCHED_PROTOCOL_H
#define TS_SCHED_PROTOCOL_H

#include <stdint.h>
#include "sched/plan.h"
#include "tessera/sched.h"

enum { TAG_WORK = 101, TAG_DONE = 102 };

enum { MSG_TASK = 1, MSG_STOP = 2, MSG_RESULT = 3, MSG_ERROR = 4, MSG_FINAL = 5, MSG_PASS = 6 };

/* MSG_PASS (rank 0 -> workers, before each pass): count = the global
 * kernel of the statistics pass now starting (-1: the apply pass), status
 * = its stage; the payload carries the previous pass's merged statistics
 * for the workers to resolve as rank 0 did: [int64 kernel][int64 stage]
 * [doubles] (kernel -1: none). In a statistics pass a RESULT's payload is
 * the batch's partial (doubles) instead of encoded tiles. */

typedef struct ts_msg {
  int64_t count; /* tasks in the batch */
  int32_t kind;
  int32_t status; /* MSG_STOP: the job's final status; MSG_ERROR: the code */
  double seconds; /* MSG_RESULT: compute time of the batch */
  int64_t payload; /* bytes after the header */
} ts_msg;

typedef struct ts_item {
  int64_t task, bytes;
} ts_item;

/* Batches hold at most this many tasks, and at most max(one task's input,
 * TS_BATCH_BYTES) bytes of pixels, so workers can pre-post receives. */
#define TS_BATCH_TASKS 256
#define TS_BATCH_BYTES (4 << 20)
#define TS_BATCH_SECONDS 0.002

/* Payloads start 64-byte aligned (the kernels' vector loads like it). */
static inline size_t ts_payload_offset(int64_t count) {
  size_t at = sizeof(ts_msg) + (size_t)count * sizeof(ts_item);
  return (at + 63) & ~(size_t)63;
}

/* What rank 0 broadcasts after validating the job: everything a worker
 * needs, so it reads no file of the job's itself (strings follow). */
typedef struct ts_setup {
  ts_grid grid;
  ts_writer_options wopts; /* description is not sent */
  int64_t out_tile;
  int32_t in_dtype, in_channels;
  int32_t boundary, io, threads, credits, trace;
  int64_t task_bytes; /* the largest task's input */
  double cval;
  int32_t len_input, len_output, len_pipeline;
} ts_setup;

/* Sleep *ns (starting at 10 us), doubling it up to 1 ms for next time;
 * adds the time really slept to *idle (may be NULL). */
void ts_backoff(long *ns, double *idle);
/* Wait for a request without spinning a core: test, then ts_backoff. */
void ts_wait_gently(MPI_Request *req, MPI_Status *status, double *idle);

ts_status ts_master(const ts_job *job, ts_plan *plan, MPI_Comm comm, const ts_setup *su,
                    ts_run_stats *stats, FILE *log, ts_error *err);
ts_status ts_worker(const ts_setup *su, const char *input, const char *output, const char *pipeline,
                    MPI_Comm comm, ts_rank_stats *mine, ts_error *err);

/* --io direct: a worker that cannot open a relative input path says
 * where it looked (its working directory, which need not be rank 0's).
 * Appends to err's message; returns st. */
ts_status ts_note_relative(const char *path, ts_status st, ts_error *err);

/* Gather every rank's readiness to rank 0 and agree on one status; rank
 * 0's err names the first failing rank and host. Collective. */
ts_status ts_agree(ts_status mine, const ts_error *my_err, MPI_Comm comm, ts_error *err);

#endif
