/* The task kinds, asked in turn whether a job is theirs (list mode claims
 * directories, @lists, HDF5 stacks and --strips; tile mode takes the rest). */
#include <string.h>
#include <unistd.h>
#include "engine/kind.h"

static const ts_kind_def *const kinds[] = {&ts_kind_list, &ts_kind_tile, NULL};

int ts_kind_find(const ts_job *job) {
  for (int i = 0; kinds[i]; i++)
    if (kinds[i]->claims(job)) return i;
  return -1;
}

const ts_kind_def *ts_kind_at(int i) {
  return i >= 0 && i < (int)(sizeof kinds / sizeof kinds[0]) - 1 ? kinds[i] : NULL;
}

ts_status ts_note_relative(const char *path, ts_status st, ts_error *err) {
  char cwd[512];
  size_t n = strlen(err->msg);
  if (path[0] == '@') path++;
  if (path[0] != '/' && strncmp(path, "synth:", 6) != 0 && getcwd(cwd, sizeof cwd))
    snprintf(err->msg + n, sizeof err->msg - n, " (looked in %s: a relative path)", cwd);
  return st;
}
