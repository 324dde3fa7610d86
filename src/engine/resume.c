/* Checkpoints and --resume in tile mode.
 *
 * A run writes OUT.partial and, beside it, OUT.journal (journal.h). Tasks
 * are stored in task order, so what the journal lists is a prefix of the
 * tasks. --resume checks the journal's fingerprint against this job, moves
 * the previous files aside (OUT.partial.prev, OUT.journal.prev), opens a
 * fresh output, and stores the journaled tasks again from the previous
 * file's bytes (each tile checked by CRC) before computing the rest. The
 * new file is then written by the same calls in the same order as an
 * uninterrupted run's, so it is byte-identical to it. A replay that is
 * itself killed leaves the .prev files, which win next time.
 *
 * A directory store (Zarr, OUT.partial/) resumes in place instead: only
 * the journal moves aside; the replay reads each journaled chunk back
 * from the store, checks its CRC and adopts it where it lies. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "engine/order.h"
#include "engine/leftovers.h"
#include "engine/plan.h"
#include "engine/pyramid.h"

/* The job's identity: what must not change between a run and its resume. */
static char *fingerprint(const ts_plan *p) {
  const ts_job *job = p->job;
  ts_blob b = {0};
  char line[4200];
#define ADD(...) (snprintf(line, sizeof line, __VA_ARGS__), ts_blob_append(&b, line, strlen(line)))
  int bad = ADD("mode=tile\n") || ADD("input=%s\n", job->input);
  if (strncmp(job->input, "synth:", 6) != 0) {
    const char *colon = strstr(job->input, ":/");
    char file[4096];
    snprintf(file, sizeof file, "%.*s", colon ? (int)(colon - job->input) : (int)strlen(job->input), job->input);
    struct stat sb;
    if (stat(file, &sb) == 0)
      bad |= ADD("input_size=%lld\n", (long long)sb.st_size) ||
             ADD("input_mtime=%lld.%09ld\n", (long long)sb.st_mtim.tv_sec, (long)sb.st_mtim.tv_nsec);
  }
  char pipe[4096], plugins[1024];
  ts_journal_pipeline(job->pipeline, pipe, sizeof pipe);
  ts_pipeline_plugins(job->pipeline, plugins, sizeof plugins);
  bad |= ADD("pipeline=%s\n", pipe) || (plugins[0] && ADD("plugins=%s\n", plugins)) || ADD("boundary=%d\n", (int)job->boundary) || ADD("cval=%a\n", job->cval) ||
         ADD("tile=%lld\n", (long long)job->tile) || ADD("out_tile=%lld\n", (long long)p->out_tile) ||
         ADD("output=%s\n", job->output) || ADD("compression=%s\n", ts_compression_name(job->compression)) ||
         ADD("quality=%d\n", job->quality) || (job->page > 0 && ADD("page=%lld\n", (long long)job->page)) ||
         (job->input_level > 0 && ADD("input_level=%lld\n", (long long)job->input_level)) ||
         (p->levels.n > 1 && ADD("levels=%d %s layout=%s\n", p->levels.n, ts_downsample_name(job->downsample),
                                 ts_layout_name(p->wopts.layout))) ||
         (job->compression_level >= 0 && ADD("compression_level=%d\n", job->compression_level)) ||
         (job->nodata && ADD("nodata=%s\n", job->nodata)) ||
         (job->zarr_format > 2 && ADD("zarr_format=%d\n", job->zarr_format)) ||
         (job->shard > 1 && ADD("shard=%d\n", job->shard)) || ADD("size=%lldx%lld\n", (long long)p->grid.w, (long long)p->grid.h) ||
         ADD("output_type=%s x%d\n", ts_dtype_name(p->pipe->out_dtype), p->pipe->out_channels) ||
         ts_blob_append(&b, "", 1);
#undef ADD
  if (bad) {
    ts_blob_free(&b);
    return NULL;
  }
  return (char *)b.p;
}

ts_status ts_plan_open_output(ts_plan *p, ts_error *err) {
  const ts_job *job = p->job;
  char *file = ts_output_file(job->output);
  char *partial = file ? ts_concat(file, ".partial") : NULL, *journal = file ? ts_concat(file, ".journal") : NULL;
  char *fp = fingerprint(p);
  ts_status st = file && partial && journal && fp ? TS_OK : ts_fail(err, TS_ERR_NOMEM, "out of memory");
  /* a directory store resumes in place; a file is replayed from its previous copy */
  const int in_place = ts_output_in_place(job->output);
  ts_leftovers l = {.name = file, .partial = partial, .journal = journal, .set_partial_aside = !in_place};
  if (st == TS_OK) st = ts_leftovers_check(&l, job, fp, &p->saved, err);
  p->wopts.reopen = in_place && l.prev_journal;
  if (st == TS_OK) st = ts_writer_open(job->output, &p->wopts, &p->writer, err);
  p->wopts.reopen = 0;
  if (st == TS_OK && ts_writer_resumable(p->writer) &&
      (job->checkpoint_tasks > 0 || job->checkpoint_seconds > 0)) /* both 0: no journal */
    st = ts_journal_create(journal, fp, job->checkpoint_tasks, job->checkpoint_seconds, &p->journal, err);
  /* the statistics the previous run merged stay known */
  for (int i = 0; st == TS_OK && p->journal && i < p->saved.npasses; i++, p->passes_saved++)
    st = ts_journal_stats(p->journal, p->saved.pass[i].kernel, p->saved.pass[i].stage, p->saved.pass[i].v,
                          p->saved.pass[i].n, err);
  if (st == TS_OK) { /* the replay's */
    p->prev_partial = l.prev_partial;
    p->prev_journal = l.prev_journal;
  } else {
    free(l.prev_partial);
    free(l.prev_journal);
  }
  free(file);
  free(partial);
  free(journal);
  free(fp);
  return st;
}

/* Where the journaled tiles are read from: the previous file (fd), or
 * the store itself when it resumes in place. */
typedef struct tiles_at {
  int fd;
  ts_writer *store; /* in place */
} tiles_at;

/* Append the journaled tile jt to b as [size][crc][bytes] (0: torn or lost). */
static int read_tile(const tiles_at *at, const ts_jtile *jt, ts_blob *b) {
  uint64_t head[2] = {jt->size, jt->crc}, n = jt->size; /* as ts_encode_core lays tiles out */
  if (n > ((uint64_t)1 << 31) || ts_blob_append(b, head, sizeof head) || ts_blob_reserve(b, b->size + n)) return 0;
  unsigned char *to = b->p + b->size;
  int ok = at->store ? ts_writer_read_back(at->store, jt->off, n, to) == 0
                     : pread(at->fd, to, n, (off_t)jt->off) == (ssize_t)n;
  ok = ok && ts_crc32(to, n) == jt->crc;
  b->size += n;
  return ok;
}

/* A pyramid with upper levels: the journal's snapshot holds the pieces
 * its upper tiles had after task K-1, so the replay must reach exactly K.
 * Every tile is checked before any is stored; if one is bad, nothing is
 * replayed. */
static int all_intact(const ts_plan *p, const tiles_at *at) {
  const ts_journal_state *s = &p->saved;
  if (!s->has_snap) return 0;
  ts_blob b = {0};
  int ok = 1;
  for (int64_t i = 0; ok && i < s->first[s->ntasks]; i++) ok = (b.size = 0, read_tile(at, &s->tiles[i], &b));
  ts_blob_free(&b);
  return ok;
}

ts_status ts_plan_replay(ts_plan *p, ts_order *o, ts_error *err) {
  p->resumed = 0;
  if (!p->prev_journal) return TS_OK;
  o->journal = p->journal;
  const ts_journal_state *s = &p->saved;
  const int in_place = ts_writer_in_place(p->writer);
  tiles_at at = {.fd = !in_place && p->prev_partial ? open(p->prev_partial, O_RDONLY | O_CLOEXEC) : -1,
                 .store = in_place ? p->writer : NULL};
  int have = at.fd >= 0 || at.store;
  ts_blob b = {0};
  ts_status st = TS_OK;
  const int tail = o->tail != NULL;
  const int64_t ntasks = o->seq ? o->seq->n : p->grid.ntasks;
  if (tail && have && !all_intact(p, &at)) have = 0; /* redo it all */
  o->replaying = 1;
  o->in_place = in_place;
  for (int64_t t = 0; have && st == TS_OK && t < s->ntasks && t < ntasks; t++) {
    const int64_t want = ts_order_result_tiles(o, t);
    if (s->first[t + 1] - s->first[t] != want) break;
    b.size = 0;
    int ok = 1;
    for (int64_t i = s->first[t]; ok && i < s->first[t + 1]; i++) ok = read_tile(&at, &s->tiles[i], &b);
    if (!ok) break; /* torn or lost: this task and the rest are computed again */
    int placed;
    st = ts_order_put(o, t, &b, &placed, err);
    if (st == TS_OK && !placed) st = ts_fail(err, TS_ERR_INTERNAL, "replayed task %lld has no slot", (long long)t);
    if (st == TS_OK) p->resumed = t + 1;
  }
  o->replaying = o->in_place = 0;
  ts_blob_free(&b);
  if (at.fd >= 0) close(at.fd);
  if (st == TS_OK && tail && p->resumed > 0) /* the unfinished upper tiles, as they were after the last task */
    st = ts_tail_restore(o->tail, s->snap.p, s->snap.size, err);
  if (st == TS_OK && p->journal) st = ts_journal_checkpoint(p->journal, p->writer, err);
  if (st) return st;
  /* the new files hold it all now */
  if (p->prev_partial) unlink(p->prev_partial);
  unlink(p->prev_journal);
  free(p->prev_partial);
  free(p->prev_journal);
  p->prev_partial = p->prev_journal = NULL;
  return TS_OK;
}

const ts_jpass *ts_plan_saved_pass(const ts_plan *p, int64_t kernel, int64_t stage) {
  for (int i = 0; i < p->saved.npasses; i++)
    if (p->saved.pass[i].kernel == kernel && p->saved.pass[i].stage == stage) return &p->saved.pass[i];
  return NULL;
}

ts_status ts_plan_pass_done(ts_plan *p, int64_t kernel, int64_t stage, const double *v, int64_t n, ts_error *err) {
  if (!p->journal || ts_plan_saved_pass(p, kernel, stage)) return TS_OK;
  p->passes_saved++;
  return ts_journal_stats(p->journal, kernel, stage, v, n, err);
}

ts_status ts_plan_finish(ts_plan *p, ts_error *err) {
  ts_status st = ts_writer_finish(&p->writer, err);
  ts_journal_close(&p->journal, 1); /* renamed (or dropped): the journal has nothing left to say */
  return st;
}

ts_status ts_plan_stopped(ts_plan *p, int64_t written, int in_stats, ts_run_stats *stats, ts_error *err) {
  stats->stopped = ts_stop_requested();
  stats->stopped_in_stats = in_stats;
  if (written == 0 && p->passes_saved == 0) { /* nothing worth keeping */
    ts_writer_abort(&p->writer);
    ts_journal_close(&p->journal, 1);
    return TS_STOPPED;
  }
  ts_status st = p->journal ? ts_journal_checkpoint(p->journal, p->writer, err) : TS_OK;
  if (st == TS_OK) st = ts_writer_keep(&p->writer, &stats->kept, err);
  if (p->journal) stats->checkpoints = p->journal->checkpoints;
  stats->resumable = st == TS_OK && p->journal;
  ts_journal_close(&p->journal, st != TS_OK);
  return st ? st : TS_STOPPED;
}
