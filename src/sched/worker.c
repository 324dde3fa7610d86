/* A worker rank: receive a task (the next one is already on its way while
 * this one computes), run the pipeline with every thread on bands of rows,
 * encode the output tiles in parallel, send them back (the previous send
 * overlaps this compute). Waits sleep instead of spinning, so ranks that
 * outnumber cores do not steal them from each other. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "sched/fetch.h"
#include "sched/output.h"
#include "sched/protocol.h"

typedef struct worker {
  const ts_setup *su;
  ts_pipeline *pipe;
  ts_reader *reader; /* --io direct */
  int threads;
  ts_scratch **scratch;
  ts_encoder **encs;
  ts_blob *parts;
  void *inbuf, *outbuf, *fetch;
} worker;

static void worker_free(worker *w) {
  for (int i = 0; i < w->threads; i++) {
    if (w->scratch) ts_scratch_free(&w->scratch[i]);
    if (w->encs) ts_encoder_free(&w->encs[i]);
    if (w->parts) ts_blob_free(&w->parts[i]);
  }
  free(w->scratch);
  free(w->encs);
  free(w->parts);
  free(w->inbuf);
  free(w->outbuf);
  free(w->fetch);
  ts_pipeline_free(&w->pipe);
  ts_reader_close(&w->reader);
}

/* Everything a worker needs before its first task; any failure here is
 * reported to rank 0 through ts_agree, naming this rank and host. */
static ts_status prepare(worker *w, const ts_setup *su, const char *input, const char *output,
                         const char *pipeline, ts_error *err) {
  memset(w, 0, sizeof *w);
  w->su = su;
  w->threads = su->threads > 0 ? su->threads : omp_get_max_threads();
  ts_status st = ts_pipeline_parse(pipeline, (ts_dtype)su->in_dtype, su->in_channels, &w->pipe, err);
  if (st) return st;
  const int64_t T = su->grid.tile, H = su->grid.halo;
  w->scratch = calloc((size_t)w->threads, sizeof *w->scratch);
  w->encs = calloc((size_t)w->threads, sizeof *w->encs);
  w->parts = calloc((size_t)w->threads, sizeof *w->parts);
  if (!w->scratch || !w->encs || !w->parts) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  for (int i = 0; i < w->threads; i++) {
    if (!(w->scratch[i] = ts_scratch_new())) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
    if ((st = ts_encoder_new(output, &su->wopts, &w->encs[i], err))) return st;
  }
  w->outbuf = malloc((size_t)ts_image_bytes(T, T, w->pipe->out_channels, w->pipe->out_dtype));
  if (!w->outbuf) return ts_fail(err, TS_ERR_NOMEM, "out of memory for the output tile");
  if (su->io == TS_IO_DIRECT) {
    if ((st = ts_reader_open(input, &w->reader, err))) return st;
    const ts_image_info *i = &w->reader->info;
    if (i->w != su->grid.w || i->h != su->grid.h || (int32_t)i->dtype != su->in_dtype ||
        i->channels != su->in_channels)
      return ts_fail(err, TS_ERR_FORMAT, "%s: is not the image rank 0 sees (%lldx%lld %s x%d here)",
                     input, (long long)i->w, (long long)i->h, ts_dtype_name(i->dtype), i->channels);
    ts_plan_size_cache(w->reader, &su->grid);
    ts_rect big = {0, 0, T + 2 * H, T + 2 * H};
    w->inbuf = malloc((size_t)ts_image_bytes(T + 2 * H, T + 2 * H, su->in_channels, (ts_dtype)su->in_dtype));
    w->fetch = malloc(ts_fetch_scratch_bytes(big));
    if (!w->inbuf || !w->fetch) return ts_fail(err, TS_ERR_NOMEM, "out of memory for the input tile");
  }
  return TS_OK;
}

/* Compute task t whose input pixels are at `pixels` (--io root) or read
 * here (--io direct); append the encoded tiles to `out`. */
static ts_status compute(worker *w, int64_t t, const void *pixels, ts_blob *out, ts_error *err) {
  const ts_setup *su = w->su;
  ts_rect core = ts_grid_core(&su->grid, t), in = ts_grid_input(&su->grid, t);
  ts_image src;
  if (su->io == TS_IO_DIRECT) {
    src = ts_image_packed(w->inbuf, in.w, in.h, su->in_channels, (ts_dtype)su->in_dtype);
    ts_status st = ts_fetch_rect(w->reader, in, (ts_boundary)su->boundary, su->cval, &src, w->fetch, err);
    if (st) return st;
  } else {
    src = ts_image_packed((void *)pixels, in.w, in.h, su->in_channels, (ts_dtype)su->in_dtype);
  }
  ts_image dst = ts_image_packed(w->outbuf, core.w, core.h, w->pipe->out_channels, w->pipe->out_dtype);
  ts_status st = ts_pipeline_run_bands(w->pipe, &src, &dst, w->scratch, w->threads, err);
  if (st) return st;
  return ts_encode_core(w->encs, w->parts, w->threads, core, su->out_tile, &dst, out, err);
}

ts_status ts_worker(const ts_setup *su, const char *input, const char *output, const char *pipeline,
                    MPI_Comm comm, ts_rank_stats *mine, ts_error *err) {
  worker w;
  ts_error local = {0};
  ts_status st = prepare(&w, su, input, output, pipeline, &local);
  if ((st = ts_agree(st, &local, comm, err))) {
    worker_free(&w);
    return st;
  }
  memset(mine, 0, sizeof *mine);
  mine->threads = w.threads;
  gethostname(mine->host, sizeof mine->host - 1);
  double t_start = MPI_Wtime();

  /* two receive buffers (the next task arrives during this one) and two
   * result buffers (the last send drains during this compute) */
  const int64_t T = su->grid.tile, H = su->grid.halo;
  size_t in_max = sizeof(ts_msg) + (su->io == TS_IO_ROOT ? (size_t)ts_image_bytes(T + 2 * H, T + 2 * H,
                                                        su->in_channels, (ts_dtype)su->in_dtype) : 0);
  unsigned char *rbuf[2] = {malloc(in_max), malloc(in_max)};
  ts_blob res[2] = {{0}, {0}};
  MPI_Request rreq[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL}, sreq[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
  if (!rbuf[0] || !rbuf[1]) MPI_Abort(comm, 1); /* cannot even receive STOP */
  int cur = 0, failed = 0;
  int32_t final_status = TS_OK;
  MPI_Irecv(rbuf[0], (int)in_max, MPI_BYTE, 0, TAG_WORK, comm, &rreq[0]);
  for (;;) {
    double idle = 0;
    ts_wait_gently(&rreq[cur], NULL, &idle);
    ts_msg m;
    memcpy(&m, rbuf[cur], sizeof m);
    if (m.kind == MSG_STOP) {
      final_status = m.status;
      break;
    }
    MPI_Irecv(rbuf[!cur], (int)in_max, MPI_BYTE, 0, TAG_WORK, comm, &rreq[!cur]);
    mine->bytes_received += (int64_t)sizeof m + m.payload;
    double t0 = MPI_Wtime();
    ts_blob *out = &res[cur];
    ts_wait_gently(&sreq[cur], NULL, NULL); /* this buffer's last send */
    out->size = 0;
    ts_msg r = {.task = m.task, .kind = MSG_RESULT};
    ts_blob_append(out, &r, sizeof r);
    if (!failed) {
      ts_error e = {0};
      st = compute(&w, m.task, rbuf[cur] + sizeof m, out, &e);
      if (st) { /* report once; rank 0 stops everyone */
        failed = 1;
        out->size = 0;
        r.kind = MSG_ERROR;
        r.status = st;
        ts_blob_append(out, &r, sizeof r);
        ts_blob_append(out, e.msg, strlen(e.msg) + 1);
      }
    } else {
      out->size = 0; /* after a failure, only acknowledge */
      r.kind = MSG_ERROR;
      r.status = TS_ERR_INTERNAL;
      ts_blob_append(out, &r, sizeof r);
    }
    r.seconds = MPI_Wtime() - t0;
    r.payload = (int64_t)(out->size - sizeof r);
    memcpy(out->p, &r, sizeof r);
    mine->busy += r.seconds;
    mine->tasks += r.kind == MSG_RESULT;
    mine->bytes_sent += (int64_t)out->size;
    MPI_Isend(out->p, (int)out->size, MPI_BYTE, 0, TAG_DONE, comm, &sreq[cur]);
    cur = !cur;
  }
  MPI_Waitall(2, sreq, MPI_STATUSES_IGNORE);
  /* FINAL: this rank's figures for rank 0's summary */
  ts_msg f = {.kind = MSG_FINAL, .payload = sizeof *mine, .seconds = MPI_Wtime() - t_start};
  unsigned char fin[sizeof f + sizeof *mine];
  memcpy(fin, &f, sizeof f);
  memcpy(fin + sizeof f, mine, sizeof *mine);
  MPI_Send(fin, (int)sizeof fin, MPI_BYTE, 0, TAG_DONE, comm);
  free(rbuf[0]);
  free(rbuf[1]);
  ts_blob_free(&res[0]);
  ts_blob_free(&res[1]);
  worker_free(&w);
  if (final_status != TS_OK) return ts_fail(err, (ts_status)final_status, "the job failed");
  return TS_OK;
}
