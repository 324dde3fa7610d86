/* The tessera command line: one file per subcommand. */
#ifndef TS_CLI_H
#define TS_CLI_H

#include <stdint.h>
#include "tessera/tessera.h"

/* Exit statuses (documented in the README; scripts depend on them). */
enum {
  TS_EXIT_OK = 0,    /* success */
  TS_EXIT_ERROR = 1, /* the job failed: bad input, I/O error, ... */
  TS_EXIT_USAGE = 2  /* bad command line or pipeline: nothing was done */
};

int ts_cmd_run(int argc, char **argv);
int ts_cmd_info(int argc, char **argv);
int ts_cmd_kernels(int argc, char **argv);
int ts_cmd_generate(int argc, char **argv);

/* Print "tessera: msg" to stderr. */
void ts_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Map a library status to an exit status. */
int ts_cli_exit(ts_status st);
/* Option value parsers: print a message naming the option and return -1
 * on a bad value. */
int ts_opt_int(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out);
int ts_opt_double(const char *opt, const char *s, double *out);
/* Run the job (progress on stderr unless quiet), print the error or the
 * summary, write --stats if asked; returns the exit status. */
int ts_cli_run_job(ts_job *job, int quiet, const char *stats_path);
/* Write the run's figures as JSON (--stats); -1 with a message on error. */
int ts_cli_write_stats(const char *path, const ts_job *job, const ts_run_stats *st);
/* Print the job summary line to stdout. */
void ts_cli_summary(const char *output, const ts_run_stats *st);

#endif
