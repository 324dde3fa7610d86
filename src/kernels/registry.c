/* The kernel registry: one const table, sorted by name. `tessera kernels`,
 * the pipeline parser and the docs all read it. */
#include <string.h>
#include "kernels/defs.h"

static const ts_kernel_def *const registry[] = {
    &ts_kernel_bbox_crop, &ts_kernel_blend, &ts_kernel_box, &ts_kernel_close, &ts_kernel_convolve, &ts_kernel_crop,
    &ts_kernel_delay, &ts_kernel_dilate, &ts_kernel_equalize, &ts_kernel_erode, &ts_kernel_gaussian, &ts_kernel_grayscale,
    &ts_kernel_hog, &ts_kernel_invert, &ts_kernel_median, &ts_kernel_normalize, &ts_kernel_open, &ts_kernel_otsu, &ts_kernel_resize,
    &ts_kernel_scale, &ts_kernel_sobel, &ts_kernel_stats, &ts_kernel_threshold, &ts_kernel_tv_denoise, &ts_kernel_unsharp,
    NULL,
};

const ts_kernel_def *const *ts_kernel_registry(void) { return registry; }

const ts_kernel_def *ts_kernel_find(const char *name) {
  for (int i = 0; registry[i]; i++)
    if (strcmp(registry[i]->name, name) == 0) return registry[i];
  return NULL;
}

int ts_kernel_param_index(const ts_kernel_def *def, const char *name) {
  for (int i = 0; i < def->nparams; i++)
    if (strcmp(def->params[i].name, name) == 0) return i;
  return -1;
}
