/* UTF-8 for the metadata that must hold valid text: OME-XML, Zarr's JSON,
 * HDF5 strings. File names and pipeline texts are bytes on Linux; these
 * make them text. Internal to the library. */
#ifndef TS_CORE_TEXT_H
#define TS_CORE_TEXT_H

#include <stddef.h>

/* s into out (cap bytes, with the terminating 0) as well-formed UTF-8
 * (Unicode's table 3-7: no overlong forms, no surrogates, nothing past
 * U+10FFFF):
 * each maximal subpart of an ill-formed sequence becomes one U+FFFD, the
 * practice Unicode recommends (3.9) and Python's errors="replace" and the
 * WHATWG decoder follow. Stops before a character that does not fit
 * whole. */
void ts_utf8_copy(char *out, size_t cap, const char *s);

/* The same into a new string (NULL when out of memory). */
char *ts_utf8_dup(const char *s);

#endif
