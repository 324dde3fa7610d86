/* Python functions as kernels: `py:MODULE.FUNCTION [halo=N] [out=DTYPE]
 * [key=value ...]`. One interpreter per rank (CPython embedded, started on
 * first use); each call hands the tile with its halo to the function as a
 * read-only numpy array viewing tessera's buffer (no copy), and the core
 * of what it returns is converted into the output tile. Calls hold the
 * GIL, so the threads of one rank run them one at a time: use ranks.
 *
 * The glue between the buffers and numpy is a few lines of Python (glue
 * below), compiled once; C only passes memoryviews and sizes. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/defs.h"

static const char glue[] =
    "import numpy as np, importlib, traceback\n"
    "_DT = (np.uint8, np.uint16, np.float32)\n"
    "def kwargs(text):\n"
    "    kw = {}\n"
    "    for w in text.split():\n"
    "        k, _, v = w.partition('=')\n"
    "        for conv in (int, float):\n"
    "            try:\n"
    "                kw[k] = conv(v)\n"
    "                break\n"
    "            except ValueError:\n"
    "                pass\n"
    "        else:\n"
    "            kw[k] = v\n"
    "    return kw\n"
    "def last_line(e):\n"
    "    return traceback.format_exception_only(type(e), e)[-1].strip()\n"
    "def resolve(path, text):\n"
    "    try:\n"
    "        mod, _, fn = path.rpartition('.')\n"
    "        f = getattr(importlib.import_module(mod), fn)\n"
    "    except Exception as e:\n"
    "        return last_line(e)\n"
    "    if not callable(f):\n"
    "        return '%s is a %s, not a function' % (path, type(f).__name__)\n"
    "    return (f, kwargs(text))\n"
    "def view(buf, h, w, c, dt, stride):\n"
    "    t = _DT[dt]\n"
    "    s = np.dtype(t).itemsize\n"
    "    shape, strides = ((h, w), (stride, s)) if c == 1 else ((h, w, c), (stride, c * s, s))\n"
    "    return np.ndarray(shape, dtype=t, buffer=buf, strides=strides)\n"
    "def call(f, kw, ib, h, w, c, dt, stride, halo, ob, oh, ow, odt, ostride):\n"
    "    a = view(ib, h, w, c, dt, stride)\n"
    "    try:\n"
    "        r = np.asarray(f(a, **kw))\n"
    "    except Exception as e:\n"
    "        return last_line(e)\n"
    "    want = a.shape[2:]\n"
    "    if r.shape == a.shape:\n"
    "        r = r[halo:h - halo, halo:w - halo]\n"
    "    elif r.shape != (oh, ow) + want:\n"
    "        return ('returned an array of shape %s; expected %s (the tile with its halo) or %s (its core)'\n"
    "                % (r.shape, a.shape, (oh, ow) + want))\n"
    "    t = _DT[odt]\n"
    "    if r.dtype.kind not in 'biuf':\n"
    "        return 'returned dtype %s; expected numbers (bool, integers or floats)' % r.dtype\n"
    "    if r.dtype != t and t != np.float32:\n"
    "        i = np.iinfo(t)\n"
    "        r = np.clip(np.rint(r) if r.dtype.kind == 'f' else r, i.min, i.max)\n"
    "    view(ob, oh, ow, c, odt, ostride)[...] = r\n"
    "    return None\n";

static pthread_once_t once = PTHREAD_ONCE_INIT;
static PyObject *g_resolve, *g_call; /* the glue's functions */
static char start_error[512];

static void set_error_from_python(void) {
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyObject *s = value ? PyObject_Str(value) : NULL;
  const char *msg = s ? PyUnicode_AsUTF8(s) : NULL;
  snprintf(start_error, sizeof start_error, "%s", msg ? msg : "an unknown Python error");
  Py_XDECREF(s);
  Py_XDECREF(type);
  Py_XDECREF(value);
  Py_XDECREF(tb);
  PyErr_Clear();
}

/* Start the interpreter (this rank's only one), put the working directory
 * first on sys.path (as `python -m` does), compile the glue, release the
 * GIL. Signal handlers stay tessera's (SIGTERM, SIGUSR1). */
static void start(void) {
  Py_InitializeEx(0);
  PyObject *mod = NULL;
  int ok = PyRun_SimpleString("import sys; sys.path.insert(0, '')") == 0;
  PyObject *code = ok ? Py_CompileString(glue, "<tessera>", Py_file_input) : NULL;
  if (code) mod = PyImport_ExecCodeModule("_tessera_glue", code);
  if (mod) {
    g_resolve = PyObject_GetAttrString(mod, "resolve");
    g_call = PyObject_GetAttrString(mod, "call");
  }
  if (!g_resolve || !g_call) set_error_from_python();
  Py_XDECREF(code);
  Py_XDECREF(mod);
  PyEval_SaveThread();
}

static const ts_param_def py_params[] = {
    {"halo", TS_PARAM_INT, "0", 0, 65536, 0, NULL, "pixels of context the function needs on each side"},
    {"out_dtype", TS_PARAM_CHOICE, "same", 0, 0, 0, "same|u8|u16|f32",
     "output dtype: same as the input, or one the result is converted to"},
};

static ts_status py_prepare(ts_kernel *k, ts_error *err) {
  k->halo = (int64_t)k->v[0].num;
  if (k->v[1].num > 0) k->out_dtype = (ts_dtype)((int)k->v[1].num - 1);
  return TS_OK;
}

typedef struct py_state {
  PyObject *f, *kw;
} py_state;

static ts_status py_setup(const ts_kernel *k, void **state, ts_error *err) {
  pthread_once(&once, start);
  if (!g_call)
    return ts_fail(err, TS_ERR_PIPELINE, "%s: cannot start Python with numpy: %s", k->def->name, start_error);
  PyGILState_STATE g = PyGILState_Ensure();
  ts_status st = TS_OK;
  PyObject *r = PyObject_CallFunction(g_resolve, "ss", k->def->name + 3, k->kwargs ? k->kwargs : "");
  if (!r) {
    set_error_from_python();
    st = ts_fail(err, TS_ERR_PIPELINE, "%s: %s", k->def->name, start_error);
  } else if (PyUnicode_Check(r)) {
    st = ts_fail(err, TS_ERR_PIPELINE, "%s: %s", k->def->name, PyUnicode_AsUTF8(r));
  } else {
    py_state *s = malloc(sizeof *s);
    if (!s) st = ts_fail(err, TS_ERR_NOMEM, "out of memory");
    else {
      s->f = PyTuple_GetItem(r, 0), s->kw = PyTuple_GetItem(r, 1);
      Py_INCREF(s->f), Py_INCREF(s->kw);
      *state = s;
    }
  }
  Py_XDECREF(r);
  PyGILState_Release(g);
  return st;
}

static void py_teardown(void *state) {
  py_state *s = state;
  PyGILState_STATE g = PyGILState_Ensure();
  Py_XDECREF(s->f);
  Py_XDECREF(s->kw);
  PyGILState_Release(g);
  free(s);
}

/* Bytes a view spans: its rows up to the last one's end. */
static Py_ssize_t span(const ts_image *im) {
  return (Py_ssize_t)(im->stride * (im->h - 1) + im->w * (int64_t)ts_pixel_size(im));
}

static ts_status py_apply(const ts_kernel *k, const ts_image *in, ts_image *out, ts_scratch *scratch,
                          ts_error *err) {
  const py_state *s = k->state;
  if (out->w == 0 || out->h == 0) return TS_OK;
  PyGILState_STATE g = PyGILState_Ensure();
  ts_status st = TS_OK;
  PyObject *ib = PyMemoryView_FromMemory(in->data, span(in), PyBUF_READ);
  PyObject *ob = PyMemoryView_FromMemory(out->data, span(out), PyBUF_WRITE);
  PyObject *r = ib && ob ? PyObject_CallFunction(g_call, "OOOnnninnOnnin", s->f, s->kw, ib, (Py_ssize_t)in->h,
                                                 (Py_ssize_t)in->w, (Py_ssize_t)in->channels, (int)in->dtype,
                                                 (Py_ssize_t)in->stride, (Py_ssize_t)k->halo, ob, (Py_ssize_t)out->h,
                                                 (Py_ssize_t)out->w, (int)out->dtype, (Py_ssize_t)out->stride)
                         : NULL;
  if (!r) {
    set_error_from_python();
    st = ts_fail(err, TS_ERR_FORMAT, "%s: %s", k->def->name, start_error);
  } else if (r != Py_None) {
    st = ts_fail(err, TS_ERR_FORMAT, "%s: %s", k->def->name, PyUnicode_AsUTF8(r));
  }
  Py_XDECREF(r);
  Py_XDECREF(ib);
  Py_XDECREF(ob);
  PyGILState_Release(g);
  return st;
}

/* The definitions made so far: one per name, kept for the process. */
static pthread_mutex_t defs_lock = PTHREAD_MUTEX_INITIALIZER;
static ts_kernel_def *defs[256];
static int ndefs;

static int is_name(const char *s) { /* MODULE.FUNCTION: identifiers and dots, one dot at least */
  int dot = 0, prev = '.';
  for (; *s; prev = *s++) {
    if (*s == '.') {
      if (prev == '.') return 0;
      dot = 1;
    } else if (!(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                 (*s >= '0' && *s <= '9' && prev != '.'))) {
      return 0;
    }
  }
  return dot && prev != '.';
}

const ts_kernel_def *ts_python_find(const char *name) {
  if (strncmp(name, "py:", 3) || !is_name(name + 3) || strlen(name) > 200) return NULL;
  const ts_kernel_def *found = NULL;
  pthread_mutex_lock(&defs_lock);
  for (int i = 0; i < ndefs && !found; i++)
    if (!strcmp(defs[i]->name, name)) found = defs[i];
  if (!found && ndefs < (int)(sizeof defs / sizeof defs[0])) {
    ts_kernel_def *d = calloc(1, sizeof *d);
    char *n = strdup(name);
    if (d && n) {
      *d = (ts_kernel_def){
          .name = n,
          .summary = "a Python function on each tile with its halo, as a numpy array (one call at a time per "
                     "rank: use ranks, not threads)",
          .params = py_params, .nparams = 2, .dtypes = TS_DTYPES_ALL, .channels = TS_CHANNELS_ANY,
          .halo_doc = "halo", .flags = TS_KERNEL_KWARGS, .prepare = py_prepare, .apply = py_apply,
          .setup = py_setup, .teardown = py_teardown};
      found = defs[ndefs++] = d;
    } else {
      free(d);
      free(n);
    }
  }
  pthread_mutex_unlock(&defs_lock);
  return found;
}
