/* tessera: cutting an image into tasks, and boundary modes.
 *
 * A task is a core rect of the output plus the halo the pipeline needs
 * around it. Inside the image the halo comes from neighbouring pixels; only
 * outside the true image border is it made up by the boundary mode, named
 * and defined as in scipy.ndimage. */
#ifndef TESSERA_PARTITION_H
#define TESSERA_PARTITION_H

#include "tessera/image.h"

typedef enum ts_boundary {
  TS_BOUNDARY_REFLECT = 0, /* d c b a | a b c d | d c b a */
  TS_BOUNDARY_MIRROR,      /* d c b | a b c d | c b a */
  TS_BOUNDARY_NEAREST,     /* a a a | a b c d | d d d */
  TS_BOUNDARY_CONSTANT,    /* k k k | a b c d | k k k */
  TS_BOUNDARY_WRAP         /* a b c d | a b c d | a b c d */
} ts_boundary;

TS_API const char *ts_boundary_name(ts_boundary b);
TS_API ts_status ts_boundary_parse(const char *s, ts_boundary *out);

/* Map coordinate i (any integer) into [0, n) by the mode; -1 means "use the
 * constant" (constant mode, outside). n >= 1. */
TS_API int64_t ts_boundary_map(int64_t i, int64_t n, ts_boundary b);

/* The grid of tasks over a w x h image, and the order they are handed out:
 * vertical stripes `stripe` tasks wide, row-major inside a stripe, so the
 * input cache only needs about one stripe-row of source blocks. */
typedef struct ts_grid {
  int64_t w, h;       /* image */
  int64_t tile;       /* core size (square) */
  int64_t halo;
  int64_t cols, rows; /* tasks across and down */
  int64_t stripe;     /* tasks per stripe, >= 1 */
  int64_t ntasks;
} ts_grid;

/* Build a grid; `stripe_px` is the wanted stripe width in pixels (rounded
 * to whole tiles; <= 0 or >= w means row-major). */
TS_API ts_status ts_grid_init(ts_grid *g, int64_t w, int64_t h, int64_t tile, int64_t halo,
                              int64_t stripe_px, ts_error *err);
/* The core rect of task t (0 <= t < ntasks) in walk order. */
TS_API ts_rect ts_grid_core(const ts_grid *g, int64_t t);
/* The input rect of task t: the core grown by the halo (may pass the image
 * border; the boundary mode fills that part). */
TS_API ts_rect ts_grid_input(const ts_grid *g, int64_t t);
/* The same with another halo (a statistics pass runs part of the pipeline). */
TS_API ts_rect ts_grid_input_halo(const ts_grid *g, int64_t t, int64_t halo);

/* Pyramids: level L + 1 is level L halved, rounded up (w_{L+1} = ceil(w_L / 2)),
 * each sample made from the 2x2 block of level L it covers; at an odd
 * right or bottom edge the block holds only the samples that exist. */
typedef enum ts_downsample {
  TS_DOWNSAMPLE_MEAN = 0, /* the average; integers rounded half away from zero */
  TS_DOWNSAMPLE_NEAREST,  /* the block's top-left sample (label images) */
  TS_DOWNSAMPLE_MAX,
  TS_DOWNSAMPLE_MIN
} ts_downsample;

TS_API const char *ts_downsample_name(ts_downsample d);
TS_API ts_status ts_downsample_parse(const char *s, ts_downsample *out);

/* How a level's samples are made: the mode, and the nodata value the
 * output declares, if any. As in GDAL's overviews, mean, max and min skip
 * nodata samples (samples equal to it; NaN ones when it is NaN), a block
 * of nothing else is nodata, and a mean that lands on nodata is the next
 * value up (down at the top of the type); nearest takes the top-left
 * sample whatever it is. */
typedef struct ts_reduce {
  ts_downsample mode;
  int32_t has_nodata; /* 0: none, or a value no sample of the dtype can hold */
  double nodata;      /* exact in the dtype */
} ts_reduce;

/* The reduction for samples of dtype, with nodata the text of GDAL_NODATA
 * ("0", "-9999", "nan"; NULL: none). */
TS_API ts_reduce ts_reduce_make(ts_downsample mode, const char *nodata, ts_dtype dtype);

/* The levels of a w x h output in tiles of `tile`: reduced levels until one
 * fits in a tile, at most max_reduced of them (-1: no cap; 0: flat). Tasks
 * of task_tile make levels 0..task_levels-1 themselves (a task's core at
 * level L is whole output tiles); the levels above come from `pieces`,
 * each task's core reduced to level task_levels. */
typedef struct ts_levels {
  int n;           /* resolutions, the full one included (1: flat) */
  int task_levels; /* levels made inside a task */
  int64_t tile;
  int64_t w[TS_MAX_LEVELS], h[TS_MAX_LEVELS];
} ts_levels;

TS_API void ts_levels_init(ts_levels *g, int64_t w, int64_t h, int64_t tile, int64_t task_tile, int max_reduced);
/* A level-0 rect (aligned to 2^L, or reaching the image edge) at level L. */
TS_API ts_rect ts_level_rect(const ts_levels *g, ts_rect r, int L);
/* Tiles across and down at level L. */
TS_API int64_t ts_level_across(const ts_levels *g, int L);
TS_API int64_t ts_level_down(const ts_levels *g, int L);
/* dst = src halved (dst->w = ceil(src->w / 2), dst->h likewise; same
 * dtype and channels). */
TS_API void ts_downsample_image(const ts_image *src, ts_image *dst, const ts_reduce *r);

#endif
