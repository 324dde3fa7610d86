/* One list-mode task: decode, run the pipeline on the whole image
 * (ts_pipeline_run_image), encode, and pack the result record. */
#include <stdlib.h>
#include <string.h>
#include "engine/list_task.h"

int ts_list_aux_paths(const char *text, char **paths) {
  int count = 0, k = 0;
  char *copy = strdup(text ? text : "");
  if (!copy) return 0;
  for (char *stage = copy, *bar; stage && k < TS_MAX_KERNELS; stage = bar, k++) {
    bar = strchr(stage, '|');
    if (bar) *bar++ = '\0';
    paths[k] = NULL;
    char *save = NULL, *tok = strtok_r(stage, " \t\r\n", &save);
    if (!tok || strcmp(tok, "blend") != 0) continue;
    while ((tok = strtok_r(NULL, " \t\r\n", &save)))
      if (!strncmp(tok, "with=", 5) && tok[5]) paths[k] = strdup(tok + 5), count++;
  }
  for (; k < TS_MAX_KERNELS; k++) paths[k] = NULL;
  free(copy);
  return count;
}

ts_status ts_list_rank_init(ts_list_rank *r, const char *text, ts_boundary b, double cval, int64_t max_pixels,
                            const ts_list_out_options *oo, const ts_blob *aux, ts_error *err) {
  memset(r, 0, sizeof *r);
  r->max_pixels = max_pixels;
  r->text = text;
  r->boundary = b;
  r->cval = cval;
  r->oo = *oo;
  r->oo.sink = ts_list_sink_for(oo); /* once, not per image */
  for (int i = 0; aux && i < TS_MAX_KERNELS; i++) {
    if (!aux[i].p) continue;
    char name[64];
    snprintf(name, sizeof name, "blend with= (stage %d)", i + 1);
    ts_status st = ts_decode(name, aux[i].p, aux[i].size, max_pixels, &r->auxpx[i], &r->aux[i], NULL, NULL, err);
    if (st) {
      ts_list_rank_free(r);
      return st;
    }
  }
  return TS_OK;
}

void ts_list_rank_free(ts_list_rank *r) {
  for (int d = 0; d < TS_DTYPE_COUNT; d++)
    for (int c = 0; c <= TS_MAX_CHANNELS; c++) ts_pipeline_free(&r->pipes[d][c]);
  for (int i = 0; i < TS_MAX_KERNELS; i++) ts_blob_free(&r->auxpx[i]);
}

ts_status ts_list_thread_init(ts_list_thread *t, ts_error *err) {
  memset(t, 0, sizeof *t);
  t->s = ts_scratch_new();
  return t->s ? TS_OK : ts_fail(err, TS_ERR_NOMEM, "out of memory");
}

void ts_list_thread_free(ts_list_thread *t) {
  ts_scratch_free(&t->s);
  ts_blob_free(&t->px);
  ts_blob_free(&t->data);
  ts_blob_free(&t->work);
  ts_emits_free(&t->em);
  ts_zstream_free(&t->z);
}

/* The pipeline for images of dtype d with c channels, prepared once. */
static ts_status pipeline_for(ts_list_rank *r, ts_dtype d, int c, ts_pipeline **out, ts_error *err) {
  ts_status st;
#pragma omp critical(ts_list_pipes)
  {
    if (!r->pipes[d][c] && !r->pst[d][c]) {
      ts_error e = {0};
      r->pst[d][c] = ts_pipeline_parse(r->text, d, c, &r->pipes[d][c], &e);
      snprintf(r->pmsg[d][c], sizeof r->pmsg[d][c], "%s", e.msg);
      for (int i = 0; r->pipes[d][c] && i < r->pipes[d][c]->n; i++) {
        r->pipes[d][c]->k[i].aux = r->aux[i].data ? &r->aux[i] : NULL;
        r->pipes[d][c]->k[i].rank = r->rank;
      }
    }
    st = r->pst[d][c];
    *out = r->pipes[d][c];
  }
  return st ? ts_fail(err, st, "%s (for %s images with %d channel%s)", r->pmsg[d][c], ts_dtype_name(d), c,
                      c > 1 ? "s" : "")
            : TS_OK;
}

ts_status ts_list_task(ts_list_rank *r, ts_list_thread *t, int64_t index, const char *name, const void *payload, size_t n,
                       ts_blob *out, int64_t *pixels, ts_error *err) {
  ts_error e = {0};
  ts_image im, res;
  ts_pipeline *p = NULL;
  ts_list_record rec = {.index = index};
  t->em.n = 0;
  t->em.nv = 0;
  *pixels = 0;
  ts_status st = ts_payload_image(name, payload, n, r->max_pixels, &t->px, &im, &t->z, &t->work, &e);
  if (st == TS_OK) *pixels = im.w * im.h, st = pipeline_for(r, im.dtype, im.channels, &p, &e);
  if (st == TS_OK) st = ts_pipeline_run_image(p, &im, r->boundary, r->cval, &res, &t->em, t->s, &e);
  if (st == TS_OK) st = ts_list_encode(&r->oo, &res, &rec.ri, &t->data, &t->z, &t->work, &e);
  if (st != TS_OK && strncmp(e.msg, name, strlen(name)) != 0) { /* name the image */
    char msg[sizeof e.msg + 1100];
    if (snprintf(msg, sizeof e.msg, "%s: %s", name, e.msg) >= (int)sizeof e.msg) /* cut: still one line */
      msg[sizeof e.msg - 1] = '\0';
    memcpy(e.msg, msg, sizeof e.msg);
  }
  rec.status = st;
  rec.msg_len = st ? (int64_t)strlen(e.msg) : 0;
  rec.nemit = st ? 0 : t->em.n;
  rec.nvalues = st ? 0 : t->em.nv;
  rec.data_len = st ? 0 : (int64_t)t->data.size;
  if (ts_blob_append(out, &rec, sizeof rec) || ts_blob_append(out, e.msg, (size_t)rec.msg_len) ||
      ts_blob_append(out, t->em.e, (size_t)rec.nemit * sizeof(ts_emit)) ||
      ts_blob_append(out, t->em.v, (size_t)rec.nvalues * sizeof(double)) ||
      ts_blob_append(out, t->data.p, (size_t)rec.data_len))
    return ts_fail(err, TS_ERR_NOMEM, "out of memory for results");
  return TS_OK;
}

ts_status ts_list_failure(int64_t index, ts_status status, const char *msg, ts_blob *out, ts_error *err) {
  ts_list_record rec = {.index = index, .status = status, .msg_len = (int64_t)strlen(msg)};
  if (ts_blob_append(out, &rec, sizeof rec) || ts_blob_append(out, msg, (size_t)rec.msg_len))
    return ts_fail(err, TS_ERR_NOMEM, "out of memory for results");
  return TS_OK;
}

ts_status ts_list_store(ts_list_out *o, const ts_inputs *in, const unsigned char *p, size_t *used, ts_emits *em,
                        ts_error *err) {
  ts_list_record rec;
  memcpy(&rec, p, sizeof rec);
  const unsigned char *msg = p + sizeof rec, *emits = msg + rec.msg_len,
                      *values = emits + (size_t)rec.nemit * sizeof(ts_emit),
                      *data = values + (size_t)rec.nvalues * sizeof(double);
  *used = sizeof rec + (size_t)rec.msg_len + (size_t)rec.nemit * sizeof(ts_emit) +
          (size_t)rec.nvalues * sizeof(double) + (size_t)rec.data_len;
  if (rec.index < 0 || rec.index >= in->n) return ts_fail(err, TS_ERR_INTERNAL, "result for unknown input %lld", (long long)rec.index);
  if (rec.status != TS_OK) {
    char reason[1100];
    snprintf(reason, sizeof reason, "%.*s", (int)rec.msg_len, (const char *)msg);
    return ts_list_out_failed(o, rec.index, reason, err);
  }
  em->n = rec.nemit;
  memcpy(em->e, emits, (size_t)rec.nemit * sizeof(ts_emit));
  if (rec.nvalues > em->cap) {
    double *v = realloc(em->v, (size_t)rec.nvalues * sizeof *v);
    if (!v) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
    em->v = v;
    em->cap = rec.nvalues;
  }
  if (rec.nvalues) memcpy(em->v, values, (size_t)rec.nvalues * sizeof(double));
  em->nv = rec.nvalues;
  return ts_list_out_put(o, rec.index, &rec.ri, data, (size_t)rec.data_len, em, err);
}
