/* HDF5 images in tile mode: FILE.h5:/dataset, 2-D (H x W) or 3-D with
 * channels last (H x W x C, C <= 4), u8, u16 or f32.
 *
 * Reader: any rect through a hyperslab; the dataset may be chunked (the
 * chunk is the native block, cached by HDF5's chunk cache) or contiguous.
 * Writer: chunked by the output tile, deflate (or none). Each tile is one
 * chunk: per-thread encoders pack and deflate it (edge tiles zero-padded
 * to the full chunk, as HDF5 stores them) and the writer stores the bytes
 * with H5Dwrite_chunk, so compression runs in parallel as for TIFF.
 *
 * Debian's parallel HDF5 is not thread-safe: every HDF5 call here holds
 * one process-wide lock, since a read and a write may run at once. */
#include <hdf5.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/zstream.h"
#include "io/backends.h"
#include "tessera/io.h"

static pthread_mutex_t h5_lock = PTHREAD_MUTEX_INITIALIZER;

/* No HDF5 shutdown at exit: every file tessera opens is closed on every
 * path, and libhdf5 1.10.8's shutdown closes again a file whose H5Fclose
 * failed (a write past a file-size limit, a full disk) and dies in
 * H5F__close_cb. Must come before any other HDF5 call: at load. */
__attribute__((constructor)) static void h5_no_shutdown_at_exit(void) { H5dont_atexit(); }

int ts_h5_split(const char *spec, char **file, char **dset) {
  const char *c = strstr(spec, ":/");
  if (!c) return 0;
  if (file) *file = strndup(spec, (size_t)(c - spec));
  if (dset) *dset = strdup(c + 1);
  return 1;
}

static hid_t mem_type(ts_dtype d) {
  return d == TS_U8 ? H5T_NATIVE_UINT8 : d == TS_U16 ? H5T_NATIVE_UINT16 : H5T_NATIVE_FLOAT;
}

/* ---- reader ------------------------------------------------------------------ */

typedef struct h5_reader {
  hid_t file, dset;
  int rank;
  int channels;
  ts_dtype dtype;
  int64_t chunk_bytes;
  ts_h5_chunks chunks; /* each chunk checked before H5Dread first reads it */
  char name[4200]; /* FILE:/dataset, for messages */
} h5_reader;

static void h5r_close(void *ctx) {
  h5_reader *r = ctx;
  pthread_mutex_lock(&h5_lock);
  if (r->dset >= 0) H5Dclose(r->dset);
  if (r->file >= 0) H5Fclose(r->file);
  pthread_mutex_unlock(&h5_lock);
  ts_h5_chunks_free(&r->chunks);
  free(r);
}


static ts_status dtype_of(hid_t t, ts_dtype *d) {
  H5T_class_t c = H5Tget_class(t);
  size_t n = H5Tget_size(t);
  if (c == H5T_INTEGER && H5Tget_sign(t) == H5T_SGN_NONE && (n == 1 || n == 2)) *d = n == 1 ? TS_U8 : TS_U16;
  else if (c == H5T_FLOAT && n == 4) *d = TS_F32;
  else return TS_ERR_FORMAT;
  return TS_OK;
}

static ts_status h5r_open_locked(const char *spec, h5_reader *r, ts_image_info *info, ts_error *err) {
  char *file = NULL, *path = NULL;
  ts_status st = TS_OK;
  if (!ts_h5_split(spec, &file, &path)) return ts_fail(err, TS_ERR_USAGE, "%s: name the dataset as FILE.h5:/path", spec);
  st = ts_h5_open(file, &r->file, err);
  if (!st && (H5Lexists(r->file, path, H5P_DEFAULT) <= 0 || (r->dset = H5Dopen2(r->file, path, H5P_DEFAULT)) < 0))
    st = ts_fail(err, TS_ERR_FORMAT, "%s: no dataset %s", file, path);
  hsize_t dims[8] = {0};
  if (!st) {
    hid_t sp = H5Dget_space(r->dset), t = H5Dget_type(r->dset);
    r->rank = H5Sget_simple_extent_ndims(sp);
    if (r->rank >= 1 && r->rank <= 8) H5Sget_simple_extent_dims(sp, dims, NULL);
    if (dtype_of(t, &r->dtype))
      st = ts_fail(err, TS_ERR_FORMAT, "%s:%s: its element type is not u8, u16 or f32", file, path);
    H5Tclose(t);
    H5Sclose(sp);
  }
  snprintf(r->name, sizeof r->name, "%s:%s", file, path);
  if (!st) st = ts_h5_check_dataset(r->file, r->dset, r->name, err);
  if (!st && ts_h5_chunks_init(&r->chunks, r->dset)) st = ts_fail(err, TS_ERR_NOMEM, "out of memory");
  if (!st && !(r->rank == 2 || (r->rank == 3 && dims[2] >= 1 && dims[2] <= 4)))
    st = ts_fail(err, TS_ERR_FORMAT, "%s:%s: tile mode reads one image, H x W or H x W x C with C <= 4; "
                 "this dataset has %d dimensions (a stack N x H x W [x C] is list mode's input)", file, path, r->rank);
  if (!st) {
    r->channels = r->rank == 3 ? (int)dims[2] : 1;
    *info = (ts_image_info){.w = (int64_t)dims[1], .h = (int64_t)dims[0], .channels = r->channels, .dtype = r->dtype,
                            .pages = 1, .levels = 1};
    snprintf(info->format, sizeof info->format, "hdf5");
    hid_t dcpl = H5Dget_create_plist(r->dset);
    hsize_t chunk[8];
    const int64_t px = (int64_t)ts_dtype_size(r->dtype) * r->channels;
    if (H5Pget_layout(dcpl) == H5D_CHUNKED && H5Pget_chunk(dcpl, 8, chunk) == r->rank) {
      info->block_h = (int64_t)chunk[0];
      info->block_w = (int64_t)chunk[1];
      snprintf(info->detail, sizeof info->detail, "dataset %s, chunks %lldx%lld, %d filter(s)", path,
               (long long)chunk[1], (long long)chunk[0], H5Pget_nfilters(dcpl));
    } else { /* contiguous: rows, about 1 MiB at a time */
      info->block_w = info->w;
      const int64_t row = info->w > 0 ? info->w * px : 1; /* an empty image: ts_reader_open says so */
      info->block_h = (1 << 20) / row > 1 ? (1 << 20) / row : 1;
      if (info->block_h > info->h) info->block_h = info->h;
      snprintf(info->detail, sizeof info->detail, "dataset %s, contiguous", path);
    }
    r->chunk_bytes = info->block_w * info->block_h * px;
    H5Pclose(dcpl);
  }
  free(file);
  free(path);
  return st;
}

static ts_status h5r_open(const char *spec, int64_t page, void **ctx, ts_image_info *info, ts_error *err) {
  if (page) return ts_fail(err, TS_ERR_USAGE, "%s: one image; --page is for multi-page TIFF files", spec);
  h5_reader *r = calloc(1, sizeof *r);
  if (!r) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  r->file = r->dset = -1;
  pthread_mutex_lock(&h5_lock);
  ts_status st = h5r_open_locked(spec, r, info, err);
  pthread_mutex_unlock(&h5_lock);
  if (st) {
    h5r_close(r);
    return st;
  }
  *ctx = r;
  return TS_OK;
}

/* The chunk cache holds `blocks` chunks: reopen the dataset with it. */
static void h5r_set_cache(void *ctx, int64_t blocks) {
  h5_reader *r = ctx;
  pthread_mutex_lock(&h5_lock);
  hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
  H5Pset_chunk_cache(dapl, 12421 /* a prime well above the chunks held */, (size_t)(blocks * r->chunk_bytes), 1.0);
  char name[4096];
  if (H5Iget_name(r->dset, name, sizeof name) > 0) {
    hid_t d = H5Dopen2(r->file, name, dapl);
    if (d >= 0) {
      H5Dclose(r->dset);
      r->dset = d;
    }
  }
  H5Pclose(dapl);
  pthread_mutex_unlock(&h5_lock);
}

static ts_status h5r_read(void *ctx, ts_rect rc, void *dst, int64_t dst_stride, ts_error *err) {
  h5_reader *r = ctx;
  const size_t px = ts_dtype_size(r->dtype) * (size_t)r->channels;
  hsize_t off[3] = {(hsize_t)rc.y, (hsize_t)rc.x, 0}, cnt[3] = {(hsize_t)rc.h, (hsize_t)rc.w, (hsize_t)r->channels};
  hsize_t mdims[3] = {(hsize_t)rc.h, (hsize_t)((size_t)dst_stride / px), (hsize_t)r->channels}, zero[3] = {0};
  pthread_mutex_lock(&h5_lock);
  hid_t fs = H5Dget_space(r->dset), ms = H5Screate_simple(r->rank, mdims, NULL);
  H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL);
  H5Sselect_hyperslab(ms, H5S_SELECT_SET, zero, NULL, cnt, NULL);
  ts_status st = ts_h5_chunks_check(&r->chunks, r->dset, off, cnt, r->name, err);
  herr_t e = st ? 0 : H5Dread(r->dset, mem_type(r->dtype), ms, fs, H5P_DEFAULT, dst);
  H5Sclose(ms);
  H5Sclose(fs);
  pthread_mutex_unlock(&h5_lock);
  if (st) return st;
  if (e < 0)
    return ts_fail(err, TS_ERR_FORMAT, "%s: cannot read %lldx%lld at (%lld, %lld): a chunk there is corrupt (it does "
                   "not inflate to a whole chunk) or cannot be read", r->name, (long long)rc.w, (long long)rc.h,
                   (long long)rc.x, (long long)rc.y);
  return TS_OK;
}

const ts_reader_ops ts_hdf5_reader_ops = {
    .name = "hdf5",
    .open = h5r_open,
    .set_cache = h5r_set_cache,
    .read = h5r_read,
    .close = h5r_close,
};

/* ---- writer ------------------------------------------------------------------ */

typedef struct h5_writer {
  hid_t file, dset;
  hid_t level[TS_MAX_LEVELS]; /* /pyramid/L (level[0] unused) */
  ts_writer_options o;
  char *name; /* the file's, for messages */
} h5_writer;

struct ts_encoder_state {
  ts_writer_options o;
  unsigned char *tile; /* the packed, zero-padded chunk */
  unsigned char *z;    /* its deflate stream */
  size_t tile_bytes, z_cap;
  ts_zstream zs;
};

/* Level L's side: level 0's halved L times, rounded up. */
static int64_t side(int64_t n, int L) {
  for (int i = 0; i < L; i++) n = (n + 1) / 2;
  return n;
}
/* The chunk: the output tile, or the level's side where it is smaller
 * (HDF5 wants chunks within a fixed-size dataset). */
static int64_t chunk_w(const ts_writer_options *o, int L) { return o->tile < side(o->w, L) ? o->tile : side(o->w, L); }
static int64_t chunk_h(const ts_writer_options *o, int L) { return o->tile < side(o->h, L) ? o->tile : side(o->h, L); }
static size_t chunk_bytes(const ts_writer_options *o, int L) {
  return (size_t)(chunk_w(o, L) * chunk_h(o, L)) * ts_dtype_size(o->dtype) * (size_t)o->channels;
}

static void put_string(hid_t obj, const char *name, const char *v) {
  hid_t t = H5Tcopy(H5T_C_S1), as = H5Screate(H5S_SCALAR);
  H5Tset_size(t, strlen(v) + 1);
  hid_t a = H5Acreate2(obj, name, t, as, H5P_DEFAULT, H5P_DEFAULT);
  if (a >= 0) H5Awrite(a, t, v), H5Aclose(a);
  H5Sclose(as);
  H5Tclose(t);
}

/* One level's dataset, chunked by the tile. */
static hid_t create_level(hid_t file, const char *path, const ts_writer_options *o, int L) {
  const int rank = o->channels > 1 ? 3 : 2;
  hsize_t dims[3] = {(hsize_t)side(o->h, L), (hsize_t)side(o->w, L), (hsize_t)o->channels};
  hsize_t chunk[3] = {(hsize_t)chunk_h(o, L), (hsize_t)chunk_w(o, L), (hsize_t)o->channels};
  hid_t sp = H5Screate_simple(rank, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  H5Pset_chunk(dcpl, rank, chunk);
  if (o->compression == TS_COMPRESS_DEFLATE) H5Pset_deflate(dcpl, (unsigned)ts_zlevel(o->level));
  H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER); /* every chunk is written */
  H5Pset_obj_track_times(dcpl, 0);          /* same pixels, same bytes */
  /* the nodata value: the dataset's fill value and, as CF readers (xarray,
   * GDAL) look for it, a _FillValue attribute of the dataset's type */
  union { uint8_t u8; uint16_t u16; float f32; } nd;
  if (o->dtype == TS_U8) nd.u8 = (uint8_t)o->nodata;
  else if (o->dtype == TS_U16) nd.u16 = (uint16_t)o->nodata;
  else nd.f32 = (float)o->nodata;
  if (o->has_nodata) H5Pset_fill_value(dcpl, mem_type(o->dtype), &nd);
  hid_t d = H5Dcreate2(file, path, mem_type(o->dtype), sp, lcpl, dcpl, H5P_DEFAULT);
  if (d >= 0 && o->has_nodata) {
    hid_t as = H5Screate(H5S_SCALAR), a = H5Acreate2(d, "_FillValue", mem_type(o->dtype), as, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) H5Awrite(a, mem_type(o->dtype), &nd), H5Aclose(a);
    H5Sclose(as);
  }
  H5Pclose(lcpl);
  H5Pclose(dcpl);
  H5Sclose(sp);
  return d;
}

static ts_status check(const char *path, const ts_writer_options *o, ts_error *err) {
  if (o->layout != TS_LAYOUT_PLAIN)
    return ts_fail(err, TS_ERR_USAGE, "%s: --layout %s is a TIFF layout; HDF5 output keeps levels as /pyramid/N "
                   "(--pyramid)", path, ts_layout_name(o->layout));
  if (o->compression != TS_COMPRESS_NONE && o->compression != TS_COMPRESS_DEFLATE)
    return ts_fail(err, TS_ERR_USAGE, "%s: HDF5 output takes --compression deflate or none, not %s", path,
                   ts_compression_name(o->compression));
  return TS_OK;
}

static ts_status h5w_open_locked(const char *spec, const ts_writer_options *o, h5_writer *w, ts_error *err) {
  char *file = NULL, *path = NULL;
  if (!ts_h5_split(spec, &file, &path)) return ts_fail(err, TS_ERR_INTERNAL, "%s: no dataset path", spec);
  ts_status st = TS_OK;
  if (!(w->name = strdup(file))) st = ts_fail(err, TS_ERR_NOMEM, "out of memory");
  else if ((w->file = H5Fcreate(file, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)) < 0)
    st = ts_fail(err, TS_ERR_IO, "%s: cannot create HDF5 file", file);
  if (!st) {
    w->dset = create_level(w->file, path, o, 0);
    if (w->dset < 0) st = ts_fail(err, TS_ERR_IO, "%s: cannot create dataset %s", file, path);
    if (!st && o->description) put_string(w->dset, "description", o->description); /* as the TIFF's ImageDescription */
  }
  /* --pyramid: /pyramid/L, each with its factor (2^L) and how it was made */
  for (int L = 1; !st && L < o->levels; L++) {
    char name[32];
    snprintf(name, sizeof name, "/pyramid/%d", L);
    if ((w->level[L] = create_level(w->file, name, o, L)) < 0) {
      st = ts_fail(err, TS_ERR_IO, "%s: cannot create dataset %s", file, name);
      break;
    }
    hid_t as = H5Screate(H5S_SCALAR);
    long long factor = 1LL << L;
    hid_t a = H5Acreate2(w->level[L], "factor", H5T_STD_I64LE, as, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) H5Awrite(a, H5T_NATIVE_LLONG, &factor), H5Aclose(a);
    H5Sclose(as);
    if (o->downsample) put_string(w->level[L], "downsample", o->downsample);
  }
  free(file);
  free(path);
  return st;
}

static void h5w_close_locked(h5_writer *w) {
  for (int L = 1; L < TS_MAX_LEVELS; L++)
    if (w->level[L] > 0) H5Dclose(w->level[L]), w->level[L] = 0;
  if (w->dset >= 0) H5Dclose(w->dset);
  if (w->file >= 0) H5Fclose(w->file);
  w->dset = w->file = -1;
}

static ts_status h5w_open(const char *spec, const ts_writer_options *o, void **ctx, ts_error *err) {
  ts_status st = check(spec, o, err);
  if (st) return st;
  h5_writer *w = calloc(1, sizeof *w);
  if (!w) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  w->file = w->dset = -1;
  w->o = *o;
  pthread_mutex_lock(&h5_lock);
  st = h5w_open_locked(spec, o, w, err);
  if (st) h5w_close_locked(w);
  pthread_mutex_unlock(&h5_lock);
  if (st) {
    free(w->name);
    free(w);
    return st;
  }
  *ctx = w;
  return TS_OK;
}

static void h5_encoder_free(ts_encoder_state *e) {
  if (!e) return;
  ts_zstream_free(&e->zs);
  free(e->tile);
  free(e->z);
  free(e);
}

static ts_status h5_encoder_new(const char *path, const ts_writer_options *o, ts_encoder_state **out, ts_error *err) {
  ts_status st = check(path, o, err);
  if (st) return st;
  ts_encoder_state *e = calloc(1, sizeof *e);
  if (!e) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  e->o = *o;
  for (int L = 0; L < (o->levels > 1 ? o->levels : 1); L++)
    if (chunk_bytes(o, L) > e->tile_bytes) e->tile_bytes = chunk_bytes(o, L);
  e->z_cap = ts_zbound(e->tile_bytes);
  e->tile = calloc(1, e->tile_bytes);
  e->z = o->compression == TS_COMPRESS_DEFLATE ? malloc(e->z_cap) : NULL;
  if (!e->z_cap || !e->tile || (o->compression == TS_COMPRESS_DEFLATE && !e->z)) {
    h5_encoder_free(e);
    return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  }
  *out = e;
  return TS_OK;
}

/* dst (h5_bound bytes): an uncompressed chunk is staged there, a
 * deflate stream written there */
static size_t h5_bound(const ts_encoder_state *e) {
  return e->o.compression == TS_COMPRESS_NONE ? e->tile_bytes : e->z_cap;
}

static ts_status h5_encode(ts_encoder_state *e, int L, ts_rect r, const void *src, int64_t src_stride, void *dst,
                           size_t cap, const void **data, size_t *size, ts_error *err) {
  const size_t px = ts_dtype_size(e->o.dtype) * (size_t)e->o.channels, row = (size_t)r.w * px,
               full = (size_t)chunk_w(&e->o, L) * px, bytes = chunk_bytes(&e->o, L);
  const int edge = r.w < chunk_w(&e->o, L) || r.h < chunk_h(&e->o, L);
  const int raw = e->o.compression == TS_COMPRESS_NONE;
  unsigned char *tile = raw && dst ? dst : e->tile;
  if (edge) memset(tile, 0, bytes); /* the padding of edge chunks */
  for (int64_t y = 0; y < r.h; y++) memcpy(tile + (size_t)y * full, (const char *)src + y * src_stride, row);
  if (raw) {
    *data = tile;
    *size = bytes;
    return TS_OK;
  }
  unsigned char *out = dst ? dst : e->z;
  const size_t n = ts_zcompress(&e->zs, e->o.level, tile, bytes, out, e->z_cap);
  if (!n) return ts_fail(err, TS_ERR_INTERNAL, "deflate of a %lldx%lld tile failed", (long long)r.w, (long long)r.h);
  *data = out;
  *size = n;
  return TS_OK;
}



static ts_status h5w_write_encoded(void *ctx, int L, ts_rect r, const void *data, size_t size, ts_error *err) {
  h5_writer *w = ctx;
  hsize_t off[3] = {(hsize_t)r.y, (hsize_t)r.x, 0};
  pthread_mutex_lock(&h5_lock);
  herr_t e = H5Dwrite_chunk(L > 0 ? w->level[L] : w->dset, H5P_DEFAULT, 0, off, size, data);
  pthread_mutex_unlock(&h5_lock);
  if (e < 0)
    return ts_fail(err, TS_ERR_IO, "%s: HDF5 cannot write the chunk at (%lld, %lld) (disk full, or the file-size "
                   "limit?)", w->name, (long long)r.x, (long long)r.y);
  return TS_OK;
}

static ts_status h5w_finish(void *ctx, ts_error *err) {
  h5_writer *w = ctx;
  pthread_mutex_lock(&h5_lock);
  herr_t e = H5Fflush(w->file, H5F_SCOPE_GLOBAL);
  hid_t d = w->dset, f = w->file;
  herr_t c = 0;
  for (int L = 1; L < w->o.levels; L++) c |= H5Dclose(w->level[L]);
  c |= H5Dclose(d);
  c |= H5Fclose(f);
  pthread_mutex_unlock(&h5_lock);
  ts_status st = e < 0 || c < 0 ? ts_fail(err, TS_ERR_IO, "%s: HDF5 cannot complete the output (disk full, or the "
                                          "file-size limit?)", w->name) : TS_OK;
  free(w->name);
  free(w);
  return st;
}

static void h5w_abort(void *ctx) {
  h5_writer *w = ctx;
  pthread_mutex_lock(&h5_lock);
  h5w_close_locked(w);
  pthread_mutex_unlock(&h5_lock);
  free(w->name);
  free(w);
}

/* Checkpoints: a chunk's address and stored size (H5Dwrite_chunk stores
 * the bytes as given); sync flushes HDF5's caches and fsyncs the file. */
static ts_status h5w_locate(void *ctx, int L, ts_rect r, uint64_t *offset, uint64_t *size, ts_error *err) {
  h5_writer *w = ctx;
  hsize_t off[3] = {(hsize_t)r.y, (hsize_t)r.x, 0}, n = 0;
  haddr_t addr = HADDR_UNDEF;
  unsigned mask = 0;
  pthread_mutex_lock(&h5_lock);
  herr_t e = H5Dget_chunk_info_by_coord(L > 0 ? w->level[L] : w->dset, off, &mask, &addr, &n);
  pthread_mutex_unlock(&h5_lock);
  if (e < 0 || addr == HADDR_UNDEF)
    return ts_fail(err, TS_ERR_INTERNAL, "HDF5: the chunk at (%lld, %lld) was not written", (long long)r.x,
                   (long long)r.y);
  *offset = (uint64_t)addr;
  *size = (uint64_t)n;
  return TS_OK;
}

static ts_status h5w_sync(void *ctx, ts_error *err) {
  h5_writer *w = ctx;
  void *handle = NULL;
  pthread_mutex_lock(&h5_lock);
  herr_t e = H5Fflush(w->file, H5F_SCOPE_GLOBAL);
  if (e >= 0) e = H5Fget_vfd_handle(w->file, H5P_DEFAULT, &handle);
  pthread_mutex_unlock(&h5_lock);
  if (e < 0 || !handle || fsync(*(int *)handle) != 0)
    return ts_fail(err, TS_ERR_IO, "HDF5: cannot sync the output to disk");
  return TS_OK;
}

const ts_writer_ops ts_hdf5_writer_ops = {
    .name = "hdf5",
    .open = h5w_open,
    .encoder_new = h5_encoder_new,
    .encode = h5_encode,
    .bound = h5_bound,
    .encoder_free = h5_encoder_free,
    .write_encoded = h5w_write_encoded,
    .finish = h5w_finish,
    .abort = h5w_abort,
    .locate = h5w_locate,
    .sync = h5w_sync,
};
