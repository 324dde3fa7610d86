/* tessera: pipelines of kernels.
 *
 * "gaussian sigma=2 | sobel | threshold value=40": kernels chained; the
 * pipeline's halo is the sum of its kernels' halos. Each kernel runs in
 * "valid" mode: it reads its input with its halo and writes an output
 * smaller by twice the halo. The boundary mode is applied once, to the
 * pipeline's input at the true image border (see partition.h). */
#ifndef TESSERA_PIPELINE_H
#define TESSERA_PIPELINE_H

#include "tessera/kernel.h"
#include "tessera/partition.h"

#define TS_MAX_KERNELS 32

typedef struct ts_pipeline {
  int n;
  ts_kernel k[TS_MAX_KERNELS];
  int64_t halo;       /* sum of kernel halos */
  int64_t align;      /* tiles and bands start at multiples of this (1: anywhere) */
  ts_dtype in_dtype;  /* what the pipeline was prepared for */
  int in_channels;
  ts_dtype out_dtype; /* what it produces */
  int out_channels;
  char *text;         /* the normalized text, for messages and metadata */
} ts_pipeline;

/* Parse `text` and prepare it for inputs of dtype/channels. An empty text
 * is the identity pipeline. On error returns non-zero with a message that
 * names the kernel or parameter and lists the valid ones; *out is NULL.
 * Free with ts_pipeline_free. */
TS_API ts_status ts_pipeline_parse(const char *text, ts_dtype dtype, int channels,
                                   ts_pipeline **out, ts_error *err);
TS_API void ts_pipeline_free(ts_pipeline **p);
/* "kernel=HASH ..." for each stage of `text` whose kernel a plugin defines
 * (the plugin's content hash), "" when none does: for the resume
 * fingerprint, so that a changed plugin is a changed job. */
TS_API void ts_pipeline_plugins(const char *text, char *buf, size_t cap);
/* Tell the kernels which MPI rank runs them (only the `delay` diagnostic
 * kernel looks). */
TS_API void ts_pipeline_set_rank(ts_pipeline *p, int rank);

/* Run the pipeline on `in` (out.w + 2 halo by out.h + 2 halo) into `out`.
 * Single-threaded; uses `scratch` for intermediates (slots 8..15 are the
 * pipeline's, 0..7 the kernels'). */
TS_API ts_status ts_pipeline_run(const ts_pipeline *p, const ts_image *in, ts_image *out,
                                 ts_scratch *scratch, ts_error *err);

/* The first n kernels only (the input carries their halo), with bands over
 * nthreads (1: in this thread). For a global kernel's statistics pass. */
TS_API ts_status ts_pipeline_run_upto(const ts_pipeline *p, int n, const ts_image *in, ts_image *out,
                                      ts_scratch **scratch, int nthreads, ts_error *err);
/* The halo of the first n kernels. */
TS_API int64_t ts_pipeline_halo_upto(const ts_pipeline *p, int n);

/* The same, with one task's rows split into bands over `nthreads` OpenMP
 * threads (scratch[i] per thread; intermediates live in scratch[0]). The
 * output bytes do not depend on nthreads. */
TS_API ts_status ts_pipeline_run_bands(const ts_pipeline *p, const ts_image *in, ts_image *out,
                                       ts_scratch **scratch, int nthreads, ts_error *err);

/* Run the pipeline over the whole image `in` (list mode): before each
 * kernel with a halo the image is padded by boundary mode b (cval for
 * constant), global kernels resolve their statistics on this image
 * alone, whole-image kernels may change the size and emit values into
 * em. *out lives in `scratch` (slots 10..14) until its next use. */
TS_API ts_status ts_pipeline_run_image(const ts_pipeline *p, const ts_image *in, ts_boundary b, double cval,
                                       ts_image *out, ts_emits *em, ts_scratch *scratch, ts_error *err);

#endif
