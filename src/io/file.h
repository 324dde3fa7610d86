/* Opening the files users name (inputs, list entries, with= images). */
#ifndef TS_IO_FILE_H
#define TS_IO_FILE_H

#include <sys/stat.h>
#include "core/blob.h"
#include "tessera/status.h"

/* Open path for reading without blocking, and refuse anything but a
 * regular file (a FIFO, device, socket or directory) with a message naming
 * it and `what` it was meant to be. *fd is open only on TS_OK. */
ts_status ts_open_regular(const char *path, const char *what, int *fd, struct stat *sb, ts_error *err);
/* Append a regular file's bytes to b. */
ts_status ts_read_regular(const char *path, const char *what, ts_blob *b, ts_error *err);

#endif
