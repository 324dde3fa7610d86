/* --trace FILE: Chrome trace-event JSON ("X" complete events, one per task
 * phase, pid = rank, tid = thread), which Perfetto and chrome://tracing
 * open; like dask's task stream, it shows load balance and stalls. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#include "tessera/sched.h"

static const char *const phase_names[] = {"read", "send", "compute", "receive", "write"};

int ts_cli_write_trace(const char *path, const ts_run_stats *st) {
  FILE *f = fopen(path, "w");
  if (!f) {
    ts_cli_error("%s: cannot write the trace: %s", path, strerror(errno));
    return -1;
  }
  fprintf(f, "{\"displayTimeUnit\": \"ms\", \"traceEvents\": [\n");
  int nranks = st->nranks > 0 ? st->nranks : 1;
  for (int r = 0; r < nranks; r++)
    fprintf(f, "{\"name\": \"process_name\", \"ph\": \"M\", \"pid\": %d, \"args\": {\"name\": \"rank %d%s%s\"}},\n",
            r, r, st->nranks > 0 ? " " : "", st->nranks > 0 ? st->ranks[r].host : "");
  for (int64_t i = 0; i < st->nevents; i++) {
    const ts_trace_event *e = &st->events[i];
    const char *name = e->phase >= 0 && e->phase < 5 ? phase_names[e->phase] : "?";
    fprintf(f, "{\"name\": \"%s\", \"cat\": \"task\", \"ph\": \"X\", \"ts\": %.3f, \"dur\": %.3f, "
               "\"pid\": %d, \"tid\": %d, \"args\": {\"task\": %lld}}%s\n",
            name, e->start * 1e6, e->dur * 1e6, e->rank, e->thread, (long long)e->task,
            i + 1 < st->nevents ? "," : "");
  }
  fprintf(f, "]}\n");
  if (fclose(f) != 0) {
    ts_cli_error("%s: cannot write the trace: %s", path, strerror(errno));
    return -1;
  }
  return 0;
}
