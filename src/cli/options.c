/* Helpers shared by the subcommands. */
#include <stdarg.h>
#include <stdio.h>
#include "cli/cli.h"
#include "tessera/sched.h"
#include "core/params.h"

int ts_cli_exit(ts_status st) {
  if (st == TS_OK) return TS_EXIT_OK;
  if (st == TS_SOME_FAILED) return TS_EXIT_SOME_FAILED;
  if (st == TS_STOPPED) return TS_EXIT_STOPPED;
  return st == TS_ERR_USAGE || st == TS_ERR_PIPELINE || st == TS_ERR_EXISTS ? TS_EXIT_USAGE
                                                                             : TS_EXIT_ERROR;
}

/* What a stopped run did and what it left, in one line. */
static void report_stop(const ts_job *job, const ts_run_stats *st) {
  const int list = st->in_w == 0;
  char kept[4200];
  if (st->kept && st->resumable)
    snprintf(kept, sizeof kept, "the unfinished output is kept as %s; run again with --resume to finish %s", st->kept,
             job->output);
  else if (st->kept)
    snprintf(kept, sizeof kept, "the unfinished output is kept as %s (without a journal: it cannot be resumed)", st->kept);
  else if (list && st->done > 0)
    snprintf(kept, sizeof kept, "the images done are in %s, each file complete; run again with --resume to finish",
             job->output);
  else
    snprintf(kept, sizeof kept, "nothing was written");
  if (st->stopped_in_stats)
    ts_cli_error("stopped early by %s during the statistics pass of a global kernel; %s", ts_stop_name(st->stopped),
                 kept);
  else
    ts_cli_error("stopped early by %s: %lld of %lld %s done%s; %s", ts_stop_name(st->stopped), (long long)st->done,
                 (long long)st->tasks, list ? "inputs" : "tasks", st->nfailed ? " (some failed, listed below)" : "",
                 kept);
}

int ts_cli_report(const ts_job *job, ts_status st, const ts_error *err, const ts_run_stats *stats,
                  int quiet, const char *stats_path, const char *trace_path) {
  if ((st && st != TS_SOME_FAILED && st != TS_STOPPED) || (st == TS_STOPPED && err->code == TS_STOPPED)) {
    /* an error, or a stop before the first task (the message says where) */
    ts_cli_error("%s", err->msg);
    return ts_cli_exit(st);
  }
  if (!quiet) ts_cli_summary(job->output, stats);
  if (st == TS_STOPPED) report_stop(job, stats); /* always: a job log must say why it ended */
  if (stats->nfailed) /* always, even with --quiet: the exit status alone would not say which */
    fprintf(stderr, "tessera: %lld of %lld inputs failed:\n%s", (long long)stats->nfailed, (long long)stats->tasks,
            stats->failures ? stats->failures : "");
  if (stats_path && ts_cli_write_stats(stats_path, job, stats)) return TS_EXIT_ERROR;
  if (trace_path && ts_cli_write_trace(trace_path, stats)) return TS_EXIT_ERROR;
  return ts_cli_exit(st);
}

int ts_cli_run_job(ts_job *job, int quiet, const char *stats_path, const char *trace_path) {
  job->progress = !quiet;
  job->trace = trace_path != NULL;
  ts_error err = {0};
  ts_run_stats stats;
  ts_status st = ts_run_local(job, &stats, stderr, &err);
  int code = ts_cli_report(job, st, &err, &stats, quiet, stats_path, trace_path);
  ts_run_stats_free(&stats);
  return code;
}

/* "2 threads"; under MPI "3 ranks x 1 thread", or each rank's count
 * when they differ ("3 ranks, threads 2+1+1"). */
static void threads_text(const ts_run_stats *st, char *buf, size_t cap) {
  int same = 1;
  for (int r = 1; r < st->nranks; r++) same &= st->ranks[r].threads == st->ranks[0].threads;
  if (st->nranks <= 1) {
    snprintf(buf, cap, "%d thread%s", st->threads, st->threads == 1 ? "" : "s");
  } else if (same) {
    snprintf(buf, cap, "%d ranks x %d thread%s", st->nranks, st->ranks[0].threads,
             st->ranks[0].threads == 1 ? "" : "s");
  } else {
    size_t n = (size_t)snprintf(buf, cap, "%d ranks, threads", st->nranks);
    for (int r = 0; r < st->nranks && n < cap; r++)
      n += (size_t)snprintf(buf + n, cap - n, "%c%d", r ? '+' : ' ', st->ranks[r].threads);
  }
}

void ts_cli_summary(const char *output, const ts_run_stats *st) {
  const char *verb = st->stopped ? "stopped" : "wrote";
  char threads[256];
  threads_text(st, threads, sizeof threads);
  if (st->in_w == 0) /* list mode */
    printf("%s %s: %lld images (%lld failed), %s, %.3f s, %.1f images/s, %.1f MPix/s\n", verb, output,
           (long long)st->done, (long long)st->nfailed, threads, st->seconds, st->seconds > 0 ? (double)st->done / st->seconds : 0.0,
           st->seconds > 0 ? (double)st->pixels / st->seconds / 1e6 : 0.0);
  else
  {
    char tasks[64];
    if (st->stopped) snprintf(tasks, sizeof tasks, "%lld of %lld", (long long)st->done, (long long)st->tasks);
    else snprintf(tasks, sizeof tasks, "%lld", (long long)st->tasks);
    const double px = st->tasks > 0 ? (double)st->pixels * (double)st->done / (double)st->tasks : 0.0;
    printf("%s %s: %lldx%lld, %s tasks, %s, %.3f s, %.1f MPix/s\n", verb, output, (long long)st->in_w,
           (long long)st->in_h, tasks, threads, st->seconds,
           st->seconds > 0 ? px / st->seconds / 1e6 : 0.0);
  }
  if (st->resumed) printf("  resumed: %lld %s from the unfinished run, %lld computed now\n", (long long)st->resumed,
                          st->in_w == 0 ? "inputs" : "tasks", (long long)(st->done - st->resumed));
  if (st->resolved[0]) printf("  global kernels: %s\n", st->resolved);
  for (int r = 0; r < st->nranks; r++) {
    const ts_rank_stats *k = &st->ranks[r];
    printf("  rank %d (%s): %lld tasks, busy %.0f%%, sent %.1f MB, received %.1f MB\n", r, k->host,
           (long long)k->tasks, st->seconds > 0 ? 100.0 * k->busy / st->seconds : 0.0,
           (double)k->bytes_sent / 1e6, (double)k->bytes_received / 1e6);
  }
}
