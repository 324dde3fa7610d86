/* The command line's one way to tell the user what went wrong: stderr,
 * prefixed "tessera: ", as one write, after stdout's pending lines, so a
 * job log holding both streams never splits it (a summary line once landed
 * between "tessera: " and the message). */
#include <stdarg.h>
#include <stdio.h>
#include "cli/cli.h"

void ts_cli_error(const char *fmt, ...) {
  char line[8192];
  va_list ap;
  va_start(ap, fmt);
  int n = snprintf(line, sizeof line, "tessera: ");
  vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
  va_end(ap);
  fflush(stdout);
  fprintf(stderr, "%s\n", line);
}
