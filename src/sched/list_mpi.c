/* List mode under MPI. Rank 0 enumerates the inputs, reads each one's
 * bytes (a file as stored, or a stack slice; with --io direct the workers
 * enumerate and read the inputs themselves and only indices travel) and
 * hands batches to the workers on demand: `credits` batches in flight per worker, a batch
 * carrying up to TS_LIST_BATCH inputs and about TS_BATCH_BYTES, largest
 * inputs first. Workers decode and compute with their OpenMP threads (one
 * input per thread) and send back one record per input, which rank 0
 * stores in any order (HDF5 rows go to the input's index). Failed inputs
 * travel as records too; only a fatal error (out of memory, the output
 * cannot be written) stops the run, the same way as in tile mode. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "sched/list.h"
#include "sched/plan.h"
#include "sched/progress.h"
#include "sched/protocol.h"
#include "sched/trace.h"

#define TS_LIST_BATCH 64

typedef struct lsetup {
  int32_t boundary, quality, compression, no_images, format, threads, credits, trace, io, recursive;
  double cval;
  int64_t strips, n; /* --io direct: how to enumerate, and how many rank 0 found */
  int32_t len_pipeline, len_output, len_input, len_glob;
  int64_t len_aux[TS_MAX_KERNELS];
} lsetup;

static void bcast_bytes(void *p, int64_t n, MPI_Comm comm) {
  for (int64_t at = 0; at < n; at += 1 << 30) {
    int64_t k = n - at < (1 << 30) ? n - at : (1 << 30);
    MPI_Bcast((char *)p + at, (int)k, MPI_BYTE, 0, comm);
  }
}

/* Receive the next message with `tag` from `src` (MPI_ANY_SOURCE), sleeping
 * between probes so a waiting rank does not burn a core. */
static int recv_gently(MPI_Comm comm, int src, int tag, ts_blob *b, double *idle) {
  long ns = 10000;
  for (;;) {
    int flag = 0, n = 0;
    MPI_Message msg;
    MPI_Status status;
    MPI_Improbe(src, tag, comm, &flag, &msg, &status);
    if (flag) {
      MPI_Get_count(&status, MPI_BYTE, &n);
      if (ts_blob_reserve(b, (size_t)n)) MPI_Abort(comm, 1);
      MPI_Mrecv(b->p, n, MPI_BYTE, &msg, MPI_STATUS_IGNORE);
      b->size = (size_t)n;
      return status.MPI_SOURCE;
    }
    ts_backoff(&ns, idle);
  }
}

static void send_gently(const void *p, size_t n, int dst, int tag, MPI_Comm comm, double *idle) {
  MPI_Request req;
  MPI_Isend(p, (int)n, MPI_BYTE, dst, tag, comm, &req);
  ts_wait_gently(&req, MPI_STATUS_IGNORE, idle);
}

/* ---- worker ---------------------------------------------------------------- */

/* --io direct: this worker's inputs (NULL with --io root). */
static ts_status list_worker(MPI_Comm comm, const lsetup *su, ts_lrank *lr, ts_inputs *direct, ts_rank_stats *mine,
                             double t_start, ts_error *err) {
  const int threads = su->threads > 0 ? su->threads : omp_get_max_threads();
  const int me = lr->rank;
  ts_lthread *t = calloc((size_t)threads, sizeof *t);
  ts_blob *recs = calloc((size_t)threads, sizeof *recs), *rd = calloc((size_t)threads, sizeof *rd);
  ts_trace *tr = calloc((size_t)threads, sizeof *tr);
  ts_blob in = {0}, out = {0};
  ts_status st = t && recs && rd && tr ? TS_OK : ts_fail(err, TS_ERR_NOMEM, "out of memory");
  for (int i = 0; st == TS_OK && i < threads; i++) st = ts_lthread_init(&t[i], err), tr[i].on = su->trace;
  double idle = 0;
  for (;;) {
    const double t_wait = MPI_Wtime() - t_start;
    recv_gently(comm, 0, TAG_WORK, &in, &idle);
    ts_msg h;
    memcpy(&h, in.p, sizeof h);
    if (h.kind == MSG_STOP) break;
    int64_t first;
    memcpy(&first, in.p + sizeof h, sizeof first);
    if (tr) ts_trace_add(&tr[0], TS_PHASE_RECEIVE, first, t_wait, MPI_Wtime() - t_start, me, 0);
    mine->bytes_received += (int64_t)in.size;
    if (st) continue; /* already failed: wait for STOP */
    const double t0 = MPI_Wtime();
    const int64_t k = h.count;
    /* items: [int64 index][int64 name_len][int64 payload_len][int64 read_failed], then name, payload */
    int64_t *off = malloc((size_t)k * sizeof *off);
    if (!off) {
      st = ts_fail(err, TS_ERR_NOMEM, "out of memory");
    } else {
      size_t at = sizeof h;
      for (int64_t i = 0; i < k; i++) {
        off[i] = (int64_t)at;
        int64_t f[4];
        memcpy(f, in.p + at, sizeof f);
        at += sizeof f + (size_t)f[1] + (size_t)f[2];
      }
      /* one input per thread; records joined in batch order */
      for (int64_t base = 0; base < k && st == TS_OK; base += threads) {
        int64_t n = k - base < threads ? k - base : threads;
#pragma omp parallel for num_threads((int)n) schedule(static, 1)
        for (int64_t j = 0; j < n; j++) {
          int64_t f[4];
          memcpy(f, in.p + off[base + j], sizeof f);
          char name[4096];
          snprintf(name, sizeof name, "%.*s", (int)f[1], (char *)in.p + off[base + j] + sizeof f);
          const unsigned char *pay = in.p + off[base + j] + sizeof f + f[1];
          size_t plen = (size_t)f[2];
          int64_t px = 0;
          ts_error e = {0};
          recs[j].size = 0;
          const double t_task = MPI_Wtime() - t_start;
          if (direct && !f[3]) { /* read it here: a read error is the task's, as on rank 0 */
            ts_status rs;
            rd[j].size = 0;
#pragma omp critical(ts_list_worker_read)
            rs = ts_inputs_read(direct, f[0], &rd[j], &e);
            if (rs) f[3] = rs, pay = (const unsigned char *)e.msg;
            else pay = rd[j].p, plen = rd[j].size;
          }
          ts_status s = f[3] ? ts_list_failure(f[0], (ts_status)f[3], (const char *)pay, &recs[j], &e)
                             : ts_list_task(lr, &t[j], f[0], name, pay, plen, &recs[j], &px, &e);
          ts_trace_add(&tr[j], TS_PHASE_COMPUTE, f[0], t_task, MPI_Wtime() - t_start, me, (int)j);
          if (s) {
#pragma omp critical(ts_list_worker_err)
            if (st == TS_OK) st = ts_fail(err, s, "%s", e.msg);
          }
        }
        if (base == 0) out.size = sizeof h;
        for (int64_t j = 0; j < n && st == TS_OK; j++)
          if (ts_blob_append(&out, recs[j].p, recs[j].size)) st = ts_fail(err, TS_ERR_NOMEM, "out of memory");
      }
      free(off);
    }
    ts_msg r = {.count = k, .kind = st ? MSG_ERROR : MSG_RESULT, .status = st, .seconds = MPI_Wtime() - t0};
    if (st) {
      out.size = 0;
      ts_blob_append(&out, &r, sizeof r);
      ts_blob_append(&out, err->msg, strlen(err->msg) + 1);
    } else {
      r.payload = (int64_t)(out.size - sizeof r);
      memcpy(out.p, &r, sizeof r);
    }
    mine->busy += MPI_Wtime() - t0;
    mine->tasks += k;
    mine->bytes_sent += (int64_t)out.size;
    const double t_send = MPI_Wtime() - t_start;
    send_gently(out.p, out.size, 0, TAG_DONE, comm, &idle);
    if (tr) ts_trace_add(&tr[0], TS_PHASE_SEND, first, t_send, MPI_Wtime() - t_start, me, 0);
  }
  mine->threads = threads;
  gethostname(mine->host, sizeof mine->host - 1);
  /* FINAL: this rank's figures and trace events */
  for (int i = 1; tr && i < threads; i++) ts_trace_merge(&tr[0], &tr[i]);
  ts_msg fin = {.kind = MSG_FINAL, .count = tr ? tr[0].n : 0};
  out.size = 0;
  ts_blob_append(&out, &fin, sizeof fin);
  ts_blob_append(&out, mine, sizeof *mine);
  if (fin.count) ts_blob_append(&out, tr[0].ev, (size_t)fin.count * sizeof *tr[0].ev);
  send_gently(out.p, out.size, 0, TAG_DONE, comm, &idle);
  for (int i = 0; t && i < threads; i++) ts_lthread_free(&t[i]), ts_blob_free(&recs[i]);
  for (int i = 0; rd && i < threads; i++) ts_blob_free(&rd[i]);
  for (int i = 0; tr && i < threads; i++) ts_trace_free(&tr[i]);
  free(rd);
  free(tr);
  free(t);
  free(recs);
  ts_blob_free(&in);
  ts_blob_free(&out);
  return st;
}

/* ---- rank 0 ------------------------------------------------------------------ */

typedef struct lmaster {
  MPI_Comm comm;
  ts_inputs *in;
  int64_t *order, next, nleft; /* the inputs to run (a resume skips those done before) */
  int workers, credits;
  ts_blob payload;
  ts_rank_stats *ranks;
  ts_blob *sends;      /* credits per worker: worker r's slots are (r - 1) * credits + k */
  MPI_Request *reqs;
  int *slot_of;        /* the next slot per worker, round robin */
  int direct;          /* --io direct: workers read the inputs */
  double idle;
  double t0;           /* the run's common start, for trace times */
  ts_trace trace;      /* every rank's events */
} lmaster;

/* The next batch for worker r into b. */
static ts_status fill_batch(lmaster *m, ts_blob *b, ts_error *err) {
  ts_msg h = {.kind = MSG_TASK};
  b->size = 0;
  if (ts_blob_append(b, &h, sizeof h)) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  /* near the end (or with few inputs), smaller batches keep every worker busy */
  int64_t cap = (m->nleft - m->next) / (2 * (int64_t)m->workers * m->credits);
  cap = cap < 1 ? 1 : cap > TS_LIST_BATCH ? TS_LIST_BATCH : cap;
  while (m->next < m->nleft && h.count < cap && (h.count == 0 || b->size < TS_BATCH_BYTES)) {
    int64_t i = m->order[m->next++];
    const ts_input *it = &m->in->items[i];
    const char *name = it->path ? it->path : it->name;
    ts_error e = {0};
    m->payload.size = 0;
    ts_status rs = m->direct ? TS_OK : ts_inputs_read(m->in, i, &m->payload, &e);
    /* a read error travels in place of the payload: the task fails on the worker as it would here */
    const void *pay = rs ? (const void *)e.msg : m->payload.p;
    size_t plen = rs ? strlen(e.msg) + 1 : m->payload.size;
    int64_t f[4] = {i, (int64_t)strlen(name), (int64_t)plen, rs};
    if (ts_blob_append(b, f, sizeof f) || ts_blob_append(b, name, (size_t)f[1]) || ts_blob_append(b, pay, plen))
      return ts_fail(err, TS_ERR_NOMEM, "out of memory");
    h.count++;
  }
  h.payload = (int64_t)(b->size - sizeof h);
  memcpy(b->p, &h, sizeof h);
  return TS_OK;
}

/* Hand worker r its next batch, in its next send slot (whose earlier
 * send has completed by now: a worker has at most `credits` in flight). */
static ts_status send_to(lmaster *m, int r, ts_error *err) {
  int k = (r - 1) * m->credits + m->slot_of[r];
  m->slot_of[r] = (m->slot_of[r] + 1) % m->credits;
  ts_wait_gently(&m->reqs[k], MPI_STATUS_IGNORE, &m->idle);
  const int64_t first = m->next < m->nleft ? m->order[m->next] : -1;
  const double t_read = MPI_Wtime() - m->t0;
  ts_status st = fill_batch(m, &m->sends[k], err);
  if (st) return st;
  const double t_send = MPI_Wtime() - m->t0;
  ts_trace_add(&m->trace, TS_PHASE_READ, first, t_read, t_send, 0, 0);
  MPI_Isend(m->sends[k].p, (int)m->sends[k].size, MPI_BYTE, r, TAG_WORK, m->comm, &m->reqs[k]);
  ts_trace_add(&m->trace, TS_PHASE_SEND, first, t_send, MPI_Wtime() - m->t0, 0, 0);
  m->ranks[0].bytes_sent += (int64_t)m->sends[k].size;
  return TS_OK;
}

static ts_status list_master(const ts_job *job, MPI_Comm comm, ts_inputs *in, ts_list_out **out, ts_ljournal *lj,
                             const lsetup *su, ts_run_stats *stats, FILE *log, double t0, ts_error *err) {
  int size;
  MPI_Comm_size(comm, &size);
  const int workers = size - 1, credits = su->credits;
  lmaster m = {.comm = comm, .in = in, .workers = workers, .credits = credits, .t0 = t0, .trace = {.on = su->trace},
               .direct = su->io == TS_IO_DIRECT};
  m.ranks = calloc((size_t)size, sizeof *m.ranks);
  m.sends = calloc((size_t)(workers * credits), sizeof *m.sends);
  m.reqs = malloc((size_t)(workers * credits) * sizeof *m.reqs);
  m.slot_of = calloc((size_t)size, sizeof *m.slot_of);
  ts_status st = m.ranks && m.sends && m.reqs && m.slot_of ? TS_OK : ts_fail(err, TS_ERR_NOMEM, "out of memory");
  if (st == TS_OK && ts_list_remaining(in, lj->done, &m.order, &m.nleft)) st = ts_fail(err, TS_ERR_NOMEM, "out of memory");
  for (int i = 0; m.reqs && i < workers * credits; i++) m.reqs[i] = MPI_REQUEST_NULL;
  ts_progress progress;
  ts_progress_init(&progress, job->progress ? log : NULL, m.nleft, ts_now());
  int64_t stored = 0, pixels = 0;
  ts_blob rb = {0};
  ts_emits em = {0};
  for (int c = 0; c < credits && st == TS_OK; c++)
    for (int r = 1; r <= workers && st == TS_OK && m.next < m.nleft; r++) st = send_to(&m, r, err);
  /* once a stop is requested no new batch goes out; what is in flight is
   * finished and stored (then everything handed out is: end = m.next) */
  int64_t end = m.nleft;
  while (st == TS_OK && stored < end) {
    if (end > m.next && ts_stop_requested()) {
      end = m.next;
      if (stored == end) break;
    }
    int src = recv_gently(comm, MPI_ANY_SOURCE, TAG_DONE, &rb, &m.idle);
    ts_msg h;
    memcpy(&h, rb.p, sizeof h);
    m.ranks[0].bytes_received += (int64_t)rb.size;
    if (h.kind == MSG_ERROR) {
      st = ts_fail(err, (ts_status)h.status, "rank %d: %s", src, (char *)rb.p + sizeof h);
      break;
    }
    size_t at = sizeof h;
    const double t_write = MPI_Wtime() - t0;
    int64_t first = -1;
    for (int64_t i = 0; i < h.count && st == TS_OK; i++) {
      size_t used;
      ts_lrec rec;
      memcpy(&rec, rb.p + at, sizeof rec);
      if (i == 0) first = rec.index;
      st = ts_list_store(*out, in, rb.p + at, &used, &em, err);
      if (st == TS_OK) st = ts_ljournal_add(lj, rb.p + at, used, err);
      at += used;
      stored++;
      ts_progress_tick(&progress, rec.ri.w * rec.ri.h);
      pixels += rec.ri.w * rec.ri.h;
    }
    ts_trace_add(&m.trace, TS_PHASE_WRITE, first, t_write, MPI_Wtime() - t0, 0, 0);
    if (st == TS_OK && m.next < end) st = send_to(&m, src, err);
  }
  ts_progress_done(&progress);
  stats->done = stored + lj->replayed;
  stats->resumed = lj->replayed;
  if (st == TS_OK && end < m.nleft) st = TS_STOPPED;
  st = ts_list_close(out, in, st, stats, err);
  ts_ljournal_close(lj, st, stats);
  /* stop everyone, then drain until each worker's FINAL */
  ts_msg stop = {.kind = MSG_STOP, .status = st};
  for (int r = 1; r <= workers; r++) MPI_Send(&stop, (int)sizeof stop, MPI_BYTE, r, TAG_WORK, comm);
  for (int finals = 0; finals < workers;) {
    int src = recv_gently(comm, MPI_ANY_SOURCE, TAG_DONE, &rb, &m.idle);
    ts_msg h;
    memcpy(&h, rb.p, sizeof h);
    if (h.kind != MSG_FINAL) continue;
    memcpy(&m.ranks[src], rb.p + sizeof h, sizeof *m.ranks);
    ts_trace theirs = {.ev = (ts_trace_event *)(rb.p + sizeof h + sizeof *m.ranks), .n = h.count};
    ts_trace_merge(&m.trace, &theirs);
    finals++;
  }
  for (int i = 0; m.reqs && i < workers * credits; i++) MPI_Wait(&m.reqs[i], MPI_STATUS_IGNORE), ts_blob_free(&m.sends[i]);
  gethostname(m.ranks[0].host, sizeof m.ranks[0].host - 1);
  m.ranks[0].busy = MPI_Wtime() - t0 - m.idle;
  m.ranks[0].threads = 1;
  stats->seconds = MPI_Wtime() - t0;
  stats->tasks = in->n;
  stats->pixels = pixels; /* output pixels */
  stats->threads = m.ranks[workers > 0 ? 1 : 0].threads;
  stats->nranks = size;
  stats->ranks = m.ranks;
  stats->nevents = m.trace.n;
  stats->events = m.trace.ev; /* ownership moves to stats */
  free(m.sends);
  free(m.reqs);
  free(m.slot_of);
  free(m.order);
  ts_blob_free(&m.payload);
  ts_blob_free(&rb);
  ts_emits_free(&em);
  return st;
}

ts_status ts_run_list_mpi(const ts_job *job, MPI_Comm comm, ts_run_stats *stats, FILE *log, ts_error *err) {
  int rank;
  MPI_Comm_rank(comm, &rank);
  lsetup su;
  memset(&su, 0, sizeof su);
  ts_inputs in;
  ts_list_out_options oo;
  ts_list_out *out = NULL;
  ts_ljournal lj;
  memset(&lj, 0, sizeof lj);
  ts_blob aux[TS_MAX_KERNELS];
  memset(aux, 0, sizeof aux);
  int32_t st = TS_OK;
  if (rank == 0) {
    st = ts_list_open(job, &in, &oo, &out, &lj, err);
    if (st == TS_OK && (st = ts_list_read_aux(job->pipeline, aux, err))) {
      ts_run_stats ignored = {0};
      ts_list_out_abort(&out);
      ts_ljournal_close(&lj, st, &ignored);
      ts_inputs_free(&in);
    }
    if (st == TS_OK) {
      su = (lsetup){.boundary = job->boundary, .quality = oo.quality, .compression = oo.compression,
                    .no_images = oo.no_images, .format = oo.format, .threads = job->threads,
                    .credits = job->credits > 0 ? job->credits : 2, .trace = job->trace, .io = job->io,
                    .recursive = job->recursive, .cval = job->cval, .strips = job->strips, .n = in.n,
                    .len_pipeline = (int32_t)strlen(job->pipeline), .len_output = (int32_t)strlen(job->output),
                    .len_input = (int32_t)strlen(job->input), .len_glob = job->glob ? (int32_t)strlen(job->glob) : -1};
      for (int i = 0; i < TS_MAX_KERNELS; i++) su.len_aux[i] = aux[i].p ? (int64_t)aux[i].size : 0;
    }
  }
  MPI_Bcast(&st, 1, MPI_INT32_T, 0, comm);
  if (st) return rank == 0 ? (ts_status)st : ts_fail(err, (ts_status)st, "rank 0 refused the job");
  MPI_Bcast(&su, (int)sizeof su, MPI_BYTE, 0, comm);
  char *text = calloc((size_t)su.len_pipeline + 1, 1), *opath = calloc((size_t)su.len_output + 1, 1);
  char *ipath = calloc((size_t)su.len_input + 1, 1), *glob = calloc((size_t)(su.len_glob + 1) + 1, 1);
  if (!text || !opath || !ipath || !glob) MPI_Abort(comm, 1);
  if (rank == 0) {
    memcpy(text, job->pipeline, (size_t)su.len_pipeline);
    memcpy(opath, job->output, (size_t)su.len_output);
    memcpy(ipath, job->input, (size_t)su.len_input);
    if (job->glob) memcpy(glob, job->glob, (size_t)su.len_glob);
  }
  bcast_bytes(text, su.len_pipeline, comm);
  bcast_bytes(opath, su.len_output, comm);
  bcast_bytes(ipath, su.len_input, comm);
  bcast_bytes(glob, su.len_glob > 0 ? su.len_glob : 0, comm);
  for (int i = 0; i < TS_MAX_KERNELS; i++) {
    if (!su.len_aux[i]) continue;
    if (rank != 0 && ts_blob_reserve(&aux[i], (size_t)su.len_aux[i])) MPI_Abort(comm, 1);
    aux[i].size = (size_t)su.len_aux[i];
    bcast_bytes(aux[i].p, su.len_aux[i], comm);
  }
  ts_list_out_options wo = {.path = opath, .format = (ts_file_format)su.format, .quality = su.quality,
                            .compression = (ts_compression)su.compression, .no_images = su.no_images};
  ts_lrank lr;
  ts_error e = {0};
  ts_status ready = rank == 0 ? TS_OK : ts_lrank_init(&lr, text, (ts_boundary)su.boundary, su.cval, &wo, aux, &e);
  if (rank != 0) lr.rank = rank;
  const int have_lr = rank != 0 && ready == TS_OK;
  /* --io direct: each worker enumerates the inputs itself; it must see what rank 0 saw */
  ts_inputs direct;
  int have_direct = 0;
  if (rank != 0 && ready == TS_OK && su.io == TS_IO_DIRECT) {
    ready = ts_inputs_open(ipath, su.len_glob >= 0 ? glob : NULL, su.recursive, su.strips, &direct, &e);
    if (ready) ts_note_relative(ipath, ready, &e);
    have_direct = ready == TS_OK;
    if (ready) ready = TS_ERR_IO; /* rank 0 accepted the path: here it is this host's files that fail */
    if (ready == TS_OK && direct.n != su.n)
      ready = ts_fail(&e, TS_ERR_IO, "%s: this rank sees %lld inputs, rank 0 sees %lld (--io direct needs the same "
                      "files on every host; --io root does not)", ipath, (long long)direct.n, (long long)su.n);
  }
  for (int i = 0; i < TS_MAX_KERNELS; i++) ts_blob_free(&aux[i]);
  ts_status result = ts_agree(ready, &e, comm, err);
  if (result == TS_OK) {
    MPI_Barrier(comm); /* the run's common start, for trace times */
    const double t0 = MPI_Wtime();
    if (rank == 0) {
      memset(stats, 0, sizeof *stats);
      result = list_master(job, comm, &in, &out, &lj, &su, stats, log, t0, err);
    } else {
      ts_rank_stats mine;
      memset(&mine, 0, sizeof mine);
      result = list_worker(comm, &su, &lr, have_direct ? &direct : NULL, &mine, t0, err);
    }
  } else if (rank == 0) {
    ts_run_stats ignored = {0};
    ts_list_out_abort(&out);
    ts_ljournal_close(&lj, result, &ignored);
  }
  if (have_lr) ts_lrank_free(&lr);
  if (have_direct) ts_inputs_free(&direct);
  if (rank == 0) ts_inputs_free(&in);
  /* every rank exits with the job's status */
  int32_t final = result;
  MPI_Bcast(&final, 1, MPI_INT32_T, 0, comm);
  if (rank != 0 && final != TS_OK && result == TS_OK) result = (ts_status)final;
  free(text);
  free(opath);
  free(ipath);
  free(glob);
  return result;
}
