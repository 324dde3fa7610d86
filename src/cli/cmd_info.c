/* tessera info: what a file is, as tessera reads it. */
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"

/* What the input says of where it lies and what its pixels measure: the
 * tags TIFF outputs carry (README "Metadata"). */
static void print_meta(const ts_image_meta *m) {
  const ts_meta_tag *t;
  double d[6];
  if ((t = ts_meta_find(m, 34735)) && t->type == 3 && t->count >= 4) { /* GeoKeyDirectory: the CRS */
    const uint16_t *k = (const uint16_t *)t->data;
    for (uint64_t i = 1; 4 * i + 3 < t->count && i <= k[3]; i++)
      if ((k[4 * i] == 3072 || k[4 * i] == 2048) && k[4 * i + 1] == 0)
        printf("crs:       EPSG:%u (%s)\n", k[4 * i + 3], k[4 * i] == 3072 ? "projected" : "geographic");
  }
  if ((t = ts_meta_find(m, 33550)) && t->type == 12 && t->count >= 2) {
    memcpy(d, t->data, 16);
    printf("pixel:     %.17g x %.17g (ModelPixelScale)\n", d[0], d[1]);
  }
  if ((t = ts_meta_find(m, 33922)) && t->type == 12 && t->count >= 6) {
    memcpy(d, t->data, 48);
    printf("tiepoint:  raster (%.17g, %.17g) -> model (%.17g, %.17g)\n", d[0], d[1], d[3], d[4]);
  }
  if (ts_meta_find(m, 34264)) printf("transform: ModelTransformation (4 x 4)\n");
  if ((t = ts_meta_find(m, 42113)) && t->type == 2) printf("nodata:    %.*s\n", (int)t->bytes, (const char *)t->data);
  if ((t = ts_meta_find(m, 42112))) printf("gdal:      GDAL_METADATA (%zu bytes)\n", t->bytes);
  if ((t = ts_meta_find(m, 34675))) printf("icc:       ICC profile (%zu bytes)\n", t->bytes);
  if (m->um_x > 0) printf("physical:  %.6g x %.6g um per pixel\n", m->um_x, m->um_y);
}

int ts_cmd_info(int argc, char **argv) {
  if (argc != 2 || !strcmp(argv[1], "--help")) {
    fputs("usage: tessera info FILE\n\nPrint size, dtype, channels, layout (tiles or strips),\n"
          "compression, whether it is a BigTIFF and in GDAL's COG layout; a\n"
          "pyramid's levels; the georeferencing (CRS, pixel scale, tiepoint,\n"
          "nodata), resolution and ICC profile a TIFF carries.\n", argc == 2 ? stdout : stderr);
    return argc == 2 ? TS_EXIT_OK : TS_EXIT_USAGE;
  }
  ts_error err = {0};
  ts_reader *r;
  ts_status st = ts_reader_open(argv[1], &r, &err);
  if (st) {
    ts_cli_error("%s", err.msg);
    return ts_cli_exit(st);
  }
  const ts_image_info *i = &r->info;
  printf("file:      %s\n", argv[1]);
  printf("format:    %s\n", i->format);
  printf("layout:    %s\n", i->detail);
  printf("size:      %lld x %lld\n", (long long)i->w, (long long)i->h);
  printf("dtype:     %s\n", ts_dtype_name(i->dtype));
  printf("channels:  %d\n", i->channels);
  printf("bytes:     %lld uncompressed\n",
         (long long)ts_image_bytes(i->w, i->h, i->channels, i->dtype));
  const ts_image_meta *m = ts_reader_meta(r);
  if (m) print_meta(m);
  for (int64_t L = 1; L < i->levels; L++) { /* a pyramid's levels, as --input-level reads them */
    ts_reader *l;
    if (ts_reader_open_level(argv[1], 0, L, &l, &err)) {
      printf("level %lld:   unreadable: %s\n", (long long)L, err.msg);
      continue;
    }
    printf("level %lld:   %lld x %lld\n", (long long)L, (long long)l->info.w, (long long)l->info.h);
    ts_reader_close(&l);
  }
  ts_reader_close(&r);
  return TS_EXIT_OK;
}
