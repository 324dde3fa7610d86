/* ts_run_mpi: validation on rank 0, the set-up broadcast, the checks that
 * need every rank (workers opening the input with --io direct), then the
 * master and worker loops. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "sched/list.h"
#include "sched/plan.h"
#include "sched/protocol.h"
#include "mpi/threads.h"
#include <omp.h>

void ts_run_stats_free(ts_run_stats *stats) {
  free(stats->ranks);
  free(stats->events);
  free(stats->failures);
  free(stats->kept);
  stats->failures = NULL;
  stats->kept = NULL;
  stats->ranks = NULL;
  stats->events = NULL;
  stats->nranks = 0;
  stats->nevents = 0;
}

void ts_backoff(long *ns, double *idle) {
  struct timespec ts = {0, *ns};
  double t = MPI_Wtime();
  nanosleep(&ts, NULL);
  if (idle) *idle += MPI_Wtime() - t; /* the real sleep: timer slack adds ~50 us */
  if (*ns < 1000000) *ns *= 2;
}

void ts_wait_gently(MPI_Request *req, MPI_Status *status, double *idle) {
  long ns = 10000;
  for (;;) {
    int done = 0;
    MPI_Test(req, &done, status ? status : MPI_STATUS_IGNORE);
    if (done) return;
    ts_backoff(&ns, idle);
  }
}

ts_status ts_note_relative(const char *path, ts_status st, ts_error *err) {
  char cwd[512];
  size_t n = strlen(err->msg);
  if (path[0] == '@') path++;
  if (path[0] != '/' && strncmp(path, "synth:", 6) != 0 && getcwd(cwd, sizeof cwd))
    snprintf(err->msg + n, sizeof err->msg - n, " (looked in %s: a relative path)", cwd);
  return st;
}

/* Broadcast a string from rank 0 (NULL-safe); returns a malloc'ed copy. */
static char *bcast_string(const char *s, int32_t len, MPI_Comm comm) {
  char *copy = malloc((size_t)len + 1);
  if (!copy) MPI_Abort(comm, 1); /* no rank could go on */
  int rank;
  MPI_Comm_rank(comm, &rank);
  if (rank == 0) memcpy(copy, s, (size_t)len);
  MPI_Bcast(copy, len, MPI_CHAR, 0, comm);
  copy[len] = '\0';
  return copy;
}

/* Every rank's status and message to rank 0: the first failure, named by
 * rank and host, becomes rank 0's error. Returns the agreed status. */
static ts_status agree(ts_status mine, const ts_error *my_err, MPI_Comm comm, ts_error *err) {
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  struct {
    int32_t code;
    char host[64];
    char msg[1024];
  } me = {.code = mine}, *all = NULL;
  gethostname(me.host, sizeof me.host - 1);
  if (my_err) memcpy(me.msg, my_err->msg, sizeof me.msg);
  if (rank == 0) all = calloc((size_t)size, sizeof *all);
  MPI_Gather(&me, (int)sizeof me, MPI_BYTE, all, (int)sizeof me, MPI_BYTE, 0, comm);
  int32_t agreed = TS_OK;
  if (rank == 0) {
    for (int r = 0; r < size && all; r++)
      if (all[r].code != TS_OK) {
        agreed = all[r].code;
        ts_fail(err, (ts_status)agreed, "rank %d on %s: %s", r, all[r].host, all[r].msg);
        break;
      }
    free(all);
  }
  MPI_Bcast(&agreed, 1, MPI_INT32_T, 0, comm);
  if (agreed != TS_OK && rank != 0) ts_fail(err, (ts_status)agreed, "another rank failed");
  return (ts_status)agreed;
}

ts_status ts_run_mpi(const ts_job *job, MPI_Comm comm, ts_run_stats *stats, FILE *log,
                     ts_error *err) {
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
  omp_set_num_threads(ts_mpi_threads(requested, comm));
  if (size == 1) return ts_run_local(job, stats, log, err);
  int32_t list = rank == 0 ? job->strips > 0 || ts_inputs_is_list(job->input) : 0;
  MPI_Bcast(&list, 1, MPI_INT32_T, 0, comm);
  if (list) return ts_run_list_mpi(job, comm, stats, log, err);

  ts_plan plan;
  ts_setup su;
  memset(&su, 0, sizeof su);
  if (rank == 0) {
    st = ts_plan_open(&plan, job, err);
    if (st == TS_OK) {
      su.grid = plan.grid;
      su.wopts = plan.wopts;
      su.wopts.description = NULL;
      su.out_tile = plan.out_tile;
      su.in_dtype = plan.reader->info.dtype;
      su.in_channels = plan.reader->info.channels;
      su.boundary = job->boundary;
      su.io = job->io;
      su.threads = job->threads;
      su.trace = job->trace;
      su.cval = job->cval;
      su.len_input = (int32_t)strlen(job->input);
      su.len_output = (int32_t)strlen(job->output);
      su.len_pipeline = (int32_t)strlen(job->pipeline);
      int64_t task_bytes = ts_image_bytes(plan.grid.tile + 2 * plan.grid.halo,
                                          plan.grid.tile + 2 * plan.grid.halo, su.in_channels,
                                          (ts_dtype)su.in_dtype);
      su.task_bytes = task_bytes;
      /* messages (batches) in flight per worker: enough to hide latency */
      su.credits = job->credits > 0 ? job->credits : 3;
    }
  }
  MPI_Bcast(&st, 1, MPI_INT32_T, 0, comm);
  if (st) return rank == 0 ? (ts_status)st : ts_fail(err, (ts_status)st, "rank 0 refused the job");
  MPI_Bcast(&su, (int)sizeof su, MPI_BYTE, 0, comm);
  char *input = bcast_string(rank == 0 ? job->input : NULL, su.len_input, comm);
  char *output = bcast_string(rank == 0 ? job->output : NULL, su.len_output, comm);
  char *pipeline = bcast_string(rank == 0 ? job->pipeline : NULL, su.len_pipeline, comm);

  ts_status result;
  if (rank == 0) {
    /* workers check their side (pipeline, --io direct input) in ts_worker
     * and report through agree() before any task */
    ts_status ready = agree(TS_OK, NULL, comm, err);
    if (ready) {
      ts_plan_close(&plan);
      result = ready;
    } else {
      result = ts_master(job, &plan, comm, &su, stats, log, err);
      ts_plan_close(&plan);
    }
  } else {
    ts_rank_stats mine;
    result = ts_worker(&su, input, output, pipeline, comm, &mine, err);
  }
  free(input);
  free(output);
  free(pipeline);
  return result;
}

ts_status ts_agree(ts_status mine, const ts_error *my_err, MPI_Comm comm, ts_error *err) {
  return agree(mine, my_err, comm, err);
}
