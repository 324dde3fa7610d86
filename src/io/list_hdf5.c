/* List mode's HDF5 output sink: images land in /images (N x H x W [x C], one chunk per image,
 * deflate) at their input's index, in any order. Workers compress each
 * image into its chunk's deflate stream, and rank 0 stores it as is
 * (H5Dwrite_chunk), so compression runs in parallel. The first image whose
 * shape or dtype differs turns the stack into one dataset per input
 * (/images/<name>); emitted values do the same in /results/<name>. At the
 * end, if inputs failed (or a stopped run left some undone), the stacks
 * are compacted so that row i of every stack belongs to /names[i]. HDF5 is not thread-safe here: one caller. */
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "io/list_sink.h"
#include "tessera/io.h"

#define MAX_STACKS (1 + TS_MAX_EMITS)

/* Items of one shape stored at their input's index, or one dataset per
 * input once shapes differ. */
typedef struct stack {
  char path[64];       /* "/images" or "/results/NAME" */
  int per_name;        /* converted to a group of datasets */
  hid_t dset;          /* the stacked dataset (-1: none yet) */
  int rank;            /* item dimensions (1..3) */
  hsize_t dims[3];
  int32_t dtype;       /* item type: ts_dtype, or -1 for float64 values */
  int chunked_items;   /* one chunk per item, deflate (images) */
  int shaped;          /* the first item has set rank, dims and dtype */
} stack;

typedef struct h5out {
  char *tmp; /* OUT.h5.partial */
  hid_t file;
  stack st[MAX_STACKS];
  int nst;
  ts_blob buf; /* conversions and compaction */
} h5out;

#define H5(o) ((h5out *)(o)->ctx)

static hid_t file_type(int32_t dt) {
  return dt == TS_U8 ? H5T_STD_U8LE : dt == TS_U16 ? H5T_STD_U16LE : dt == TS_F32 ? H5T_IEEE_F32LE : H5T_IEEE_F64LE;
}
static hid_t mem_type(int32_t dt) {
  return dt == TS_U8 ? H5T_NATIVE_UINT8 : dt == TS_U16 ? H5T_NATIVE_UINT16 : dt == TS_F32 ? H5T_NATIVE_FLOAT
                                                                                          : H5T_NATIVE_DOUBLE;
}
static size_t type_size(int32_t dt) { return dt < 0 ? 8 : ts_dtype_size((ts_dtype)dt); }

static stack *find_stack(ts_list_out *o, const char *path) {
  for (int i = 0; i < H5(o)->nst; i++)
    if (!strcmp(H5(o)->st[i].path, path)) return &H5(o)->st[i];
  if (H5(o)->nst == MAX_STACKS) return NULL;
  stack *s = &H5(o)->st[H5(o)->nst++];
  memset(s, 0, sizeof *s);
  snprintf(s->path, sizeof s->path, "%s", path);
  s->dset = -1;
  return s;
}

static hid_t lcpl_intermediate(void) {
  hid_t l = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(l, 1);
  return l;
}

/* Create a dataset at `path` of n items (n < 0: one item, no N axis). */
static hid_t create(ts_list_out *o, const char *path, const stack *s, int64_t n) {
  hsize_t dims[4], maxd[4], chunk[4];
  int r = 0;
  if (n >= 0) dims[r] = (hsize_t)n, maxd[r] = H5S_UNLIMITED, chunk[r++] = s->chunked_items ? 1 : (hsize_t)(n < 4096 ? (n ? n : 1) : 4096);
  for (int i = 0; i < s->rank; i++, r++) { /* an empty item (hog of a too small image): 0 x growable */
    dims[r] = maxd[r] = chunk[r] = s->dims[i];
    if (!dims[r]) maxd[r] = H5S_UNLIMITED, chunk[r] = 1;
  }
  hid_t sp = H5Screate_simple(r, dims, maxd), dcpl = H5Pcreate(H5P_DATASET_CREATE), lcpl = lcpl_intermediate();
  H5Pset_chunk(dcpl, r, chunk);
  if (s->chunked_items) H5Pset_deflate(dcpl, (unsigned)ts_zlevel(o->o.level));
  hid_t d = H5Dcreate2(H5(o)->file, path, file_type(s->dtype), sp, lcpl, dcpl, H5P_DEFAULT);
  H5Pclose(lcpl);
  H5Pclose(dcpl);
  H5Sclose(sp);
  return d;
}

/* Write one item: a deflate stream as the item's chunk, or raw values. */
static ts_status write_item(ts_list_out *o, hid_t d, int64_t row, const stack *s, const void *data, size_t size,
                            int compressed, ts_error *err) {
  hsize_t off[4] = {0}, count[4];
  int r = 0;
  if (row >= 0) off[r] = (hsize_t)row, count[r++] = 1;
  for (int i = 0; i < s->rank; i++) count[r++] = s->dims[i];
  herr_t e;
  if (compressed) {
    e = H5Dwrite_chunk(d, H5P_DEFAULT, 0, off, size, data);
  } else {
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(r, count, NULL);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, count, NULL);
    e = H5Dwrite(d, mem_type(s->dtype), ms, fs, H5P_DEFAULT, data);
    H5Sclose(ms);
    H5Sclose(fs);
  }
  return e < 0 ? ts_fail(err, TS_ERR_IO, "%s: cannot write %s", o->path, s->path) : TS_OK;
}

static ts_status read_row(ts_list_out *o, const stack *s, int64_t row, ts_error *err) {
  size_t bytes = type_size(s->dtype);
  hsize_t off[4] = {(hsize_t)row, 0, 0, 0}, count[4] = {1};
  for (int i = 0; i < s->rank; i++) count[i + 1] = s->dims[i], bytes *= s->dims[i];
  if (ts_blob_reserve(&H5(o)->buf, bytes)) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  hid_t fs = H5Dget_space(s->dset), ms = H5Screate_simple(s->rank + 1, count, NULL);
  H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, count, NULL);
  herr_t e = H5Dread(s->dset, mem_type(s->dtype), ms, fs, H5P_DEFAULT, H5(o)->buf.p);
  H5Sclose(ms);
  H5Sclose(fs);
  return e < 0 ? ts_fail(err, TS_ERR_IO, "%s: cannot read back %s", o->path, s->path) : TS_OK;
}

/* Shapes differ: move every item written so far to its own dataset. */
static ts_status convert(ts_list_out *o, stack *s, ts_error *err) {
  char tmp[96], path[4096];
  snprintf(tmp, sizeof tmp, "%s.stacked", s->path);
  if (H5Lmove(H5(o)->file, s->path, H5(o)->file, tmp, H5P_DEFAULT, H5P_DEFAULT) < 0)
    return ts_fail(err, TS_ERR_IO, "%s: cannot restructure %s", o->path, s->path);
  ts_status st = TS_OK;
  for (int64_t i = 0; st == TS_OK && i < o->in->n; i++) {
    if (o->state[i] != 1) continue; /* every done input has its item in every stack (one pipeline) */
    st = read_row(o, s, i, err);
    snprintf(path, sizeof path, "%s/%s", s->path, o->in->items[i].name);
    hid_t d = st == TS_OK ? create(o, path, s, -1) : -1;
    if (st == TS_OK && d < 0) st = ts_fail(err, TS_ERR_IO, "%s: cannot create %s", o->path, path);
    if (st == TS_OK) st = write_item(o, d, -1, s, H5(o)->buf.p, 0, 0, err);
    if (d >= 0) H5Dclose(d);
  }
  H5Dclose(s->dset);
  s->dset = -1;
  H5Ldelete(H5(o)->file, tmp, H5P_DEFAULT);
  s->per_name = 1;
  return st;
}

static ts_status put_item(ts_list_out *o, const char *path, int64_t index, int rank, const hsize_t *dims, int32_t dtype,
                          int chunked, const void *data, size_t size, int compressed, ts_error *err) {
  stack *s = find_stack(o, path);
  if (!s) return ts_fail(err, TS_ERR_USAGE, "%s: more than %d kinds of results", o->path, MAX_STACKS);
  int same = s->rank == rank && s->dtype == dtype;
  for (int i = 0; same && i < rank; i++) same = s->dims[i] == dims[i];
  if (!s->shaped) { /* the first item sets the stack's shape */
    s->shaped = 1;
    s->rank = rank;
    memcpy(s->dims, dims, (size_t)rank * sizeof *dims);
    s->dtype = dtype;
    s->chunked_items = chunked;
    s->dset = create(o, path, s, o->in->n);
    if (s->dset < 0) return ts_fail(err, TS_ERR_IO, "%s: cannot create %s", o->path, path);
    same = 1;
  }
  if (!same && !s->per_name) {
    ts_status st = convert(o, s, err);
    if (st) return st;
  }
  if (!s->per_name) return write_item(o, s->dset, index, s, data, size, compressed, err);
  stack one = *s;
  one.rank = rank;
  memcpy(one.dims, dims, (size_t)rank * sizeof *dims);
  one.dtype = dtype;
  char p[4096];
  snprintf(p, sizeof p, "%s/%s", path, o->in->items[index].name);
  hid_t d = create(o, p, &one, -1);
  if (d < 0) return ts_fail(err, TS_ERR_IO, "%s: cannot create %s", o->path, p);
  ts_status st = write_item(o, d, -1, &one, data, size, compressed, err);
  H5Dclose(d);
  return st;
}

/* Failed inputs leave holes: move rows down so row k is the k-th done input. */
static ts_status compact(ts_list_out *o, stack *s, int64_t ndone, ts_error *err) {
  ts_status st = TS_OK;
  for (int64_t i = 0, k = 0; st == TS_OK && i < o->in->n; i++) {
    if (o->state[i] != 1) continue;
    if (k != i) {
      st = read_row(o, s, i, err);
      if (st == TS_OK) st = write_item(o, s->dset, k, s, H5(o)->buf.p, 0, 0, err);
    }
    k++;
  }
  hsize_t dims[4] = {(hsize_t)ndone};
  for (int i = 0; i < s->rank; i++) dims[i + 1] = s->dims[i];
  if (st == TS_OK && H5Dset_extent(s->dset, dims) < 0) st = ts_fail(err, TS_ERR_IO, "%s: cannot resize %s", o->path, s->path);
  return st;
}

static ts_status write_strings(ts_list_out *o, const char *path, const char **v, int64_t n, ts_error *err) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  hsize_t dims[1] = {(hsize_t)n};
  hid_t sp = H5Screate_simple(1, dims, NULL);
  hid_t d = H5Dcreate2(H5(o)->file, path, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  herr_t e = d < 0 ? -1 : n ? H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) : 0;
  if (d >= 0) H5Dclose(d);
  H5Sclose(sp);
  H5Tclose(t);
  return e < 0 ? ts_fail(err, TS_ERR_IO, "%s: cannot write %s", o->path, path) : TS_OK;
}

static ts_status write_failed(ts_list_out *o, ts_error *err) {
  typedef struct { const char *name, *reason; } row;
  row *rows = calloc((size_t)o->nfailed + 1, sizeof *rows);
  if (!rows) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  int64_t k = 0;
  for (int64_t i = 0; i < o->in->n; i++)
    if (o->state[i] == 2) rows[k].name = o->in->items[i].name, rows[k++].reason = o->reason[i];
  hid_t s = H5Tcopy(H5T_C_S1);
  H5Tset_size(s, H5T_VARIABLE);
  H5Tset_cset(s, H5T_CSET_UTF8);
  hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(row));
  H5Tinsert(t, "name", HOFFSET(row, name), s);
  H5Tinsert(t, "reason", HOFFSET(row, reason), s);
  hsize_t dims[1] = {(hsize_t)k};
  hid_t sp = H5Screate_simple(1, dims, NULL);
  hid_t d = H5Dcreate2(H5(o)->file, "/failed", t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  herr_t e = d < 0 ? -1 : k ? H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) : 0;
  if (d >= 0) H5Dclose(d);
  H5Sclose(sp);
  H5Tclose(t);
  H5Tclose(s);
  free(rows);
  return e < 0 ? ts_fail(err, TS_ERR_IO, "%s: cannot write /failed", o->path) : TS_OK;
}

static void attr_string(hid_t obj, const char *name, const char *value) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, strlen(value) + 1);
  H5Tset_cset(t, H5T_CSET_UTF8);
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
  if (a >= 0) {
    H5Awrite(a, t, value);
    H5Aclose(a);
  }
  H5Sclose(sp);
  H5Tclose(t);
}

/* Write /names, /failed and the attributes over the inputs done so far
 * (compacting the stacks if some are missing) and close the file. */
static ts_status complete(ts_list_out *o, const char *stopped, ts_error *err) {
  ts_status st = TS_OK;
  int64_t ndone = 0;
  for (int64_t i = 0; i < o->in->n; i++) ndone += o->state[i] == 1;
  for (int i = 0; st == TS_OK && i < H5(o)->nst; i++)
    if (!H5(o)->st[i].per_name && ndone < o->in->n) st = compact(o, &H5(o)->st[i], ndone, err);
  const char **names = calloc((size_t)ndone + 1, sizeof *names);
  if (!names && st == TS_OK) st = ts_fail(err, TS_ERR_NOMEM, "out of memory");
  for (int64_t i = 0, k = 0; names && i < o->in->n; i++)
    if (o->state[i] == 1) names[k++] = o->in->items[i].name;
  if (st == TS_OK) st = write_strings(o, "/names", names, ndone, err);
  free(names);
  if (st == TS_OK) st = write_failed(o, err);
  if (st == TS_OK) {
    attr_string(H5(o)->file, "tessera_version", ts_version());
    attr_string(H5(o)->file, "pipeline", o->o.pipeline ? o->o.pipeline : "");
    attr_string(H5(o)->file, "input", o->o.input ? o->o.input : "");
    if (stopped) attr_string(H5(o)->file, "stopped_early", stopped);
  }
  for (int i = 0; i < H5(o)->nst; i++)
    if (H5(o)->st[i].dset >= 0) H5Dclose(H5(o)->st[i].dset), H5(o)->st[i].dset = -1;
  if (H5Fclose(H5(o)->file) < 0 && st == TS_OK) st = ts_fail(err, TS_ERR_IO, "%s: cannot close", o->path);
  H5(o)->file = -1;
  if (st == TS_OK) { /* durable before it takes its name */
    int fd = open(H5(o)->tmp, O_RDONLY);
    if (fd >= 0) fsync(fd), close(fd);
  }
  return st;
}

static int h5_claims(const ts_list_out_options *o) { return !ts_list_out_is_dir(o->path); }

static ts_status h5_open(ts_list_out *o, ts_error *err) {
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* errors become our messages, not HDF5's stack dumps */
  h5out *h = calloc(1, sizeof *h);
  if (!h) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  o->ctx = h;
  h->file = -1;
  const size_t n = strlen(o->path);
  struct stat sb;
  if (!(h->tmp = malloc(n + 9))) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  snprintf(h->tmp, n + 9, "%s.partial", o->path);
  if (!o->o.force && stat(o->path, &sb) == 0)
    return ts_fail(err, TS_ERR_EXISTS, "%s: output exists (use --force to replace it)", o->path);
  h->file = H5Fcreate(h->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  return h->file < 0 ? ts_fail(err, TS_ERR_IO, "%s: cannot create %s", o->path, h->tmp) : TS_OK;
}

/* The deflate stream of the packed pixels is the image's chunk, made where it was computed. */
static ts_status h5_encode(const ts_list_out_options *o, const ts_image *im, ts_result_image *ri, ts_blob *data,
                           ts_zstream *z, ts_blob *work, ts_error *err) {
  if (o->no_images) return TS_OK;
  const size_t row = (size_t)im->w * ts_pixel_size(im), raw = row * (size_t)im->h;
  const size_t bound = ts_zbound(raw);
  if (!bound || ts_blob_reserve(data, bound + raw)) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  const unsigned char *src = im->data;
  if ((int64_t)row != im->stride) { /* pack first */
    for (int64_t y = 0; y < im->h; y++) memcpy(data->p + bound + (size_t)y * row, (char *)im->data + y * im->stride, row);
    src = data->p + bound;
  }
  data->size = ts_zcompress(z, o->level, src, raw, data->p, bound);
  if (!data->size) return ts_fail(err, TS_ERR_INTERNAL, "deflate failed");
  ri->compressed = 1;
  return TS_OK;
}

static ts_status h5_put(ts_list_out *o, int64_t index, const ts_result_image *ri, const void *data, size_t size,
                        const ts_emits *em, ts_error *err) {
  hsize_t dims[3] = {(hsize_t)ri->h, (hsize_t)ri->w, (hsize_t)ri->channels};
  ts_status st = TS_OK;
  if (!o->o.no_images)
    st = put_item(o, "/images", index, ri->channels > 1 ? 3 : 2, dims, ri->dtype, 1, data, size, ri->compressed, err);
  for (int i = 0; st == TS_OK && em && i < em->n; i++) {
    char path[64];
    snprintf(path, sizeof path, "/results/%s", em->e[i].name);
    hsize_t n = (hsize_t)em->e[i].n;
    st = put_item(o, path, index, n == 1 ? 0 : 1, &n, -1, 0, em->v + em->e[i].at, 0, 0, err);
  }
  return st;
}

static ts_status h5_finish(ts_list_out *o, const char *note, char **kept, ts_error *err) {
  h5out *h = H5(o);
  ts_status st = complete(o, note, err);
  if (st == TS_OK && !note && rename(h->tmp, o->path) != 0)
    st = ts_fail(err, TS_ERR_IO, "%s: cannot rename %s to it: %s", o->path, h->tmp, strerror(errno));
  if (st == TS_OK) { /* renamed, or kept: close must not remove it */
    if (note) *kept = h->tmp;
    else free(h->tmp);
    h->tmp = NULL;
  }
  return st;
}

static void h5_close(ts_list_out *o) {
  h5out *h = H5(o);
  if (!h) return;
  for (int i = 0; i < h->nst; i++)
    if (h->st[i].dset >= 0) H5Dclose(h->st[i].dset);
  if (h->file >= 0) H5Fclose(h->file);
  if (h->tmp) unlink(h->tmp);
  free(h->tmp);
  ts_blob_free(&h->buf);
  free(h);
  o->ctx = NULL;
}

const ts_list_sink ts_list_sink_hdf5 = {
    .name = "HDF5", .claims = h5_claims, .open = h5_open, .encode = h5_encode, .put = h5_put,
    .finish = h5_finish, .close = h5_close,
};
