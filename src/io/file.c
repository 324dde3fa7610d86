/* Opening the files users name, safely: a FIFO, a device or a directory
 * named where an image belongs must fail with a message, never block in
 * open() or read forever. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "io/file.h"

ts_status ts_open_regular(const char *path, const char *what, int *fd, struct stat *sb, ts_error *err) {
  /* O_NONBLOCK: opening a FIFO with no writer returns at once (and it is
   * refused below); for a regular file the flag changes nothing */
  *fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (*fd < 0) return ts_fail(err, TS_ERR_IO, "%s: cannot open %s: %s", path, what, strerror(errno));
  const char *kind = NULL;
  if (fstat(*fd, sb) != 0) kind = strerror(errno);
  else if (S_ISDIR(sb->st_mode)) kind = "it is a directory";
  else if (S_ISFIFO(sb->st_mode)) kind = "it is a FIFO (named pipe)";
  else if (S_ISCHR(sb->st_mode) || S_ISBLK(sb->st_mode)) kind = "it is a device";
  else if (S_ISSOCK(sb->st_mode)) kind = "it is a socket";
  else if (!S_ISREG(sb->st_mode)) kind = "not a regular file";
  if (!kind) return TS_OK;
  close(*fd);
  *fd = -1;
  return ts_fail(err, TS_ERR_IO, "%s: cannot read %s: %s, not a regular file", path, what, kind);
}

ts_status ts_read_regular(const char *path, const char *what, ts_blob *b, ts_error *err) {
  int fd;
  struct stat sb;
  ts_status st = ts_open_regular(path, what, &fd, &sb, err);
  if (st) return st;
  const size_t at = b->size, n = (size_t)sb.st_size;
  if (ts_blob_reserve(b, at + n)) st = ts_fail(err, TS_ERR_NOMEM, "%s: out of memory for %zu bytes", path, n);
  for (size_t got = 0; st == TS_OK && got < n;) {
    ssize_t k = read(fd, b->p + at + got, n - got);
    if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (k <= 0) {
      st = ts_fail(err, TS_ERR_IO, "%s: read error: %s", path, k < 0 ? strerror(errno) : "the file shrank while read");
      break;
    }
    got += (size_t)k;
  }
  close(fd);
  if (st == TS_OK) b->size = at + n;
  return st;
}
