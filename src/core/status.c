/* Status codes and the error record. */
#include <stdio.h>
#include <string.h>
#include "tessera/status.h"

const char *ts_strerror(ts_status s) {
  switch (s) {
#define TS_X_CASE(name, value, desc) \
  case name:                         \
    return desc;
    TS_STATUS_LIST(TS_X_CASE)
#undef TS_X_CASE
  }
  return "unknown status";
}

ts_status ts_vfail(ts_error *err, ts_status code, const char *fmt, va_list ap) {
  if (err && err->code == TS_OK) {
    err->code = code;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  }
  return code;
}

ts_status ts_fail(ts_error *err, ts_status code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ts_vfail(err, code, fmt, ap);
  va_end(ap);
  return code;
}

void ts_error_clear(ts_error *err) {
  err->code = TS_OK;
  err->msg[0] = '\0';
}

const char *ts_version(void) { return TS_VERSION_STRING; }
