/* List mode in one process: OpenMP threads each take the next input
 * (largest first, so the tail is short), read it, run the task and store
 * its record. Reading a stack slice and storing run under locks (HDF5 is
 * not thread-safe); decoding, kernels and compression run in parallel. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "sched/list.h"
#include "sched/trace.h"
#include "sched/plan.h"
#include "sched/progress.h"

typedef struct keyed {
  int64_t size, index;
} keyed;
static int larger_first(const void *a, const void *b) {
  const keyed *x = a, *y = b;
  return x->size != y->size ? (x->size < y->size ? 1 : -1) : (x->index > y->index) - (x->index < y->index);
}

ts_status ts_list_order(const ts_inputs *in, int64_t **order) {
  keyed *k = malloc((size_t)in->n * sizeof *k);
  *order = malloc((size_t)in->n * sizeof **order);
  if (!k || !*order) {
    free(k);
    free(*order);
    *order = NULL;
    return TS_ERR_NOMEM;
  }
  for (int64_t i = 0; i < in->n; i++) k[i] = (keyed){in->items[i].size, i};
  qsort(k, (size_t)in->n, sizeof *k, larger_first);
  for (int64_t i = 0; i < in->n; i++) (*order)[i] = k[i].index;
  free(k);
  return TS_OK;
}

ts_status ts_list_remaining(const ts_inputs *in, const char *done, int64_t **order, int64_t *n) {
  if (ts_list_order(in, order)) return TS_ERR_NOMEM;
  *n = 0;
  for (int64_t i = 0; i < in->n; i++)
    if (!done || !done[(*order)[i]]) (*order)[(*n)++] = (*order)[i];
  return TS_OK;
}

ts_status ts_list_open(const ts_job *job, ts_inputs *in, ts_list_out_options *oo, ts_list_out **out,
                       ts_ljournal *lj, ts_error *err) {
  memset(oo, 0, sizeof *oo);
  memset(lj, 0, sizeof *lj);
  oo->path = job->output;
  oo->quality = job->quality;
  oo->compression = job->compression;
  oo->force = job->force;
  oo->no_images = job->no_images;
  oo->pipeline = job->pipeline;
  oo->input = job->input;
  if (job->format && ts_file_format_parse(job->format, &oo->format))
    return ts_fail(err, TS_ERR_USAGE, "--format %s: expected png, tiff or jpeg", job->format);
  if (job->format && !ts_list_out_is_dir(job->output))
    return ts_fail(err, TS_ERR_USAGE, "--format %s is for a directory output (end --output with '/')", job->format);
  /* the pipeline's text is checked now, before any work */
  /* the pipeline is prepared per kind of image met; it must suit one */
  static const struct { ts_dtype d; int c; } kinds[] = {{TS_U8, 1}, {TS_U8, 3}, {TS_U8, 4}, {TS_U8, 2}, {TS_U16, 1},
                                                        {TS_U16, 3}, {TS_F32, 1}, {TS_F32, 3}};
  ts_status st = TS_OK;
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    ts_pipeline *p = NULL;
    ts_error e = {0};
    ts_status s = ts_pipeline_parse(job->pipeline, kinds[i].d, kinds[i].c, &p, &e);
    ts_pipeline_free(&p);
    if (s == TS_OK) {
      st = TS_OK;
      break;
    }
    if (i == 0) st = ts_fail(err, s, "%s", e.msg);
  }
  if (st) return st;
  if ((st = ts_inputs_open(job->input, job->glob, job->recursive, job->strips, in, err))) return st;
  st = ts_ljournal_open(lj, job, in, oo, err);
  if (st == TS_OK) st = ts_list_out_open(oo, in, out, err);
  if (st == TS_OK) st = ts_ljournal_replay(lj, *out, in, err); /* --resume: the inputs done before */
  if (st) {
    ts_list_out_abort(out);
    ts_run_stats ignored = {0};
    ts_ljournal_close(lj, st, &ignored);
    ts_inputs_free(in);
  }
  return st;
}

/* Read every blend with= file (rank 0, or the only process). */
ts_status ts_list_read_aux(const char *text, ts_blob *aux, ts_error *err) {
  char *paths[TS_MAX_KERNELS];
  ts_list_aux_paths(text, paths);
  ts_status st = TS_OK;
  for (int i = 0; i < TS_MAX_KERNELS; i++) {
    memset(&aux[i], 0, sizeof aux[i]);
    if (!paths[i]) continue;
    FILE *f = st == TS_OK ? fopen(paths[i], "rb") : NULL;
    if (st == TS_OK && !f) st = ts_fail(err, TS_ERR_IO, "blend: with=%s: cannot open it", paths[i]);
    char buf[65536];
    size_t n;
    while (f && (n = fread(buf, 1, sizeof buf, f)) > 0)
      if (ts_blob_append(&aux[i], buf, n)) st = ts_fail(err, TS_ERR_NOMEM, "out of memory");
    if (f) fclose(f);
    free(paths[i]);
  }
  return st;
}

/* The run's end, shared with MPI rank 0: every input failed is fatal;
 * otherwise finish the output and report the failures. */
ts_status ts_list_close(ts_list_out **out, const ts_inputs *in, ts_status st, ts_run_stats *stats, ts_error *err) {
  const int64_t nf = *out ? ts_list_out_nfailed(*out) : 0;
  if (st == TS_OK && nf == in->n)
    st = ts_fail(err, TS_ERR_FORMAT, "every input failed (%lld); the first: %s", (long long)nf,
                 ts_list_out_failure(*out, 0));
  size_t len = 1;
  for (int64_t k = 0; k < nf; k++) len += strlen(ts_list_out_failure(*out, k)) + 1;
  stats->failures = calloc(len, 1);
  for (int64_t k = 0; stats->failures && k < nf; k++) {
    strcat(stats->failures, ts_list_out_failure(*out, k));
    strcat(stats->failures, "\n");
  }
  stats->nfailed = nf;
  if (st == TS_OK) {
    st = ts_list_out_finish(out, err);
  } else if (st == TS_STOPPED) { /* keep what is done */
    char note[160];
    stats->stopped = ts_stop_requested();
    snprintf(note, sizeof note, "stopped by %s: %lld of %lld inputs done", ts_stop_name(stats->stopped),
             (long long)stats->done, (long long)in->n);
    ts_status k = ts_list_out_keep(out, note, &stats->kept, err);
    if (k) st = k;
  } else {
    ts_list_out_abort(out);
  }
  return st == TS_OK && nf > 0 ? TS_SOME_FAILED : st;
}

ts_status ts_run_list_local(const ts_job *job, ts_run_stats *stats, FILE *log, ts_error *err) {
  memset(stats, 0, sizeof *stats);
  const double t0 = ts_now();
  ts_inputs in;
  ts_list_out_options oo;
  ts_list_out *out = NULL;
  ts_ljournal lj;
  ts_status st = ts_list_open(job, &in, &oo, &out, &lj, err);
  if (st) return st;
  ts_blob aux[TS_MAX_KERNELS];
  ts_lrank rank;
  int64_t *order = NULL;
  st = ts_list_read_aux(job->pipeline, aux, err);
  if (st == TS_OK) st = ts_lrank_init(&rank, job->pipeline, job->boundary, job->cval, &oo, aux, err);
  for (int i = 0; i < TS_MAX_KERNELS; i++) ts_blob_free(&aux[i]);
  int64_t nleft = 0;
  if (st == TS_OK && ts_list_remaining(&in, lj.done, &order, &nleft)) st = ts_fail(err, TS_ERR_NOMEM, "out of memory");
  const int threads = job->threads > 0 ? job->threads : omp_get_max_threads();
  ts_progress progress;
  ts_progress_init(&progress, job->progress ? log : NULL, nleft, t0);
  int64_t next = 0, pixels = 0;
  volatile int stop = st != TS_OK, stopped = 0; /* stopped: on request (ts_request_stop) */
  int64_t stored = 0;
  ts_trace trace = {.on = job->trace};
#pragma omp parallel num_threads(threads)
  {
    ts_trace tr = {.on = job->trace};
    const int me = omp_get_thread_num();
    ts_lthread t;
    ts_blob payload = {0}, rec = {0};
    ts_emits em = {0};
    ts_error e = {0};
    ts_status mine = ts_lthread_init(&t, &e);
    for (;;) {
      int64_t i = -1;
#pragma omp critical(ts_list_next)
      {
        if (!stop && next < nleft && ts_stop_requested()) stop = stopped = 1;
        if (!stop && mine == TS_OK && next < nleft) i = order[next++];
      }
      if (i < 0) break;
      ts_status rs;
      int64_t px = 0;
      payload.size = rec.size = 0;
      const double t_read = ts_now() - t0;
#pragma omp critical(ts_list_hdf5)
      rs = ts_inputs_read(&in, i, &payload, &e);
      const double t_compute = ts_now() - t0;
      ts_trace_add(&tr, TS_PHASE_READ, i, t_read, t_compute, 0, me);
      const char *label = in.items[i].path ? in.items[i].path : in.items[i].name; /* for messages */
      if (rs == TS_OK) mine = ts_list_task(&rank, &t, i, label, payload.p, payload.size, &rec, &px, &e);
      else mine = ts_list_failure(i, rs, e.msg, &rec, &e);
      const double t_write = ts_now() - t0;
      ts_trace_add(&tr, TS_PHASE_COMPUTE, i, t_compute, t_write, 0, me);
      if (mine == TS_OK) {
        size_t used;
#pragma omp critical(ts_list_hdf5)
        {
          mine = ts_list_store(out, &in, rec.p, &used, &em, &e);
          if (mine == TS_OK) mine = ts_ljournal_add(&lj, rec.p, used, &e);
          stored++;
          pixels += px;
          ts_progress_tick(&progress, px);
        }
        ts_trace_add(&tr, TS_PHASE_WRITE, i, t_write, ts_now() - t0, 0, me);
      }
      if (mine) stop = 1;
    }
    if (mine) {
#pragma omp critical(ts_list_error)
      if (st == TS_OK) st = ts_fail(err, mine, "%s", e.msg);
    }
#pragma omp critical(ts_list_trace)
    ts_trace_merge(&trace, &tr);
    ts_trace_free(&tr);
    ts_lthread_free(&t);
    ts_blob_free(&payload);
    ts_blob_free(&rec);
    ts_emits_free(&em);
  }
  ts_progress_done(&progress);
  free(order);
  ts_lrank_free(&rank);
  stats->done = stored + lj.replayed;
  stats->resumed = lj.replayed;
  if (st == TS_OK && stopped) st = TS_STOPPED;
  st = ts_list_close(&out, &in, st, stats, err);
  ts_ljournal_close(&lj, st, stats);
  stats->seconds = ts_now() - t0;
  stats->tasks = in.n;
  stats->pixels = pixels;
  stats->threads = threads;
  stats->nevents = trace.n;
  stats->events = trace.ev; /* ownership moves to stats */
  ts_inputs_free(&in);
  return st;
}
