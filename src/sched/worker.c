/* A worker rank: receive a batch of tasks (the next batch is already on
 * its way while this one computes), compute it, send the encoded results
 * back (the previous send overlaps this compute). A batch with at least as
 * many tasks as threads runs one task per thread; a smaller one runs each
 * task with every thread on bands of rows. Both give the same bytes.
 * Waits sleep instead of spinning, so ranks that outnumber cores do not
 * steal them from each other. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "sched/fetch.h"
#include "sched/output.h"
#include "sched/protocol.h"
#include "sched/trace.h"

typedef struct worker {
  const ts_setup *su;
  ts_pipeline *pipe;
  ts_reader *reader; /* --io direct */
  int threads;
  ts_crew crew;         /* per thread: scratch, encoder, encoding buffer */
  void **inbuf, **outbuf, **fetch; /* per thread */
  ts_blob results[TS_BATCH_TASKS]; /* per task of a batch */
  ts_trace *trace; /* per thread */
  int rank;
  double t0; /* the run's start (after a barrier), for trace times */
  /* the pass under way (MSG_PASS): kernel -1 = apply */
  int pass_kernel, pass_stage;
  int64_t halo;
  double *partials; /* a statistics pass: one partial per thread */
  int64_t stats_len;
} worker;

static void worker_free(worker *w) {
  ts_crew_free(&w->crew);
  for (int i = 0; i < w->threads; i++) {
    if (w->inbuf) free(w->inbuf[i]);
    if (w->outbuf) free(w->outbuf[i]);
    if (w->fetch) free(w->fetch[i]);
  }
  for (int i = 0; i < TS_BATCH_TASKS; i++) ts_blob_free(&w->results[i]);
  for (int i = 0; w->trace && i < w->threads; i++) ts_trace_free(&w->trace[i]);
  free(w->trace);
  free(w->partials);
  free(w->inbuf);
  free(w->outbuf);
  free(w->fetch);
  ts_pipeline_free(&w->pipe);
  ts_reader_close(&w->reader);
}

/* Everything a worker needs before its first task; any failure here is
 * reported to rank 0 through ts_agree, naming this rank and host. */
static ts_status prepare(worker *w, const ts_setup *su, const char *input, const char *output,
                         const char *pipeline, MPI_Comm comm, ts_error *err) {
  memset(w, 0, sizeof *w);
  w->su = su;
  w->threads = su->threads > 0 ? su->threads : omp_get_max_threads();
  ts_status st = ts_pipeline_parse(pipeline, (ts_dtype)su->in_dtype, su->in_channels, &w->pipe, err);
  if (st) return st;
  MPI_Comm_rank(comm, &w->rank);
  w->pass_kernel = -1;
  w->halo = su->grid.halo;
  ts_pipeline_set_rank(w->pipe, w->rank);
  const int64_t T = su->grid.tile, H = su->grid.halo;
  if ((st = ts_crew_init(&w->crew, w->threads, output, &su->wopts, err))) return st;
  w->inbuf = calloc((size_t)w->threads, sizeof *w->inbuf);
  w->outbuf = calloc((size_t)w->threads, sizeof *w->outbuf);
  w->fetch = calloc((size_t)w->threads, sizeof *w->fetch);
  w->trace = calloc((size_t)w->threads, sizeof *w->trace);
  for (int i = 0; w->trace && i < w->threads; i++) w->trace[i].on = su->trace;
  if (!w->trace || !w->inbuf || !w->outbuf || !w->fetch)
    return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  ts_rect big = {0, 0, T + 2 * H, T + 2 * H};
  for (int i = 0; i < w->threads; i++) {
    w->outbuf[i] = malloc((size_t)ts_image_bytes(T, T, TS_MAX_CHANNELS, TS_F32)); /* any kernel's output */
    if (!w->outbuf[i]) return ts_fail(err, TS_ERR_NOMEM, "out of memory for the output tile");
    if (su->io == TS_IO_DIRECT) {
      w->inbuf[i] = malloc((size_t)su->task_bytes);
      w->fetch[i] = malloc(ts_fetch_scratch_bytes(big));
      if (!w->inbuf[i] || !w->fetch[i]) return ts_fail(err, TS_ERR_NOMEM, "out of memory for the input tile");
    }
  }
  if (su->io == TS_IO_DIRECT) {
    if ((st = ts_reader_open(input, &w->reader, err))) return ts_note_relative(input, st, err);
    const ts_image_info *i = &w->reader->info;
    if (i->w != su->grid.w || i->h != su->grid.h || (int32_t)i->dtype != su->in_dtype ||
        i->channels != su->in_channels)
      return ts_fail(err, TS_ERR_FORMAT, "%s: is not the image rank 0 sees (%lldx%lld %s x%d here)",
                     input, (long long)i->w, (long long)i->h, ts_dtype_name(i->dtype), i->channels);
    ts_plan_size_cache(w->reader, &su->grid);
  }
  return TS_OK;
}

/* Compute task t on thread slot `me` with `nthreads` threads for bands;
 * its input is at `pixels` (--io root) or read here (--io direct). The
 * encoded tiles go to `out`. */
static ts_status compute(worker *w, int64_t t, const void *pixels, int me, int nthreads, ts_blob *out,
                         ts_error *err) {
  const ts_setup *su = w->su;
  ts_rect core = ts_grid_core(&su->grid, t), in = ts_grid_input_halo(&su->grid, t, w->halo);
  ts_image src;
  double t_start = MPI_Wtime() - w->t0;
  if (su->io == TS_IO_DIRECT) {
    ts_status st;
    src = ts_image_packed(w->inbuf[me], in.w, in.h, su->in_channels, (ts_dtype)su->in_dtype);
#pragma omp critical(ts_worker_reader)
    st = ts_fetch_rect(w->reader, in, (ts_boundary)su->boundary, su->cval, &src, w->fetch[me], err);
    if (st) return st;
  } else {
    src = ts_image_packed((void *)pixels, in.w, in.h, su->in_channels, (ts_dtype)su->in_dtype);
  }
  if (w->pass_kernel >= 0) { /* statistics: the kernels before the global one */
    const ts_kernel *g = &w->pipe->k[w->pass_kernel];
    ts_image dst = ts_image_packed(w->outbuf[me], core.w, core.h, g->in_channels, g->in_dtype);
    ts_status st = ts_pipeline_run_upto(w->pipe, w->pass_kernel, &src, &dst,
                                        nthreads > 1 ? w->crew.scratch : &w->crew.scratch[me], nthreads, err);
    if (st == TS_OK) g->def->accumulate(g, w->pass_stage, &dst, w->partials + me * w->stats_len);
    ts_trace_add(&w->trace[me], TS_PHASE_COMPUTE, t, t_start, MPI_Wtime() - w->t0, w->rank, me);
    return st;
  }
  ts_image dst = ts_image_packed(w->outbuf[me], core.w, core.h, w->pipe->out_channels, w->pipe->out_dtype);
  ts_status st = nthreads > 1 ? ts_pipeline_run_bands(w->pipe, &src, &dst, w->crew.scratch, nthreads, err)
                              : ts_pipeline_run(w->pipe, &src, &dst, w->crew.scratch[me], err);
  if (st) return st;
  out->size = 0;
  st = ts_encode_core(nthreads > 1 ? w->crew.encs : &w->crew.encs[me], w->crew.parts, nthreads, core,
                      su->out_tile, &dst, out, err);
  ts_trace_add(&w->trace[me], TS_PHASE_COMPUTE, t, t_start, MPI_Wtime() - w->t0, w->rank, me);
  return st;
}

/* MSG_PASS: resolve the last pass's statistics as rank 0 did, then set up
 * the pass now starting. */
static ts_status start_pass(worker *w, const ts_msg *m, const unsigned char *payload, ts_error *err) {
  int64_t hdr[2];
  memcpy(hdr, payload, sizeof hdr);
  if (hdr[0] >= 0) {
    ts_kernel *g = &w->pipe->k[hdr[0]];
    int64_t len = g->def->stats_size(g, (int)hdr[1]);
    double *merged = malloc((size_t)len * sizeof *merged);
    if (!merged) return ts_fail(err, TS_ERR_NOMEM, "out of memory for statistics");
    memcpy(merged, payload + sizeof hdr, (size_t)len * sizeof *merged);
    ts_status st = g->def->resolve(g, (int)hdr[1], merged, err);
    free(merged);
    if (st) return st;
  }
  w->pass_kernel = (int)m->count;
  w->pass_stage = m->status;
  w->halo = w->pass_kernel >= 0 ? ts_pipeline_halo_upto(w->pipe, w->pass_kernel) : w->su->grid.halo;
  free(w->partials);
  w->partials = NULL;
  if (w->pass_kernel >= 0) {
    const ts_kernel *g = &w->pipe->k[w->pass_kernel];
    w->stats_len = g->def->stats_size(g, w->pass_stage);
    w->partials = malloc((size_t)(w->threads * w->stats_len) * sizeof *w->partials);
    if (!w->partials) return ts_fail(err, TS_ERR_NOMEM, "out of memory for statistics");
  }
  return TS_OK;
}

/* Compute a batch (index `items`, pixels after it) into w->results. */
static ts_status compute_batch(worker *w, const ts_item *items, int64_t n, const unsigned char *pixels,
                               ts_error *err) {
  const unsigned char *at[TS_BATCH_TASKS];
  for (int64_t i = 0; i < n; i++) {
    at[i] = pixels;
    pixels += items[i].bytes;
  }
  ts_status st = TS_OK;
  if (w->pass_kernel >= 0) {
    const ts_kernel *g = &w->pipe->k[w->pass_kernel];
    for (int i = 0; i < w->threads; i++) g->def->stats_init(g, w->pass_stage, w->partials + i * w->stats_len);
  }
  if (n < w->threads || w->threads == 1) {
    for (int64_t i = 0; i < n && st == TS_OK; i++)
      st = compute(w, items[i].task, at[i], 0, w->threads, &w->results[i], err);
    return st;
  }
  /* one task per thread (statistics go to each thread's partial) */
#pragma omp parallel for num_threads(w->threads) schedule(dynamic, 1)
  for (int64_t i = 0; i < n; i++) {
    ts_error e = {0};
    ts_status s = compute(w, items[i].task, at[i], omp_get_thread_num(), 1, &w->results[i], &e);
    if (s) {
#pragma omp critical(ts_batch_error)
      if (st == TS_OK) st = ts_fail(err, s, "%s", e.msg);
    }
  }
  return st;
}

ts_status ts_worker(const ts_setup *su, const char *input, const char *output, const char *pipeline,
                    MPI_Comm comm, ts_rank_stats *mine, ts_error *err) {
  worker w;
  ts_error local = {0};
  ts_status st = prepare(&w, su, input, output, pipeline, comm, &local);
  if ((st = ts_agree(st, &local, comm, err))) {
    worker_free(&w);
    return st;
  }
  memset(mine, 0, sizeof *mine);
  mine->threads = w.threads;
  gethostname(mine->host, sizeof mine->host - 1);
  MPI_Barrier(comm); /* the run's common start, for trace times */
  double t_start = MPI_Wtime();
  w.t0 = t_start;

  /* two receive buffers (the next batch arrives during this one) and two
   * result buffers (the last send drains during this compute) */
  size_t in_max = sizeof(ts_msg) + TS_BATCH_TASKS * sizeof(ts_item) +
                  (su->io == TS_IO_ROOT ? (size_t)(su->task_bytes > TS_BATCH_BYTES ? su->task_bytes : TS_BATCH_BYTES) : 0);
  in_max += 64; /* the payload's alignment padding */
  unsigned char *rbuf[2] = {NULL, NULL};
  if (posix_memalign((void **)&rbuf[0], 64, in_max) || posix_memalign((void **)&rbuf[1], 64, in_max))
    MPI_Abort(comm, 1); /* cannot even receive STOP */
  ts_blob res[2] = {{0}, {0}};
  MPI_Request rreq[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL}, sreq[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
  int cur = 0, failed = 0;
  int32_t final_status = TS_OK;
  MPI_Irecv(rbuf[0], (int)in_max, MPI_BYTE, 0, TAG_WORK, comm, &rreq[0]);
  for (;;) {
    double t_wait = MPI_Wtime() - t_start;
    ts_wait_gently(&rreq[cur], NULL, NULL);
    ts_msg m;
    memcpy(&m, rbuf[cur], sizeof m);
    if (m.kind == MSG_TASK) {
      int64_t first;
      memcpy(&first, rbuf[cur] + sizeof m, sizeof first);
      ts_trace_add(&w.trace[0], TS_PHASE_RECEIVE, first, t_wait, MPI_Wtime() - t_start, w.rank, 0);
    }
    if (m.kind == MSG_STOP) {
      final_status = m.status;
      break;
    }
    MPI_Irecv(rbuf[!cur], (int)in_max, MPI_BYTE, 0, TAG_WORK, comm, &rreq[!cur]);
    if (m.kind == MSG_PASS) {
      ts_error e = {0};
      if (!failed && (st = start_pass(&w, &m, rbuf[cur] + sizeof m, &e))) {
        failed = 1; /* report now: rank 0 stops everyone */
        ts_msg r = {.kind = MSG_ERROR, .status = st};
        ts_blob *out = &res[cur];
        ts_wait_gently(&sreq[cur], NULL, NULL);
        out->size = 0;
        ts_blob_append(out, &r, sizeof r);
        ts_blob_append(out, e.msg, strlen(e.msg) + 1);
        ((ts_msg *)out->p)->payload = (int64_t)(out->size - sizeof r);
        MPI_Isend(out->p, (int)out->size, MPI_BYTE, 0, TAG_DONE, comm, &sreq[cur]);
      }
      cur = !cur;
      continue;
    }
    mine->bytes_received += (int64_t)sizeof m + m.payload;
    double t0 = MPI_Wtime();
    const ts_item *items = (const ts_item *)(rbuf[cur] + sizeof m);
    ts_blob *out = &res[cur];
    ts_msg r = {.count = m.count, .kind = MSG_RESULT};
    ts_error e = {0};
    if (!failed) st = compute_batch(&w, items, m.count, rbuf[cur] + ts_payload_offset(m.count), &e);
    ts_wait_gently(&sreq[cur], NULL, NULL); /* this buffer's last send */
    out->size = 0;
    if (failed || st) { /* report once; rank 0 stops everyone */
      r.kind = MSG_ERROR;
      r.count = 0;
      r.status = failed ? TS_ERR_INTERNAL : st;
      ts_blob_append(out, &r, sizeof r);
      if (!failed) ts_blob_append(out, e.msg, strlen(e.msg) + 1);
      failed = 1;
    } else if (w.pass_kernel >= 0) { /* statistics: the batch's merged partial */
      const ts_kernel *g = &w.pipe->k[w.pass_kernel];
      for (int i = 1; i < w.threads; i++) g->def->merge(g, w.pass_stage, w.partials, w.partials + i * w.stats_len);
      if (ts_blob_append(out, &r, sizeof r) ||
          ts_blob_append(out, w.partials, (size_t)w.stats_len * sizeof(double)))
        MPI_Abort(comm, 1); /* the result cannot even be reported */
      mine->tasks += m.count;
    } else {
      int ok = ts_blob_reserve(out, ts_payload_offset(m.count)) == 0;
      if (ok) memset(out->p, 0, ts_payload_offset(m.count));
      out->size = ts_payload_offset(m.count);
      for (int64_t i = 0; ok && i < m.count; i++) {
        ts_item it = {items[i].task, (int64_t)w.results[i].size};
        memcpy(out->p + sizeof r + (size_t)i * sizeof it, &it, sizeof it);
      }
      for (int64_t i = 0; i < m.count; i++) ok &= ts_blob_append(out, w.results[i].p, w.results[i].size) == 0;
      if (!ok) MPI_Abort(comm, 1); /* the result cannot even be reported */
      mine->tasks += m.count;
    }
    r.seconds = MPI_Wtime() - t0;
    r.payload = (int64_t)(out->size - sizeof r);
    memcpy(out->p, &r, sizeof r);
    mine->busy += r.seconds;
    mine->bytes_sent += (int64_t)out->size;
    double t_send = MPI_Wtime() - t_start;
    MPI_Isend(out->p, (int)out->size, MPI_BYTE, 0, TAG_DONE, comm, &sreq[cur]);
    if (m.count > 0)
      ts_trace_add(&w.trace[0], TS_PHASE_SEND, items[0].task, t_send, MPI_Wtime() - t_start, w.rank, 0);
    cur = !cur;
  }
  MPI_Waitall(2, sreq, MPI_STATUSES_IGNORE);
  /* FINAL: this rank's figures and trace events for rank 0 */
  for (int i = 1; i < w.threads; i++) ts_trace_merge(&w.trace[0], &w.trace[i]);
  ts_msg f = {.kind = MSG_FINAL, .count = w.trace[0].n, .seconds = MPI_Wtime() - t_start};
  ts_blob fin = {0};
  if (ts_blob_append(&fin, &f, sizeof f) || ts_blob_append(&fin, mine, sizeof *mine) ||
      ts_blob_append(&fin, w.trace[0].ev, (size_t)w.trace[0].n * sizeof *w.trace[0].ev))
    MPI_Abort(comm, 1); /* rank 0 waits for this message */
  f.payload = (int64_t)(fin.size - sizeof f);
  memcpy(fin.p, &f, sizeof f);
  MPI_Send(fin.p, (int)fin.size, MPI_BYTE, 0, TAG_DONE, comm);
  ts_blob_free(&fin);
  free(rbuf[0]);
  free(rbuf[1]);
  ts_blob_free(&res[0]);
  ts_blob_free(&res[1]);
  worker_free(&w);
  if (final_status != TS_OK)
    return ts_fail(err, (ts_status)final_status, final_status == TS_STOPPED ? "the job stopped early" : "the job failed");
  return TS_OK;
}
