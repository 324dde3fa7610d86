/* tessera kernels: the kernel table, printed from the registry that the
 * pipeline parser validates against. */
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#include "cli/job_opts.h"
#include "tessera/plugin.h"

static const char *type_name(ts_param_type t) {
  static const char *const n[] = {"int", "float", "bool", "choice", "list", "text"};
  return n[t];
}

static void dtypes(unsigned mask, char *buf, size_t cap) {
  buf[0] = '\0';
  for (int d = 0; d < TS_DTYPE_COUNT; d++)
    if (mask & TS_DTYPE_BIT(d))
      snprintf(buf + strlen(buf), cap - strlen(buf), "%s%s", buf[0] ? " " : "", ts_dtype_name((ts_dtype)d));
}

static void range(const ts_param_def *p, char *buf, size_t cap) {
  if (p->type == TS_PARAM_CHOICE) snprintf(buf, cap, "%s", p->choices);
  else if (p->type == TS_PARAM_BOOL) snprintf(buf, cap, "true|false");
  else if (p->type == TS_PARAM_STRING) snprintf(buf, cap, "path");
  else
    snprintf(buf, cap, "%s%g, %g]%s", (p->flags & TS_PARAM_MIN_OPEN) ? "(" : "[", p->min, p->max,
             (p->flags & TS_PARAM_ODD) ? " odd" : "");
}

/* Print s with '|' escaped, for a Markdown table cell. */
static void md_cell(const char *s) {
  for (; *s; s++) {
    if (*s == '|') putchar('\\');
    putchar(*s);
  }
}

static const char help[] =
    "usage: tessera kernels [--markdown] [--plugin PATH.so ...]\n\nList every kernel: parameters with type, default\n"
    "and range, the dtypes it takes, and its halo; with the kernels of the plugins\n"
    "given and of TESSERA_PLUGIN_PATH (files or directories of *.so, ':' between).\n"
    "Python functions run as py:MODULE.FUNCTION [halo=N] [out_dtype=D] [key=value ...].\n";

int ts_cmd_kernels(int argc, char **argv) {
  int md = 0;
  if (ts_cli_env_plugins()) return TS_EXIT_USAGE;
  for (int i = 1; i < argc; i++) {
    ts_error e = {0};
    if (!strcmp(argv[i], "--markdown")) {
      md = 1;
    } else if (!strcmp(argv[i], "--plugin") && i + 1 < argc) {
      if (ts_plugin_load(argv[++i], &e)) {
        ts_cli_error("%s", e.msg);
        return TS_EXIT_USAGE;
      }
    } else if (!strncmp(argv[i], "--plugin=", 9)) {
      if (ts_plugin_load(argv[i] + 9, &e)) {
        ts_cli_error("%s", e.msg);
        return TS_EXIT_USAGE;
      }
    } else {
      fputs(help, strcmp(argv[i], "--help") ? stderr : stdout);
      return strcmp(argv[i], "--help") ? TS_EXIT_USAGE : TS_EXIT_OK;
    }
  }
  const ts_kernel_def *const *reg = ts_kernel_registry();
  char dt[32], rg[64];
  if (md) {
    puts("| kernel | parameters | dtypes | halo | what it does |");
    puts("|---|---|---|---|---|");
  }
  for (int i = 0; reg[i]; i++) {
    const ts_kernel_def *k = reg[i];
    dtypes(k->dtypes, dt, sizeof dt);
    if (md) {
      printf("| `%s` | ", k->name);
      for (int j = 0; j < k->nparams; j++) {
        range(&k->params[j], rg, sizeof rg);
        printf("%s`%s` %s ", j ? "<br>" : "", k->params[j].name, type_name(k->params[j].type));
        md_cell(rg);
        printf(", default %s", k->params[j].def ? k->params[j].def
                               : (k->params[j].flags & TS_PARAM_OPTIONAL) ? "none" : "required");
      }
      printf("%s | %s | %s | %s |\n", k->nparams ? "" : "none", dt, k->halo_doc, k->summary);
      continue;
    }
    ts_plugin_desc pd;
    printf("%-10s %s\n", k->name, k->summary);
    if (ts_plugin_get(ts_plugin_of(k), &pd) == 0) printf("           from plugin %s (%s)\n", pd.name, pd.path);
    printf("           dtypes: %s; halo: %s\n", dt, k->halo_doc);
    for (int j = 0; j < k->nparams; j++) {
      const ts_param_def *p = &k->params[j];
      range(p, rg, sizeof rg);
      printf("           %-10s %-6s %-22s default %-9s %s\n", p->name, type_name(p->type), rg,
             p->def ? p->def : (p->flags & TS_PARAM_OPTIONAL) ? "(optional)" : "(required)", p->summary);
    }
  }
  if (!md)
    puts("\npy:MODULE.FUNCTION  a Python function (CPython embedded, one interpreter per rank) called\n"
         "           on each tile with its halo as a read-only numpy array; returns the tile (or its\n"
         "           core). Calls hold the GIL, one at a time per rank: run Python kernels with\n"
         "           ranks (mpirun -np N --threads 1), not threads.\n"
         "           halo       int    [0, 65536]             default 0         pixels of context on each side\n"
         "           out_dtype  choice same|u8|u16|f32      default same      the output dtype (rounded, clipped)\n"
         "           key=value  any other word: a keyword argument (ints and floats parsed, else text)");
  return TS_EXIT_OK;
}
