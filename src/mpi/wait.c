/* Waiting without spinning, and agreeing on one outcome. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "mpi/wire.h"

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

int ts_recv_gently(MPI_Comm comm, int src, int tag, ts_blob *b, double *idle) {
  long ns = 10000;
  for (;;) {
    int flag = 0, n = 0;
    MPI_Message msg;
    MPI_Status status;
    MPI_Improbe(src, tag, comm, &flag, &msg, &status);
    if (flag) {
      MPI_Get_count(&status, MPI_BYTE, &n);
      if (ts_blob_reserve(b, (size_t)n)) MPI_Abort(comm, 1); /* cannot drain: no way on */
      MPI_Mrecv(b->p, n, MPI_BYTE, &msg, MPI_STATUS_IGNORE);
      b->size = (size_t)n;
      return status.MPI_SOURCE;
    }
    ts_backoff(&ns, idle);
  }
}

ts_status ts_agree(ts_status mine, const ts_error *my_err, MPI_Comm comm, ts_error *err) {
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
