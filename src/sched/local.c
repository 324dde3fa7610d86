/* The single-process engine. OpenMP threads each take whole tasks: read
 * the input (under the reader lock, through the reader's cache), run the
 * pipeline on buffers allocated once per thread, encode (compress) the
 * core's output tiles, then hand the encoded tiles to the writer in task
 * order. A result that arrives early waits in one of a few pending slots
 * (copied), so threads keep computing; when every slot is full the
 * finishing thread waits for the writer. Task order on disk makes the
 * output file byte-identical for any thread count. */
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "sched/fetch.h"
#include "sched/progress.h"
#include "tessera/tessera.h"

enum { SLOT_IN = 10, SLOT_OUT = 11, SLOT_FETCH = 12 };

/* A task's encoded output tiles, back to back: [uint64 size][bytes]... */
typedef struct blob {
  unsigned char *p;
  size_t size, cap;
} blob;

typedef struct pending {
  int64_t task; /* -1 = free */
  blob b;
} pending;

static int blob_append(blob *b, const void *data, size_t n) {
  if (b->size + n > b->cap) {
    size_t cap = 2 * (b->size + n);
    unsigned char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->size, data, n);
  b->size += n;
  return 0;
}

typedef struct engine {
  const ts_job *job;
  ts_reader *reader;
  ts_writer *writer;
  ts_pipeline *pipe;
  ts_grid grid;
  int64_t out_tile;
  pthread_mutex_t read_lock, write_lock;
  pthread_cond_t written;
  int64_t next_task;  /* read_lock */
  int64_t next_write; /* write_lock */
  pending *slots;     /* write_lock */
  int nslots;
  int failed;         /* write_lock; read racily as a hint to stop early */
  ts_error err;       /* write_lock: first failure */
  ts_progress progress;
} engine;

static void fail(engine *e, const ts_error *err) {
  pthread_mutex_lock(&e->write_lock);
  if (!e->failed) e->err = *err;
  e->failed = 1;
  pthread_cond_broadcast(&e->written);
  pthread_mutex_unlock(&e->write_lock);
}

/* The output tiles of a task's core, in the order they are encoded and
 * written: rect i of n. */
static ts_rect out_tile(const engine *e, ts_rect core, int64_t i) {
  const int64_t T = e->out_tile, across = (core.w + T - 1) / T;
  ts_rect r = {core.x + (i % across) * T, core.y + (i / across) * T, T, T};
  if (r.x + r.w > core.x + core.w) r.w = core.x + core.w - r.x;
  if (r.y + r.h > core.y + core.h) r.h = core.y + core.h - r.y;
  return r;
}

static int64_t out_tiles(const engine *e, ts_rect core) {
  const int64_t T = e->out_tile;
  return ((core.w + T - 1) / T) * ((core.h + T - 1) / T);
}

/* Encode the core's output (packed in `src`) into b. Runs in parallel. */
static ts_status encode_task(const engine *e, ts_encoder *enc, ts_rect core, const void *src,
                             blob *b, ts_error *err) {
  const size_t px = ts_dtype_size(e->pipe->out_dtype) * (size_t)e->pipe->out_channels;
  const int64_t stride = core.w * (int64_t)px;
  b->size = 0;
  for (int64_t i = 0, n = out_tiles(e, core); i < n; i++) {
    ts_rect r = out_tile(e, core, i);
    const void *data;
    size_t size;
    const char *at = (const char *)src + (r.y - core.y) * stride + (r.x - core.x) * (int64_t)px;
    ts_status st = ts_encoder_encode(enc, r, at, stride, &data, &size, err);
    if (st) return st;
    uint64_t n64 = size;
    if (blob_append(b, &n64, sizeof n64) || blob_append(b, data, size))
      return ts_fail(err, TS_ERR_NOMEM, "out of memory for encoded tiles");
  }
  return TS_OK;
}

/* Store task t's encoded tiles. write_lock held. */
static ts_status write_task(engine *e, int64_t t, const blob *b, ts_error *err) {
  ts_rect core = ts_grid_core(&e->grid, t);
  const unsigned char *p = b->p;
  for (int64_t i = 0, n = out_tiles(e, core); i < n; i++) {
    uint64_t size;
    memcpy(&size, p, sizeof size);
    ts_status st = ts_writer_write_encoded(e->writer, out_tile(e, core, i), p + sizeof size, size, err);
    if (st) return st;
    p += sizeof size + size;
  }
  ts_progress_tick(&e->progress, core.w * core.h);
  return TS_OK;
}

/* Hand task t's encoded result to the writer, in task order. */
static ts_status deliver(engine *e, int64_t t, const blob *b, ts_error *err) {
  ts_status st = TS_OK;
  pthread_mutex_lock(&e->write_lock);
  while (!e->failed && t != e->next_write) {
    int free_slot = -1;
    for (int i = 0; i < e->nslots; i++)
      if (e->slots[i].task < 0) free_slot = i;
    if (free_slot >= 0) {
      pending *p = &e->slots[free_slot];
      p->b.size = 0;
      if (blob_append(&p->b, b->p, b->size)) {
        st = ts_fail(err, TS_ERR_NOMEM, "out of memory for a pending result");
        break;
      }
      p->task = t;
      pthread_mutex_unlock(&e->write_lock);
      return TS_OK;
    }
    pthread_cond_wait(&e->written, &e->write_lock);
  }
  if (st == TS_OK && !e->failed) {
    st = write_task(e, t, b, err);
    e->next_write++;
    /* then everything that was waiting for this one */
    for (int found = 1; st == TS_OK && found;) {
      found = 0;
      for (int i = 0; i < e->nslots && st == TS_OK; i++)
        if (e->slots[i].task == e->next_write) {
          st = write_task(e, e->next_write, &e->slots[i].b, err);
          e->slots[i].task = -1;
          e->next_write++;
          found = 1;
        }
    }
    pthread_cond_broadcast(&e->written);
  }
  pthread_mutex_unlock(&e->write_lock);
  return st;
}

static void worker(engine *e) {
  ts_error err = {0};
  ts_scratch *s = ts_scratch_new();
  const ts_pipeline *p = e->pipe;
  const ts_image_info *info = &e->reader->info;
  const int64_t T = e->grid.tile, H = e->grid.halo;
  ts_status st = s ? TS_OK : ts_fail(&err, TS_ERR_NOMEM, "out of memory");
  ts_encoder *enc = NULL;
  blob encoded = {0};
  if (st == TS_OK) st = ts_encoder_new(e->writer, &enc, &err);
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
    int64_t t = e->next_task < e->grid.ntasks ? e->next_task++ : -1;
    ts_rect core = {0}, in = {0};
    ts_image src = {0};
    if (t >= 0) {
      core = ts_grid_core(&e->grid, t);
      in = ts_grid_input(&e->grid, t);
      src = ts_image_packed(inbuf, in.w, in.h, info->channels, info->dtype);
      st = ts_fetch_rect(e->reader, in, e->job->boundary, e->job->cval, &src, fetch, &err);
    }
    pthread_mutex_unlock(&e->read_lock);
    if (t < 0 || st) break;
    ts_image dst = ts_image_packed(outbuf, core.w, core.h, p->out_channels, p->out_dtype);
    st = ts_pipeline_run(p, &src, &dst, s, &err);
    if (st == TS_OK) st = encode_task(e, enc, core, outbuf, &encoded, &err);
    if (st == TS_OK) st = deliver(e, t, &encoded, &err);
  }
  if (st) fail(e, &err);
  free(encoded.p);
  ts_encoder_free(&enc);
  ts_scratch_free(&s);
}

void ts_job_init(ts_job *job) {
  memset(job, 0, sizeof *job);
  job->pipeline = "";
  job->tile = 1024;
  job->boundary = TS_BOUNDARY_REFLECT;
  job->compression = TS_COMPRESS_NONE;
  job->quality = 90;
}

/* The largest of 256, 128, ..., 16 that divides the task tile. */
static int64_t auto_out_tile(int64_t tile) {
  for (int64_t t = 256; t > 16; t /= 2)
    if (tile % t == 0) return t;
  return 16;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

ts_status ts_run_local(const ts_job *job, ts_run_stats *stats, FILE *log, ts_error *err) {
  engine e = {.job = job};
  ts_status st;
  double t0 = now();
  memset(stats, 0, sizeof *stats);
  if (job->tile < 16 || job->tile % 16)
    return ts_fail(err, TS_ERR_USAGE, "--tile %lld: the tile size must be a positive multiple of 16",
                   (long long)job->tile);
  e.out_tile = job->out_tile ? job->out_tile : auto_out_tile(job->tile);
  if (e.out_tile % 16 || job->tile % e.out_tile)
    return ts_fail(err, TS_ERR_USAGE, "--out-tile %lld must be a multiple of 16 that divides --tile %lld",
                   (long long)e.out_tile, (long long)job->tile);
  if ((st = ts_reader_open(job->input, &e.reader, err))) return st;
  const ts_image_info *info = &e.reader->info;
  if ((st = ts_pipeline_parse(job->pipeline, info->dtype, info->channels, &e.pipe, err))) goto done;
  if ((st = ts_grid_init(&e.grid, info->w, info->h, job->tile, e.pipe->halo,
                         info->block_w >= info->w ? 0 : 4 * job->tile, err)))
    goto done;
  ts_writer_options wo = {
      .w = info->w, .h = info->h, .channels = e.pipe->out_channels, .dtype = e.pipe->out_dtype,
      .tile = e.out_tile, .compression = job->compression, .quality = job->quality,
      .force = job->force, .description = e.pipe->text,
  };
  if ((st = ts_writer_open(job->output, &wo, &e.writer, err))) goto done;

  /* the cache holds two stripe-rows of source blocks: tasks move along a
   * stripe row and the next row reuses the blocks under the shared halo */
  int64_t span_w = e.grid.stripe * job->tile + 2 * e.grid.halo;
  int64_t span_h = job->tile + 2 * e.grid.halo;
  ts_reader_set_cache(e.reader, 2 * (span_w / info->block_w + 2) * (span_h / info->block_h + 2));

  int threads = job->threads > 0 ? job->threads : omp_get_max_threads();
  if (threads > e.grid.ntasks) threads = (int)e.grid.ntasks;
  e.nslots = threads;
  e.slots = calloc((size_t)threads, sizeof *e.slots);
  if (!e.slots) {
    st = ts_fail(err, TS_ERR_NOMEM, "out of memory");
    goto done;
  }
  for (int i = 0; i < threads; i++) e.slots[i].task = -1;
  pthread_mutex_init(&e.read_lock, NULL);
  pthread_mutex_init(&e.write_lock, NULL);
  pthread_cond_init(&e.written, NULL);
  ts_progress_init(&e.progress, job->progress ? log : NULL, e.grid.ntasks, t0);

#pragma omp parallel num_threads(threads)
  worker(&e);

  ts_progress_done(&e.progress);
  pthread_mutex_destroy(&e.read_lock);
  pthread_mutex_destroy(&e.write_lock);
  pthread_cond_destroy(&e.written);
  for (int i = 0; i < e.nslots; i++) free(e.slots[i].b.p);
  free(e.slots);
  if (e.failed) {
    st = ts_fail(err, e.err.code, "%s", e.err.msg);
    goto done;
  }
  st = ts_writer_finish(&e.writer, err);
  stats->seconds = now() - t0;
  stats->tasks = e.grid.ntasks;
  stats->pixels = info->w * info->h;
  stats->in_w = info->w;
  stats->in_h = info->h;
  stats->threads = threads;
  stats->out_tile = e.out_tile;
done:
  ts_writer_abort(&e.writer);
  ts_pipeline_free(&e.pipe);
  ts_reader_close(&e.reader);
  return st;
}
