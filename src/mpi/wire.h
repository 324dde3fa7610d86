/* The one framing between rank 0 and the workers, for every task kind.
 *
 * Every message is bytes: a ts_msg header; for tasks and results an index
 * of `count` items (task number, payload bytes); the payloads back to back
 * from ts_payload_offset(count); for results then `extra` bytes (a
 * statistics pass's partial of the whole batch). What a payload holds is
 * the kind's business (engine/kind.h).
 *
 * Rank 0 -> worker on TAG_WORK: MSG_PASS (count = the pass; the payload is
 * the kind's announce), MSG_TASK (a batch: with --io root the inputs, with
 * --io direct only task numbers), MSG_STOP (status = the job's). A batch
 * larger than the workers' pre-posted buffers is announced by a MSG_TASK
 * header with status TS_WIRE_BULK and follows whole on TAG_BULK.
 * Worker -> rank 0 on TAG_DONE: MSG_RESULT (seconds = the batch's compute
 * time), MSG_ERROR (the message follows), MSG_FINAL (the worker's
 * ts_rank_stats, then its trace events). One tag each way keeps a
 * worker's messages in the order it sent them. */
#ifndef TS_MPI_WIRE_H
#define TS_MPI_WIRE_H

#include <mpi.h>
#include <stdint.h>
#include "core/blob.h"
#include "tessera/sched.h"

enum { TAG_WORK = 101, TAG_DONE = 102, TAG_BULK = 103 };

enum { MSG_TASK = 1, MSG_STOP = 2, MSG_RESULT = 3, MSG_ERROR = 4, MSG_FINAL = 5, MSG_PASS = 6 };

enum { TS_WIRE_BULK = 1 };

typedef struct ts_msg {
  int64_t count; /* items; MSG_PASS: the pass; MSG_FINAL: trace events */
  int32_t kind;
  int32_t status;  /* MSG_STOP: the job's status; MSG_ERROR: the code; MSG_TASK: TS_WIRE_BULK */
  double seconds;  /* MSG_RESULT: compute time of the batch */
  int64_t payload; /* bytes after the header */
  int64_t extra;   /* MSG_RESULT: bytes of the batch's statistics partial, at the end */
} ts_msg;

typedef struct ts_item {
  int64_t task, bytes;
} ts_item;

/* Batches hold at most TS_BATCH_TASKS tasks and, past their first task,
 * TS_BATCH_BYTES of inputs; rank 0 sizes them to about TS_BATCH_SECONDS
 * of the worker's measured compute. */
#define TS_BATCH_TASKS 256
#define TS_BATCH_BYTES (4 << 20)
#define TS_BATCH_SECONDS 0.002
/* The largest pre-posted receive buffer; a larger batch goes as TAG_BULK. */
#define TS_RECV_MAX ((int64_t)256 << 20)

/* Payloads start 64-byte aligned (the kernels' vector loads like it). */
static inline size_t ts_payload_offset(int64_t count) {
  size_t at = sizeof(ts_msg) + (size_t)count * sizeof(ts_item);
  return (at + 63) & ~(size_t)63;
}

/* What rank 0 broadcasts once the job is valid; the kind's own set-up
 * (ts_kind_ops.pack) follows, `len` bytes. */
typedef struct ts_wire_setup {
  int32_t kind, io, credits, trace;
  int64_t in_max; /* the workers' receive buffers */
  int64_t len;
} ts_wire_setup;

/* Sleep *ns (starting at 10 us), doubling it up to 1 ms for next time;
 * adds the time really slept to *idle (may be NULL). Ranks never block
 * in MPI: Open MPI would spin a core that a busy rank needs. */
void ts_backoff(long *ns, double *idle);
/* Wait for a request without spinning a core: test, then ts_backoff. */
void ts_wait_gently(MPI_Request *req, MPI_Status *status, double *idle);
/* Receive the next message with `tag` from `src` into b (grown), sleeping
 * between probes. Returns the source rank. */
int ts_recv_gently(MPI_Comm comm, int src, int tag, ts_blob *b, double *idle);
/* Gather every rank's readiness to rank 0 and agree on one status; rank
 * 0's err names the first failing rank and host. Collective. */
ts_status ts_agree(ts_status mine, const ts_error *my_err, MPI_Comm comm, ts_error *err);

struct ts_kind;
/* The loops (root.c, worker.c), after the set-up and ts_agree. */
ts_status ts_mpi_root(struct ts_kind *k, const ts_job *job, const ts_wire_setup *su, MPI_Comm comm,
                      ts_run_stats *stats, ts_error *err);
ts_status ts_mpi_worker(struct ts_kind *k, const ts_wire_setup *su, int threads, MPI_Comm comm, ts_error *err);

#endif
