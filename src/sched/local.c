/* The single-process engine. OpenMP threads each take whole tasks: read
 * the input (under the reader lock, through the reader's cache), run the
 * pipeline on buffers allocated once per thread, encode (compress) the
 * core's output tiles, then hand the encoded tiles to the ordered store.
 * A result that arrives early waits in one of `threads` pending slots
 * (copied), so threads keep computing; when every slot is full the
 * finishing thread waits for the store. Task order on disk makes the
 * output file byte-identical for any thread count. */
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "sched/fetch.h"
#include "sched/list.h"
#include "sched/output.h"
#include "sched/passes.h"
#include "sched/plan.h"
#include "sched/trace.h"

enum { SLOT_IN = 10, SLOT_OUT = 11, SLOT_FETCH = 12 };

typedef struct engine {
  ts_plan *plan;
  ts_order order;     /* write_lock */
  pthread_mutex_t read_lock, write_lock;
  pthread_cond_t written;
  int64_t next_task;  /* read_lock */
  int failed;         /* write_lock; read racily as a hint to stop early */
  int stopped;        /* read_lock: ts_request_stop was seen; no new task */
  ts_error err;       /* write_lock: first failure */
  ts_progress progress;
  double t0;          /* the run's start, for trace times */
  ts_trace trace;     /* write_lock: every thread's events, merged at exit */
} engine;

static void fail(engine *e, const ts_error *err) {
  pthread_mutex_lock(&e->write_lock);
  if (!e->failed) e->err = *err;
  e->failed = 1;
  pthread_cond_broadcast(&e->written);
  pthread_mutex_unlock(&e->write_lock);
}

/* The next task, or -1 when there is none or a stop was requested (then
 * no thread takes another). Called under read_lock. */
static int64_t take_task(engine *e) {
  if (ts_stop_requested()) e->stopped = 1;
  return !e->stopped && e->next_task < e->plan->grid.ntasks ? e->next_task++ : -1;
}

/* Hand task t's encoded tiles to the ordered store, waiting while every
 * pending slot is full. */
static ts_status deliver(engine *e, int64_t t, const ts_blob *b, ts_error *err) {
  ts_status st = TS_OK;
  pthread_mutex_lock(&e->write_lock);
  for (int placed = 0; !placed && !e->failed && st == TS_OK;) {
    st = ts_order_put(&e->order, t, b, &placed, err);
    if (!placed && st == TS_OK) pthread_cond_wait(&e->written, &e->write_lock);
  }
  pthread_cond_broadcast(&e->written);
  pthread_mutex_unlock(&e->write_lock);
  return st;
}

static void worker(engine *e) {
  ts_error err = {0};
  const ts_plan *pl = e->plan;
  const ts_pipeline *p = pl->pipe;
  const ts_image_info *info = &pl->reader->info;
  const int64_t T = pl->grid.tile, H = pl->grid.halo;
  ts_scratch *s = ts_scratch_new();
  ts_encoder *enc = NULL;
  ts_blob encoded = {0};
  ts_trace tr = {.on = pl->job->trace};
  const int me = omp_get_thread_num();
  ts_status st = s ? ts_encoder_new(pl->job->output, &pl->wopts, &enc, &err)
                   : ts_fail(&err, TS_ERR_NOMEM, "out of memory");
  /* buffers sized for the largest task, allocated once per thread */
  ts_rect biggest = {0, 0, T + 2 * H, T + 2 * H};
  void *inbuf = s ? ts_scratch_get(s, SLOT_IN, (size_t)ts_image_bytes(T + 2 * H, T + 2 * H, info->channels, info->dtype)) : NULL;
  void *outbuf = s ? ts_scratch_get(s, SLOT_OUT, (size_t)ts_image_bytes(T, T, p->out_channels, p->out_dtype)) : NULL;
  void *fetch = s ? ts_scratch_get(s, SLOT_FETCH, ts_fetch_scratch_bytes(biggest)) : NULL;
  if (st == TS_OK && (!inbuf || !outbuf || !fetch))
    st = ts_fail(&err, TS_ERR_NOMEM, "out of memory for %lldx%lld tile buffers", (long long)(T + 2 * H),
                 (long long)(T + 2 * H));
  while (st == TS_OK && !e->failed) {
    pthread_mutex_lock(&e->read_lock);
    double t_read = ts_now() - e->t0;
    int64_t t = take_task(e);
    ts_rect core = {0}, in = {0};
    ts_image src = {0};
    if (t >= 0) {
      core = ts_grid_core(&pl->grid, t);
      in = ts_grid_input(&pl->grid, t);
      src = ts_image_packed(inbuf, in.w, in.h, info->channels, info->dtype);
      st = ts_fetch_rect(pl->reader, in, pl->job->boundary, pl->job->cval, &src, fetch, &err);
    }
    pthread_mutex_unlock(&e->read_lock);
    if (t < 0 || st) break;
    double t_compute = ts_now() - e->t0;
    ts_trace_add(&tr, TS_PHASE_READ, t, t_read, t_compute, 0, me);
    ts_image dst = ts_image_packed(outbuf, core.w, core.h, p->out_channels, p->out_dtype);
    st = ts_pipeline_run(p, &src, &dst, s, &err);
    encoded.size = 0;
    if (st == TS_OK) st = ts_encode_core(&enc, NULL, 1, core, pl->out_tile, &dst, &encoded, &err);
    double t_write = ts_now() - e->t0;
    ts_trace_add(&tr, TS_PHASE_COMPUTE, t, t_compute, t_write, 0, me);
    if (st == TS_OK) st = deliver(e, t, &encoded, &err);
    ts_trace_add(&tr, TS_PHASE_WRITE, t, t_write, ts_now() - e->t0, 0, me);
  }
  if (st) fail(e, &err);
  pthread_mutex_lock(&e->write_lock);
  ts_trace_merge(&e->trace, &tr);
  pthread_mutex_unlock(&e->write_lock);
  ts_trace_free(&tr);
  ts_blob_free(&encoded);
  ts_encoder_free(&enc);
  ts_scratch_free(&s);
}

/* One statistics pass: each thread runs the kernels before the global one
 * on whole tasks and accumulates its own partial. */
static void stats_worker(engine *e, const ts_pass *ps, double *partial) {
  ts_error err = {0};
  const ts_plan *pl = e->plan;
  const ts_kernel *g = &pl->pipe->k[ps->kernel];
  const ts_image_info *info = &pl->reader->info;
  const int64_t T = pl->grid.tile, H = ts_pipeline_halo_upto(pl->pipe, ps->kernel);
  ts_scratch *s = ts_scratch_new();
  ts_rect biggest = {0, 0, T + 2 * H, T + 2 * H};
  void *inbuf = s ? ts_scratch_get(s, SLOT_IN, (size_t)ts_image_bytes(T + 2 * H, T + 2 * H, info->channels, info->dtype)) : NULL;
  void *outbuf = s ? ts_scratch_get(s, SLOT_OUT, (size_t)ts_image_bytes(T, T, g->in_channels, g->in_dtype)) : NULL;
  void *fetch = s ? ts_scratch_get(s, SLOT_FETCH, ts_fetch_scratch_bytes(biggest)) : NULL;
  ts_status st = inbuf && outbuf && fetch ? TS_OK : ts_fail(&err, TS_ERR_NOMEM, "out of memory");
  while (st == TS_OK && !e->failed) {
    pthread_mutex_lock(&e->read_lock);
    int64_t t = take_task(e);
    ts_rect core = {0}, in = {0};
    ts_image src = {0};
    if (t >= 0) {
      core = ts_grid_core(&pl->grid, t);
      in = ts_grid_input_halo(&pl->grid, t, H);
      src = ts_image_packed(inbuf, in.w, in.h, info->channels, info->dtype);
      st = ts_fetch_rect(pl->reader, in, pl->job->boundary, pl->job->cval, &src, fetch, &err);
    }
    pthread_mutex_unlock(&e->read_lock);
    if (t < 0 || st) break;
    ts_image dst = ts_image_packed(outbuf, core.w, core.h, g->in_channels, g->in_dtype);
    st = ts_pipeline_run_upto(pl->pipe, ps->kernel, &src, &dst, &s, 1, &err);
    if (st == TS_OK) g->def->accumulate(g, ps->stage, &dst, partial);
    pthread_mutex_lock(&e->write_lock);
    ts_progress_tick(&e->progress, core.w * core.h);
    pthread_mutex_unlock(&e->write_lock);
  }
  if (st) fail(e, &err);
  ts_scratch_free(&s);
}

/* Run every statistics pass, resolving the global kernels in turn. */
static ts_status stats_passes(engine *e, int threads, ts_error *err) {
  ts_pass passes[TS_MAX_PASSES];
  int n = ts_passes(e->plan->pipe, passes);
  for (int i = 0; i < n && !e->failed; i++) {
    ts_kernel *g = &e->plan->pipe->k[passes[i].kernel];
    int64_t len = g->def->stats_size(g, passes[i].stage);
    double *partials = malloc((size_t)(threads * len) * sizeof *partials);
    if (!partials) return ts_fail(err, TS_ERR_NOMEM, "out of memory for statistics");
    const ts_jpass *saved = ts_plan_saved_pass(e->plan, passes[i].kernel, passes[i].stage);
    if (saved && saved->n == len) { /* --resume: the previous run merged it */
      memcpy(partials, saved->v, (size_t)len * sizeof *partials);
      ts_status st = g->def->resolve(g, passes[i].stage, partials, err);
      free(partials);
      if (st) return st;
      continue;
    }
    for (int t = 0; t < threads; t++) g->def->stats_init(g, passes[i].stage, partials + t * len);
    e->next_task = 0;
#pragma omp parallel num_threads(threads)
    stats_worker(e, &passes[i], partials + omp_get_thread_num() * len);
    for (int t = 1; t < threads; t++) g->def->merge(g, passes[i].stage, partials, partials + t * len);
    ts_status st = e->failed || e->stopped ? TS_OK : ts_plan_pass_done(e->plan, passes[i].kernel, passes[i].stage,
                                                                          partials, len, err);
    if (st == TS_OK && !e->failed && !e->stopped) st = g->def->resolve(g, passes[i].stage, partials, err);
    free(partials);
    if (st) return st;
    if (e->stopped && !e->failed) return TS_STOPPED; /* the partial statistics are of no use */
  }
  e->next_task = e->plan->resumed;
  return TS_OK;
}

void ts_job_init(ts_job *job) {
  memset(job, 0, sizeof *job);
  job->pipeline = "";
  job->tile = 1024;
  job->boundary = TS_BOUNDARY_REFLECT;
  job->compression = TS_COMPRESS_NONE;
  job->quality = 90;
  job->root_compute = -1;
  job->checkpoint_seconds = 10;
}

ts_status ts_run_local(const ts_job *job, ts_run_stats *stats, FILE *log, ts_error *err) {
  if (job->strips > 0 || ts_inputs_is_list(job->input)) return ts_run_list_local(job, stats, log, err);
  ts_plan plan;
  engine e = {.plan = &plan};
  double t0 = ts_now();
  e.t0 = t0;
  e.trace.on = job->trace;
  memset(stats, 0, sizeof *stats);
  ts_status st = ts_plan_open(&plan, job, err);
  if (st) return st;
  int threads = job->threads > 0 ? job->threads : omp_get_max_threads();
  if (threads > plan.grid.ntasks) threads = (int)plan.grid.ntasks;
  ts_pass passes[TS_MAX_PASSES];
  int npasses = ts_passes(plan.pipe, passes);
  ts_progress_init(&e.progress, job->progress ? log : NULL, plan.grid.ntasks * (npasses + 1), t0);
  if ((st = ts_order_init(&e.order, plan.writer, &plan.grid, plan.out_tile, &e.progress, threads, err))) {
    ts_plan_close(&plan);
    return st;
  }
  pthread_mutex_init(&e.read_lock, NULL);
  pthread_mutex_init(&e.write_lock, NULL);
  pthread_cond_init(&e.written, NULL);

  e.order.journal = plan.journal;
  st = ts_plan_replay(&plan, &e.order, err); /* --resume: the tasks done before */
  e.next_task = plan.resumed;
  if (st == TS_OK) st = stats_passes(&e, threads, err);
  if (st == TS_OK) {
#pragma omp parallel num_threads(threads)
    worker(&e);
  }

  ts_progress_done(&e.progress);
  pthread_mutex_destroy(&e.read_lock);
  pthread_mutex_destroy(&e.write_lock);
  pthread_cond_destroy(&e.written);
  const int64_t written = e.order.next;
  ts_order_free(&e.order);
  if (e.failed)
    st = ts_fail(err, e.err.code, "%s", e.err.msg);
  else if (st == TS_STOPPED || (st == TS_OK && e.stopped))
    st = ts_plan_stopped(&plan, written, st == TS_STOPPED, stats, err);
  else if (st == TS_OK) {
    stats->checkpoints = plan.journal ? plan.journal->checkpoints : 0;
    st = ts_plan_finish(&plan, err);
  }
  stats->done = st == TS_OK ? plan.grid.ntasks : written;
  stats->resumed = plan.resumed;
  ts_passes_describe(plan.pipe, stats->resolved, sizeof stats->resolved);
  stats->seconds = ts_now() - t0;
  stats->tasks = plan.grid.ntasks;
  stats->pixels = plan.grid.w * plan.grid.h;
  stats->in_w = plan.grid.w;
  stats->in_h = plan.grid.h;
  stats->threads = threads;
  stats->out_tile = plan.out_tile;
  stats->nevents = e.trace.n;
  stats->events = e.trace.ev; /* ownership moves to stats */
  ts_plan_close(&plan);
  return st;
}
