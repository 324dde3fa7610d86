/* The passes of a job: one statistics pass per stage of each global kernel
 * (in pipeline order), then the apply pass. A statistics pass runs the
 * kernels before the global one over every task and accumulates the
 * global kernel's partial over the task's core; the merged partial
 * resolves the kernel's parameters before the next pass. */
#ifndef TS_ENGINE_PASSES_H
#define TS_ENGINE_PASSES_H

#include "tessera/pipeline.h"

typedef struct ts_pass {
  int kernel; /* the global kernel */
  int stage;
} ts_pass;

#define TS_MAX_PASSES 64

/* The statistics passes of p, in order; returns their count. */
int ts_passes(const ts_pipeline *p, ts_pass *out);
/* Append each resolved global kernel's values to buf ("threshold
 * value=123; ..."). */
void ts_passes_describe(const ts_pipeline *p, char *buf, size_t cap);

#endif
