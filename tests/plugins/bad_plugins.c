/* Broken plugins for tests/plugins/test_plugins.py: one per -DBAD_* flag,
 * each a defect that loading must report, naming the file. */
#include "tessera/plugin.h"

static ts_status apply(const ts_kernel *k, const ts_image *in, ts_image *out, ts_scratch *s, ts_error *err) {
  return TS_OK;
}

static const ts_param_def params[] = {
    {"a", TS_PARAM_INT, "1", 0, 10, 0, NULL, "a parameter"},
    {"a", TS_PARAM_INT, "1", 0, 10, 0, NULL, "the same name again"},
};

#ifndef NAME
#define NAME "broken"
#endif

static const ts_kernel_def def = {
    .name = NAME,
    .summary = "a broken kernel",
#if defined(BAD_PARAMS)
    .params = params, .nparams = 2,
#endif
    .dtypes = TS_DTYPES_ALL,
    .channels = 1u << 1,
    .halo_doc = "0",
#if !defined(BAD_NO_APPLY)
    .apply = apply,
#endif
};

static const ts_kernel_def *const kernels[] = {&def, NULL};

#if defined(BAD_ABI)
static const ts_plugin_info info = {TS_PLUGIN_ABI + 1, sizeof(ts_kernel_def), sizeof(ts_kernel), "broken", kernels};
#else
static const ts_plugin_info info = TS_PLUGIN_INFO("broken", kernels);
#endif

#if !defined(BAD_NO_ENTRY)
TS_PLUGIN_EXPORT const ts_plugin_info *tessera_plugin(void) { return &info; }
#else
TS_PLUGIN_EXPORT const ts_plugin_info *some_other_name(void) { return &info; }
#endif
