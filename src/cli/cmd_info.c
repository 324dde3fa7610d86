/* tessera info: what a file is, as tessera reads it. */
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"

int ts_cmd_info(int argc, char **argv) {
  if (argc != 2 || !strcmp(argv[1], "--help")) {
    fputs("usage: tessera info FILE\n\nPrint size, dtype, channels, layout (tiles or strips),\n"
          "compression and whether it is a BigTIFF.\n", argc == 2 ? stdout : stderr);
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
  ts_reader_close(&r);
  return TS_EXIT_OK;
}
