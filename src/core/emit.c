/* Values whole-image kernels emit for one image. The buffer is kept and
 * reused from image to image (the caller resets n and nv). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tessera/emit.h"

double *ts_emit_values(ts_emits *em, const char *name, int64_t n) {
  if (em->n >= TS_MAX_EMITS || n < 0) return NULL;
  if (em->nv + n > em->cap || !em->v) {
    int64_t cap = (em->nv + n) * 2 + 16;
    double *v = realloc(em->v, (size_t)cap * sizeof *v);
    if (!v) return NULL;
    em->v = v;
    em->cap = cap;
  }
  ts_emit *e = &em->e[em->n++];
  snprintf(e->name, sizeof e->name, "%s", name);
  /* a second kernel of the same name gets name_2, name_3... */
  for (int i = 0, dup = 1; i < em->n - 1; i++)
    if (strncmp(em->e[i].name, name, strlen(name)) == 0) snprintf(e->name, sizeof e->name, "%s_%d", name, ++dup);
  e->n = n;
  e->at = em->nv;
  em->nv += n;
  return em->v + e->at;
}

void ts_emits_free(ts_emits *em) {
  free(em->v);
  memset(em, 0, sizeof *em);
}
