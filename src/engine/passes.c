/* Enumerating statistics passes. */
#include <stdio.h>
#include <string.h>
#include "engine/passes.h"

int ts_passes(const ts_pipeline *p, ts_pass *out) {
  int n = 0;
  for (int i = 0; i < p->n; i++)
    for (int s = 0; s < ts_kernel_stages(&p->k[i]) && n < TS_MAX_PASSES; s++) out[n++] = (ts_pass){i, s};
  return n;
}

void ts_passes_describe(const ts_pipeline *p, char *buf, size_t cap) {
  size_t n = strlen(buf);
  for (int i = 0; i < p->n && n < cap; i++)
    if (ts_kernel_stages(&p->k[i]) > 0)
      n += (size_t)snprintf(buf + n, cap - n, "%s%s %s", n ? "; " : "", p->k[i].def->name, p->k[i].resolved);
}
