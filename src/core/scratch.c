/* Per-thread scratch: slots grown on demand and kept across tasks, so the
 * steady state allocates (and first-touches) nothing. */
#include <stdlib.h>
#include "tessera/scratch.h"

#define TS_SCRATCH_SLOTS 16

struct ts_scratch {
  void *p[TS_SCRATCH_SLOTS];
  size_t size[TS_SCRATCH_SLOTS];
};

ts_scratch *ts_scratch_new(void) { return calloc(1, sizeof(ts_scratch)); }

void ts_scratch_free(ts_scratch **s) {
  if (!s || !*s) return;
  for (int i = 0; i < TS_SCRATCH_SLOTS; i++) free((*s)->p[i]);
  free(*s);
  *s = NULL;
}

void *ts_scratch_get(ts_scratch *s, int slot, size_t bytes) {
  if (slot < 0 || slot >= TS_SCRATCH_SLOTS) return NULL;
  if (bytes == 0) bytes = 1;
  if (s->size[slot] < bytes) {
    /* grow with headroom so slightly larger tiles do not reallocate */
    size_t want = bytes + bytes / 4;
    want = (want + 63) & ~(size_t)63;
    void *q = NULL;
    if (posix_memalign(&q, 64, want) != 0) return NULL;
    free(s->p[slot]);
    s->p[slot] = q;
    s->size[slot] = want;
  }
  return s->p[slot];
}
