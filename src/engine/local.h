/* The one-process loop (local.c). */
#ifndef TS_ENGINE_LOCAL_H
#define TS_ENGINE_LOCAL_H

#include "engine/kind.h"

/* Run every pass of an opened kind in this process with the job's
 * threads, then finish it; fills stats. */
ts_status ts_engine_local(ts_kind *k, const ts_job *job, ts_run_stats *stats, ts_error *err);

#endif
