/* The tessera command line: one file per subcommand. */
#ifndef TS_CLI_H
#define TS_CLI_H

#include <stdint.h>
#include "tessera/tessera.h"

/* Exit statuses (documented in the README; scripts depend on them). */
enum {
  TS_EXIT_OK = 0,    /* success */
  TS_EXIT_ERROR = 1, /* the job failed: bad input, I/O error, ... */
  TS_EXIT_USAGE = 2,  /* bad command line or pipeline: nothing was done */
  TS_EXIT_SOME_FAILED = 3, /* list mode: the run completed, but some inputs failed */
  TS_EXIT_STOPPED = 75     /* stopped early by SIGTERM/SIGUSR1: the work done is kept;
                              EX_TEMPFAIL of sysexits.h, "try again later" */
};

/* Started by mpirun or srun with PMI? Then MPI is initialized; otherwise tessera
 * runs in one process without touching MPI at all. */
int ts_cli_under_launcher(void);
int ts_cmd_run(int argc, char **argv);
int ts_cmd_info(int argc, char **argv);
int ts_cmd_kernels(int argc, char **argv);
int ts_cmd_generate(int argc, char **argv);

/* Print "tessera: msg" to stderr. */
void ts_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Map a library status to an exit status. */
int ts_cli_exit(ts_status st);
/* Run the job in this process (progress on stderr unless quiet), then
 * ts_cli_report; returns the exit status. */
int ts_cli_run_job(ts_job *job, int quiet, const char *stats_path, const char *trace_path);
/* Print the error, or the summary and --stats / --trace files; returns
 * the exit status. */
int ts_cli_report(const ts_job *job, ts_status st, const ts_error *err, const ts_run_stats *stats,
                  int quiet, const char *stats_path, const char *trace_path);
/* Write the run's trace events as Chrome trace-event JSON (--trace). */
int ts_cli_write_trace(const char *path, const ts_run_stats *st);
/* Write the run's figures as JSON (--stats); -1 with a message on error. */
int ts_cli_write_stats(const char *path, const ts_job *job, const ts_run_stats *st);
/* Print the job summary line to stdout. */
void ts_cli_summary(const char *output, const ts_run_stats *st);

#endif
