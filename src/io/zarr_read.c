/* Zarr input, v2 and v3, chunk by chunk: a multiscales group (OME-NGFF
 * 0.4 in .zattrs, 0.5 in zarr.json's attributes.ome; --input-level picks
 * the dataset) or an array path inside a store. 2-D arrays (y, x), or 3-D
 * (c, y, x) with up to 4 channels; u8, u16, f32 in either byte order; the
 * compressors of zarr.h, v3's sharding_indexed codec included. Rects are
 * served from a small LRU cache of decoded chunks; a chunk that is absent
 * reads as the fill value. Everything the metadata claims is checked
 * against limits before it sizes a buffer. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "io/backends.h"
#include "io/file.h"
#include "io/zarr.h"

#define MAX_CHUNK_BYTES ((size_t)1 << 29) /* a decoded chunk (or a shard's index) */
#define MAX_META_BYTES (16 << 20)

typedef struct zblock {
  int64_t index; /* -1 = empty */
  uint64_t used;
  unsigned char *data; /* planar, decoded, native byte order */
} zblock;

typedef struct zarr_reader {
  char *path;  /* the array's directory */
  char *name;  /* for messages: what the user named */
  int v3;
  int nd;      /* 2, 3 (c, y, x), or 4 (a stack) */
  int64_t shape[4], chunk[4]; /* chunk: the inner chunk (a shard's); 4-D: a stack */
  int64_t shard[4];           /* v3 sharding: the shard's shape (0: none) */
  int64_t gx, gy;             /* chunks across and down */
  char sep;
  int v3_prefix;              /* v3 default keys: "c/..." */
  int big;                    /* big-endian elements */
  int index_end, index_crc;   /* shards: where the index lies, and its CRC-32C */
  ts_zarr_codec codec;
  ts_zarr_state zs;
  ts_image_info info;
  double fill;
  size_t es, chunk_bytes; /* a decoded chunk file */
  int64_t groups;         /* (c, y, x) with channels in several chunks: the chunk files per block */
  size_t block_bytes;     /* a cached block: every channel of one (cy, cx) */
  unsigned char *group;   /* one chunk file decoded, when it is not a block (groups > 1, or more planes than channels) */
  zblock *cache;
  int64_t cap;
  uint64_t clock;
  ts_blob raw, shard_index;
  int64_t index_of;           /* the shard whose index shard_index holds (-1: none) */
  ts_image_meta meta;
} zarr_reader;

static void zr_close(void *ctx) {
  zarr_reader *r = ctx;
  if (!r) return;
  for (int64_t i = 0; r->cache && i < r->cap; i++) free(r->cache[i].data);
  free(r->cache);
  ts_zarr_state_free(&r->zs);
  free(r->group);
  ts_blob_free(&r->raw);
  ts_blob_free(&r->shard_index);
  free(r->path);
  free(r->name);
  free(r);
}

/* dir/name as JSON, or NULL (*missing set when there is no such file). */
static json_t *load_json(const char *dir, const char *name, int *missing, ts_error *err) {
  char p[4096];
  *missing = 0;
  if (snprintf(p, sizeof p, "%s/%s", dir, name) >= (int)sizeof p) {
    ts_fail(err, TS_ERR_USAGE, "%s: path too long", dir);
    return NULL;
  }
  struct stat sb;
  if (stat(p, &sb) != 0) {
    *missing = 1;
    return NULL;
  }
  if (sb.st_size > MAX_META_BYTES) {
    ts_fail(err, TS_ERR_FORMAT, "%s: %lld bytes of metadata; more than tessera reads", p, (long long)sb.st_size);
    return NULL;
  }
  ts_blob b = {0};
  if (ts_read_regular(p, "Zarr metadata", &b, err)) return NULL;
  json_error_t je;
  json_t *j = json_loadb((const char *)b.p, b.size, JSON_REJECT_DUPLICATES, &je);
  ts_blob_free(&b);
  if (!j) ts_fail(err, TS_ERR_FORMAT, "%s: not valid JSON (line %d: %s)", p, je.line, je.text);
  return j;
}

static int get_ints(const json_t *a, int64_t *v, int max) {
  if (!json_is_array(a) || (int)json_array_size(a) > max) return -1;
  for (size_t i = 0; i < json_array_size(a); i++) {
    const json_t *x = json_array_get(a, i);
    if (!json_is_integer(x) || json_integer_value(x) < 0) return -1;
    v[i] = json_integer_value(x);
  }
  return (int)json_array_size(a);
}

static double fill_of(const json_t *f) {
  if (json_is_number(f)) return json_number_value(f);
  const char *s = json_string_value(f);
  if (s && strcmp(s, "NaN") == 0) return NAN;
  if (s && strcmp(s, "Infinity") == 0) return INFINITY;
  if (s && strcmp(s, "-Infinity") == 0) return -INFINITY;
  return 0;
}

/* v2's .zarray. */
static ts_status parse_v2(zarr_reader *r, const json_t *a, ts_error *err) {
  const char *who = r->name;
  int nd = get_ints(json_object_get(a, "shape"), r->shape, 4), nc = get_ints(json_object_get(a, "chunks"), r->chunk, 4);
  if (nd < 2 || nc != nd) return ts_fail(err, TS_ERR_FORMAT, "%s: shape and chunks must be 2-D (y, x), 3-D (c, y, x) or a stack", who);
  r->nd = nd;
  const char *order = json_string_value(json_object_get(a, "order"));
  if (order && strcmp(order, "C") != 0)
    return ts_fail(err, TS_ERR_FORMAT, "%s: order \"%s\"; tessera reads C-order arrays", who, order);
  const json_t *filters = json_object_get(a, "filters");
  if (filters && !json_is_null(filters) && !(json_is_array(filters) && json_array_size(filters) == 0))
    return ts_fail(err, TS_ERR_FORMAT, "%s: has filters; tessera reads arrays without them", who);
  ts_dtype d;
  const char *dt = json_string_value(json_object_get(a, "dtype"));
  if (ts_zarr_parse_dtype_v2(dt, &d, &r->big))
    return ts_fail(err, TS_ERR_FORMAT, "%s: dtype %s; tessera reads u1, u2 and f4", who, dt ? dt : "?");
  r->info.dtype = d;
  const char *sep = json_string_value(json_object_get(a, "dimension_separator"));
  r->sep = sep && strcmp(sep, "/") == 0 ? '/' : '.';
  r->fill = fill_of(json_object_get(a, "fill_value"));
  return ts_zarr_parse_v2(json_object_get(a, "compressor"), (int)ts_dtype_size(d), &r->codec, who, err);
}

/* v3's array zarr.json: bytes + one compressor, or sharding_indexed of that. */
static ts_status parse_codecs(zarr_reader *r, const json_t *codecs, ts_error *err) {
  const char *who = r->name;
  size_t n = json_array_size(codecs);
  if (n < 1 || n > 2) return ts_fail(err, TS_ERR_FORMAT, "%s: %zu codecs; tessera reads bytes and one compressor", who, n);
  const json_t *b = json_array_get(codecs, 0);
  const char *name = json_string_value(json_object_get(b, "name"));
  if (!name || strcmp(name, "bytes") != 0)
    return ts_fail(err, TS_ERR_FORMAT, "%s: codec %s first; tessera reads arrays whose first codec is bytes", who,
                   name ? name : "?");
  const char *endian = json_string_value(json_object_get(json_object_get(b, "configuration"), "endian"));
  r->big = endian && strcmp(endian, "big") == 0;
  if (n == 1) return TS_OK;
  return ts_zarr_parse_v3(json_array_get(codecs, 1), (int)r->es, &r->codec, who, err);
}

static ts_status parse_v3(zarr_reader *r, const json_t *a, ts_error *err) {
  const char *who = r->name;
  int nd = get_ints(json_object_get(a, "shape"), r->shape, 4);
  const json_t *grid = json_object_get(a, "chunk_grid");
  const char *gname = json_string_value(json_object_get(grid, "name"));
  int nc = get_ints(json_object_get(json_object_get(grid, "configuration"), "chunk_shape"), r->chunk, 4);
  if (nd < 2 || nc != nd || !gname || strcmp(gname, "regular") != 0)
    return ts_fail(err, TS_ERR_FORMAT, "%s: shape and a regular chunk grid must be 2-D (y, x), 3-D (c, y, x) or a stack", who);
  r->nd = nd;
  ts_dtype d;
  const char *dt = json_string_value(json_object_get(a, "data_type"));
  if (ts_zarr_parse_dtype_v3(dt, &d))
    return ts_fail(err, TS_ERR_FORMAT, "%s: data_type %s; tessera reads uint8, uint16 and float32", who, dt ? dt : "?");
  r->info.dtype = d;
  r->es = ts_dtype_size(d);
  const json_t *ke = json_object_get(a, "chunk_key_encoding");
  const char *kname = json_string_value(json_object_get(ke, "name"));
  const char *sep = json_string_value(json_object_get(json_object_get(ke, "configuration"), "separator"));
  r->v3_prefix = !kname || strcmp(kname, "v2") != 0;
  r->sep = sep ? sep[0] : r->v3_prefix ? '/' : '.';
  r->fill = fill_of(json_object_get(a, "fill_value"));
  const json_t *codecs = json_object_get(a, "codecs");
  const json_t *c0 = json_array_get(codecs, 0);
  const char *c0n = json_string_value(json_object_get(c0, "name"));
  if (c0n && strcmp(c0n, "sharding_indexed") == 0 && json_array_size(codecs) == 1) {
    const json_t *cfg = json_object_get(c0, "configuration");
    memcpy(r->shard, r->chunk, sizeof r->shard);
    if (get_ints(json_object_get(cfg, "chunk_shape"), r->chunk, 4) != nd)
      return ts_fail(err, TS_ERR_FORMAT, "%s: sharding_indexed without a %d-D chunk_shape", who, nd);
    for (int i = 0; i < nd; i++)
      if (r->chunk[i] <= 0 || r->shard[i] % r->chunk[i])
        return ts_fail(err, TS_ERR_FORMAT, "%s: inner chunks do not divide the shard", who);
    const char *loc = json_string_value(json_object_get(cfg, "index_location"));
    r->index_end = !loc || strcmp(loc, "start") != 0;
    const json_t *ic = json_object_get(cfg, "index_codecs");
    for (size_t i = 0; i < json_array_size(ic); i++) {
      const char *n = json_string_value(json_object_get(json_array_get(ic, i), "name"));
      if (n && strcmp(n, "crc32c") == 0) r->index_crc = 1;
      else if (!n || strcmp(n, "bytes") != 0)
        return ts_fail(err, TS_ERR_FORMAT, "%s: shard index codec %s; tessera reads bytes and crc32c", who, n ? n : "?");
    }
    return parse_codecs(r, json_object_get(cfg, "codecs"), err);
  }
  return parse_codecs(r, codecs, err);
}

/* The multiscales of a group's attributes: level L's dataset path, the
 * level count, and the pixel size when the axes carry a length unit. */
static ts_status pick_level(zarr_reader *r, const json_t *attrs, int64_t level, char *sub, size_t cap, ts_error *err) {
  const json_t *ms = json_array_get(json_object_get(attrs, "multiscales"), 0);
  const json_t *ds = json_object_get(ms, "datasets");
  if (!json_is_array(ds) || json_array_size(ds) == 0)
    return ts_fail(err, TS_ERR_FORMAT, "%s: a group with no multiscales datasets; name an array inside it "
                   "(%s/PATH)", r->name, r->name);
  r->info.levels = (int64_t)json_array_size(ds);
  if (level >= r->info.levels) return TS_OK; /* format.c names the range */
  const char *p = json_string_value(json_object_get(json_array_get(ds, (size_t)level), "path"));
  if (!p || strstr(p, "..") || p[0] == '/')
    return ts_fail(err, TS_ERR_FORMAT, "%s: dataset %lld has no usable path", r->name, (long long)level);
  snprintf(sub, cap, "%s", p);
  /* axes [c,] y, x, and the first scale transform of level 0 */
  const json_t *axes = json_object_get(ms, "axes");
  const size_t na = json_array_size(axes);
  double to_um = 0;
  const char *unit = na ? json_string_value(json_object_get(json_array_get(axes, na - 1), "unit")) : NULL;
  if (unit) to_um = !strcmp(unit, "micrometer") ? 1 : !strcmp(unit, "nanometer") ? 1e-3 : !strcmp(unit, "millimeter") ? 1e3 : 0;
  const json_t *t = json_array_get(json_object_get(json_array_get(ds, 0), "coordinateTransformations"), 0);
  const json_t *sc = json_object_get(t, "scale");
  const size_t ns = json_array_size(sc);
  if (to_um > 0 && ns >= 2) {
    r->meta.um_y = json_number_value(json_array_get(sc, ns - 2)) * to_um;
    r->meta.um_x = json_number_value(json_array_get(sc, ns - 1)) * to_um;
  }
  for (size_t i = 0; i < na; i++) {
    const char *n = json_string_value(json_object_get(json_array_get(axes, i), "name"));
    const char *want = i + 2 == na ? "y" : i + 1 == na ? "x" : "c";
    if (!n || strcmp(n, want) != 0 || na > 3)
      return ts_fail(err, TS_ERR_FORMAT, "%s: axes must be [c,] y, x; axis %zu is '%s'", r->name, i, n ? n : "?");
  }
  return TS_OK;
}

/* The array at r->path: its metadata, parsed. */
static ts_status read_meta(zarr_reader *r, ts_error *err) {
  int missing2 = 0, missing3 = 0;
  ts_status st = TS_OK;
  json_t *a = load_json(r->path, ".zarray", &missing2, err);
  if (a) {
    st = parse_v2(r, a, err);
  } else if (missing2) {
    json_t *j = load_json(r->path, "zarr.json", &missing3, err);
    const char *node = json_string_value(json_object_get(j, "node_type"));
    if (j && (!node || strcmp(node, "array") != 0))
      st = ts_fail(err, TS_ERR_FORMAT, "%s: zarr.json is not an array's (node_type %s)", r->name, node ? node : "?");
    else if (j)
      r->v3 = 1, st = parse_v3(r, j, err);
    else if (missing3)
      st = ts_fail(err, TS_ERR_FORMAT, "%s: no Zarr array here (no .zarray or zarr.json)", r->name);
    else
      st = TS_ERR_FORMAT; /* load_json said why */
    a = j;
  } else {
    st = TS_ERR_FORMAT;
  }
  json_decref(a);
  if (st) return st;
  r->es = ts_dtype_size(r->info.dtype);
  return TS_OK;
}

/* A tile-mode image: (y, x) or (c, y, x), its chunk grid and cache. */
static ts_status open_image(zarr_reader *r, ts_error *err) {
  ts_status st = read_meta(r, err);
  if (st) return st;
  const int nd = r->nd;
  if (nd == 4 || (nd == 3 && r->shape[0] > TS_MAX_CHANNELS))
    return ts_fail(err, TS_ERR_USAGE, "%s: a stack of %lld images, which list mode reads one image per task", r->name,
                   (long long)r->shape[0]);
  r->info.channels = nd == 3 ? (int)r->shape[0] : 1;
  /* (c, y, x): the channels in one chunk, or in several (one a chunk, as
   * many NGFF writers store them): a block is every channel's chunk */
  const int64_t cc = nd == 3 ? r->chunk[0] : 1;
  if (nd == 3 && (r->shape[0] < 1 || cc < 1))
    return ts_fail(err, TS_ERR_FORMAT, "%s: a (c, y, x) array of %lld channels in chunks of %lld", r->name,
                   (long long)r->shape[0], (long long)cc);
  r->groups = nd == 3 ? (r->shape[0] + cc - 1) / cc : 1;
  if (r->groups > 1 && r->shard[0])
    return ts_fail(err, TS_ERR_FORMAT, "%s: a sharded array with its channels in several chunks; tessera reads "
                   "sharded (c, y, x) arrays with every channel in one chunk", r->name);
  const int64_t h = r->shape[nd - 2], w = r->shape[nd - 1], ch = r->chunk[nd - 2], cw = r->chunk[nd - 1];
  if (ch <= 0 || cw <= 0 || (double)ch * (double)cw * (double)r->es * (double)(cc > r->info.channels ? cc : r->info.channels) >
                                (double)MAX_CHUNK_BYTES)
    return ts_fail(err, TS_ERR_FORMAT, "%s: chunks of %lld x %lld; each must hold 1 to %zu bytes", r->name,
                   (long long)ch, (long long)cw, MAX_CHUNK_BYTES);
  r->info.w = w;
  r->info.h = h;
  r->info.block_w = cw;
  r->info.block_h = ch;
  r->chunk_bytes = (size_t)(ch * cw) * r->es * (size_t)cc;
  r->block_bytes = (size_t)(ch * cw) * r->es * (size_t)r->info.channels;
  if (r->chunk_bytes != r->block_bytes && !(r->group = malloc(r->chunk_bytes)))
    return ts_fail(err, TS_ERR_NOMEM, "out of memory for a chunk");
  r->gx = (w + cw - 1) / cw;
  r->gy = (h + ch - 1) / ch;
  snprintf(r->info.format, sizeof r->info.format, "zarr v%d", r->v3 ? 3 : 2);
  static const char *const kinds[] = {"none", "zlib", "gzip", "zstd", "blosc"};
  snprintf(r->info.detail, sizeof r->info.detail, "Zarr v%d array, chunks %lld x %lld%s, compressor %s", r->v3 ? 3 : 2,
           (long long)cw, (long long)ch, r->shard[0] ? " in shards" : "", kinds[r->codec.kind]);
  return TS_OK;
}

static ts_status zr_open(const char *path, int64_t page, void **ctx, ts_image_info *info, ts_error *err) {
  if (page > 0) return ts_fail(err, TS_ERR_USAGE, "%s: a Zarr array has one image; --page %lld is not one", path, (long long)page);
  zarr_reader *r = calloc(1, sizeof *r);
  if (!r) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  r->index_of = -1;
  r->info = *info;
  r->info.levels = 1;
  r->name = strdup(path);
  size_t n = strlen(path);
  while (n > 1 && path[n - 1] == '/') n--;
  r->path = strndup(path, n);
  ts_status st = r->name && r->path ? TS_OK : ts_fail(err, TS_ERR_NOMEM, "out of memory");
  struct stat sb;
  if (st == TS_OK && stat(r->path, &sb) != 0)
    st = ts_fail(err, TS_ERR_IO, "%s: cannot open input: %s", path, strerror(errno));
  else if (st == TS_OK && !S_ISDIR(sb.st_mode))
    st = ts_fail(err, TS_ERR_FORMAT, "%s: not a directory (a Zarr store or array is one)", path);
  /* a group: its multiscales pick the level's array */
  int m2 = 0, m3 = 0;
  json_t *g = st ? NULL : load_json(r->path, ".zattrs", &m2, err);
  json_t *g3 = st || g || !m2 ? NULL : load_json(r->path, "zarr.json", &m3, err);
  const json_t *attrs = g;
  if (g3) {
    const char *node = json_string_value(json_object_get(g3, "node_type"));
    const json_t *at = json_object_get(g3, "attributes");
    attrs = node && strcmp(node, "group") == 0 ? (json_object_get(at, "ome") ? json_object_get(at, "ome") : at) : NULL;
  }
  if (st == TS_OK && !g && !m2) st = TS_ERR_FORMAT; /* load_json said why */
  if (st == TS_OK && attrs && json_object_get(attrs, "multiscales")) {
    char sub[1024];
    st = pick_level(r, attrs, info->level, sub, sizeof sub, err);
    if (st == TS_OK && info->level < r->info.levels) {
      char *p = malloc(strlen(r->path) + strlen(sub) + 2);
      if (p) sprintf(p, "%s/%s", r->path, sub);
      free(r->path);
      r->path = p;
      st = p ? TS_OK : ts_fail(err, TS_ERR_NOMEM, "out of memory");
    }
  }
  json_decref(g);
  json_decref(g3);
  if (st == TS_OK && info->level >= r->info.levels)
    st = ts_fail(err, TS_ERR_USAGE, "%s: has %lld level(s), 0 to %lld; --input-level %lld is not one", path,
                 (long long)r->info.levels, (long long)r->info.levels - 1, (long long)info->level);
  r->info.level = info->level;
  if (st == TS_OK) st = open_image(r, err);
  if (st == TS_OK) {
    r->cap = 4;
    r->cache = calloc((size_t)r->cap, sizeof *r->cache);
    for (int64_t i = 0; r->cache && i < r->cap; i++) r->cache[i].index = -1;
    if (!r->cache) st = ts_fail(err, TS_ERR_NOMEM, "out of memory");
  }
  if (st) {
    zr_close(r);
    return st;
  }
  *info = r->info;
  *ctx = r;
  return TS_OK;
}

static void zr_set_cache(void *ctx, int64_t blocks) {
  zarr_reader *r = ctx;
  if (blocks <= r->cap) return;
  zblock *c = realloc(r->cache, (size_t)blocks * sizeof *c);
  if (!c) return;
  for (int64_t i = r->cap; i < blocks; i++) c[i] = (zblock){.index = -1};
  r->cache = c;
  r->cap = blocks;
}

/* The key of the chunk (or shard) at grid coordinates g[0..nd). */
static void key_at(const zarr_reader *r, const int64_t *g, char *k, size_t cap) {
  const char s = r->sep;
  size_t n = 0;
  if (r->v3_prefix && r->v3) n += (size_t)snprintf(k, cap, "c%c", s);
  for (int i = 0; i < r->nd && n < cap; i++)
    n += (size_t)snprintf(k + n, cap - n, "%s%lld", i ? (char[]){s, 0} : "", (long long)g[i]);
}

/* ... of chunk (cy, cx) of an image, channel chunk cz of a 3-D one. */
static void key_of(const zarr_reader *r, int64_t cz, int64_t cy, int64_t cx, char *k, size_t cap) {
  const int64_t g[3] = {r->nd == 3 ? cz : cy, r->nd == 3 ? cy : cx, cx};
  key_at(r, g, k, cap);
}

/* Read the file at key into r->raw (*absent: no such file). */
static ts_status read_key(zarr_reader *r, const char *key, uint64_t off, uint64_t len, int whole, int *absent,
                          ts_error *err) {
  char p[4096];
  snprintf(p, sizeof p, "%s/%s", r->path, key);
  *absent = 0;
  r->raw.size = 0;
  int fd = open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT) return *absent = 1, TS_OK;
    return ts_fail(err, TS_ERR_IO, "%s: cannot open chunk: %s", p, strerror(errno));
  }
  struct stat sb;
  ts_status st = fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) ? ts_fail(err, TS_ERR_FORMAT, "%s: not a regular file", p) : TS_OK;
  const uint64_t size = st ? 0 : (uint64_t)sb.st_size;
  if (whole) off = 0, len = size;
  const uint64_t most = ts_zarr_bound(&r->codec, r->chunk_bytes) + 4096;
  if (st == TS_OK && (off > size || len > size - off))
    st = ts_fail(err, TS_ERR_FORMAT, "%s: %llu bytes; its index points past them", p, (unsigned long long)size);
  else if (st == TS_OK && len > most && !r->shard[0])
    st = ts_fail(err, TS_ERR_FORMAT, "%s: %llu bytes, more than a %zu-byte chunk can take", p, (unsigned long long)len, r->chunk_bytes);
  if (st == TS_OK && ts_blob_reserve(&r->raw, (size_t)len)) st = ts_fail(err, TS_ERR_NOMEM, "out of memory for a chunk");
  if (st == TS_OK && pread(fd, r->raw.p, (size_t)len, (off_t)off) != (ssize_t)len)
    st = ts_fail(err, TS_ERR_IO, "%s: short read", p);
  if (st == TS_OK) r->raw.size = (size_t)len;
  close(fd);
  return st;
}

static uint64_t le64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

/* The raw bytes of chunk (cz, cy, cx): a file, or a piece of its shard
 * (whose arrays hold every channel in one chunk: cz 0). */
static ts_status fetch_raw(zarr_reader *r, int64_t cz, int64_t cy, int64_t cx, int *absent, ts_error *err) {
  char key[256];
  const int nd = r->nd;
  if (!r->shard[0]) {
    key_of(r, cz, cy, cx, key, sizeof key);
    return read_key(r, key, 0, 0, 1, absent, err);
  }
  const int64_t sh = r->shard[nd - 2] / r->chunk[nd - 2], sw = r->shard[nd - 1] / r->chunk[nd - 1];
  const int64_t sy = cy / sh, sx = cx / sw, n = sh * sw, sgx = (r->info.w + r->shard[nd - 1] - 1) / r->shard[nd - 1];
  key_of(r, 0, sy, sx, key, sizeof key);
  const size_t ibytes = (size_t)n * 16 + (r->index_crc ? 4 : 0);
  if ((size_t)n * 16 > MAX_CHUNK_BYTES) return ts_fail(err, TS_ERR_FORMAT, "%s: shards of %lld chunks", r->name, (long long)n);
  if (r->index_of != sy * sgx + sx) { /* the shard's index: at its end (or start) */
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", r->path, key);
    struct stat sb;
    if (stat(p, &sb) != 0) return *absent = 1, TS_OK;
    if ((uint64_t)sb.st_size < ibytes) return ts_fail(err, TS_ERR_FORMAT, "%s: a shard smaller than its index", p);
    ts_status st = read_key(r, key, r->index_end ? (uint64_t)sb.st_size - ibytes : 0, ibytes, 0, absent, err);
    if (st || *absent) return st;
    if (r->index_crc) {
      uint32_t want = (uint32_t)r->raw.p[ibytes - 4] | (uint32_t)r->raw.p[ibytes - 3] << 8 |
                      (uint32_t)r->raw.p[ibytes - 2] << 16 | (uint32_t)r->raw.p[ibytes - 1] << 24;
      if (ts_crc32c(r->raw.p, ibytes - 4) != want) return ts_fail(err, TS_ERR_FORMAT, "%s: the shard index's CRC-32C is wrong", p);
    }
    r->shard_index.size = 0;
    if (ts_blob_append(&r->shard_index, r->raw.p, (size_t)n * 16)) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
    r->index_of = sy * sgx + sx;
  }
  const int64_t i = (cy % sh) * sw + cx % sw;
  const uint64_t off = le64(r->shard_index.p + i * 16), len = le64(r->shard_index.p + i * 16 + 8);
  if (off == UINT64_MAX && len == UINT64_MAX) return *absent = 1, TS_OK;
  if (len > ts_zarr_bound(&r->codec, r->chunk_bytes) + 4096)
    return ts_fail(err, TS_ERR_FORMAT, "%s/%s: inner chunk %lld claims %llu bytes", r->path, key, (long long)i, (unsigned long long)len);
  return read_key(r, key, off, len, 0, absent, err);
}

/* n bytes of the fill value at d. */
static void fill_block(const zarr_reader *r, unsigned char *d, size_t bytes) {
  const size_t n = bytes / r->es;
  if (r->fill == 0) {
    memset(d, 0, bytes);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    if (r->info.dtype == TS_U8) d[i] = (unsigned char)r->fill;
    else if (r->info.dtype == TS_U16) ((uint16_t *)d)[i] = (uint16_t)r->fill;
    else ((float *)d)[i] = (float)r->fill;
  }
}

static void swap_bytes(unsigned char *d, size_t n, size_t es) {
  for (size_t i = 0; i + es <= n; i += es)
    for (size_t a = 0, b = es - 1; a < b; a++, b--) {
      unsigned char t = d[i + a];
      d[i + a] = d[i + b];
      d[i + b] = t;
    }
}

static ts_status get_block(zarr_reader *r, int64_t cy, int64_t cx, const unsigned char **out, ts_error *err) {
  const int64_t index = cy * r->gx + cx;
  zblock *victim = &r->cache[0];
  for (int64_t i = 0; i < r->cap; i++) {
    zblock *b = &r->cache[i];
    if (b->index == index) {
      b->used = ++r->clock;
      *out = b->data;
      return TS_OK;
    }
    if (b->index < 0 || b->used < victim->used) victim = b;
  }
  if (!victim->data && !(victim->data = malloc(r->block_bytes))) return ts_fail(err, TS_ERR_NOMEM, "out of memory for a chunk");
  victim->index = -1;
  /* one chunk file, or one per channel group, each at its planes */
  const size_t plane = r->chunk_bytes / (size_t)(r->nd == 3 ? r->chunk[0] : 1);
  for (int64_t cz = 0; cz < r->groups; cz++) {
    unsigned char *to = r->group ? r->group : victim->data;
    int absent;
    ts_status st = fetch_raw(r, cz, cy, cx, &absent, err);
    if (st) return st;
    if (absent) fill_block(r, to, r->chunk_bytes);
    else if (ts_zarr_decode(&r->codec, &r->zs, r->raw.p, r->raw.size, to, r->chunk_bytes))
      return ts_fail(err, TS_ERR_FORMAT, "%s: chunk (%lld, %lld) is corrupt or does not decode to %zu bytes", r->path,
                     (long long)cy, (long long)cx, r->chunk_bytes);
    else if (r->big && r->es > 1)
      swap_bytes(to, r->chunk_bytes, r->es);
    if (r->group) { /* its planes that lie inside the array */
      const size_t at = (size_t)(cz * r->chunk[0]) * plane;
      memcpy(victim->data + at, to, at + r->chunk_bytes <= r->block_bytes ? r->chunk_bytes : r->block_bytes - at);
    }
  }
  victim->index = index;
  victim->used = ++r->clock;
  *out = victim->data;
  return TS_OK;
}

static ts_status zr_read(void *ctx, ts_rect rect, void *dst, int64_t stride, ts_error *err) {
  zarr_reader *r = ctx;
  const int64_t cw = r->info.block_w, ch = r->info.block_h;
  const int C = r->info.channels;
  const size_t es = r->es, plane = (size_t)(cw * ch) * es;
  for (int64_t cy = rect.y / ch; cy <= (rect.y + rect.h - 1) / ch; cy++)
    for (int64_t cx = rect.x / cw; cx <= (rect.x + rect.w - 1) / cw; cx++) {
      const unsigned char *b = NULL;
      ts_status st = get_block(r, cy, cx, &b, err);
      if (st) return st;
      const int64_t x0 = cx * cw > rect.x ? cx * cw : rect.x, y0 = cy * ch > rect.y ? cy * ch : rect.y;
      const int64_t x1 = (cx + 1) * cw < rect.x + rect.w ? (cx + 1) * cw : rect.x + rect.w;
      const int64_t y1 = (cy + 1) * ch < rect.y + rect.h ? (cy + 1) * ch : rect.y + rect.h;
      for (int64_t y = y0; y < y1; y++) {
        unsigned char *to = (unsigned char *)dst + (y - rect.y) * stride + (size_t)(x0 - rect.x) * es * (size_t)C;
        const unsigned char *from = b + (size_t)((y - cy * ch) * cw + (x0 - cx * cw)) * es;
        if (C == 1) {
          memcpy(to, from, (size_t)(x1 - x0) * es);
          continue;
        }
        for (int64_t x = 0; x < x1 - x0; x++) /* planes to interleaved */
          for (int c = 0; c < C; c++) memcpy(to + ((size_t)x * C + c) * es, from + c * plane + (size_t)x * es, es);
      }
    }
  return TS_OK;
}

static const ts_image_meta *zr_meta(void *ctx) {
  zarr_reader *r = ctx;
  return r->meta.um_x > 0 ? &r->meta : NULL;
}

const ts_reader_ops ts_zarr_reader_ops = {
    .name = "zarr", .open = zr_open, .set_cache = zr_set_cache, .read = zr_read, .close = zr_close, .meta = zr_meta,
};

/* ---- a stack of images (list mode): N x H x W [x C] ---- */

struct ts_zarr_stack {
  zarr_reader *r;
  int64_t n, w, h, gy, gx;
  int channels;
  size_t chunk_bytes; /* a decoded chunk: chunk[0] images' tiles */
  unsigned char *last;
  int64_t last_at; /* the chunk `last` holds (-1: none) */
};

void ts_zarr_stack_close(ts_zarr_stack *z) {
  if (!z) return;
  zr_close(z->r);
  free(z->last);
  free(z);
}

ts_status ts_zarr_stack_open(const char *path, ts_zarr_stack **out, ts_image_info *info, int64_t *n, ts_error *err) {
  *out = NULL;
  ts_zarr_stack *z = calloc(1, sizeof *z);
  zarr_reader *r = z ? calloc(1, sizeof *r) : NULL;
  if (!r) {
    free(z);
    return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  }
  z->r = r;
  z->last_at = -1;
  r->index_of = -1;
  size_t len = strlen(path);
  while (len > 1 && path[len - 1] == '/') len--;
  r->name = strdup(path);
  r->path = strndup(path, len);
  ts_status st = r->name && r->path ? read_meta(r, err) : ts_fail(err, TS_ERR_NOMEM, "out of memory");
  const int nd = r->nd;
  if (st == TS_OK && (nd < 3 || (nd == 4 && (r->shape[3] < 1 || r->shape[3] > TS_MAX_CHANNELS || r->chunk[3] != r->shape[3]))))
    st = ts_fail(err, TS_ERR_FORMAT, "%s: a stack is N x H x W or N x H x W x C (1 to %d channels in one chunk)", path,
                 TS_MAX_CHANNELS);
  if (st == TS_OK && r->shard[0])
    st = ts_fail(err, TS_ERR_FORMAT, "%s: a sharded stack; tessera reads unsharded stacks", path);
  if (st == TS_OK) {
    z->n = r->shape[0], z->h = r->shape[1], z->w = r->shape[2], z->channels = nd == 4 ? (int)r->shape[3] : 1;
    for (int i = 0; i < 3; i++)
      if (r->chunk[i] <= 0) st = ts_fail(err, TS_ERR_FORMAT, "%s: a chunk dimension of 0", path);
    const double bytes = (double)r->chunk[0] * (double)r->chunk[1] * (double)r->chunk[2] * z->channels * (double)r->es;
    if (st == TS_OK && bytes > (double)MAX_CHUNK_BYTES)
      st = ts_fail(err, TS_ERR_FORMAT, "%s: chunks of %.0f bytes; tessera reads at most %zu", path, bytes, MAX_CHUNK_BYTES);
    if (st == TS_OK && (z->w < 1 || z->h < 1)) st = ts_fail(err, TS_ERR_FORMAT, "%s: empty images", path);
    if (st == TS_OK) {
      z->chunk_bytes = r->chunk_bytes = (size_t)bytes;
      z->gy = (z->h + r->chunk[1] - 1) / r->chunk[1];
      z->gx = (z->w + r->chunk[2] - 1) / r->chunk[2];
      if (!(z->last = malloc(z->chunk_bytes))) st = ts_fail(err, TS_ERR_NOMEM, "out of memory for a chunk");
    }
  }
  if (st) {
    ts_zarr_stack_close(z);
    return st;
  }
  *info = (ts_image_info){.w = z->w, .h = z->h, .channels = z->channels, .dtype = r->info.dtype, .pages = 1,
                          .levels = 1, .block_w = r->chunk[2], .block_h = r->chunk[1]};
  snprintf(info->format, sizeof info->format, "zarr v%d", r->v3 ? 3 : 2);
  *n = z->n;
  *out = z;
  return TS_OK;
}

ts_status ts_zarr_stack_read(ts_zarr_stack *z, int64_t i, void *dst, ts_error *err) {
  zarr_reader *r = z->r;
  const int64_t cn = i / r->chunk[0], k = i % r->chunk[0], ch = r->chunk[1], cw = r->chunk[2];
  const size_t px = r->es * (size_t)z->channels, plane = (size_t)(ch * cw) * px;
  for (int64_t cy = 0; cy < z->gy; cy++)
    for (int64_t cx = 0; cx < z->gx; cx++) {
      const int64_t at = (cn * z->gy + cy) * z->gx + cx;
      if (z->last_at != at) {
        const int64_t g[4] = {cn, cy, cx, 0};
        char key[256];
        key_at(r, g, key, sizeof key);
        int absent;
        z->last_at = -1;
        ts_status st = read_key(r, key, 0, 0, 1, &absent, err);
        if (st) return st;
        if (absent) fill_block(r, z->last, z->chunk_bytes);
        else if (ts_zarr_decode(&r->codec, &r->zs, r->raw.p, r->raw.size, z->last, z->chunk_bytes))
          return ts_fail(err, TS_ERR_FORMAT, "%s: chunk %s is corrupt or does not decode to %zu bytes", r->path, key,
                         z->chunk_bytes);
        else if (r->big && r->es > 1)
          swap_bytes(z->last, z->chunk_bytes, r->es);
        z->last_at = at;
      }
      const int64_t y1 = (cy + 1) * ch < z->h ? (cy + 1) * ch : z->h, x1 = (cx + 1) * cw < z->w ? (cx + 1) * cw : z->w;
      for (int64_t y = cy * ch; y < y1; y++)
        memcpy((unsigned char *)dst + ((size_t)(y * z->w) + (size_t)(cx * cw)) * px,
               z->last + (size_t)k * plane + (size_t)((y - cy * ch) * cw) * px, (size_t)(x1 - cx * cw) * px);
    }
  return TS_OK;
}

int ts_zarr_is_stack(const char *path) {
  int missing;
  ts_error e = {0};
  json_t *a = load_json(path, ".zarray", &missing, &e);
  if (!a) a = load_json(path, "zarr.json", &missing, &e);
  int64_t shape[4] = {0};
  const json_t *sh = json_object_get(a, "shape");
  const int nd = json_is_array(sh) && json_array_size(sh) <= 4 ? get_ints(sh, shape, 4) : -1;
  json_decref(a);
  return nd == 4 || (nd == 3 && shape[0] > TS_MAX_CHANNELS);
}
