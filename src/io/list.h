/* List mode's inputs and outputs. Internal to the library.
 *
 * Inputs: a directory (--glob, --recursive), @LIST.txt (one path per
 * line), an HDF5 stack FILE.h5:/dataset or a Zarr stack IN.zarr[/array]
 * (N x H x W [x C]). Each input
 * is one task. Rank 0 reads an input's bytes (a file's encoded bytes, or a
 * stack slice's raw pixels) and workers decode them, so no worker needs
 * the files with --io root.
 *
 * Outputs: an HDF5 file (/images, /names, /results/<name>, /failed) or a
 * directory of PNG, JPEG or TIFF files mirroring the input names. Both are
 * written under a temporary name and renamed by ts_list_out_finish. */
#ifndef TS_IO_LIST_H
#define TS_IO_LIST_H

#include "core/blob.h"
#include "core/zstream.h"
#include "io/codec.h"
#include "tessera/io.h"
#include "tessera/emit.h"

typedef struct ts_input {
  char *name;    /* as stored in /names: relative path, list line, or stack index */
  char *path;    /* file to read (NULL for a stack slice) */
  int64_t index; /* input order */
  int64_t size;  /* bytes, for largest-first ordering (0 when unknown) */
} ts_input;

typedef struct ts_inputs {
  int64_t n;
  ts_input *items;
  char *spec;          /* what the user gave */
  /* an HDF5 stack */
  char *h5_file, *h5_path;
  int64_t w, h;
  int channels;
  ts_dtype dtype;
  void *h5; /* open file and dataset, rank 0 (or any rank with --io direct) */
  struct ts_zarr_stack *zarr; /* a Zarr stack (N x H x W [x C]), likewise */
  /* strips of one image */
  struct ts_reader *strip_reader;
  int64_t strip_rows;
} ts_inputs;

/* Does `spec` name list-mode input (a directory, @list, or an HDF5 stack)? */
int ts_inputs_is_list(const char *spec);
/* Enumerate. Names are sorted (directories) or in file order (lists,
 * stacks, strips). A list's missing paths stay in (they fail as tasks).
 * strips > 0: spec is one image tile mode reads, cut into strips of that
 * many rows (the last may be shorter), named strip_000000... */
ts_status ts_inputs_open(const char *spec, const char *glob, int recursive, int64_t strips, ts_inputs *in,
                         ts_error *err);
void ts_inputs_free(ts_inputs *in);
/* Task payload of input i into b (appended): a ts_payload header, then a
 * file's bytes or a stack slice's pixels. A read error is the task's
 * error (the run goes on). Not thread-safe for stacks (HDF5). */
typedef struct ts_payload {
  int64_t w, h;      /* raw pixels: their size; file bytes: 0 */
  int32_t channels, dtype;
  int32_t deflated;  /* raw pixels as a zlib stream (a stack's stored chunk) */
  int32_t unused;
} ts_payload;
ts_status ts_inputs_read(ts_inputs *in, int64_t i, ts_blob *b, ts_error *err);
/* Decode a payload (file bytes or raw pixels) into *im (pixels in px when
 * decoded; raw payloads are viewed in place); an encoded image above
 * max_pixels (0: no limit) is refused before decoding. */
ts_status ts_payload_image(const char *name, const void *payload, size_t n, int64_t max_pixels, ts_blob *px,
                           ts_image *im, ts_zstream *z, ts_blob *work, ts_error *err);

/* ---- outputs ------------------------------------------------------------- */

typedef struct ts_list_out ts_list_out;
typedef struct ts_list_sink ts_list_sink; /* list_sink.h */

typedef struct ts_list_out_options {
  const char *path;    /* FILE.h5 or DIR/ */
  ts_file_format format; /* directory output: png, jpeg or tiff */
  int quality;
  ts_compression compression;
  int level;           /* ts_job.compression_level */
  int force;
  int no_images;       /* HDF5: store emitted values only */
  const struct ts_list_sink *sink; /* the sink that stores it (ts_list_sink_for), for ts_list_encode */
  int resume;          /* --resume: files in a directory output may be this job's own leftovers */
  const char *pipeline, *input; /* recorded as attributes */
} ts_list_out_options;

/* The sink that claims this output (a directory, else HDF5). */
const ts_list_sink *ts_list_sink_for(const ts_list_out_options *o);
/* Is this output a directory (ends in '/' or is one) rather than HDF5? */
int ts_list_out_is_dir(const char *path);
/* Refuse an existing output without force (for a directory: any file a
 * name would be written to) and create the temporary file. */
ts_status ts_list_out_open(const ts_list_out_options *o, const ts_inputs *in, ts_list_out **out, ts_error *err);
/* A result, in any order: the image after the pipeline (`data` is what
 * ts_list_encode made of it) and its emitted values. */
typedef struct ts_result_image {
  int64_t w, h;
  int32_t channels, dtype;
  int32_t compressed; /* data is a deflate stream of the pixels (HDF5 chunk) */
} ts_result_image;
ts_status ts_list_out_put(ts_list_out *o, int64_t index, const ts_result_image *ri, const void *data, size_t size,
                          const ts_emits *em, ts_error *err);
/* --resume, directory output: input `index` was written by the previous run. */
void ts_list_out_mark_done(ts_list_out *o, int64_t index);
/* Input `index` failed: recorded in /failed (and the summary). */
ts_status ts_list_out_failed(ts_list_out *o, int64_t index, const char *reason, ts_error *err);
int64_t ts_list_out_nfailed(const ts_list_out *o);
/* The failures so far, "name: reason" each, for the summary. */
const char *ts_list_out_failure(const ts_list_out *o, int64_t k);
/* Complete: compact, write /names and /failed, close, rename. Frees *o. */
ts_status ts_list_out_finish(ts_list_out **o, ts_error *err);
/* A run stopped early: complete an HDF5 output over the inputs done so far
 * (as finish does, with the attribute stopped_early = note) and keep it
 * under its temporary name, *kept (malloc'ed; NULL for a directory, whose
 * files are each complete). Frees *o. */
ts_status ts_list_out_keep(ts_list_out **o, const char *note, char **kept, ts_error *err);
/* Drop everything written. Frees *o. */
void ts_list_out_abort(ts_list_out **o);

/* On the rank that computed it: turn an output image into what
 * ts_list_out_put stores (an encoded file for directories, a deflate
 * stream for HDF5). */
ts_status ts_list_encode(const ts_list_out_options *o, const ts_image *im, ts_result_image *ri, ts_blob *data,
                         ts_zstream *z, ts_blob *work, ts_error *err);

#endif
