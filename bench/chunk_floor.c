/* The codec floor of an HDF5-stack-to-HDF5-stack list job: inflate every
 * input chunk and deflate every output image (zlib streams, through
 * tessera's own src/core/zstream.c: ISA-L inflates, libdeflate deflates
 * at level 1), nothing else, on OpenMP threads. bench/bench_list.py writes
 * the two files of records and runs it.
 *
 *   cc -O2 -fopenmp -Isrc bench/chunk_floor.c src/core/zstream.c src/core/runs.c -lisal -ldeflate -lzstd -lz -o chunk_floor
 *   chunk_floor CHUNKS RAW THREADS
 * CHUNKS: records [u32 stored size][u32 inflated size][stored bytes];
 * RAW: records [u32 size][pixels] (the output images, to deflate).
 * prints: records inflated and deflated, and the seconds the codec work
 * took (loading the files, which are larger than the job's, excluded). */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/zstream.h"

typedef struct rec {
  const unsigned char *p;
  uint32_t size, out;
} rec;

static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(*n);
  if (b && fread(b, 1, *n, f) != *n) b = (free(b), NULL);
  fclose(f);
  return b;
}

/* Index the records of a file: with_out says records carry an inflated size. */
static rec *index_of(const unsigned char *b, size_t n, int with_out, long *count) {
  long cap = 1024, k = 0;
  rec *r = malloc((size_t)cap * sizeof *r);
  for (size_t at = 0; r && at < n; k++) {
    if (k == cap) r = realloc(r, (size_t)(cap *= 2) * sizeof *r);
    memcpy(&r[k].size, b + at, 4);
    at += 4;
    if (with_out) memcpy(&r[k].out, b + at, 4), at += 4;
    r[k].p = b + at;
    at += r[k].size;
  }
  *count = k;
  return r;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: chunk_floor CHUNKS RAW THREADS\n");
    return 2;
  }
  size_t nc, nr;
  unsigned char *cb = slurp(argv[1], &nc), *rb = slurp(argv[2], &nr);
  if (!cb || !rb) {
    fprintf(stderr, "chunk_floor: cannot read the record files\n");
    return 1;
  }
  long kc, kr, bad = 0;
  rec *c = index_of(cb, nc, 1, &kc), *r = index_of(rb, nr, 0, &kr);
  const long n = kc > kr ? kc : kr;
  const double t0 = omp_get_wtime();
#pragma omp parallel num_threads(atoi(argv[3])) reduction(+ : bad)
  {
    ts_zstream z = {0};
    unsigned char *px = malloc(1 << 22), *out = malloc(1 << 22);
#pragma omp for schedule(dynamic, 16)
    for (long i = 0; i < n; i++) {
      if (i < kc && ts_zdecompress(&z, c[i].p, c[i].size, px, c[i].out)) bad++;
      if (i < kr && !ts_zcompress(&z, -1, r[i].p, r[i].size, out, 1 << 22)) bad++;
    }
    free(px);
    free(out);
    ts_zstream_free(&z);
  }
  printf("%ld %ld %.6f\n", kc, kr, omp_get_wtime() - t0);
  return bad ? 1 : 0;
}
