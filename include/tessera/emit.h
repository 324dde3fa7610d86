/* tessera: values that whole-image kernels emit (src/core/emit.c). */
#ifndef TESSERA_EMIT_H
#define TESSERA_EMIT_H

#include <stdint.h>
#include "tessera/status.h"

/* Values a whole-image kernel emits for one image (Otsu's threshold, a HOG
 * vector): they go to /results/<name> in the HDF5 output. */
#define TS_MAX_EMITS 8
typedef struct ts_emit {
  char name[32];
  int64_t n;     /* values */
  int64_t at;    /* offset into ts_emits.v */
} ts_emit;
typedef struct ts_emits {
  int n;
  ts_emit e[TS_MAX_EMITS];
  double *v;     /* every emit's values, back to back */
  int64_t nv, cap;
} ts_emits;
/* Space for n values emitted under `name`; NULL when out of memory or
 * there are already TS_MAX_EMITS. */
TS_API double *ts_emit_values(ts_emits *em, const char *name, int64_t n);
TS_API void ts_emits_free(ts_emits *em);

#endif
