/* tessera generate: the built-in deterministic test image, streamed to a
 * tiled BigTIFF through the same engine as `run` (identity pipeline). */
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#include "cli/job_opts.h"

static const char help[] =
    "usage: tessera generate --output OUT.tif --size WxH [--dtype u8|u16|f32]\n"
    "                        [--channels 1..4] [options]\n"
    "\n"
    "Write the built-in deterministic pattern (ramps, disks, hashed noise): the\n"
    "same bytes on every run, for demos, tests and benchmarks. Streams tile by\n"
    "tile: any size fits in a few MB of memory.\n"
    "\n" TS_JOB_OPTIONS_HELP;

int ts_cmd_generate(int argc, char **argv) {
  static const struct option longopts[] = {
      {"output", required_argument, NULL, 'o'},
      {"size", required_argument, NULL, 's'},
      {"dtype", required_argument, NULL, 'd'},
      {"channels", required_argument, NULL, 'c'},
      TS_JOB_LONG_OPTIONS,
      {NULL, 0, NULL, 0},
  };
  ts_job job;
  ts_job_init(&job);
  const char *size = NULL, *dtype = "u8";
  int64_t channels = 1;
  int quiet = 0, c, r;
  optind = 1;
  while ((c = getopt_long(argc, argv, "o:s:d:c:", longopts, NULL)) != -1) {
    switch (c) {
      case 'o': job.output = optarg; break;
      case 's': size = optarg; break;
      case 'd': dtype = optarg; break;
      case 'c':
        if (ts_opt_int("--channels", optarg, 1, TS_MAX_CHANNELS, &channels)) return TS_EXIT_USAGE;
        break;
      case OPT_HELP: fputs(help, stdout); return TS_EXIT_OK;
      default:
        if ((r = ts_job_option(c, optarg, &job, &quiet)) == 1) break;
        if (r == 0) fputs(help, stderr);
        return TS_EXIT_USAGE;
    }
  }
  long long w, h;
  char tail;
  if (!job.output || !size || sscanf(size, "%lldx%lld%c", &w, &h, &tail) != 2 || w < 1 || h < 1) {
    ts_cli_error("generate: --output and --size WIDTHxHEIGHT are required");
    return TS_EXIT_USAGE;
  }
  char input[96];
  snprintf(input, sizeof input, "synth:%lldx%lld:%s:%lld", w, h, dtype, (long long)channels);
  job.input = input;
  return ts_cli_run_job(&job, quiet, NULL);
}
