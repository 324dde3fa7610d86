/* HDF5 files checked before libhdf5 trusts them: the root group's symbol
 * table (on the way to any dataset) and a dataset's claims (type, chunks,
 * filters, where its data lies) against the file itself. Shared by the
 * tile-mode reader (hdf5_image.c) and the stack input (inputs.c). */
#include <hdf5.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "core/zstream.h"
#include "io/backends.h"
#include "io/file.h"

/* What a file claims about a dataset, checked against itself and the
 * file's size before HDF5 is asked to read it: libhdf5 trusts sizes and
 * offsets it finds, and a forged chunk or type reaches H5Dread (libhdf5
 * 1.10.8 overflowed its heap on a mutated chunked /image). What this
 * cannot check (a chunk's compressed bytes, the B-tree's inner nodes) is
 * libhdf5's own; the fuzz harnesses run it under ASan (tests/fuzz). */
ts_status ts_h5_check_dataset(hid_t file, hid_t dset, const char *name, ts_error *err) {
  hid_t t = H5Dget_type(dset), sp = H5Dget_space(dset), dcpl = H5Dget_create_plist(dset);
  ts_status st = TS_OK;
  hsize_t fsize = 0, dims[8] = {0}, maxdims[8] = {0}, chunk[8] = {0};
  const int rank = H5Sget_simple_extent_ndims(sp);
  if (rank < 1 || rank > 8 || H5Sget_simple_extent_dims(sp, dims, maxdims) < 0 || H5Fget_filesize(file, &fsize) < 0)
    st = ts_fail(err, TS_ERR_FORMAT, "%s: unreadable dataspace", name);
  for (int i = 0; !st && i < rank; i++) /* a fixed size holds its extent (libhdf5 1.10.8 read past a chunk) */
    if (maxdims[i] != H5S_UNLIMITED && dims[i] > maxdims[i])
      st = ts_fail(err, TS_ERR_FORMAT, "%s: dimension %d is %llu, beyond its maximum %llu (corrupt)", name, i,
                   (unsigned long long)dims[i], (unsigned long long)maxdims[i]);
  /* the element: a plain 8-, 16- or 32-bit number, no padding bits (HDF5
   * then converts by at most a byte swap) */
  const size_t size = t >= 0 ? H5Tget_size(t) : 0;
  if (!st && (H5Tget_precision(t) != 8 * size || H5Tget_offset(t) != 0))
    st = ts_fail(err, TS_ERR_FORMAT, "%s: its %zu-byte elements have %zu bits of precision at offset %d; tessera "
                 "reads plain 8-, 16- and 32-bit numbers", name, size, H5Tget_precision(t), H5Tget_offset(t));
  hsize_t elems = 1;
  for (int i = 0; !st && i < rank; i++) {
    if (dims[i] > ((hsize_t)1 << 48) || (dims[i] && elems > ((hsize_t)1 << 62) / dims[i]))
      st = ts_fail(err, TS_ERR_FORMAT, "%s: dimension %d of %llu is beyond any image", name, i,
                   (unsigned long long)dims[i]);
    elems *= dims[i];
  }
  const H5D_layout_t layout = dcpl >= 0 ? H5Pget_layout(dcpl) : H5D_LAYOUT_ERROR;
  if (!st && layout == H5D_CHUNKED) {
    if (H5Pget_chunk(dcpl, 8, chunk) != rank)
      st = ts_fail(err, TS_ERR_FORMAT, "%s: its chunks do not have the dataset's %d dimensions", name, rank);
    hsize_t bytes = size;
    for (int i = 0; !st && i < rank; i++) {
      if (chunk[i] < 1 || chunk[i] > ((hsize_t)1 << 32) || (maxdims[i] != H5S_UNLIMITED && chunk[i] > maxdims[i]))
        st = ts_fail(err, TS_ERR_FORMAT, "%s: chunk dimension %d is %llu", name, i, (unsigned long long)chunk[i]);
      else bytes *= chunk[i];
      if (!st && bytes > ((hsize_t)1 << 30))
        st = ts_fail(err, TS_ERR_FORMAT, "%s: its chunks are over 1 GiB each; tessera reads chunks up to 1 GiB",
                     name);
    }
    for (int i = 0, n = st ? 0 : H5Pget_nfilters(dcpl); !st && i < n; i++) {
      unsigned flags, cd[8];
      size_t ncd = 8;
      char fname[64] = "";
      H5Z_filter_t f = H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, cd, sizeof fname, fname, NULL);
      /* the filters whose chunks ts_h5_chunks checks, and no others: a
       * forged pipeline reached libhdf5's n-bit filter with no
       * parameters (a NULL read) */
      if (f != H5Z_FILTER_DEFLATE && f != H5Z_FILTER_SHUFFLE && f != H5Z_FILTER_FLETCHER32)
        st = ts_fail(err, TS_ERR_FORMAT, "%s: its chunks need HDF5 filter %d (%s); tessera reads chunks filtered "
                     "by deflate (gzip), shuffle and Fletcher-32", name, (int)f, fname[0] ? fname : "unknown");
      else if (f == H5Z_FILTER_DEFLATE && (ncd != 1 || cd[0] > 9))
        st = ts_fail(err, TS_ERR_FORMAT, "%s: its deflate filter has %zu parameters (corrupt)", name, ncd);
    }
    /* every allocated chunk inside the dataset and inside the file (by
     * index, which libhdf5 1.10 finds by walking the index: checked for
     * the first 4096 chunks; the rest, as all, against the file's end by
     * libhdf5's own reads) */
    hsize_t nchunks = 0;
    if (!st && H5Dget_num_chunks(dset, sp, &nchunks) /* 1.10.8 refuses H5S_ALL */ < 0)
      st = ts_fail(err, TS_ERR_FORMAT, "%s: its chunk index cannot be read (corrupt)", name);
    if (!st && H5Dget_storage_size(dset) > fsize)
      st = ts_fail(err, TS_ERR_FORMAT, "%s: its chunks claim %llu bytes, more than the file's %llu (corrupt or "
                   "truncated)", name, (unsigned long long)H5Dget_storage_size(dset), (unsigned long long)fsize);
    for (hsize_t c = 0; !st && c < nchunks && c < 4096; c++) {
      hsize_t off[8] = {0}, csize = 0;
      haddr_t addr = 0;
      unsigned mask = 0;
      if (H5Dget_chunk_info(dset, sp, c, off, &mask, &addr, &csize) < 0) {
        st = ts_fail(err, TS_ERR_FORMAT, "%s: chunk %llu cannot be located (corrupt)", name, (unsigned long long)c);
        break;
      }
      int inside = addr != HADDR_UNDEF && addr <= fsize && csize > 0 && csize <= fsize - addr;
      for (int i = 0; inside && i < rank; i++) inside = off[i] < dims[i] && off[i] % chunk[i] == 0;
      if (!inside)
        st = ts_fail(err, TS_ERR_FORMAT, "%s: chunk %llu of %llu lies outside the dataset or the file's %llu bytes "
                     "(corrupt or truncated)", name, (unsigned long long)c, (unsigned long long)nchunks,
                     (unsigned long long)fsize);
    }
  } else if (!st && layout == H5D_CONTIGUOUS) {
    const haddr_t addr = H5Dget_offset(dset);
    const hsize_t stored = H5Dget_storage_size(dset);
    if (addr != HADDR_UNDEF && (stored != elems * size || addr > fsize || stored > fsize - addr))
      st = ts_fail(err, TS_ERR_FORMAT, "%s: its %llu bytes at offset %llu do not fit the file's %llu bytes "
                   "(truncated or corrupt)", name, (unsigned long long)stored, (unsigned long long)addr,
                   (unsigned long long)fsize);
  } else if (!st && layout == H5D_COMPACT) { /* the data in the object header: all of it (libhdf5 read NULL) */
    if (H5Dget_storage_size(dset) != elems * size)
      st = ts_fail(err, TS_ERR_FORMAT, "%s: its compact data holds %llu bytes, not the %llu of its %llu elements "
                   "(corrupt)", name, (unsigned long long)H5Dget_storage_size(dset),
                   (unsigned long long)(elems * size), (unsigned long long)elems);
  } else if (!st) {
    st = ts_fail(err, TS_ERR_FORMAT, "%s: unsupported storage layout (virtual or external datasets are not read)", name);
  }
  if (t >= 0) H5Tclose(t);
  if (sp >= 0) H5Sclose(sp);
  if (dcpl >= 0) H5Pclose(dcpl);
  return st;
}

/* libhdf5 1.10.8 dereferences NULL when the root group's symbol table
 * (superblock version 0 or 1, object header version 1: what h5py writes
 * by default) names a B-tree or local heap outside the file: every name
 * lookup goes through them. Checked here from the file's bytes, before
 * HDF5 opens it. Other layouts are left to libhdf5. */
static uint64_t le(const unsigned char *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

/* The group B-tree (version 1, node type 0) at `node`: every node a TREE
 * of type 0 whose keys are offsets into the local heap (dsize bytes) and
 * whose children are nodes one level down, or symbol table nodes (SNOD) at
 * level 0, all inside the file; at most `*budget` nodes (a cycle ends it).
 * libhdf5 1.10.8 read NULL through a forged child address. */
static const char *check_btree(FILE *f, uint64_t base, uint64_t node, int level, uint64_t dsize, uint64_t size,
                               int *budget) {
  unsigned char h[24], e[16];
  if (--*budget < 0) return "its root group's B-tree has more nodes than a file of this size holds";
  if (node < base || node > size - 24 || fseek(f, (long)node, SEEK_SET) || fread(h, 1, 24, f) != 24 ||
      memcmp(h, "TREE", 4) || h[4] != 0 || (level >= 0 && h[5] != level))
    return "its root group's B-tree has a node that is not where the file says";
  const int lvl = h[5], n = (int)le(h + 6, 2);
  if (lvl > 16 || (uint64_t)n * 16 + 8 > size - node - 24) return "its root group's B-tree has a node cut short";
  for (int i = 0; i < n; i++) {
    if (fseek(f, (long)(node + 24 + 16 * (uint64_t)i), SEEK_SET) || fread(e, 1, 16, f) != 16)
      return "its root group's B-tree has a node cut short";
    const uint64_t key = le(e, 8), child = base + le(e + 8, 8);
    if (key >= dsize) return "its root group's B-tree names a link outside the local heap";
    if (lvl > 0) {
      const char *bad = check_btree(f, base, child, lvl - 1, dsize, size, budget);
      if (bad) return bad;
    } else {
      unsigned char s[8];
      if (child < base || child > size - 8 || fseek(f, (long)child, SEEK_SET) || fread(s, 1, 8, f) != 8 ||
          memcmp(s, "SNOD", 4))
        return "its root group's B-tree points at a symbol table node that is not there";
    }
  }
  return NULL;
}

/* The local heap at `heap` (absolute), and the data segment it names, are
 * inside a file of `size` bytes; NULL or what is wrong. */
static const char *check_heap(FILE *f, uint64_t base, uint64_t btree, uint64_t heap, uint64_t size) {
  unsigned char h[32];
  if (btree < base || heap < base || btree >= size || heap >= size || size - heap < 32) /* < base: undefined (all ones) */
    return "its root group's symbol table points outside the file";
  if (fseek(f, (long)heap, SEEK_SET) || fread(h, 1, 32, f) != 32 || memcmp(h, "HEAP", 4) || h[4] != 0)
    return "its root group's local heap is not where the file says";
  const uint64_t dsize = le(h + 8, 8), daddr = base + le(h + 24, 8);
  if (dsize == 0 || daddr < base || daddr >= size || dsize > size - daddr)
    return "its root group's local heap lies outside the file";
  int budget = (int)(size / 24 < 4096 ? size / 24 : 4096);
  const char *bad = check_btree(f, base, btree, -1, dsize, size, &budget);
  if (bad) return bad;
  /* its free list: blocks of (next offset, size) inside the data segment,
   * no more of them than fit (libhdf5 1.10.8 followed a block pointing at
   * itself, allocating without end) */
  uint64_t at = le(h + 16, 8), steps = 0;
  while (at != UINT64_MAX && at != 1 /* H5HL_FREE_NULL */) {
    unsigned char blk[16];
    if (at > dsize || dsize - at < 16 || ++steps > dsize / 16 || fseek(f, (long)(daddr + at), SEEK_SET) ||
        fread(blk, 1, 16, f) != 16)
      return "its root group's local heap has a corrupt free list";
    const uint64_t next = le(blk, 8), len = le(blk + 8, 8);
    if (len < 16 || len > dsize - at) /* a cycle ends at the step bound */
      return "its root group's local heap has a corrupt free list";
    at = next;
  }
  return NULL;
}

static ts_status check_root_group(const char *file, ts_error *err) {
  FILE *f = fopen(file, "rb");
  if (!f) return TS_OK; /* H5Fopen reports it */
  unsigned char b[1024];
  fseek(f, 0, SEEK_END);
  const uint64_t size = (uint64_t)ftell(f);
  const char *bad = NULL;
  /* at = where a structure starts; read n bytes of it into b */
#define AT(at, n) (fseek(f, (long)(at), SEEK_SET) == 0 && fread(b, 1, (n), f) == (size_t)(n))
  if (!AT(0, 96) || memcmp(b, "\x89HDF\r\n\x1a\n", 8) || b[8] > 1 || b[13] != 8 || b[14] != 8) goto done;
  /* every address is relative to the base address (0 unless a user block
   * precedes the superblock; a forged one moves them all) */
  const int root = b[8] == 0 ? 56 : 60; /* the root group's symbol table entry */
  const uint64_t base = le(b + (b[8] == 0 ? 24 : 28), 8), ohdr = base + le(b + root + 8, 8);
  if (base >= size || ohdr < base || ohdr >= size) {
    bad = "its superblock's base address or root group lies outside the file";
    goto done;
  }
  /* the driver information block, when there is one: inside the file with
   * the size it gives (libhdf5 allocated and zero-filled a forged size) */
  const int sb = b[8] == 0 ? 24 : 28;
  const uint64_t eof = le(b + sb + 16, 8), drv = le(b + sb + 24, 8);
  if (eof != UINT64_MAX && (eof > UINT64_MAX - base || base + eof > size)) {
    bad = "the superblock gives an end of file past the file's (truncated)";
    goto done;
  }
  if (drv != UINT64_MAX) {
    unsigned char d[16];
    if (base + drv < base || base + drv > size - 16 || fseek(f, (long)(base + drv), SEEK_SET) || fread(d, 1, 16, f) != 16 ||
        le(d + 4, 4) > size - (base + drv) - 16) {
      bad = "its driver information block lies outside the file";
      goto done;
    }
  }
  /* the entry's scratch pad may cache the symbol table: libhdf5 then goes there */
  if (le(b + root + 16, 4) == 1 && (bad = check_heap(f, base, base + le(b + root + 24, 8), base + le(b + root + 32, 8),
                                                      size)))
    goto done;
  if (!AT(ohdr, 16) || b[0] != 1) goto done; /* object header v1 only */
  const uint64_t nmsg = le(b + 2, 2), hsize = le(b + 8, 4);
  uint64_t at = ohdr + 16, end = ohdr + 16 + hsize;
  for (uint64_t m = 0; m < nmsg && at + 8 <= end && at + 8 <= size && AT(at, 8); m++) {
    const uint64_t type = le(b, 2), len = le(b + 2, 2);
    if (type == 0x11) { /* symbol table: v1 B-tree, local heap */
      if (len < 16 || !AT(at + 8, 16)) bad = "its root group's symbol table message is cut short";
      else bad = check_heap(f, base, base + le(b, 8), base + le(b + 8, 8), size);
      break;
    }
    at += 8 + len;
  }
#undef AT
done:
  fclose(f);
  return bad ? ts_fail(err, TS_ERR_FORMAT, "%s: corrupt HDF5 file: %s", file, bad) : TS_OK;
}

ts_status ts_h5_open(const char *file, int64_t *out, ts_error *err) {
  *out = -1;
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* errors become our messages, not HDF5's stack dumps */
  int fd;
  struct stat sb;
  ts_status rs = ts_open_regular(file, "the HDF5 file", &fd, &sb, err); /* a FIFO would block libhdf5's open */
  if (rs) return rs;
  close(fd);
  if (H5Fis_hdf5(file) <= 0) return ts_fail(err, TS_ERR_FORMAT, "%s: not an HDF5 file (or cannot be read)", file);
  ts_status st = check_root_group(file, err);
  if (st) return st;
  if ((*out = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT)) < 0) return ts_fail(err, TS_ERR_IO, "%s: cannot open", file);
  return TS_OK;
}

/* ---- chunks, checked before H5Dread ------------------------------------
 * libhdf5 1.10.8 copies a whole chunk out of what its deflate filter
 * produced without checking that a whole chunk came out: a stream that
 * inflates short (forged or damaged) was a heap over-read in H5Dread
 * (ASan), garbage without it; libhdf5 keeps deflate for itself
 * (H5Zregister refuses predefined filters). So each chunk a read touches
 * is checked the first time, from its stored bytes: inflated by ISA-L to
 * exactly its size (deflate, with shuffle or Fletcher-32 or both), or
 * stored at exactly its size (shuffle, Fletcher-32 or nothing). Other
 * filter pipelines are libhdf5's. */
#include <stdlib.h>

ts_status ts_h5_chunks_init(ts_h5_chunks *c, int64_t dset) {
  memset(c, 0, sizeof *c);
  hid_t dcpl = H5Dget_create_plist(dset), t = H5Dget_type(dset), sp = H5Dget_space(dset);
  int rank = dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CHUNKED ? H5Pget_chunk(dcpl, 8, c->chunk) : 0;
  if (rank < 1 || rank > 8 || H5Sget_simple_extent_dims(sp, c->dims, NULL) != rank) rank = 0;
  int other = 0, deflate = 0;
  for (int i = 0, n = rank ? H5Pget_nfilters(dcpl) : 0; i < n; i++) {
    unsigned flags, cd[8];
    size_t ncd = 8;
    H5Z_filter_t f = H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, cd, 0, NULL, NULL);
    if (f == H5Z_FILTER_DEFLATE) deflate = 1, c->deflate_bit = 1u << i;
    else if (f == H5Z_FILTER_FLETCHER32) c->fletcher_bit = 1u << i, c->fletcher_first = !deflate;
    else if (f != H5Z_FILTER_SHUFFLE) other = 1;
  }
  size_t bytes = t >= 0 ? H5Tget_size(t) : 0, chunks = 1;
  for (int i = 0; i < rank; i++) {
    bytes *= (size_t)c->chunk[i];
    c->grid[i] = (c->dims[i] + c->chunk[i] - 1) / c->chunk[i];
    chunks = c->grid[i] && chunks > ((size_t)1 << 32) / c->grid[i] ? 0 : chunks * (size_t)c->grid[i];
  }
  if (t >= 0) H5Tclose(t);
  if (sp >= 0) H5Sclose(sp);
  if (dcpl >= 0) H5Pclose(dcpl);
  if (rank == 0 || other || chunks == 0) return TS_OK; /* nothing checked here */
  c->rank = rank;
  c->deflate = deflate;
  c->bytes = bytes;
  c->seen = calloc(chunks, 1);
  return c->seen ? TS_OK : TS_ERR_NOMEM;
}

void ts_h5_chunks_free(ts_h5_chunks *c) {
  free(c->seen);
  ts_blob_free(&c->raw);
  ts_blob_free(&c->out);
  ts_zstream_free(&c->z);
  memset(c, 0, sizeof *c);
}

ts_status ts_h5_chunks_check(ts_h5_chunks *c, int64_t dset, const unsigned long long *start, const unsigned long long *count,
                             const char *name, ts_error *err) {
  if (!c->rank) return TS_OK;
  unsigned long long lo[8], hi[8], at[8];
  for (int i = 0; i < c->rank; i++) {
    if (count[i] == 0) return TS_OK;
    lo[i] = at[i] = start[i] / c->chunk[i];
    hi[i] = (start[i] + count[i] - 1) / c->chunk[i];
  }
  for (;;) { /* every chunk of the selection, as an odometer */
    size_t k = 0;
    hsize_t off[8];
    for (int i = 0; i < c->rank; i++) k = k * (size_t)c->grid[i] + (size_t)at[i], off[i] = at[i] * c->chunk[i];
    if (!c->seen[k]) {
      hsize_t stored = 0;
      haddr_t addr = HADDR_UNDEF;
      unsigned fmask = 0;
      uint32_t mask = 0;
      ts_status st = TS_OK;
      hsize_t read_size = 0; /* what H5Dread_chunk will write: its own lookup of the chunk */
      if (H5Dget_chunk_info_by_coord(dset, off, &fmask, &addr, &stored) < 0 || addr == HADDR_UNDEF) {
        /* not allocated: the fill value, made by libhdf5 */
      } else if (H5Dget_chunk_storage_size(dset, off, &read_size) < 0 || read_size != stored) {
        /* two lookups of one chunk disagree (H5Dread_chunk wrote past the buffer sized by the other) */
        st = ts_fail(err, TS_ERR_FORMAT, "%s: the chunk index lists the chunk at offset %llu x %llu twice (corrupt)",
                     name, (unsigned long long)off[0], (unsigned long long)off[c->rank > 1]);
      } else if (stored == 0) { /* an index entry with an address and no bytes (libhdf5 read past 8 bytes) */
        st = ts_fail(err, TS_ERR_FORMAT, "%s: the chunk at offset %llu x %llu has an address but no bytes (corrupt "
                     "chunk index)", name, (unsigned long long)off[0], (unsigned long long)off[c->rank > 1]);
      } else if (stored > ((hsize_t)1 << 31) || ts_blob_reserve(&c->raw, (size_t)stored) ||
                 ts_blob_reserve(&c->out, c->bytes)) {
        st = ts_fail(err, TS_ERR_FORMAT, "%s: a chunk claims %llu stored bytes", name, (unsigned long long)stored);
      } else {
        /* a Fletcher-32 checksum adds 4 bytes: to the stream when it ran
         * after deflate, to what inflates when before (a chunk's mask says
         * which filters were skipped for it) */
        const int deflated = c->deflate && !(fmask & c->deflate_bit);
        const size_t sum = c->fletcher_bit && !(fmask & c->fletcher_bit) ? 4 : 0;
        const size_t tail = deflated && !c->fletcher_first ? sum : 0, inflated = c->bytes + (sum - tail);
        if (!deflated) {
          if (stored != c->bytes + sum) /* stored as it is: exactly a chunk */
            st = ts_fail(err, TS_ERR_FORMAT, "%s: the chunk at offset %llu x %llu stores %llu bytes, not the %zu of a "
                         "chunk (corrupt)", name, (unsigned long long)off[0], (unsigned long long)off[c->rank > 1],
                         (unsigned long long)stored, c->bytes + sum);
        } else if (stored <= tail || ts_blob_reserve(&c->out, inflated) ||
                   H5Dread_chunk(dset, H5P_DEFAULT, off, &mask, c->raw.p) < 0 ||
                   ts_zdecompress(&c->z, c->raw.p, (size_t)stored - tail, c->out.p, inflated)) {
          st = ts_fail(err, TS_ERR_FORMAT, "%s: the chunk at offset %llu x %llu does not inflate to the %zu bytes of a "
                       "chunk (corrupt)", name, (unsigned long long)off[0], (unsigned long long)off[c->rank > 1],
                       inflated);
        }
      }
      if (st) return st;
      c->seen[k] = 1;
    }
    int i = c->rank - 1;
    while (i >= 0 && at[i] == hi[i]) at[i] = lo[i], i--;
    if (i < 0) return TS_OK;
    at[i]++;
  }
}
