/* The OpenMP threads of one rank (threads.c). */
#ifndef TS_MPI_THREADS_H
#define TS_MPI_THREADS_H

#include <mpi.h>

/* The threads this rank runs: `requested` when > 0 (--threads), else
 * OMP_NUM_THREADS when set, else the cores its node's ranks may run on
 * divided by the ranks on that node, at least 1. Collective over comm. */
int ts_mpi_threads(int requested, MPI_Comm comm);

#endif
