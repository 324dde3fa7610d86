/* The floor of a PNG list job: read each file and decode it with libpng,
 * nothing else, on OpenMP threads (one file per thread at a time, buffers
 * reused). bench/bench_list.py builds and runs it next to tessera.
 *
 *   cc -O2 -fopenmp png_floor.c -lpng -o png_floor
 *   png_floor LIST.txt THREADS      (LIST: one path per line)
 * prints: files decoded and the total of the decoded bytes. */
#include <omp.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: png_floor LIST.txt THREADS\n");
    return 2;
  }
  FILE *l = fopen(argv[1], "r");
  if (!l) {
    perror(argv[1]);
    return 1;
  }
  char **paths = NULL, line[4096];
  long n = 0, cap = 0;
  while (fgets(line, sizeof line, l)) {
    line[strcspn(line, "\n")] = 0;
    if (!line[0]) continue;
    if (n == cap) paths = realloc(paths, (size_t)(cap = cap * 2 + 64) * sizeof *paths);
    paths[n++] = strdup(line);
  }
  fclose(l);
  long done = 0, bad = 0;
  unsigned long long bytes = 0;
#pragma omp parallel num_threads(atoi(argv[2])) reduction(+ : done, bad, bytes)
  {
    unsigned char *file = NULL, *px = NULL;
    size_t file_cap = 0, px_cap = 0;
#pragma omp for schedule(dynamic, 1)
    for (long i = 0; i < n; i++) {
      FILE *f = fopen(paths[i], "rb");
      if (!f) {
        bad++;
        continue;
      }
      fseek(f, 0, SEEK_END);
      size_t size = (size_t)ftell(f);
      fseek(f, 0, SEEK_SET);
      if (size > file_cap) file = realloc(file, file_cap = size);
      size_t got = fread(file, 1, size, f);
      fclose(f);
      png_image im;
      memset(&im, 0, sizeof im);
      im.version = PNG_IMAGE_VERSION;
      if (got != size || !png_image_begin_read_from_memory(&im, file, size)) {
        bad++;
        continue;
      }
      im.format = PNG_FORMAT_RGB;
      size_t need = PNG_IMAGE_SIZE(im);
      if (need > px_cap) px = realloc(px, px_cap = need);
      if (!png_image_finish_read(&im, NULL, px, 0, NULL)) {
        bad++;
        continue;
      }
      done++;
      bytes += need;
    }
    free(file);
    free(px);
  }
  printf("%ld %llu\n", done, bytes);
  return bad ? 1 : 0;
}
