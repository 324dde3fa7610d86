/* Rank 0 of an MPI run: hands tasks to workers on demand (each worker has
 * `credits` tasks in flight, so a slow worker simply takes fewer), reads
 * their input with --io root, receives encoded results in any order and
 * stores them in task order. It waits by sleeping with a backoff, never by
 * spinning, so it costs little on a machine whose cores the workers use.
 * On any failure it stops handing out work, tells every worker to stop,
 * and drains their last messages: no rank is left waiting. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "sched/fetch.h"
#include "sched/output.h"
#include "sched/protocol.h"

typedef struct send_slot {
  MPI_Request req;
  unsigned char *buf;
} send_slot;

typedef struct master {
  const ts_job *job;
  ts_plan *plan;
  MPI_Comm comm;
  int workers, nsend;
  send_slot *sends;
  size_t send_max;
  void *fetch;
  int64_t next;    /* next task to hand out */
  double idle;
  ts_rank_stats *ranks;
} master;

/* Sleep a little more each time nothing happened (10 us .. 1 ms). */
static void backoff(long *ns, double *idle) {
  struct timespec ts = {0, *ns};
  double t = MPI_Wtime();
  nanosleep(&ts, NULL);
  *idle += MPI_Wtime() - t; /* the real sleep: timer slack adds ~50 us */
  if (*ns < 1000000) *ns *= 2;
}

static send_slot *free_send(master *m) {
  long ns = 10000;
  for (;;) {
    for (int i = 0; i < m->nsend; i++) {
      int done = 1;
      if (m->sends[i].req != MPI_REQUEST_NULL) MPI_Test(&m->sends[i].req, &done, MPI_STATUS_IGNORE);
      if (done) {
        if (!m->sends[i].buf && !(m->sends[i].buf = malloc(m->send_max))) return NULL;
        return &m->sends[i];
      }
    }
    backoff(&ns, &m->idle);
  }
}

/* Hand the next task to worker r. */
static ts_status send_task(master *m, int r, ts_error *err) {
  send_slot *s = free_send(m);
  if (!s) return ts_fail(err, TS_ERR_NOMEM, "out of memory for task buffers");
  const ts_plan *p = m->plan;
  ts_msg h = {.task = m->next, .kind = MSG_TASK};
  if (m->job->io == TS_IO_ROOT) {
    ts_rect in = ts_grid_input(&p->grid, m->next);
    const ts_image_info *info = &p->reader->info;
    ts_image dst = ts_image_packed(s->buf + sizeof h, in.w, in.h, info->channels, info->dtype);
    ts_status st = ts_fetch_rect(p->reader, in, m->job->boundary, m->job->cval, &dst, m->fetch, err);
    if (st) return st;
    h.payload = ts_image_bytes(in.w, in.h, info->channels, info->dtype);
  }
  memcpy(s->buf, &h, sizeof h);
  MPI_Isend(s->buf, (int)(sizeof h + (size_t)h.payload), MPI_BYTE, r, TAG_WORK, m->comm, &s->req);
  m->ranks[0].bytes_sent += (int64_t)sizeof h + h.payload;
  m->next++;
  return TS_OK;
}

/* Receive the next worker message into rb, sleeping while there is none. */
static int receive(master *m, ts_blob *rb, ts_msg *h) {
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
      MPI_Mrecv(rb->p, n, MPI_BYTE, &msg, MPI_STATUS_IGNORE);
      rb->size = (size_t)n;
      memcpy(h, rb->p, sizeof *h);
      m->ranks[0].bytes_received += n;
      return status.MPI_SOURCE;
    }
    backoff(&ns, &m->idle);
  }
}

ts_status ts_master(const ts_job *job, ts_plan *plan, MPI_Comm comm, int credits,
                    ts_run_stats *stats, FILE *log, ts_error *err) {
  double t0 = MPI_Wtime();
  int size;
  MPI_Comm_size(comm, &size);
  master m = {.job = job, .plan = plan, .comm = comm, .workers = size - 1};
  const int64_t T = plan->grid.tile, H = plan->grid.halo;
  const ts_image_info *info = &plan->reader->info;
  ts_rect big = {0, 0, T + 2 * H, T + 2 * H};
  m.send_max = sizeof(ts_msg) + (job->io == TS_IO_ROOT ? (size_t)ts_image_bytes(T + 2 * H, T + 2 * H, info->channels, info->dtype) : 0);
  m.nsend = credits * m.workers;
  m.sends = calloc((size_t)m.nsend, sizeof *m.sends);
  m.fetch = malloc(ts_fetch_scratch_bytes(big));
  m.ranks = calloc((size_t)size, sizeof *m.ranks);
  ts_progress progress;
  ts_order order = {0};
  ts_blob rb = {0};
  ts_status st = TS_OK;
  if (!m.sends || !m.fetch || !m.ranks) st = ts_fail(err, TS_ERR_NOMEM, "out of memory");
  for (int i = 0; m.sends && i < m.nsend; i++) m.sends[i].req = MPI_REQUEST_NULL;
  ts_progress_init(&progress, job->progress ? log : NULL, plan->grid.ntasks, ts_now());
  if (st == TS_OK)
    st = ts_order_init(&order, plan->writer, &plan->grid, plan->out_tile, &progress, m.nsend + 1, err);

  /* fill every worker's credits, then one new task per result */
  for (int k = 0; k < credits && st == TS_OK; k++)
    for (int r = 1; r <= m.workers && st == TS_OK && m.next < plan->grid.ntasks; r++)
      st = send_task(&m, r, err);
  while (st == TS_OK && order.next < plan->grid.ntasks) {
    ts_msg h;
    int src = receive(&m, &rb, &h);
    if (h.kind == MSG_ERROR) {
      st = ts_fail(err, (ts_status)h.status, "%s", (char *)rb.p + sizeof h);
      break;
    }
    ts_blob result = {.p = rb.p + sizeof h, .size = (size_t)h.payload};
    int placed;
    st = ts_order_put(&order, h.task, &result, &placed, err);
    if (st == TS_OK && !placed) st = ts_fail(err, TS_ERR_INTERNAL, "result of task %lld has no slot", (long long)h.task);
    if (st == TS_OK && m.next < plan->grid.ntasks) st = send_task(&m, src, err);
  }
  ts_progress_done(&progress);
  if (st == TS_OK) st = ts_writer_finish(&plan->writer, err);

  /* stop everyone (the job's status travels with STOP), then drain until
   * each worker's FINAL: results still in flight are dropped */
  ts_msg stop = {.kind = MSG_STOP, .status = st};
  for (int r = 1; r <= m.workers; r++) MPI_Send(&stop, (int)sizeof stop, MPI_BYTE, r, TAG_WORK, comm);
  for (int finals = 0; finals < m.workers;) {
    ts_msg h;
    int src = receive(&m, &rb, &h);
    if (h.kind == MSG_FINAL) {
      memcpy(&m.ranks[src], rb.p + sizeof h, sizeof *m.ranks);
      finals++;
    } else if (h.kind == MSG_ERROR && st == TS_OK) {
      st = ts_fail(err, (ts_status)h.status, "%s", (char *)rb.p + sizeof h);
    }
  }
  for (int i = 0; m.sends && i < m.nsend; i++) {
    MPI_Wait(&m.sends[i].req, MPI_STATUS_IGNORE);
    free(m.sends[i].buf);
  }
  double wall = MPI_Wtime() - t0;
  m.ranks[0].busy = wall - m.idle;
  m.ranks[0].threads = 1;
  gethostname(m.ranks[0].host, sizeof m.ranks[0].host - 1);
  stats->seconds = wall;
  stats->tasks = plan->grid.ntasks;
  stats->pixels = plan->grid.w * plan->grid.h;
  stats->in_w = plan->grid.w;
  stats->in_h = plan->grid.h;
  stats->threads = m.ranks[size > 1 ? 1 : 0].threads;
  stats->out_tile = plan->out_tile;
  stats->nranks = size;
  stats->ranks = m.ranks;
  ts_order_free(&order);
  ts_blob_free(&rb);
  free(m.sends);
  free(m.fetch);
  return st;
}
