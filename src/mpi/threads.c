/* How many OpenMP threads each rank runs when the user said nothing.
 *
 * One OpenMP thread per core in every rank oversubscribes a node as soon as
 * two ranks share it, and spinning idle threads then steal the cores the
 * busy ones need. So, with no --threads and no OMP_NUM_THREADS, each rank
 * takes the cores its node's ranks may run on (the union of their CPU
 * affinity masks: what mpirun's binding, Slurm's cgroup or taskset left
 * them) divided by the number of those ranks, at least one. */
#define _GNU_SOURCE
#include <omp.h>
#include <sched.h>
#include <stdlib.h>
#include "mpi/threads.h"

int ts_mpi_threads(int requested, MPI_Comm comm) {
  /* collective whatever the answer, so every rank takes part */
  MPI_Comm node;
  MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  int local = 1;
  MPI_Comm_size(node, &local);
  cpu_set_t mine, all;
  CPU_ZERO(&mine);
  if (sched_getaffinity(0, sizeof mine, &mine) != 0) CPU_SET(0, &mine);
  MPI_Allreduce(&mine, &all, (int)sizeof mine, MPI_BYTE, MPI_BOR, node);
  MPI_Comm_free(&node);
  if (requested > 0) return requested;
  const char *env = getenv("OMP_NUM_THREADS");
  if (env && *env) return omp_get_max_threads();
  int n = CPU_COUNT(&all) / local;
  return n > 0 ? n : 1;
}
