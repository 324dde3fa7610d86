/* Zarr output: a directory store, one file per chunk.
 *
 * v2 (OME-NGFF 0.4):
 *   OUT.zarr/.zgroup, .zattrs        the group and its multiscales
 *   OUT.zarr/L/.zarray               level L's array (0: full resolution)
 *   OUT.zarr/L/[0/]CY/CX             its chunks ("/" separator; the 0 is
 *                                    the channel axis' one chunk)
 * v3 (--zarr-format 3, NGFF 0.5): zarr.json for the group (attributes.ome)
 * and each array, chunks at L/c/[0/]CY/CX. With --shard N a file holds
 * N x N chunks (the sharding_indexed codec): rank 0 appends each chunk to
 * its shard as it is stored and writes the shard's index (offset, size
 * per chunk, then its CRC-32C) when the last one is in (zarr_shard.c,
 * which also keeps them resumable). A shard is assembled by rank 0
 * alone, so sharded stores take no --io direct writes.
 *
 * A chunk is an output tile (the level's size when smaller), padded to
 * full size at the image's edge as Zarr requires, channels as planes
 * (axes c, y, x). The metadata is written when the store opens, so a
 * stopped run's store is readable (chunks not yet written read as the
 * fill value). The store is built as OUT.zarr.partial/ (format.c renames
 * it) and resumes in place: the journal's "offset" of a chunk is its
 * number in the store, and a resume reads the chunk files back to check
 * them rather than copying them.
 *
 * With --io direct, workers' encoders store their own chunks (put: a
 * temporary name, then renamed into place) and rank 0 only adopts them. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "io/backends.h"
#include "io/zarr.h"

/* The chunk grid of every level, on every rank alike. */
typedef struct zgrid {
  int levels, v3, channels;
  int64_t w[TS_MAX_LEVELS], h[TS_MAX_LEVELS], cw[TS_MAX_LEVELS], ch[TS_MAX_LEVELS];
  int64_t gx[TS_MAX_LEVELS], gy[TS_MAX_LEVELS], base[TS_MAX_LEVELS + 1]; /* chunk numbers of level L start at base[L] */
} zgrid;

static void grid_of(const ts_writer_options *o, zgrid *g) {
  memset(g, 0, sizeof *g);
  g->levels = o->levels > 1 ? o->levels : 1;
  g->v3 = o->zarr_format == 3;
  g->channels = o->channels;
  for (int L = 0; L < g->levels; L++) {
    g->w[L] = L ? (g->w[L - 1] + 1) / 2 : o->w;
    g->h[L] = L ? (g->h[L - 1] + 1) / 2 : o->h;
    g->cw[L] = o->tile < g->w[L] ? o->tile : g->w[L];
    g->ch[L] = o->tile < g->h[L] ? o->tile : g->h[L];
    g->gx[L] = (g->w[L] + g->cw[L] - 1) / g->cw[L];
    g->gy[L] = (g->h[L] + g->ch[L] - 1) / g->ch[L];
    g->base[L + 1] = g->base[L] + g->gx[L] * g->gy[L];
  }
}

static int64_t chunk_number(const zgrid *g, int L, ts_rect r) {
  return g->base[L] + (r.y / g->ch[L]) * g->gx[L] + r.x / g->cw[L];
}

/* The file of chunk (or shard) (cy, cx) of level L, relative to the
 * store: "L/[c/][0/]CY/CX". */
static void key_name(const zgrid *g, int L, int64_t cy, int64_t cx, char *name, size_t cap) {
  snprintf(name, cap, "%d/%s%s%lld/%lld", L, g->v3 ? "c/" : "", g->channels > 1 ? "0/" : "", (long long)cy,
           (long long)cx);
}

static int level_of(const zgrid *g, int64_t n) {
  int L = 0;
  while (L + 1 < g->levels && n >= g->base[L + 1]) L++;
  return L;
}

static void chunk_name(const zgrid *g, int64_t n, char *name, size_t cap) {
  const int L = level_of(g, n);
  n -= g->base[L];
  key_name(g, L, n / g->gx[L], n % g->gx[L], name, cap);
}

/* The partial store of output `path` (the encoders' view: workers write there). */
static char *partial_of(const char *path) {
  char *s = malloc(strlen(path) + 16);
  if (s) sprintf(s, "%s.partial", path);
  return s;
}

/* Write a whole file at dirfd/name; with tmp, under "name.tmpPID" first,
 * then renamed into place (a reader never sees it half-written). */
static ts_status put_file(int dirfd, const char *name, const void *data, size_t n, int tmp, const char *store,
                          ts_error *err) {
  char t[96];
  snprintf(t, sizeof t, "%s.tmp%ld", name, (long)getpid());
  const char *at = tmp ? t : name;
  int fd = openat(dirfd, at, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  const char *p = data;
  size_t left = n;
  ssize_t k = 0;
  while (fd >= 0 && left > 0 && (k = write(fd, p, left)) > 0) p += k, left -= (size_t)k;
  int e = errno, ok = fd >= 0 && left == 0;
  if (fd >= 0 && close(fd) != 0) ok = 0, e = errno;
  if (ok && tmp && renameat(dirfd, t, dirfd, name) != 0) ok = 0, e = errno;
  if (!ok && tmp) unlinkat(dirfd, t, 0);
  return ok ? TS_OK : ts_fail(err, TS_ERR_IO, "%s/%s: cannot write a chunk: %s", store, name, e ? strerror(e) : "short write");
}

/* ---- the encoders (any rank, one per thread) ---- */

struct ts_encoder_state {
  ts_writer_options o;
  zgrid g;
  ts_zarr_codec codec;
  ts_zarr_state zs;
  unsigned char *chunk, *out;
  size_t chunk_cap, out_cap;
  /* put: this encoder stores the chunks it makes (a worker with --io direct) */
  int dirfd;
  char *store;
};

static ts_status check(const char *path, const ts_writer_options *o, ts_zarr_codec *z, ts_error *err) {
  if (o->layout != TS_LAYOUT_PLAIN)
    return ts_fail(err, TS_ERR_USAGE, "%s: --layout %s is a TIFF layout; a Zarr store keeps levels as datasets 0, 1, "
                   "... (--pyramid)", path, ts_layout_name(o->layout));
  if (o->zarr_format != 0 && o->zarr_format != 2 && o->zarr_format != 3)
    return ts_fail(err, TS_ERR_USAGE, "%s: --zarr-format %d: 2 or 3", path, o->zarr_format);
  if (o->shard > 1 && o->zarr_format != 3)
    return ts_fail(err, TS_ERR_USAGE, "%s: --shard is Zarr v3's sharding codec; add --zarr-format 3", path);
  ts_status st = ts_zarr_codec_for(o->compression, o->level, o->dtype, z, path, err);
  if (st == TS_OK && z->kind == TS_ZC_ZLIB && o->zarr_format == 3) z->kind = TS_ZC_GZIP; /* v3 has gzip, not zlib */
  return st;
}

static void zarr_encoder_free(ts_encoder_state *e) {
  if (!e) return;
  ts_zarr_state_free(&e->zs);
  if (e->dirfd >= 0) close(e->dirfd);
  free(e->store);
  free(e->chunk);
  free(e->out);
  free(e);
}

static ts_status zarr_encoder_new(const char *path, const ts_writer_options *o, ts_encoder_state **out, ts_error *err) {
  ts_encoder_state *e = calloc(1, sizeof *e);
  if (!e) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  e->dirfd = -1;
  e->o = *o;
  e->o.description = e->o.downsample = NULL;
  e->o.meta = NULL;
  ts_status st = check(path, o, &e->codec, err);
  grid_of(o, &e->g);
  e->chunk_cap = (size_t)(e->g.cw[0] * e->g.ch[0]) * ts_dtype_size(o->dtype) * (size_t)o->channels;
  e->out_cap = ts_zarr_bound(&e->codec, e->chunk_cap);
  if (st == TS_OK && (!(e->chunk = malloc(e->chunk_cap)) || !(e->out = malloc(e->out_cap))))
    st = ts_fail(err, TS_ERR_NOMEM, "out of memory for a chunk");
  if (st == TS_OK && o->put && o->shard <= 1) { /* a shard is rank 0's to assemble */
    if (!(e->store = partial_of(path))) st = ts_fail(err, TS_ERR_NOMEM, "out of memory");
    else if ((e->dirfd = open(e->store, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
      char cwd[2048] = "";
      const int e0 = errno;
      if (e->store[0] != '/' && !getcwd(cwd, sizeof cwd)) cwd[0] = '\0';
      st = ts_fail(err, TS_ERR_IO, "%s%s%s: cannot open the store to write chunks: %s (--io direct needs the output on "
                   "a filesystem every rank shares)", cwd, cwd[0] ? "/" : "", e->store, strerror(e0));
    }
  }
  if (st) {
    zarr_encoder_free(e);
    return st;
  }
  *out = e;
  return TS_OK;
}

/* The chunk of tile r at level L: planes of the level's chunk size, the
 * edge padded with zeros (the fill value). */
static size_t stage(ts_encoder_state *e, int L, ts_rect r, const void *src, int64_t stride, unsigned char *chunk) {
  const int C = e->o.channels;
  const size_t es = ts_dtype_size(e->o.dtype), cw = (size_t)e->g.cw[L], ch = (size_t)e->g.ch[L];
  const size_t plane = cw * ch * es, bytes = plane * (size_t)C;
  if (r.w < (int64_t)cw || r.h < (int64_t)ch) memset(chunk, 0, bytes);
  for (int64_t y = 0; y < r.h; y++) {
    const unsigned char *row = (const unsigned char *)src + y * stride;
    unsigned char *to = chunk + (size_t)y * cw * es;
    if (C == 1) {
      memcpy(to, row, (size_t)r.w * es);
      continue;
    }
    for (int c = 0; c < C; c++) { /* interleaved to planes */
      unsigned char *d = to + (size_t)c * plane;
      if (es == 1)
        for (int64_t x = 0; x < r.w; x++) d[x] = row[x * C + c];
      else
        for (int64_t x = 0; x < r.w; x++) memcpy(d + x * es, row + (x * C + c) * es, es);
    }
  }
  return bytes;
}

/* dst (zarr_bound bytes): an uncompressed chunk is staged there, a
 * compressed one written there */
static size_t zarr_bound(const ts_encoder_state *e) {
  return e->codec.kind == TS_ZC_NONE ? e->chunk_cap : e->out_cap;
}

static ts_status zarr_encode(ts_encoder_state *e, int L, ts_rect r, const void *src, int64_t stride, void *dst,
                             size_t cap, const void **data, size_t *size, ts_error *err) {
  const int raw = e->codec.kind == TS_ZC_NONE;
  unsigned char *chunk = raw && dst ? dst : e->chunk;
  const size_t n = stage(e, L, r, src, stride, chunk);
  if (raw) {
    *data = chunk;
    *size = n;
    return TS_OK;
  }
  unsigned char *out = dst ? dst : e->out;
  const size_t k = ts_zarr_encode(&e->codec, &e->zs, e->chunk, n, out, e->out_cap);
  if (!k)
    return ts_fail(err, TS_ERR_INTERNAL, "compressing the chunk at (%lld, %lld) of level %d failed", (long long)r.x,
                   (long long)r.y, L);
  *data = out;
  *size = k;
  return TS_OK;
}

static ts_status zarr_put(ts_encoder_state *e, int L, ts_rect r, const void *data, size_t size, ts_error *err) {
  char name[96];
  chunk_name(&e->g, chunk_number(&e->g, L, r), name, sizeof name);
  return put_file(e->dirfd, name, data, size, 1, e->store, err);
}

static int zarr_puts(const ts_encoder_state *e) { return e->dirfd >= 0; }

/* ---- the store (rank 0) ---- */

typedef struct zarr_writer {
  ts_writer_options o;
  zgrid g;
  ts_zarr_codec codec;
  char *dir;
  int dirfd;
  uint64_t *sizes; /* per chunk number: its bytes (0: not stored) */
  int64_t N;          /* --shard N (0: none) */
  ts_zshards *shards;
} zarr_writer;

static ts_status make_dir(int dirfd, const char *name, const char *store, ts_error *err) {
  if (mkdirat(dirfd, name, 0777) == 0 || errno == EEXIST) return TS_OK;
  return ts_fail(err, TS_ERR_IO, "%s/%s: cannot create: %s", store, name, strerror(errno));
}

static json_t *dims(const zarr_writer *w, int64_t c, int64_t y, int64_t x) {
  return w->o.channels > 1 ? json_pack("[I, I, I]", (json_int_t)c, (json_int_t)y, (json_int_t)x)
                           : json_pack("[I, I]", (json_int_t)y, (json_int_t)x);
}

/* The fill value: the output's nodata value (what a chunk not written
 * reads as; xarray takes it for _FillValue), else 0. Both versions spell
 * the floats JSON lacks as strings. */
static json_t *fill_value(const ts_writer_options *o) {
  if (!o->has_nodata) return json_integer(0);
  if (isnan(o->nodata)) return json_string("NaN");
  if (isinf(o->nodata)) return json_string(o->nodata > 0 ? "Infinity" : "-Infinity");
  return o->dtype == TS_F32 ? json_real(o->nodata) : json_integer((json_int_t)o->nodata);
}

/* One level's .zarray (v2) or zarr.json (v3). */
static json_t *array_meta(const zarr_writer *w, int L) {
  const int C = w->o.channels;
  json_t *shape = dims(w, C, w->g.h[L], w->g.w[L]), *chunks = dims(w, C, w->g.ch[L], w->g.cw[L]);
  if (!w->g.v3)
    return json_pack("{s:o, s:o, s:s, s:s, s:o, s:n, s:s, s:o, s:i}", "chunks", chunks, "compressor",
                     ts_zarr_compressor_v2(&w->codec), "dimension_separator", "/", "dtype",
                     ts_zarr_dtype_v2(w->o.dtype), "fill_value", fill_value(&w->o), "filters", "order", "C", "shape", shape,
                     "zarr_format", 2);
  json_t *codecs = ts_zarr_codecs_v3(&w->codec), *grid = chunks;
  if (w->N) { /* the grid is of shards; the codec holds the chunks */
    grid = dims(w, C, w->g.ch[L] * w->N, w->g.cw[L] * w->N);
    json_t *index = json_pack("[{s:s, s:{s:s}}, {s:s}]", "name", "bytes", "configuration", "endian", "little", "name",
                              "crc32c");
    codecs = json_pack("[{s:s, s:{s:o, s:o, s:o, s:s}}]", "name", "sharding_indexed", "configuration", "chunk_shape",
                       chunks, "codecs", codecs, "index_codecs", index, "index_location", "end");
  }
  json_t *names = C > 1 ? json_pack("[s, s, s]", "c", "y", "x") : json_pack("[s, s]", "y", "x");
  return json_pack("{s:i, s:s, s:o, s:s, s:{s:s, s:{s:o}}, s:{s:s, s:{s:s}}, s:o, s:o, s:{}, s:o}", "zarr_format", 3,
                   "node_type", "array", "shape", shape, "data_type", ts_zarr_dtype_v3(w->o.dtype), "chunk_grid",
                   "name", "regular", "configuration", "chunk_shape", grid, "chunk_key_encoding", "name", "default",
                   "configuration", "separator", "/", "fill_value", fill_value(&w->o), "codecs", codecs, "attributes",
                   "dimension_names", names);
}

/* The multiscales: NGFF 0.4 (v2) or 0.5 (v3, whose version is the ome
 * object's), one scale per level (the input's pixel size when known, in
 * micrometres). */
static json_t *multiscales(const zarr_writer *w, const char *name) {
  const int C = w->o.channels;
  const double ux = w->o.meta ? w->o.meta->um_x : 0, uy = w->o.meta ? w->o.meta->um_y : 0;
  const int unit = ux > 0 && uy > 0;
  json_t *axes = json_array();
  if (C > 1) json_array_append_new(axes, json_pack("{s:s, s:s}", "name", "c", "type", "channel"));
  for (int i = 0; i < 2; i++) {
    json_t *a = json_pack("{s:s, s:s}", "name", i ? "x" : "y", "type", "space");
    if (unit) json_object_set_new(a, "unit", json_string("micrometer"));
    json_array_append_new(axes, a);
  }
  json_t *datasets = json_array();
  for (int L = 0; L < w->g.levels; L++) {
    const double f = (double)(1LL << L);
    json_t *scale = json_array();
    if (C > 1) json_array_append_new(scale, json_real(1.0));
    json_array_append_new(scale, json_real(f * (unit ? uy : 1.0)));
    json_array_append_new(scale, json_real(f * (unit ? ux : 1.0)));
    char path[16];
    snprintf(path, sizeof path, "%d", L);
    json_array_append_new(datasets, json_pack("{s:s, s:[{s:s, s:o}]}", "path", path, "coordinateTransformations",
                                              "type", "scale", "scale", scale));
  }
  json_t *ms = w->g.v3 ? json_pack("{s:s, s:o, s:o}", "name", name, "axes", axes, "datasets", datasets)
                       : json_pack("{s:s, s:s, s:o, s:o}", "version", "0.4", "name", name, "axes", axes, "datasets",
                                   datasets);
  if (w->g.levels > 1 && w->o.downsample) {
    json_object_set_new(ms, "type", json_string(w->o.downsample));
    json_object_set_new(ms, "metadata", json_pack("{s:s, s:s}", "method", "tessera --downsample", "version",
                                                  ts_version()));
  }
  return json_pack("[o]", ms);
}

/* The group's attributes: the multiscales and the pipeline. */
static json_t *group_attrs(const zarr_writer *w, const char *name) {
  json_t *ms = multiscales(w, name);
  json_t *attrs = w->g.v3 ? json_pack("{s:{s:s, s:o}}", "ome", "version", "0.5", "multiscales", ms)
                          : json_pack("{s:o}", "multiscales", ms);
  if (w->o.description)
    json_object_set_new(attrs, "tessera", json_pack("{s:s, s:s}", "pipeline", w->o.description, "version", ts_version()));
  return attrs;
}

static ts_status write_meta(zarr_writer *w, const char *spec, ts_error *err) {
  const int C = w->o.channels;
  char name[TS_FINAL_NAME_CAP];
  ts_output_final_name(spec, name, sizeof name);
  char *dot = strstr(name, ".zarr");
  if (dot) *dot = '\0';
  json_t *attrs = group_attrs(w, name);
  ts_status st = attrs ? TS_OK : ts_fail(err, TS_ERR_NOMEM, "out of memory for the store's metadata");
  if (st == TS_OK && w->g.v3) {
    json_t *zg = json_pack("{s:i, s:s, s:O}", "zarr_format", 3, "node_type", "group", "attributes", attrs);
    st = zg ? ts_zarr_put_json(w->dirfd, "zarr.json", zg, w->dir, err) : ts_fail(err, TS_ERR_NOMEM, "out of memory");
    json_decref(zg);
  } else if (st == TS_OK) {
    json_t *zg = json_pack("{s:i}", "zarr_format", 2);
    st = zg ? ts_zarr_put_json(w->dirfd, ".zgroup", zg, w->dir, err) : ts_fail(err, TS_ERR_NOMEM, "out of memory");
    if (st == TS_OK) st = ts_zarr_put_json(w->dirfd, ".zattrs", attrs, w->dir, err);
    json_decref(zg);
  }
  json_decref(attrs);
  for (int L = 0; st == TS_OK && L < w->g.levels; L++) {
    char d[64];
    const char *c = w->g.v3 ? "c/" : "";
    snprintf(d, sizeof d, "%d", L);
    st = make_dir(w->dirfd, d, w->dir, err);
    if (st == TS_OK && w->g.v3) snprintf(d, sizeof d, "%d/c", L), st = make_dir(w->dirfd, d, w->dir, err);
    if (st == TS_OK && C > 1) snprintf(d, sizeof d, "%d/%s0", L, c), st = make_dir(w->dirfd, d, w->dir, err);
    const int64_t rows = w->N ? ts_zshards_rows(w->shards, L) : w->g.gy[L];
    for (int64_t y = 0; st == TS_OK && y < rows; y++) {
      snprintf(d, sizeof d, "%d/%s%s%lld", L, c, C > 1 ? "0/" : "", (long long)y);
      st = make_dir(w->dirfd, d, w->dir, err);
    }
    json_t *a = array_meta(w, L);
    snprintf(d, sizeof d, "%d/%s", L, w->g.v3 ? "zarr.json" : ".zarray");
    if (st == TS_OK) st = a ? ts_zarr_put_json(w->dirfd, d, a, w->dir, err) : ts_fail(err, TS_ERR_NOMEM, "out of memory");
    json_decref(a);
  }
  return st;
}

static void zarr_close(zarr_writer *w) {
  ts_zshards_free(w->shards);
  if (w->dirfd >= 0) close(w->dirfd);
  free(w->dir);
  free(w->sizes);
  free(w);
}

/* A killed run's temporary files (a chunk a worker had not yet renamed
 * into place, a shard being rebuilt, a sidecar being replaced): never
 * data, and no name of the store's own holds ".tmp". */
static int drop_tmp(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  if (flag == FTW_F && strstr(path + ftw->base, ".tmp")) unlink(path);
  return 0;
}

/* spec: the store's partial directory, made by format.c (and kept from
 * the run a --resume finishes). */
static ts_status zarr_wopen(const char *spec, const ts_writer_options *o, void **ctx, ts_error *err) {
  zarr_writer *w = calloc(1, sizeof *w);
  if (!w) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  w->dirfd = -1;
  w->o = *o;
  grid_of(o, &w->g);
  w->N = o->shard > 1 ? o->shard : 0;
  ts_status st = check(spec, o, &w->codec, err);
  if (st == TS_OK && (!(w->dir = strdup(spec)) || !(w->sizes = calloc((size_t)w->g.base[w->g.levels], sizeof *w->sizes))))
    st = ts_fail(err, TS_ERR_NOMEM, "out of memory for %lld chunks", (long long)w->g.base[w->g.levels]);
  if (st == TS_OK && (w->dirfd = open(spec, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
    st = ts_fail(err, TS_ERR_IO, "%s: cannot open the store: %s", spec, strerror(errno));
  if (st == TS_OK && o->reopen) nftw(spec, drop_tmp, 16, FTW_PHYS);
  if (st == TS_OK && w->N) {
    ts_zshard_grid sg = {.levels = w->g.levels, .channels = o->channels, .N = w->N};
    memcpy(sg.gx, w->g.gx, sizeof sg.gx);
    memcpy(sg.gy, w->g.gy, sizeof sg.gy);
    st = ts_zshards_open(&w->shards, &sg, w->dirfd, w->dir, o->reopen, err);
  }
  if (st == TS_OK) st = write_meta(w, spec, err); /* named after the final name */
  if (st) {
    zarr_close(w);
    return st;
  }
  *ctx = w;
  return TS_OK;
}

static ts_status zarr_write_encoded(void *ctx, int L, ts_rect r, const void *data, size_t size, ts_error *err) {
  zarr_writer *w = ctx;
  const int64_t n = chunk_number(&w->g, L, r);
  ts_status st;
  if (w->N) {
    st = ts_zshards_put(w->shards, L, r.y / w->g.ch[L], r.x / w->g.cw[L], data, size, err);
  } else {
    char name[96];
    chunk_name(&w->g, n, name, sizeof name);
    st = put_file(w->dirfd, name, data, size, 0, w->dir, err);
  }
  if (st == TS_OK) w->sizes[n] = size;
  return st;
}

static ts_status zarr_adopt(void *ctx, int L, ts_rect r, uint64_t size, ts_error *err) {
  zarr_writer *w = ctx;
  w->sizes[chunk_number(&w->g, L, r)] = size;
  return w->N ? ts_zshards_adopt(w->shards, L, r.y / w->g.ch[L], r.x / w->g.cw[L], err) : TS_OK;
}

static ts_status zarr_locate(void *ctx, int L, ts_rect r, uint64_t *offset, uint64_t *size, ts_error *err) {
  zarr_writer *w = ctx;
  const int64_t n = chunk_number(&w->g, L, r);
  if (!w->sizes[n])
    return ts_fail(err, TS_ERR_INTERNAL, "the chunk at (%lld, %lld) of level %d was not stored", (long long)r.x,
                   (long long)r.y, L);
  *offset = (uint64_t)n;
  *size = w->sizes[n];
  return TS_OK;
}

/* A journaled chunk's bytes, as stored: 0, or -1 when it is missing,
 * another size, or not a chunk of this store. */
static int zarr_read_back(void *ctx, uint64_t offset, uint64_t size, void *dst) {
  zarr_writer *w = ctx;
  if (offset >= (uint64_t)w->g.base[w->g.levels]) return -1;
  if (w->N) {
    const int64_t n = (int64_t)offset;
    const int L = level_of(&w->g, n);
    const int64_t k = n - w->g.base[L];
    return ts_zshards_read(w->shards, L, k / w->g.gx[L], k % w->g.gx[L], size, dst);
  }
  char name[96];
  chunk_name(&w->g, (int64_t)offset, name, sizeof name);
  int fd = openat(w->dirfd, name, O_RDONLY | O_CLOEXEC);
  struct stat sb;
  int ok = fd >= 0 && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size == size &&
           pread(fd, dst, size, 0) == (ssize_t)size;
  if (fd >= 0) close(fd);
  return ok ? 0 : -1;
}

/* Every file of the store's filesystem durable, in one call. */
static ts_status sync_all(const zarr_writer *w, ts_error *err) {
  return syncfs(w->dirfd) == 0 ? TS_OK : ts_fail(err, TS_ERR_IO, "%s: cannot sync: %s", w->dir, strerror(errno));
}

/* A checkpoint: the chunks durable; then the shards being filled say
 * where their chunks are (made durable too). */
static ts_status zarr_sync(void *ctx, ts_error *err) {
  zarr_writer *w = ctx;
  ts_status st = sync_all(w, err);
  if (st == TS_OK && w->N && (st = ts_zshards_sync(w->shards, err)) == TS_OK) st = sync_all(w, err);
  return st;
}

/* Complete (keep: a stopped run's store, readable, shards' sidecars kept). */
static ts_status finish(zarr_writer *w, int keep, ts_error *err) {
  ts_status st = w->N ? ts_zshards_finish(w->shards, keep, err) : TS_OK;
  if (st == TS_OK) st = sync_all(w, err);
  zarr_close(w);
  return st;
}

static ts_status zarr_finish(void *ctx, ts_error *err) { return finish(ctx, 0, err); }
static ts_status zarr_keep(void *ctx, ts_error *err) { return finish(ctx, 1, err); }

static void zarr_abort(void *ctx) { zarr_close(ctx); }

const ts_writer_ops ts_zarr_writer_ops = {
    .name = "zarr",
    .open = zarr_wopen,
    .encoder_new = zarr_encoder_new,
    .encode = zarr_encode,
    .bound = zarr_bound,
    .encoder_free = zarr_encoder_free,
    .put = zarr_put,
    .puts = zarr_puts,
    .write_encoded = zarr_write_encoded,
    .adopt = zarr_adopt,
    .finish = zarr_finish,
    .keep = zarr_keep,
    .abort = zarr_abort,
    .locate = zarr_locate,
    .read_back = zarr_read_back,
    .sync = zarr_sync,
};
