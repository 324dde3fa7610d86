/* delay: a diagnostic kernel that sleeps, on one chosen MPI rank or on
 * all, then copies its input. It makes load balancing visible and
 * testable: a slowed worker should simply take fewer tasks. */
#include <time.h>
#include "kernels/common.h"
#include "kernels/defs.h"

static ts_status delay_apply(const ts_kernel *k, const ts_image *in, ts_image *out,
                             ts_scratch *s, ts_error *err) {
  const int who = (int)k->v[1].num;
  if (who < 0 || who == k->rank) {
    double ms = k->v[0].num;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms * 1e6) % 1000000000L};
    nanosleep(&ts, NULL);
  }
  ts_image_copy(in, out);
  return TS_OK;
}

static const ts_param_def delay_params[] = {
    {"ms", TS_PARAM_FLOAT, "10", 0, 60000, 0, NULL, "milliseconds to sleep per tile"},
    {"rank", TS_PARAM_INT, "-1", -1, 1 << 20, 0, NULL, "the MPI rank that sleeps; -1 = every rank"},
};

const ts_kernel_def ts_kernel_delay = {
    .name = "delay",
    .summary = "diagnostic: sleep ms per tile on one rank (or all), pass pixels through",
    .params = delay_params,
    .nparams = 2,
    .dtypes = TS_DTYPES_ALL,
    .channels = TS_CHANNELS_ANY,
    .halo_doc = "0",
    .apply = delay_apply,
};
