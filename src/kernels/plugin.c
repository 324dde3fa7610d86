/* Kernel plugins: shared objects whose entry point returns kernel
 * definitions (tessera/plugin.h). Each is checked at load and its kernels
 * join the registry (registry.c) after the built-ins. The per-rank set-up
 * states of kernels with a setup hook live here too, one per kernel text,
 * until the rank ends.
 *
 * Loading happens before any pipeline is parsed, on one thread; the state
 * table is the only part used from several threads (a lock). */
#define _GNU_SOURCE /* memfd_create */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "kernels/defs.h"
#include "tessera/plugin.h"

#define MAX_PLUGINS 64
#define MAX_PLUGIN_BYTES ((size_t)1 << 30)

typedef struct plugin {
  char *path, *name;
  unsigned char *bytes;
  size_t size;
  uint64_t hash;
  void *handle;
  int memfd; /* loaded from memory: the anonymous file, kept open while loaded */
  const ts_kernel_def *const *kernels;
  int nkernels;
} plugin;

static plugin plugins[MAX_PLUGINS];
static int nplugins;

static uint64_t fnv1a(const unsigned char *p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

static int name_ok(const char *s) {
  if (!s || !*s || strlen(s) > 63 || !strncmp(s, "py:", 3)) return 0;
  for (; *s; s++)
    if (*s == '|' || *s == '=' || *s == ' ' || *s == '\t' || *s == '\n') return 0;
  return 1;
}

/* One definition's shape: what the parser and the engine rely on. */
static ts_status check_def(const char *path, const ts_kernel_def *d, ts_error *err) {
  if (!name_ok(d->name))
    return ts_fail(err, TS_ERR_FORMAT, "plugin %s: a kernel has a bad name '%s' (1..63 characters, no spaces, "
                   "'|' or '=', not py:)", path, d->name ? d->name : "(null)");
#define BAD(...) ts_fail(err, TS_ERR_FORMAT, "plugin %s: kernel %s: " __VA_ARGS__)
  if (!d->summary || !d->halo_doc) return BAD("no summary or halo_doc", path, d->name);
  if (!d->dtypes || (d->dtypes & ~(unsigned)((1u << TS_DTYPE_COUNT) - 1)))
    return BAD("dtypes 0x%x is not a set of TS_DTYPE_BIT()s", path, d->name, d->dtypes);
  if (!d->channels || (d->channels & ~TS_CHANNELS_ANY))
    return BAD("channels 0x%x is not a set of 1u << n for n in 1..4", path, d->name, d->channels);
  if ((d->flags & TS_KERNEL_WHOLE) ? !d->apply_image : !d->apply)
    return BAD("no %s function", path, d->name, (d->flags & TS_KERNEL_WHOLE) ? "apply_image" : "apply");
  if (d->flags & ~(unsigned)TS_KERNEL_WHOLE) return BAD("unknown flags 0x%x", path, d->name, d->flags);
  if (d->nparams < 0 || d->nparams > TS_MAX_PARAMS || (d->nparams && !d->params))
    return BAD("%d parameters (at most %d)", path, d->name, d->nparams, TS_MAX_PARAMS);
  if (d->stages && !(d->stats_size && d->stats_init && d->accumulate && d->merge && d->resolve))
    return BAD("stages without every statistics hook", path, d->name);
  if (!d->setup != !d->teardown) return BAD("setup and teardown come together", path, d->name);
  for (int i = 0; i < d->nparams; i++) {
    const ts_param_def *p = &d->params[i];
    if (!name_ok(p->name) || !p->summary)
      return BAD("parameter %d has a bad name or no summary", path, d->name, i);
    if ((unsigned)p->type > TS_PARAM_STRING) return BAD("parameter %s has type %d", path, d->name, p->name, p->type);
    if (p->type == TS_PARAM_CHOICE && !p->choices) return BAD("choice %s has no choices", path, d->name, p->name);
    if ((p->type == TS_PARAM_INT || p->type == TS_PARAM_FLOAT) && !(p->min <= p->max))
      return BAD("parameter %s has min %g > max %g", path, d->name, p->name, p->min, p->max);
    for (int j = 0; j < i; j++)
      if (!strcmp(d->params[j].name, p->name)) return BAD("parameter %s twice", path, d->name, p->name);
  }
#undef BAD
  return TS_OK;
}

/* The loaded object: its entry point, ABI and kernels. */
static ts_status adopt(plugin *pl, ts_error *err) {
  dlerror();
  ts_plugin_entry_fn entry;
  *(void **)&entry = dlsym(pl->handle, TS_PLUGIN_ENTRY);
  if (!entry)
    return ts_fail(err, TS_ERR_FORMAT, "plugin %s: no entry point %s() (is it a tessera plugin? see tessera/plugin.h)",
                   pl->path, TS_PLUGIN_ENTRY);
  const ts_plugin_info *info = entry();
  if (!info) return ts_fail(err, TS_ERR_FORMAT, "plugin %s: %s() returned NULL", pl->path, TS_PLUGIN_ENTRY);
  if (info->abi != TS_PLUGIN_ABI || info->def_size != sizeof(ts_kernel_def) || info->kernel_size != sizeof(ts_kernel))
    return ts_fail(err, TS_ERR_FORMAT, "plugin %s: built for plugin ABI %d (structs of %zu and %zu bytes); this tessera "
                   "has ABI %d (%zu and %zu): rebuild it against this tessera's headers", pl->path, info->abi,
                   info->def_size, info->kernel_size, TS_PLUGIN_ABI, sizeof(ts_kernel_def), sizeof(ts_kernel));
  if (!info->kernels || !info->kernels[0])
    return ts_fail(err, TS_ERR_FORMAT, "plugin %s: defines no kernels", pl->path);
  int n = 0;
  for (; info->kernels[n]; n++) {
    const ts_kernel_def *d = info->kernels[n];
    ts_status st = check_def(pl->path, d, err);
    if (st) return st;
    const ts_kernel_def *other = ts_kernel_find(d->name);
    for (int j = 0; !other && j < n; j++)
      if (!strcmp(info->kernels[j]->name, d->name)) other = info->kernels[j];
    if (other) {
      int from = ts_plugin_of(other);
      return ts_fail(err, TS_ERR_FORMAT, "plugin %s: kernel %s is defined already (%s%s)", pl->path, d->name,
                     from < 0 ? "a built-in kernel" : "by ", from < 0 ? "" : plugins[from].path);
    }
  }
  pl->name = strdup(info->name && *info->name ? info->name : pl->path);
  pl->kernels = info->kernels;
  pl->nkernels = n;
  if (!pl->name || ts_kernel_registry_add(info->kernels, n))
    return ts_fail(err, TS_ERR_NOMEM, "plugin %s: out of memory", pl->path);
  return TS_OK;
}

static void drop(plugin *pl) {
  if (pl->handle) dlclose(pl->handle);
  if (pl->memfd >= 0) close(pl->memfd);
  free(pl->path);
  free(pl->name);
  free(pl->bytes);
  memset(pl, 0, sizeof *pl);
}

/* Load `bytes` (owned from here), from `path` or (memfd) from memory. */
static ts_status load(const char *path, unsigned char *bytes, size_t size, int from_memory, ts_error *err) {
  const uint64_t hash = fnv1a(bytes, size);
  for (int i = 0; i < nplugins; i++)
    if (plugins[i].hash == hash && plugins[i].size == size) { /* this file is in already */
      free(bytes);
      return TS_OK;
    }
  if (nplugins == MAX_PLUGINS) {
    free(bytes);
    return ts_fail(err, TS_ERR_USAGE, "plugin %s: at most %d plugins", path, MAX_PLUGINS);
  }
  plugin *pl = &plugins[nplugins];
  *pl = (plugin){.path = strdup(path), .bytes = bytes, .size = size, .hash = hash, .memfd = -1};
  if (!pl->path) {
    drop(pl);
    return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  }
  char where[64];
  const char *open_path = path;
  if (from_memory) {
    pl->memfd = memfd_create("tessera-plugin", MFD_CLOEXEC);
    size_t at = 0;
    while (pl->memfd >= 0 && at < size) {
      ssize_t w = write(pl->memfd, bytes + at, size - at);
      if (w <= 0) break;
      at += (size_t)w;
    }
    if (pl->memfd < 0 || at != size) {
      ts_status st = ts_fail(err, TS_ERR_IO, "plugin %s: cannot write it to an anonymous file: %s", path, strerror(errno));
      drop(pl);
      return st;
    }
    snprintf(where, sizeof where, "/proc/self/fd/%d", pl->memfd);
    open_path = where;
  }
  /* a path with no '/' would make dlopen search the library path */
  char local[4096];
  if (!strchr(open_path, '/')) snprintf(local, sizeof local, "./%s", open_path), open_path = local;
  pl->handle = dlopen(open_path, RTLD_NOW | RTLD_LOCAL);
  if (!pl->handle) {
    ts_status st = ts_fail(err, TS_ERR_FORMAT, "plugin %s: cannot load it: %s", path, dlerror());
    drop(pl);
    return st;
  }
  ts_status st = adopt(pl, err);
  if (st) {
    drop(pl);
    return st;
  }
  nplugins++;
  return TS_OK;
}

ts_status ts_plugin_load(const char *path, ts_error *err) {
  struct stat sb;
  if (stat(path, &sb) != 0) return ts_fail(err, TS_ERR_IO, "plugin %s: %s", path, strerror(errno));
  if (!S_ISREG(sb.st_mode)) return ts_fail(err, TS_ERR_IO, "plugin %s: not a regular file", path);
  if ((size_t)sb.st_size > MAX_PLUGIN_BYTES) return ts_fail(err, TS_ERR_RANGE, "plugin %s: over 1 GiB", path);
  FILE *f = fopen(path, "rb");
  if (!f) return ts_fail(err, TS_ERR_IO, "plugin %s: %s", path, strerror(errno));
  unsigned char *bytes = malloc((size_t)sb.st_size + 1);
  size_t n = bytes ? fread(bytes, 1, (size_t)sb.st_size, f) : 0;
  fclose(f);
  if (!bytes || n != (size_t)sb.st_size) {
    free(bytes);
    return ts_fail(err, bytes ? TS_ERR_IO : TS_ERR_NOMEM, "plugin %s: cannot read it", path);
  }
  return load(path, bytes, n, 0, err);
}

ts_status ts_plugin_load_bytes(const char *name, const void *bytes, size_t n, ts_error *err) {
  unsigned char *copy = malloc(n ? n : 1);
  if (!copy) return ts_fail(err, TS_ERR_NOMEM, "plugin %s: out of memory", name);
  memcpy(copy, bytes, n);
  return load(name, copy, n, 1, err);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Every *.so in dir, in name order. */
static ts_status load_dir(const char *dir, ts_error *err) {
  DIR *d = opendir(dir);
  if (!d) return ts_fail(err, TS_ERR_IO, "TESSERA_PLUGIN_PATH: %s: %s", dir, strerror(errno));
  char *names[256];
  int n = 0;
  struct dirent *e;
  ts_status st = TS_OK;
  while (st == TS_OK && (e = readdir(d))) {
    size_t len = strlen(e->d_name);
    if (len <= 3 || strcmp(e->d_name + len - 3, ".so")) continue;
    if (n == 256 || !(names[n] = malloc(strlen(dir) + len + 2)))
      st = ts_fail(err, TS_ERR_USAGE, "TESSERA_PLUGIN_PATH: %s: more than 256 plugins (*.so)", dir);
    else
      sprintf(names[n++], "%s/%s", dir, e->d_name);
  }
  closedir(d);
  qsort(names, (size_t)n, sizeof *names, by_name);
  for (int i = 0; i < n; i++) {
    if (st == TS_OK) st = ts_plugin_load(names[i], err);
    free(names[i]);
  }
  return st;
}

ts_status ts_plugin_load_path_list(const char *list, ts_error *err) {
  char *copy = strdup(list ? list : ""), *save = NULL;
  if (!copy) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  ts_status st = TS_OK;
  for (char *e = strtok_r(copy, ":", &save); e && st == TS_OK; e = strtok_r(NULL, ":", &save)) {
    struct stat sb;
    st = stat(e, &sb) == 0 && S_ISDIR(sb.st_mode) ? load_dir(e, err) : ts_plugin_load(e, err);
  }
  free(copy);
  return st;
}

int ts_plugin_count(void) { return nplugins; }

int ts_plugin_get(int i, ts_plugin_desc *out) {
  if (i < 0 || i >= nplugins) return -1;
  const plugin *p = &plugins[i];
  *out = (ts_plugin_desc){p->path, p->name, p->bytes, p->size, p->hash, p->nkernels};
  return 0;
}

int ts_plugin_of(const ts_kernel_def *def) {
  for (int i = 0; i < nplugins; i++)
    for (int j = 0; j < plugins[i].nkernels; j++)
      if (plugins[i].kernels[j] == def) return i;
  return -1;
}

/* ---- set-up states: one per (kernel text, dtype, channels) and rank ---- */

typedef struct state_rec {
  const ts_kernel_def *def;
  char *key;
  void *state;
} state_rec;

static pthread_mutex_t states_lock = PTHREAD_MUTEX_INITIALIZER;
static state_rec *states;
static int nstates, capstates;

ts_status ts_kernel_setup(ts_kernel *k, const char *text, ts_error *err) {
  if (!k->def->setup) return TS_OK;
  char *key = malloc(strlen(text) + 32);
  if (!key) return ts_fail(err, TS_ERR_NOMEM, "out of memory");
  sprintf(key, "%s\n%d %d", text, (int)k->in_dtype, k->in_channels);
  ts_status st = TS_OK;
  pthread_mutex_lock(&states_lock);
  for (int i = 0; i < nstates; i++)
    if (states[i].def == k->def && !strcmp(states[i].key, key)) {
      k->state = states[i].state;
      goto done;
    }
  if (nstates == capstates) {
    int cap = capstates ? 2 * capstates : 8;
    state_rec *s = realloc(states, (size_t)cap * sizeof *s);
    if (!s) {
      st = ts_fail(err, TS_ERR_NOMEM, "out of memory");
      goto done;
    }
    states = s, capstates = cap;
  }
  void *state = NULL;
  if ((st = k->def->setup(k, &state, err)) == TS_OK) {
    states[nstates++] = (state_rec){k->def, key, state};
    k->state = state;
    key = NULL;
  }
done:
  pthread_mutex_unlock(&states_lock);
  free(key);
  return st;
}

void ts_plugins_unload(void) {
  pthread_mutex_lock(&states_lock);
  for (int i = nstates - 1; i >= 0; i--) {
    states[i].def->teardown(states[i].state);
    free(states[i].key);
  }
  free(states);
  states = NULL, nstates = capstates = 0;
  pthread_mutex_unlock(&states_lock);
  ts_kernel_registry_reset();
  for (int i = nplugins - 1; i >= 0; i--) drop(&plugins[i]);
  nplugins = 0;
}
