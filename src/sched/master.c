/* Rank 0 of an MPI run: hands batches of tasks to workers on demand (each
 * worker has `credits` batches in flight, so a slow worker simply takes
 * fewer), reads their input with --io root, receives encoded results in
 * any order and stores them in task order. Batches grow until a message
 * carries about TS_BATCH_SECONDS of work, measured from the workers'
 * reports, and shrink toward the end so the tail stays balanced. Rank 0
 * never spins: when no message waits it computes the next task itself
 * (unless --root-compute no), and when there is nothing left to hand out
 * it sleeps with a backoff. On a 2-core workstation a rank 0 that only
 * dispatched left ~25% of the machine to I/O that competed with the
 * workers; computing in its idle time wins that back (docs/architecture.md
 * has the figures). On any failure it stops
 * handing out work, tells every worker to stop, and drains their last
 * messages: no rank is left waiting. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "sched/fetch.h"
#include "sched/output.h"
#include "sched/passes.h"
#include "sched/plan.h"
#include "sched/protocol.h"
#include "sched/trace.h"

typedef struct send_slot {
  MPI_Request req;
  ts_blob b;
} send_slot;

typedef struct master {
  const ts_job *job;
  ts_plan *plan;
  MPI_Comm comm;
  int workers, credits, nsend;
  send_slot *sends;
  void *fetch;
  int64_t next;        /* next task to hand out */
  int64_t task_bytes;  /* the largest task's input (--io root) */
  double *task_seconds; /* per worker: running mean of a task's compute time; 0 = unknown */
  double idle;
  ts_rank_stats *ranks;
  /* rank 0's own compute (idle time): buffers allocated once */
  ts_crew crew;
  ts_blob own;
  void *inbuf, *outbuf;
  ts_trace trace; /* every rank's events */
  double t0;      /* the run's start (after a barrier) */
  /* the pass under way */
  const ts_pass *pass; /* NULL: the apply pass */
  int64_t halo;        /* its tasks' input halo */
  double *merged;      /* a statistics pass's merged partial */
  int64_t done;        /* a statistics pass's tasks merged */
  ts_progress *progress;
} master;

/* CPU seconds this process has used (all its threads). */
static double cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static send_slot *free_send(master *m) {
  long ns = 10000;
  for (;;) {
    for (int i = 0; i < m->nsend; i++) {
      int done = 1;
      if (m->sends[i].req != MPI_REQUEST_NULL) MPI_Test(&m->sends[i].req, &done, MPI_STATUS_IGNORE);
      if (done) return &m->sends[i];
    }
    ts_backoff(&ns, &m->idle);
  }
}

/* How many tasks worker r's next batch carries: about TS_BATCH_SECONDS of
 * that worker's measured work, so a slow worker gets small batches. */
static int64_t batch_size(const master *m, int r) {
  int64_t left = m->plan->grid.ntasks - m->next, k = 1;
  if (m->task_seconds[r] > 0) k = (int64_t)(TS_BATCH_SECONDS / m->task_seconds[r]) + 1;
  if (k > TS_BATCH_TASKS) k = TS_BATCH_TASKS;
  if (m->job->io == TS_IO_ROOT) {
    int64_t fit = TS_BATCH_BYTES / (m->task_bytes > 0 ? m->task_bytes : 1);
    if (k > fit) k = fit > 0 ? fit : 1;
  }
  /* near the end, smaller batches keep every worker busy to the last */
  int64_t fair = left / (2 * (int64_t)m->workers * m->credits);
  if (k > fair) k = fair > 0 ? fair : 1;
  return k < left ? k : left;
}

/* Hand the next batch to worker r. */
static ts_status send_batch(master *m, int r, ts_error *err) {
  send_slot *s = free_send(m);
  const ts_plan *p = m->plan;
  const ts_image_info *info = &p->reader->info;
  const int64_t k = batch_size(m, r);
  ts_msg h = {.count = k, .kind = MSG_TASK};
  size_t at = ts_payload_offset(k);
  size_t total = at + (m->job->io == TS_IO_ROOT ? (size_t)(k * m->task_bytes) : 0);
  if (ts_blob_reserve(&s->b, total)) return ts_fail(err, TS_ERR_NOMEM, "out of memory for task buffers");
  for (int64_t i = 0; i < k; i++) {
    ts_item it = {.task = m->next + i};
    if (m->job->io == TS_IO_ROOT) {
      ts_rect in = ts_grid_input_halo(&p->grid, it.task, m->halo);
      ts_image dst = ts_image_packed(s->b.p + at, in.w, in.h, info->channels, info->dtype);
      double t_read = MPI_Wtime() - m->t0;
      ts_status st = ts_fetch_rect(p->reader, in, m->job->boundary, m->job->cval, &dst, m->fetch, err);
      ts_trace_add(&m->trace, TS_PHASE_READ, it.task, t_read, MPI_Wtime() - m->t0, 0, 0);
      if (st) return st;
      it.bytes = ts_image_bytes(in.w, in.h, info->channels, info->dtype);
      at += (size_t)it.bytes;
    }
    memcpy(s->b.p + sizeof h + (size_t)i * sizeof it, &it, sizeof it);
  }
  h.payload = (int64_t)(at - sizeof h);
  memcpy(s->b.p, &h, sizeof h);
  double t_send = MPI_Wtime() - m->t0;
  MPI_Isend(s->b.p, (int)at, MPI_BYTE, r, TAG_WORK, m->comm, &s->req);
  ts_trace_add(&m->trace, TS_PHASE_SEND, m->next, t_send, MPI_Wtime() - m->t0, 0, 0);
  m->ranks[0].bytes_sent += (int64_t)at;
  m->next += k;
  return TS_OK;
}

/* Receive the next worker message into rb, if there is one (wait = 0) or
 * sleeping until there is (wait = 1). Returns the source rank or -1. */
static int receive(master *m, ts_blob *rb, ts_msg *h, int wait) {
  long ns = 10000;
  for (;;) {
    int flag = 0;
    MPI_Message msg;
    MPI_Status status;
    MPI_Improbe(MPI_ANY_SOURCE, TAG_DONE, m->comm, &flag, &msg, &status);
    if (flag) {
      int n = 0;
      MPI_Get_count(&status, MPI_BYTE, &n);
      if (ts_blob_reserve(rb, (size_t)n)) MPI_Abort(m->comm, 1); /* cannot drain: no way on */
      double t_recv = MPI_Wtime() - m->t0;
      MPI_Mrecv(rb->p, n, MPI_BYTE, &msg, MPI_STATUS_IGNORE);
      rb->size = (size_t)n;
      memcpy(h, rb->p, sizeof *h);
      if (h->kind == MSG_RESULT && h->count > 0) {
        int64_t first;
        memcpy(&first, rb->p + sizeof *h, sizeof first);
        ts_trace_add(&m->trace, TS_PHASE_RECEIVE, first, t_recv, MPI_Wtime() - m->t0, 0, 0);
      }
      m->ranks[0].bytes_received += n;
      return status.MPI_SOURCE;
    }
    if (!wait) return -1;
    ts_backoff(&ns, &m->idle);
  }
}

/* Set up rank 0's own compute: the plan's pipeline, per-thread scratch
 * and encoders, one input and one output buffer. */
static ts_status own_init(master *m, ts_error *err) {
  const ts_plan *p = m->plan;
  const int64_t T = p->grid.tile, H = p->grid.halo;
  const ts_image_info *info = &p->reader->info;
  m->inbuf = malloc((size_t)ts_image_bytes(T + 2 * H, T + 2 * H, info->channels, info->dtype));
  m->outbuf = malloc((size_t)ts_image_bytes(T, T, TS_MAX_CHANNELS, TS_F32)); /* any kernel's output */
  if (!m->inbuf || !m->outbuf) return ts_fail(err, TS_ERR_NOMEM, "out of memory for rank 0's buffers");
  int threads = m->job->threads > 0 ? m->job->threads : omp_get_max_threads();
  return ts_crew_init(&m->crew, threads, m->job->output, &p->wopts, err);
}

static void own_free(master *m) {
  ts_crew_free(&m->crew);
  free(m->inbuf);
  free(m->outbuf);
  ts_blob_free(&m->own);
}

/* Compute the next task on rank 0 and store it. */
static ts_status own_task(master *m, ts_order *order, ts_error *err) {
  const ts_plan *p = m->plan;
  const ts_image_info *info = &p->reader->info;
  const int64_t t = m->next++;
  ts_rect core = ts_grid_core(&p->grid, t), in = ts_grid_input_halo(&p->grid, t, m->halo);
  ts_image src = ts_image_packed(m->inbuf, in.w, in.h, info->channels, info->dtype);
  double t0 = MPI_Wtime();
  ts_status st = ts_fetch_rect(p->reader, in, m->job->boundary, m->job->cval, &src, m->fetch, err);
  double t1 = MPI_Wtime();
  ts_trace_add(&m->trace, TS_PHASE_READ, t, t0 - m->t0, t1 - m->t0, 0, 0);
  if (m->pass) { /* statistics: the kernels before the global one, then accumulate */
    const ts_kernel *g = &p->pipe->k[m->pass->kernel];
    ts_image dst = ts_image_packed(m->outbuf, core.w, core.h, g->in_channels, g->in_dtype);
    if (st == TS_OK) st = ts_pipeline_run_upto(p->pipe, m->pass->kernel, &src, &dst, m->crew.scratch, m->crew.n, err);
    if (st == TS_OK) g->def->accumulate(g, m->pass->stage, &dst, m->merged);
    ts_trace_add(&m->trace, TS_PHASE_COMPUTE, t, t1 - m->t0, MPI_Wtime() - m->t0, 0, 0);
    m->done++;
    ts_progress_tick(m->progress, 0);
    m->ranks[0].tasks++;
    m->ranks[0].busy += MPI_Wtime() - t0;
    return st;
  }
  ts_image dst = ts_image_packed(m->outbuf, core.w, core.h, p->pipe->out_channels, p->pipe->out_dtype);
  if (st == TS_OK) st = ts_pipeline_run_bands(p->pipe, &src, &dst, m->crew.scratch, m->crew.n, err);
  m->own.size = 0;
  if (st == TS_OK)
    st = ts_encode_core(m->crew.encs, m->crew.parts, m->crew.n, core, p->out_tile, &dst, &m->own, err);
  double t2 = MPI_Wtime();
  ts_trace_add(&m->trace, TS_PHASE_COMPUTE, t, t1 - m->t0, t2 - m->t0, 0, 0);
  int placed;
  if (st == TS_OK) st = ts_order_put(order, t, &m->own, &placed, err);
  ts_trace_add(&m->trace, TS_PHASE_WRITE, t, t2 - m->t0, MPI_Wtime() - m->t0, 0, 0);
  m->ranks[0].tasks++;
  m->ranks[0].busy += MPI_Wtime() - t0;
  return st;
}

/* Store every result of a batch (a statistics pass: merge its partial). */
static ts_status store_batch(master *m, int src, ts_order *order, const ts_blob *rb, const ts_msg *h,
                             ts_error *err) {
  if (m->pass) {
    const ts_kernel *g = &m->plan->pipe->k[m->pass->kernel];
    int64_t len = g->def->stats_size(g, m->pass->stage);
    if (h->payload != len * (int64_t)sizeof(double))
      return ts_fail(err, TS_ERR_INTERNAL, "statistics of %lld bytes, expected %lld", (long long)h->payload,
                     (long long)(len * (int64_t)sizeof(double)));
    double *partial = malloc((size_t)h->payload);
    if (!partial) return ts_fail(err, TS_ERR_NOMEM, "out of memory for statistics");
    memcpy(partial, rb->p + sizeof *h, (size_t)h->payload); /* aligned copy */
    g->def->merge(g, m->pass->stage, m->merged, partial);
    free(partial);
    m->done += h->count;
    for (int64_t i = 0; i < h->count; i++) ts_progress_tick(m->progress, 0);
    if (h->count > 0) {
      double per = h->seconds / (double)h->count, *mean = &m->task_seconds[src];
      *mean = *mean > 0 ? 0.8 * *mean + 0.2 * per : per;
    }
    return TS_OK;
  }
  const unsigned char *index = rb->p + sizeof *h, *data = rb->p + ts_payload_offset(h->count);
  for (int64_t i = 0; i < h->count; i++) {
    ts_item it;
    memcpy(&it, index + (size_t)i * sizeof it, sizeof it);
    ts_blob one = {.p = (unsigned char *)data, .size = (size_t)it.bytes};
    int placed;
    double t_write = MPI_Wtime() - m->t0;
    ts_status st = ts_order_put(order, it.task, &one, &placed, err);
    ts_trace_add(&m->trace, TS_PHASE_WRITE, it.task, t_write, MPI_Wtime() - m->t0, 0, 0);
    if (st) return st;
    if (!placed) return ts_fail(err, TS_ERR_INTERNAL, "result of task %lld has no slot", (long long)it.task);
    data += it.bytes;
  }
  if (h->count > 0) { /* running mean of the compute time per task */
    double per = h->seconds / (double)h->count, *mean = &m->task_seconds[src];
    *mean = *mean > 0 ? 0.8 * *mean + 0.2 * per : per;
  }
  return TS_OK;
}

ts_status ts_master(const ts_job *job, ts_plan *plan, MPI_Comm comm, const ts_setup *su,
                    ts_run_stats *stats, FILE *log, ts_error *err) {
  MPI_Barrier(comm); /* the run's common start, for trace times */
  double t0 = MPI_Wtime(), cpu0 = cpu_seconds();
  int size;
  MPI_Comm_size(comm, &size);
  master m = {.job = job, .plan = plan, .comm = comm, .workers = size - 1, .credits = su->credits,
              .task_bytes = su->task_bytes, .t0 = t0, .trace = {.on = job->trace}};
  const int64_t T = plan->grid.tile, H = plan->grid.halo;
  ts_rect big = {0, 0, T + 2 * H, T + 2 * H};
  m.nsend = m.credits * m.workers;
  m.sends = calloc((size_t)m.nsend, sizeof *m.sends);
  m.fetch = malloc(ts_fetch_scratch_bytes(big));
  m.ranks = calloc((size_t)size, sizeof *m.ranks);
  m.task_seconds = calloc((size_t)size, sizeof *m.task_seconds);
  ts_progress progress;
  ts_order order = {0};
  ts_blob rb = {0};
  ts_status st = TS_OK;
  if (!m.sends || !m.fetch || !m.ranks || !m.task_seconds) st = ts_fail(err, TS_ERR_NOMEM, "out of memory");
  for (int i = 0; m.sends && i < m.nsend; i++) m.sends[i].req = MPI_REQUEST_NULL;
  ts_pass counted[TS_MAX_PASSES];
  ts_progress_init(&progress, job->progress ? log : NULL,
                   plan->grid.ntasks * (ts_passes(plan->pipe, counted) + 1), ts_now());
  m.progress = &progress;
  if (st == TS_OK) /* every task in flight has its own slot */
    st = ts_order_init(&order, plan->writer, &plan->grid, plan->out_tile, &progress,
                       (int64_t)m.nsend * TS_BATCH_TASKS + 1, err);
  order.journal = plan->journal;
  if (st == TS_OK) st = ts_plan_replay(plan, &order, err); /* --resume: the tasks done before */

  /* rank 0 computing delays its answers by one task: cheap with a few
   * workers (and it wins back the cores a small machine has), costly when
   * many workers wait on it */
  const int own = job->root_compute > 0 || (job->root_compute < 0 && m.workers <= 2);
  if (st == TS_OK && own) st = own_init(&m, err);
  ts_pass passes[TS_MAX_PASSES];
  int npasses = st == TS_OK ? ts_passes(plan->pipe, passes) : 0;
  int64_t prev_kernel = -1, prev_stage = -1, prev_len = 0;
  for (int i = 0; i <= npasses && st == TS_OK; i++) {
    m.pass = i < npasses ? &passes[i] : NULL;
    m.halo = m.pass ? ts_pipeline_halo_upto(plan->pipe, m.pass->kernel) : plan->grid.halo;
    m.next = m.done = 0;
    if (!m.pass) m.next = plan->resumed;
    const ts_jpass *saved = m.pass ? ts_plan_saved_pass(plan, m.pass->kernel, m.pass->stage) : NULL;
    /* announce the pass, with the last pass's statistics to resolve */
    if (npasses > 0) {
      ts_msg a = {.count = m.pass ? m.pass->kernel : -1, .kind = MSG_PASS, .status = m.pass ? m.pass->stage : 0};
      ts_blob ann = {0};
      int64_t hdr[2] = {prev_kernel, prev_stage};
      a.payload = (int64_t)(sizeof hdr + (size_t)prev_len * sizeof(double));
      if (ts_blob_append(&ann, &a, sizeof a) || ts_blob_append(&ann, hdr, sizeof hdr) ||
          (prev_len > 0 && ts_blob_append(&ann, m.merged, (size_t)prev_len * sizeof(double))))
        MPI_Abort(comm, 1); /* workers wait for this */
      for (int r = 1; r <= m.workers; r++) MPI_Send(ann.p, (int)ann.size, MPI_BYTE, r, TAG_WORK, comm);
      ts_blob_free(&ann);
    }
    free(m.merged);
    m.merged = NULL;
    if (m.pass) {
      const ts_kernel *g = &plan->pipe->k[m.pass->kernel];
      prev_len = g->def->stats_size(g, m.pass->stage);
      m.merged = malloc((size_t)prev_len * sizeof(double));
      if (!m.merged) {
        st = ts_fail(err, TS_ERR_NOMEM, "out of memory for statistics");
        break;
      }
      g->def->stats_init(g, m.pass->stage, m.merged);
      if (saved && saved->n == prev_len) { /* --resume: the previous run merged it; no task to run */
        memcpy(m.merged, saved->v, (size_t)prev_len * sizeof(double));
        m.done = m.next = plan->grid.ntasks;
      }
    }
    /* fill every worker's credits, then one new batch per result; once a
     * stop is requested, no new batch: what is in flight is finished and
     * stored (then everything handed out is done: end = m.next) */
    int64_t end = plan->grid.ntasks;
    for (int k = 0; k < m.credits && st == TS_OK; k++)
      for (int r = 1; r <= m.workers && st == TS_OK && m.next < plan->grid.ntasks; r++)
        st = send_batch(&m, r, err);
    long ns = 10000;
    while (st == TS_OK && (m.pass ? m.done : order.next) < end) {
      if (end > m.next && ts_stop_requested()) end = m.next;
      ts_msg h;
      int src = receive(&m, &rb, &h, 0);
      if (src < 0) { /* nothing to answer: compute, or sleep */
        if (own && m.next < end)
          st = own_task(&m, &order, err);
        else
          ts_backoff(&ns, &m.idle);
        continue;
      }
      ns = 10000;
      if (h.kind == MSG_ERROR) {
        st = ts_fail(err, (ts_status)h.status, "%s", (char *)rb.p + sizeof h);
        break;
      }
      st = store_batch(&m, src, &order, &rb, &h, err);
      if (st == TS_OK && m.next < end) st = send_batch(&m, src, err);
    }
    if (st == TS_OK && end < plan->grid.ntasks) { /* stopped early */
      st = ts_plan_stopped(plan, m.pass ? 0 : order.next, m.pass != NULL, stats, err);
      break;
    }
    if (st == TS_OK && m.pass) { /* save it for a resume; resolve on rank 0 too, for its own compute */
      ts_kernel *g = &plan->pipe->k[m.pass->kernel];
      st = ts_plan_pass_done(plan, m.pass->kernel, m.pass->stage, m.merged, prev_len, err);
      if (st == TS_OK) st = g->def->resolve(g, m.pass->stage, m.merged, err);
      prev_kernel = m.pass->kernel;
      prev_stage = m.pass->stage;
    }
  }
  free(m.merged);
  m.merged = NULL;
  ts_progress_done(&progress);
  if (st == TS_OK) {
    stats->checkpoints = plan->journal ? plan->journal->checkpoints : 0;
    st = ts_plan_finish(plan, err);
  }
  const int64_t written = order.next;

  /* stop everyone (the job's status travels with STOP), then drain until
   * each worker's FINAL: results still in flight are dropped */
  ts_msg stop = {.kind = MSG_STOP, .status = st};
  for (int r = 1; r <= m.workers; r++) MPI_Send(&stop, (int)sizeof stop, MPI_BYTE, r, TAG_WORK, comm);
  for (int finals = 0; finals < m.workers;) {
    ts_msg h;
    int src = receive(&m, &rb, &h, 1);
    if (h.kind == MSG_FINAL) {
      memcpy(&m.ranks[src], rb.p + sizeof h, sizeof *m.ranks);
      ts_trace theirs = {.ev = (ts_trace_event *)(rb.p + sizeof h + sizeof *m.ranks), .n = h.count};
      ts_trace_merge(&m.trace, &theirs);
      finals++;
    } else if (h.kind == MSG_ERROR && st == TS_OK) {
      st = ts_fail(err, (ts_status)h.status, "%s", (char *)rb.p + sizeof h);
    }
  }
  for (int i = 0; m.sends && i < m.nsend; i++) {
    MPI_Wait(&m.sends[i].req, MPI_STATUS_IGNORE);
    ts_blob_free(&m.sends[i].b);
  }
  double wall = MPI_Wtime() - t0;
  int64_t own_tasks = m.ranks[0].tasks;
  /* rank 0's busy time is the CPU it used: on a loaded machine a woken
   * rank 0 may wait for a core, which wall time would count as busy */
  m.ranks[0].busy = cpu_seconds() - cpu0;
  m.ranks[0].tasks = own_tasks;
  m.ranks[0].threads = own ? m.crew.n : 1;
  own_free(&m);
  gethostname(m.ranks[0].host, sizeof m.ranks[0].host - 1);
  stats->seconds = wall;
  stats->tasks = plan->grid.ntasks;
  stats->done = st == TS_OK ? plan->grid.ntasks : written;
  stats->resumed = plan->resumed;
  stats->pixels = plan->grid.w * plan->grid.h;
  stats->in_w = plan->grid.w;
  stats->in_h = plan->grid.h;
  stats->threads = m.ranks[size > 1 ? 1 : 0].threads;
  stats->out_tile = plan->out_tile;
  stats->nranks = size;
  stats->ranks = m.ranks;
  ts_passes_describe(plan->pipe, stats->resolved, sizeof stats->resolved);
  stats->nevents = m.trace.n;
  stats->events = m.trace.ev; /* ownership moves to stats */
  ts_order_free(&order);
  ts_blob_free(&rb);
  free(m.sends);
  free(m.fetch);
  free(m.task_seconds);
  return st;
}
