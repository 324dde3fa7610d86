/* tessera: per-thread scratch buffers (src/core/scratch.c). */
#ifndef TESSERA_SCRATCH_H
#define TESSERA_SCRATCH_H

#include <stddef.h>
#include "tessera/status.h"

typedef struct ts_scratch ts_scratch;

/* Per-thread scratch memory reused across tasks: slot i is grown on demand
 * and kept, so steady state allocates nothing. */
TS_API ts_scratch *ts_scratch_new(void);
TS_API void ts_scratch_free(ts_scratch **s);
/* A buffer of at least `bytes` for slot `slot` (0..15), 64-byte aligned;
 * NULL on allocation failure. Valid until the next call for the same slot. */
TS_API void *ts_scratch_get(ts_scratch *s, int slot, size_t bytes);

#endif
