/* Rank 0 of an MPI run, for every task kind: hands batches of tasks to
 * workers on demand (each worker has `credits` batches in flight, so a
 * slow worker simply takes fewer), reads their inputs with --io root,
 * receives results in any order and stores them through the kind. Batches
 * grow until a message carries about TS_BATCH_SECONDS of the worker's
 * measured work, and shrink toward the end so the tail stays balanced.
 * Rank 0 never spins: when no message waits it computes the next task
 * itself (--root-compute; auto: with at most 2 workers, where it wins
 * back the cores a small machine has), and when there is nothing left to
 * hand out it sleeps with a backoff. On any failure it stops handing out
 * work, tells every worker to stop, and drains their last messages: no
 * rank is left waiting. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "engine/kind.h"
#include "mpi/wire.h"
#include "engine/plan.h"
#include "engine/trace.h"

typedef struct send_slot {
  MPI_Request req;
  ts_blob b;
} send_slot;

typedef struct root {
  ts_kind *k;
  MPI_Comm comm;
  const ts_wire_setup *su;
  int workers, nsend, own, threads;
  send_slot *sends;
  int64_t next, n, got;  /* the pass's positions handed out, of n; results stored */
  int *owed;             /* per worker: batches it has credit for but did not get (tasks not ready) */
  double *task_seconds;  /* per worker: running mean of a task's compute time; 0 = unknown */
  double idle, t0;
  ts_rank_stats *ranks;
  ts_trace trace;        /* every rank's events */
  ts_blob own_in, own_out, rb;
} root;

/* CPU seconds this process has used (all its threads). */
static double cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double since(const root *r) { return MPI_Wtime() - r->t0; }

static send_slot *free_send(root *r) {
  long ns = 10000;
  for (;;) {
    for (int i = 0; i < r->nsend; i++) {
      int done = 1;
      if (r->sends[i].req != MPI_REQUEST_NULL) MPI_Test(&r->sends[i].req, &done, MPI_STATUS_IGNORE);
      if (done) return &r->sends[i];
    }
    ts_backoff(&ns, &r->idle);
  }
}

/* How many tasks worker w's next batch carries: about TS_BATCH_SECONDS of
 * that worker's measured work, so a slow worker gets small batches. */
static int64_t batch_size(const root *r, int w) {
  int64_t left = r->n - r->next, k = 1;
  if (r->task_seconds[w] > 0) k = (int64_t)(TS_BATCH_SECONDS / r->task_seconds[w]) + 1;
  if (k > TS_BATCH_TASKS) k = TS_BATCH_TASKS;
  if (r->su->io == TS_IO_ROOT) {
    int64_t fit = TS_BATCH_BYTES / (r->k->max_payload > 0 ? r->k->max_payload : 1);
    if (k > fit) k = fit > 0 ? fit : 1;
  }
  /* near the end, smaller batches keep every worker busy to the last */
  int64_t fair = left / (2 * (int64_t)r->workers * r->su->credits);
  if (k > fair) k = fair > 0 ? fair : 1;
  return k < left ? k : left;
}

/* Can the task at position pos be read now (a pyramid's upper tile waits
 * for the results it is made of)? */
static int ready_at(const root *r, int64_t pos) {
  return !r->k->ops->ready || r->k->ops->ready(r->k, r->k->ops->task(r->k, pos));
}

/* Hand the next batch to worker w: up to the first task not ready. If
 * that is the first, nothing goes and w is owed a batch. */
static ts_status send_batch(root *r, int w, ts_error *err) {
  int64_t k = batch_size(r, w), ready = 0;
  while (ready < k && ready_at(r, r->next + ready)) ready++;
  if (ready == 0) {
    r->owed[w]++;
    return TS_OK;
  }
  k = ready;
  send_slot *s = free_send(r);
  const int64_t first = r->k->ops->task(r->k, r->next);
  ts_msg h = {.count = k, .kind = MSG_TASK};
  if (ts_blob_reserve(&s->b, ts_payload_offset(k))) return ts_fail(err, TS_ERR_NOMEM, "out of memory for tasks");
  memset(s->b.p, 0, ts_payload_offset(k));
  s->b.size = ts_payload_offset(k);
  for (int64_t i = 0; i < k; i++) {
    ts_item it = {.task = r->k->ops->task(r->k, r->next + i)};
    if (r->su->io == TS_IO_ROOT || (r->k->ops->owner_reads && r->k->ops->owner_reads(r->k, it.task))) {
      const size_t before = s->b.size;
      const double t_read = since(r);
      ts_status st = r->k->ops->read(r->k, it.task, &s->b, err);
      ts_trace_add(&r->trace, TS_PHASE_READ, it.task, t_read, since(r), 0, 0);
      if (st) return st;
      it.bytes = (int64_t)(s->b.size - before);
    }
    memcpy(s->b.p + sizeof h + (size_t)i * sizeof it, &it, sizeof it);
  }
  h.payload = (int64_t)(s->b.size - sizeof h);
  const int bulk = (int64_t)s->b.size > r->su->in_max;
  if (bulk) h.status = TS_WIRE_BULK;
  memcpy(s->b.p, &h, sizeof h);
  const double t_send = since(r);
  if (bulk) /* the header in the worker's buffer, the batch after it by size */
    MPI_Send(&h, (int)sizeof h, MPI_BYTE, w, TAG_WORK, r->comm);
  MPI_Isend(s->b.p, (int)s->b.size, MPI_BYTE, w, bulk ? TAG_BULK : TAG_WORK, r->comm, &s->req);
  ts_trace_add(&r->trace, TS_PHASE_SEND, first, t_send, since(r), 0, 0);
  r->ranks[0].bytes_sent += (int64_t)s->b.size;
  r->next += k;
  return TS_OK;
}

/* The next worker message into rb, if one waits (else -1). */
static int receive(root *r, ts_msg *h) {
  int flag = 0;
  MPI_Message msg;
  MPI_Status status;
  MPI_Improbe(MPI_ANY_SOURCE, TAG_DONE, r->comm, &flag, &msg, &status);
  if (!flag) return -1;
  int n = 0;
  MPI_Get_count(&status, MPI_BYTE, &n);
  if (ts_blob_reserve(&r->rb, (size_t)n)) MPI_Abort(r->comm, 1); /* cannot drain: no way on */
  const double t_recv = since(r);
  MPI_Mrecv(r->rb.p, n, MPI_BYTE, &msg, MPI_STATUS_IGNORE);
  r->rb.size = (size_t)n;
  memcpy(h, r->rb.p, sizeof *h);
  if (h->kind == MSG_RESULT && h->count > 0) {
    int64_t first;
    memcpy(&first, r->rb.p + sizeof *h, sizeof first);
    ts_trace_add(&r->trace, TS_PHASE_RECEIVE, first, t_recv, since(r), 0, 0);
  }
  r->ranks[0].bytes_received += n;
  return status.MPI_SOURCE;
}

/* Store every result of a batch from worker w, then its partial. */
static ts_status store_batch(root *r, int w, const ts_msg *h, ts_error *err) {
  const unsigned char *index = r->rb.p + sizeof *h, *data = r->rb.p + ts_payload_offset(h->count);
  for (int64_t i = 0; i < h->count; i++) {
    ts_item it;
    memcpy(&it, index + (size_t)i * sizeof it, sizeof it);
    int placed;
    const double t_write = since(r);
    ts_status st = r->k->ops->store(r->k, it.task, data, (size_t)it.bytes, &placed, err);
    ts_trace_add(&r->trace, TS_PHASE_WRITE, it.task, t_write, since(r), 0, 0);
    if (st) return st;
    if (!placed) return ts_fail(err, TS_ERR_INTERNAL, "result of task %lld has no slot", (long long)it.task);
    data += it.bytes;
  }
  r->got += h->count;
  if (h->extra > 0) {
    ts_status st = r->k->ops->absorb(r->k, data, (size_t)h->extra, err);
    if (st) return st;
  }
  if (h->count > 0) { /* running mean of the compute time per task */
    double per = h->seconds / (double)h->count, *mean = &r->task_seconds[w];
    *mean = *mean > 0 ? 0.8 * *mean + 0.2 * per : per;
  }
  return TS_OK;
}

/* Compute the next task on rank 0 (all its threads) and store it. */
static ts_status own_task(root *r, ts_error *err) {
  const int64_t t = r->k->ops->task(r->k, r->next++);
  const double t0 = MPI_Wtime();
  r->own_in.size = r->own_out.size = 0;
  ts_status st = r->k->ops->read(r->k, t, &r->own_in, err);
  const double t1 = MPI_Wtime();
  ts_trace_add(&r->trace, TS_PHASE_READ, t, t0 - r->t0, t1 - r->t0, 0, 0);
  if (st == TS_OK) st = r->k->ops->compute(r->k, 0, r->threads, t, r->own_in.p, r->own_in.size, &r->own_out, err);
  const double t2 = MPI_Wtime();
  ts_trace_add(&r->trace, TS_PHASE_COMPUTE, t, t1 - r->t0, t2 - r->t0, 0, 0);
  int placed = 1;
  if (st == TS_OK) st = r->k->ops->store(r->k, t, r->own_out.p, r->own_out.size, &placed, err);
  if (st == TS_OK && !placed) st = ts_fail(err, TS_ERR_INTERNAL, "result of task %lld has no slot", (long long)t);
  ts_trace_add(&r->trace, TS_PHASE_WRITE, t, t2 - r->t0, MPI_Wtime() - r->t0, 0, 0);
  r->got++;
  r->ranks[0].tasks++;
  return st;
}

/* What was just stored may have made waiting tasks ready: send the
 * batches workers are owed. */
static ts_status pay_owed(root *r, int64_t end, ts_error *err) {
  ts_status st = TS_OK;
  for (int v = 1; v <= r->workers && st == TS_OK; v++)
    while (r->owed[v] > 0 && st == TS_OK && r->next < end && ready_at(r, r->next)) {
      r->owed[v]--;
      st = send_batch(r, v, err);
    }
  return st;
}

/* Tell every worker that pass p starts, with the kind's announce. */
static ts_status announce(root *r, int p, const ts_blob *a, ts_error *err) {
  ts_msg h = {.count = p, .kind = MSG_PASS, .payload = (int64_t)a->size};
  ts_blob m = {0};
  if (ts_blob_append(&m, &h, sizeof h) || ts_blob_append(&m, a->p, a->size)) {
    ts_blob_free(&m);
    return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  }
  for (int w = 1; w <= r->workers; w++) {
    MPI_Request req;
    MPI_Isend(m.p, (int)m.size, MPI_BYTE, w, TAG_WORK, r->comm, &req);
    ts_wait_gently(&req, MPI_STATUS_IGNORE, &r->idle);
  }
  ts_blob_free(&m);
  return TS_OK;
}

/* One pass: fill every worker's credits, then one new batch per result;
 * once a stop is requested no new batch goes out, and what is in flight
 * is finished and stored. TS_STOPPED if it ended early. */
static ts_status run_pass(root *r, int p, ts_error *err) {
  ts_kind *k = r->k;
  ts_blob a = {0};
  ts_status st = k->ops->begin_pass(k, p, &r->n, &a, err);
  if (st == TS_OK) st = announce(r, p, &a, err);
  ts_blob_free(&a);
  r->next = r->got = 0;
  memset(r->owed, 0, (size_t)(r->workers + 1) * sizeof *r->owed);
  for (int c = 0; c < r->su->credits && st == TS_OK; c++)
    for (int w = 1; w <= r->workers && st == TS_OK && r->next < r->n; w++) st = send_batch(r, w, err);
  int64_t end = r->n;
  long ns = 10000;
  while (st == TS_OK && r->got < end) {
    if (end > r->next && ts_stop_requested()) end = r->next;
    ts_msg h;
    int w = receive(r, &h);
    if (w < 0) { /* nothing to answer: compute, or sleep */
      if (r->own && r->next < end && ready_at(r, r->next)) {
        st = own_task(r, err);
        if (st == TS_OK) st = pay_owed(r, end, err);
      }
      else
        ts_backoff(&ns, &r->idle);
      continue;
    }
    ns = 10000;
    if (h.kind == MSG_ERROR) return ts_fail(err, (ts_status)h.status, "%s", (char *)r->rb.p + sizeof h);
    st = store_batch(r, w, &h, err);
    if (st == TS_OK && r->next < end) st = send_batch(r, w, err);
    if (st == TS_OK) st = pay_owed(r, end, err);
  }
  if (st == TS_OK && end < r->n) return TS_STOPPED;
  ts_blob partial = {0}; /* rank 0's own share of a statistics pass */
  if (st == TS_OK && r->own) st = k->ops->flush(k, &partial, err);
  if (st == TS_OK && partial.size) st = k->ops->absorb(k, partial.p, partial.size, err);
  ts_blob_free(&partial);
  return st == TS_OK ? k->ops->end_pass(k, p, err) : st;
}

/* Stop everyone (the job's status travels with STOP), then drain until
 * each worker's FINAL: results still in flight are dropped. */
static ts_status stop_all(root *r, ts_status st, ts_error *err) {
  ts_msg stop = {.kind = MSG_STOP, .status = st};
  for (int w = 1; w <= r->workers; w++) MPI_Send(&stop, (int)sizeof stop, MPI_BYTE, w, TAG_WORK, r->comm);
  for (int finals = 0; finals < r->workers;) {
    int w = ts_recv_gently(r->comm, MPI_ANY_SOURCE, TAG_DONE, &r->rb, &r->idle);
    ts_msg h;
    memcpy(&h, r->rb.p, sizeof h);
    if (h.kind == MSG_FINAL) {
      memcpy(&r->ranks[w], r->rb.p + sizeof h, sizeof *r->ranks);
      ts_trace theirs = {.ev = (ts_trace_event *)(r->rb.p + sizeof h + sizeof *r->ranks), .n = h.count};
      ts_trace_merge(&r->trace, &theirs);
      finals++;
    } else if (h.kind == MSG_ERROR && st == TS_OK) {
      st = ts_fail(err, (ts_status)h.status, "%s", (char *)r->rb.p + sizeof h);
    }
  }
  for (int i = 0; i < r->nsend; i++) {
    MPI_Wait(&r->sends[i].req, MPI_STATUS_IGNORE);
    ts_blob_free(&r->sends[i].b);
  }
  return st;
}

ts_status ts_mpi_root(ts_kind *k, const ts_job *job, const ts_wire_setup *su, MPI_Comm comm, ts_run_stats *stats,
                      ts_error *err) {
  MPI_Barrier(comm); /* the run's common start, for trace times */
  const double t0 = MPI_Wtime(), cpu0 = cpu_seconds();
  int size;
  MPI_Comm_size(comm, &size);
  root r = {.k = k, .comm = comm, .su = su, .workers = size - 1, .t0 = t0, .trace = {.on = job->trace}};
  r.nsend = su->credits * r.workers;
  r.sends = calloc((size_t)r.nsend, sizeof *r.sends);
  r.ranks = calloc((size_t)size, sizeof *r.ranks);
  r.task_seconds = calloc((size_t)size, sizeof *r.task_seconds);
  r.owed = calloc((size_t)size + 1, sizeof *r.owed);
  ts_status st = r.sends && r.ranks && r.task_seconds && r.owed ? TS_OK : ts_fail(err, TS_ERR_NOMEM, "out of memory");
  for (int i = 0; r.sends && i < r.nsend; i++) r.sends[i].req = MPI_REQUEST_NULL;
  /* rank 0 computing delays its answers by one task: cheap with a few
   * workers (and it wins back the cores a small machine has), costly when
   * many workers wait on it */
  r.own = job->root_compute > 0 || (job->root_compute < 0 && r.workers <= 2);
  r.threads = job->threads > 0 ? job->threads : omp_get_max_threads();
  if (st == TS_OK && r.own) st = k->ops->prepare(k, r.threads, err);
  /* every task in flight has its own slot in the ordered store */
  if (st == TS_OK) st = k->ops->start(k, (int64_t)r.nsend * TS_BATCH_TASKS + 1, err);
  for (int p = 0; p < k->passes && st == TS_OK; p++) st = run_pass(&r, p, err);
  st = k->ops->finish(k, st, stats, err);
  if (r.sends) st = stop_all(&r, st, err);
  /* rank 0's busy time is the CPU it used: on a loaded machine a woken
   * rank 0 may wait for a core, which wall time would count as busy */
  if (r.ranks) { /* its tasks: counted by own_task */
    r.ranks[0].busy = cpu_seconds() - cpu0;
    r.ranks[0].threads = r.own ? r.threads : 1;
    gethostname(r.ranks[0].host, sizeof r.ranks[0].host - 1);
    stats->threads = r.ranks[1].threads;
  }
  stats->seconds = MPI_Wtime() - t0;
  stats->nranks = r.ranks ? size : 0;
  stats->ranks = r.ranks; /* ownership moves to stats */
  stats->nevents = r.trace.n;
  stats->events = r.trace.ev;
  free(r.sends);
  free(r.task_seconds);
  free(r.owed);
  ts_blob_free(&r.own_in);
  ts_blob_free(&r.own_out);
  ts_blob_free(&r.rb);
  return st;
}
