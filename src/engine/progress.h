/* Progress on a stream: a live line on a terminal, a line every few
 * seconds otherwise (a Slurm log). Not thread-safe: call under a lock. */
#ifndef TS_ENGINE_PROGRESS_H
#define TS_ENGINE_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

typedef struct ts_progress {
  FILE *out; /* NULL = silent */
  int tty;
  int64_t total, done, pixels;
  double start, last;
} ts_progress;

void ts_progress_init(ts_progress *p, FILE *out, int64_t total, double start);
void ts_progress_tick(ts_progress *p, int64_t pixels);
void ts_progress_done(ts_progress *p);

#endif
