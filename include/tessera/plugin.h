/* tessera: kernel plugins.
 *
 * A plugin is a shared object with one entry point, `tessera_plugin`,
 * returning a ts_plugin_info: the ABI it was built for and a NULL-
 * terminated array of kernel definitions, in the same form as the
 * built-ins (tessera/kernel.h). Build one with
 *
 *     cc -O2 -shared -fPIC -o k.so k.c $(pkg-config --cflags tessera)
 *
 * and run it with `tessera run --plugin ./k.so ...` (or `plugins = k.so` in
 * a job file's [pipeline], or TESSERA_PLUGIN_PATH). plugins/ in the
 * repository holds examples (plugins/invert_plugin.c is the smallest).
 *
 * The contract for a kernel's functions:
 * - prepare (once per pipeline, on every rank): check the parameters
 *   against the input's dtype and channels, set k->halo, k->out_dtype,
 *   k->out_channels (and k->align if tiles must start on a block grid);
 *   a bad combination is ts_fail(err, TS_ERR_PIPELINE, "name: ...").
 * - setup / teardown (optional; once per rank and kernel text): load what
 *   every task needs (files: only the paths in its parameters). The state
 *   is shared by all threads: apply reads it, never writes it.
 * - apply: pure and thread-safe. It reads `in` (out->w + 2 halo by
 *   out->h + 2 halo; rows `in->stride` bytes apart) and writes every
 *   pixel of `out`, and may be called on any sub-rectangle of the image
 *   in any order, on several threads at once, and on other ranks: the
 *   output must depend on the input pixels and parameters alone. Memory
 *   that outlives the call comes from `scratch` (slots 0..7 are the
 *   kernel's; ts_scratch_get keeps the buffer for the next call on that
 *   thread), so apply allocates nothing in steady state. It must not
 *   call MPI, read or write files, keep globals it writes, exit, or
 *   print: it reports an error with ts_fail and a message naming the
 *   kernel.
 * - apply_image (optional): list mode runs it on each whole image, and it
 *   may emit values (ts_emit_values) into the image's results.
 * - the statistics hooks (stages ... resolve), for a kernel that needs a
 *   statistic of the whole image first: see kernel.h.
 *
 * tessera checks at load: the entry point exists, the ABI and struct sizes
 * match, every kernel has a name that no other kernel has, a summary, an
 * apply (or apply_image with TS_KERNEL_WHOLE), dtypes and channels, and
 * well-formed parameters. Any failure is one message naming the file. */
#ifndef TESSERA_PLUGIN_H
#define TESSERA_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include "tessera/kernel.h"

/* Bumped whenever ts_kernel_def, ts_kernel or a type they use changes. */
#define TS_PLUGIN_ABI 1

typedef struct ts_plugin_info {
  int abi;                              /* TS_PLUGIN_ABI */
  size_t def_size, kernel_size;         /* sizeof(ts_kernel_def), sizeof(ts_kernel) */
  const char *name;                     /* for messages and `tessera kernels` */
  const ts_kernel_def *const *kernels;  /* NULL-terminated */
} ts_plugin_info;

/* What a plugin's entry point returns, filled in for the header it was
 * built with. */
#define TS_PLUGIN_INFO(plugin_name, kernel_array) \
  { TS_PLUGIN_ABI, sizeof(ts_kernel_def), sizeof(ts_kernel), (plugin_name), (kernel_array) }

/* The entry point's name and type; define it with TS_PLUGIN_EXPORT. */
#define TS_PLUGIN_ENTRY "tessera_plugin"
typedef const ts_plugin_info *(*ts_plugin_entry_fn)(void);
#define TS_PLUGIN_EXPORT __attribute__((visibility("default")))

/* ---- the host's side (libtessera) ---- */

/* Load the plugin at `path` and add its kernels to the registry. Call
 * before any pipeline is parsed, from one thread. A file loaded already
 * (same content) is not loaded twice. */
TS_API ts_status ts_plugin_load(const char *path, ts_error *err);
/* The same from bytes in memory (a worker loading what rank 0 sent):
 * written to an anonymous file (memfd_create) and loaded from there.
 * `name` is the path rank 0 loaded, for messages. */
TS_API ts_status ts_plugin_load_bytes(const char *name, const void *bytes, size_t n, ts_error *err);
/* Each entry of a colon-separated list (TESSERA_PLUGIN_PATH): a file is
 * loaded, a directory's *.so files are loaded in name order. */
TS_API ts_status ts_plugin_load_path_list(const char *list, ts_error *err);

/* Loaded plugins: how many, and the i-th's path, name, bytes and content
 * hash (FNV-1a, 64 bits, of the file's bytes). */
TS_API int ts_plugin_count(void);
typedef struct ts_plugin_desc {
  const char *path, *name;
  const void *bytes;
  size_t size;
  uint64_t hash;
  int nkernels;
} ts_plugin_desc;
TS_API int ts_plugin_get(int i, ts_plugin_desc *out);
/* The plugin a kernel definition came from (its index), or -1 for a
 * built-in. */
TS_API int ts_plugin_of(const ts_kernel_def *def);

/* Free every rank's set-up states (teardown) and unload the plugins. */
TS_API void ts_plugins_unload(void);

#endif
