/* The job-file parser (INI) as `tessera run JOB.ini` loads it: the input
 * is the file; the options it sets are then freed. */
#include "fuzz.h"
#include "cli/job_opts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  /* the parser's messages (one per bad input) to /dev/null: the sanitizers
   * and libFuzzer write to descriptor 2 itself, which stays open */
  static FILE *null;
  if (!null && !(null = fopen("/dev/null", "w"))) abort();
  stderr = null;
  /* a plugins = key loads (and runs the constructors of) any shared object
   * the text names: not the parser's input, so not fuzzed here */
  if (fuzz_has(data, n, "plugin")) return 0;
  char *argv[] = {"run", (char *)fuzz_file(data, n, ".ini"), NULL};
  ts_cli_opts o;
  ts_cli_opts_init(&o);
  ts_cli_parse(2, argv, TS_CMD_RUN, "help\n", &o);
  ts_cli_opts_free(&o);
  return 0;
}
