/* Whole-image PNG, JPEG and TIFF codecs over memory (list mode). libpng
 * and libjpeg report errors by longjmp from their error callbacks; each
 * decode keeps its own jmp_buf and message, so threads never share state. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <jpeglib.h>
#include <jerror.h>
#include <string.h>
#include <strings.h>
#include "io/backends.h"
#include "io/codec.h"
#include "io/tiff_util.h"

ts_status ts_file_format_parse(const char *s, ts_file_format *out) {
  if (!strcasecmp(s, "png")) *out = TS_FILE_PNG;
  else if (!strcasecmp(s, "jpeg") || !strcasecmp(s, "jpg")) *out = TS_FILE_JPEG;
  else if (!strcasecmp(s, "tiff") || !strcasecmp(s, "tif")) *out = TS_FILE_TIFF;
  else return TS_ERR_USAGE;
  return TS_OK;
}

const char *ts_file_format_ext(ts_file_format f) {
  return f == TS_FILE_PNG ? "png" : f == TS_FILE_JPEG ? "jpg" : f == TS_FILE_TIFF ? "tif" : "";
}

/* ---- JPEG --------------------------------------------------------------- */

typedef struct jpeg_err {
  struct jpeg_error_mgr mgr;
  jmp_buf jmp;
} jpeg_err;

static void jpeg_on_error(j_common_ptr c) { longjmp(((jpeg_err *)c->err)->jmp, 1); }

/* libjpeg's warnings that mean the pixels are wrong: it pads a scan that
 * ends early with gray, resynchronizes past a bad code or marker, or
 * stops a progressive image between scans. Each fails the image at once
 * (as an error would), so a header with no data costs no decoding time.
 * The others (extraneous bytes before a marker, an unknown JFIF version,
 * an odd Adobe transform, a bad ICC chunk) leave the pixels alone. */
static int jpeg_warning_is_corrupt(int code) {
  switch (code) {
    case JWRN_JPEG_EOF: case JWRN_HIT_MARKER: case JWRN_HUFF_BAD_CODE: case JWRN_MUST_RESYNC:
    case JWRN_NOT_SEQUENTIAL: case JWRN_BOGUS_PROGRESSION:
#ifdef JWRN_ARITH_BAD_CODE
    case JWRN_ARITH_BAD_CODE:
#endif
      return 1;
    default: return 0;
  }
}

static void jpeg_on_message(j_common_ptr c, int level) {
  if (level < 0 && jpeg_warning_is_corrupt(c->err->msg_code)) longjmp(((jpeg_err *)c->err)->jmp, 1);
}

static ts_status decode_jpeg(const char *name, const void *bytes, size_t n, int64_t max_pixels, ts_blob *px,
                             ts_image *im, ts_error *err) {
  struct jpeg_decompress_struct cinfo;
  jpeg_err je;
  cinfo.err = jpeg_std_error(&je.mgr);
  je.mgr.error_exit = jpeg_on_error;
  je.mgr.emit_message = jpeg_on_message;
  if (setjmp(je.jmp)) {
    char msg[JMSG_LENGTH_MAX];
    je.mgr.format_message((j_common_ptr)&cinfo, msg);
    jpeg_destroy_decompress(&cinfo);
    return ts_fail(err, TS_ERR_FORMAT, "%s: corrupt or truncated JPEG: %s", name, msg);
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, bytes, (unsigned long)n);
  jpeg_read_header(&cinfo, TRUE);
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    jpeg_destroy_decompress(&cinfo);
    return ts_fail(err, TS_ERR_FORMAT, "%s: CMYK JPEG is not supported; tessera reads gray and RGB", name);
  }
  ts_status hs = ts_codec_check(name, cinfo.image_width, cinfo.image_height, max_pixels, err);
  if (hs) {
    jpeg_destroy_decompress(&cinfo);
    return hs;
  }
  cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  ts_status st = ts_codec_image(name, cinfo.output_width, cinfo.output_height, cinfo.output_components, TS_U8, px,
                            im, err);
  while (st == TS_OK && cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = (JSAMPROW)px->p + (int64_t)cinfo.output_scanline * im->stride;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  if (st == TS_OK) jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return st;
}

static ts_status encode_jpeg(const ts_image *im, int quality, ts_blob *out, ts_error *err) {
  if (im->dtype != TS_U8 || (im->channels != 1 && im->channels != 3))
    return ts_fail(err, TS_ERR_USAGE, "JPEG holds 8-bit gray or RGB; this image is %s with %d channel(s)",
                   ts_dtype_name(im->dtype), im->channels);
  struct jpeg_compress_struct cinfo;
  jpeg_err je;
  cinfo.err = jpeg_std_error(&je.mgr);
  je.mgr.error_exit = jpeg_on_error;
  unsigned char *mem = NULL;
  unsigned long size = 0;
  if (setjmp(je.jmp)) {
    jpeg_destroy_compress(&cinfo);
    free(mem);
    return ts_fail(err, TS_ERR_IO, "JPEG encoder failed");
  }
  jpeg_create_compress(&cinfo);
  jpeg_mem_dest(&cinfo, &mem, &size);
  cinfo.image_width = (JDIMENSION)im->w;
  cinfo.image_height = (JDIMENSION)im->h;
  cinfo.input_components = im->channels;
  cinfo.in_color_space = im->channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  for (int64_t y = 0; y < im->h; y++) {
    JSAMPROW row = (JSAMPROW)im->data + y * im->stride;
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  out->size = 0;
  int bad = ts_blob_append(out, mem, size);
  free(mem);
  return bad ? ts_fail(err, TS_ERR_NOMEM, "out of memory") : TS_OK;
}

/* ---- TIFF --------------------------------------------------------------- */

static ts_status decode_tiff(const char *name, const void *bytes, size_t n, int64_t max_pixels, ts_blob *px,
                             ts_image *im, ts_error *err) {
  void *ctx = NULL;
  ts_image_info info;
  memset(&info, 0, sizeof info);
  ts_status st = ts_tiff_open_memory(name, bytes, n, &ctx, &info, err);
  if (st == TS_OK) st = ts_codec_check(name, info.w, info.h, max_pixels, err);
  if (st == TS_OK) st = ts_codec_image(name, info.w, info.h, info.channels, info.dtype, px, im, err);
  if (st == TS_OK) st = ts_tiff_reader_ops.read(ctx, (ts_rect){0, 0, info.w, info.h}, px->p, im->stride, err);
  if (ctx) ts_tiff_reader_ops.close(ctx);
  return st;
}

static ts_status encode_tiff(const ts_image *im, ts_compression c, int level, ts_blob *out, ts_error *err) {
  char msg[512] = "";
  ts_membuf m = {.p = out->p, .cap = out->cap};
  TIFFOpenOptions *opts = ts_tiff_options(msg);
  TIFF *t = ts_tiff_mem_open("image", "w", &m, opts);
  TIFFOpenOptionsFree(opts);
  if (!t) return ts_fail(err, TS_ERR_NOMEM, "TIFF encoder: %s", msg);
  static const uint16_t comps[] = {COMPRESSION_NONE, COMPRESSION_ADOBE_DEFLATE, COMPRESSION_LZW, COMPRESSION_ZSTD,
                                   COMPRESSION_JPEG};
  ts_tiff_set_image(t, im->w, im->h, im->channels, im->dtype, comps[c == TS_COMPRESS_JPEG ? 0 : c], level);
  TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, (uint32_t)im->h);
  ts_status st = TS_OK;
  for (int64_t y = 0; y < im->h && st == TS_OK; y++)
    if (TIFFWriteScanline(t, (char *)im->data + y * im->stride, (uint32_t)y, 0) < 0)
      st = ts_fail(err, TS_ERR_IO, "TIFF encoder: %s", msg[0] ? msg : "write failed");
  TIFFClose(t);
  out->p = m.p; /* the memory file grew the blob's buffer */
  out->cap = (size_t)m.cap;
  out->size = (size_t)m.size;
  return st;
}

/* ---- the codecs, one line each ------------------------------------------ */

typedef struct codec {
  ts_file_format format;
  int (*is_a)(const unsigned char *b, size_t n); /* by the file's first bytes */
  ts_status (*decode)(const char *name, const void *bytes, size_t n, int64_t max_pixels, ts_blob *px, ts_image *im,
                      ts_zstream *z, ts_blob *work, ts_error *err);
  ts_status (*encode)(const ts_image *im, int quality, ts_compression c, int level, ts_blob *out, ts_zstream *z,
                      ts_blob *work, ts_error *err);
} codec;

static int png_is_a(const unsigned char *b, size_t n) { return n >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8); }
static int jpeg_is_a(const unsigned char *b, size_t n) { return n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF; }
static int tiff_is_a(const unsigned char *b, size_t n) {
  return n >= 4 && (!memcmp(b, "II*\0", 4) || !memcmp(b, "MM\0*", 4) || !memcmp(b, "II+\0", 4) ||
                    !memcmp(b, "MM\0+", 4));
}

static ts_status png_enc(const ts_image *im, int quality, ts_compression c, int level, ts_blob *out, ts_zstream *z,
                         ts_blob *work, ts_error *err) {
  return ts_png_encode(im, level, out, z, work, err);
}
static ts_status jpeg_dec(const char *name, const void *bytes, size_t n, int64_t max_pixels, ts_blob *px,
                          ts_image *im, ts_zstream *z, ts_blob *work, ts_error *err) {
  return decode_jpeg(name, bytes, n, max_pixels, px, im, err);
}
static ts_status jpeg_enc(const ts_image *im, int quality, ts_compression c, int level, ts_blob *out, ts_zstream *z,
                          ts_blob *work, ts_error *err) {
  return encode_jpeg(im, quality, out, err);
}
static ts_status tiff_dec(const char *name, const void *bytes, size_t n, int64_t max_pixels, ts_blob *px,
                          ts_image *im, ts_zstream *z, ts_blob *work, ts_error *err) {
  return decode_tiff(name, bytes, n, max_pixels, px, im, err);
}
static ts_status tiff_enc(const ts_image *im, int quality, ts_compression c, int level, ts_blob *out, ts_zstream *z,
                          ts_blob *work, ts_error *err) {
  return encode_tiff(im, c, level, out, err);
}

static const codec codecs[] = {
    {TS_FILE_PNG, png_is_a, ts_png_decode, png_enc},
    {TS_FILE_JPEG, jpeg_is_a, jpeg_dec, jpeg_enc},
    {TS_FILE_TIFF, tiff_is_a, tiff_dec, tiff_enc},
};
#define NCODECS (sizeof codecs / sizeof codecs[0])

ts_file_format ts_sniff(const void *bytes, size_t n) {
  for (size_t i = 0; i < NCODECS; i++)
    if (codecs[i].is_a(bytes, n)) return codecs[i].format;
  return TS_FILE_UNKNOWN;
}

ts_status ts_decode(const char *name, const void *bytes, size_t n, int64_t max_pixels, ts_blob *px, ts_image *im,
                    ts_zstream *z, ts_blob *work, ts_error *err) {
  for (size_t i = 0; i < NCODECS; i++)
    if (codecs[i].is_a(bytes, n)) return codecs[i].decode(name, bytes, n, max_pixels, px, im, z, work, err);
  return ts_fail(err, TS_ERR_FORMAT, n == 0 ? "%s: empty file" : "%s: not a PNG, JPEG or TIFF file", name);
}

ts_status ts_encode(ts_file_format f, const ts_image *im, int quality, ts_compression c, int level, ts_blob *out,
                    ts_zstream *z, ts_blob *work, ts_error *err) {
  out->size = 0;
  for (size_t i = 0; i < NCODECS; i++)
    if (codecs[i].format == f) return codecs[i].encode(im, quality, c, level, out, z, work, err);
  return ts_fail(err, TS_ERR_INTERNAL, "no encoder for format %d", (int)f);
}
