/* --stats FILE: the run's summary as JSON (the same figures as the summary
 * lines), for scripts and tests. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#include "tessera/sched.h"

/* Write s as a JSON string. */
static void json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c < 0x20) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
  }
  fputc('"', f);
}

int ts_cli_write_stats(const char *path, const ts_job *job, const ts_run_stats *st) {
  FILE *f = fopen(path, "w");
  if (!f) {
    ts_cli_error("%s: cannot write the stats: %s", path, strerror(errno));
    return -1;
  }
  fprintf(f, "{\n  \"tessera\": ");
  json_string(f, ts_version());
  fprintf(f, ",\n  \"input\": ");
  json_string(f, job->input);
  fprintf(f, ",\n  \"output\": ");
  json_string(f, job->output);
  fprintf(f, ",\n  \"pipeline\": ");
  json_string(f, job->pipeline);
  fprintf(f, ",\n  \"width\": %lld,\n  \"height\": %lld,\n  \"tasks\": %lld,\n  \"tile\": %lld,\n",
          (long long)st->in_w, (long long)st->in_h, (long long)st->tasks, (long long)job->tile);
  fprintf(f, "  \"done\": %lld,\n  \"resumed\": %lld,\n  \"computed\": %lld,\n  \"checkpoints\": %lld,\n",
          (long long)st->done, (long long)st->resumed, (long long)(st->done - st->resumed), (long long)st->checkpoints);
  fprintf(f, "  \"stopped\": ");
  if (st->stopped) json_string(f, ts_stop_name(st->stopped));
  else fputs("null", f);
  fprintf(f, ",\n  \"kept\": ");
  if (st->kept) json_string(f, st->kept);
  else fputs("null", f);
  fprintf(f, ",\n");
  fprintf(f, "  \"resolved\": ");
  json_string(f, st->resolved);
  fprintf(f, ",\n");
  fprintf(f, "  \"seconds\": %.6f,\n  \"mpix_per_second\": %.3f,\n", st->seconds,
          st->seconds > 0 ? (double)st->pixels / st->seconds / 1e6 : 0.0);
  fprintf(f, "  \"ranks\": [");
  if (st->nranks == 0) { /* one process: everything on "rank 0" */
    fprintf(f, "\n    {\"rank\": 0, \"tasks\": %lld, \"threads\": %d, \"busy_seconds\": %.6f, "
               "\"busy_fraction\": 1.0, \"bytes_sent\": 0, \"bytes_received\": 0}",
            (long long)st->tasks, st->threads, st->seconds);
  }
  for (int r = 0; r < st->nranks; r++) {
    const ts_rank_stats *k = &st->ranks[r];
    fprintf(f, "%s\n    {\"rank\": %d, \"host\": ", r ? "," : "", r);
    json_string(f, k->host);
    fprintf(f, ", \"tasks\": %lld, \"threads\": %d, \"busy_seconds\": %.6f, \"busy_fraction\": %.4f, "
               "\"bytes_sent\": %lld, \"bytes_received\": %lld}",
            (long long)k->tasks, k->threads, k->busy, st->seconds > 0 ? k->busy / st->seconds : 0.0,
            (long long)k->bytes_sent, (long long)k->bytes_received);
  }
  fprintf(f, "\n  ]\n}\n");
  if (fclose(f) != 0) {
    ts_cli_error("%s: cannot write the stats: %s", path, strerror(errno));
    return -1;
  }
  return 0;
}
