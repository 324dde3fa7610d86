/* Tile mode as a task kind: one image cut into tiles with halos. A task's
 * payload is its input (core + the pass's halo, boundary applied); its
 * result is the core's output tiles, encoded on the rank and thread that
 * computed them, stored in task order through the ordered store so the
 * file is byte-identical for any ranks, threads and arrival order. A
 * statistics pass runs the kernels before a global kernel over every task
 * and accumulates per-thread partials, which flush merges and the owner
 * absorbs; end_pass resolves the kernel's parameters. */
#include <stdlib.h>
#include <string.h>
#include "engine/kind.h"
#include "partition/assemble.h"
#include "engine/order.h"
#include "engine/passes.h"
#include "engine/plan.h"
#include "engine/pyramid.h"

typedef struct tile_kind {
  ts_kind base;
  /* the owner */
  int owner;
  ts_plan plan;
  ts_order order;
  int have_order;
  ts_progress progress;
  ts_tail tail; /* the pieces of the pyramid's upper levels (zeroed: none) */
  double *merged; /* the statistics pass's merged partial (then the last one, for the announce) */
  int64_t resumed;
  /* every rank */
  ts_grid grid;
  int64_t out_tile;
  ts_levels levels;
  ts_tile_seq seq; /* a pyramid with upper levels: the task sequence (seq.n 0: grid tasks only) */
  ts_reduce reduce; /* how levels are made */
  ts_writer_options wopts;
  ts_dtype in_dtype;
  int in_channels;
  ts_boundary boundary;
  double cval;
  char *input, *output, *pipeline; /* a worker's own copies */
  ts_pipeline *pipe;               /* the owner's is the plan's */
  ts_reader *reader;               /* the owner's is the plan's; a worker's with --io direct */
  void *fetch;                     /* read's scratch */
  ts_pass passes[TS_MAX_PASSES];
  int npasses, pass;               /* the pass under way (npasses: the apply pass) */
  int64_t halo, stats_len;
  /* a computing rank */
  int threads;
  ts_tile_threads per_thread; /* scratch, encoder, encoding buffer */
  void **outbuf; /* per thread */
  void **levelbuf; /* per thread: the core at levels 1..task_levels */
  double *partials; /* per thread, stats_len each */
} tile_kind;

static int is_stats(const tile_kind *k) { return k->pass < k->npasses; }

static const ts_kernel *global_kernel(const tile_kind *k) { return &k->pipe->k[k->passes[k->pass].kernel]; }

/* The pass's halo and statistics buffers, on every rank. */
static ts_status set_pass(tile_kind *k, int p, ts_error *err) {
  k->pass = p;
  k->halo = is_stats(k) ? ts_pipeline_halo_upto(k->pipe, k->passes[p].kernel) : k->grid.halo;
  free(k->partials);
  k->partials = NULL;
  k->stats_len = 0;
  if (!is_stats(k)) return TS_OK;
  const ts_kernel *g = global_kernel(k);
  k->stats_len = g->def->stats_size(g, k->passes[p].stage);
  if (k->threads > 0) {
    k->partials = malloc((size_t)(k->threads * k->stats_len) * sizeof *k->partials);
    if (!k->partials) return ts_fail(err, TS_ERR_NOMEM, "out of memory for statistics");
    for (int i = 0; i < k->threads; i++) g->def->stats_init(g, k->passes[p].stage, k->partials + i * k->stats_len);
  }
  return TS_OK;
}

/* ---- the owner ---- */

static ts_status tile_start(ts_kind *kk, int64_t inflight, ts_error *err) {
  tile_kind *k = (tile_kind *)kk;
  ts_status st = ts_order_init(&k->order, k->plan.writer, &k->grid, &k->levels, k->seq.n ? &k->seq : NULL,
                               k->out_tile, &k->progress, inflight, err);
  if (st) return st;
  k->have_order = 1;
  if (k->levels.n > k->levels.task_levels) {
    st = ts_tail_init(&k->tail, &k->levels, k->wopts.dtype, k->wopts.channels, err);
    if (st) return st;
    k->order.tail = &k->tail;
    if (k->plan.journal) { /* every checkpoint keeps the pieces gathered for upper tiles */
      k->plan.journal->snapshot = ts_tail_snapshot;
      k->plan.journal->snapshot_ctx = &k->tail;
    }
  }
  k->order.journal = k->plan.journal;
  st = ts_plan_replay(&k->plan, &k->order, err); /* --resume: the tasks done before */
  k->resumed = k->plan.resumed;
  return st;
}

static ts_status tile_begin_pass(ts_kind *kk, int p, int64_t *n, ts_blob *announce, ts_error *err) {
  tile_kind *k = (tile_kind *)kk;
  /* the announce: the last statistics pass's merged partial, for the
   * workers to resolve as the owner did: [int64 kernel][int64 stage][doubles] */
  int64_t hdr[2] = {-1, -1}, len = p > 0 ? k->stats_len : 0;
  if (p > 0) hdr[0] = k->passes[p - 1].kernel, hdr[1] = k->passes[p - 1].stage;
  if (ts_blob_append(announce, hdr, sizeof hdr) ||
      (len > 0 && ts_blob_append(announce, k->merged, (size_t)len * sizeof(double))))
    return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  free(k->merged);
  k->merged = NULL;
  ts_status st = set_pass(k, p, err);
  if (st) return st;
  if (!is_stats(k)) {
    *n = (k->seq.n ? k->seq.n : k->grid.ntasks) - k->resumed;
    return TS_OK;
  }
  const ts_kernel *g = global_kernel(k);
  k->merged = malloc((size_t)k->stats_len * sizeof *k->merged);
  if (!k->merged) return ts_fail(err, TS_ERR_NOMEM, "out of memory for statistics");
  g->def->stats_init(g, k->passes[p].stage, k->merged);
  const ts_jpass *saved = ts_plan_saved_pass(&k->plan, k->passes[p].kernel, k->passes[p].stage);
  *n = k->grid.ntasks;
  if (saved && saved->n == k->stats_len) { /* --resume: the previous run merged it; no task to run */
    memcpy(k->merged, saved->v, (size_t)k->stats_len * sizeof(double));
    *n = 0;
  }
  return TS_OK;
}

static int64_t tile_task(const ts_kind *kk, int64_t pos) {
  const tile_kind *k = (const tile_kind *)kk;
  return is_stats(k) ? pos : k->resumed + pos;
}

static ts_status tile_store(ts_kind *kk, int64_t t, const unsigned char *res, size_t n, int *placed, ts_error *err) {
  tile_kind *k = (tile_kind *)kk;
  if (is_stats(k)) { /* the task's share is in a partial */
    ts_rect core = ts_grid_core(&k->grid, t);
    ts_progress_tick(&k->progress, core.w * core.h);
    *placed = 1;
    return TS_OK;
  }
  ts_blob one = {.p = (unsigned char *)res, .size = n};
  return ts_order_put(&k->order, t, &one, placed, err);
}

static ts_status tile_absorb(ts_kind *kk, const unsigned char *partial, size_t n, ts_error *err) {
  tile_kind *k = (tile_kind *)kk;
  if (!is_stats(k) || n != (size_t)k->stats_len * sizeof(double))
    return ts_fail(err, TS_ERR_INTERNAL, "statistics of %zu bytes, expected %lld", n,
                   (long long)(k->stats_len * (int64_t)sizeof(double)));
  double *v = malloc(n);
  if (!v) return ts_fail(err, TS_ERR_NOMEM, "out of memory for statistics");
  memcpy(v, partial, n); /* aligned */
  const ts_kernel *g = global_kernel(k);
  g->def->merge(g, k->passes[k->pass].stage, k->merged, v);
  free(v);
  return TS_OK;
}

static ts_status tile_end_pass(ts_kind *kk, int p, ts_error *err) {
  tile_kind *k = (tile_kind *)kk;
  if (!is_stats(k)) return TS_OK;
  const ts_pass *ps = &k->passes[p];
  ts_status st = ts_plan_pass_done(&k->plan, ps->kernel, ps->stage, k->merged, k->stats_len, err);
  return st ? st : k->pipe->k[ps->kernel].def->resolve(&k->pipe->k[ps->kernel], ps->stage, k->merged, err);
}

static ts_status tile_finish(ts_kind *kk, ts_status st, ts_run_stats *stats, ts_error *err) {
  tile_kind *k = (tile_kind *)kk;
  ts_progress_done(&k->progress);
  const int64_t written = k->have_order && !is_stats(k) ? k->order.next : 0;
  if (st == TS_STOPPED) {
    st = ts_plan_stopped(&k->plan, written, is_stats(k), stats, err);
  } else if (st == TS_OK) {
    stats->checkpoints = k->plan.journal ? k->plan.journal->checkpoints : 0;
    st = ts_plan_finish(&k->plan, err);
  }
  const int64_t all = k->seq.n ? k->seq.n : k->grid.ntasks;
  stats->done = st == TS_OK ? all : written;
  stats->resumed = k->resumed;
  ts_passes_describe(k->pipe, stats->resolved, sizeof stats->resolved);
  stats->tasks = all;
  stats->pixels = k->grid.w * k->grid.h;
  stats->in_w = k->grid.w;
  stats->in_h = k->grid.h;
  stats->out_tile = k->out_tile;
  return st;
}

/* What a worker needs: the grid, the writer's options, the input's kind,
 * then the input, output and pipeline strings. */
typedef struct tile_setup {
  ts_grid grid;
  ts_levels levels;
  ts_reduce reduce;
  int32_t input_level;
  ts_writer_options wopts; /* description is not sent */
  int64_t out_tile;
  int32_t in_dtype, in_channels, boundary, page;
  double cval;
  int64_t len_input, len_output, len_pipeline;
} tile_setup;

static ts_status tile_pack(const ts_kind *kk, ts_blob *b, ts_error *err) {
  const tile_kind *k = (const tile_kind *)kk;
  const ts_job *job = k->plan.job;
  tile_setup s = {.grid = k->grid, .levels = k->levels, .reduce = k->reduce,
                  .input_level = (int32_t)job->input_level, .wopts = k->wopts, .out_tile = k->out_tile, .in_dtype = k->in_dtype,
                  .in_channels = k->in_channels, .boundary = k->boundary, .cval = k->cval, .page = (int32_t)job->page,
                  .len_input = (int64_t)strlen(job->input), .len_output = (int64_t)strlen(job->output),
                  .len_pipeline = (int64_t)strlen(job->pipeline)};
  s.wopts.description = s.wopts.downsample = NULL;
  s.wopts.meta = NULL;
  if (ts_blob_append(b, &s, sizeof s) || ts_blob_append(b, job->input, (size_t)s.len_input) ||
      ts_blob_append(b, job->output, (size_t)s.len_output) || ts_blob_append(b, job->pipeline, (size_t)s.len_pipeline))
    return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  return TS_OK;
}

/* ---- a reader ---- */

static ts_status read_reader(void *r, ts_rect src, void *dst, int64_t stride, ts_error *err) {
  return ts_reader_read(r, src, dst, stride, err);
}

/* The grid task behind task t, or -1 for an upper pyramid tile (*L, *up). */
static int64_t grid_task(const tile_kind *k, int64_t t, int *L, ts_rect *up) {
  return is_stats(k) || !k->seq.n ? t : ts_tile_seq_at(&k->seq, t, L, up);
}

static int tile_ready(const ts_kind *kk, int64_t t) {
  const tile_kind *k = (const tile_kind *)kk;
  int L;
  ts_rect up;
  return grid_task(k, t, &L, &up) >= 0 || ts_tail_ready(&k->tail, L, up);
}

static int tile_owner_reads(const ts_kind *kk, int64_t t) {
  const tile_kind *k = (const tile_kind *)kk;
  int L;
  ts_rect up;
  return grid_task(k, t, &L, &up) < 0;
}

static ts_status tile_read(ts_kind *kk, int64_t t, ts_blob *b, ts_error *err) {
  tile_kind *k = (tile_kind *)kk;
  int L;
  ts_rect up;
  if ((t = grid_task(k, t, &L, &up)) < 0) return ts_tail_payload(&k->tail, L, up, b, err);
  const ts_rect in = ts_grid_input_halo(&k->grid, t, k->halo);
  const int64_t bytes = ts_image_bytes(in.w, in.h, k->in_channels, k->in_dtype);
  if (ts_blob_reserve(b, b->size + (size_t)bytes)) return ts_fail(err, TS_ERR_NOMEM, "out of memory for a task");
  ts_image dst = ts_image_packed(b->p + b->size, in.w, in.h, k->in_channels, k->in_dtype);
  ts_status st = ts_assemble_rect(read_reader, k->reader, k->grid.w, k->grid.h, in, k->boundary, k->cval, &dst,
                                  k->fetch, err);
  if (st == TS_OK) b->size += (size_t)bytes;
  return st;
}

/* ---- a computing rank ---- */

static ts_status tile_prepare(ts_kind *kk, int threads, ts_error *err) {
  tile_kind *k = (tile_kind *)kk;
  k->threads = threads;
  ts_status st = ts_tile_threads_init(&k->per_thread, threads, k->owner ? k->plan.job->output : k->output, &k->wopts, err);
  if (st) return st;
  /* the largest output a task makes: the pipeline's, or a global kernel's input */
  const int64_t T = k->grid.tile;
  int64_t most = ts_image_bytes(T, T, k->pipe->out_channels, k->pipe->out_dtype);
  for (int i = 0; i < k->npasses; i++) {
    const ts_kernel *g = &k->pipe->k[k->passes[i].kernel];
    int64_t b = ts_image_bytes(T, T, g->in_channels, g->in_dtype);
    if (b > most) most = b;
  }
  /* the levels a task makes, and its piece of an upper tile (or an upper tile halved) */
  const int top = k->levels.n > k->levels.task_levels ? k->levels.task_levels : k->levels.task_levels - 1;
  int64_t lv = 0;
  for (int L = 1; L <= top; L++) lv += ts_image_bytes(T >> L, T >> L, k->pipe->out_channels, k->pipe->out_dtype);
  k->outbuf = calloc((size_t)threads, sizeof *k->outbuf);
  k->levelbuf = calloc((size_t)threads, sizeof *k->levelbuf);
  for (int i = 0; k->outbuf && k->levelbuf && i < threads; i++)
    if (!(k->outbuf[i] = malloc((size_t)most)) || (lv && !(k->levelbuf[i] = malloc((size_t)lv))))
      return ts_fail(err, TS_ERR_NOMEM, "out of memory for output tiles");
  if (!k->outbuf || !k->levelbuf) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  return set_pass(k, k->pass, err);
}

static ts_status tile_enter_pass(ts_kind *kk, int p, const unsigned char *a, size_t n, ts_error *err) {
  tile_kind *k = (tile_kind *)kk;
  int64_t hdr[2];
  if (n < sizeof hdr) return ts_fail(err, TS_ERR_INTERNAL, "a pass without its header");
  memcpy(hdr, a, sizeof hdr);
  if (hdr[0] >= 0) { /* resolve the last pass's kernel as the owner did */
    ts_kernel *g = &k->pipe->k[hdr[0]];
    int64_t len = g->def->stats_size(g, (int)hdr[1]);
    if (n != sizeof hdr + (size_t)len * sizeof(double))
      return ts_fail(err, TS_ERR_INTERNAL, "statistics of %zu bytes in a pass announce", n);
    double *merged = malloc((size_t)len * sizeof *merged);
    if (!merged) return ts_fail(err, TS_ERR_NOMEM, "out of memory for statistics");
    memcpy(merged, a + sizeof hdr, (size_t)len * sizeof *merged);
    ts_status st = g->def->resolve(g, (int)hdr[1], merged, err);
    free(merged);
    if (st) return st;
  }
  return set_pass(k, p, err);
}

/* An upper pyramid tile's task: encode the tile, then halve it for the
 * level above. */
static ts_status upper_compute(tile_kind *k, int me, int nthreads, int L, ts_rect up, const unsigned char *payload,
                               size_t n, ts_blob *out, ts_error *err) {
  const int64_t T = k->out_tile;
  const size_t px = ts_dtype_size(k->pipe->out_dtype) * (size_t)k->pipe->out_channels;
  if (n != (size_t)(T * T) * px)
    return ts_fail(err, TS_ERR_INTERNAL, "pyramid tile of level %d: %zu bytes of input", L, n);
  ts_status st = ts_encode_tile(k->per_thread.encs[nthreads > 1 ? 0 : me], L, up, payload, T * (int64_t)px, out, err);
  if (st) return st;
  if (L + 1 >= k->levels.n) return TS_OK;
  ts_image src = ts_image_packed((void *)payload, up.w, up.h, k->pipe->out_channels, k->pipe->out_dtype);
  src.stride = T * (int64_t)px;
  ts_image half = ts_image_packed(k->levelbuf[me], (up.w + 1) / 2, (up.h + 1) / 2, src.channels, src.dtype);
  ts_downsample_image(&src, &half, &k->reduce);
  const uint64_t ph[2] = {(uint64_t)(half.w * half.h) * px, 0};
  if (ts_blob_append(out, ph, sizeof ph) || ts_blob_append(out, half.data, ph[0]))
    return ts_fail(err, TS_ERR_NOMEM, "out of memory for a task's result");
  return TS_OK;
}

static ts_status tile_compute(ts_kind *kk, int me, int nthreads, int64_t t, const unsigned char *payload, size_t n,
                              ts_blob *out, ts_error *err) {
  tile_kind *k = (tile_kind *)kk;
  int upper;
  ts_rect up;
  if ((t = grid_task(k, t, &upper, &up)) < 0) return upper_compute(k, me, nthreads, upper, up, payload, n, out, err);
  const ts_rect core = ts_grid_core(&k->grid, t), in = ts_grid_input_halo(&k->grid, t, k->halo);
  if ((int64_t)n != ts_image_bytes(in.w, in.h, k->in_channels, k->in_dtype))
    return ts_fail(err, TS_ERR_INTERNAL, "task %lld: %zu bytes of input, expected %lldx%lld", (long long)t, n,
                   (long long)in.w, (long long)in.h);
  ts_image src = ts_image_packed((void *)payload, in.w, in.h, k->in_channels, k->in_dtype);
  ts_scratch **scratch = nthreads > 1 ? k->per_thread.scratch : &k->per_thread.scratch[me];
  if (is_stats(k)) { /* the kernels before the global one, then accumulate */
    const ts_kernel *g = global_kernel(k);
    ts_image dst = ts_image_packed(k->outbuf[me], core.w, core.h, g->in_channels, g->in_dtype);
    ts_status st = ts_pipeline_run_upto(k->pipe, k->passes[k->pass].kernel, &src, &dst, scratch, nthreads, err);
    if (st == TS_OK) g->def->accumulate(g, k->passes[k->pass].stage, &dst, k->partials + me * k->stats_len);
    return st;
  }
  ts_image dst = ts_image_packed(k->outbuf[me], core.w, core.h, k->pipe->out_channels, k->pipe->out_dtype);
  ts_error e = {0};
  ts_status st = nthreads > 1 ? ts_pipeline_run_bands(k->pipe, &src, &dst, scratch, nthreads, &e)
                              : ts_pipeline_run(k->pipe, &src, &dst, *scratch, &e);
  if (st) /* a kernel's own failure (a plugin's, a Python function's): say where */
    return ts_fail(err, st, "tile %lld (x %lld, y %lld, %lld x %lld): %s", (long long)t, (long long)core.x,
                   (long long)core.y, (long long)core.w, (long long)core.h, e.msg);
  /* the levels this task makes, halved from the core one after another,
   * then (a taller pyramid) the core at the first level it does not */
  ts_core_levels c;
  ts_core_levels_of(&k->levels, core, &c);
  c.im[0] = dst;
  const int tail = k->levels.n > k->levels.task_levels, top = tail ? c.n : c.n - 1;
  unsigned char *at = k->levelbuf[me];
  ts_image piece = dst; /* the level before L */
  for (int L = 1; L <= top; L++) {
    const ts_rect r = ts_level_rect(&k->levels, core, L);
    ts_image im = ts_image_packed(at, r.w, r.h, dst.channels, dst.dtype);
    ts_downsample_image(&piece, &im, &k->reduce);
    at += ts_image_bytes(r.w, r.h, dst.channels, dst.dtype);
    if (L < c.n) c.im[L] = im;
    piece = im;
  }
  st = ts_encode_core(nthreads > 1 ? k->per_thread.encs : &k->per_thread.encs[me], k->per_thread.parts, nthreads, &c,
                      k->out_tile, out, err);
  if (st == TS_OK && tail) { /* [size][0][pixels], as a tile record */
    const uint64_t head[2] = {(uint64_t)(piece.w * piece.h) * ts_pixel_size(&piece), 0};
    if (ts_blob_append(out, head, sizeof head) || ts_blob_append(out, piece.data, head[0]))
      st = ts_fail(err, TS_ERR_NOMEM, "out of memory for a task's result");
  }
  return st;
}

static ts_status tile_flush(ts_kind *kk, ts_blob *out, ts_error *err) {
  tile_kind *k = (tile_kind *)kk;
  if (!is_stats(k) || !k->partials) return TS_OK;
  const ts_kernel *g = global_kernel(k);
  const int stage = k->passes[k->pass].stage;
  for (int i = 1; i < k->threads; i++) g->def->merge(g, stage, k->partials, k->partials + i * k->stats_len);
  if (ts_blob_append(out, k->partials, (size_t)k->stats_len * sizeof(double)))
    return ts_fail(err, TS_ERR_NOMEM, "out of memory for statistics");
  for (int i = 0; i < k->threads; i++) g->def->stats_init(g, stage, k->partials + i * k->stats_len);
  return TS_OK;
}

static void tile_close(ts_kind **kp) {
  tile_kind *k = (tile_kind *)*kp;
  if (!k) return;
  ts_tile_threads_free(&k->per_thread);
  for (int i = 0; k->outbuf && i < k->threads; i++) free(k->outbuf[i]);
  for (int i = 0; k->levelbuf && i < k->threads; i++) free(k->levelbuf[i]);
  free(k->outbuf);
  free(k->levelbuf);
  ts_tail_free(&k->tail); /* nothing to free if never started */
  ts_tile_seq_free(&k->seq);
  free(k->partials);
  free(k->merged);
  free(k->fetch);
  if (k->have_order) ts_order_free(&k->order);
  if (k->owner) {
    ts_plan_close(&k->plan);
  } else {
    ts_pipeline_free(&k->pipe);
    ts_reader_close(&k->reader);
  }
  free(k->input);
  free(k->output);
  free(k->pipeline);
  free(k);
  *kp = NULL;
}

static const ts_kind_ops tile_ops = {
    .name = "tile", .start = tile_start, .begin_pass = tile_begin_pass, .task = tile_task, .store = tile_store,
    .absorb = tile_absorb, .end_pass = tile_end_pass, .finish = tile_finish, .pack = tile_pack, .read = tile_read,
    .ready = tile_ready, .owner_reads = tile_owner_reads,
    .prepare = tile_prepare, .enter_pass = tile_enter_pass, .compute = tile_compute, .flush = tile_flush,
    .close = tile_close,
};

/* What every rank sets the same way once the pipeline and grid are known. */
static ts_status tile_common(tile_kind *k, ts_error *err) {
  k->base.ops = &tile_ops;
  k->base.bands = 1;
  k->npasses = ts_passes(k->pipe, k->passes);
  k->base.passes = k->npasses + 1;
  k->pass = k->npasses;
  k->halo = k->grid.halo;
  k->base.max_payload = ts_image_bytes(k->grid.tile + 2 * k->grid.halo, k->grid.tile + 2 * k->grid.halo,
                                       k->in_channels, k->in_dtype);
  k->base.max_threads = k->grid.ntasks;
  if (k->levels.n > k->levels.task_levels) { /* the upper levels' tasks */
    ts_status st = ts_tile_seq_build(&k->seq, &k->grid, &k->levels, err);
    if (st) return st;
  }
  ts_rect big = {0, 0, k->grid.tile + 2 * k->grid.halo, k->grid.tile + 2 * k->grid.halo};
  k->fetch = malloc(ts_assemble_scratch_bytes(big));
  return k->fetch ? TS_OK : ts_fail(err, TS_ERR_NOMEM, "out of memory for the tile buffers");
}

static ts_status tile_open(const ts_job *job, FILE *log, ts_kind **out, ts_error *err) {
  tile_kind *k = calloc(1, sizeof *k);
  if (!k) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  k->owner = 1;
  ts_status st = ts_plan_open(&k->plan, job, err);
  if (st) {
    free(k);
    return st;
  }
  k->grid = k->plan.grid;
  k->levels = k->plan.levels;
  k->reduce = k->plan.reduce;
  k->out_tile = k->plan.out_tile;
  k->wopts = k->plan.wopts;
  k->pipe = k->plan.pipe;
  k->reader = k->plan.reader;
  k->in_dtype = k->reader->info.dtype;
  k->in_channels = k->reader->info.channels;
  k->boundary = job->boundary;
  k->cval = job->cval;
  *out = &k->base;
  const ts_image_info *i = &k->reader->info;
  if (i->pages > 1 && log) /* always, even with --quiet: the other pages are not processed */
    fprintf(log, "tessera: note: %s has %lld pages; this run processes page %lld (--page N picks another)\n",
            job->input, (long long)i->pages, (long long)i->page);
  if (i->masks && log) /* always too: what the mask hid is no longer hidden */
    fprintf(log, "tessera: note: %s has a transparency mask (GDAL's internal nodata mask), which is not read: the "
            "output has none%s (--nodata V declares a nodata value)\n", job->input,
            k->plan.levels.n > 1 ? ", and its levels average what lay under it" : "");
  if ((st = tile_common(k, err))) {
    tile_close(out);
    return st;
  }
  ts_progress_init(&k->progress, job->progress ? log : NULL, k->grid.ntasks * (k->npasses + 1), ts_now());
  return TS_OK;
}

static char *copy_string(const unsigned char *p, int64_t n) {
  char *s = malloc((size_t)n + 1);
  if (s) memcpy(s, p, (size_t)n), s[n] = '\0';
  return s;
}

static ts_status tile_open_worker(const unsigned char *setup, size_t n, int rank, int direct, ts_kind **out,
                                  ts_error *err) {
  tile_setup s;
  if (n < sizeof s) return ts_fail(err, TS_ERR_INTERNAL, "a tile set-up of %zu bytes", n);
  memcpy(&s, setup, sizeof s);
  if (n != sizeof s + (size_t)(s.len_input + s.len_output + s.len_pipeline))
    return ts_fail(err, TS_ERR_INTERNAL, "a tile set-up of %zu bytes", n);
  tile_kind *k = calloc(1, sizeof *k);
  if (!k) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  *out = &k->base;
  k->grid = s.grid;
  k->levels = s.levels;
  k->reduce = s.reduce;
  k->wopts = s.wopts;
  k->out_tile = s.out_tile;
  k->in_dtype = (ts_dtype)s.in_dtype;
  k->in_channels = s.in_channels;
  k->boundary = (ts_boundary)s.boundary;
  k->cval = s.cval;
  const unsigned char *at = setup + sizeof s;
  k->input = copy_string(at, s.len_input);
  k->output = copy_string(at + s.len_input, s.len_output);
  k->pipeline = copy_string(at + s.len_input + s.len_output, s.len_pipeline);
  ts_status st = k->input && k->output && k->pipeline ? TS_OK : ts_fail(err, TS_ERR_NOMEM, "out of memory");
  if (st == TS_OK) st = ts_pipeline_parse(k->pipeline, k->in_dtype, k->in_channels, &k->pipe, err);
  if (st == TS_OK) ts_pipeline_set_rank(k->pipe, rank);
  if (st == TS_OK) st = tile_common(k, err);
  k->wopts.put = direct; /* a directory store's chunks are written where they are made */
  if (st == TS_OK && direct) {
    if ((st = ts_reader_open_level(k->input, s.page, s.input_level, &k->reader, err))) {
      ts_note_relative(k->input, st, err);
    } else {
      const ts_image_info *i = &k->reader->info;
      if (i->w != k->grid.w || i->h != k->grid.h || i->dtype != k->in_dtype || i->channels != k->in_channels)
        st = ts_fail(err, TS_ERR_FORMAT, "%s: is not the image rank 0 sees (%lldx%lld %s x%d here)", k->input,
                     (long long)i->w, (long long)i->h, ts_dtype_name(i->dtype), i->channels);
      else
        ts_plan_size_cache(k->reader, &k->grid);
    }
  }
  if (st) tile_close(out);
  return st;
}

static int tile_claims(const ts_job *job) { return 1; /* whatever no other kind claims */ }

const ts_kind_def ts_kind_tile = {
    .name = "tile", .claims = tile_claims, .open = tile_open, .open_worker = tile_open_worker,
};
