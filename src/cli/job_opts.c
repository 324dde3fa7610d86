/* Options shared by run and generate. */
#include "cli/cli.h"
#include "cli/job_opts.h"

int ts_job_option(int code, const char *arg, ts_job *job, int *quiet) {
  int64_t v;
  switch (code) {
    case OPT_TILE:
      if (ts_opt_int("--tile", arg, 16, (int64_t)1 << 20, &v)) return -1;
      job->tile = v;
      return 1;
    case OPT_OUT_TILE:
      if (ts_opt_int("--out-tile", arg, 16, (int64_t)1 << 20, &v)) return -1;
      job->out_tile = v;
      return 1;
    case OPT_THREADS:
      if (ts_opt_int("--threads", arg, 1, 4096, &v)) return -1;
      job->threads = (int)v;
      return 1;
    case OPT_COMPRESSION:
      if (ts_compression_parse(arg, &job->compression)) {
        ts_cli_error("--compression %s: expected none, deflate, lzw, zstd or jpeg", arg);
        return -1;
      }
      return 1;
    case OPT_QUALITY:
      if (ts_opt_int("--jpeg-quality", arg, 1, 100, &v)) return -1;
      job->quality = (int)v;
      return 1;
    case OPT_FORCE:
      job->force = 1;
      return 1;
    case OPT_QUIET:
      *quiet = 1;
      return 1;
  }
  return 0;
}
