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
    "\n"
    "  --tile N, --out-tile N, --threads N, --compression C, --jpeg-quality Q,\n"
    "  --force, --quiet      as for `tessera run`\n";

int ts_cmd_generate(int argc, char **argv) {
  ts_cli_opts o;
  ts_cli_opts_init(&o);
  int code = ts_cli_parse(argc, argv, TS_CMD_GENERATE, help, &o);
  if (code >= 0) return code;
  long long w, h;
  char tail;
  if (!o.job.output || !o.size || sscanf(o.size, "%lldx%lld%c", &w, &h, &tail) != 2 || w < 1 || h < 1) {
    ts_cli_error("generate: --output and --size WIDTHxHEIGHT are required");
    return TS_EXIT_USAGE;
  }
  char input[96];
  snprintf(input, sizeof input, "synth:%lldx%lld:%s:%lld", w, h, o.dtype, (long long)o.channels);
  o.job.input = input;
  code = ts_cli_run_job(&o.job, o.quiet, NULL, NULL);
  ts_cli_opts_free(&o);
  return code;
}
