/* Task-phase events for --trace: one growable buffer per thread, merged
 * on rank 0 and written by the CLI as Chrome trace-event JSON. */
#ifndef TS_ENGINE_TRACE_H
#define TS_ENGINE_TRACE_H

#include "tessera/job.h"

typedef struct ts_trace {
  ts_trace_event *ev;
  int64_t n, cap;
  int on; /* recording? (off: every call is a no-op) */
} ts_trace;

void ts_trace_add(ts_trace *t, ts_trace_phase phase, int64_t task, double start, double end,
                  int rank, int thread);
/* Move all of src's events to the end of dst. */
void ts_trace_merge(ts_trace *dst, ts_trace *src);
void ts_trace_free(ts_trace *t);

#endif
