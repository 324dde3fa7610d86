/* Parse "gaussian sigma=2 | sobel | threshold value=40" against the kernel
 * registry and prepare each kernel for the dtype and channels it will see.
 * Every message names the kernel or parameter and lists what is valid. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/params.h"
#include "kernels/defs.h"
#include "tessera/plugin.h"
#include "tessera/pipeline.h"

#define TS_MAX_HALO (1 << 20)

/* "a, b, c" from a list of names, into buf. */
static const char *kernel_names(char *buf, size_t cap) {
  const ts_kernel_def *const *reg = ts_kernel_registry();
  size_t n = 0;
  buf[0] = '\0';
  for (int i = 0; reg[i] && n < cap; i++)
    n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", reg[i]->name);
  return buf;
}

static const char *param_names(const ts_kernel_def *d, char *buf, size_t cap) {
  size_t n = 0;
  buf[0] = '\0';
  for (int i = 0; i < d->nparams && n < cap; i++)
    n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", d->params[i].name);
  return buf;
}

static ts_status range_error(const ts_kernel_def *d, const ts_param_def *p, const char *text,
                             ts_error *err) {
  return ts_fail(err, TS_ERR_PIPELINE, "%s: %s=%s is out of range: must be %s %g and <= %g",
                 d->name, p->name, text, (p->flags & TS_PARAM_MIN_OPEN) ? ">" : ">=", p->min,
                 p->max);
}

static int in_range(const ts_param_def *p, double v) {
  return ((p->flags & TS_PARAM_MIN_OPEN) ? v > p->min : v >= p->min) && v <= p->max;
}

/* Parse one value of parameter p from text into *v. */
static ts_status parse_value(const ts_kernel_def *d, const ts_param_def *p, const char *text,
                             ts_value *v, ts_error *err) {
  char buf[256];
  switch (p->type) {
    case TS_PARAM_INT: {
      int64_t i;
      if (ts_parse_int64(text, &i))
        return ts_fail(err, TS_ERR_PIPELINE, "%s: %s=%s is not an integer", d->name, p->name, text);
      if (!in_range(p, (double)i)) return range_error(d, p, text, err);
      if ((p->flags & TS_PARAM_ODD) && i % 2 == 0)
        return ts_fail(err, TS_ERR_PIPELINE, "%s: %s=%s must be odd", d->name, p->name, text);
      v->num = (double)i;
      return TS_OK;
    }
    case TS_PARAM_FLOAT:
      if (ts_parse_double(text, &v->num))
        return ts_fail(err, TS_ERR_PIPELINE, "%s: %s=%s is not a number", d->name, p->name, text);
      if (!in_range(p, v->num)) return range_error(d, p, text, err);
      return TS_OK;
    case TS_PARAM_BOOL: {
      int b;
      if (ts_parse_bool(text, &b))
        return ts_fail(err, TS_ERR_PIPELINE, "%s: %s=%s is not a boolean (true/false)", d->name,
                       p->name, text);
      v->num = b;
      return TS_OK;
    }
    case TS_PARAM_CHOICE: {
      int c = ts_parse_choice(text, p->choices);
      if (c < 0)
        return ts_fail(err, TS_ERR_PIPELINE, "%s: %s=%s is not one of %s", d->name, p->name, text,
                       p->choices);
      v->num = c;
      return TS_OK;
    }
    case TS_PARAM_STRING:
      free(v->str);
      if (!*text) return ts_fail(err, TS_ERR_PIPELINE, "%s: %s= is empty", d->name, p->name);
      if (!(v->str = strdup(text))) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
      return TS_OK;
    case TS_PARAM_LIST:
      free(v->list);
      v->list = NULL;
      if (ts_parse_list(text, &v->list, &v->count))
        return ts_fail(err, TS_ERR_PIPELINE,
                       "%s: %s=%s is not a comma-separated list of numbers", d->name, p->name, text);
      for (int64_t i = 0; i < v->count; i++)
        if (!in_range(p, v->list[i])) {
          snprintf(buf, sizeof buf, "%g (element %lld)", v->list[i], (long long)i);
          return range_error(d, p, buf, err);
        }
      return TS_OK;
  }
  return TS_ERR_INTERNAL;
}

static int64_t lcm(int64_t a, int64_t b) {
  int64_t x = a, y = b;
  while (y) {
    int64_t t = x % y;
    x = y, y = t;
  }
  return a / x * b;
}

/* Parse one stage's tokens into k. */
static ts_status parse_stage(char *stage, ts_kernel *k, ts_error *err) {
  char *save = NULL, *tok = strtok_r(stage, " \t\r\n", &save);
  char buf[512];
  if (!tok)
    return ts_fail(err, TS_ERR_PIPELINE, "empty stage in pipeline (two '|' in a row?)");
  const ts_kernel_def *d = ts_kernel_find(tok);
  if (!d && !strncmp(tok, "py:", 3))
    return ts_fail(err, TS_ERR_PIPELINE, "unknown kernel '%s': a Python kernel is py:MODULE.FUNCTION "
                   "(py:scipy.ndimage.gaussian_filter)", tok);
  if (!d)
    return ts_fail(err, TS_ERR_PIPELINE, "unknown kernel '%s'; valid kernels: %s (and py:MODULE.FUNCTION)", tok,
                   kernel_names(buf, sizeof buf));
  k->def = d;
  int seen[TS_MAX_PARAMS] = {0};
  while ((tok = strtok_r(NULL, " \t\r\n", &save))) {
    char *eq = strchr(tok, '=');
    if (!eq || eq == tok)
      return ts_fail(err, TS_ERR_PIPELINE, "%s: expected name=value, got '%s'", d->name, tok);
    *eq = '\0';
    int i = ts_kernel_param_index(d, tok);
    if (i < 0 && (d->flags & TS_KERNEL_KWARGS)) { /* a keyword argument, kept as text */
      size_t have = k->kwargs ? strlen(k->kwargs) : 0, add = strlen(tok) + strlen(eq + 1) + 3;
      char *kw = realloc(k->kwargs, have + add);
      if (!kw) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
      snprintf(kw + have, add, "%s%s=%s", have ? " " : "", tok, eq + 1);
      k->kwargs = kw;
      continue;
    }
    if (i < 0) {
      if (d->nparams == 0)
        return ts_fail(err, TS_ERR_PIPELINE, "%s: unknown parameter '%s'; %s takes no parameters",
                       d->name, tok, d->name);
      return ts_fail(err, TS_ERR_PIPELINE, "%s: unknown parameter '%s'; valid parameters: %s",
                     d->name, tok, param_names(d, buf, sizeof buf));
    }
    if (seen[i]++)
      return ts_fail(err, TS_ERR_PIPELINE, "%s: parameter '%s' given twice", d->name, tok);
    ts_status st = parse_value(d, &d->params[i], eq + 1, &k->v[i], err);
    if (st) return st;
    k->v[i].given = 1;
  }
  for (int i = 0; i < d->nparams; i++) {
    if (seen[i] || (d->params[i].flags & TS_PARAM_OPTIONAL)) continue;
    if (!d->params[i].def)
      return ts_fail(err, TS_ERR_PIPELINE, "%s: parameter '%s' is required (%s)", d->name,
                     d->params[i].name, d->params[i].summary);
    ts_status st = parse_value(d, &d->params[i], d->params[i].def, &k->v[i], err);
    if (st) return st;
  }
  return TS_OK;
}

/* Append the normalized form of k to text (all parameters, defaults too). */
static void describe(const ts_kernel *k, char *text, size_t cap) {
  size_t n = strlen(text);
  char c[64];
  n += (size_t)snprintf(text + n, cap - n, "%s%s", n ? " | " : "", k->def->name);
  for (int i = 0; i < k->def->nparams && n < cap; i++) {
    const ts_param_def *p = &k->def->params[i];
    const ts_value *v = &k->v[i];
    if ((p->flags & TS_PARAM_OPTIONAL) && !v->given) continue;
    n += (size_t)snprintf(text + n, cap - n, " %s=", p->name);
    if (p->type == TS_PARAM_CHOICE)
      n += (size_t)snprintf(text + n, cap - n, "%s", ts_choice_name(p->choices, (int)v->num, c, sizeof c));
    else if (p->type == TS_PARAM_BOOL)
      n += (size_t)snprintf(text + n, cap - n, "%s", v->num ? "true" : "false");
    else if (p->type == TS_PARAM_STRING)
      n += (size_t)snprintf(text + n, cap - n, "%s", v->str);
    else if (p->type == TS_PARAM_LIST)
      for (int64_t j = 0; j < v->count && n < cap; j++)
        n += (size_t)snprintf(text + n, cap - n, "%s%.9g", j ? "," : "", v->list[j]);
    else
      n += (size_t)snprintf(text + n, cap - n, "%.9g", v->num);
  }
  if (k->kwargs && n < cap) snprintf(text + n, cap - n, " %s", k->kwargs);
}

ts_status ts_pipeline_parse(const char *text, ts_dtype dtype, int channels, ts_pipeline **out,
                            ts_error *err) {
  *out = NULL;
  ts_pipeline *p = calloc(1, sizeof *p);
  char *copy = strdup(text ? text : "");
  size_t cap = 4096 + 4 * strlen(copy);
  char *norm = calloc(1, cap);
  ts_status st = TS_OK;
  if (!p || !copy || !norm) {
    st = ts_fail(err, TS_ERR_NOMEM, "out of memory parsing the pipeline");
    goto done;
  }
  p->in_dtype = p->out_dtype = dtype;
  p->align = 1;
  p->in_channels = p->out_channels = channels;
  if (strspn(copy, " \t\r\n") == strlen(copy)) goto done; /* identity */
  int count = 0;
  for (char *c = copy; *c; c++) count += (*c == '|');
  if (count + 1 > TS_MAX_KERNELS) {
    st = ts_fail(err, TS_ERR_PIPELINE, "pipeline has %d stages; at most %d are allowed", count + 1,
                 TS_MAX_KERNELS);
    goto done;
  }
  /* strtok would merge "a || b" into two stages; split on every '|' */
  char *stage = copy;
  for (;;) {
    char *bar = strchr(stage, '|');
    if (bar) *bar = '\0';
    ts_kernel *k = &p->k[p->n++];
    if ((st = parse_stage(stage, k, err))) goto done;
    k->in_dtype = k->out_dtype = p->out_dtype;
    k->in_channels = k->out_channels = p->out_channels;
    if (!(k->def->dtypes & TS_DTYPE_BIT(k->in_dtype))) {
      st = ts_fail(err, TS_ERR_PIPELINE, "%s does not take %s input", k->def->name,
                   ts_dtype_name(k->in_dtype));
      goto done;
    }
    if (!(k->def->channels & (1u << k->in_channels))) {
      st = ts_fail(err, TS_ERR_PIPELINE, "%s does not take %d-channel input", k->def->name,
                   k->in_channels);
      goto done;
    }
    if (k->def->prepare && (st = k->def->prepare(k, err))) goto done;
    { /* the per-rank set-up, keyed by this stage's normalized text */
      char one[4096] = "";
      describe(k, one, sizeof one);
      if ((st = ts_kernel_setup(k, one, err))) goto done;
    }
    if (k->align > 1) p->align = p->align % k->align == 0 ? p->align : lcm(p->align, k->align);
    for (int j = 0; j < p->n - 1 && k->halo > 0; j++)
      if (p->k[j].align > 1) {
        st = ts_fail(err, TS_ERR_PIPELINE, "%s works on blocks aligned to the image, so the kernels after it must "
                     "need no halo (%s has %lld): put %s before it", p->k[j].def->name, k->def->name,
                     (long long)k->halo, k->def->name);
        goto done;
      }
    p->halo += k->halo;
    if (p->halo > TS_MAX_HALO) {
      st = ts_fail(err, TS_ERR_PIPELINE, "pipeline halo %lld exceeds the limit %d",
                   (long long)p->halo, TS_MAX_HALO);
      goto done;
    }
    p->out_dtype = k->out_dtype;
    p->out_channels = k->out_channels;
    describe(k, norm, cap);
    if (!bar) break;
    stage = bar + 1;
  }
done:
  free(copy);
  if (p) p->text = norm;
  else free(norm); /* out of memory for p: norm is nobody's */
  if (st) {
    ts_pipeline_free(&p);
    return st;
  }
  *out = p;
  return TS_OK;
}

void ts_pipeline_free(ts_pipeline **pp) {
  if (!pp || !*pp) return;
  ts_pipeline *p = *pp;
  for (int i = 0; i < TS_MAX_KERNELS; i++) {
    for (int j = 0; j < TS_MAX_PARAMS; j++) {
      free(p->k[i].v[j].list);
      free(p->k[i].v[j].str);
    }
    free(p->k[i].kwargs);
    free(p->k[i].weights);
  }
  free(p->text);
  free(p);
  *pp = NULL;
}

void ts_pipeline_set_rank(ts_pipeline *p, int rank) {
  for (int i = 0; i < p->n; i++) p->k[i].rank = rank;
}

void ts_pipeline_plugins(const char *text, char *buf, size_t cap) {
  size_t n = 0;
  buf[0] = '\0';
  char *copy = strdup(text ? text : ""), *save = NULL;
  for (char *stage = copy ? strtok_r(copy, "|", &save) : NULL; stage; stage = strtok_r(NULL, "|", &save)) {
    char name[128];
    ts_plugin_desc d;
    if (sscanf(stage, " %127s", name) == 1 && ts_plugin_get(ts_plugin_of(ts_kernel_find(name)), &d) == 0 &&
        n < cap)
      n += (size_t)snprintf(buf + n, cap - n, "%s%s=%016llx", n ? " " : "", name, (unsigned long long)d.hash);
  }
  free(copy);
}
