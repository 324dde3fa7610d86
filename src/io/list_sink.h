/* List mode's output sinks (list_hdf5.c, list_dir.c) behind one table,
 * and the state of an output they share (list_out.c keeps which inputs
 * are done or failed and why; a sink stores and completes). Internal to
 * src/io. */
#ifndef TS_IO_LIST_SINK_H
#define TS_IO_LIST_SINK_H

#include "io/list.h"

struct ts_list_out {
  ts_list_out_options o;
  const ts_list_sink *sink;
  void *ctx;           /* the sink's own */
  char *path;
  const ts_inputs *in;
  char *state;         /* per input: 0 pending, 1 done, 2 failed */
  char **reason;       /* per input: why it failed */
  int64_t nfailed;
  int64_t *failed_order; /* inputs in the order they failed */
};

struct ts_list_sink {
  const char *name;
  /* Is this output this sink's? */
  int (*claims)(const ts_list_out_options *o);
  /* Refuse what exists (unless --force), create what the sink writes into. */
  ts_status (*open)(ts_list_out *o, ts_error *err);
  /* On the computing rank: what put stores of an output image. */
  ts_status (*encode)(const ts_list_out_options *o, const ts_image *im, ts_result_image *ri, ts_blob *data,
                      ts_zstream *z, ts_blob *work, ts_error *err);
  ts_status (*put)(ts_list_out *o, int64_t index, const ts_result_image *ri, const void *data, size_t size,
                   const ts_emits *em, ts_error *err);
  /* The end over the inputs done so far: note NULL completes the output
   * under its final name; else it is kept unfinished (*kept: the name it
   * is kept under, malloc'ed, or NULL when every file is complete). */
  ts_status (*finish)(ts_list_out *o, const char *note, char **kept, ts_error *err);
  /* Drop what is unfinished and free the sink's state. */
  void (*close)(ts_list_out *o);
};

/* An input's name as a path inside an output (directory files, Zarr
 * arrays): relative, no "." or empty parts, ".." as "__", so no name
 * (an @list line "../x.png" or "/abs/x.png") reaches outside it. */
void ts_list_safe_name(const char *name, char *buf, size_t cap);

extern const ts_list_sink ts_list_sink_hdf5, ts_list_sink_dir, ts_list_sink_zarr;

#endif
