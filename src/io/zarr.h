/* Zarr stores, shared by the writer (zarr_write.c) and the reader
 * (zarr_read.c): the compressors a chunk goes through, and the words the
 * metadata uses for them and for element types. Internal to src/io. */
#ifndef TS_IO_ZARR_H
#define TS_IO_ZARR_H

#include <jansson.h>
#include "core/blob.h"
#include "core/zstream.h"
#include "tessera/io.h"

/* A chunk's compressor (Zarr v2's "compressor", v3's last codec). */
typedef enum ts_zarr_kind { TS_ZC_NONE = 0, TS_ZC_ZLIB, TS_ZC_GZIP, TS_ZC_ZSTD, TS_ZC_BLOSC } ts_zarr_kind;

typedef struct ts_zarr_codec {
  ts_zarr_kind kind;
  int level;      /* zlib 0..9, zstd 1..22, blosc clevel 0..9 */
  char cname[16]; /* blosc: lz4, zstd, blosclz, lz4hc, zlib */
  int shuffle;    /* blosc: 0 none, 1 byte, 2 bit */
  int typesize;   /* the element's bytes (blosc's shuffle needs it) */
} ts_zarr_codec;

/* The codec --compression c at --compression-level level (-1: the
 * default) makes for elements of dtype; a usage error for codecs Zarr has
 * no word for (lzw, jpeg). */
ts_status ts_zarr_codec_for(ts_compression c, int level, ts_dtype dtype, ts_zarr_codec *z, const char *path,
                            ts_error *err);

/* Per-thread codec state, allocated on first use and reused. */
typedef struct ts_zarr_state {
  ts_zstream z;
  void *zstd_c, *zstd_d; /* ZSTD_CCtx, ZSTD_DCtx */
} ts_zarr_state;
void ts_zarr_state_free(ts_zarr_state *s);

/* Upper bound of an encoded chunk of n bytes. */
size_t ts_zarr_bound(const ts_zarr_codec *z, size_t n);
/* Encode src[0..n) into dst (cap >= ts_zarr_bound): the size, 0 on failure.
 * TS_ZC_NONE is the caller's (no copy). */
size_t ts_zarr_encode(const ts_zarr_codec *z, ts_zarr_state *s, const void *src, size_t n, void *dst, size_t cap);
/* Decode exactly n bytes; 0 on success, -1 when corrupt or another size. */
int ts_zarr_decode(const ts_zarr_codec *z, ts_zarr_state *s, const void *src, size_t size, void *dst, size_t n);

/* Metadata: Zarr v2's compressor object (NULL: json null), and v3's
 * codec list after "bytes". Parse them back (a usage message naming
 * `what` for codecs tessera does not read). */
json_t *ts_zarr_compressor_v2(const ts_zarr_codec *z);
json_t *ts_zarr_codecs_v3(const ts_zarr_codec *z);
ts_status ts_zarr_parse_v2(const json_t *compressor, int typesize, ts_zarr_codec *z, const char *what, ts_error *err);
ts_status ts_zarr_parse_v3(const json_t *codec, int typesize, ts_zarr_codec *z, const char *what, ts_error *err);

/* Element types: v2 "|u1" "<u2" "<f4", v3 "uint8" "uint16" "float32".
 * Parse: 0, or -1 for a type tessera does not take (*big: v2 ">u2"). */
const char *ts_zarr_dtype_v2(ts_dtype d);
const char *ts_zarr_dtype_v3(ts_dtype d);
int ts_zarr_parse_dtype_v2(const char *s, ts_dtype *d, int *big);
int ts_zarr_parse_dtype_v3(const char *s, ts_dtype *d);

/* ---- v3 shards (zarr_shard.c), built by rank 0 ---- */
typedef struct ts_zshard_grid {
  int levels, channels;
  int64_t N;                                /* chunks per shard side */
  int64_t gx[TS_MAX_LEVELS], gy[TS_MAX_LEVELS]; /* chunks across and down per level */
} ts_zshard_grid;
typedef struct ts_zshards ts_zshards;
/* The shards of the store at dirfd (named store in messages); reopen: a
 * resume, the previous run's shards are loaded to be read and adopted. */
ts_status ts_zshards_open(ts_zshards **out, const ts_zshard_grid *g, int dirfd, const char *store, int reopen,
                          ts_error *err);
/* Shard rows of level L (directories to make). */
int64_t ts_zshards_rows(const ts_zshards *z, int L);
/* Append chunk (cy, cx) of level L to its shard (its index written once the shard is full). */
ts_status ts_zshards_put(ts_zshards *z, int L, int64_t cy, int64_t cx, const void *data, size_t size, ts_error *err);
/* A resume: the previous run's bytes of a chunk (0, or -1 when absent or of another size). */
int ts_zshards_read(ts_zshards *z, int L, int64_t cy, int64_t cx, uint64_t size, void *dst);
/* ... and the chunk is kept where it lies (call in store order). */
ts_status ts_zshards_adopt(ts_zshards *z, int L, int64_t cy, int64_t cx, ts_error *err);
/* A checkpoint, after the chunks are durable: the shards being filled write their sidecars. */
ts_status ts_zshards_sync(ts_zshards *z, ts_error *err);
/* The end: every shard gets its index (keep: a stopped run's, sidecars kept). */
ts_status ts_zshards_finish(ts_zshards *z, int keep, ts_error *err);
void ts_zshards_free(ts_zshards *z);

/* CRC-32C (Castagnoli), as the shard index's crc32c codec. */
uint32_t ts_crc32c(const void *p, size_t n);

/* Write a JSON document to dirfd/name (pretty, keys in insertion order,
 * trailing newline): the same bytes for the same document. */
ts_status ts_zarr_put_json(int dirfd, const char *name, const json_t *doc, const char *store, ts_error *err);

#endif
