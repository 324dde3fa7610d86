/* List mode's outputs: which inputs are done or failed and why, over the
 * sink that stores them (list_sink.h): an HDF5 file (list_hdf5.c), a Zarr
 * store (list_zarr.c) or a directory of image files (list_dir.c), the first that claims the
 * output. Adding a sink is a file with its table and one line below. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "io/list_sink.h"

static const ts_list_sink *const sinks[] = {&ts_list_sink_zarr, &ts_list_sink_dir, &ts_list_sink_hdf5, NULL};

int ts_list_out_is_dir(const char *path) {
  struct stat sb;
  size_t n = strlen(path);
  if (n > 5 && !strcmp(path + n - 5, ".zarr")) return 0; /* a store, even when it exists */
  return (n && path[n - 1] == '/') || (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode));
}

void ts_list_safe_name(const char *name, char *buf, size_t cap) {
  size_t n = 0;
  buf[0] = '\0';
  for (const char *p = name; *p && n + 1 < cap;) {
    const char *end = strchr(p, '/');
    const size_t len = end ? (size_t)(end - p) : strlen(p);
    const int dots = len == 2 && p[0] == '.' && p[1] == '.';
    if (len && !(len == 1 && p[0] == '.')) { /* empty and "." parts vanish, ".." becomes "__" */
      n += (size_t)snprintf(buf + n, cap - n, "%s%.*s", n ? "/" : "", (int)len, dots ? "__" : p);
      if (n >= cap) n = cap - 1;
    }
    p += len + (end ? 1 : 0);
  }
}

const ts_list_sink *ts_list_sink_for(const ts_list_out_options *o) {
  for (int i = 0; sinks[i]; i++)
    if (sinks[i]->claims(o)) return sinks[i];
  return NULL;
}

ts_status ts_list_out_open(const ts_list_out_options *opt, const ts_inputs *in, ts_list_out **out, ts_error *err) {
  *out = NULL;
  ts_list_out *o = calloc(1, sizeof *o);
  if (!o) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  o->o = *opt;
  o->in = in;
  o->sink = ts_list_sink_for(opt);
  o->path = strdup(opt->path);
  o->state = calloc((size_t)in->n + 1, 1);
  o->reason = calloc((size_t)in->n + 1, sizeof *o->reason);
  o->failed_order = calloc((size_t)in->n + 1, sizeof *o->failed_order);
  ts_status st = o->sink && o->path && o->state && o->reason && o->failed_order
                     ? o->sink->open(o, err)
                     : ts_fail(err, TS_ERR_NOMEM, "out of memory");
  if (st) {
    ts_list_out_abort(&o);
    return st;
  }
  *out = o;
  return TS_OK;
}

ts_status ts_list_encode(const ts_list_out_options *o, const ts_image *im, ts_result_image *ri, ts_blob *data,
                         ts_zstream *z, ts_blob *work, ts_error *err) {
  *ri = (ts_result_image){.w = im->w, .h = im->h, .channels = im->channels, .dtype = im->dtype};
  data->size = 0;
  const ts_list_sink *s = o->sink ? o->sink : ts_list_sink_for(o);
  return s->encode(o, im, ri, data, z, work, err);
}

ts_status ts_list_out_put(ts_list_out *o, int64_t index, const ts_result_image *ri, const void *data, size_t size,
                          const ts_emits *em, ts_error *err) {
  ts_status st = o->sink->put(o, index, ri, data, size, em, err);
  if (st == TS_OK) o->state[index] = 1;
  return st;
}

void ts_list_out_mark_done(ts_list_out *o, int64_t index) { o->state[index] = 1; }

ts_status ts_list_out_failed(ts_list_out *o, int64_t index, const char *reason, ts_error *err) {
  if (o->state[index] == 2) return TS_OK;
  o->state[index] = 2;
  o->reason[index] = strdup(reason);
  if (!o->reason[index]) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  o->failed_order[o->nfailed++] = index;
  return TS_OK;
}

int64_t ts_list_out_nfailed(const ts_list_out *o) { return o->nfailed; }
const char *ts_list_out_failure(const ts_list_out *o, int64_t k) { return o->reason[o->failed_order[k]]; }

ts_status ts_list_out_finish(ts_list_out **po, ts_error *err) {
  char *kept = NULL;
  ts_status st = (*po)->sink->finish(*po, NULL, &kept, err);
  ts_list_out_abort(po); /* frees */
  return st;
}

ts_status ts_list_out_keep(ts_list_out **po, const char *note, char **kept, ts_error *err) {
  *kept = NULL;
  ts_status st = (*po)->sink->finish(*po, note, kept, err);
  ts_list_out_abort(po);
  return st;
}

void ts_list_out_abort(ts_list_out **po) {
  ts_list_out *o = *po;
  if (!o) return;
  if (o->sink) o->sink->close(o);
  for (int64_t i = 0; o->reason && i < o->in->n; i++) free(o->reason[i]);
  free(o->reason);
  free(o->state);
  free(o->failed_order);
  free(o->path);
  free(o);
  *po = NULL;
}
