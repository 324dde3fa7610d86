/* Typed value parsing shared by the pipeline parser and the CLI.
 * All return 0 on success, -1 when the text is not a valid value. */
#ifndef TS_CORE_PARAMS_H
#define TS_CORE_PARAMS_H

#include <stddef.h>
#include <stdint.h>
#include "tessera/status.h"

/* Exported (TS_API) because the CLI shares these spellings. */

TS_API int ts_parse_double(const char *s, double *out);
TS_API int ts_parse_int64(const char *s, int64_t *out);
TS_API int ts_parse_bool(const char *s, int *out);
/* Index of s in "a|b|c", or -1. */
TS_API int ts_parse_choice(const char *s, const char *choices);
/* Index of s in names[0..n), or -1 (enum names: boundary, layout, ...). */
TS_API int ts_name_index(const char *const *names, size_t n, const char *s);
/* Name of choice idx, copied into buf. */
TS_API const char *ts_choice_name(const char *choices, int idx, char *buf, size_t cap);
/* "1,2,-0.5" -> malloc'ed array (caller frees). */
TS_API int ts_parse_list(const char *s, double **out, int64_t *count);

#endif
