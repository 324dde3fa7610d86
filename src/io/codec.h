/* Whole-image codecs for list mode: PNG (libpng), JPEG (libjpeg-turbo) and
 * TIFF (libtiff), decoded from and encoded to memory, so rank 0 can ship a
 * file's bytes and workers decode them. Internal to the library. */
#ifndef TS_IO_CODEC_H
#define TS_IO_CODEC_H

#include "core/blob.h"
#include "core/zstream.h"
#include "tessera/io.h"

typedef enum ts_file_format { TS_FILE_UNKNOWN = 0, TS_FILE_PNG, TS_FILE_JPEG, TS_FILE_TIFF } ts_file_format;

/* The format of a file from its first bytes. */
ts_file_format ts_sniff(const void *bytes, size_t n);
/* "png", "jpeg" (or "jpg"), "tiff" (or "tif"). */
ts_status ts_file_format_parse(const char *s, ts_file_format *out);
const char *ts_file_format_ext(ts_file_format f); /* "png", "jpg", "tif" */

/* Decode n bytes named `name` (for messages). Pixels go to px (grown, kept
 * for the next image); *im views them. An image of more than max_pixels
 * pixels (0: no limit) is refused from its header, before any decoding. PNG: 8/16-bit gray, gray+alpha,
 * RGB, RGBA; palette becomes RGB (RGBA with transparency), bit depths
 * below 8 become 8. JPEG: gray or RGB. TIFF: as in tile mode. A truncated
 * or corrupt file is an error naming it. */
ts_status ts_decode(const char *name, const void *bytes, size_t n, int64_t max_pixels, ts_blob *px, ts_image *im,
                    ts_zstream *z, ts_blob *work, ts_error *err);

/* Encode im into out (replacing its bytes). PNG takes u8/u16 with 1-4
 * channels; JPEG u8 with 1 or 3 (quality 1-100); TIFF any dtype, with
 * the compression given. */
ts_status ts_encode(ts_file_format f, const ts_image *im, int quality, ts_compression c, int level, ts_blob *out,
                    ts_zstream *z, ts_blob *work, ts_error *err);

/* A header's size: refuse w or h below 1, or more than max_pixels pixels
 * (0: no limit), naming the file, the size and --max-image-pixels. */
ts_status ts_codec_check(const char *name, int64_t w, int64_t h, int64_t max_pixels, ts_error *err);
/* Size px for a w x h x c image of dtype dt and view it (the decoders'). */
ts_status ts_codec_image(const char *name, int64_t w, int64_t h, int c, ts_dtype dt, ts_blob *px, ts_image *im,
                         ts_error *err);

/* png.c: libpng's decoder; tessera's own encoder (Sub filter, the zlib
 * stream through ts_zcompress_filtered at `level`; -1: literals and runs,
 * as cv2.imwrite's Z_RLE). `work`
 * holds the filtered rows, kept between images. */
ts_status ts_png_decode(const char *name, const void *bytes, size_t n, int64_t max_pixels, ts_blob *px, ts_image *im,
                        ts_zstream *z, ts_blob *work, ts_error *err);
ts_status ts_png_encode(const ts_image *im, int level, ts_blob *out, ts_zstream *z, ts_blob *work, ts_error *err);

#endif
