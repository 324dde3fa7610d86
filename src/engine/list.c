/* List mode as a task kind: many images, each one a task, run largest
 * input first so the tail is short. A task's payload is the input's bytes
 * as stored (a file, or a stack slice), with its name and read status in
 * front: an input that cannot be read fails as a task, on whichever rank
 * computes it, and the run goes on. Its result is a self-describing record
 * (engine/list_task.h) that the owner stores in any order at the input's index,
 * so the output does not depend on ranks, threads or arrival order. */
#include <stdlib.h>
#include <string.h>
#include "engine/kind.h"
#include "engine/list_task.h"
#include "io/file.h"
#include "tessera/stop.h"
#include "core/clock.h"
#include "engine/progress.h"

typedef struct list_kind {
  ts_kind base;
  /* the owner */
  int owner, finished;
  const ts_job *job;
  ts_list_out_options oo;
  ts_list_out *out;
  ts_list_journal lj;
  int64_t *order, nleft, stored, pixels;
  ts_progress progress;
  ts_emits em; /* store's scratch */
  /* every rank */
  ts_inputs in; /* the owner's; a worker's with --io direct */
  int have_in;
  ts_blob aux[TS_MAX_KERNELS]; /* blend with= files' bytes */
  char *text, *opath;          /* a worker's own copies */
  /* a computing rank */
  ts_list_rank lr;
  int have_lr, threads;
  ts_list_thread *t; /* per thread */
} list_kind;

/* The payload's head: then the name, then the input's bytes (status 0)
 * or the reason it could not be read. */
typedef struct list_head {
  int64_t status, name_len;
} list_head;

/* ---- the owner ---- */

typedef struct keyed {
  int64_t size, index;
} keyed;
static int larger_first(const void *a, const void *b) {
  const keyed *x = a, *y = b;
  return x->size != y->size ? (x->size < y->size ? 1 : -1) : (x->index > y->index) - (x->index < y->index);
}

ts_status ts_list_remaining(const ts_inputs *in, const char *done, int64_t **order, int64_t *n) {
  keyed *k = malloc((size_t)(in->n > 0 ? in->n : 1) * sizeof *k);
  *order = malloc((size_t)(in->n > 0 ? in->n : 1) * sizeof **order);
  if (!k || !*order) {
    free(k);
    free(*order);
    *order = NULL;
    return TS_ERR_NOMEM;
  }
  for (int64_t i = 0; i < in->n; i++) k[i] = (keyed){in->items[i].size, i};
  if (in->n > 0) qsort(k, (size_t)in->n, sizeof *k, larger_first);
  *n = 0;
  for (int64_t i = 0; i < in->n; i++)
    if (!done || !done[k[i].index]) (*order)[(*n)++] = k[i].index;
  free(k);
  return TS_OK;
}

/* Read every blend with= file (the owner: workers get the bytes). */
static ts_status read_aux(const char *text, ts_blob *aux, ts_error *err) {
  char *paths[TS_MAX_KERNELS];
  ts_list_aux_paths(text, paths);
  ts_status st = TS_OK;
  for (int i = 0; i < TS_MAX_KERNELS; i++) {
    memset(&aux[i], 0, sizeof aux[i]);
    if (!paths[i]) continue;
    if (st == TS_OK) {
      ts_error e = {0};
      if (ts_read_regular(paths[i], "the image", &aux[i], &e)) st = ts_fail(err, e.code, "blend with=: %s", e.msg);
      else if (aux[i].size == 0) st = ts_fail(err, TS_ERR_FORMAT, "blend with=: %s: empty file (0 bytes)", paths[i]);
    }
    free(paths[i]);
  }
  return st;
}

/* The pipeline's text must suit at least one kind of image, checked before any work. */
static ts_status check_pipeline(const char *text, ts_error *err) {
  static const struct {
    ts_dtype d;
    int c;
  } kinds[] = {{TS_U8, 1}, {TS_U8, 3}, {TS_U8, 4}, {TS_U8, 2}, {TS_U16, 1}, {TS_U16, 3}, {TS_F32, 1}, {TS_F32, 3}};
  ts_status first = TS_OK;
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    ts_pipeline *p = NULL;
    ts_error e = {0};
    ts_status s = ts_pipeline_parse(text, kinds[i].d, kinds[i].c, &p, &e);
    ts_pipeline_free(&p);
    if (s == TS_OK) return TS_OK;
    if (i == 0) first = ts_fail(err, s, "%s", e.msg);
  }
  return first;
}

static ts_status list_start(ts_kind *kk, int64_t inflight, ts_error *err) { return TS_OK; }

static ts_status list_begin_pass(ts_kind *kk, int p, int64_t *n, ts_blob *announce, ts_error *err) {
  *n = ((list_kind *)kk)->nleft;
  return TS_OK;
}

static int64_t list_task(const ts_kind *kk, int64_t pos) { return ((const list_kind *)kk)->order[pos]; }

static ts_status list_store(ts_kind *kk, int64_t t, const unsigned char *res, size_t n, int *placed, ts_error *err) {
  list_kind *k = (list_kind *)kk;
  size_t used = 0;
  ts_list_record rec;
  *placed = 1;
  if (n < sizeof rec) return ts_fail(err, TS_ERR_INTERNAL, "a list record of %zu bytes", n);
  memcpy(&rec, res, sizeof rec);
  ts_status st = ts_list_store(k->out, &k->in, res, &used, &k->em, err);
  if (st == TS_OK && used != n) st = ts_fail(err, TS_ERR_INTERNAL, "a list record of %zu bytes, %zu used", n, used);
  if (st == TS_OK) st = ts_list_journal_add(&k->lj, res, used, err);
  k->stored++;
  k->pixels += rec.ri.w * rec.ri.h;
  ts_progress_tick(&k->progress, rec.ri.w * rec.ri.h);
  return st;
}

static ts_status list_absorb(ts_kind *kk, const unsigned char *partial, size_t n, ts_error *err) {
  return ts_fail(err, TS_ERR_INTERNAL, "list mode has no statistics pass");
}

static ts_status list_end_pass(ts_kind *kk, int p, ts_error *err) { return TS_OK; }

/* The run's end: every input failed is fatal; otherwise finish the output
 * (or keep it, stopped) and report the failures. */
static ts_status list_finish(ts_kind *kk, ts_status st, ts_run_stats *stats, ts_error *err) {
  list_kind *k = (list_kind *)kk;
  ts_progress_done(&k->progress);
  stats->done = k->stored + k->lj.replayed;
  stats->resumed = k->lj.replayed;
  const int64_t nf = k->out ? ts_list_out_nfailed(k->out) : 0;
  if (st == TS_OK && nf == k->in.n)
    st = ts_fail(err, TS_ERR_FORMAT, "every input failed (%lld); the first: %s", (long long)nf,
                 ts_list_out_failure(k->out, 0));
  size_t len = 1;
  for (int64_t i = 0; i < nf; i++) len += strlen(ts_list_out_failure(k->out, i)) + 1;
  stats->failures = calloc(len, 1);
  for (int64_t i = 0; stats->failures && i < nf; i++) {
    strcat(stats->failures, ts_list_out_failure(k->out, i));
    strcat(stats->failures, "\n");
  }
  stats->nfailed = nf;
  if (st == TS_OK) {
    st = ts_list_out_finish(&k->out, err);
  } else if (st == TS_STOPPED) { /* keep what is done */
    char note[160];
    stats->stopped = ts_stop_requested();
    snprintf(note, sizeof note, "stopped by %s: %lld of %lld inputs done", ts_stop_name(stats->stopped),
             (long long)stats->done, (long long)k->in.n);
    ts_status kept = ts_list_out_keep(&k->out, note, &stats->kept, err);
    if (kept) st = kept;
  } else {
    ts_list_out_abort(&k->out);
  }
  if (st == TS_OK && nf > 0) st = TS_SOME_FAILED;
  ts_list_journal_close(&k->lj, st, stats);
  k->finished = 1;
  stats->tasks = k->in.n;
  stats->pixels = k->pixels; /* output pixels */
  return st;
}

/* What a worker needs: the encoding options, how to enumerate the inputs
 * itself (--io direct), the strings and the blend files' bytes. */
typedef struct list_setup {
  int32_t boundary, quality, compression, no_images, format, recursive, level, unused;
  double cval;
  int64_t strips, n; /* how many inputs the owner found */
  int64_t max_pixels;
  int64_t len_pipeline, len_output, len_input, len_glob; /* len_glob -1: none */
  int64_t len_aux[TS_MAX_KERNELS];
} list_setup;

static ts_status list_pack(const ts_kind *kk, ts_blob *b, ts_error *err) {
  const list_kind *k = (const list_kind *)kk;
  const ts_job *job = k->job;
  list_setup s = {.boundary = job->boundary, .quality = k->oo.quality, .compression = k->oo.compression, .level = k->oo.level,
                  .no_images = k->oo.no_images, .format = k->oo.format, .recursive = job->recursive,
                  .cval = job->cval, .strips = job->strips, .n = k->in.n, .max_pixels = job->max_image_pixels,
                  .len_pipeline = (int64_t)strlen(job->pipeline), .len_output = (int64_t)strlen(job->output),
                  .len_input = (int64_t)strlen(job->input), .len_glob = job->glob ? (int64_t)strlen(job->glob) : -1};
  for (int i = 0; i < TS_MAX_KERNELS; i++) s.len_aux[i] = k->aux[i].p ? (int64_t)k->aux[i].size : -1;
  int bad = ts_blob_append(b, &s, sizeof s) || ts_blob_append(b, job->pipeline, (size_t)s.len_pipeline) ||
            ts_blob_append(b, job->output, (size_t)s.len_output) || ts_blob_append(b, job->input, (size_t)s.len_input) ||
            (job->glob && ts_blob_append(b, job->glob, (size_t)s.len_glob));
  for (int i = 0; i < TS_MAX_KERNELS && !bad; i++)
    if (k->aux[i].p) bad = ts_blob_append(b, k->aux[i].p, k->aux[i].size);
  return bad ? ts_fail(err, TS_ERR_NOMEM, "out of memory") : TS_OK;
}

/* ---- a reader ---- */

static ts_status list_read(ts_kind *kk, int64_t i, ts_blob *b, ts_error *err) {
  list_kind *k = (list_kind *)kk;
  const ts_input *it = &k->in.items[i];
  const char *name = it->path ? it->path : it->name; /* for messages */
  list_head h = {0, (int64_t)strlen(name)};
  const size_t at = b->size;
  if (ts_blob_append(b, &h, sizeof h) || ts_blob_append(b, name, (size_t)h.name_len))
    return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  ts_error e = {0};
  ts_status rs = ts_inputs_read(&k->in, i, b, &e);
  if (rs == TS_OK) return TS_OK;
  /* the read error travels in place of the bytes: the task fails where it runs */
  b->size = at + sizeof h + (size_t)h.name_len;
  h.status = rs;
  memcpy(b->p + at, &h, sizeof h);
  return ts_blob_append(b, e.msg, strlen(e.msg) + 1) ? ts_fail(err, TS_ERR_NOMEM, "out of memory") : TS_OK;
}

/* ---- a computing rank ---- */

static ts_status list_prepare(ts_kind *kk, int threads, ts_error *err) {
  list_kind *k = (list_kind *)kk;
  k->t = calloc((size_t)threads, sizeof *k->t);
  if (!k->t) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  k->threads = threads;
  for (int i = 0; i < threads; i++) {
    ts_status st = ts_list_thread_init(&k->t[i], err);
    if (st) return st;
  }
  return TS_OK;
}

static ts_status list_enter_pass(ts_kind *kk, int p, const unsigned char *a, size_t n, ts_error *err) { return TS_OK; }

static ts_status list_compute(ts_kind *kk, int me, int nthreads, int64_t i, const unsigned char *payload, size_t n,
                              ts_blob *out, ts_error *err) {
  list_kind *k = (list_kind *)kk;
  list_head h;
  if (n < sizeof h) return ts_fail(err, TS_ERR_INTERNAL, "input %lld: a payload of %zu bytes", (long long)i, n);
  memcpy(&h, payload, sizeof h);
  if (n < sizeof h + (size_t)h.name_len) return ts_fail(err, TS_ERR_INTERNAL, "input %lld: a short payload", (long long)i);
  char name[4096];
  snprintf(name, sizeof name, "%.*s", (int)h.name_len, (const char *)payload + sizeof h);
  const unsigned char *data = payload + sizeof h + h.name_len;
  const size_t len = n - sizeof h - (size_t)h.name_len;
  if (h.status) return ts_list_failure(i, (ts_status)h.status, (const char *)data, out, err);
  int64_t px = 0;
  return ts_list_task(&k->lr, &k->t[me], i, name, data, len, out, &px, err);
}

static ts_status list_flush(ts_kind *kk, ts_blob *out, ts_error *err) { return TS_OK; }

static void list_close(ts_kind **kp) {
  list_kind *k = (list_kind *)*kp;
  if (!k) return;
  for (int i = 0; k->t && i < k->threads; i++) ts_list_thread_free(&k->t[i]);
  free(k->t);
  if (k->have_lr) ts_list_rank_free(&k->lr);
  if (k->owner && !k->finished) { /* a failure before the end: nothing is kept */
    ts_run_stats ignored = {0};
    ts_list_out_abort(&k->out);
    ts_list_journal_close(&k->lj, TS_ERR_INTERNAL, &ignored);
  }
  if (k->have_in) ts_inputs_free(&k->in);
  for (int i = 0; i < TS_MAX_KERNELS; i++) ts_blob_free(&k->aux[i]);
  ts_emits_free(&k->em);
  free(k->order);
  free(k->text);
  free(k->opath);
  free(k);
  *kp = NULL;
}

static const ts_kind_ops list_ops = {
    .name = "list", .start = list_start, .begin_pass = list_begin_pass, .task = list_task, .store = list_store,
    .absorb = list_absorb, .end_pass = list_end_pass, .finish = list_finish, .pack = list_pack, .read = list_read,
    .prepare = list_prepare, .enter_pass = list_enter_pass, .compute = list_compute, .flush = list_flush,
    .close = list_close,
};

static void list_common(list_kind *k) {
  k->base.ops = &list_ops;
  k->base.passes = 1;
  /* HDF5 here is not thread-safe: when inputs are read through it (a
   * stack, or strips of an HDF5 image) and results stored into it, reads
   * and stores take one lock; else reading files overlaps storing */
  const int h5_in = k->in.h5 || (k->in.strip_reader && !strcmp(k->in.strip_reader->info.format, "hdf5"));
  k->base.serial_io = h5_in && !ts_list_out_is_dir(k->owner ? k->job->output : k->opath);
  int64_t most = 0;
  for (int64_t i = 0; k->have_in && i < k->in.n; i++)
    if (k->in.items[i].size > most) most = k->in.items[i].size;
  if (k->have_in && (k->in.h5 || k->in.zarr)) most = ts_image_bytes(k->in.w, k->in.h, k->in.channels, k->in.dtype);
  if (k->have_in && k->in.strip_reader) most = ts_image_bytes(k->in.w, k->in.strip_rows, k->in.channels, k->in.dtype);
  k->base.max_payload = most + 4096 + (int64_t)sizeof(ts_payload) + (int64_t)sizeof(list_head);
}

static ts_status list_open(const ts_job *job, FILE *log, ts_kind **out, ts_error *err) {
  list_kind *k = calloc(1, sizeof *k);
  if (!k) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  *out = &k->base;
  k->owner = 1;
  k->job = job;
  ts_list_out_options *oo = &k->oo;
  oo->path = job->output;
  oo->quality = job->quality;
  oo->compression = job->compression;
  oo->level = job->compression_level;
  oo->force = job->force;
  oo->no_images = job->no_images;
  oo->pipeline = job->pipeline;
  oo->input = job->input;
  ts_status st = TS_OK;
  if (job->format && ts_file_format_parse(job->format, &oo->format))
    st = ts_fail(err, TS_ERR_USAGE, "--format %s: expected png, tiff or jpeg", job->format);
  else if (job->format && !ts_list_out_is_dir(job->output))
    st = ts_fail(err, TS_ERR_USAGE, "--format %s is for a directory output (end --output with '/')", job->format);
  /* PNG files and HDF5 images are deflate streams; TIFF files take
   * --compression (a directory without --format is refused later) */
  if (st == TS_OK) {
    const int dir = ts_list_out_is_dir(job->output), zarr = ts_output_in_place(job->output);
    const int deflated = !zarr && (!dir || oo->format == TS_FILE_PNG);
    st = ts_compression_level_check(dir && oo->format == TS_FILE_JPEG ? TS_COMPRESS_JPEG : job->compression,
                                    deflated, job->compression_level, err);
  }
  if (st == TS_OK && (job->zarr_format == 3 || job->shard))
    st = ts_fail(err, TS_ERR_USAGE, "%s: list mode writes Zarr v2 (the HDF5 layout as a group); --zarr-format 3 and "
                 "--shard are for tile mode", job->output);
  if (st == TS_OK) st = check_pipeline(job->pipeline, err);
  if (st == TS_OK && (st = ts_inputs_open(job->input, job->glob, job->recursive, job->strips, &k->in, err)) == TS_OK)
    k->have_in = 1;
  if (st == TS_OK && (k->in.h5 || k->in.zarr)) /* a stack's images share one size: over the limit, every one would fail */
    st = ts_codec_check(job->input, k->in.w, k->in.h, job->max_image_pixels, err);
  if (st == TS_OK) ts_stop_immediate(0); /* files change from here on: a stop keeps what it must */
  if (st == TS_OK) st = ts_list_journal_open(&k->lj, job, &k->in, oo, err);
  if (st == TS_OK) st = ts_list_out_open(oo, &k->in, &k->out, err);
  if (st == TS_OK) st = ts_list_journal_replay(&k->lj, k->out, &k->in, err); /* --resume: the inputs done before */
  if (st == TS_OK) st = read_aux(job->pipeline, k->aux, err);
  if (st == TS_OK && (st = ts_list_rank_init(&k->lr, job->pipeline, job->boundary, job->cval, job->max_image_pixels, oo, k->aux, err)) == TS_OK)
    k->have_lr = 1;
  if (st == TS_OK && ts_list_remaining(&k->in, k->lj.done, &k->order, &k->nleft))
    st = ts_fail(err, TS_ERR_NOMEM, "out of memory");
  if (st) {
    list_close(out);
    return st;
  }
  list_common(k);
  ts_progress_init(&k->progress, job->progress ? log : NULL, k->nleft, ts_now());
  return TS_OK;
}

static char *take_string(const unsigned char **at, int64_t n) {
  char *s = malloc((size_t)(n > 0 ? n : 0) + 1);
  if (!s) return NULL;
  if (n > 0) memcpy(s, *at, (size_t)n), *at += n;
  s[n > 0 ? n : 0] = '\0';
  return s;
}

static ts_status list_open_worker(const unsigned char *setup, size_t n, int rank, int direct, ts_kind **out,
                                  ts_error *err) {
  list_setup s;
  if (n < sizeof s) return ts_fail(err, TS_ERR_INTERNAL, "a list set-up of %zu bytes", n);
  memcpy(&s, setup, sizeof s);
  list_kind *k = calloc(1, sizeof *k);
  if (!k) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  *out = &k->base;
  const unsigned char *at = setup + sizeof s;
  k->text = take_string(&at, s.len_pipeline);
  k->opath = take_string(&at, s.len_output);
  char *input = take_string(&at, s.len_input), *glob = s.len_glob >= 0 ? take_string(&at, s.len_glob) : NULL;
  ts_status st = k->text && k->opath && input && (glob || s.len_glob < 0) ? TS_OK
                                                                          : ts_fail(err, TS_ERR_NOMEM, "out of memory");
  for (int i = 0; i < TS_MAX_KERNELS && st == TS_OK; i++) {
    if (s.len_aux[i] < 0) continue;
    if (ts_blob_append(&k->aux[i], at, (size_t)s.len_aux[i])) st = ts_fail(err, TS_ERR_NOMEM, "out of memory");
    at += s.len_aux[i];
  }
  if (st == TS_OK && (size_t)(at - setup) != n) st = ts_fail(err, TS_ERR_INTERNAL, "a list set-up of %zu bytes", n);
  k->oo = (ts_list_out_options){.path = k->opath, .format = (ts_file_format)s.format, .quality = s.quality,
                                .compression = (ts_compression)s.compression, .no_images = s.no_images,
                                .level = s.level};
  if (st == TS_OK &&
      (st = ts_list_rank_init(&k->lr, k->text, (ts_boundary)s.boundary, s.cval, s.max_pixels, &k->oo, k->aux, err)) == TS_OK)
    k->have_lr = 1;
  if (k->have_lr) k->lr.rank = rank;
  if (st == TS_OK && direct) { /* enumerate the inputs here: this host must see what rank 0 saw */
    if ((st = ts_inputs_open(input, glob, s.recursive, s.strips, &k->in, err))) {
      ts_note_relative(input, st, err);
      st = TS_ERR_IO; /* rank 0 accepted the path: here it is this host's files that fail */
    } else {
      k->have_in = 1;
      if (k->in.n != s.n)
        st = ts_fail(err, TS_ERR_IO, "%s: this rank sees %lld inputs, rank 0 sees %lld (--io direct needs the same "
                     "files on every host; --io root does not)", input, (long long)k->in.n, (long long)s.n);
    }
  }
  free(input);
  free(glob);
  list_common(k);
  if (st) list_close(out);
  return st;
}

static int list_claims(const ts_job *job) { return job->strips > 0 || ts_inputs_is_list(job->input); }

const ts_kind_def ts_kind_list = {
    .name = "list", .claims = list_claims, .open = list_open, .open_worker = list_open_worker,
};
