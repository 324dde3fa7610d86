/* List mode's inputs: a directory, a list file or an HDF5 stack. */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include "io/backends.h"
#include "io/file.h"
#include "io/list.h"
#include "tessera/stop.h"

typedef struct h5in {
  hid_t file, dset, mem_type;
  int raw_chunks; /* one deflate chunk per image, little-endian: hand the chunk on as it is stored */
  ts_h5_chunks chunks; /* else: each chunk checked before H5Dread first reads it */
} h5in;

/* Does spec name a Zarr store or array (IN.zarr[/array])? */
static int names_zarr(const char *spec) {
  const ts_format *f = ts_format_named(spec, 0);
  return f && f->directory;
}

int ts_inputs_is_list(const char *spec) {
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* errors become our messages, not HDF5's stack dumps */
  struct stat st;
  if (spec[0] == '@') return 1;
  if (names_zarr(spec)) return ts_zarr_is_stack(spec); /* a Zarr array: one image, or a stack of them */
  if (stat(spec, &st) == 0 && S_ISDIR(st.st_mode)) return 1;
  char *file = NULL, *path = NULL;
  int list = 0;
  ts_error ignored;
  hid_t f = -1;
  if (ts_h5_split(spec, &file, &path) && ts_h5_open(file, &f, &ignored) == TS_OK) {
    /* N x H x W [x C]: list; H x W or H x W x C (C <= 4): one image */
    hid_t d = f >= 0 ? H5Dopen2(f, path, H5P_DEFAULT) : -1;
    if (d >= 0) {
      hid_t sp = H5Dget_space(d);
      hsize_t dims[8];
      int rank = H5Sget_simple_extent_ndims(sp);
      if (rank > 0 && rank <= 8) H5Sget_simple_extent_dims(sp, dims, NULL);
      list = rank == 4 || (rank == 3 && dims[2] > 4);
      H5Sclose(sp);
      H5Dclose(d);
    }
    if (f >= 0) H5Fclose(f);
  }
  free(file);
  free(path);
  return list;
}

/* A stop request (SIGTERM, SIGUSR1) while listing: a walk of a huge or
 * slow tree must end as promptly as the task loop does. */
static ts_status stopped(const char *what, ts_error *err) {
  return ts_fail(err, TS_STOPPED, "stopped early by %s while listing the inputs (%s); nothing was written",
                 ts_stop_name(ts_stop_requested()), what);
}

static int is_image_name(const char *name) {
  const char *dot = strrchr(name, '.');
  if (!dot) return 0;
  static const char *const ext[] = {".png", ".jpg", ".jpeg", ".tif", ".tiff", NULL};
  for (int i = 0; ext[i]; i++)
    if (!strcasecmp(dot, ext[i])) return 1;
  return 0;
}

static ts_status add(ts_inputs *in, const char *name, const char *path, int64_t size, int64_t *cap, ts_error *err) {
  if (in->n == *cap) {
    *cap = *cap ? 2 * *cap : 256;
    ts_input *p = realloc(in->items, (size_t)*cap * sizeof *p);
    if (!p) return ts_fail(err, TS_ERR_NOMEM, "out of memory listing inputs");
    in->items = p;
  }
  ts_input *it = &in->items[in->n];
  it->name = strdup(name);
  it->path = path ? strdup(path) : NULL;
  it->index = in->n;
  it->size = size;
  if (!it->name || (path && !it->path)) return ts_fail(err, TS_ERR_NOMEM, "out of memory listing inputs");
  in->n++;
  return TS_OK;
}

/* The directories a walk has entered, by device and inode: a directory
 * reached again (a symlink loop, or two links to one place) is walked
 * once, as find -L does. An open-addressing set; 0,0 marks a free slot. */
typedef struct seen_set {
  struct seen { dev_t dev; ino_t ino; } *v;
  size_t n, cap; /* cap: a power of two */
} seen_set;

/* Add (dev, ino); returns 1 if new, 0 if already there, -1 out of memory. */
static int seen_add(seen_set *s, dev_t dev, ino_t ino) {
  if (2 * (s->n + 1) > s->cap) {
    seen_set g = {calloc(s->cap ? 2 * s->cap : 64, sizeof *g.v), 0, s->cap ? 2 * s->cap : 64};
    if (!g.v) return -1;
    for (size_t i = 0; i < s->cap; i++)
      if (s->v[i].dev || s->v[i].ino) seen_add(&g, s->v[i].dev, s->v[i].ino);
    free(s->v);
    *s = g;
  }
  size_t i = ((size_t)ino * 0x9E3779B97F4A7C15ull ^ (size_t)dev) & (s->cap - 1);
  for (; s->v[i].dev || s->v[i].ino; i = (i + 1) & (s->cap - 1))
    if (s->v[i].dev == dev && s->v[i].ino == ino) return 0;
  s->v[i] = (struct seen){dev, ino};
  s->n++;
  return 1;
}

/* Walk dir (rel: its path below the root, "" at the top). */
static ts_status walk(ts_inputs *in, const char *root, const char *rel, const char *glob, int recursive,
                      seen_set *seen, int64_t *cap, ts_error *err) {
  char dirpath[4096];
  snprintf(dirpath, sizeof dirpath, "%s%s%s", root, rel[0] ? "/" : "", rel);
  DIR *d = opendir(dirpath);
  if (!d) return ts_fail(err, TS_ERR_IO, "%s: cannot read the directory: %s", dirpath, strerror(errno));
  struct stat self;
  int fresh = fstat(dirfd(d), &self) == 0 ? seen_add(seen, self.st_dev, self.st_ino) : 1;
  if (fresh <= 0) { /* been here (a loop): nothing new below */
    closedir(d);
    return fresh < 0 ? ts_fail(err, TS_ERR_NOMEM, "out of memory listing inputs") : TS_OK;
  }
  ts_status st = TS_OK;
  struct dirent *e;
  while (st == TS_OK && (e = readdir(d))) {
    if (ts_stop_requested()) {
      st = stopped(dirpath, err);
      break;
    }
    if (e->d_name[0] == '.') continue; /* ., .., hidden files and our own .partial leftovers */
    char relname[4096], path[8192];
    snprintf(relname, sizeof relname, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name);
    snprintf(path, sizeof path, "%s/%s", root, relname);
    struct stat sb;
    if (stat(path, &sb) != 0) continue;
    if (S_ISDIR(sb.st_mode)) {
      if (recursive) st = walk(in, root, relname, glob, recursive, seen, cap, err);
      continue;
    }
    if (!S_ISREG(sb.st_mode)) continue;
    if (glob ? fnmatch(glob, e->d_name, 0) != 0 : !is_image_name(e->d_name)) continue;
    st = add(in, relname, path, (int64_t)sb.st_size, cap, err);
  }
  closedir(d);
  return st;
}

static int by_name(const void *a, const void *b) {
  return strcmp(((const ts_input *)a)->name, ((const ts_input *)b)->name);
}

static ts_status open_list(ts_inputs *in, const char *file, int64_t *cap, ts_error *err) {
  FILE *f = fopen(file, "r");
  if (!f) return ts_fail(err, TS_ERR_IO, "%s: cannot open the list file: %s", file, strerror(errno));
  /* relative paths are relative to the list file's directory */
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", file);
  char *slash = strrchr(dir, '/');
  if (slash) slash[1] = '\0';
  else dir[0] = '\0';
  char line[8192];
  ts_status st = TS_OK;
  while (st == TS_OK && fgets(line, sizeof line, f)) {
    if (ts_stop_requested()) {
      st = stopped(file, err);
      break;
    }
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ')) line[--n] = '\0';
    char *s = line + strspn(line, " \t");
    if (!*s || *s == '#') continue;
    char path[12288];
    snprintf(path, sizeof path, "%s%s", s[0] == '/' ? "" : dir, s);
    struct stat sb;
    st = add(in, s, path, stat(path, &sb) == 0 ? (int64_t)sb.st_size : 0, cap, err);
  }
  fclose(f);
  return st;
}

static ts_status open_stack(ts_inputs *in, ts_error *err) {
  h5in *h = calloc(1, sizeof *h);
  if (!h) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  in->h5 = h;
  h->file = h->dset = h->mem_type = -1;
  ts_status os = ts_h5_open(in->h5_file, &h->file, err);
  if (os) return os;
  h->dset = H5Dopen2(h->file, in->h5_path, H5P_DEFAULT);
  if (h->dset < 0) return ts_fail(err, TS_ERR_FORMAT, "%s: no dataset %s", in->h5_file, in->h5_path);
  char what[8300];
  snprintf(what, sizeof what, "%s:%s", in->h5_file, in->h5_path);
  ts_status vs = ts_h5_check_dataset(h->file, h->dset, what, err);
  if (vs) return vs;
  if (ts_h5_chunks_init(&h->chunks, h->dset)) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  hid_t sp = H5Dget_space(h->dset), ty = H5Dget_type(h->dset);
  hsize_t dims[8] = {0};
  int rank = H5Sget_simple_extent_ndims(sp);
  if (rank >= 1 && rank <= 8) H5Sget_simple_extent_dims(sp, dims, NULL);
  H5T_class_t cls = H5Tget_class(ty);
  size_t size = H5Tget_size(ty);
  H5T_sign_t sign = cls == H5T_INTEGER ? H5Tget_sign(ty) : H5T_SGN_NONE;
  const int little = H5Tget_order(ty) == H5T_ORDER_LE || size == 1;
  H5Tclose(ty);
  H5Sclose(sp);
  if (rank != 3 && rank != 4)
    return ts_fail(err, TS_ERR_FORMAT, "%s:%s: a stack is N x H x W or N x H x W x C; this dataset has %d "
                   "dimensions", in->h5_file, in->h5_path, rank);
  if (rank == 4 && (dims[3] < 1 || dims[3] > 4))
    return ts_fail(err, TS_ERR_FORMAT, "%s:%s: %llu channels; tessera reads 1 to 4", in->h5_file, in->h5_path,
                   (unsigned long long)dims[3]);
  if (cls == H5T_INTEGER && sign == H5T_SGN_NONE && size == 1) in->dtype = TS_U8, h->mem_type = H5T_NATIVE_UINT8;
  else if (cls == H5T_INTEGER && sign == H5T_SGN_NONE && size == 2) in->dtype = TS_U16, h->mem_type = H5T_NATIVE_UINT16;
  else if (cls == H5T_FLOAT && size == 4) in->dtype = TS_F32, h->mem_type = H5T_NATIVE_FLOAT;
  else
    return ts_fail(err, TS_ERR_FORMAT, "%s:%s: unsupported element type; tessera reads uint8, uint16 and float32",
                   in->h5_file, in->h5_path);
  in->h = (int64_t)dims[1];
  in->w = (int64_t)dims[2];
  in->channels = rank == 4 ? (int)dims[3] : 1;
  if (in->w < 1 || in->h < 1) return ts_fail(err, TS_ERR_FORMAT, "%s:%s: empty images", in->h5_file, in->h5_path);
  /* Chunks of exactly one image with only deflate (h5py's gzip): rank 0
   * reads the stored bytes and the worker inflates them, in parallel. */
  hid_t dcpl = H5Dget_create_plist(h->dset);
  hsize_t chunk[8] = {0};
  unsigned flags, cd[8];
  size_t ncd = 8;
  int same = H5Pget_layout(dcpl) == H5D_CHUNKED && H5Pget_chunk(dcpl, 8, chunk) == rank && chunk[0] == 1;
  for (int i = 1; same && i < rank; i++) same = chunk[i] == dims[i];
  h->raw_chunks = same && little && H5Pget_nfilters(dcpl) == 1 &&
                  H5Pget_filter2(dcpl, 0, &flags, &ncd, cd, 0, NULL, NULL) == H5Z_FILTER_DEFLATE;
  /* The header's image count against what the file stores: a chunked
   * stack holds at most (allocated chunks) x (images per chunk) images, a
   * contiguous one its storage size over an image's bytes. A forged or
   * never-written count is refused here, before one entry is made per
   * image it claims. */
  const int64_t image = ts_image_bytes(in->w, in->h, in->channels, in->dtype);
  hsize_t nchunks = 0, held;
  if (H5Pget_layout(dcpl) == H5D_CHUNKED && chunk[0] >= 1)
  {
    hid_t fs = H5Dget_space(h->dset); /* libhdf5 1.10.8 refuses H5S_ALL here */
    held = H5Dget_num_chunks(h->dset, fs, &nchunks) < 0 ? 0 : nchunks * chunk[0];
    H5Sclose(fs);
  }
  else
    held = image > 0 ? H5Dget_storage_size(h->dset) / (hsize_t)image : 0;
  H5Pclose(dcpl);
  if (image < 0 || dims[0] > held)
    return ts_fail(err, TS_ERR_FORMAT, "%s:%s: the header claims %llu images of %lldx%lld, but the file holds "
                   "the data of %llu (corrupt, or never written)", in->h5_file, in->h5_path,
                   (unsigned long long)dims[0], (long long)in->w, (long long)in->h, (unsigned long long)held);
  int64_t cap = 0;
  for (int64_t i = 0; i < (int64_t)dims[0]; i++) {
    if (ts_stop_requested() && !(i & 4095)) return stopped(in->h5_file, err);
    char name[32];
    snprintf(name, sizeof name, "%lld", (long long)i);
    ts_status st = add(in, name, NULL, 0, &cap, err);
    if (st) return st;
  }
  return TS_OK;
}

/* One image cut into strips of `rows` rows: rank 0 reads each strip's
 * pixels through tile mode's reader. */
static ts_status open_strips(ts_inputs *in, const char *spec, int64_t rows, int64_t *cap, ts_error *err) {
  ts_status st = ts_reader_open(spec, &in->strip_reader, err);
  if (st) return st;
  const ts_image_info *i = &in->strip_reader->info;
  ts_reader_set_cache(in->strip_reader, 2 * (i->w / i->block_w + 2) * (rows / i->block_h + 2));
  in->strip_rows = rows;
  in->w = i->w;
  in->channels = i->channels;
  in->dtype = i->dtype;
  const int64_t n = (i->h + rows - 1) / rows;
  for (int64_t k = 0; st == TS_OK && k < n; k++) {
    char name[32];
    snprintf(name, sizeof name, "strip_%06lld", (long long)k);
    const int64_t h = (k + 1) * rows <= i->h ? rows : i->h - k * rows;
    st = add(in, name, NULL, ts_image_bytes(i->w, h, i->channels, i->dtype), cap, err);
    if (st == TS_OK) in->items[k].index = k;
  }
  return st;
}

/* The most images a Zarr stack may claim: its chunks may all be absent
 * (the fill value), so no file bounds the count as HDF5's storage does. */
#define MAX_STACK_IMAGES ((int64_t)1 << 26)

static ts_status open_zarr_stack(ts_inputs *in, const char *spec, int64_t *cap, ts_error *err) {
  ts_image_info info;
  int64_t n = 0;
  ts_status st = ts_zarr_stack_open(spec, &in->zarr, &info, &n, err);
  if (st) return st;
  in->w = info.w, in->h = info.h, in->channels = info.channels, in->dtype = info.dtype;
  if (n > MAX_STACK_IMAGES)
    return ts_fail(err, TS_ERR_FORMAT, "%s: a stack of %lld images; tessera takes at most %lld in one run", spec,
                   (long long)n, (long long)MAX_STACK_IMAGES);
  for (int64_t i = 0; st == TS_OK && i < n; i++) {
    if (ts_stop_requested() && !(i & 4095)) return stopped(spec, err);
    char name[32];
    snprintf(name, sizeof name, "%lld", (long long)i);
    st = add(in, name, NULL, 0, cap, err);
  }
  return st;
}

ts_status ts_inputs_open(const char *spec, const char *glob, int recursive, int64_t strips, ts_inputs *in,
                         ts_error *err) {
  memset(in, 0, sizeof *in);
  in->spec = strdup(spec);
  int64_t cap = 0;
  ts_status st;
  struct stat sb;
  if (strips > 0) {
    st = open_strips(in, spec, strips, &cap, err);
  } else if (spec[0] == '@') {
    st = open_list(in, spec + 1, &cap, err);
  } else if (names_zarr(spec) && ts_zarr_is_stack(spec)) {
    st = open_zarr_stack(in, spec, &cap, err);
  } else if (stat(spec, &sb) == 0 && S_ISDIR(sb.st_mode)) {
    char root[4096];
    snprintf(root, sizeof root, "%s", spec);
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/') root[--n] = '\0';
    seen_set seen = {0};
    st = walk(in, root, "", glob, recursive, &seen, &cap, err);
    free(seen.v);
    if (st == TS_OK && in->n > 1) qsort(in->items, (size_t)in->n, sizeof *in->items, by_name);
    for (int64_t i = 0; i < in->n; i++) in->items[i].index = i;
  } else if (ts_h5_split(spec, &in->h5_file, &in->h5_path)) {
    st = open_stack(in, err);
  } else {
    st = ts_fail(err, TS_ERR_USAGE, "%s: not a directory, @list file, FILE.h5:/dataset or Zarr stack", spec);
  }
  if (st == TS_OK && in->n == 0)
    st = ts_fail(err, TS_ERR_USAGE, "%s: no inputs%s", spec,
                 glob ? " match --glob" : in->h5_file ? "" : " (.png, .jpg, .jpeg, .tif, .tiff; --glob selects others)");
  if (st) ts_inputs_free(in);
  return st;
}

void ts_inputs_free(ts_inputs *in) {
  for (int64_t i = 0; i < in->n; i++) {
    free(in->items[i].name);
    free(in->items[i].path);
  }
  free(in->items);
  h5in *h = in->h5;
  if (h) {
    ts_h5_chunks_free(&h->chunks);
    if (h->dset >= 0) H5Dclose(h->dset);
    if (h->file >= 0) H5Fclose(h->file);
    free(h);
  }
  ts_reader_close(&in->strip_reader);
  ts_zarr_stack_close(in->zarr);
  free(in->spec);
  free(in->h5_file);
  free(in->h5_path);
  memset(in, 0, sizeof *in);
}

ts_status ts_inputs_read(ts_inputs *in, int64_t i, ts_blob *b, ts_error *err) {
  const ts_input *it = &in->items[i];
  ts_payload ph = {0};
  size_t at = b->size;
  if (in->strip_reader) { /* a strip: raw pixels */
    const int64_t y = i * in->strip_rows, h = y + in->strip_rows <= in->strip_reader->info.h
                                                   ? in->strip_rows : in->strip_reader->info.h - y;
    ph = (ts_payload){.w = in->w, .h = h, .channels = in->channels, .dtype = in->dtype};
    const int64_t bytes = ts_image_bytes(in->w, h, in->channels, in->dtype);
    if (ts_blob_reserve(b, at + sizeof ph + (size_t)bytes)) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
    memcpy(b->p + at, &ph, sizeof ph);
    ts_status st = ts_reader_read(in->strip_reader, (ts_rect){0, y, in->w, h}, b->p + at + sizeof ph,
                                  in->w * (int64_t)ts_dtype_size(in->dtype) * in->channels, err);
    if (st) return st;
    b->size = at + sizeof ph + (size_t)bytes;
    return TS_OK;
  }
  if (!it->path && in->zarr) { /* a Zarr stack's image: raw pixels */
    ph = (ts_payload){.w = in->w, .h = in->h, .channels = in->channels, .dtype = in->dtype};
    const int64_t bytes = ts_image_bytes(in->w, in->h, in->channels, in->dtype);
    if (ts_blob_reserve(b, at + sizeof ph + (size_t)bytes)) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
    memcpy(b->p + at, &ph, sizeof ph);
    ts_status st = ts_zarr_stack_read(in->zarr, i, b->p + at + sizeof ph, err);
    if (st == TS_OK) b->size = at + sizeof ph + (size_t)bytes;
    return st;
  }
  if (!it->path) { /* a stack slice: raw pixels */
    h5in *h = in->h5;
    ph = (ts_payload){.w = in->w, .h = in->h, .channels = in->channels, .dtype = in->dtype};
    hsize_t off[4] = {(hsize_t)i, 0, 0, 0}, stored = 0;
    uint32_t mask = 0;
    if (h->raw_chunks && H5Dget_chunk_storage_size(h->dset, off, &stored) >= 0 && stored > 0) {
      if (ts_blob_reserve(b, at + sizeof ph + (size_t)stored)) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
      if (H5Dread_chunk(h->dset, H5P_DEFAULT, off, &mask, b->p + at + sizeof ph) < 0)
        return ts_fail(err, TS_ERR_IO, "%s:%s: cannot read image %lld", in->h5_file, in->h5_path, (long long)i);
      ph.deflated = mask == 0; /* else the filter was skipped for this chunk: raw */
      memcpy(b->p + at, &ph, sizeof ph);
      b->size = at + sizeof ph + (size_t)stored;
      return TS_OK;
    }
    int64_t bytes = ts_image_bytes(in->w, in->h, in->channels, in->dtype);
    if (ts_blob_reserve(b, at + sizeof ph + (size_t)bytes)) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
    memcpy(b->p + at, &ph, sizeof ph);
    hsize_t start[4] = {(hsize_t)i, 0, 0, 0}, count[4] = {1, (hsize_t)in->h, (hsize_t)in->w, (hsize_t)in->channels};
    hid_t fs = H5Dget_space(h->dset);
    int rank = H5Sget_simple_extent_ndims(fs);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
    hid_t ms = H5Screate_simple(rank, count, NULL);
    char what[8300];
    snprintf(what, sizeof what, "%s:%s", in->h5_file, in->h5_path);
    ts_status cs = ts_h5_chunks_check(&h->chunks, h->dset, start, count, what, err);
    herr_t e = cs ? 0 : H5Dread(h->dset, h->mem_type, ms, fs, H5P_DEFAULT, b->p + at + sizeof ph);
    if (cs) {
      H5Sclose(ms);
      H5Sclose(fs);
      return cs;
    }
    H5Sclose(ms);
    H5Sclose(fs);
    if (e < 0) return ts_fail(err, TS_ERR_IO, "%s:%s: cannot read image %lld", in->h5_file, in->h5_path, (long long)i);
    b->size = at + sizeof ph + (size_t)bytes;
    return TS_OK;
  }
  if (ts_blob_append(b, &ph, sizeof ph)) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  ts_status st = ts_read_regular(it->path, "the image", b, err);
  if (st) b->size = at;
  return st;
}

ts_status ts_payload_image(const char *name, const void *payload, size_t n, int64_t max_pixels, ts_blob *px,
                           ts_image *im, ts_zstream *z, ts_blob *work, ts_error *err) {
  ts_payload ph;
  if (n < sizeof ph) return ts_fail(err, TS_ERR_INTERNAL, "%s: short task payload", name);
  memcpy(&ph, payload, sizeof ph);
  const unsigned char *data = (const unsigned char *)payload + sizeof ph;
  if (ph.w == 0) return ts_decode(name, data, n - sizeof ph, max_pixels, px, im, z, work, err);
  int64_t bytes = ts_image_bytes(ph.w, ph.h, ph.channels, (ts_dtype)ph.dtype);
  if (ph.deflated) { /* a stack's stored chunk */
    if (bytes < 0 || ts_blob_reserve(px, (size_t)bytes)) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
    if (ts_zdecompress(z, data, n - sizeof ph, px->p, (size_t)bytes))
      return ts_fail(err, TS_ERR_FORMAT, "%s: its stored chunk does not inflate to a %lldx%lld image (corrupt)", name,
                     (long long)ph.w, (long long)ph.h);
    *im = ts_image_packed(px->p, ph.w, ph.h, ph.channels, (ts_dtype)ph.dtype);
    return TS_OK;
  }
  if (bytes < 0 || (size_t)bytes != n - sizeof ph)
    return ts_fail(err, TS_ERR_INTERNAL, "%s: task payload of %zu bytes for a %lldx%lld image", name, n,
                   (long long)ph.w, (long long)ph.h);
  if (ts_blob_reserve(px, (size_t)bytes)) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  memcpy(px->p, data, (size_t)bytes); /* aligned, and writable for in-place kernels */
  *im = ts_image_packed(px->p, ph.w, ph.h, ph.channels, (ts_dtype)ph.dtype);
  return TS_OK;
}

ts_status ts_images_each(const char *spec, int64_t max_pixels, ts_image_fn fn, void *ctx, ts_error *err) {
  ts_inputs in;
  ts_status st = ts_inputs_open(spec, NULL, 0, 0, &in, err);
  if (st) return st;
  ts_blob payload = {0}, px = {0}, work = {0};
  ts_zstream z = {0};
  if (in.n == 0) st = ts_fail(err, TS_ERR_FORMAT, "%s: holds no images", spec);
  for (int64_t i = 0; st == TS_OK && i < in.n; i++) {
    ts_image im;
    payload.size = 0;
    if ((st = ts_inputs_read(&in, i, &payload, err)) == TS_OK &&
        (st = ts_payload_image(in.items[i].name, payload.p, payload.size, max_pixels, &px, &im, &z, &work, err)) == TS_OK)
      st = fn(ctx, in.items[i].name, &im, err);
  }
  ts_blob_free(&payload);
  ts_blob_free(&px);
  ts_blob_free(&work);
  ts_zstream_free(&z);
  ts_inputs_free(&in);
  return st;
}
