/* libtiff glue shared by the TIFF reader and writer. */
#include <stdarg.h>
#include <stdio.h>
#include "io/tiff_util.h"

static int on_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap) {
  char *msg = user; /* the first error since the owner last cleared msg */
  if (msg && msg[0] == '\0') vsnprintf(msg, 512, fmt, ap);
  return 1;
}

static int on_warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap) {
  return 1; /* unknown tags and the like: not the user's problem */
}

TIFFOpenOptions *ts_tiff_options(char *msg) {
  TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
  TIFFOpenOptionsSetErrorHandlerExtR(opts, on_error, msg);
  TIFFOpenOptionsSetWarningHandlerExtR(opts, on_warning, msg);
  return opts;
}
