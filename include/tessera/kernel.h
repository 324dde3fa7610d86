/* tessera: kernels, declared once.
 *
 * Each kernel is one const ts_kernel_def in the registry: name, summary,
 * parameters (type, default, range), the dtypes and channel counts it takes,
 * its halo as a function of its parameters, and a pure function from an
 * input view (with halo) to an output view (without). `tessera kernels`, the
 * pipeline parser and the docs all read the same table. No MPI, no files,
 * no globals. */
#ifndef TESSERA_KERNEL_H
#define TESSERA_KERNEL_H

#include "tessera/image.h"

typedef enum ts_param_type {
  TS_PARAM_INT,
  TS_PARAM_FLOAT,
  TS_PARAM_BOOL,
  TS_PARAM_CHOICE, /* one word of `choices` ("a|b|c") */
  TS_PARAM_LIST    /* comma-separated floats */
} ts_param_type;

enum {
  TS_PARAM_ODD = 1u << 0,     /* integer must be odd */
  TS_PARAM_MIN_OPEN = 1u << 1 /* value must be > min (not >=) */
};

typedef struct ts_param_def {
  const char *name;
  ts_param_type type;
  const char *def; /* default as text; NULL = required */
  double min, max; /* inclusive range (numbers and list elements) */
  unsigned flags;
  const char *choices; /* TS_PARAM_CHOICE: "a|b|c" */
  const char *summary;
} ts_param_def;

#define TS_MAX_PARAMS 8

typedef struct ts_value {
  double num;    /* INT, FLOAT, BOOL (0/1), CHOICE (index) */
  double *list;  /* LIST: owned by the kernel instance */
  int64_t count; /* LIST: number of elements */
} ts_value;

typedef struct ts_kernel ts_kernel;
typedef struct ts_scratch ts_scratch;

typedef struct ts_kernel_def {
  const char *name;
  const char *summary;
  const ts_param_def *params;
  int nparams;
  unsigned dtypes;   /* TS_DTYPE_BIT mask of input dtypes taken */
  unsigned channels; /* mask: bit n set = n channels taken (1..4) */
  const char *halo_doc; /* the halo as a formula of the parameters */
  /* Check the parameter combination against the input (dtype, channels),
   * compute halo, output dtype and channels, and precompute state (weights).
   * Called once per pipeline, never per tile. May be NULL (defaults: halo 0,
   * same dtype and channels). */
  ts_status (*prepare)(ts_kernel *k, ts_error *err);
  /* in: (out.w + 2 halo) x (out.h + 2 halo), in_dtype/in_channels.
   * out: caller-allocated, out_dtype/out_channels. Single-threaded, pure. */
  ts_status (*apply)(const ts_kernel *k, const ts_image *in, ts_image *out,
                     ts_scratch *scratch, ts_error *err);
} ts_kernel_def;

/* A kernel instance: a def, its parameter values and prepared state. */
struct ts_kernel {
  const ts_kernel_def *def;
  ts_value v[TS_MAX_PARAMS];
  int64_t halo;
  ts_dtype in_dtype, out_dtype;
  int in_channels, out_channels;
  float *weights; /* prepared 1-D or 2-D weights, if any (owned) */
  int64_t nweights;
  int rank;       /* the MPI rank running it (0 in one process): diagnostics only */
};

/* The registry: NULL-terminated array of every kernel, sorted by name. */
TS_API const ts_kernel_def *const *ts_kernel_registry(void);
/* Look a kernel up by name; NULL if unknown. */
TS_API const ts_kernel_def *ts_kernel_find(const char *name);
/* Index of a parameter by name in def, or -1. */
TS_API int ts_kernel_param_index(const ts_kernel_def *def, const char *name);

/* Per-thread scratch memory reused across tasks: slot i is grown on demand
 * and kept, so steady state allocates nothing. */
TS_API ts_scratch *ts_scratch_new(void);
TS_API void ts_scratch_free(ts_scratch **s);
/* A buffer of at least `bytes` for slot `slot` (0..15), 64-byte aligned;
 * NULL on allocation failure. Valid until the next call for the same slot. */
TS_API void *ts_scratch_get(ts_scratch *s, int slot, size_t bytes);

#endif
