/* Boundary modes with scipy.ndimage's names and meanings. */
#include <string.h>
#include "core/params.h"
#include "tessera/partition.h"

static const char *const names[] = {"reflect", "mirror", "nearest", "constant", "wrap"};

const char *ts_boundary_name(ts_boundary b) {
  return (unsigned)b < sizeof names / sizeof *names ? names[b] : "?";
}

ts_status ts_boundary_parse(const char *s, ts_boundary *out) {
  const int i = ts_name_index(names, sizeof names / sizeof *names, s);
  if (i >= 0) *out = (ts_boundary)i;
  return i >= 0 ? TS_OK : TS_ERR_USAGE;
}

static int64_t mod(int64_t a, int64_t n) {
  int64_t m = a % n;
  return m < 0 ? m + n : m;
}

int64_t ts_boundary_map(int64_t i, int64_t n, ts_boundary b) {
  if (i >= 0 && i < n) return i;
  switch (b) {
    case TS_BOUNDARY_REFLECT: { /* period 2n, symmetric about -0.5 */
      int64_t m = mod(i, 2 * n);
      return m < n ? m : 2 * n - 1 - m;
    }
    case TS_BOUNDARY_MIRROR: { /* period 2n-2, symmetric about 0 */
      if (n == 1) return 0;
      int64_t m = mod(i, 2 * n - 2);
      return m < n ? m : 2 * n - 2 - m;
    }
    case TS_BOUNDARY_NEAREST:
      return i < 0 ? 0 : n - 1;
    case TS_BOUNDARY_WRAP:
      return mod(i, n);
    case TS_BOUNDARY_CONSTANT:
    default:
      return -1;
  }
}
