/* Statistics shared by the global kernels (global.c) and threshold's Otsu
 * method (point.c). Internal to src/kernels. */
#ifndef TS_KERNELS_GLOBAL_H
#define TS_KERNELS_GLOBAL_H

#include "tessera/kernel.h"

int64_t ts_g_stats_size(const ts_kernel *k, int stage);
void ts_g_stats_init(const ts_kernel *k, int stage, double *p);
void ts_g_accumulate(const ts_kernel *k, int stage, const ts_image *im, double *p);
void ts_g_merge(const ts_kernel *k, int stage, double *into, const double *from);
int ts_otsu_stages(const ts_kernel *k);
/* Run every statistics stage of global kernel g over one whole image and
 * resolve it (list mode: global kernels act per image). Uses scratch slot
 * `slot` for the partial. */
ts_status ts_global_resolve_image(ts_kernel *g, const ts_image *im, ts_scratch *s, int slot, ts_error *err);
ts_status ts_otsu_resolve(ts_kernel *k, int stage, const double *merged, ts_error *err);

#endif
