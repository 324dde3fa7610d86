/* The kernel definitions, one per kernel, collected by registry.c. */
#ifndef TS_KERNELS_DEFS_H
#define TS_KERNELS_DEFS_H

#include "tessera/kernel.h"

#define TS_CHANNELS_ANY ((1u << 1) | (1u << 2) | (1u << 3) | (1u << 4))

extern const ts_kernel_def ts_kernel_bbox_crop, ts_kernel_blend, ts_kernel_crop, ts_kernel_hog,
    ts_kernel_otsu, ts_kernel_resize, ts_kernel_stats, ts_kernel_tv_denoise;
extern const ts_kernel_def ts_kernel_box, ts_kernel_close, ts_kernel_convolve, ts_kernel_delay,
    ts_kernel_dilate, ts_kernel_equalize, ts_kernel_erode, ts_kernel_gaussian, ts_kernel_grayscale,
    ts_kernel_invert, ts_kernel_median, ts_kernel_normalize, ts_kernel_open, ts_kernel_scale,
    ts_kernel_sobel, ts_kernel_threshold, ts_kernel_unsharp;

/* The registry (registry.c): add loaded plugins' kernels after the
 * built-ins (0, or -1 out of memory); back to the built-ins alone. */
int ts_kernel_registry_add(const ts_kernel_def *const *defs, int n);
void ts_kernel_registry_reset(void);
/* A py:MODULE.FUNCTION kernel's definition, made on first use (python.c);
 * NULL for a malformed name. */
const ts_kernel_def *ts_python_find(const char *name);
/* Run k's setup (once per rank for `text`, k's normalized stage, and its
 * input dtype and channels) and set k->state (plugin.c). */
ts_status ts_kernel_setup(ts_kernel *k, const char *text, ts_error *err);

#endif
