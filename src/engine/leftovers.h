/* The checkpoint/resume policy every kind shares (leftovers.c). */
#ifndef TS_ENGINE_LEFTOVERS_H
#define TS_ENGINE_LEFTOVERS_H

#include "engine/journal.h"
#include "tessera/job.h"

typedef struct ts_leftovers {
  const char *name;      /* the output, for messages */
  const char *partial;   /* the unfinished output's file (NULL: none, as for a directory) */
  const char *journal;
  int set_partial_aside; /* --resume replays from the previous partial, so it moves aside too */
  /* out, with --resume: the files set aside for the replay (malloc'ed; NULL otherwise) */
  char *prev_journal, *prev_partial;
} ts_leftovers;

/* Before the output opens: a run still writing it is refused; files an
 * interrupted replay set aside come back; leftovers are refused without
 * --resume or --force, dropped with --force (or --resume and no journal),
 * and with --resume the journal is loaded into *saved, checked against
 * `fingerprint` (a changed job is refused, naming what changed) and set
 * aside (prev_journal, and prev_partial with set_partial_aside). */
ts_status ts_leftovers_check(ts_leftovers *l, const ts_job *job, const char *fingerprint, ts_journal_state *saved,
                             ts_error *err);

#endif
