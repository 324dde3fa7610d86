/* The tile-mode formats: one line each, asked in turn (backends.h). */
#define _GNU_SOURCE
#include <string.h>
#include <strings.h>
#include "io/backends.h"

static int has_suffix(const char *s, const char *suf) {
  size_t n = strlen(s), m = strlen(suf);
  return n >= m && strcasecmp(s + n - m, suf) == 0;
}

static int synth_names(const char *spec, int output) { return !output && strncmp(spec, "synth:", 6) == 0; }

/* FILE.h5:/dataset; as an output also FILE.h5 or FILE.hdf5 */
static int hdf5_names(const char *spec, int output) {
  return strstr(spec, ":/") || (output && (has_suffix(spec, ".h5") || has_suffix(spec, ".hdf5")));
}

static int tiff_names(const char *spec, int output) {
  return output && (has_suffix(spec, ".tif") || has_suffix(spec, ".tiff"));
}

/* OUT.zarr; as an input also a path inside one: IN.zarr/path/to/array */
static int zarr_names(const char *spec, int output) {
  if (output) return has_suffix(spec, ".zarr");
  for (const char *p = spec; (p = strcasestr(p, ".zarr")); p += 5)
    if (p[5] == '\0' || p[5] == '/') return 1;
  return 0;
}

static int tiff_is_a(const unsigned char *m, size_t n) {
  return n >= 4 && (!memcmp(m, "II*\0", 4) || !memcmp(m, "MM\0*", 4) || !memcmp(m, "II+\0", 4) ||
                    !memcmp(m, "MM\0+", 4));
}

static const ts_format synth = {.name = "synth", .reader = &ts_synth_reader_ops, .names = synth_names};
static const ts_format hdf5 = {.name = "HDF5", .reader = &ts_hdf5_reader_ops, .writer = &ts_hdf5_writer_ops,
                               .names = hdf5_names, .dataset = 1};
static const ts_format tiff = {.name = "TIFF", .reader = &ts_tiff_reader_ops, .writer = &ts_tiff_writer_ops,
                               .names = tiff_names, .is_a = tiff_is_a};

static const ts_format zarr = {.name = "Zarr", .reader = &ts_zarr_reader_ops, .writer = &ts_zarr_writer_ops,
                               .names = zarr_names, .directory = 1};

static const ts_format *const formats[] = {&synth, &hdf5, &zarr, &tiff, NULL};

const ts_format *ts_format_named(const char *spec, int output) {
  for (int i = 0; formats[i]; i++)
    if ((output ? (const void *)formats[i]->writer : (const void *)formats[i]->reader) && formats[i]->names(spec, output))
      return formats[i];
  return NULL;
}

const ts_format *ts_format_of(const unsigned char *magic, size_t n) {
  for (int i = 0; formats[i]; i++)
    if (formats[i]->reader && formats[i]->is_a && formats[i]->is_a(magic, n)) return formats[i];
  return NULL;
}
