/* Growable bytes. */
#include <stdlib.h>
#include <string.h>
#include "core/blob.h"

int ts_blob_reserve(ts_blob *b, size_t n) {
  if (n <= b->cap) return 0;
  size_t cap = 2 * n;
  unsigned char *p = realloc(b->p, cap);
  if (!p) return -1;
  b->p = p;
  b->cap = cap;
  return 0;
}

int ts_blob_append(ts_blob *b, const void *data, size_t n) {
  if (n == 0) return 0; /* data may be NULL then */
  if (ts_blob_reserve(b, b->size + n)) return -1;
  memcpy(b->p + b->size, data, n);
  b->size += n;
  return 0;
}

void ts_blob_free(ts_blob *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

char *ts_concat(const char *a, const char *b) {
  char *s = malloc(strlen(a) + strlen(b) + 1);
  if (s) strcat(strcpy(s, a), b);
  return s;
}
