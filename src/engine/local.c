/* The one-process loop, for every task kind. OpenMP threads each take
 * whole tasks: under the read lock a thread takes the next position and
 * reads its payload, outside any lock it computes (kernels, compression),
 * then under the write lock it stores the result. A result whose turn in
 * the ordered store has not come waits (the store keeps `threads` pending
 * slots), so the output is byte-identical for any thread count. Kinds
 * whose reads and stores share a library that is not thread-safe (HDF5)
 * get one lock for both. */
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "engine/kind.h"
#include "engine/local.h"
#include "core/clock.h"
#include "engine/trace.h"

typedef struct loop {
  ts_kind *k;
  pthread_mutex_t read_lock, write_lock, *store_lock;
  pthread_cond_t stored;
  int64_t next, n; /* read_lock: positions handed out, of n */
  int failed;      /* store_lock; read racily as a hint to stop early */
  int stopped;     /* read_lock: a stop request was seen; no new task */
  ts_error err;    /* store_lock: the first failure */
  double t0;
  ts_trace trace; /* store_lock: every thread's events */
} loop;

static void fail(loop *l, const ts_error *err) {
  pthread_mutex_lock(l->store_lock);
  if (!l->failed) l->err = *err;
  l->failed = 1;
  pthread_cond_broadcast(&l->stored);
  pthread_mutex_unlock(l->store_lock);
}

/* Store task t's result, waiting while its turn has not come. */
static ts_status deliver(loop *l, int64_t t, const ts_blob *res, ts_error *err) {
  ts_status st = TS_OK;
  pthread_mutex_lock(l->store_lock);
  for (int placed = 0; !placed && !l->failed && st == TS_OK;) {
    st = l->k->ops->store(l->k, t, res->p, res->size, &placed, err);
    if (!placed && st == TS_OK) pthread_cond_wait(&l->stored, l->store_lock);
  }
  pthread_cond_broadcast(&l->stored);
  pthread_mutex_unlock(l->store_lock);
  return st;
}

/* One thread: take, read, compute, store, until the pass has no task left. */
static void work(loop *l, int me, int on) {
  ts_kind *k = l->k;
  ts_error err = {0};
  ts_blob payload = {0}, result = {0};
  ts_trace tr = {.on = on};
  ts_status st = TS_OK;
  while (st == TS_OK && !l->failed) {
    pthread_mutex_lock(&l->read_lock);
    const double t_read = ts_now() - l->t0;
    if (l->next < l->n && ts_stop_requested()) l->stopped = 1;
    const int64_t pos = !l->stopped && l->next < l->n ? l->next++ : -1, t = pos >= 0 ? k->ops->task(k, pos) : -1;
    payload.size = 0;
    if (pos >= 0 && k->ops->owner_reads && k->ops->owner_reads(k, t)) {
      /* built from stored results: wait for them, read under the store lock */
      pthread_mutex_unlock(&l->read_lock);
      pthread_mutex_lock(l->store_lock);
      while (!l->failed && !k->ops->ready(k, t)) pthread_cond_wait(&l->stored, l->store_lock);
      if (!l->failed) st = k->ops->read(k, t, &payload, &err);
      pthread_mutex_unlock(l->store_lock);
    } else {
      if (pos >= 0) st = k->ops->read(k, t, &payload, &err);
      pthread_mutex_unlock(&l->read_lock);
    }
    if (pos >= 0 && l->failed) break;
    if (pos < 0 || st) break;
    const double t_compute = ts_now() - l->t0;
    ts_trace_add(&tr, TS_PHASE_READ, t, t_read, t_compute, 0, me);
    result.size = 0;
    st = k->ops->compute(k, me, 1, t, payload.p, payload.size, &result, &err);
    const double t_write = ts_now() - l->t0;
    ts_trace_add(&tr, TS_PHASE_COMPUTE, t, t_compute, t_write, 0, me);
    if (st == TS_OK) st = deliver(l, t, &result, &err);
    ts_trace_add(&tr, TS_PHASE_WRITE, t, t_write, ts_now() - l->t0, 0, me);
  }
  if (st) fail(l, &err);
  pthread_mutex_lock(l->store_lock);
  ts_trace_merge(&l->trace, &tr);
  pthread_mutex_unlock(l->store_lock);
  ts_trace_free(&tr);
  ts_blob_free(&payload);
  ts_blob_free(&result);
}

/* Every pass of the kind; TS_STOPPED when a stop request ended one early. */
static ts_status passes(loop *l, int threads, int on, ts_error *err) {
  ts_kind *k = l->k;
  ts_blob scratch = {0};
  ts_status st = TS_OK;
  for (int p = 0; p < k->passes && st == TS_OK; p++) {
    scratch.size = 0;
    if ((st = k->ops->begin_pass(k, p, &l->n, &scratch, err))) break;
    l->next = 0;
    if (l->n > 0) {
#pragma omp parallel num_threads(threads)
      work(l, omp_get_thread_num(), on);
    }
    if (l->failed) {
      st = ts_fail(err, l->err.code, "%s", l->err.msg);
      break;
    }
    if (l->stopped) {
      st = TS_STOPPED;
      break;
    }
    scratch.size = 0; /* a statistics pass: every thread's partial */
    st = k->ops->flush(k, &scratch, err);
    if (st == TS_OK && scratch.size) st = k->ops->absorb(k, scratch.p, scratch.size, err);
    if (st == TS_OK) st = k->ops->end_pass(k, p, err);
  }
  ts_blob_free(&scratch);
  return st;
}

ts_status ts_engine_local(ts_kind *k, const ts_job *job, ts_run_stats *stats, ts_error *err) {
  loop l = {.k = k, .t0 = ts_now(), .trace = {.on = job->trace}}; /* stats->seconds: the caller's */
  int threads = job->threads > 0 ? job->threads : omp_get_max_threads();
  if (k->max_threads > 0 && threads > k->max_threads) threads = (int)k->max_threads;
  if (threads < 1) threads = 1;
  pthread_mutex_init(&l.read_lock, NULL);
  pthread_mutex_init(&l.write_lock, NULL);
  pthread_cond_init(&l.stored, NULL);
  l.store_lock = k->serial_io ? &l.read_lock : &l.write_lock;
  ts_status st = k->ops->prepare(k, threads, err);
  if (st == TS_OK) st = k->ops->start(k, threads, err);
  if (st == TS_OK) st = passes(&l, threads, job->trace, err);
  st = k->ops->finish(k, st, stats, err);
  pthread_mutex_destroy(&l.read_lock);
  pthread_mutex_destroy(&l.write_lock);
  pthread_cond_destroy(&l.stored);
  stats->threads = threads;
  stats->nevents = l.trace.n;
  stats->events = l.trace.ev; /* ownership moves to stats */
  return st;
}

void ts_job_init(ts_job *job) {
  memset(job, 0, sizeof *job);
  job->pipeline = "";
  job->tile = 1024;
  job->boundary = TS_BOUNDARY_REFLECT;
  job->compression = TS_COMPRESS_NONE;
  job->quality = 90;
  job->compression_level = -1;
  job->root_compute = -1;
  job->checkpoint_seconds = 10;
  job->max_image_pixels = TS_MAX_IMAGE_PIXELS;
  job->pyramid_levels = -1;
  job->layout = -1;
}

ts_status ts_run_local(const ts_job *job, ts_run_stats *stats, FILE *log, ts_error *err) {
  memset(stats, 0, sizeof *stats);
  const double t0 = ts_now();
  ts_kind *k = NULL;
  ts_status st = ts_kind_at(ts_kind_find(job))->open(job, log, &k, err);
  if (st) return st;
  st = ts_engine_local(k, job, stats, err);
  k->ops->close(&k);
  stats->seconds = ts_now() - t0;
  return st;
}

void ts_run_stats_free(ts_run_stats *stats) {
  free(stats->ranks);
  free(stats->events);
  free(stats->failures);
  free(stats->kept);
  memset(stats, 0, sizeof *stats);
}
