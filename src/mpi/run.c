/* ts_run_mpi: rank 0 validates the job and opens the kind that runs it,
 * one set-up broadcast gives every worker what it needs (so workers read
 * no file of the job's, and with --io root not the input either), each
 * worker opens its side and every rank's readiness is agreed; then the
 * rank-0 loop and the worker loop run, whatever the kind. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "engine/kind.h"
#include "mpi/threads.h"
#include "mpi/wire.h"
#include "tessera/plugin.h"
#include "tessera/stop.h"

static void bcast_bytes(void *p, int64_t n, MPI_Comm comm) {
  for (int64_t at = 0; at < n; at += 1 <<30) {
    int64_t k = n - at < (1 << 30) ? n - at : (1 << 30);
    MPI_Bcast((char *)p + at, (int)k, MPI_BYTE, 0, comm);
  }
}

/* Rank 0's plugins to every worker, which loads them from memory (an
 * anonymous file): workers need no copy of the files, and every rank runs
 * the same bytes. A worker's failure is its readiness (agreed below). */
static ts_status ship_plugins(int rank, MPI_Comm comm, ts_error *err) {
  int32_t n = rank == 0 ? ts_plugin_count() : 0;
  MPI_Bcast(&n, 1, MPI_INT32_T, 0, comm);
  ts_status st = TS_OK;
  for (int32_t i = 0; i < n; i++) {
    ts_plugin_desc d = {0};
    if (rank == 0) ts_plugin_get(i, &d);
    int64_t len[2] = {d.path ? (int64_t)strlen(d.path) + 1 : 0, (int64_t)d.size};
    MPI_Bcast(len, 2, MPI_INT64_T, 0, comm);
    char *buf = rank == 0 ? NULL : malloc((size_t)(len[0] + len[1]) + 1);
    if (rank != 0 && !buf) MPI_Abort(comm, 1); /* no rank could go on */
    bcast_bytes(rank == 0 ? (void *)d.path : buf, len[0], comm);
    bcast_bytes(rank == 0 ? (void *)d.bytes : buf + len[0], len[1], comm);
    if (rank != 0 && st == TS_OK) st = ts_plugin_load_bytes(buf, buf + len[0], (size_t)len[1], err);
    free(buf);
  }
  return st;
}

/* Rank 0: open the job's kind and pack the set-up. */
static ts_status open_root(const ts_job *job, FILE *log, ts_kind **k, ts_wire_setup *su, ts_blob *setup,
                           ts_error *err) {
  const int kind = ts_kind_find(job);
  ts_status st = ts_kind_at(kind)->open(job, log, k, err);
  if (st) return st;
  if ((st = (*k)->ops->pack(*k, setup, err))) {
    (*k)->ops->close(k);
    return st;
  }
  int64_t inputs = job->io == TS_IO_ROOT ? (*k)->max_payload : 0;
  if (inputs < TS_BATCH_BYTES && job->io == TS_IO_ROOT) inputs = TS_BATCH_BYTES;
  if (inputs > TS_RECV_MAX) inputs = TS_RECV_MAX;
  *su = (ts_wire_setup){.kind = kind, .io = job->io, .trace = job->trace, .len = (int64_t)setup->size,
                        /* batches in flight per worker: enough to hide latency */
                        .credits = job->credits > 0 ? job->credits : 3,
                        .in_max = (int64_t)ts_payload_offset(TS_BATCH_TASKS) + inputs + 64};
  return TS_OK;
}

ts_status ts_run_mpi(const ts_job *job, MPI_Comm comm, ts_run_stats *stats, FILE *log, ts_error *err) {
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  memset(stats, 0, sizeof *stats);
  /* rank 0's command line, then its validation, decide for everyone */
  int32_t st = rank == 0 ? (job ? TS_OK : TS_ERR_USAGE) : TS_OK;
  MPI_Bcast(&st, 1, MPI_INT32_T, 0, comm);
  if (st) return rank == 0 ? (ts_status)st : ts_fail(err, (ts_status)st, "rank 0 refused the job");
  /* threads per rank: --threads, OMP_NUM_THREADS, or the node's cores shared */
  int32_t requested = rank == 0 ? job->threads : 0;
  MPI_Bcast(&requested, 1, MPI_INT32_T, 0, comm);
  const int threads = ts_mpi_threads(requested, comm);
  omp_set_num_threads(threads);
  if (size == 1) return ts_run_local(job, stats, log, err);

  ts_error mine = {0};
  ts_status ready = ship_plugins(rank, comm, &mine);
  ts_kind *k = NULL;
  ts_wire_setup su;
  memset(&su, 0, sizeof su);
  ts_blob setup = {0};
  if (rank == 0) st = open_root(job, log, &k, &su, &setup, err);
  MPI_Bcast(&st, 1, MPI_INT32_T, 0, comm);
  if (st) {
    ts_blob_free(&setup);
    return rank == 0 ? (ts_status)st : ts_fail(err, (ts_status)st, "rank 0 refused the job");
  }
  MPI_Bcast(&su, (int)sizeof su, MPI_BYTE, 0, comm);
  if (rank != 0 && ts_blob_reserve(&setup, (size_t)su.len)) MPI_Abort(comm, 1); /* no rank could go on */
  bcast_bytes(setup.p, su.len, comm);
  if (rank != 0 && ready == TS_OK) {
    ready = ts_kind_at(su.kind)->open_worker(setup.p, (size_t)su.len, rank, su.io == TS_IO_DIRECT, &k, &mine);
    if (ready == TS_OK) ready = k->ops->prepare(k, threads, &mine);
  }
  ts_blob_free(&setup);
  ts_status result = ts_agree(ready, &mine, comm, err);
  ts_stop_immediate(0); /* the loops take stop requests from here on */
  if (result == TS_OK)
    result = rank == 0 ? ts_mpi_root(k, job, &su, comm, stats, err) : ts_mpi_worker(k, &su, threads, comm, err);
  if (k) k->ops->close(&k);
  return result;
}
