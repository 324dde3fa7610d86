/* PNG: libpng decodes (every PNG there is: palettes, bit depths,
 * interlacing, transparency); tessera encodes itself, because what makes
 * a bulk PNG writer fast is the filter and the deflate, not the format.
 * The encoder writes what cv2.imwrite writes by default, the Sub filter on
 * every row and a fast deflate (cv2: zlib level 1 with the RLE strategy;
 * here literals and runs, core/runs.h, by default), as one IHDR, one IDAT
 * and IEND. libpng's writer with its default adaptive filters took 2.5 times
 * cv2's time on the blend workload (README). */
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/zstream.h"
#include "io/codec.h"


typedef struct png_io {
  const unsigned char *p;
  size_t n, at;
  char msg[256];
  jmp_buf jmp;
} png_io;

static void png_on_error(png_structp png, png_const_charp msg) {
  png_io *io = png_get_error_ptr(png);
  snprintf(io->msg, sizeof io->msg, "%s", msg);
  longjmp(io->jmp, 1);
}
static void png_on_warning(png_structp png, png_const_charp msg) {}

static void png_read_mem(png_structp png, png_bytep dst, size_t n) {
  png_io *io = png_get_io_ptr(png);
  if (n > io->n - io->at) png_error(png, "truncated file (the data ends early)");
  memcpy(dst, io->p + io->at, n);
  io->at += n;
}

static ts_status libpng_decode(const char *name, const void *bytes, size_t n, int64_t max_pixels, ts_blob *px,
                               ts_image *im, ts_error *err) {
  png_io io = {.p = bytes, .n = n};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &io, png_on_error, png_on_warning);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!info) {
    png_destroy_read_struct(&png, NULL, NULL);
    return ts_fail(err, TS_ERR_NOMEM, "%s: out of memory for the PNG decoder", name);
  }
  ts_status st = TS_OK;
  if (setjmp(io.jmp)) {
    png_destroy_read_struct(&png, &info, NULL);
    return ts_fail(err, TS_ERR_FORMAT, "%s: corrupt or truncated PNG: %s", name, io.msg);
  }
  png_set_read_fn(png, &io, png_read_mem);
  png_set_user_limits(png, 0x7fffffff, 0x7fffffff); /* libpng's own maximum: the pixel count decides */
  /* an ancillary chunk's inflated text or profile stays under 8 MB */
  png_set_chunk_malloc_max(png, n > (8u << 20) ? n : (8u << 20));
  png_set_chunk_cache_max(png, 1000);
  png_read_info(png, info);
  if ((st = ts_codec_check(name, png_get_image_width(png, info), png_get_image_height(png, info), max_pixels, err))) {
    png_destroy_read_struct(&png, &info, NULL);
    return st;
  }
  int depth = png_get_bit_depth(png, info), type = png_get_color_type(png, info);
  if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  if (depth == 16) png_set_swap(png); /* PNG is big-endian */
  const int passes = png_set_interlace_handling(png);
  png_read_update_info(png, info);
  const int64_t w = png_get_image_width(png, info), h = png_get_image_height(png, info);
  const int c = png_get_channels(png, info);
  const ts_dtype dt = png_get_bit_depth(png, info) == 16 ? TS_U16 : TS_U8;
  st = ts_codec_image(name, w, h, c, dt, px, im, err);
  if (st == TS_OK && png_get_rowbytes(png, info) != (size_t)(w * c * (int64_t)ts_dtype_size(dt)))
    st = ts_fail(err, TS_ERR_FORMAT, "%s: unexpected PNG row layout", name);
  if (st == TS_OK) {
    for (int pass = 0; pass < passes; pass++)
      for (int64_t y = 0; y < h; y++) png_read_row(png, (png_bytep)px->p + y * im->stride, NULL);
    png_read_end(png, NULL);
  }
  png_destroy_read_struct(&png, &info, NULL);
  return st;
}

/* ---- the fast decoder ----------------------------------------------------- */

static uint32_t get32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Undo row r's filter in place; p is the row above, unfiltered (NULL for
 * the first). Returns -1 for an unknown filter type. */
static int unfilter(int type, unsigned char *restrict r, const unsigned char *restrict p, size_t n, size_t bpp) {
  switch (type) {
    case 0: return 0;
    case 1:
      for (size_t i = bpp; i < n; i++) r[i] = (unsigned char)(r[i] + r[i - bpp]);
      return 0;
    case 2:
      if (p)
        for (size_t i = 0; i < n; i++) r[i] = (unsigned char)(r[i] + p[i]);
      return 0;
    case 3:
      for (size_t i = 0; i < n; i++) {
        const unsigned left = i >= bpp ? r[i - bpp] : 0, up = p ? p[i] : 0;
        r[i] = (unsigned char)(r[i] + ((left + up) >> 1));
      }
      return 0;
    case 4:
      for (size_t i = 0; i < n; i++) {
        const int a = i >= bpp ? r[i - bpp] : 0, b = p ? p[i] : 0, c = p && i >= bpp ? p[i - bpp] : 0;
        const int q = a + b - c, pa = abs(q - a), pb = abs(q - b), pc = abs(q - c);
        r[i] = (unsigned char)(r[i] + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c));
      }
      return 0;
    default: return -1;
  }
}

/* The PNGs bulk jobs are made of (8- or 16-bit gray, gray+alpha, RGB or
 * RGBA, not interlaced, no palette, no transparency chunk, every chunk's
 * CRC right) decode here: the IDATs joined and inflated by ISA-L, which
 * takes about a third of zlib's time (zlib's inflate under libpng was
 * 40% of the folder blend), and the rows unfiltered in place. Returns 0
 * when it decoded the image, 1 when libpng should (anything else, and
 * anything wrong, so that libpng's own message names the problem). */
static int fast_decode(const char *name, const unsigned char *b, size_t n, ts_blob *px, ts_image *im, ts_zstream *z,
                       ts_blob *work) {
  if (n < 8 + 25 || get32(b + 8) != 13 || memcmp(b + 12, "IHDR", 4) || ts_crc32_update(0, b + 12, 17) != get32(b + 29))
    return 1;
  const unsigned char *ih = b + 16;
  const int64_t w = get32(ih), h = get32(ih + 4);
  const int depth = ih[8], color = ih[9], channels = color == 0 ? 1 : color == 4 ? 2 : color == 2 ? 3 : 4;
  if ((depth != 8 && depth != 16) || (color != 0 && color != 2 && color != 4 && color != 6) || ih[10] || ih[11] ||
      ih[12] || w < 1 || h < 1 || w > (1 << 30) || h > (1 << 30))
    return 1;
  const size_t bpp = (size_t)channels * (size_t)(depth / 8), row = (size_t)w * bpp, raw = (size_t)h * (row + 1);
  size_t idat = 0, at = 33;
  for (int end = 0; !end;) { /* the chunks: sizes and CRCs first, nothing copied */
    if (n - at < 12) return 1;
    const size_t len = get32(b + at);
    const unsigned char *type = b + at + 4;
    if (len > n - at - 12 || ts_crc32_update(0, type, len + 4) != get32(b + at + 8 + len)) return 1;
    if (!memcmp(type, "IDAT", 4)) idat += len;
    else if (!memcmp(type, "IEND", 4)) end = 1;
    else if (!(type[0] & 0x20) || !memcmp(type, "tRNS", 4)) return 1; /* critical (PLTE...) or transparency */
    at += 12 + len;
  }
  ts_error e = {0}; /* the image's size against the decoders' limit, before any buffer */
  if (ts_codec_image(name, w, h, channels, depth == 16 ? TS_U16 : TS_U8, px, im, &e)) return 1;
  if (ts_blob_reserve(work, raw + idat)) return 1;
  unsigned char *stream = work->p + raw;
  for (size_t k = 33, got = 0; got < idat; k += 12 + get32(b + k))
    if (!memcmp(b + k + 4, "IDAT", 4)) memcpy(stream + got, b + k + 8, get32(b + k)), got += get32(b + k);
  if (ts_zdecompress(z, stream, idat, work->p, raw) != 0) return 1;
  for (int64_t y = 0; y < h; y++) {
    unsigned char *r = work->p + (size_t)y * (row + 1);
    if (unfilter(r[0], r + 1, y ? r - row : NULL, row, bpp)) return 1;
    unsigned char *dst = (unsigned char *)im->data + y * im->stride;
    if (depth == 8) {
      memcpy(dst, r + 1, row);
    } else { /* big-endian samples */
      for (size_t i = 0; i < row; i += 2) dst[i] = r[i + 2], dst[i + 1] = r[i + 1];
    }
  }
  return 0;
}

ts_status ts_png_decode(const char *name, const void *bytes, size_t n, int64_t max_pixels, ts_blob *px, ts_image *im,
                        ts_zstream *z, ts_blob *work, ts_error *err) {
  /* the size the IHDR claims, before libpng sizes its row buffers by it */
  const unsigned char *b = bytes;
  ts_status st = n >= 24 && !memcmp(b + 12, "IHDR", 4) ? ts_codec_check(name, get32(b + 16), get32(b + 20), max_pixels, err)
                                                      : TS_OK;
  if (st) return st;
  /* every chunk inside the file: libpng sizes a chunk's buffer by its
   * length field before reading it (a tEXt claiming 2 GB was one 2 GB
   * allocation in an 81-byte file) */
  for (size_t at = 8; n >= 8 && at < n;) {
    if (n - at < 12 || get32(b + at) > n - at - 12)
      return ts_fail(err, TS_ERR_FORMAT, "%s: corrupt or truncated PNG: the chunk at byte %zu claims %u bytes, the "
                     "file has %zu after it", name, at, n - at >= 4 ? get32(b + at) : 0u, n - at);
    if (!memcmp(b + at + 4, "IEND", 4)) break;
    at += 12 + get32(b + at);
  }
  if (z && work && fast_decode(name, bytes, n, px, im, z, work) == 0) return TS_OK;
  return libpng_decode(name, bytes, n, max_pixels, px, im, err);
}

/* ---- the encoder ---------------------------------------------------------- */

static void put32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

/* Close the chunk whose length field is at `at` (its data runs to the end). */
static int end_chunk(ts_blob *out, size_t at) {
  const size_t n = out->size - at - 8;
  if (n > 0x7fffffffu) return -1;
  put32(out->p + at, (uint32_t)n);
  unsigned char crc[4];
  put32(crc, ts_crc32_update(0, out->p + at + 4, n + 4)); /* type and data */
  return ts_blob_append(out, crc, 4);
}

static int chunk(ts_blob *out, const char *type, const void *data, size_t n) {
  const size_t at = out->size;
  unsigned char head[8] = {0};
  memcpy(head + 4, type, 4);
  return ts_blob_append(out, head, 8) || ts_blob_append(out, data, n) || end_chunk(out, at);
}

/* Row y as PNG stores it: the filter type (1, Sub), then each byte minus
 * the byte one pixel to its left; 16-bit samples big-endian first. */
static void sub_row(const ts_image *im, int64_t y, unsigned char *dst) {
  const size_t bpp = ts_pixel_size(im), n = (size_t)im->w * bpp;
  const unsigned char *src = (const unsigned char *)im->data + y * im->stride;
  unsigned char *restrict d = dst + 1;
  dst[0] = 1;
  if (im->dtype == TS_U16) { /* swap into d, then filter from the end back */
    for (size_t i = 0; i < n; i += 2) d[i] = src[i + 1], d[i + 1] = src[i];
    for (size_t i = n; i-- > bpp;) d[i] = (unsigned char)(d[i] - d[i - bpp]);
    return;
  }
  memcpy(d, src, bpp < n ? bpp : n);
  for (size_t i = bpp; i < n; i++) d[i] = (unsigned char)(src[i] - src[i - bpp]);
}

ts_status ts_png_encode(const ts_image *im, int level, ts_blob *out, ts_zstream *z, ts_blob *work, ts_error *err) {
  if (im->dtype == TS_F32)
    return ts_fail(err, TS_ERR_USAGE, "PNG holds 8- or 16-bit integers; end the pipeline with scale dtype=u8 "
                   "(or u16), or write TIFF");
  if (im->w < 1 || im->h < 1 || im->w > 0x7fffffff || im->h > 0x7fffffff || im->channels < 1 || im->channels > 4)
    return ts_fail(err, TS_ERR_USAGE, "PNG: cannot hold a %lldx%lld image of %d channels", (long long)im->w,
                   (long long)im->h, im->channels);
  const size_t row = 1 + (size_t)im->w * ts_pixel_size(im), raw = row * (size_t)im->h;
  if (ts_blob_reserve(work, raw)) return ts_fail(err, TS_ERR_NOMEM, "out of memory for a PNG");
  for (int64_t y = 0; y < im->h; y++) sub_row(im, y, work->p + (size_t)y * row);
  static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  static const unsigned char types[] = {0, 0, 4, 2, 6}; /* gray, gray+alpha, RGB, RGBA */
  unsigned char ihdr[13];
  put32(ihdr, (uint32_t)im->w);
  put32(ihdr + 4, (uint32_t)im->h);
  ihdr[8] = im->dtype == TS_U16 ? 16 : 8, ihdr[9] = types[im->channels];
  ihdr[10] = ihdr[11] = ihdr[12] = 0; /* deflate, adaptive filtering (per row), no interlace */
  out->size = 0;
  const size_t bound = ts_zbound(raw);
  if (ts_blob_append(out, sig, 8) || chunk(out, "IHDR", ihdr, sizeof ihdr) || ts_blob_reserve(out, out->size + 8 + bound + 12))
    return ts_fail(err, TS_ERR_NOMEM, "out of memory for a PNG");
  const size_t at = out->size; /* IDAT: the zlib stream written in place */
  memcpy(out->p + at + 4, "IDAT", 4);
  const size_t n = ts_zcompress_filtered(z, level, work->p, raw, out->p + at + 8, bound); /* after Sub */
  if (!n) return ts_fail(err, TS_ERR_INTERNAL, "PNG: deflate failed");
  out->size = at + 8 + n;
  if (end_chunk(out, at) || chunk(out, "IEND", NULL, 0)) return ts_fail(err, TS_ERR_NOMEM, "out of memory for a PNG");
  return TS_OK;
}
