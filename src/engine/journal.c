/* The journal of an unfinished output; see journal.h. */
#define _GNU_SOURCE /* syncfs */
#include "engine/journal.h"
#include "core/zstream.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include "core/clock.h"
#include "tessera/tessera.h"

uint32_t ts_crc32(const void *p, size_t n) { return ts_crc32_update(0, p, n); }

int ts_path_exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

/* Append one line "payload #crc\n" to b. */
static int add_line(ts_blob *b, const char *payload, size_t n) {
  char tail[16];
  snprintf(tail, sizeof tail, " #%08x\n", ts_crc32(payload, n));
  return ts_blob_append(b, payload, n) || ts_blob_append(b, tail, strlen(tail));
}

static int write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t k = write(fd, c, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    c += k;
    n -= (size_t)k;
  }
  return 0;
}

/* One system call per record, however the kernel splits it. */
static int writev_all(int fd, struct iovec *v, int n) {
  while (n > 0) {
    ssize_t k = writev(fd, v, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    while (n > 0 && (size_t)k >= v->iov_len) k -= (ssize_t)v->iov_len, v++, n--;
    if (n > 0) v->iov_base = (char *)v->iov_base + k, v->iov_len -= (size_t)k;
  }
  return 0;
}

static ts_status write_durably(ts_journal *j, const ts_blob *b, ts_error *err) {
  if (b->size && write_all(j->fd, b->p, b->size) != 0)
    return ts_fail(err, TS_ERR_IO, "%s: cannot write the journal: %s", j->path, strerror(errno));
  if (fsync(j->fd) != 0) return ts_fail(err, TS_ERR_IO, "%s: cannot sync the journal: %s", j->path, strerror(errno));
  j->size += b->size;
  return TS_OK;
}

/* Copy in[from, to) to the end of out: in the kernel where it can, else
 * through a buffer. */
static int copy_range(int in, int out, uint64_t from, uint64_t to) {
  while (from < to) {
    loff_t f = (loff_t)from;
    ssize_t k = copy_file_range(in, &f, out, NULL, (size_t)(to - from), 0);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) { /* not between these files here: read and write */
      char buf[65536];
      const size_t n = to - from < sizeof buf ? (size_t)(to - from) : sizeof buf;
      k = pread(in, buf, n, (off_t)from);
      if (k <= 0 || write_all(out, buf, (size_t)k) != 0) return -1;
    }
    from += (uint64_t)k;
  }
  return 0;
}

/* Rewrite the journal without its snapshots, then the pending lines (the
 * new snapshot with them): OUT.journal.tmp, locked, synced and renamed over
 * OUT.journal, whose directory is synced. Until the rename the old file
 * is the journal, whole; after it the new one, whole. */
static ts_status compact(ts_journal *j, uint64_t snap_at, uint64_t snap_len, ts_error *err) {
  char *tmp = ts_concat(j->path, ".tmp"), *slash = NULL;
  if (!tmp) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  const int in = open(j->path, O_RDONLY | O_CLOEXEC), out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  int bad = in < 0 || out < 0 || flock(out, LOCK_EX | LOCK_NB) != 0;
  uint64_t at = 0, kept = 0;
  for (int i = 0; !bad && i <= j->nsnaps; i++) { /* what lies between the snapshots */
    const uint64_t end = i < j->nsnaps ? j->snap_off[i] : j->size;
    bad = copy_range(in, out, at, end) != 0;
    kept += end - at;
    if (i < j->nsnaps) at = j->snap_off[i] + j->snap_len[i];
  }
  bad = bad || write_all(out, j->pending.p, j->pending.size) != 0 || fsync(out) != 0 || rename(tmp, j->path) != 0;
  ts_status st = bad ? ts_fail(err, TS_ERR_IO, "%s: cannot rewrite the journal (%s): %s", j->path, tmp, strerror(errno))
                     : TS_OK;
  if (in >= 0) close(in);
  if (bad) {
    if (out >= 0) close(out);
    unlink(tmp);
  } else {
    close(j->fd); /* the old file, and its lock */
    j->fd = out;
    j->size = kept + j->pending.size;
    j->snap_off[0] = kept + snap_at, j->snap_len[0] = snap_len, j->nsnaps = 1;
    if ((slash = strrchr(tmp, '/'))) slash[1] = '\0';
    const int dir = open(slash ? tmp : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) fsync(dir), close(dir); /* the rename itself, durable */
  }
  free(tmp);
  return st;
}

ts_status ts_journal_create(const char *path, const char *fingerprint, int64_t every_tasks, double every_seconds,
                            ts_journal **out, ts_error *err) {
  *out = NULL;
  ts_journal *j = calloc(1, sizeof *j);
  if (!j || !(j->path = strdup(path))) {
    free(j);
    return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  }
  j->every_tasks = every_tasks;
  j->every_seconds = every_seconds;
  j->sync_fd = -1;
  j->last = ts_now();
  j->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (j->fd >= 0) flock(j->fd, LOCK_EX | LOCK_NB); /* held while the run writes: see ts_journal_busy */
  char *tmp = ts_concat(path, ".tmp");
  if (tmp) unlink(tmp); /* a rewrite an earlier run did not finish */
  free(tmp);
  if (j->fd < 0) {
    ts_status st = ts_fail(err, TS_ERR_IO, "%s: cannot create the journal: %s", path, strerror(errno));
    free(j->path);
    free(j);
    return st;
  }
  ts_blob b = {0};
  int bad = add_line(&b, "tessera-journal 1", 17);
  for (const char *s = fingerprint; !bad && *s;) {
    const char *e = strchr(s, '\n');
    size_t n = e ? (size_t)(e - s) : strlen(s);
    char line[4200];
    int m = snprintf(line, sizeof line, "fp %.*s", (int)n, s);
    bad = m < 0 || (size_t)m >= sizeof line || add_line(&b, line, (size_t)m);
    s += n + (e ? 1 : 0);
  }
  ts_status st = bad ? ts_fail(err, TS_ERR_NOMEM, "out of memory") : write_durably(j, &b, err);
  ts_blob_free(&b);
  if (st) {
    ts_journal_close(&j, 1);
    return st;
  }
  *out = j;
  return TS_OK;
}

ts_status ts_journal_stats(ts_journal *j, int64_t kernel, int64_t stage, const double *v, int64_t n, ts_error *err) {
  ts_blob line = {0}, b = {0};
  char num[64];
  int bad = 0;
  snprintf(num, sizeof num, "stats %lld %lld %lld", (long long)kernel, (long long)stage, (long long)n);
  bad |= ts_blob_append(&line, num, strlen(num));
  for (int64_t i = 0; i < n && !bad; i++) {
    snprintf(num, sizeof num, " %a", v[i]); /* exact */
    bad |= ts_blob_append(&line, num, strlen(num));
  }
  bad = bad || add_line(&b, (const char *)line.p, line.size);
  ts_status st = bad ? ts_fail(err, TS_ERR_NOMEM, "out of memory") : write_durably(j, &b, err);
  ts_blob_free(&line);
  ts_blob_free(&b);
  return st;
}

ts_status ts_journal_task(ts_journal *j, int64_t t, const ts_jtile *tiles, int64_t n, ts_error *err) {
  char line[64 + 64 * 64], *at = line;
  ts_blob big = {0}; /* tasks with many output tiles */
  int bad = 0;
  at += snprintf(at, sizeof line, "task %lld %lld", (long long)t, (long long)n);
  for (int64_t i = 0; i < n && !bad; i++) {
    char one[80];
    int m = snprintf(one, sizeof one, " %llu %llu %08x", (unsigned long long)tiles[i].off,
                     (unsigned long long)tiles[i].size, tiles[i].crc);
    if (!big.p && (size_t)(at - line) + (size_t)m < sizeof line) {
      memcpy(at, one, (size_t)m + 1);
      at += m;
    } else {
      if (!big.p) bad |= ts_blob_append(&big, line, (size_t)(at - line));
      bad |= ts_blob_append(&big, one, (size_t)m);
    }
  }
  bad = bad || (big.p ? add_line(&j->pending, (const char *)big.p, big.size)
                      : add_line(&j->pending, line, (size_t)(at - line)));
  ts_blob_free(&big);
  if (bad) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  j->npending++;
  return TS_OK;
}

/* "snap K LEN CRC", the bytes, a newline: the state after the tasks listed so far. */
static ts_status add_snapshot(ts_journal *j, ts_error *err) {
  ts_blob b = {0};
  ts_status st = j->snapshot(j->snapshot_ctx, &b, err);
  char line[96];
  int m = snprintf(line, sizeof line, "snap %lld %zu %08x", (long long)(j->durable + j->npending), b.size,
                   ts_crc32(b.p ? b.p : (unsigned char *)"", b.size));
  if (st == TS_OK && (add_line(&j->pending, line, (size_t)m) || ts_blob_append(&j->pending, b.p ? b.p : (unsigned char *)"", b.size) ||
                      ts_blob_append(&j->pending, "\n", 1)))
    st = ts_fail(err, TS_ERR_NOMEM, "out of memory");
  ts_blob_free(&b);
  return st;
}

ts_status ts_journal_record(ts_journal *j, int64_t index, const void *rec, size_t len, ts_error *err) {
  char line[96];
  int m = snprintf(line, sizeof line, "rec %lld %zu %08x", (long long)index, len, ts_crc32(rec, len));
  const size_t at = j->pending.size;
  if (add_line(&j->pending, line, (size_t)m)) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  if (j->immediate) { /* line, record, newline: a torn one fails its CRC on resume */
    struct iovec v[3] = {{j->pending.p + at, j->pending.size - at}, {(void *)rec, len}, {"\n", 1}};
    if (writev_all(j->fd, v, 3) != 0)
      return ts_fail(err, TS_ERR_IO, "%s: cannot write the journal: %s", j->path, strerror(errno));
    j->size += j->pending.size - at + len + 1;
    j->pending.size = at;
  } else if (ts_blob_append(&j->pending, rec, len) || ts_blob_append(&j->pending, "\n", 1)) {
    return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  }
  j->npending++;
  return TS_OK;
}

int ts_journal_due(const ts_journal *j) {
  if (!j->npending) return 0;
  if (j->every_tasks > 0 && j->npending >= j->every_tasks) return 1;
  return j->every_seconds > 0 && ts_now() - j->last >= j->every_seconds;
}

ts_status ts_journal_checkpoint(ts_journal *j, ts_writer *w, ts_error *err) {
  j->last = ts_now();
  if (!j->npending) return TS_OK;
  ts_status st = TS_OK; /* the data first: the journal lists only durable tasks */
  if (w) st = ts_writer_sync(w, err);
  const uint64_t snap_at = j->pending.size;
  if (st == TS_OK && j->snapshot) st = add_snapshot(j, err);
  const uint64_t snap_len = j->pending.size - snap_at;
  if (st == TS_OK && j->sync_fd >= 0 && syncfs(j->sync_fd) != 0)
    st = ts_fail(err, TS_ERR_IO, "%s: cannot sync the output files: %s", j->path, strerror(errno));
  uint64_t dead = 0; /* with this snapshot, all the file's are superseded */
  for (int i = 0; i < j->nsnaps; i++) dead += j->snap_len[i];
  const uint64_t live = j->size - dead + j->pending.size;
  if (st == TS_OK && j->snapshot && (dead > 2 * live || j->nsnaps == TS_JOURNAL_SNAPS)) {
    st = compact(j, snap_at, snap_len, err);
  } else if (st == TS_OK) {
    const uint64_t at = j->size;
    st = write_durably(j, &j->pending, err);
    if (st == TS_OK && j->snapshot && j->nsnaps < TS_JOURNAL_SNAPS) /* (always: see above) */
      j->snap_off[j->nsnaps] = at + snap_at, j->snap_len[j->nsnaps++] = snap_len;
  }
  if (st) return st;
  j->durable += j->npending;
  j->npending = 0;
  j->pending.size = 0;
  j->checkpoints++;
  return TS_OK;
}

void ts_journal_close(ts_journal **jp, int remove) {
  ts_journal *j = *jp;
  if (!j) return;
  if (j->fd >= 0) close(j->fd);
  if (j->sync_fd >= 0) close(j->sync_fd);
  if (remove) unlink(j->path);
  ts_blob_free(&j->pending);
  free(j->path);
  free(j);
  *jp = NULL;
}

/* ---- loading ---------------------------------------------------------------- */

void ts_journal_state_free(ts_journal_state *s) {
  ts_blob_free(&s->fingerprint);
  ts_blob_free(&s->records);
  free(s->first);
  free(s->tiles);
  ts_blob_free(&s->snap);
  for (int i = 0; i < s->npasses; i++) free(s->pass[i].v);
  memset(s, 0, sizeof *s);
}

/* The payload of the line at p (up to the newline at e), if its CRC checks. */
static int check_line(char *p, char *e) {
  if (e - p < 10 || e[-10] != ' ' || e[-9] != '#') return 0; /* "payload #" and 8 hex digits */
  char *end;
  unsigned long crc = strtoul(e - 8, &end, 16);
  if (end != e) return 0;
  e[-10] = '\0';
  return ts_crc32(p, (size_t)(e - 10 - p)) == (uint32_t)crc;
}

/* "NUM LEN CRC" at q, then LEN bytes after the line's end e and a newline:
 * the bytes, if they are all there and their CRC checks (else NULL). */
static const char *with_body(char *q, const char *e, const char *limit, long long *num, size_t *len) {
  *num = strtoll(q, &q, 10);
  const unsigned long long n = strtoull(q, &q, 10);
  const uint32_t crc = (uint32_t)strtoul(q, &q, 16);
  const char *body = e + 1;
  if (n > (unsigned long long)(limit - body) || (size_t)(limit - body) < n + 1 || body[n] != '\n' ||
      ts_crc32(body, n) != crc)
    return NULL;
  *len = (size_t)n;
  return body;
}

static ts_status parse(char *text, size_t n, ts_journal_state *s, const char *path, ts_error *err) {
  int64_t cap_t = 0, cap_tiles = 0, ntiles = 0;
  char *p = text, *limit = text + n;
  for (int line = 0; p < limit; line++) {
    char *e = memchr(p, '\n', (size_t)(limit - p));
    if (!e) break; /* torn last line */
    *e = '\0';
    if (!check_line(p, e)) break;
    if (line == 0) {
      if (strcmp(p, "tessera-journal 1") != 0) return ts_fail(err, TS_ERR_FORMAT, "%s: not a tessera journal", path);
    } else if (strncmp(p, "fp ", 3) == 0) {
      if (ts_blob_append(&s->fingerprint, p + 3, strlen(p + 3)) || ts_blob_append(&s->fingerprint, "\n", 1))
        return ts_fail(err, TS_ERR_NOMEM, "out of memory");
    } else if (strncmp(p, "stats ", 6) == 0) {
      if (s->npasses == TS_MAX_PASSES) break;
      ts_jpass *ps = &s->pass[s->npasses];
      char *q = p + 6;
      ps->kernel = strtoll(q, &q, 10);
      ps->stage = strtoll(q, &q, 10);
      ps->n = strtoll(q, &q, 10);
      if (ps->n < 0 || ps->n > (e - q) / 2 /* " v" at least */ || !(ps->v = malloc((size_t)(ps->n + 1) * sizeof *ps->v)))
        break;
      for (int64_t i = 0; i < ps->n; i++) ps->v[i] = strtod(q, &q);
      s->npasses++;
    } else if (strncmp(p, "task ", 5) == 0) {
      char *q = p + 5;
      int64_t t = strtoll(q, &q, 10), k = strtoll(q, &q, 10);
      if (t != s->ntasks || k < 1 || k > (1 << 20)) break; /* not the next task: stop trusting */
      if (s->ntasks + 2 > cap_t) {
        cap_t = 2 * cap_t + 64;
        int64_t *f = realloc(s->first, (size_t)cap_t * sizeof *f);
        if (!f) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
        s->first = f;
      }
      if (ntiles + k > cap_tiles) {
        cap_tiles = 2 * cap_tiles + k + 64;
        ts_jtile *tl = realloc(s->tiles, (size_t)cap_tiles * sizeof *tl);
        if (!tl) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
        s->tiles = tl;
      }
      s->first[s->ntasks] = ntiles;
      for (int64_t i = 0; i < k; i++) {
        ts_jtile *tl = &s->tiles[ntiles + i];
        tl->off = strtoull(q, &q, 10);
        tl->size = strtoull(q, &q, 10);
        tl->crc = (uint32_t)strtoul(q, &q, 16);
      }
      ntiles += k;
      s->ntasks++;
      s->first[s->ntasks] = ntiles;
    } else if (strncmp(p, "snap ", 5) == 0) {
      long long k;
      size_t len;
      const char *body = with_body(p + 5, e, limit, &k, &len);
      if (!body || k != s->ntasks) break; /* torn */
      s->snap.size = 0;
      if (ts_blob_append(&s->snap, body, len) || ts_blob_append(&s->snap, "", 0))
        return ts_fail(err, TS_ERR_NOMEM, "out of memory");
      s->has_snap = 1;
      s->snap_tasks = k;
      e = (char *)body + len;
    } else if (strncmp(p, "rec ", 4) == 0) {
      long long index;
      size_t len;
      const char *body = with_body(p + 4, e, limit, &index, &len);
      if (!body || index < 0) break; /* torn */
      if (ts_blob_append(&s->records, body, len)) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
      s->nrecords++;
      e = (char *)body + len; /* the record's closing newline */
    } else {
      break;
    }
    p = e + 1;
  }
  if (s->has_snap) s->ntasks = s->snap_tasks; /* a pyramid's job: what the last snapshot describes, no more */
  if (!s->fingerprint.p && ts_blob_append(&s->fingerprint, "", 0)) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  if (ts_blob_append(&s->fingerprint, "", 1)) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  if (!s->first && !(s->first = calloc(1, sizeof *s->first))) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  return TS_OK;
}

ts_status ts_journal_load(const char *path, ts_journal_state *s, ts_error *err) {
  memset(s, 0, sizeof *s);
  FILE *f = fopen(path, "rb");
  if (!f) return ts_fail(err, TS_ERR_IO, "%s: cannot open the journal: %s", path, strerror(errno));
  ts_blob b = {0};
  char buf[65536];
  size_t n;
  ts_status st = TS_OK;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0)
    if (ts_blob_append(&b, buf, n)) st = ts_fail(err, TS_ERR_NOMEM, "out of memory");
  fclose(f);
  char none[1] = ""; /* an empty journal: no lines */
  if (st == TS_OK) st = parse(b.p ? (char *)b.p : none, b.size, s, path, err);
  ts_blob_free(&b);
  if (st) ts_journal_state_free(s);
  return st;
}

int ts_journal_busy(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  int busy = flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  close(fd);
  return busy;
}

/* ---- fingerprints ----------------------------------------------------------- */

void ts_journal_pipeline(const char *text, char *out, size_t cap) {
  size_t n = 0;
  for (const char *s = text; *s && n + 1 < cap; s++) {
    int space = *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r';
    if (space && (n == 0 || out[n - 1] == ' ')) continue;
    out[n++] = space ? ' ' : *s;
  }
  while (n > 0 && out[n - 1] == ' ') n--;
  out[n] = '\0';
}

/* The value of key in "KEY=VALUE\n" lines (a pointer into text; length in *n). */
static const char *value_of(const char *text, const char *key, size_t *n) {
  size_t k = strlen(key);
  for (const char *s = text; s && *s;) {
    const char *e = strchr(s, '\n');
    if (strncmp(s, key, k) == 0 && s[k] == '=') {
      *n = e ? (size_t)(e - s - (ptrdiff_t)k - 1) : strlen(s + k + 1);
      return s + k + 1;
    }
    s = e ? e + 1 : NULL;
  }
  return NULL;
}

/* "pipeline: 'a' before, 'b' now; ..." for every key that differs. */
void ts_journal_diff(const char *then, const char *now, char *out, size_t cap) {
  out[0] = '\0';
  for (const char *s = now; *s;) {
    const char *eq = strchr(s, '='), *e = strchr(s, '\n');
    if (!eq || !e) break;
    char key[64];
    snprintf(key, sizeof key, "%.*s", (int)(eq - s), s);
    size_t na = 0, nb = (size_t)(e - eq - 1);
    const char *a = value_of(then, key, &na);
    if (!a || na != nb || strncmp(a, eq + 1, nb) != 0) {
      size_t used = strlen(out);
      snprintf(out + used, cap - used, "%s%s: '%.*s' before, '%.*s' now", used ? "; " : "", key, a ? (int)na : 4,
               a ? a : "none", (int)nb, eq + 1);
    }
    s = e + 1;
  }
}

