/* List mode's directory output sink: one image file per input (PNG,
 * JPEG or TIFF, encoded on the rank that computed it), at the input's
 * name with the format's extension, written as NAME.partial and renamed,
 * so every file there is complete. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "io/list_sink.h"

/* The output file name of input `name` in a directory: the name with its
 * extension replaced. */
static void dir_name(const ts_list_out *o, const char *raw, char *buf, size_t cap) {
  char name[4096];
  ts_list_safe_name(raw, name, sizeof name);
  const char *slash = strrchr(name, '/'), *dot = strrchr(name, '.');
  int cut = dot && (!slash || dot > slash) ? (int)(dot - name) : (int)strlen(name);
  snprintf(buf, cap, "%s%s%.*s.%s", o->path, o->path[strlen(o->path) - 1] == '/' ? "" : "/", cut, name,
           ts_file_format_ext(o->o.format));
}

static int mkdirs(char *path) { /* the parents of path */
  for (char *s = strchr(path + 1, '/'); s; s = strchr(s + 1, '/')) {
    *s = '\0';
    int bad = mkdir(path, 0777) != 0 && errno != EEXIST;
    *s = '/';
    if (bad) return -1;
  }
  return 0;
}

static int dir_claims(const ts_list_out_options *o) { return ts_list_out_is_dir(o->path); }

static ts_status dir_open(ts_list_out *o, ts_error *err) {
  if (o->o.format == TS_FILE_UNKNOWN)
    return ts_fail(err, TS_ERR_USAGE, "%s: a directory output needs --format png|tiff|jpeg", o->path);
  char name[8192];
  struct stat sb;
  if (stat(o->path, &sb) != 0) {
    snprintf(name, sizeof name, "%s/", o->path);
    if (mkdirs(name) != 0) return ts_fail(err, TS_ERR_IO, "%s: cannot create the directory: %s", o->path, strerror(errno));
  }
  for (int64_t i = 0; !o->o.force && !o->o.resume && i < o->in->n; i++) {
    dir_name(o, o->in->items[i].name, name, sizeof name);
    if (stat(name, &sb) == 0) return ts_fail(err, TS_ERR_EXISTS, "%s: output exists (use --force to replace it)", name);
  }
  return TS_OK;
}

static ts_status dir_encode(const ts_list_out_options *o, const ts_image *im, ts_result_image *ri, ts_blob *data,
                            ts_zstream *z, ts_blob *work, ts_error *err) {
  return ts_encode(o->format, im, o->quality, o->compression, o->level, data, z, work, err);
}

static ts_status dir_put(ts_list_out *o, int64_t index, const ts_result_image *ri, const void *data, size_t size,
                         const ts_emits *em, ts_error *err) {
  char name[8192], tmp[8200];
  dir_name(o, o->in->items[index].name, name, sizeof name);
  snprintf(tmp, sizeof tmp, "%s.partial", name);
  if (mkdirs(name) != 0) return ts_fail(err, TS_ERR_IO, "%s: cannot create its directory: %s", name, strerror(errno));
  FILE *f = fopen(tmp, "wb");
  if (!f) return ts_fail(err, TS_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
  int bad = fwrite(data, 1, size, f) != size;
  bad |= fclose(f) != 0;
  if (bad || rename(tmp, name) != 0) {
    unlink(tmp);
    return ts_fail(err, TS_ERR_IO, "%s: cannot write: %s", name, strerror(errno));
  }
  return TS_OK;
}

/* Every file there is complete: nothing to finish or keep. */
static ts_status dir_finish(ts_list_out *o, const char *note, char **kept, ts_error *err) { return TS_OK; }

static void dir_close(ts_list_out *o) {}

const ts_list_sink ts_list_sink_dir = {
    .name = "directory", .claims = dir_claims, .open = dir_open, .encode = dir_encode, .put = dir_put,
    .finish = dir_finish, .close = dir_close,
};
