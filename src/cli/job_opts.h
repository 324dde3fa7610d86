/* Options of the commands that write an image (run, generate), in one
 * table: the command line and job files (INI: [input], [output],
 * [pipeline], [partition], [run]) set them through the same setters, so
 * every job-file key is also a command-line option, spelled the same
 * (`out_tile` or `out-tile`), and the command line wins. */
#ifndef TS_CLI_JOB_OPTS_H
#define TS_CLI_JOB_OPTS_H

#include <stdint.h>
#include "tessera/tessera.h"

enum { TS_CMD_RUN = 1, TS_CMD_GENERATE = 2 };

typedef struct ts_cli_opts {
  ts_job job;
  int quiet;
  const char *stats, *trace;
  const char *size, *dtype; /* generate */
  int64_t channels;         /* generate */
  char **owned;             /* strings from job files, freed with the options */
  int nowned, capowned;
} ts_cli_opts;

void ts_cli_opts_init(ts_cli_opts *o);
void ts_cli_opts_free(ts_cli_opts *o);

/* Parse argv for command `cmd` (TS_CMD_*): options go into o after the job
 * file (run's one positional argument) is loaded. Returns -1 to go on, or
 * the exit status (help printed, or an error reported). */
int ts_cli_parse(int argc, char **argv, int cmd, const char *help, ts_cli_opts *o);

/* Load the plugins TESSERA_PLUGIN_PATH names (files, or directories of
 * *.so); 0, or -1 with the error printed. */
int ts_cli_env_plugins(void);

#endif
