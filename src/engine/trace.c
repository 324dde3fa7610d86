/* Trace event buffers. */
#include <stdlib.h>
#include <string.h>
#include "engine/trace.h"

void ts_trace_add(ts_trace *t, ts_trace_phase phase, int64_t task, double start, double end,
                  int rank, int thread) {
  if (!t->on) return;
  if (t->n == t->cap) {
    int64_t cap = t->cap ? 2 * t->cap : 1024;
    ts_trace_event *ev = realloc(t->ev, (size_t)cap * sizeof *ev);
    if (!ev) return; /* a trace is best effort: drop events, never the job */
    t->ev = ev;
    t->cap = cap;
  }
  t->ev[t->n++] = (ts_trace_event){task, start, end - start, rank, thread, (int32_t)phase};
}

void ts_trace_merge(ts_trace *dst, ts_trace *src) {
  if (!src->n) return;
  if (dst->n + src->n > dst->cap) {
    int64_t cap = dst->n + src->n;
    ts_trace_event *ev = realloc(dst->ev, (size_t)cap * sizeof *ev);
    if (!ev) return;
    dst->ev = ev;
    dst->cap = cap;
  }
  memcpy(dst->ev + dst->n, src->ev, (size_t)src->n * sizeof *src->ev);
  dst->n += src->n;
  src->n = 0;
}

void ts_trace_free(ts_trace *t) {
  free(t->ev);
  memset(t, 0, sizeof *t);
}
