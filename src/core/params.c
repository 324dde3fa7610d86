/* Parsing typed values: numbers, booleans, choices and lists. Used by the
 * pipeline parser and the CLI, so both accept exactly the same spellings. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/params.h"

int ts_parse_double(const char *s, double *out) {
  char *end;
  if (!s || !*s) return -1;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || *end != '\0' || !isfinite(v)) return -1;
  *out = v;
  return 0;
}

int ts_parse_int64(const char *s, int64_t *out) {
  char *end;
  if (!s || !*s) return -1;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || *end != '\0') return -1;
  *out = (int64_t)v;
  return 0;
}

int ts_parse_bool(const char *s, int *out) {
  static const char *yes[] = {"1", "true", "yes", "on"}, *no[] = {"0", "false", "no", "off"};
  for (int i = 0; i < 4; i++) {
    if (strcmp(s, yes[i]) == 0) return *out = 1, 0;
    if (strcmp(s, no[i]) == 0) return *out = 0, 0;
  }
  return -1;
}

int ts_parse_choice(const char *s, const char *choices) {
  size_t n = strlen(s);
  int idx = 0;
  for (const char *p = choices; *p; idx++) {
    const char *bar = strchr(p, '|');
    size_t len = bar ? (size_t)(bar - p) : strlen(p);
    if (len == n && strncmp(p, s, n) == 0) return idx;
    if (!bar) break;
    p = bar + 1;
  }
  return -1;
}

const char *ts_choice_name(const char *choices, int idx, char *buf, size_t cap) {
  const char *p = choices;
  for (int i = 0; i < idx && p; i++) {
    p = strchr(p, '|');
    if (p) p++;
  }
  if (!p) return "?";
  const char *bar = strchr(p, '|');
  size_t len = bar ? (size_t)(bar - p) : strlen(p);
  if (len >= cap) len = cap - 1;
  memcpy(buf, p, len);
  buf[len] = '\0';
  return buf;
}

int ts_parse_list(const char *s, double **out, int64_t *count) {
  int64_t n = 1;
  for (const char *p = s; *p; p++) n += (*p == ',');
  double *v = malloc((size_t)n * sizeof *v);
  if (!v) return -1;
  char *copy = strdup(s), *save = NULL, *tok;
  if (!copy) return free(v), -1;
  int64_t i = 0;
  for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    if (i >= n || ts_parse_double(tok, &v[i]) != 0) break;
    i++;
  }
  /* every comma-separated element must be a number: "1,,2" is refused */
  int ok = (i == n && tok == NULL);
  free(copy);
  if (!ok) return free(v), -1;
  *out = v;
  *count = n;
  return 0;
}

int ts_name_index(const char *const *names, size_t n, const char *s) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(s, names[i]) == 0) return (int)i;
  return -1;
}
