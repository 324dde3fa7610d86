/* Checkpoints and --resume in list mode.
 *
 * The journal (OUT.journal beside OUT.h5, or DIR.journal beside a
 * directory output) holds every finished input's record whole: status,
 * failure message, emitted values and, for HDF5 outputs, the compressed
 * image. A resume stores those records again into a fresh output, exactly
 * as if they had just arrived from the workers, and runs the other inputs;
 * the HDF5 file is therefore rebuilt with the same datasets and attributes
 * as an uninterrupted run's. A directory output's files are complete as
 * soon as they are renamed; their records omit the image, and a checkpoint
 * syncs the filesystem before the journal lists them. The previous
 * journal is set aside (.prev) until its records are journaled anew. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "engine/leftovers.h"
#include "engine/list_task.h"
#include "core/zstream.h"

/* The journal's name: OUT.h5 -> OUT.h5.journal, DIR/ -> DIR.journal. */
static char *journal_name(const char *out) {
  size_t n = strlen(out);
  while (n > 1 && out[n - 1] == '/') n--;
  char *s = malloc(n + 9);
  if (s) snprintf(s, n + 9, "%.*s.journal", (int)n, out);
  return s;
}

static char *fingerprint(const ts_job *job, const ts_inputs *in, const ts_list_out_options *oo) {
  ts_blob b = {0};
  char line[4200], pipe[4096], plugins[1024];
  uint32_t names = 0;
  for (int64_t i = 0; i < in->n; i++) {
    names = ts_crc32_update(names, in->items[i].name, strlen(in->items[i].name) + 1);
    names = ts_crc32_update(names, &in->items[i].size, sizeof in->items[i].size);
  }
  ts_journal_pipeline(job->pipeline, pipe, sizeof pipe);
  ts_pipeline_plugins(job->pipeline, plugins, sizeof plugins);
#define ADD(...) (snprintf(line, sizeof line, __VA_ARGS__), ts_blob_append(&b, line, strlen(line)))
  int bad = ADD("mode=list\n") || ADD("input=%s\n", job->input) || ADD("glob=%s\n", job->glob ? job->glob : "") ||
            ADD("recursive=%d\n", job->recursive) || ADD("strips=%lld\n", (long long)job->strips) ||
            ADD("inputs=%lld\n", (long long)in->n) || ADD("input_names_and_sizes=%08x\n", names) ||
            ADD("pipeline=%s\n", pipe) || (plugins[0] && ADD("plugins=%s\n", plugins)) || ADD("boundary=%d\n", (int)job->boundary) || ADD("cval=%a\n", job->cval) ||
            ADD("output=%s\n", job->output) || ADD("format=%d\n", (int)oo->format) ||
            ADD("compression=%s\n", ts_compression_name(oo->compression)) || ADD("quality=%d\n", oo->quality) ||
            (oo->level >= 0 && ADD("compression_level=%d\n", oo->level)) ||
            ADD("images=%d\n", !oo->no_images) || ts_blob_append(&b, "", 1);
#undef ADD
  if (bad) {
    ts_blob_free(&b);
    return NULL;
  }
  return (char *)b.p;
}

ts_status ts_list_journal_open(ts_list_journal *lj, const ts_job *job, const ts_inputs *in, ts_list_out_options *oo,
                           ts_error *err) {
  memset(lj, 0, sizeof *lj);
  const int dir = ts_list_out_is_dir(job->output);
  char *journal = journal_name(job->output), *partial = NULL;
  if (journal && !dir && (partial = malloc(strlen(job->output) + 9))) sprintf(partial, "%s.partial", job->output);
  char *fp = journal ? fingerprint(job, in, oo) : NULL;
  ts_status st = journal && fp && (dir || partial) ? TS_OK : ts_fail(err, TS_ERR_NOMEM, "out of memory");
  /* the records are replayed from the journal: the partial HDF5 file is written anew */
  ts_leftovers l = {.name = job->output, .partial = partial, .journal = journal};
  if (st == TS_OK) st = ts_leftovers_check(&l, job, fp, &lj->saved, err);
  if (st == TS_OK && l.prev_journal) {
    lj->prev = l.prev_journal;
    oo->resume = 1; /* a directory's files may be this job's own */
  }
  if (st == TS_OK && (job->checkpoint_tasks > 0 || job->checkpoint_seconds > 0)) { /* both 0: no journal */
    st = ts_journal_create(journal, fp, job->checkpoint_tasks, job->checkpoint_seconds, &lj->j, err);
    if (st == TS_OK && dir) lj->j->sync_fd = open(job->output, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (st == TS_OK && !dir) lj->j->immediate = 1;
  }
  lj->dir = dir;
  free(journal);
  free(partial);
  free(fp);
  return st;
}

/* Journal one stored record; a directory output's without the image (the
 * data, last in the record), since its file holds it. */
static ts_status journal_rec(ts_list_journal *lj, const unsigned char *rec, size_t used, ts_error *err) {
  ts_list_record r;
  memcpy(&r, rec, sizeof r);
  if (!lj->dir || r.data_len == 0) return ts_journal_record(lj->j, r.index, rec, used, err);
  const size_t keep = used - (size_t)r.data_len;
  r.data_len = 0;
  ts_blob b = {0};
  ts_status st = ts_blob_append(&b, &r, sizeof r) || ts_blob_append(&b, rec + sizeof r, keep - sizeof r)
                     ? ts_fail(err, TS_ERR_NOMEM, "out of memory")
                     : ts_journal_record(lj->j, r.index, b.p, b.size, err);
  ts_blob_free(&b);
  return st;
}

ts_status ts_list_journal_replay(ts_list_journal *lj, ts_list_out *out, const ts_inputs *in, ts_error *err) {
  char *done = lj->done = calloc((size_t)in->n + 1, 1);
  if (!done) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  ts_status st = TS_OK;
  ts_emits em = {0};
  const unsigned char *p = lj->saved.records.p, *end = p + lj->saved.records.size;
  for (int64_t k = 0; st == TS_OK && k < lj->saved.nrecords && (size_t)(end - p) >= sizeof(ts_list_record); k++) {
    ts_list_record r;
    memcpy(&r, p, sizeof r);
    /* a record's CRC held, but its fields are checked before they are trusted */
    const size_t left = (size_t)(end - p) - sizeof r;
    if (r.msg_len < 0 || r.nemit < 0 || r.nvalues < 0 || r.data_len < 0 || (uint64_t)r.msg_len > left ||
        (uint64_t)r.nemit > left / sizeof(ts_emit) || (uint64_t)r.nvalues > left / sizeof(double) ||
        (uint64_t)r.data_len > left)
      break;
    size_t used = sizeof r + (size_t)r.msg_len + (size_t)r.nemit * sizeof(ts_emit) +
                  (size_t)r.nvalues * sizeof(double) + (size_t)r.data_len;
    if (used - sizeof r > left || r.index < 0 || r.index >= in->n) break;
    if (!done[r.index]) {
      if (lj->dir && r.status == TS_OK) ts_list_out_mark_done(out, r.index); /* its file is there */
      else st = ts_list_store(out, in, p, &used, &em, err);
      if (st == TS_OK && lj->j) st = ts_journal_record(lj->j, r.index, p, used, err);
      done[r.index] = 1;
      lj->replayed++;
    }
    p += used;
  }
  ts_emits_free(&em);
  if (st == TS_OK && lj->j) st = ts_journal_checkpoint(lj->j, NULL, err);
  if (st == TS_OK && lj->prev) {
    unlink(lj->prev);
    free(lj->prev);
    lj->prev = NULL;
  }
  ts_journal_state_free(&lj->saved);
  return st;
}

ts_status ts_list_journal_add(ts_list_journal *lj, const unsigned char *rec, size_t used, ts_error *err) {
  if (!lj->j) return TS_OK;
  ts_status st = journal_rec(lj, rec, used, err);
  if (st == TS_OK && ts_journal_due(lj->j)) st = ts_journal_checkpoint(lj->j, NULL, err);
  return st;
}

void ts_list_journal_close(ts_list_journal *lj, ts_status st, ts_run_stats *stats) {
  free(lj->done);
  lj->done = NULL;
  if (!lj->j) {
    ts_journal_state_free(&lj->saved);
    free(lj->prev);
    lj->prev = NULL;
    return;
  }
  ts_error e = {0};
  if (st == TS_STOPPED) ts_journal_checkpoint(lj->j, NULL, &e); /* what is stored is durable: resumable */
  stats->checkpoints = lj->j->checkpoints;
  stats->resumable = st == TS_STOPPED && e.code == TS_OK;
  ts_journal_close(&lj->j, !stats->resumable);
  ts_journal_state_free(&lj->saved);
  free(lj->prev);
  lj->prev = NULL;
}
