/* Zarr v3 shards (the sharding_indexed codec) as rank 0 builds them:
 * each chunk appended to its shard's file as it is stored, in store
 * order, and the index (offset, size per chunk, ~0 ~0 for absent ones,
 * little-endian, then its CRC-32C) written at the end when the shard's
 * last chunk is in.
 *
 * Resume. A shard being filled has its chunks' places only in memory, so
 * every checkpoint (sync) writes them beside it, KEY.idx (the index so
 * far and the file's end), made durable with the chunks before the
 * journal lists them; a completed shard's sidecar goes. Reopened for a
 * resume, a shard's previous state is its sidecar's, or else the index
 * at its end (a shard completed before the kill); a file with neither is
 * dropped. The replay reads journaled chunks from there (CRC-checked by
 * the caller) and adopts them, in store order. At a shard's first new
 * chunk: if every chunk of its previous state was adopted, the file is
 * cut back to that state and filled on; else it is written anew from the
 * adopted chunks, in the order they were adopted (the order the first
 * run appended them). Either way the shard's bytes are those of an
 * uninterrupted run. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "io/zarr.h"

#define ABSENT UINT64_MAX

typedef struct zshard {
  int fd;             /* the file being filled (-1: not yet this run) */
  int done;           /* complete: its index is written */
  uint64_t end;
  int64_t want, got;  /* its chunks inside the level; those in the file */
  int prev;           /* a resume: 1 the sidecar's state, 2 a complete file's index, 0 none */
  uint64_t prev_end;
  int64_t prev_count; /* chunks the previous state lists */
  int64_t adopted;    /* of those, adopted by the replay */
  int64_t *order;     /* the adopted chunks' numbers in the shard, in adoption order */
  uint64_t *old;      /* the previous state's index (2 per chunk) */
  uint64_t index[];   /* this run's (2 per chunk) */
} zshard;

struct ts_zshards {
  ts_zshard_grid g;
  int dirfd;
  const char *store;
  int64_t nn;         /* chunks per shard, N * N */
  int64_t sgx[TS_MAX_LEVELS], sgy[TS_MAX_LEVELS], base[TS_MAX_LEVELS + 1];
  zshard **s;         /* per shard number: NULL until touched */
};

static int level_of(const ts_zshards *z, int64_t s) {
  int L = 0;
  while (L + 1 < z->g.levels && s >= z->base[L + 1]) L++;
  return L;
}

static void key(const ts_zshards *z, int64_t s, const char *suffix, char *name, size_t cap) {
  const int L = level_of(z, s);
  s -= z->base[L];
  snprintf(name, cap, "%d/c/%s%lld/%lld%s", L, z->g.channels > 1 ? "0/" : "", (long long)(s / z->sgx[L]),
           (long long)(s % z->sgx[L]), suffix);
}

/* Shard number and chunk-in-shard of chunk (cy, cx) of level L. */
static int64_t locate(const ts_zshards *z, int L, int64_t cy, int64_t cx, int64_t *i) {
  const int64_t N = z->g.N;
  *i = (cy % N) * N + cx % N;
  return z->base[L] + (cy / N) * z->sgx[L] + cx / N;
}

static zshard *state(ts_zshards *z, int64_t s) {
  if (z->s[s]) return z->s[s];
  const int64_t N = z->g.N, L = level_of(z, s), r = s - z->base[L], sy = r / z->sgx[L], sx = r % z->sgx[L];
  zshard *h = calloc(1, sizeof *h + (size_t)z->nn * 2 * sizeof(uint64_t));
  if (!h) return NULL;
  memset(h->index, 0xff, (size_t)z->nn * 2 * sizeof(uint64_t));
  h->fd = -1;
  const int64_t ny = z->g.gy[L] - sy * N < N ? z->g.gy[L] - sy * N : N, nx = z->g.gx[L] - sx * N < N ? z->g.gx[L] - sx * N : N;
  h->want = ny * nx;
  return z->s[s] = h;
}

static void le64s(unsigned char *b, const uint64_t *v, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    for (int k = 0; k < 8; k++) b[i * 8 + k] = (unsigned char)(v[i] >> (8 * k));
}

static void from_le64s(uint64_t *v, const unsigned char *b, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    v[i] = 0;
    for (int k = 7; k >= 0; k--) v[i] = v[i] << 8 | b[i * 8 + k];
  }
}

/* A resume: shard s's previous state, from its sidecar or its own index. */
static ts_status load(ts_zshards *z, int64_t s, ts_error *err) {
  char name[128], side[128];
  key(z, s, "", name, sizeof name);
  key(z, s, ".idx", side, sizeof side);
  struct stat sb, ib;
  const int have = fstatat(z->dirfd, name, &sb, 0) == 0, have_side = fstatat(z->dirfd, side, &ib, 0) == 0;
  if (!have && !have_side) return TS_OK;
  const size_t n = (size_t)z->nn * 16;
  unsigned char *b = malloc(n + 8);
  zshard *h = state(z, s);
  if (!b || !h) {
    free(b);
    return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  }
  int fd = openat(z->dirfd, have_side ? side : name, O_RDONLY | O_CLOEXEC), ok = fd >= 0;
  if (have_side) { /* the index so far, then the file's end */
    ok = ok && (uint64_t)ib.st_size == n + 8 && pread(fd, b, n + 8, 0) == (ssize_t)(n + 8);
  } else { /* complete: the index at its end, CRC-checked */
    ok = ok && (uint64_t)sb.st_size >= n + 4 && pread(fd, b, n + 4, sb.st_size - (off_t)(n + 4)) == (ssize_t)(n + 4);
    uint32_t c = 0;
    for (int k = 3; ok && k >= 0; k--) c = c << 8 | b[n + (size_t)k];
    ok = ok && ts_crc32c(b, n) == c;
  }
  if (fd >= 0) close(fd);
  if (ok && (h->old = malloc(n)) && (h->order = malloc((size_t)z->nn * sizeof *h->order))) {
    from_le64s(h->old, b, z->nn * 2);
    h->prev = have_side ? 1 : 2;
    if (have_side) from_le64s(&h->prev_end, b + n, 1);
    for (int64_t i = 0; i < z->nn; i++) h->prev_count += h->old[2 * i] != ABSENT;
  } else if (have && !have_side) { /* begun after the last checkpoint, never completed: nothing to keep */
    unlinkat(z->dirfd, name, 0);
  }
  free(b);
  return TS_OK;
}

ts_status ts_zshards_open(ts_zshards **out, const ts_zshard_grid *g, int dirfd, const char *store, int reopen,
                          ts_error *err) {
  ts_zshards *z = calloc(1, sizeof *z);
  if (!z) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  z->g = *g;
  z->dirfd = dirfd;
  z->store = store;
  z->nn = g->N * g->N;
  for (int L = 0; L < g->levels; L++) {
    z->sgx[L] = (g->gx[L] + g->N - 1) / g->N;
    z->sgy[L] = (g->gy[L] + g->N - 1) / g->N;
    z->base[L + 1] = z->base[L] + z->sgx[L] * z->sgy[L];
  }
  ts_status st = (z->s = calloc((size_t)z->base[g->levels] + 1, sizeof *z->s)) ? TS_OK
                                                                               : ts_fail(err, TS_ERR_NOMEM, "out of memory");
  for (int64_t s = 0; st == TS_OK && reopen && s < z->base[g->levels]; s++) st = load(z, s, err);
  if (st) {
    ts_zshards_free(z);
    return st;
  }
  *out = z;
  return TS_OK;
}

int64_t ts_zshards_rows(const ts_zshards *z, int L) { return z->sgy[L]; }

int ts_zshards_read(ts_zshards *z, int L, int64_t cy, int64_t cx, uint64_t size, void *dst) {
  int64_t i;
  const int64_t s = locate(z, L, cy, cx, &i);
  const zshard *h = z->s[s];
  if (!h || !h->prev || h->old[2 * i] == ABSENT || h->old[2 * i + 1] != size) return -1;
  char name[128];
  key(z, s, "", name, sizeof name);
  int fd = openat(z->dirfd, name, O_RDONLY | O_CLOEXEC);
  const int ok = fd >= 0 && pread(fd, dst, size, (off_t)h->old[2 * i]) == (ssize_t)size;
  if (fd >= 0) close(fd);
  return ok ? 0 : -1;
}

ts_status ts_zshards_adopt(ts_zshards *z, int L, int64_t cy, int64_t cx, ts_error *err) {
  int64_t i;
  zshard *h = z->s[locate(z, L, cy, cx, &i)];
  if (!h || !h->prev || h->fd >= 0)
    return ts_fail(err, TS_ERR_INTERNAL, "%s: a chunk adopted from no shard of the previous run", z->store);
  h->order[h->adopted++] = i;
  return TS_OK;
}

/* Shard s takes this run's chunks from here: cut back to its previous
 * state when all of it was adopted, else written anew from what was. */
static ts_status begin(ts_zshards *z, int64_t s, zshard *h, ts_error *err) {
  char name[128], tmp[140];
  key(z, s, "", name, sizeof name);
  if (h->prev == 1 && h->adopted == h->prev_count) {
    h->fd = openat(z->dirfd, name, O_WRONLY | O_CLOEXEC);
    if (h->fd < 0 || ftruncate(h->fd, (off_t)h->prev_end) != 0)
      return ts_fail(err, TS_ERR_IO, "%s/%s: cannot reopen a shard: %s", z->store, name, strerror(errno));
    memcpy(h->index, h->old, (size_t)z->nn * 2 * sizeof(uint64_t));
    h->end = h->prev_end;
    h->got = h->adopted;
    return TS_OK;
  }
  snprintf(tmp, sizeof tmp, "%s.tmp", name);
  h->fd = openat(z->dirfd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (h->fd < 0) return ts_fail(err, TS_ERR_IO, "%s/%s: cannot create a shard: %s", z->store, tmp, strerror(errno));
  ts_status st = TS_OK;
  if (h->adopted > 0) { /* the adopted chunks, copied in the order they were stored */
    int from = openat(z->dirfd, name, O_RDONLY | O_CLOEXEC);
    ts_blob b = {0};
    for (int64_t k = 0; st == TS_OK && k < h->adopted; k++) {
      const int64_t i = h->order[k];
      const uint64_t off = h->old[2 * i], n = h->old[2 * i + 1];
      if (from < 0 || ts_blob_reserve(&b, (size_t)n) || pread(from, b.p, n, (off_t)off) != (ssize_t)n ||
          pwrite(h->fd, b.p, n, (off_t)h->end) != (ssize_t)n)
        st = ts_fail(err, TS_ERR_IO, "%s/%s: cannot rebuild a shard: %s", z->store, name, strerror(errno));
      h->index[2 * i] = h->end;
      h->index[2 * i + 1] = n;
      h->end += n;
    }
    if (from >= 0) close(from);
    ts_blob_free(&b);
  }
  h->got = h->adopted;
  if (st == TS_OK && renameat(z->dirfd, tmp, z->dirfd, name) != 0)
    st = ts_fail(err, TS_ERR_IO, "%s/%s: cannot rename a rebuilt shard: %s", z->store, name, strerror(errno));
  return st;
}

/* The index (what is in, ~0 for the rest) and its CRC-32C at the end. */
static ts_status write_index(ts_zshards *z, zshard *h, ts_error *err) {
  const size_t n = (size_t)z->nn * 16;
  unsigned char *b = malloc(n + 4);
  if (!b) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  le64s(b, h->index, z->nn * 2);
  const uint32_t c = ts_crc32c(b, n);
  for (int k = 0; k < 4; k++) b[n + (size_t)k] = (unsigned char)(c >> (8 * k));
  ts_status st = pwrite(h->fd, b, n + 4, (off_t)h->end) == (ssize_t)(n + 4)
                     ? TS_OK : ts_fail(err, TS_ERR_IO, "%s: cannot write a shard's index: %s", z->store, strerror(errno));
  free(b);
  return st;
}

static ts_status complete(ts_zshards *z, int64_t s, zshard *h, ts_error *err) {
  ts_status st = write_index(z, h, err);
  if (close(h->fd) != 0 && st == TS_OK) st = ts_fail(err, TS_ERR_IO, "%s: cannot close a shard: %s", z->store, strerror(errno));
  h->fd = -1;
  h->done = 1;
  char side[128];
  key(z, s, ".idx", side, sizeof side);
  unlinkat(z->dirfd, side, 0); /* its own index says it all now */
  return st;
}

ts_status ts_zshards_put(ts_zshards *z, int L, int64_t cy, int64_t cx, const void *data, size_t size, ts_error *err) {
  int64_t i;
  const int64_t s = locate(z, L, cy, cx, &i);
  zshard *h = state(z, s);
  if (!h) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  ts_status st = h->fd < 0 ? begin(z, s, h, err) : TS_OK;
  if (st) return st;
  if (pwrite(h->fd, data, size, (off_t)h->end) != (ssize_t)size)
    return ts_fail(err, TS_ERR_IO, "%s: cannot write a shard: %s", z->store, strerror(errno));
  h->index[2 * i] = h->end;
  h->index[2 * i + 1] = size;
  h->end += size;
  return ++h->got == h->want ? complete(z, s, h, err) : TS_OK;
}

ts_status ts_zshards_sync(ts_zshards *z, ts_error *err) {
  const size_t n = (size_t)z->nn * 16;
  unsigned char *b = NULL;
  ts_status st = TS_OK;
  for (int64_t s = 0; st == TS_OK && s < z->base[z->g.levels]; s++) {
    zshard *h = z->s[s];
    if (!h || h->fd < 0 || h->done) continue;
    if (!b && !(b = malloc(n + 8))) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
    le64s(b, h->index, z->nn * 2);
    le64s(b + n, &h->end, 1);
    char side[128], tmp[140];
    key(z, s, ".idx", side, sizeof side);
    snprintf(tmp, sizeof tmp, "%s.tmp", side);
    int fd = openat(z->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    int ok = fd >= 0 && write(fd, b, n + 8) == (ssize_t)(n + 8);
    if (fd >= 0 && close(fd) != 0) ok = 0;
    if (!ok || renameat(z->dirfd, tmp, z->dirfd, side) != 0)
      st = ts_fail(err, TS_ERR_IO, "%s/%s: cannot write a shard's checkpoint: %s", z->store, side, strerror(errno));
  }
  free(b);
  return st;
}

ts_status ts_zshards_finish(ts_zshards *z, int keep, ts_error *err) {
  ts_status st = TS_OK;
  for (int64_t s = 0; st == TS_OK && s < z->base[z->g.levels]; s++) {
    zshard *h = z->s[s];
    if (!h || h->done) continue;
    if (keep) { /* readable as it is; the sidecar stays for the resume */
      if (h->fd >= 0) st = write_index(z, h, err);
      continue;
    }
    if (h->fd < 0 && h->prev == 2 && h->adopted == h->prev_count) continue; /* complete before, all of it adopted */
    if (h->fd < 0) st = begin(z, s, h, err);
    if (st == TS_OK) st = complete(z, s, h, err);
  }
  return st;
}

void ts_zshards_free(ts_zshards *z) {
  if (!z) return;
  for (int64_t s = 0; z->s && s < z->base[z->g.levels]; s++) {
    zshard *h = z->s[s];
    if (!h) continue;
    if (h->fd >= 0) close(h->fd);
    free(h->old);
    free(h->order);
    free(h);
  }
  free(z->s);
  free(z);
}
