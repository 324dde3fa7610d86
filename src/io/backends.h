/* The format backends' tables, collected by format.c. Internal to src/io. */
#ifndef TS_IO_BACKENDS_H
#define TS_IO_BACKENDS_H

#include "tessera/io.h"

extern const ts_reader_ops ts_tiff_reader_ops;
extern const ts_reader_ops ts_synth_reader_ops;
extern const ts_writer_ops ts_tiff_writer_ops;

#endif
