/* Pick a backend for a path; the generic half of every reader and writer:
 * input validation shared by all formats, the temporary output name and
 * the final rename. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/text.h"
#include "io/backends.h"
#include "io/file.h"


/* Name what a file that is not a TIFF looks like, to make the message useful. */
static const char *sniff(const unsigned char *m, ssize_t n) {
  if (n >= 8 && memcmp(m, "\x89PNG\r\n\x1a\n", 8) == 0) return "a PNG file";
  if (n >= 3 && m[0] == 0xff && m[1] == 0xd8 && m[2] == 0xff) return "a JPEG file";
  if (n >= 8 && memcmp(m, "\x89HDF\r\n\x1a\n", 8) == 0) return "an HDF5 file";
  return NULL;
}

static ts_status pick_reader(const char *path, const ts_reader_ops **ops, ts_error *err) {
  const ts_format *f = ts_format_named(path, 0);
  if (f) { /* synth:..., FILE.h5:/dataset */
    char *file = NULL;
    struct stat st;
    int missing = f->dataset && ts_h5_split(path, &file, NULL) && stat(file, &st) != 0;
    ts_status s = missing ? ts_fail(err, TS_ERR_IO, "%s: cannot open input: %s", file, strerror(errno)) : TS_OK;
    free(file);
    *ops = f->reader;
    return s;
  }
  struct stat st;
  int fd;
  ts_status s = ts_open_regular(path, "input", &fd, &st, err); /* a FIFO or device: refused, never waited on */
  if (s) return s;
  unsigned char m[8];
  ssize_t n = read(fd, m, sizeof m);
  close(fd);
  if (n == 0) return ts_fail(err, TS_ERR_FORMAT, "%s: empty file (0 bytes)", path);
  if ((f = ts_format_of(m, n > 0 ? (size_t)n : 0))) {
    *ops = f->reader;
    return TS_OK;
  }
  const char *what = sniff(m, n);
  if (what && strstr(what, "HDF5"))
    return ts_fail(err, TS_ERR_USAGE, "%s: an HDF5 file: name the image's dataset, as %s:/image", path, path);
  return ts_fail(err, TS_ERR_FORMAT, "%s: not a TIFF file%s%s (tile mode reads TIFF, BigTIFF and HDF5 "
                 "FILE.h5:/dataset)", path, what ? "; it looks like " : " (bad magic number)", what ? what : "");
}

ts_status ts_reader_open(const char *path, ts_reader **out, ts_error *err) {
  return ts_reader_open_page(path, 0, out, err);
}

ts_status ts_reader_open_page(const char *path, int64_t page, ts_reader **out, ts_error *err) {
  return ts_reader_open_level(path, page, 0, out, err);
}

const ts_image_meta *ts_reader_meta(const ts_reader *r) { return r->ops->meta ? r->ops->meta(r->ctx) : NULL; }

ts_status ts_reader_open_level(const char *path, int64_t page, int64_t level, ts_reader **out, ts_error *err) {
  *out = NULL;
  const ts_reader_ops *ops = NULL;
  ts_status st = pick_reader(path, &ops, err);
  if (st) return st;
  ts_reader *r = calloc(1, sizeof *r);
  if (!r || !(r->path = strdup(path))) {
    free(r);
    return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  }
  r->ops = ops;
  r->info.pages = r->info.levels = 1;
  r->info.level = ops == &ts_tiff_reader_ops || ops == &ts_zarr_reader_ops ? level : 0; /* in: the one wanted */
  st = page < 0 ? ts_fail(err, TS_ERR_USAGE, "--page %lld: pages count from 0", (long long)page)
       : level < 0 ? ts_fail(err, TS_ERR_USAGE, "--input-level %lld: levels count from 0", (long long)level)
                   : ops->open(path, page, &r->ctx, &r->info, err);
  if (st == TS_OK && r->info.level != level)
    st = ts_fail(err, TS_ERR_USAGE, "%s: has one resolution (a %s input); --input-level %lld is not one of it", path,
                 r->info.format, (long long)level);
  if (st == TS_OK) {
    const ts_image_info *i = &r->info;
    if (i->w <= 0 || i->h <= 0)
      st = ts_fail(err, TS_ERR_FORMAT, "%s: image has width %lld and height %lld; both must be > 0",
                   path, (long long)i->w, (long long)i->h);
    else if (ts_image_bytes(i->w, i->h, i->channels, i->dtype) < 0)
      st = ts_fail(err, TS_ERR_RANGE, "%s: %lld x %lld x %d %s is too large: its byte size "
                   "overflows 64 bits", path, (long long)i->w, (long long)i->h, i->channels,
                   ts_dtype_name(i->dtype));
  }
  if (st) {
    ts_reader_close(&r);
    return st;
  }
  *out = r;
  return TS_OK;
}

void ts_reader_set_cache(ts_reader *r, int64_t blocks) {
  if (r->ops->set_cache) r->ops->set_cache(r->ctx, blocks);
}

ts_status ts_reader_read(ts_reader *r, ts_rect rect, void *dst, int64_t dst_stride, ts_error *err) {
  return r->ops->read(r->ctx, rect, dst, dst_stride, err);
}

static ts_status view_read(void *ctx, ts_rect r, void *dst, int64_t dst_stride, ts_error *err) {
  const ts_image *im = ctx;
  const size_t row = (size_t)r.w * ts_pixel_size(im);
  for (int64_t y = 0; y < r.h; y++) memcpy((char *)dst + y * dst_stride, ts_image_at(im, r.x, r.y + y), row);
  return TS_OK;
}

static const ts_reader_ops view_ops = {.name = "memory", .read = view_read};

ts_reader ts_reader_view(const ts_image *im) {
  ts_reader r = {.ops = &view_ops, .ctx = (void *)im};
  r.info = (ts_image_info){.w = im->w, .h = im->h, .channels = im->channels, .dtype = im->dtype,
                           .block_w = im->w, .block_h = im->h, .format = "memory"};
  return r;
}

void ts_reader_close(ts_reader **r) {
  if (!r || !*r) return;
  if ((*r)->ctx) (*r)->ops->close((*r)->ctx);
  free((*r)->path);
  free(*r);
  *r = NULL;
}

struct ts_writer {
  const ts_writer_ops *ops;
  void *ctx;
  char *path, *tmp; /* the file's final and temporary names */
  char *spec;       /* what the backend opens: tmp, or tmp:/dataset for HDF5 */
  int dir;          /* a directory store (Zarr): tmp is a directory, resumed in place */
};

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

int ts_remove_path(const char *path) {
  struct stat sb;
  if (lstat(path, &sb) != 0) return errno == ENOENT ? 0 : -1;
  if (!S_ISDIR(sb.st_mode)) return unlink(path);
  return nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Does directory `path` hold a Zarr store (what --force may replace)? */
static int is_store(const char *path) {
  static const char *const marks[] = {".zgroup", ".zarray", "zarr.json"};
  char p[4096];
  struct stat sb;
  for (int i = 0; i < 3; i++)
    if (snprintf(p, sizeof p, "%s/%s", path, marks[i]) < (int)sizeof p && stat(p, &sb) == 0) return 1;
  return 0;
}

ts_status ts_store_replaceable(const char *path, int force, ts_error *err) {
  struct stat sb;
  if (stat(path, &sb) != 0) return TS_OK;
  if (!S_ISDIR(sb.st_mode) || !is_store(path))
    return ts_fail(err, TS_ERR_EXISTS, "%s: output is a %s that holds no Zarr store; not replaced", path,
                   S_ISDIR(sb.st_mode) ? "directory" : "file");
  return force ? TS_OK : ts_fail(err, TS_ERR_EXISTS, "%s: output exists; use --force to replace it", path);
}

int ts_output_in_place(const char *spec) {
  const ts_format *f = ts_format_named(spec, 1);
  return f && f->directory;
}

static ts_status pick_writer(const char *path, const ts_writer_ops **ops, ts_error *err) {
  const ts_format *f = ts_format_named(path, 1);
  if (!f)
    return ts_fail(err, TS_ERR_USAGE, "%s: unknown output format; tile mode writes tiled BigTIFF "
                   "(name the output .tif or .tiff), HDF5 (FILE.h5 or FILE.h5:/dataset) or a Zarr store (OUT.zarr)", path);
  *ops = f->writer;
  return TS_OK;
}

/* The file an output spec names, and its dataset (HDF5; "/image" unless
 * given) or NULL. */
static int split_output(const char *spec, char **file, char **dset) {
  const ts_format *f = ts_format_named(spec, 1);
  *dset = NULL;
  if (f && f->dataset && ts_h5_split(spec, file, dset)) return *file && *dset;
  *file = strdup(spec);
  if (f && f->dataset) *dset = strdup("/image");
  return *file && (!f || !f->dataset || *dset);
}

char *ts_output_file(const char *spec) {
  const ts_writer_ops *ops = NULL;
  ts_error e = {0};
  char *file = NULL, *dset = NULL;
  if (pick_writer(spec, &ops, &e) || !split_output(spec, &file, &dset)) {
    free(file);
    file = strdup(spec);
  }
  free(dset);
  return file;
}

ts_status ts_writer_open(const char *path, const ts_writer_options *o, ts_writer **out,
                         ts_error *err) {
  *out = NULL;
  const ts_writer_ops *ops = NULL;
  ts_status pst = pick_writer(path, &ops, err);
  if (pst) return pst;
  if (o->tile < 16 || o->tile % 16)
    return ts_fail(err, TS_ERR_USAGE, "output tile size %lld must be a positive multiple of 16",
                   (long long)o->tile);
  if (o->compression == TS_COMPRESS_JPEG && (o->dtype != TS_U8 || (o->channels != 1 && o->channels != 3)))
    return ts_fail(err, TS_ERR_USAGE, "%s: jpeg compression takes u8 images with 1 or 3 channels; "
                   "this output is %s with %d channel(s)", path, ts_dtype_name(o->dtype), o->channels);
  const int dir = ts_output_in_place(path);
  if (!dir && (o->zarr_format || o->shard))
    return ts_fail(err, TS_ERR_USAGE, "%s: --zarr-format and --shard are for Zarr output (name it OUT.zarr)", path);
  char *file = NULL, *dset = NULL;
  if (!split_output(path, &file, &dset)) {
    free(file);
    free(dset);
    return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  }
  struct stat st;
  ts_status ex = dir ? ts_store_replaceable(file, o->force, err) : TS_OK;
  if (!dir && stat(file, &st) == 0) {
    if (S_ISDIR(st.st_mode)) ex = ts_fail(err, TS_ERR_EXISTS, "%s: output is a directory; not replaced", file);
    else if (!o->force) ex = ts_fail(err, TS_ERR_EXISTS, "%s: output exists; use --force to replace it", file);
  }
  ts_writer *w = ex ? NULL : calloc(1, sizeof *w);
  if (!w) {
    free(file);
    free(dset);
    return ex ? ex : ts_fail(err, TS_ERR_NOMEM, "out of memory");
  }
  w->ops = ops;
  w->dir = dir;
  w->path = file;
  w->tmp = malloc(strlen(file) + 16);
  w->spec = malloc(strlen(file) + (dset ? strlen(dset) : 0) + 20);
  if (!w->tmp || !w->spec) {
    free(dset);
    ts_writer_abort(&w);
    return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  }
  sprintf(w->tmp, "%s.partial", file);
  sprintf(w->spec, "%s%s%s", w->tmp, dset ? ":" : "", dset ? dset : "");
  free(dset);
  /* create it here first: errno gives a plainer message than the backend */
  int made;
  if (dir) {
    if (!o->reopen) ts_remove_path(w->tmp); /* a stale one (the caller decided it goes) */
    made = mkdir(w->tmp, 0777) == 0 || (o->reopen && errno == EEXIST);
  } else {
    int fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    made = fd >= 0;
    if (made) close(fd);
  }
  if (!made) {
    ts_status s = ts_fail(err, TS_ERR_IO, "%s: cannot create output: %s", path, strerror(errno));
    ts_writer_abort(&w);
    return s;
  }
  ts_status s = w->ops->open(w->spec, o, &w->ctx, err);
  if (s) {
    w->ctx = NULL;
    ts_remove_path(w->tmp);
    ts_writer_abort(&w);
    return s;
  }
  *out = w;
  return TS_OK;
}

struct ts_encoder {
  const ts_writer_ops *ops;
  ts_encoder_state *state;
};

ts_status ts_encoder_new(const char *path, const ts_writer_options *o, ts_encoder **out,
                         ts_error *err) {
  *out = NULL;
  const ts_writer_ops *ops = NULL;
  ts_status st = pick_writer(path, &ops, err);
  if (st) return st;
  ts_encoder *e = calloc(1, sizeof *e);
  if (!e) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  e->ops = ops;
  st = ops->encoder_new(path, o, &e->state, err);
  if (st) {
    free(e);
    return st;
  }
  *out = e;
  return TS_OK;
}

void ts_encoder_free(ts_encoder **e) {
  if (!e || !*e) return;
  (*e)->ops->encoder_free((*e)->state);
  free(*e);
  *e = NULL;
}

ts_status ts_encoder_encode(ts_encoder *e, int level, ts_rect r, const void *src, int64_t src_stride, void *dst,
                            size_t cap, const void **data, size_t *size, ts_error *err) {
  const size_t bound = ts_encoder_bound(e);
  if (!dst || !bound || cap < bound) dst = NULL, cap = 0;
  return e->ops->encode(e->state, level, r, src, src_stride, dst, cap, data, size, err);
}

size_t ts_encoder_bound(const ts_encoder *e) { return e->ops->bound ? e->ops->bound(e->state) : 0; }

int ts_encoder_puts(const ts_encoder *e) { return e->ops->puts && e->ops->puts(e->state); }

ts_status ts_encoder_put(ts_encoder *e, int level, ts_rect r, const void *data, size_t size, ts_error *err) {
  return e->ops->put(e->state, level, r, data, size, err);
}

ts_status ts_writer_write_encoded(ts_writer *w, int level, ts_rect r, const void *data, size_t size,
                                  ts_error *err) {
  return w->ops->write_encoded(w->ctx, level, r, data, size, err);
}

int ts_writer_resumable(const ts_writer *w) { return w->ops->locate && w->ops->sync && w->ctx; }

ts_status ts_writer_locate(ts_writer *w, int level, ts_rect r, uint64_t *offset, uint64_t *size, ts_error *err) {
  return w->ops->locate(w->ctx, level, r, offset, size, err);
}

ts_status ts_writer_sync(ts_writer *w, ts_error *err) { return w->ops->sync(w->ctx, err); }

const char *ts_writer_tmp(const ts_writer *w) { return w->tmp; }

ts_status ts_writer_adopt(ts_writer *w, int level, ts_rect r, uint64_t size, ts_error *err) {
  if (!w->ops->adopt) return ts_fail(err, TS_ERR_INTERNAL, "%s: the %s writer has no tiles put elsewhere", w->path, w->ops->name);
  return w->ops->adopt(w->ctx, level, r, size, err);
}

int ts_writer_in_place(const ts_writer *w) { return w->dir; }

int ts_writer_read_back(ts_writer *w, uint64_t offset, uint64_t size, void *dst) {
  return w->ops->read_back(w->ctx, offset, size, dst);
}

int ts_install_dir(const char *tmp, const char *path) {
  char *old = malloc(strlen(path) + 16);
  if (!old) return errno = ENOMEM, -1;
  sprintf(old, "%s.replaced", path);
  ts_remove_path(old);
  int had = rename(path, old) == 0, r = rename(tmp, path);
  if (r != 0 && had) rename(old, path);
  else if (had) ts_remove_path(old);
  free(old);
  return r;
}

void ts_output_final_name(const char *spec, char *name, size_t cap) {
  const char *slash = strrchr(spec, '/');
  char raw[1024]; /* a file name is at most NAME_MAX (255) bytes */
  snprintf(raw, sizeof raw, "%s", slash ? slash + 1 : spec);
  const size_t n = strlen(raw);
  if (n > 8 && !strcmp(raw + n - 8, ".partial")) raw[n - 8] = '\0';
  ts_utf8_copy(name, cap, raw);
}

static int install(const ts_writer *w) { return w->dir ? ts_install_dir(w->tmp, w->path) : rename(w->tmp, w->path); }

ts_status ts_writer_finish(ts_writer **wp, ts_error *err) {
  ts_writer *w = *wp;
  ts_status st = w->ops->finish(w->ctx, err);
  w->ctx = NULL;
  if (st == TS_OK && install(w) != 0)
    st = ts_fail(err, TS_ERR_IO, "%s: cannot rename %s to it: %s", w->path, w->tmp, strerror(errno));
  if (st) ts_remove_path(w->tmp);
  free(w->path);
  free(w->tmp);
  free(w->spec);
  free(w);
  *wp = NULL;
  return st;
}

ts_status ts_writer_keep(ts_writer **wp, char **kept, ts_error *err) {
  ts_writer *w = *wp;
  ts_status st = (w->ops->keep ? w->ops->keep : w->ops->finish)(w->ctx, err);
  w->ctx = NULL;
  if (st) ts_remove_path(w->tmp);
  *kept = st ? NULL : w->tmp;
  if (st) free(w->tmp);
  free(w->path);
  free(w->spec);
  free(w);
  *wp = NULL;
  return st;
}

void ts_writer_abort(ts_writer **wp) {
  if (!wp || !*wp) return;
  ts_writer *w = *wp;
  if (w->ctx) {
    w->ops->abort(w->ctx);
    ts_remove_path(w->tmp);
  }
  free(w->path);
  free(w->tmp);
  free(w->spec);
  free(w);
  *wp = NULL;
}
