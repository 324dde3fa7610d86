/* List mode: each input image is one task. The same task code runs in the
 * local engine's threads, on MPI workers and on rank 0 when idle; results
 * travel as self-describing records that rank 0 stores in any order. */
#ifndef TS_ENGINE_LIST_TASK_H
#define TS_ENGINE_LIST_TASK_H

#include "core/blob.h"
#include "io/list.h"
#include "tessera/job.h"
#include "tessera/pipeline.h"

/* A rank's list-mode state: the pipeline prepared for each (dtype,
 * channels) met so far, and the second images of blend kernels. */
typedef struct ts_list_rank {
  const char *text;
  ts_boundary boundary;
  double cval;
  ts_list_out_options oo; /* how results are encoded */
  ts_pipeline *pipes[TS_DTYPE_COUNT][TS_MAX_CHANNELS + 1];
  ts_status pst[TS_DTYPE_COUNT][TS_MAX_CHANNELS + 1];
  char pmsg[TS_DTYPE_COUNT][TS_MAX_CHANNELS + 1][1024];
  ts_image aux[TS_MAX_KERNELS];
  ts_blob auxpx[TS_MAX_KERNELS];
  int rank;
  int64_t max_pixels; /* ts_job.max_image_pixels */
} ts_list_rank;

/* One thread's buffers, kept from image to image. */
typedef struct ts_list_thread {
  ts_scratch *s;
  ts_blob px, data, work; /* decoded pixels, encoded result, an encoder's rows */
  ts_emits em;
  ts_zstream z; /* inflates stack chunks, deflates HDF5 output chunks */
} ts_list_thread;

/* The with= paths of blend kernels in `text`: kernel index -> path
 * (malloc'ed; NULL where none). Returns how many. */
int ts_list_aux_paths(const char *text, char **paths);
/* aux[i]: the bytes of kernel i's with= file (NULL: none). */
ts_status ts_list_rank_init(ts_list_rank *r, const char *text, ts_boundary b, double cval, int64_t max_pixels,
                            const ts_list_out_options *oo, const ts_blob *aux, ts_error *err);
void ts_list_rank_free(ts_list_rank *r);
ts_status ts_list_thread_init(ts_list_thread *t, ts_error *err);
void ts_list_thread_free(ts_list_thread *t);

/* The record of one task, appended to out:
 * [ts_list_record][msg][ts_emit x nemit][double x nvalues][data]. A failing
 * image makes a record with its status and message; only running out of
 * memory for the record itself fails the call. *pixels: the input image's
 * pixels (0 if it failed to decode). */
typedef struct ts_list_record {
  int64_t index;
  int32_t status, nemit;
  int64_t msg_len, nvalues, data_len;
  ts_result_image ri;
} ts_list_record;
ts_status ts_list_task(ts_list_rank *r, ts_list_thread *t, int64_t index, const char *name, const void *payload, size_t n,
                       ts_blob *out, int64_t *pixels, ts_error *err);
/* The record of a task that failed before it ran (its input could not be
 * read). */
ts_status ts_list_failure(int64_t index, ts_status status, const char *msg, ts_blob *out, ts_error *err);
/* Store the record at rec into o; *used = its size. em: scratch for the
 * values. A failed image's record goes to /failed. */
ts_status ts_list_store(ts_list_out *o, const ts_inputs *in, const unsigned char *rec, size_t *used, ts_emits *em,
                        ts_error *err);

/* The inputs still to run (largest first), after a resume's replay: *n of them. */
ts_status ts_list_remaining(const ts_inputs *in, const char *done, int64_t **order, int64_t *n);

/* Checkpoints and --resume (list_resume.c), on rank 0 or the only process. */
#include "engine/journal.h"
typedef struct ts_list_journal {
  ts_journal *j;          /* this run's */
  ts_journal_state saved; /* --resume: the previous run's records */
  char *prev;             /* the previous journal, set aside until replayed */
  int dir;                /* directory output */
  int64_t replayed;
  char *done;             /* per input: replayed from the previous run */
} ts_list_journal;
/* Before ts_list_out_open: refuse leftovers without --resume/--force,
 * check the fingerprint and load the records with --resume, create the
 * journal. */
ts_status ts_list_journal_open(ts_list_journal *lj, const ts_job *job, const ts_inputs *in, ts_list_out_options *oo,
                           ts_error *err);
/* Store the previous run's records again (lj->done[index] = 1 for each). */
ts_status ts_list_journal_replay(ts_list_journal *lj, ts_list_out *out, const ts_inputs *in, ts_error *err);
/* A record just stored: journal it, checkpoint when due. */
ts_status ts_list_journal_add(ts_list_journal *lj, const unsigned char *rec, size_t used, ts_error *err);
/* The end: keep the journal for a stopped run (after a checkpoint), else drop it. */
void ts_list_journal_close(ts_list_journal *lj, ts_status st, ts_run_stats *stats);

#endif
