/* A worker rank, for every task kind: receive a batch of tasks (the next
 * batch is already on its way while this one computes), compute it, send
 * the results back (the previous send overlaps this compute). A batch
 * runs one task per thread; a smaller batch of a kind whose tasks split
 * into row bands runs each task on every thread. Both give the same bytes.
 * Waits sleep instead of spinning, so ranks that outnumber cores do not
 * steal them from each other. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "engine/kind.h"
#include "mpi/wire.h"
#include "engine/trace.h"

typedef struct worker {
  ts_kind *k;
  const ts_wire_setup *su;
  MPI_Comm comm;
  int threads, rank;
  ts_blob results[TS_BATCH_TASKS]; /* per task of a batch */
  ts_blob *inputs;                 /* per thread: --io direct reads */
  ts_blob bulk;                    /* a batch larger than the receive buffers */
  ts_trace *trace;                 /* per thread */
  ts_rank_stats mine;
  double t0;
  double t_wait;   /* when this rank began waiting for the message in hand */
  int64_t first;   /* its first task, for the send's trace event */
} worker;

static double since(const worker *w) { return MPI_Wtime() - w->t0; }

/* Task i of a batch on thread slot `me` with `nthreads` threads; its input
 * is `payload` (--io root) or read here (--io direct). */
static ts_status one_task(worker *w, const ts_item *it, const unsigned char *payload, int me, int nthreads,
                          ts_blob *out, ts_error *err) {
  ts_status st = TS_OK;
  size_t n = (size_t)it->bytes;
  const double t_start = since(w);
  if (w->su->io == TS_IO_DIRECT && it->bytes == 0) { /* some payloads are the owner's even so (pyramid.h) */
    ts_blob *in = &w->inputs[me];
    in->size = 0;
#pragma omp critical(ts_worker_read)
    st = w->k->ops->read(w->k, it->task, in, err);
    if (st) return st;
    payload = in->p;
    n = in->size;
  }
  out->size = 0;
  st = w->k->ops->compute(w->k, me, nthreads, it->task, payload, n, out, err);
  ts_trace_add(&w->trace[me], TS_PHASE_COMPUTE, it->task, t_start, since(w), w->rank, me);
  return st;
}

/* Compute a batch (index `items`, payloads from `pixels`) into w->results. */
static ts_status compute_batch(worker *w, const ts_item *items, int64_t n, const unsigned char *payloads,
                               ts_error *err) {
  const unsigned char *at[TS_BATCH_TASKS];
  for (int64_t i = 0; i < n; i++) {
    at[i] = payloads;
    payloads += items[i].bytes;
  }
  ts_status st = TS_OK;
  if (w->threads == 1 || (w->k->bands && n < w->threads)) { /* each task on every thread */
    for (int64_t i = 0; i < n && st == TS_OK; i++) st = one_task(w, &items[i], at[i], 0, w->threads, &w->results[i], err);
    return st;
  }
  const int use = n < w->threads ? (int)n : w->threads;
#pragma omp parallel for num_threads(use) schedule(dynamic, 1)
  for (int64_t i = 0; i < n; i++) {
    ts_error e = {0};
    ts_status s = one_task(w, &items[i], at[i], omp_get_thread_num(), 1, &w->results[i], &e);
    if (s) {
#pragma omp critical(ts_batch_error)
      if (st == TS_OK) st = ts_fail(err, s, "%s", e.msg);
    }
  }
  return st;
}

/* The reply to a batch into out: its results, then its statistics partial. */
static ts_status reply(worker *w, const ts_item *items, int64_t n, double seconds, ts_blob *out, ts_error *err) {
  ts_msg r = {.count = n, .kind = MSG_RESULT, .seconds = seconds};
  if (ts_blob_reserve(out, ts_payload_offset(n))) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  memset(out->p, 0, ts_payload_offset(n));
  out->size = ts_payload_offset(n);
  int bad = 0;
  for (int64_t i = 0; i < n; i++) {
    ts_item it = {items[i].task, (int64_t)w->results[i].size};
    memcpy(out->p + sizeof r + (size_t)i * sizeof it, &it, sizeof it);
    bad |= ts_blob_append(out, w->results[i].p, w->results[i].size);
  }
  if (bad) return ts_fail(err, TS_ERR_NOMEM, "out of memory for results");
  const size_t before = out->size;
  ts_status st = w->k->ops->flush(w->k, out, err);
  if (st) return st;
  r.extra = (int64_t)(out->size - before);
  r.payload = (int64_t)(out->size - sizeof r);
  memcpy(out->p, &r, sizeof r);
  return TS_OK;
}

static void error_reply(ts_status st, const char *msg, ts_blob *out) {
  ts_msg r = {.kind = MSG_ERROR, .status = st};
  out->size = 0;
  if (ts_blob_append(out, &r, sizeof r) || ts_blob_append(out, msg, strlen(msg) + 1)) abort(); /* cannot report */
  ((ts_msg *)out->p)->payload = (int64_t)(out->size - sizeof r);
}

/* One message from rank 0 (not STOP): a pass starts, or a batch to
 * compute. The reply, if any, goes into out (*send = 1). */
static ts_status handle(worker *w, const unsigned char *m, ts_blob *out, int *send, ts_error *err) {
  ts_msg h;
  memcpy(&h, m, sizeof h);
  *send = 0;
  if (h.kind == MSG_PASS) return w->k->ops->enter_pass(w->k, (int)h.count, m + sizeof h, (size_t)h.payload, err);
  if (h.status == TS_WIRE_BULK) { /* the batch follows by itself */
    ts_recv_gently(w->comm, 0, TAG_BULK, &w->bulk, NULL);
    m = w->bulk.p;
  }
  const ts_item *items = (const ts_item *)(m + sizeof h);
  w->first = h.count > 0 ? items[0].task : -1;
  if (h.count > 0) ts_trace_add(&w->trace[0], TS_PHASE_RECEIVE, w->first, w->t_wait, since(w), w->rank, 0);
  w->mine.bytes_received += (int64_t)sizeof h + h.payload;
  const double t0 = MPI_Wtime();
  ts_status st = compute_batch(w, items, h.count, m + ts_payload_offset(h.count), err);
  if (st == TS_OK) st = reply(w, items, h.count, MPI_Wtime() - t0, out, err);
  w->mine.busy += MPI_Wtime() - t0;
  w->mine.tasks += h.count;
  *send = st == TS_OK;
  return st;
}

/* FINAL: this rank's figures and trace events, for rank 0. */
static void send_final(worker *w) {
  for (int i = 1; i < w->threads; i++) ts_trace_merge(&w->trace[0], &w->trace[i]);
  ts_msg f = {.kind = MSG_FINAL, .count = w->trace[0].n, .seconds = since(w)};
  ts_blob fin = {0};
  if (ts_blob_append(&fin, &f, sizeof f) || ts_blob_append(&fin, &w->mine, sizeof w->mine) ||
      ts_blob_append(&fin, w->trace[0].ev, (size_t)w->trace[0].n * sizeof *w->trace[0].ev))
    MPI_Abort(w->comm, 1); /* rank 0 waits for this message */
  ((ts_msg *)fin.p)->payload = (int64_t)(fin.size - sizeof f);
  MPI_Request req;
  MPI_Isend(fin.p, (int)fin.size, MPI_BYTE, 0, TAG_DONE, w->comm, &req);
  ts_wait_gently(&req, MPI_STATUS_IGNORE, NULL);
  ts_blob_free(&fin);
}

ts_status ts_mpi_worker(ts_kind *k, const ts_wire_setup *su, int threads, MPI_Comm comm, ts_error *err) {
  worker w = {.k = k, .su = su, .comm = comm, .threads = threads};
  MPI_Comm_rank(comm, &w.rank);
  w.mine.threads = threads;
  gethostname(w.mine.host, sizeof w.mine.host - 1);
  w.trace = calloc((size_t)threads, sizeof *w.trace);
  w.inputs = calloc((size_t)threads, sizeof *w.inputs);
  /* a ring of receives, one per message rank 0 may have in flight to
   * this worker (its credits, and STOP), each pre-posted so a batch lands
   * in place while another computes; and a ring of replies as long, so a
   * reply waits for its send only when rank 0 is a whole ring behind (a
   * rank 0 busy with its own task takes the results late) */
  const int ring = su->credits + 1;
  unsigned char **rbuf = calloc((size_t)ring, sizeof *rbuf);
  ts_blob *res = calloc((size_t)ring, sizeof *res);
  MPI_Request *rreq = malloc((size_t)ring * sizeof *rreq), *sreq = malloc((size_t)ring * sizeof *sreq);
  if (!w.trace || !w.inputs || !rbuf || !res || !rreq || !sreq) MPI_Abort(comm, 1); /* cannot even receive STOP */
  for (int i = 0; i < ring; i++) {
    if (posix_memalign((void **)&rbuf[i], 64, (size_t)su->in_max)) MPI_Abort(comm, 1);
    sreq[i] = MPI_REQUEST_NULL;
  }
  for (int i = 0; i < threads; i++) w.trace[i].on = su->trace;
  MPI_Barrier(comm); /* the run's common start, for trace times */
  w.t0 = MPI_Wtime();
  for (int i = 0; i < ring; i++) MPI_Irecv(rbuf[i], (int)su->in_max, MPI_BYTE, 0, TAG_WORK, comm, &rreq[i]);
  int failed = 0;
  int32_t final_status = TS_OK;
  for (int cur = 0;; cur = (cur + 1) % ring) {
    w.t_wait = since(&w);
    ts_wait_gently(&rreq[cur], NULL, NULL);
    ts_msg m;
    memcpy(&m, rbuf[cur], sizeof m);
    if (m.kind == MSG_STOP) {
      final_status = m.status;
      break;
    }
    ts_error e = {0};
    int send = 0;
    ts_wait_gently(&sreq[cur], NULL, NULL); /* this reply buffer's last send */
    if (m.status == TS_WIRE_BULK && failed) ts_recv_gently(comm, 0, TAG_BULK, &w.bulk, NULL); /* drain it */
    ts_status st = failed ? TS_OK : handle(&w, rbuf[cur], &res[cur], &send, &e);
    if (st) { /* report once; rank 0 stops everyone */
      error_reply(st, e.msg, &res[cur]);
      failed = send = 1;
    }
    MPI_Irecv(rbuf[cur], (int)su->in_max, MPI_BYTE, 0, TAG_WORK, comm, &rreq[cur]);
    if (send) {
      w.mine.bytes_sent += (int64_t)res[cur].size;
      const double t_send = since(&w);
      MPI_Isend(res[cur].p, (int)res[cur].size, MPI_BYTE, 0, TAG_DONE, comm, &sreq[cur]);
      ts_trace_add(&w.trace[0], TS_PHASE_SEND, w.first, t_send, since(&w), w.rank, 0);
    }
  }
  MPI_Waitall(ring, sreq, MPI_STATUSES_IGNORE);
  send_final(&w);
  for (int i = 0; i < ring; i++) { /* the receives still posted get nothing more */
    if (rreq[i] != MPI_REQUEST_NULL) {
      MPI_Cancel(&rreq[i]);
      MPI_Wait(&rreq[i], MPI_STATUS_IGNORE);
    }
    free(rbuf[i]);
    ts_blob_free(&res[i]);
  }
  free(rbuf);
  free(res);
  free(rreq);
  free(sreq);
  ts_blob_free(&w.bulk);
  for (int i = 0; i < TS_BATCH_TASKS; i++) ts_blob_free(&w.results[i]);
  for (int i = 0; i < threads; i++) ts_trace_free(&w.trace[i]), ts_blob_free(&w.inputs[i]);
  free(w.trace);
  free(w.inputs);
  if (final_status != TS_OK)
    return ts_fail(err, (ts_status)final_status, final_status == TS_STOPPED ? "the job stopped early" : "the job failed");
  return TS_OK;
}
