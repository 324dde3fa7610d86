/* The literals-and-runs coders against their decoders: any input
 * deflated (ts_deflate_runs into exactly its stated bound, so ASan sees
 * the 8 bytes it may store past the end) inflates through zlib to itself,
 * a byte less of room is refused or still exact, and the zstd sequences
 * decode through zstd to the input. The first byte picks a shape the
 * fuzzer reaches slowly by itself: the rest repeated in long runs. */
#include <zlib.h>
#include <zstd.h>
#include "fuzz.h"
#include "core/runs.h"
#include "core/zstream.h"

static void inflate_check(const uint8_t *z, size_t k, const uint8_t *want, size_t n) {
  uint8_t *back = malloc(n + 1);
  z_stream s = {0};
  if (inflateInit2(&s, -15) != Z_OK) abort();
  s.next_in = (uint8_t *)z, s.avail_in = (uInt)k, s.next_out = back, s.avail_out = (uInt)n + 1;
  if (inflate(&s, Z_FINISH) != Z_STREAM_END || s.total_out != n || s.avail_in || memcmp(back, want, n)) abort();
  inflateEnd(&s);
  free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  static ts_zstd zs;
  const uint8_t *src = data;
  uint8_t *grown = NULL;
  if (n && data[0] < 64) { /* each byte of the rest repeated data[0] + 1 times */
    const size_t r = (size_t)data[0] + 1;
    grown = malloc((n - 1) * r + 1);
    for (size_t i = 1; i < n; i++) memset(grown + (i - 1) * r, data[i], r);
    src = grown, n = (n - 1) * r;
  }
  uint8_t *dst = malloc(TS_RUNS_BOUND(n));
  const size_t k = ts_deflate_runs(src, n, dst, TS_RUNS_BOUND(n));
  if (!k) abort();
  inflate_check(dst, k, src, n);
  uint8_t *tight = malloc(k);
  const size_t k2 = ts_deflate_runs(src, n, tight, k); /* exactly enough: the same, or refused for the store's slack */
  if (k2 && (k2 != k || memcmp(tight, dst, k))) abort();
  free(tight);
  const size_t cap = ZSTD_compressBound(n);
  uint8_t *zdst = malloc(cap), *back = malloc(n + 1);
  const size_t zk = ts_zstd_filtered(&zs, -1, src, n, zdst, cap);
  if (!zk || ZSTD_decompress(back, n + 1, zdst, zk) != n || memcmp(back, src, n)) abort();
  free(zdst), free(back), free(dst), free(grown);
  return 0;
}
