/* List mode's Zarr output sink (v2): the same layout as the HDF5 sink,
 * as arrays of one group.
 *
 *   OUT.zarr/images              N x H x W [x C], one chunk per image, when
 *                                every result has one shape and dtype;
 *                                else images/<name>, one array per input
 *   OUT.zarr/names               the inputs' names (vlen-utf8), row i of
 *                                every array is names[i]
 *   OUT.zarr/results/<kernel>    N or N x K float64 values (or per name,
 *                                when their lengths differ)
 *   OUT.zarr/failed/name, reason the failed inputs and why
 *
 * Workers compress each image into its chunk with the job's compressor;
 * rank 0 stores the chunk under a staging name (.rows/INDEX) and keeps
 * the values. At the end, when the shapes are known and the failed
 * inputs too, each chunk is renamed into its row (or its own array) and
 * the metadata written, in OUT.zarr.partial/, renamed to OUT.zarr. A
 * resume rebuilds the store from the journal's records, as for HDF5. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "io/backends.h"
#include "io/list_sink.h"
#include "io/zarr.h"

typedef struct item {
  int64_t w, h;
  int32_t channels, dtype; /* dtype -1: no image */
  int nv[TS_MAX_EMITS];     /* values per emit, by the emit names' order (-1: none) */
  double *v;                /* all of them, back to back */
} item;

typedef struct zout {
  char *tmp; /* OUT.zarr.partial */
  int dirfd;
  ts_zarr_codec codec;
  item *items;            /* per input */
  char names[TS_MAX_EMITS][64]; /* the emits seen, in order */
  int first_nv[TS_MAX_EMITS];   /* how many values each emits (-1: not seen yet) */
  int nnames;
} zout;

#define Z(o) ((zout *)(o)->ctx)

static int zarr_claims(const ts_list_out_options *o) {
  size_t n = strlen(o->path);
  return n > 5 && !strcmp(o->path + n - 5, ".zarr");
}

/* Directory rel and its parents, inside the store. */
static ts_status mkdirs(zout *z, const char *rel, const char *store, ts_error *err) {
  char p[4096];
  snprintf(p, sizeof p, "%s", rel);
  for (char *s = strchr(p, '/');; s = strchr(s + 1, '/')) {
    if (s) *s = '\0';
    if (mkdirat(z->dirfd, p, 0777) != 0 && errno != EEXIST)
      return ts_fail(err, TS_ERR_IO, "%s/%s: cannot create: %s", store, p, strerror(errno));
    if (!s) return TS_OK;
    *s = '/';
  }
}

static ts_status zarr_open(ts_list_out *o, ts_error *err) {
  zout *z = calloc(1, sizeof *z);
  if (!z) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  o->ctx = z;
  z->dirfd = -1;
  ts_status st = ts_store_replaceable(o->path, o->o.force, err);
  if (st == TS_OK) st = ts_zarr_codec_for(o->o.compression, o->o.level, TS_U8, &z->codec, o->path, err);
  if (st) return st;
  if (!(z->tmp = malloc(strlen(o->path) + 9)) || !(z->items = calloc((size_t)o->in->n + 1, sizeof *z->items)))
    return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  sprintf(z->tmp, "%s.partial", o->path);
  ts_remove_path(z->tmp);
  if (mkdir(z->tmp, 0777) != 0 || (z->dirfd = open(z->tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
    return ts_fail(err, TS_ERR_IO, "%s: cannot create %s: %s", o->path, z->tmp, strerror(errno));
  for (int64_t i = 0; i < o->in->n; i++) z->items[i].dtype = -1;
  for (int i = 0; i < TS_MAX_EMITS; i++) z->first_nv[i] = -1;
  return mkdirs(z, ".rows", z->tmp, err);
}

/* The packed pixels, compressed as one chunk, where they were computed. */
static ts_status zarr_encode(const ts_list_out_options *o, const ts_image *im, ts_result_image *ri, ts_blob *data,
                             ts_zstream *zs, ts_blob *work, ts_error *err) {
  (void)zs;
  if (o->no_images) return TS_OK;
  ts_zarr_codec c;
  ts_status st = ts_zarr_codec_for(o->compression, o->level, im->dtype, &c, o->path, err);
  if (st) return st;
  const size_t row = (size_t)im->w * ts_pixel_size(im), raw = row * (size_t)im->h, bound = ts_zarr_bound(&c, raw);
  if (ts_blob_reserve(work, raw) || ts_blob_reserve(data, bound)) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  for (int64_t y = 0; y < im->h; y++) memcpy(work->p + (size_t)y * row, (char *)im->data + y * im->stride, row);
  if (c.kind == TS_ZC_NONE) {
    memcpy(data->p, work->p, raw);
    data->size = raw;
    return TS_OK;
  }
  ts_zarr_state s = {0}; /* per call: list images are large, the state is small */
  data->size = ts_zarr_encode(&c, &s, work->p, raw, data->p, bound);
  ts_zarr_state_free(&s);
  return data->size ? TS_OK : ts_fail(err, TS_ERR_INTERNAL, "compressing a %lldx%lld image failed", (long long)im->w,
                                      (long long)im->h);
}

static int emit_slot(zout *z, const char *name) {
  for (int i = 0; i < z->nnames; i++)
    if (!strcmp(z->names[i], name)) return i;
  if (z->nnames == TS_MAX_EMITS) return -1;
  snprintf(z->names[z->nnames], sizeof z->names[0], "%s", name);
  return z->nnames++;
}

static ts_status zarr_put(ts_list_out *o, int64_t index, const ts_result_image *ri, const void *data, size_t size,
                          const ts_emits *em, ts_error *err) {
  zout *z = Z(o);
  item *it = &z->items[index];
  for (int i = 0; i < TS_MAX_EMITS; i++) it->nv[i] = -1;
  if (!o->o.no_images) {
    char name[64];
    snprintf(name, sizeof name, ".rows/%lld", (long long)index);
    int fd = openat(z->dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    int ok = fd >= 0 && write(fd, data, size) == (ssize_t)size;
    if (fd >= 0 && close(fd) != 0) ok = 0;
    if (!ok) return ts_fail(err, TS_ERR_IO, "%s/%s: cannot write: %s", z->tmp, name, strerror(errno));
    it->w = ri->w, it->h = ri->h, it->channels = ri->channels, it->dtype = ri->dtype;
  }
  int64_t nv = 0;
  for (int i = 0; em && i < em->n; i++) nv += em->e[i].n;
  free(it->v);
  it->v = nv ? malloc((size_t)nv * sizeof *it->v) : NULL;
  if (nv && !it->v) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  for (int i = 0, at = 0; em && i < em->n; i++) {
    const int s = emit_slot(z, em->e[i].name);
    if (s < 0) return ts_fail(err, TS_ERR_USAGE, "%s: more than %d kinds of results", o->path, TS_MAX_EMITS);
    if (z->first_nv[s] >= 0 && z->first_nv[s] != em->e[i].n) /* said now, not after every input has run */
      return ts_fail(err, TS_ERR_USAGE, "%s: results/%s: %s emitted %lld values, another input %d; a Zarr output takes "
                     "one length per kernel (an HDF5 output keeps one dataset per input)", o->path, em->e[i].name,
                     o->in->items[index].name, (long long)em->e[i].n, z->first_nv[s]);
    z->first_nv[s] = (int)em->e[i].n;
    it->nv[s] = (int)em->e[i].n;
    memcpy(it->v + at, em->v + em->e[i].at, (size_t)em->e[i].n * sizeof *it->v);
    at += (int)em->e[i].n;
  }
  return TS_OK;
}

/* ---- the metadata ---- */

static ts_status put_json(zout *z, const char *rel, const char *file, json_t *doc, ts_error *err) {
  char p[4200];
  snprintf(p, sizeof p, "%s%s%s", rel, rel[0] ? "/" : "", file);
  ts_status st = doc ? ts_zarr_put_json(z->dirfd, p, doc, z->tmp, err) : ts_fail(err, TS_ERR_NOMEM, "out of memory");
  json_decref(doc);
  return st;
}

static ts_status put_bytes(zout *z, const char *rel, const void *data, size_t n, ts_error *err) {
  int fd = openat(z->dirfd, rel, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  int ok = fd >= 0 && write(fd, data, n) == (ssize_t)n;
  if (fd >= 0 && close(fd) != 0) ok = 0;
  return ok ? TS_OK : ts_fail(err, TS_ERR_IO, "%s/%s: cannot write: %s", z->tmp, rel, strerror(errno));
}

/* An array's .zarray: shape and chunks of nd dims, the element type. */
static json_t *array_meta(const int64_t *shape, const int64_t *chunks, int nd, const char *dtype, json_t *compressor,
                          json_t *filters) {
  json_t *s = json_array(), *c = json_array();
  for (int i = 0; i < nd; i++) {
    json_array_append_new(s, json_integer(shape[i]));
    json_array_append_new(c, json_integer(chunks[i] > 0 ? chunks[i] : 1));
  }
  return json_pack("{s:o, s:o, s:s, s:s, s:i, s:o, s:s, s:o, s:i}", "chunks", c, "compressor", compressor,
                   "dimension_separator", "/", "dtype", dtype, "fill_value", 0, "filters", filters ? filters : json_null(),
                   "order", "C", "shape", s, "zarr_format", 2);
}

/* A group at rel, and its parents as groups. */
static ts_status group(zout *z, const char *rel, ts_error *err) {
  ts_status st = mkdirs(z, rel, z->tmp, err);
  char p[4096];
  snprintf(p, sizeof p, "%s", rel);
  while (st == TS_OK) {
    st = put_json(z, p, ".zgroup", json_pack("{s:i}", "zarr_format", 2), err);
    char *s = strrchr(p, '/');
    if (!s) break;
    *s = '\0';
  }
  return st;
}

/* A 1-D vlen-utf8 array of strings at rel (numcodecs' VLenUTF8: count,
 * then a length and the bytes per item, little-endian). */
static ts_status strings(zout *z, const char *rel, const char **v, int64_t n, ts_error *err) {
  ts_status st = mkdirs(z, rel, z->tmp, err);
  const int64_t shape = n, chunk = n > 0 ? n : 1;
  if (st == TS_OK)
    st = put_json(z, rel, ".zarray", array_meta(&shape, &chunk, 1, "|O", json_null(),
                                                json_pack("[{s:s}]", "id", "vlen-utf8")), err);
  if (st || n == 0) return st;
  ts_blob b = {0};
  uint32_t k = (uint32_t)n;
  int bad = ts_blob_append(&b, &k, 4);
  for (int64_t i = 0; i < n && !bad; i++) {
    k = (uint32_t)strlen(v[i]);
    bad = ts_blob_append(&b, &k, 4) || ts_blob_append(&b, v[i], k);
  }
  char p[4096];
  snprintf(p, sizeof p, "%s/0", rel);
  st = bad ? ts_fail(err, TS_ERR_NOMEM, "out of memory") : put_bytes(z, p, b.p, b.size, err);
  ts_blob_free(&b);
  return st;
}

/* Move staged chunk `index` to rel (a chunk key inside the store). */
/* Move staged chunk `index` to rel (a chunk key inside the store), its
 * directories made first. */
static ts_status place(zout *z, int64_t index, const char *rel, ts_error *err) {
  char from[64], dir[4200];
  snprintf(from, sizeof from, ".rows/%lld", (long long)index);
  snprintf(dir, sizeof dir, "%s", rel);
  *strrchr(dir, '/') = '\0';
  ts_status st = mkdirs(z, dir, z->tmp, err);
  if (st == TS_OK && renameat(z->dirfd, from, z->dirfd, rel) != 0)
    st = ts_fail(err, TS_ERR_IO, "%s/%s: cannot move a chunk into place: %s", z->tmp, rel, strerror(errno));
  return st;
}

static ts_status images(ts_list_out *o, const int64_t *done, int64_t ndone, ts_error *err) {
  zout *z = Z(o);
  const item *f = ndone ? &z->items[done[0]] : NULL;
  int same = 1;
  for (int64_t k = 1; k < ndone && same; k++) {
    const item *it = &z->items[done[k]];
    same = it->w == f->w && it->h == f->h && it->channels == f->channels && it->dtype == f->dtype;
  }
  if (ndone == 0) return group(z, "images", err);
  ts_status st = TS_OK;
  if (same) { /* the stack: row k is the k-th done input */
    const int nd = f->channels > 1 ? 4 : 3;
    const int64_t shape[4] = {ndone, f->h, f->w, f->channels}, chunk[4] = {1, f->h, f->w, f->channels};
    ts_zarr_codec c = z->codec;
    c.typesize = (int)ts_dtype_size((ts_dtype)f->dtype);
    char rel[4096];
    st = mkdirs(z, "images", z->tmp, err);
    if (st == TS_OK)
      st = put_json(z, "images", ".zarray", array_meta(shape, chunk, nd, ts_zarr_dtype_v2((ts_dtype)f->dtype),
                                                       ts_zarr_compressor_v2(&c), NULL), err);
    for (int64_t k = 0; st == TS_OK && k < ndone; k++) {
      snprintf(rel, sizeof rel, "images/%lld/0/0%s", (long long)k, nd == 4 ? "/0" : "");
      st = place(z, done[k], rel, err);
    }
    return st;
  }
  st = group(z, "images", err);
  for (int64_t k = 0; st == TS_OK && k < ndone; k++) { /* shapes differ: an array per input */
    const item *it = &z->items[done[k]];
    const int nd = it->channels > 1 ? 3 : 2;
    const int64_t shape[3] = {it->h, it->w, it->channels};
    ts_zarr_codec c = z->codec;
    c.typesize = (int)ts_dtype_size((ts_dtype)it->dtype);
    char rel[4096], safe[4000];
    ts_list_safe_name(o->in->items[done[k]].name, safe, sizeof safe);
    snprintf(rel, sizeof rel, "images/%s", safe);
    char *slash = strrchr(rel, '/');
    if (slash > rel + 6) { /* a name in subdirectories: groups down to it */
      *slash = '\0';
      st = group(z, rel, err);
      *slash = '/';
    }
    if (st == TS_OK) st = mkdirs(z, rel, z->tmp, err);
    if (st == TS_OK)
      st = put_json(z, rel, ".zarray", array_meta(shape, shape, nd, ts_zarr_dtype_v2((ts_dtype)it->dtype),
                                                  ts_zarr_compressor_v2(&c), NULL), err);
    char key[4200];
    snprintf(key, sizeof key, "%s/0/0%s", rel, nd == 3 ? "/0" : "");
    if (st == TS_OK) st = place(z, done[k], key, err);
  }
  return st;
}

/* results/<kernel>: N or N x K doubles, one chunk, from memory. */
static ts_status results(ts_list_out *o, const int64_t *done, int64_t ndone, ts_error *err) {
  zout *z = Z(o);
  ts_status st = z->nnames ? group(z, "results", err) : TS_OK;
  for (int s = 0; st == TS_OK && s < z->nnames; s++) {
    int n = -1, same = 1;
    for (int64_t k = 0; k < ndone; k++) {
      const int m = z->items[done[k]].nv[s];
      if (n < 0) n = m;
      same &= m == n && m >= 0;
    }
    if (!same || n < 0) { /* put refused other lengths; an input without this kernel's values cannot be */
      st = ts_fail(err, TS_ERR_INTERNAL, "%s: results/%s: an input has no values", o->path, z->names[s]);
      break;
    }
    double *v = malloc((size_t)(ndone * n + 1) * sizeof *v);
    if (!v) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
    for (int64_t k = 0; k < ndone; k++) {
      const item *it = &z->items[done[k]];
      int at = 0;
      for (int j = 0; j < s; j++) at += it->nv[j] > 0 ? it->nv[j] : 0;
      memcpy(v + k * n, it->v + at, (size_t)n * sizeof *v);
    }
    char rel[128];
    snprintf(rel, sizeof rel, "results/%s", z->names[s]);
    const int64_t shape[2] = {ndone, n}, chunk[2] = {ndone, n};
    st = mkdirs(z, rel, z->tmp, err);
    if (st == TS_OK) st = put_json(z, rel, ".zarray", array_meta(shape, chunk, n == 1 ? 1 : 2, "<f8", json_null(), NULL), err);
    snprintf(rel, sizeof rel, "results/%s/0%s", z->names[s], n == 1 ? "" : "/0");
    if (st == TS_OK && n > 1) {
      char d[128];
      snprintf(d, sizeof d, "results/%s/0", z->names[s]);
      st = mkdirs(z, d, z->tmp, err);
    }
    if (st == TS_OK && ndone) st = put_bytes(z, rel, v, (size_t)(ndone * n) * sizeof *v, err);
    free(v);
  }
  return st;
}

static ts_status complete(ts_list_out *o, const char *stopped, ts_error *err) {
  zout *z = Z(o);
  int64_t ndone = 0, nfail = 0;
  int64_t *done = malloc((size_t)(o->in->n + 1) * sizeof *done);
  const char **names = malloc((size_t)(o->in->n + 1) * sizeof *names), **fn = malloc((size_t)(o->in->n + 1) * sizeof *fn);
  const char **fr = malloc((size_t)(o->in->n + 1) * sizeof *fr);
  ts_status st = done && names && fn && fr ? TS_OK : ts_fail(err, TS_ERR_NOMEM, "out of memory");
  for (int64_t i = 0; st == TS_OK && i < o->in->n; i++) {
    if (o->state[i] == 1) names[ndone] = o->in->items[i].name, done[ndone++] = i;
    if (o->state[i] == 2) fn[nfail] = o->in->items[i].name, fr[nfail++] = o->reason[i];
  }
  if (st == TS_OK) st = put_json(z, "", ".zgroup", json_pack("{s:i}", "zarr_format", 2), err);
  if (st == TS_OK) {
    json_t *a = json_pack("{s:s, s:s, s:s}", "tessera_version", ts_version(), "pipeline",
                          o->o.pipeline ? o->o.pipeline : "", "input", o->o.input ? o->o.input : "");
    if (a && stopped) json_object_set_new(a, "stopped_early", json_string(stopped));
    st = put_json(z, "", ".zattrs", a, err);
  }
  if (st == TS_OK && !o->o.no_images) st = images(o, done, ndone, err);
  if (st == TS_OK) st = results(o, done, ndone, err);
  if (st == TS_OK) st = strings(z, "names", names, ndone, err);
  if (st == TS_OK) st = group(z, "failed", err);
  if (st == TS_OK) st = strings(z, "failed/name", fn, nfail, err);
  if (st == TS_OK) st = strings(z, "failed/reason", fr, nfail, err);
  if (st == TS_OK) unlinkat(z->dirfd, ".rows", AT_REMOVEDIR); /* empty now (inputs done twice leave nothing) */
  if (st == TS_OK && syncfs(z->dirfd) != 0) st = ts_fail(err, TS_ERR_IO, "%s: cannot sync: %s", z->tmp, strerror(errno));
  free(done);
  free(names);
  free(fn);
  free(fr);
  return st;
}

static ts_status zarr_finish(ts_list_out *o, const char *note, char **kept, ts_error *err) {
  zout *z = Z(o);
  ts_status st = complete(o, note, err);
  if (st == TS_OK && !note && ts_install_dir(z->tmp, o->path) != 0)
    st = ts_fail(err, TS_ERR_IO, "%s: cannot rename %s to it: %s", o->path, z->tmp, strerror(errno));
  if (st == TS_OK) {
    if (note) *kept = z->tmp;
    else free(z->tmp);
    z->tmp = NULL;
  }
  return st;
}

static void zarr_close(ts_list_out *o) {
  zout *z = Z(o);
  if (!z) return;
  if (z->dirfd >= 0) close(z->dirfd);
  if (z->tmp) ts_remove_path(z->tmp);
  for (int64_t i = 0; z->items && i < o->in->n; i++) free(z->items[i].v);
  free(z->items);
  free(z->tmp);
  free(z);
  o->ctx = NULL;
}

const ts_list_sink ts_list_sink_zarr = {
    .name = "Zarr", .claims = zarr_claims, .open = zarr_open, .encode = zarr_encode, .put = zarr_put,
    .finish = zarr_finish, .close = zarr_close,
};
