/* The journal beside an unfinished tile-mode output (OUT.journal next to
 * OUT.partial): which tasks are durably written, where their tiles lie in
 * the file, and the merged statistics of global kernels. A text file of
 * lines, each ending in " #<crc32 of the line>": a torn or corrupt line
 * ends what is trusted. Entries are appended only at checkpoints, after
 * the output's data has been synced (write, sync, then journal, fsync).
 *
 *   tessera-journal 1
 *   fp KEY=VALUE            the job's fingerprint, one line per key
 *   stats KERNEL STAGE N V1 .. VN   a statistics pass's merged partial (%a)
 *   task T N OFF SIZE CRC ...       task T's N output tiles, in order
 *   snap K LEN CRC                  the pieces a pyramid's upper tiles hold after
 *                                   task K-1, LEN bytes follow (one per checkpoint;
 *                                   the superseded ones are dropped, see below)
 *   rec INDEX LEN CRC               list mode: an input's record, LEN bytes follow
 *
 * Tasks are stored in task order, so the journaled tasks are always a
 * prefix 0..k-1. */
#ifndef TS_ENGINE_JOURNAL_H
#define TS_ENGINE_JOURNAL_H

#include "core/blob.h"
#include "engine/passes.h"
#include "tessera/tessera.h"

typedef struct ts_jtile {
  uint64_t off, size;
  uint32_t crc;
} ts_jtile;

typedef struct ts_jpass {
  int64_t kernel, stage, n;
  double *v;
} ts_jpass;

/* Each snapshot supersedes the one before; the file is rewritten without
 * the superseded ones (compacted: OUT.journal.tmp, synced, renamed over)
 * before they weigh twice what the rest does, and before there are this
 * many. */
#define TS_JOURNAL_SNAPS 8

/* A journal being written. */
typedef struct ts_journal {
  char *path;
  int fd;
  int64_t every_tasks;  /* checkpoint after this many tasks (0: by time only) */
  double every_seconds; /* ... or this long after the last one */
  double last;          /* time of the last checkpoint */
  ts_blob pending;      /* task lines not yet durable */
  int64_t npending;
  int64_t durable;      /* tasks listed on disk */
  int64_t checkpoints;
  int sync_fd;          /* list mode, directory output: syncfs() this before the journal (-1: none) */
  int immediate;        /* list mode, HDF5 output: a record is its own data, written at once (a
                           checkpoint fsyncs); nothing accumulates in memory */
  /* a pyramid's pieces of its upper tiles, saved at every checkpoint (NULL: none) */
  ts_status (*snapshot)(void *ctx, ts_blob *out, ts_error *err);
  void *snapshot_ctx;
  uint64_t size;        /* bytes durable in the file */
  uint64_t snap_off[TS_JOURNAL_SNAPS], snap_len[TS_JOURNAL_SNAPS]; /* its snapshots, in file order */
  int nsnaps;
} ts_journal;

/* What a journal on disk says. */
typedef struct ts_journal_state {
  ts_blob fingerprint; /* "KEY=VALUE\n" lines, NUL-terminated */
  int64_t ntasks;      /* tasks 0..ntasks-1 */
  int64_t *first;      /* ntasks + 1 entries: task t's tiles are tiles[first[t] .. first[t+1]) */
  ts_jtile *tiles;
  int npasses;
  ts_jpass pass[TS_MAX_PASSES];
  ts_blob records;     /* list mode: the records, one after another */
  int64_t nrecords;
  int has_snap;        /* a snapshot was read: ntasks is its K (what it describes) */
  ts_blob snap;
  int64_t snap_tasks;
} ts_journal_state;

/* Create (truncating) the journal with the fingerprint; durable on return. */
ts_status ts_journal_create(const char *path, const char *fingerprint, int64_t every_tasks, double every_seconds,
                            ts_journal **j, ts_error *err);
/* A statistics pass's merged partial: written and synced at once. */
ts_status ts_journal_stats(ts_journal *j, int64_t kernel, int64_t stage, const double *v, int64_t n, ts_error *err);
/* Task t was stored with these tiles: pending until the next checkpoint. */
ts_status ts_journal_task(ts_journal *j, int64_t t, const ts_jtile *tiles, int64_t n, ts_error *err);
/* List mode: one input's record (list.h's ts_list_record layout), whole, so a
 * resume needs nothing else: "rec INDEX LEN CRC" then the LEN bytes.
 * Pending until the next checkpoint. */
ts_status ts_journal_record(ts_journal *j, int64_t index, const void *rec, size_t len, ts_error *err);
/* Is a checkpoint due? */
int ts_journal_due(const ts_journal *j);
/* Sync the writer's data (w may be NULL), then append the pending tasks and fsync. */
ts_status ts_journal_checkpoint(ts_journal *j, ts_writer *w, ts_error *err);
/* Close; remove = 1 deletes the file (the output is complete, or dropped). */
void ts_journal_close(ts_journal **j, int remove);

/* Is a run still writing the output this journal belongs to (it holds
 * an exclusive flock on it)? */
int ts_journal_busy(const char *path);
/* Read a journal; stops at the first line that does not check out. A file
 * that is not a journal at all fails. */
ts_status ts_journal_load(const char *path, ts_journal_state *s, ts_error *err);
void ts_journal_state_free(ts_journal_state *s);
/* Fingerprints: a pipeline's text with whitespace and line breaks
 * collapsed (a job file's layout does not matter); and, for the message
 * refusing a changed job, "key: 'a' before, 'b' now; ..." for every key of
 * `now` ("KEY=VALUE" lines) that differs in `then`. */
void ts_journal_pipeline(const char *text, char *out, size_t cap);
void ts_journal_diff(const char *then, const char *now, char *out, size_t cap);
/* Does a file (or anything) exist at path? */
int ts_path_exists(const char *path);
/* A CRC-32 (zlib's) of n bytes. */
uint32_t ts_crc32(const void *p, size_t n);

#endif
