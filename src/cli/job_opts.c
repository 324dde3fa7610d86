/* The option table shared by the command line and job files. */
#include <getopt.h>
#include <ini.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "cli/job_opts.h"
#include "core/params.h"
#include "tessera/plugin.h"

typedef struct spec {
  const char *name;
  int short_name;
  const char *section; /* its job-file section */
  int flag;            /* takes no value on the command line */
  int path;            /* a path: relative ones resolve against the job file */
  unsigned cmds;
  int (*set)(ts_cli_opts *o, const char *v, const char *where);
} spec;

/* Setters: 0 on success, else print "where: problem" and return -1. */
static int bad(const char *where, const char *what, const char *v, const char *expect) {
  ts_cli_error("%s%s %s: expected %s", where, what, v, expect);
  return -1;
}
static int set_input(ts_cli_opts *o, const char *v, const char *w) { o->job.input = v; return 0; }
static int set_output(ts_cli_opts *o, const char *v, const char *w) { o->job.output = v; return 0; }
static int set_pipeline(ts_cli_opts *o, const char *v, const char *w) { o->job.pipeline = v; return 0; }
/* --plugin PATH: loaded at once, so the pipeline can name its kernels */
static int set_plugin(ts_cli_opts *o, const char *v, const char *w) {
  ts_error e = {0};
  if (ts_plugin_load(v, &e) == TS_OK) return 0;
  ts_cli_error("%s%s", w, e.msg);
  return -1;
}
/* plugins = A.so B.so (a job file's [pipeline]; spaces or commas between) */
static int set_plugins(ts_cli_opts *o, const char *v, const char *w) {
  char *copy = strdup(v), *save = NULL;
  int bad = !copy;
  for (char *p = copy ? strtok_r(copy, " ,\t", &save) : NULL; p && !bad; p = strtok_r(NULL, " ,\t", &save))
    bad = set_plugin(o, p, w);
  free(copy);
  return bad ? -1 : 0;
}
static int set_glob(ts_cli_opts *o, const char *v, const char *w) { o->job.glob = v; return 0; }
static int set_format(ts_cli_opts *o, const char *v, const char *w) { o->job.format = v; return 0; }
static int set_stats(ts_cli_opts *o, const char *v, const char *w) { o->stats = v; return 0; }
static int set_trace(ts_cli_opts *o, const char *v, const char *w) { o->trace = v; return 0; }
static int set_size(ts_cli_opts *o, const char *v, const char *w) { o->size = v; return 0; }
static int set_dtype(ts_cli_opts *o, const char *v, const char *w) { o->dtype = v; return 0; }
static int set_int(int64_t *dst, const char *v, const char *w, const char *name, int64_t lo, int64_t hi) {
  int64_t x;
  char expect[96];
  snprintf(expect, sizeof expect, "an integer from %lld to %lld", (long long)lo, (long long)hi);
  if (ts_parse_int64(v, &x) || x < lo || x > hi) return bad(w, name, v, expect);
  *dst = x;
  return 0;
}
static int set_strips(ts_cli_opts *o, const char *v, const char *w) {
  return set_int(&o->job.strips, v, w, "--strips", 1, (int64_t)1 << 31);
}
static int set_tile(ts_cli_opts *o, const char *v, const char *w) {
  return set_int(&o->job.tile, v, w, "--tile", 16, (int64_t)1 << 20);
}
static int set_out_tile(ts_cli_opts *o, const char *v, const char *w) {
  return set_int(&o->job.out_tile, v, w, "--out-tile", 16, (int64_t)1 << 20);
}
static int set_threads(ts_cli_opts *o, const char *v, const char *w) {
  int64_t x;
  if (set_int(&x, v, w, "--threads", 1, 4096)) return -1;
  o->job.threads = (int)x;
  return 0;
}
static int set_credits(ts_cli_opts *o, const char *v, const char *w) {
  int64_t x;
  if (set_int(&x, v, w, "--credits", 1, 1024)) return -1;
  o->job.credits = (int)x;
  return 0;
}
static int set_quality(ts_cli_opts *o, const char *v, const char *w) {
  int64_t x;
  if (set_int(&x, v, w, "--jpeg-quality", 1, 100)) return -1;
  o->job.quality = (int)x;
  return 0;
}
static int set_level(ts_cli_opts *o, const char *v, const char *w) {
  int64_t x;
  if (set_int(&x, v, w, "--compression-level", 0, 22)) return -1;
  o->job.compression_level = (int)x;
  return 0;
}
static int set_channels(ts_cli_opts *o, const char *v, const char *w) {
  return set_int(&o->channels, v, w, "--channels", 1, TS_MAX_CHANNELS);
}
static int set_bool(int *dst, const char *v, const char *w, const char *name) {
  return ts_parse_bool(v, dst) ? bad(w, name, v, "true or false") : 0;
}
static int set_max_pixels(ts_cli_opts *o, const char *v, const char *w) {
  return set_int(&o->job.max_image_pixels, v, w, "--max-image-pixels", 0, INT64_MAX);
}
static int set_page(ts_cli_opts *o, const char *v, const char *w) {
  return set_int(&o->job.page, v, w, "--page", 0, (int64_t)1 << 30);
}
static int set_input_level(ts_cli_opts *o, const char *v, const char *w) {
  return set_int(&o->job.input_level, v, w, "--input-level", 0, TS_MAX_LEVELS - 1);
}
static int set_pyramid(ts_cli_opts *o, const char *v, const char *w) {
  return set_bool(&o->job.pyramid, v, w, "--pyramid");
}
static int set_pyramid_levels(ts_cli_opts *o, const char *v, const char *w) {
  int64_t n;
  if (set_int(&n, v, w, "--pyramid-levels", 1, TS_MAX_LEVELS - 1)) return -1;
  o->job.pyramid_levels = (int)n;
  o->job.pyramid = 1;
  return 0;
}
static int set_zarr_format(ts_cli_opts *o, const char *v, const char *w) {
  int64_t n;
  if (set_int(&n, v, w, "--zarr-format", 2, 3)) return -1;
  o->job.zarr_format = (int)n;
  return 0;
}
static int set_shard(ts_cli_opts *o, const char *v, const char *w) {
  int64_t n;
  if (set_int(&n, v, w, "--shard", 1, 1024)) return -1;
  o->job.shard = (int)n;
  return 0;
}
static int set_downsample(ts_cli_opts *o, const char *v, const char *w) {
  return ts_downsample_parse(v, &o->job.downsample) ? bad(w, "--downsample", v, "mean, nearest, max or min") : 0;
}
/* a number ("nan", "-9999") or "none"; checked against the output's dtype
 * when the plan knows it */
static int set_nodata(ts_cli_opts *o, const char *v, const char *w) {
  char *end;
  if (strcmp(v, "none") != 0 && (strtod(v, &end), end == v || *end))
    return bad(w, "--nodata", v, "a number, nan or none");
  o->job.nodata = v;
  return 0;
}
static int set_layout(ts_cli_opts *o, const char *v, const char *w) {
  ts_layout l;
  if (ts_layout_parse(v, &l)) return bad(w, "--layout", v, "plain, ome or cog");
  o->job.layout = (int)l;
  return 0;
}
static int set_recursive(ts_cli_opts *o, const char *v, const char *w) {
  return set_bool(&o->job.recursive, v, w, "--recursive");
}
static int set_images(ts_cli_opts *o, const char *v, const char *w) {
  int yes;
  if (set_bool(&yes, v, w, "--images")) return 1;
  o->job.no_images = !yes;
  return 0;
}
static int set_force(ts_cli_opts *o, const char *v, const char *w) {
  return set_bool(&o->job.force, v, w, "--force");
}
static int set_resume(ts_cli_opts *o, const char *v, const char *w) {
  return set_bool(&o->job.resume, v, w, "--resume");
}
static int set_checkpoint_tasks(ts_cli_opts *o, const char *v, const char *w) {
  return set_int(&o->job.checkpoint_tasks, v, w, "--checkpoint-tasks", 0, 1 << 30);
}
static int set_checkpoint_seconds(ts_cli_opts *o, const char *v, const char *w) {
  double x;
  if (ts_parse_double(v, &x) || !(x >= 0)) return bad(w, "--checkpoint-seconds", v, "a number of seconds >= 0");
  o->job.checkpoint_seconds = x;
  return 0;
}
static int set_quiet(ts_cli_opts *o, const char *v, const char *w) {
  return set_bool(&o->quiet, v, w, "--quiet");
}
static int set_boundary(ts_cli_opts *o, const char *v, const char *w) {
  return ts_boundary_parse(v, &o->job.boundary)
             ? bad(w, "--boundary", v, "reflect, mirror, nearest, constant or wrap") : 0;
}
static int set_cval(ts_cli_opts *o, const char *v, const char *w) {
  return ts_parse_double(v, &o->job.cval) ? bad(w, "--cval", v, "a number") : 0;
}
static int set_compression(ts_cli_opts *o, const char *v, const char *w) {
  return ts_compression_parse(v, &o->job.compression)
             ? bad(w, "--compression", v, "none, deflate (zlib), lzw, zstd, jpeg, blosc-lz4 or blosc-zstd") : 0;
}
static int set_io(ts_cli_opts *o, const char *v, const char *w) {
  if (!strcmp(v, "root")) o->job.io = TS_IO_ROOT;
  else if (!strcmp(v, "direct")) o->job.io = TS_IO_DIRECT;
  else return bad(w, "--io", v, "root or direct");
  return 0;
}
static int set_root_compute(ts_cli_opts *o, const char *v, const char *w) {
  if (!strcmp(v, "auto")) o->job.root_compute = -1;
  else if (ts_parse_bool(v, &o->job.root_compute)) return bad(w, "--root-compute", v, "auto, yes or no");
  return 0;
}

#define R TS_CMD_RUN
#define G TS_CMD_GENERATE
static const spec specs[] = {
    {"input", 'i', "input", 0, 1, R, set_input},
    {"glob", 0, "input", 0, 0, R, set_glob},
    {"recursive", 0, "input", 1, 0, R, set_recursive},
    {"strips", 0, "input", 0, 0, R, set_strips},
    {"max-image-pixels", 0, "input", 0, 0, R, set_max_pixels},
    {"page", 0, "input", 0, 0, R, set_page},
    {"input-level", 0, "input", 0, 0, R, set_input_level},
    {"output", 'o', "output", 0, 1, R | G, set_output},
    {"format", 0, "output", 0, 0, R, set_format},
    {"images", 0, "output", 0, 0, R, set_images},
    {"compression", 0, "output", 0, 0, R | G, set_compression},
    {"jpeg-quality", 0, "output", 0, 0, R | G, set_quality},
    {"compression-level", 0, "output", 0, 0, R | G, set_level},
    {"force", 0, "output", 1, 0, R | G, set_force},
    {"pyramid", 0, "output", 1, 0, R, set_pyramid},
    {"pyramid-levels", 0, "output", 0, 0, R, set_pyramid_levels},
    {"zarr-format", 0, "output", 0, 0, R, set_zarr_format},
    {"shard", 0, "output", 0, 0, R, set_shard},
    {"downsample", 0, "output", 0, 0, R, set_downsample},
    {"nodata", 0, "output", 0, 0, R, set_nodata},
    {"layout", 0, "output", 0, 0, R, set_layout},
    {"pipeline", 'p', "pipeline", 0, 0, R, set_pipeline},
    {"boundary", 0, "pipeline", 0, 0, R, set_boundary},
    {"cval", 0, "pipeline", 0, 0, R, set_cval},
    {"plugin", 0, "pipeline", 0, 1, R, set_plugin},
    {"plugins", 0, "pipeline", 0, 0, R, set_plugins},
    {"tile", 0, "partition", 0, 0, R | G, set_tile},
    {"out-tile", 0, "partition", 0, 0, R | G, set_out_tile},
    {"threads", 0, "run", 0, 0, R | G, set_threads},
    {"io", 0, "run", 0, 0, R, set_io},
    {"root-compute", 0, "run", 0, 0, R, set_root_compute},
    {"credits", 0, "run", 0, 0, R, set_credits},
    {"stats", 0, "run", 0, 1, R, set_stats},
    {"trace", 0, "run", 0, 1, R, set_trace},
    {"quiet", 0, "run", 1, 0, R | G, set_quiet},
    {"resume", 0, "run", 1, 0, R, set_resume},
    {"checkpoint-tasks", 0, "run", 0, 0, R, set_checkpoint_tasks},
    {"checkpoint-seconds", 0, "run", 0, 0, R, set_checkpoint_seconds},
    {"size", 's', "input", 0, 0, G, set_size},
    {"dtype", 'd', "input", 0, 0, G, set_dtype},
    {"channels", 'c', "input", 0, 0, G, set_channels},
};
#undef R
#undef G
enum { NSPECS = sizeof specs / sizeof *specs };

void ts_cli_opts_init(ts_cli_opts *o) {
  memset(o, 0, sizeof *o);
  ts_job_init(&o->job);
  o->dtype = "u8";
  o->channels = 1;
}

void ts_cli_opts_free(ts_cli_opts *o) {
  for (int i = 0; i < o->nowned; i++) free(o->owned[i]);
  free(o->owned);
  o->owned = NULL;
  o->nowned = o->capowned = 0;
}

/* A pipeline line with its relative with=PATH and db=PATH (blend's image,
 * patch_replace's database) made relative to the job file's directory;
 * NULL when there is none to change. */
static int path_word(const char *p) {
  return !strncmp(p, "with=", 5) ? 5 : !strncmp(p, "db=", 3) ? 3 : 0;
}

static char *with_paths(const char *value, const char *dir) {
  if (!strstr(value, "with=") && !strstr(value, "db=")) return NULL;
  size_t cap = strlen(value) * 2 + 8 * strlen(dir) + 16, n = 0;
  char *out = malloc(cap);
  if (!out) return NULL;
  for (const char *p = value; *p;) {
    int start = (p == value || p[-1] == ' ' || p[-1] == '\t'), k = start ? path_word(p) : 0;
    if (k && p[k] && p[k] != '/' && p[k] != '@' && n + strlen(dir) + 8 < cap) {
      n += (size_t)snprintf(out + n, cap - n, "%.*s%s/", k, p, dir);
      p += k;
      continue;
    }
    if (n + 1 < cap) out[n++] = *p;
    p++;
  }
  out[n] = '\0';
  return out;
}

static char *own(ts_cli_opts *o, char *s) {
  if (s && o->nowned == o->capowned) { /* a job file may repeat a key any number of times */
    char **g = realloc(o->owned, (size_t)(2 * o->capowned + 16) * sizeof *g);
    if (!g) {
      free(s);
      return NULL;
    }
    o->owned = g;
    o->capowned = 2 * o->capowned + 16;
  }
  if (s) o->owned[o->nowned++] = s;
  return s;
}

/* The spec named `key` (a job-file key may use '_' for '-'). */
static const spec *find(const char *key, unsigned cmd) {
  char name[64];
  snprintf(name, sizeof name, "%s", key);
  for (char *c = name; *c; c++)
    if (*c == '_') *c = '-';
  for (int i = 0; i < NSPECS; i++)
    if ((specs[i].cmds & cmd) && !strcmp(specs[i].name, name)) return &specs[i];
  return NULL;
}

typedef struct ini_ctx {
  ts_cli_opts *o;
  const char *file;
  char *dir; /* the job file's directory */
  unsigned cmd;
  int failed;
  int pipeline_lines; /* a multi-line pipeline arrives line by line */
} ini_ctx;

static int on_ini(void *user, const char *section, const char *key, const char *value) {
  ini_ctx *c = user;
  char where[512];
  snprintf(where, sizeof where, "%s: [%s] %s: ", c->file, section, key);
  const spec *s = find(key, c->cmd);
  if (!s) {
    char keys[512] = "";
    for (int i = 0; i < NSPECS; i++)
      if ((specs[i].cmds & c->cmd) && !strcmp(specs[i].section, section))
        snprintf(keys + strlen(keys), sizeof keys - strlen(keys), "%s%s", keys[0] ? ", " : "", specs[i].name);
    if (keys[0])
      ts_cli_error("%s: unknown key '%s' in [%s]; valid keys there: %s", c->file, key, section, keys);
    else
      ts_cli_error("%s: unknown section [%s]; sections: input, output, pipeline, partition, run",
                   c->file, section);
    c->failed = 1;
    return 0;
  }
  if (strcmp(s->section, section)) {
    ts_cli_error("%s: key '%s' belongs in [%s], not [%s]", c->file, key, s->section, section);
    c->failed = 1;
    return 0;
  }
  char *v, *fixed = NULL;
  if (!strcmp(s->name, "pipeline") && (fixed = with_paths(value, c->dir))) value = own(c->o, fixed);
  if (!value) {
    c->failed = 1;
    return 0;
  }
  if (!strcmp(s->name, "plugins")) { /* several paths, each relative to the job file */
    v = own(c->o, malloc(strlen(value) * 2 + 64 + 16 * strlen(c->dir)));
    char *copy = strdup(value), *save = NULL;
    if (v && copy) {
      v[0] = '\0';
      for (char *p = strtok_r(copy, " ,\t", &save); p; p = strtok_r(NULL, " ,\t", &save))
        sprintf(v + strlen(v), "%s%s%s%s", v[0] ? " " : "", p[0] == '/' ? "" : c->dir, p[0] == '/' ? "" : "/", p);
    }
    free(copy);
  } else if (!strcmp(s->name, "pipeline") && c->pipeline_lines++) { /* continuation line */
    size_t n = strlen(c->o->job.pipeline) + strlen(value) + 2;
    v = own(c->o, malloc(n));
    if (v) snprintf(v, n, "%s %s", c->o->job.pipeline, value);
  } else if (s->path && value[0] != '/' && strncmp(value, "synth:", 6)) {
    int at = value[0] == '@'; /* @LIST.txt */
    size_t n = strlen(c->dir) + strlen(value) + 2;
    v = at && value[1] == '/' ? own(c->o, strdup(value)) : own(c->o, malloc(n));
    if (v && !(at && value[1] == '/')) snprintf(v, n, "%s%s/%s", at ? "@" : "", c->dir, value + at);
  } else {
    v = own(c->o, strdup(value));
  }
  if (!v || s->set(c->o, v, where)) {
    c->failed = 1;
    return 0;
  }
  return 1;
}

static int load_ini(const char *path, unsigned cmd, ts_cli_opts *o) {
  char *copy = strdup(path);
  ini_ctx c = {.o = o, .file = path, .dir = copy ? dirname(copy) : ".", .cmd = cmd};
  int r = ini_parse(path, on_ini, &c);
  free(copy);
  if (c.failed) return -1;
  if (r == -1) {
    ts_cli_error("%s: cannot open the job file", path);
    return -1;
  }
  if (r != 0) {
    ts_cli_error("%s:%d: not a valid INI line", path, r);
    return -1;
  }
  return 0;
}

int ts_cli_env_plugins(void) {
  const char *env = getenv("TESSERA_PLUGIN_PATH");
  ts_error e = {0};
  if (!env || !*env || ts_plugin_load_path_list(env, &e) == TS_OK) return 0;
  ts_cli_error("TESSERA_PLUGIN_PATH: %s", e.msg);
  return -1;
}

int ts_cli_parse(int argc, char **argv, int cmd, const char *help, ts_cli_opts *o) {
  struct option longopts[NSPECS + 2];
  char shorts[64] = "";
  int n = 0;
  for (int i = 0; i < NSPECS; i++) {
    if (!(specs[i].cmds & cmd)) continue;
    longopts[n++] = (struct option){specs[i].name, specs[i].flag ? no_argument : required_argument, NULL, 1000 + i};
    if (specs[i].short_name) snprintf(shorts + strlen(shorts), sizeof shorts - strlen(shorts), "%c:", specs[i].short_name);
  }
  longopts[n++] = (struct option){"help", no_argument, NULL, 'h'};
  longopts[n] = (struct option){NULL, 0, NULL, 0};
  /* first pass: collect; the job file is applied before the options */
  struct { const spec *s; const char *v; } given[256];
  int ngiven = 0, c;
  optind = 1;
  while ((c = getopt_long(argc, argv, shorts, longopts, NULL)) != -1) {
    const spec *s = NULL;
    if (c == 'h') {
      fputs(help, stdout);
      return TS_EXIT_OK;
    }
    if (c >= 1000) s = &specs[c - 1000];
    for (int i = 0; !s && i < NSPECS; i++)
      if ((specs[i].cmds & cmd) && specs[i].short_name == c) s = &specs[i];
    if (!s || ngiven == 256) {
      fputs(help, stderr);
      return TS_EXIT_USAGE;
    }
    given[ngiven].s = s;
    given[ngiven++].v = s->flag ? "true" : optarg;
  }
  if (cmd == TS_CMD_RUN && ts_cli_env_plugins()) return TS_EXIT_USAGE;
  if (optind < argc && cmd == TS_CMD_RUN && optind + 1 == argc) {
    if (load_ini(argv[optind], (unsigned)cmd, o)) return TS_EXIT_USAGE;
  } else if (optind < argc) {
    ts_cli_error("unexpected argument '%s'", argv[optind]);
    return TS_EXIT_USAGE;
  }
  for (int i = 0; i < ngiven; i++)
    if (given[i].s->set(o, given[i].v, "")) return TS_EXIT_USAGE;
  return -1;
}
