/* libtiff glue shared by the TIFF reader and writer. Internal to src/io. */
#ifndef TS_IO_TIFF_UTIL_H
#define TS_IO_TIFF_UTIL_H

#include <tiffio.h>

/* Open options whose error handler keeps the first libtiff error in
 * msg[512] (per handle, never global handlers) and drops warnings. Free
 * with TIFFOpenOptionsFree. */
TIFFOpenOptions *ts_tiff_options(char *msg);

#endif
