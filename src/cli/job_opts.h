/* Options shared by the subcommands that write an image (run, generate). */
#ifndef TS_CLI_JOB_OPTS_H
#define TS_CLI_JOB_OPTS_H

#include <getopt.h>
#include "tessera/tessera.h"

enum {
  OPT_TILE = 256, OPT_OUT_TILE, OPT_BOUNDARY, OPT_CVAL, OPT_THREADS, OPT_COMPRESSION,
  OPT_QUALITY, OPT_FORCE, OPT_QUIET, OPT_HELP, OPT_IO, OPT_ROOT_COMPUTE, OPT_STATS
};

#define TS_JOB_LONG_OPTIONS                                              \
  {"tile", required_argument, NULL, OPT_TILE},                           \
      {"out-tile", required_argument, NULL, OPT_OUT_TILE},               \
      {"threads", required_argument, NULL, OPT_THREADS},                 \
      {"compression", required_argument, NULL, OPT_COMPRESSION},         \
      {"jpeg-quality", required_argument, NULL, OPT_QUALITY},            \
      {"force", no_argument, NULL, OPT_FORCE},                           \
      {"quiet", no_argument, NULL, OPT_QUIET},                           \
      {"help", no_argument, NULL, OPT_HELP}

#define TS_JOB_OPTIONS_HELP                                                            \
  "  --tile N              task tile size, a multiple of 16 (default 1024)\n"         \
  "  --out-tile N          output TIFF tile size; a multiple of 16 dividing --tile\n" \
  "                        (default: the largest of 256, 128, 64, 32, 16 that does)\n" \
  "  --threads N           OpenMP threads (default: all cores, or OMP_NUM_THREADS)\n" \
  "  --compression C       none|deflate|lzw|zstd|jpeg (default none; jpeg: u8 with\n" \
  "                        1 or 3 channels)\n"                                        \
  "  --jpeg-quality Q      1..100 (default 90)\n"                                    \
  "  --force               replace an existing output\n"                             \
  "  --quiet               no progress and no summary line\n"

/* Apply a shared option to the job; returns 1 if handled, 0 if not one of
 * them, -1 on a bad value (message printed). */
int ts_job_option(int code, const char *arg, ts_job *job, int *quiet);

#endif
