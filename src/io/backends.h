/* The format backends' tables, collected by format.c. Internal to src/io. */
#ifndef TS_IO_BACKENDS_H
#define TS_IO_BACKENDS_H

#include "tessera/io.h"

extern const ts_reader_ops ts_tiff_reader_ops;
extern const ts_reader_ops ts_synth_reader_ops;
extern const ts_writer_ops ts_tiff_writer_ops;
extern const ts_reader_ops ts_hdf5_reader_ops;
extern const ts_writer_ops ts_hdf5_writer_ops;

/* FILE.h5:/dataset: split at the first ":/" (0 when there is none); the
 * parts are malloc'd (pass NULL to skip one). */
int ts_h5_split(const char *spec, char **file, char **dset);

/* The TIFF reader over a file's bytes in memory (not copied: they must
 * outlive the context); close with ts_tiff_reader_ops.close. */
ts_status ts_tiff_open_memory(const char *name, const void *bytes, size_t n, void **ctx, ts_image_info *info,
                              ts_error *err);

#endif
