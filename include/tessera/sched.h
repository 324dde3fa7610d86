/* tessera: running a job over MPI ranks.
 *
 * Collective over `comm`. Rank 0 plans, reads, dispatches, collects and
 * writes; ranks 1..N-1 compute with OpenMP threads. With one rank it is
 * ts_run_local. The only public header that includes mpi.h. */
#ifndef TESSERA_SCHED_H
#define TESSERA_SCHED_H

#include <mpi.h>
#include "tessera/job.h"

/* Per-rank figures of a run (index = rank). */
typedef struct ts_rank_stats {
  int64_t tasks;         /* tasks computed */
  double busy;           /* seconds busy (rank 0: not waiting) */
  int64_t bytes_sent, bytes_received;
  int threads;
  char host[64];
} ts_rank_stats;

/* Run the job. `job` is read on rank 0 only (the others receive it from
 * rank 0: no shared filesystem needed); rank 0 passes NULL when its own
 * command line was bad, so every rank returns an error together. Every
 * rank returns the same status; the message is in rank 0's `err`.
 * On rank 0, stats->ranks (stats->nranks entries) is allocated: free it
 * with ts_run_stats_free. */
TS_API ts_status ts_run_mpi(const ts_job *job, MPI_Comm comm, ts_run_stats *stats, FILE *log,
                            ts_error *err);

#endif
