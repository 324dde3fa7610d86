/* The kernel registry: one const table of the built-ins, sorted by name,
 * then the kernels of loaded plugins (plugin.c) in load order; kernels
 * named py:MODULE.FUNCTION are made on demand (python.c). `tessera
 * kernels`, the pipeline parser and the docs all read it. */
#include <stdlib.h>
#include <string.h>
#include "kernels/defs.h"

static const ts_kernel_def *const builtins[] = {
    &ts_kernel_bbox_crop, &ts_kernel_blend, &ts_kernel_box, &ts_kernel_close, &ts_kernel_convolve, &ts_kernel_crop,
    &ts_kernel_delay, &ts_kernel_dilate, &ts_kernel_equalize, &ts_kernel_erode, &ts_kernel_gaussian, &ts_kernel_grayscale,
    &ts_kernel_hog, &ts_kernel_invert, &ts_kernel_median, &ts_kernel_normalize, &ts_kernel_open, &ts_kernel_otsu, &ts_kernel_resize,
    &ts_kernel_scale, &ts_kernel_sobel, &ts_kernel_stats, &ts_kernel_threshold, &ts_kernel_tv_denoise, &ts_kernel_unsharp,
    NULL,
};

/* builtins + plugins' kernels, NULL-terminated, once a plugin is loaded */
static const ts_kernel_def **all;
static int nall;

const ts_kernel_def *const *ts_kernel_registry(void) { return all ? all : builtins; }

int ts_kernel_registry_add(const ts_kernel_def *const *defs, int n) {
  if (!all) nall = (int)(sizeof builtins / sizeof builtins[0]) - 1;
  const ts_kernel_def **a = realloc(all, (size_t)(nall + n + 1) * sizeof *a);
  if (!a) return -1;
  if (!all) memcpy(a, builtins, (size_t)nall * sizeof *a);
  memcpy(a + nall, defs, (size_t)n * sizeof *a);
  nall += n;
  a[nall] = NULL;
  all = a;
  return 0;
}

void ts_kernel_registry_reset(void) {
  free(all);
  all = NULL;
  nall = 0;
}

const ts_kernel_def *ts_kernel_find(const char *name) {
  const ts_kernel_def *const *reg = ts_kernel_registry();
  for (int i = 0; reg[i]; i++)
    if (strcmp(reg[i]->name, name) == 0) return reg[i];
  return strncmp(name, "py:", 3) == 0 ? ts_python_find(name) : NULL;
}

int ts_kernel_param_index(const ts_kernel_def *def, const char *name) {
  for (int i = 0; i < def->nparams; i++)
    if (strcmp(def->params[i].name, name) == 0) return i;
  return -1;
}
