#include "core/text.h"
#include <stdlib.h>
#include <string.h>

/* The character at s: its length when well-formed; else 0, and in *bad
 * the length of the maximal subpart of an ill-formed sequence there
 * (Unicode 3.9, U+FFFD substitution): the bytes that could still begin a
 * character, at least 1. */
static size_t scan(const unsigned char *s, size_t n, size_t *bad) {
  *bad = 1;
  if (!n) return 0;
  const unsigned c = s[0];
  if (c < 0x80) return 1;
  /* the lead byte: how many follow, and the range of the first of them */
  size_t k;
  unsigned lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) k = 1;
  else if (c >= 0xE0 && c <= 0xEF) k = 2, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
  else if (c >= 0xF0 && c <= 0xF4) k = 3, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
  else return 0;
  for (size_t i = 1; i <= k; i++, (*bad)++) {
    const unsigned b = i < n ? s[i] : 0;
    if (i == 1 ? b < lo || b > hi : b < 0x80 || b > 0xBF) return 0;
  }
  return k + 1;
}

void ts_utf8_copy(char *out, size_t cap, const char *s) {
  static const char fffd[] = "\xEF\xBF\xBD";
  const unsigned char *p = (const unsigned char *)s;
  size_t left = strlen(s), at = 0, bad;
  if (!cap) return;
  while (left) {
    const size_t k = scan(p, left, &bad);
    const size_t len = k ? k : 3;
    if (at + len >= cap) break;
    memcpy(out + at, k ? (const char *)p : fffd, len);
    at += len;
    p += k ? k : bad, left -= k ? k : bad;
  }
  out[at] = '\0';
}

char *ts_utf8_dup(const char *s) {
  const size_t cap = 3 * strlen(s) + 1; /* a byte becomes at most 3 */
  char *d = malloc(cap);
  if (d) ts_utf8_copy(d, cap, s);
  return d;
}
