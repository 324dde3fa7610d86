/* The one checkpoint/resume policy, for every task kind: what an earlier
 * run left beside the output (OUT.partial, OUT.journal, and the .prev
 * files of a replay that was itself interrupted) decides whether this run
 * starts, starts over (--force) or finishes it (--resume, when the
 * journal's fingerprint is this job's). The kinds differ only in what
 * they replay from, so they ask the same questions and say the same
 * words; what a journal's records mean stays theirs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "engine/leftovers.h"
#include "tessera/io.h"

/* An interrupted replay: the previous run's files are the truth again. */
static ts_status restore(const ts_leftovers *l, const char *prevj, const char *prevp, ts_error *err) {
  if (!ts_path_exists(prevj)) return TS_OK;
  unlink(l->journal);
  if (rename(prevj, l->journal) != 0)
    return ts_fail(err, TS_ERR_IO, "%s: cannot restore %s: %s", l->name, prevj, strerror(errno));
  if (prevp && ts_path_exists(prevp)) {
    ts_remove_path(l->partial);
    if (rename(prevp, l->partial) != 0)
      return ts_fail(err, TS_ERR_IO, "%s: cannot restore %s: %s", l->name, prevp, strerror(errno));
  }
  return TS_OK;
}

/* --resume: the journal must be this job's; then set the files aside. */
static ts_status take(ts_leftovers *l, const char *fingerprint, ts_journal_state *saved, char *prevj, char *prevp,
                      ts_error *err) {
  ts_status st = ts_journal_load(l->journal, saved, err);
  if (st == TS_OK && strcmp((const char *)saved->fingerprint.p, fingerprint) != 0) {
    char diff[2048];
    ts_journal_diff((const char *)saved->fingerprint.p, fingerprint, diff, sizeof diff);
    return ts_fail(err, TS_ERR_USAGE, "%s: --resume: %s is from another job (%s); nothing was changed, --force "
                   "starts over", l->name, l->journal, diff);
  }
  if (st) return st;
  if (rename(l->journal, prevj) != 0 ||
      (l->set_partial_aside && ts_path_exists(l->partial) && rename(l->partial, prevp) != 0))
    return ts_fail(err, TS_ERR_IO, "%s: cannot move the unfinished run's files aside: %s", l->name, strerror(errno));
  l->prev_journal = prevj;
  if (l->set_partial_aside) l->prev_partial = prevp;
  return TS_OK;
}

ts_status ts_leftovers_check(ts_leftovers *l, const ts_job *job, const char *fingerprint, ts_journal_state *saved,
                             ts_error *err) {
  l->prev_journal = l->prev_partial = NULL;
  char *prevj = ts_concat(l->journal, ".prev"), *prevp = l->partial ? ts_concat(l->partial, ".prev") : NULL;
  ts_status st = prevj && (prevp || !l->partial) ? TS_OK : ts_fail(err, TS_ERR_NOMEM, "out of memory");
  if (st == TS_OK && ts_journal_busy(l->journal))
    st = ts_fail(err, TS_ERR_EXISTS, "%s: another tessera run is still writing it (%s is locked); wait for it or "
                 "stop it first", l->name, l->journal);
  if (st == TS_OK) st = restore(l, prevj, prevp, err);
  const int partial = st == TS_OK && l->partial && ts_path_exists(l->partial);
  const int journal = st == TS_OK && ts_path_exists(l->journal);
  if ((partial || journal) && !job->resume && !job->force)
    st = ts_fail(err, TS_ERR_EXISTS, "%s: an unfinished run left %s%s%s; --resume finishes it, --force starts over",
                 l->name, partial ? l->partial : "", partial && journal ? " and " : "", journal ? l->journal : "");
  if (st == TS_OK && journal && job->resume) {
    st = take(l, fingerprint, saved, prevj, prevp, err);
  } else if (st == TS_OK) { /* --force, or --resume with no journal: nothing to keep */
    if (partial) ts_remove_path(l->partial); /* a file, or a directory store */
    if (journal) unlink(l->journal);
  }
  if (l->prev_journal != prevj) free(prevj);
  if (l->prev_partial != prevp) free(prevp);
  return st;
}
