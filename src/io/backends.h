/* The format backends' tables, collected by format.c. Internal to src/io. */
#ifndef TS_IO_BACKENDS_H
#define TS_IO_BACKENDS_H

#include "tessera/io.h"

extern const ts_reader_ops ts_tiff_reader_ops;
extern const ts_reader_ops ts_synth_reader_ops;
extern const ts_writer_ops ts_tiff_writer_ops;
extern const ts_reader_ops ts_hdf5_reader_ops;
extern const ts_writer_ops ts_hdf5_writer_ops;
extern const ts_reader_ops ts_zarr_reader_ops;
extern const ts_writer_ops ts_zarr_writer_ops;

/* The tile-mode formats, asked in turn (registry.c), as libvips picks its
 * loaders: a spec may name its format (synth:..., FILE.h5:/dataset, an
 * output's suffix), else a file's first bytes tell. Adding a format is a
 * file with its ops and one line of the registry. */
typedef struct ts_format {
  const char *name;
  const ts_reader_ops *reader; /* NULL: not an input */
  const ts_writer_ops *writer; /* NULL: not an output */
  int (*names)(const char *spec, int output); /* does the spec itself say this format? */
  int (*is_a)(const unsigned char *magic, size_t n); /* do a file's first bytes? (NULL: never) */
  int dataset; /* specs carry FILE:/dataset, the output's default /image */
  int directory; /* a directory store (Zarr): built as OUT.partial/, resumed in place */
} ts_format;
/* The format a spec names (as an output: output = 1), or NULL. */
const ts_format *ts_format_named(const char *spec, int output);
/* The readable format whose magic the first n bytes carry, or NULL. */
const ts_format *ts_format_of(const unsigned char *magic, size_t n);

/* The file name an output will carry, as metadata names the image: the
 * spec's last component without the ".partial" a backend is opened on
 * (ts_writer_open), made well-formed UTF-8 (ts_utf8_copy: OME-XML and
 * Zarr's JSON hold only text), in name[cap]; TS_FINAL_NAME_CAP holds any
 * (NAME_MAX bytes, each at most 3 once replaced). */
#define TS_FINAL_NAME_CAP (3 * 255 + 1)
void ts_output_final_name(const char *spec, char *name, size_t cap);

/* FILE.h5:/dataset: split at the first ":/" (0 when there is none); the
 * parts are malloc'd (pass NULL to skip one). */
int ts_h5_split(const char *spec, char **file, char **dset);

/* Open an HDF5 file read-only, after checking what libhdf5 would trust
 * blindly on the way to any dataset (the root group's symbol table). */
ts_status ts_h5_open(const char *file, int64_t *out, ts_error *err);
/* The chunks of a deflated (or unfiltered) chunked dataset, each checked
 * the first time a read touches it: it must inflate to exactly a chunk
 * (or be stored as exactly one). Other layouts: nothing to check. */
#include "core/blob.h"
#include "core/zstream.h"
typedef struct ts_h5_chunks {
  int rank; /* 0: not checked */
  int deflate;
  unsigned deflate_bit; /* the deflate filter's bit in a chunk's filter mask */
  unsigned fletcher_bit; /* Fletcher-32's (0: none) */
  int fletcher_first;   /* it ran before deflate (its 4 bytes are inflated) */
  unsigned long long dims[8], chunk[8], grid[8];
  size_t bytes;        /* a chunk's bytes, inflated */
  unsigned char *seen; /* one byte per chunk */
  ts_blob raw, out;
  ts_zstream z;
} ts_h5_chunks;
ts_status ts_h5_chunks_init(ts_h5_chunks *c, int64_t dset);
/* Check the chunks a read of count[i] from start[i] (per dimension) touches. */
ts_status ts_h5_chunks_check(ts_h5_chunks *c, int64_t dset, const unsigned long long *start, const unsigned long long *count,
                             const char *name, ts_error *err);
void ts_h5_chunks_free(ts_h5_chunks *c);
/* Check a dataset's claims (element type, chunk sizes and filters, where
 * its data lies) against the file before any read; name is for messages.
 * hid_t is int64_t (hdf5.h is not included here). */
ts_status ts_h5_check_dataset(int64_t file, int64_t dset, const char *name, ts_error *err);

/* Is the Zarr array at path a stack of images (N x H x W [x C], or
 * 3-D with more than 4 planes)? 0 for a group or no array. */
int ts_zarr_is_stack(const char *path);
/* Such a stack, read one image at a time (packed H x W x C); *info
 * holds an image's size, channels and dtype, *n the count. */
typedef struct ts_zarr_stack ts_zarr_stack;
ts_status ts_zarr_stack_open(const char *path, ts_zarr_stack **out, ts_image_info *info, int64_t *n, ts_error *err);
ts_status ts_zarr_stack_read(ts_zarr_stack *z, int64_t i, void *dst, ts_error *err);
void ts_zarr_stack_close(ts_zarr_stack *z);

/* Give directory tmp the name path, replacing a directory there (set
 * aside first, as rename cannot replace one): 0, or -1 (errno). */
int ts_install_dir(const char *tmp, const char *path);
/* May a Zarr store be written at path: nothing there, or (with force) a
 * directory holding a Zarr store (.zgroup, .zarray or zarr.json)? Never a
 * file or another directory. */
ts_status ts_store_replaceable(const char *path, int force, ts_error *err);

/* The kept tags and pixel size of the TIFF directory at `diroff` of
 * `path`, read as stored (tiff_meta.c). Nothing found is no error. */
ts_status ts_tiff_meta_read(const char *path, uint64_t diroff, ts_image_meta *m, ts_error *err);

/* The TIFF reader over a file's bytes in memory (not copied: they must
 * outlive the context); close with ts_tiff_reader_ops.close. */
ts_status ts_tiff_open_memory(const char *name, const void *bytes, size_t n, void **ctx, ts_image_info *info,
                              ts_error *err);

#endif
