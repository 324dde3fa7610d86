/* tessera: status codes and the error record.
 *
 * Every library function that can fail returns a ts_status (TS_OK = 0,
 * failures negative) and fills a caller-owned ts_error with one readable
 * message naming the file and the problem. The library never exits. */
#ifndef TESSERA_STATUS_H
#define TESSERA_STATUS_H

#include <stdarg.h>

#if defined(TS_BUILDING_LIBRARY)
#define TS_API __attribute__((visibility("default")))
#else
#define TS_API
#endif

/* X(name, value, description) */
#define TS_STATUS_LIST(X)                                                    \
  X(TS_OK, 0, "success")                                                     \
  X(TS_SOME_FAILED, 1, "some inputs failed (list mode; the rest are done)")  \
  X(TS_STOPPED, 2, "stopped early on request (SIGTERM, SIGUSR1)")            \
  X(TS_ERR_USAGE, -1, "invalid arguments")                                   \
  X(TS_ERR_NOMEM, -2, "out of memory")                                       \
  X(TS_ERR_IO, -3, "input/output error")                                     \
  X(TS_ERR_FORMAT, -4, "malformed or unsupported file")                      \
  X(TS_ERR_PIPELINE, -5, "invalid pipeline")                                 \
  X(TS_ERR_EXISTS, -6, "output exists")                                      \
  X(TS_ERR_RANGE, -7, "size out of range")                                   \
  X(TS_ERR_INTERNAL, -8, "internal error")

typedef enum ts_status {
#define TS_X_ENUM(name, value, desc) name = value,
  TS_STATUS_LIST(TS_X_ENUM)
#undef TS_X_ENUM
} ts_status;

/* The error record: the first failure wins; later ones are dropped so the
 * user sees the root cause. */
typedef struct ts_error {
  ts_status code;
  char msg[1024];
} ts_error;

/* Short description of a status code (static string). */
TS_API const char *ts_strerror(ts_status s);
/* The library's version, "0.1.0". */
TS_API const char *ts_version(void);

/* Record an error (printf-style) unless one is already recorded; returns
 * the status so call sites read `return ts_fail(err, TS_ERR_IO, ...)`. */
TS_API ts_status ts_fail(ts_error *err, ts_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
TS_API ts_status ts_vfail(ts_error *err, ts_status code, const char *fmt,
                          va_list ap);

/* Clear the record. */
TS_API void ts_error_clear(ts_error *err);

#endif
