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

#include "tessera/emit.h"
#include "tessera/image.h"
#include "tessera/scratch.h"

typedef enum ts_param_type {
  TS_PARAM_INT,
  TS_PARAM_FLOAT,
  TS_PARAM_BOOL,
  TS_PARAM_CHOICE, /* one word of `choices` ("a|b|c") */
  TS_PARAM_LIST,   /* comma-separated floats */
  TS_PARAM_STRING  /* text (a path: blend's with=) */
} ts_param_type;

enum {
  TS_PARAM_ODD = 1u << 0,     /* integer must be odd */
  TS_PARAM_MIN_OPEN = 1u << 1, /* value must be > min (not >=) */
  TS_PARAM_OPTIONAL = 1u << 2  /* no default, not required: `given` says if set */
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

#define TS_MAX_PARAMS 12

typedef struct ts_value {
  double num;    /* INT, FLOAT, BOOL (0/1), CHOICE (index) */
  double *list;  /* LIST: owned by the kernel instance */
  int64_t count; /* LIST: number of elements */
  int given;     /* set in the pipeline text (not a default) */
  char *str;     /* STRING: owned by the kernel instance */
} ts_value;

typedef struct ts_kernel ts_kernel;

/* Kernel flags. */
enum {
  TS_KERNEL_WHOLE = 1u << 0, /* needs the whole image (list mode only): its
                                output size may depend on the input and its
                                pixels, or it emits values */
  TS_KERNEL_KWARGS = 1u << 1 /* takes key=value words beyond its parameters
                                (Python kernels: keyword arguments), kept as
                                text in ts_kernel.kwargs */
};

typedef struct ts_kernel_def {
  const char *name;
  const char *summary;
  const ts_param_def *params;
  int nparams;
  unsigned dtypes;   /* TS_DTYPE_BIT mask of input dtypes taken */
  unsigned channels; /* mask: bit n set = n channels taken (1..4) */
  const char *halo_doc; /* the halo as a formula of the parameters */
  unsigned flags;       /* TS_KERNEL_* */
  /* Check the parameter combination against the input (dtype, channels),
   * compute halo, output dtype and channels, and precompute state (weights).
   * Called once per pipeline, never per tile. May be NULL (defaults: halo 0,
   * same dtype and channels). */
  ts_status (*prepare)(ts_kernel *k, ts_error *err);
  /* in: (out.w + 2 halo) x (out.h + 2 halo), in_dtype/in_channels.
   * out: caller-allocated, out_dtype/out_channels. Single-threaded, pure. */
  ts_status (*apply)(const ts_kernel *k, const ts_image *in, ts_image *out,
                     ts_scratch *scratch, ts_error *err);
  /* Global kernels, whose output depends on a statistic of the whole image
   * (Otsu, normalize, equalize). stages() says how many statistics passes
   * this instance needs (0: it is not global; NULL: never). Each stage: a
   * partial of stats_size() doubles, zeroed by stats_init(), accumulated
   * over each task's core (the input this kernel sees there), merged by
   * adding or min/max (exact, so any order gives the same bits), and
   * resolved into the kernel's parameters once merged. */
  int (*stages)(const ts_kernel *k);
  int64_t (*stats_size)(const ts_kernel *k, int stage);
  void (*stats_init)(const ts_kernel *k, int stage, double *partial);
  void (*accumulate)(const ts_kernel *k, int stage, const ts_image *im, double *partial);
  void (*merge)(const ts_kernel *k, int stage, double *into, const double *from);
  ts_status (*resolve)(ts_kernel *k, int stage, const double *merged, ts_error *err);
  /* Whole-image kernels (TS_KERNEL_WHOLE, list mode): read all of `in`,
   * take the output's memory with ts_scratch_get(scratch, out_slot, ...)
   * and set *out to it (or set *out = *in when the pixels pass through
   * unchanged), and emit values into em.
   * Kernel-private scratch slots are 0..7 (as for apply) and 15. */
  ts_status (*apply_image)(const ts_kernel *k, const ts_image *in, ts_image *out, int out_slot,
                           ts_emits *em, ts_scratch *scratch, ts_error *err);
  /* Per-rank set-up (may be NULL): load what every task needs (a database,
   * a model) once. Called after prepare, once per rank for each distinct
   * kernel text (normalized parameters) and input dtype and channels; the
   * state it makes is shared by every instance with that key on the rank
   * (k->state) and by all its threads, so apply only reads it. teardown
   * frees it when the rank ends. A failure is the pipeline's error. */
  ts_status (*setup)(const ts_kernel *k, void **state, ts_error *err);
  void (*teardown)(void *state);
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
  double g[4];    /* global kernels: values resolved from the statistics */
  char resolved[128]; /* global kernels: "value=123" once resolved, for the summary */
  const ts_image *aux; /* a second input image (blend's with=), set by the engine */
  void *state;         /* what def->setup made (shared, read-only in apply) */
  int64_t align;       /* prepare may set: tiles and bands start at multiples
                          of this many pixels from the image's origin (blocks:
                          patch_replace's size=); 0 or 1: any */
  char *kwargs;        /* TS_KERNEL_KWARGS: "key=value ..." beyond the params (owned) */
};

/* Global-kernel stages of k (0 for an ordinary kernel). */
static inline int ts_kernel_stages(const ts_kernel *k) {
  return k->def->stages ? k->def->stages(k) : 0;
}

/* The registry: NULL-terminated array of every kernel, sorted by name. */
TS_API const ts_kernel_def *const *ts_kernel_registry(void);
/* Look a kernel up by name (built-ins, then loaded plugins, then
 * py:MODULE.FUNCTION); NULL if unknown. */
TS_API const ts_kernel_def *ts_kernel_find(const char *name);
/* Index of a parameter by name in def, or -1. */
TS_API int ts_kernel_param_index(const ts_kernel_def *def, const char *name);

#endif
