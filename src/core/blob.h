/* Growable bytes, reused from task to task. Internal to the library. */
#ifndef TS_CORE_BLOB_H
#define TS_CORE_BLOB_H

#include <stddef.h>

typedef struct ts_blob {
  unsigned char *p;
  size_t size, cap;
} ts_blob;

/* 0 on success, -1 when out of memory. */
int ts_blob_reserve(ts_blob *b, size_t n);
int ts_blob_append(ts_blob *b, const void *data, size_t n);
void ts_blob_free(ts_blob *b);

/* a then b in a new string (NULL when out of memory): a file's companions' names. */
char *ts_concat(const char *a, const char *b);

#endif
