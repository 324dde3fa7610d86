/* The command line's one way to tell the user what went wrong: stderr,
 * prefixed "tessera: ". */
#include <stdarg.h>
#include <stdio.h>
#include "cli/cli.h"

void ts_cli_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("tessera: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}
