/* tessera: a job, and running it in one process.
 *
 * The single-process engine: tasks from the grid are read through the
 * reader's cache, computed by OpenMP threads (one task per thread, buffers
 * allocated once per thread), and written in task order so the output file
 * is byte-identical for any thread count. The MPI scheduler hands the same
 * tasks to other ranks. */
#ifndef TESSERA_JOB_H
#define TESSERA_JOB_H

#include <stdio.h>
#include "tessera/io.h"
#include "tessera/partition.h"
#include "tessera/stop.h"

typedef enum ts_io_mode {
  TS_IO_ROOT = 0, /* rank 0 reads and sends pixels: no shared filesystem needed */
  TS_IO_DIRECT    /* workers read their input themselves (shared filesystem) */
} ts_io_mode;

typedef struct ts_job {
  const char *input;
  const char *output;
  const char *pipeline; /* text; "" = copy */
  int64_t page;         /* a multi-page TIFF input: the page to read (0: the first) */
  int64_t input_level;  /* a pyramidal TIFF input: the resolution to read (0: the full one) */
  int pyramid;          /* build reduced-resolution levels in the same pass */
  int pyramid_levels;   /* at most this many reduced levels (-1: until one fits in a tile) */
  ts_downsample downsample; /* how a level is made from the one below */
  const char *nodata;   /* the output's nodata value ("nan" too; "none": no nodata value); NULL: the input's */
  int layout;           /* ts_layout of a TIFF output; -1: ome for .ome.tif(f), else plain */
  int zarr_format;      /* Zarr output: 2 (default) or 3 */
  int shard;            /* Zarr v3 output: N x N chunks per shard file (0: no shards) */
  int64_t tile;         /* task core size, multiple of 16 */
  int64_t out_tile;     /* output TIFF tile; 0 = largest of 256..16 dividing tile */
  ts_boundary boundary;
  double cval;          /* constant boundary value, in the input's units */
  int threads;          /* 0 = all cores */
  ts_compression compression;
  int quality;
  int compression_level; /* deflate (PNG, HDF5, TIFF) 0..9, zstd 1..22; -1: the format's default */
  int force;
  int progress;         /* print progress to the log stream */
  ts_io_mode io;        /* MPI runs: who reads the input */
  int credits;          /* MPI runs: batches in flight per worker; 0 = auto (3) */
  int trace;            /* record task-phase events into the stats */
  int root_compute;     /* MPI runs: rank 0 computes tasks when idle: 1 yes, 0 no,
                           -1 auto (yes with at most 2 workers) */
  /* list mode (input: a directory, @list or FILE.h5:/stack) */
  const char *glob;     /* directory entries to take (default: image extensions) */
  int recursive;        /* descend into subdirectories */
  int64_t strips;       /* > 0: list mode over one image (tile mode's inputs),
                           one task per strip of this many rows */
  const char *format;   /* directory output: png|tiff|jpeg */
  int no_images;        /* HDF5 output: emitted values only, no /images */
  int64_t max_image_pixels; /* an input image (or with= image) above this many pixels fails before it
                               is decoded, naming its size (0: no limit); default TS_MAX_IMAGE_PIXELS */
  /* resuming (OUT.partial + OUT.journal) */
  int resume;           /* finish the unfinished output a stopped or killed run left */
  int64_t checkpoint_tasks;  /* checkpoint after this many tasks stored (0: by time only) */
  double checkpoint_seconds; /* ... or this many seconds after the last (default 10) */
} ts_job;

/* List mode's default --max-image-pixels: 2^28 (16384 x 16384), above any
 * camera's photo (150 Mpx) and any slide tile, below what a forged header
 * can make a decoder allocate before it finds no data. */
#define TS_MAX_IMAGE_PIXELS ((int64_t)1 << 28)

/* Defaults: tile 1024, reflect, all cores, no compression, quality 90. */
TS_API void ts_job_init(ts_job *job);

struct ts_rank_stats;

/* One phase of one task, for --trace (seconds from the run's start). */
typedef enum ts_trace_phase {
  TS_PHASE_READ = 0, TS_PHASE_SEND, TS_PHASE_COMPUTE, TS_PHASE_RECEIVE, TS_PHASE_WRITE
} ts_trace_phase;

typedef struct ts_trace_event {
  int64_t task;
  double start, dur;
  int32_t rank, thread, phase;
} ts_trace_event;

typedef struct ts_run_stats {
  double seconds;
  int64_t tasks;
  int64_t pixels;       /* output pixels */
  int64_t in_w, in_h;
  int threads;
  int64_t out_tile;
  int nranks;                   /* MPI runs, rank 0: per-rank figures */
  struct ts_rank_stats *ranks;
  char resolved[512];           /* global kernels' values: "threshold value=123; ..." */
  int64_t nfailed;              /* list mode: inputs that failed */
  char *failures;               /* list mode: "name: reason" lines, malloc'ed */
  int64_t nevents;              /* job->trace: every rank's events (rank 0) */
  ts_trace_event *events;
  int64_t done;                 /* tasks finished and written (= tasks unless stopped) */
  int stopped;                  /* TS_STOPPED: the signal (ts_stop_requested) */
  int stopped_in_stats;         /* TS_STOPPED during a global kernel's statistics pass */
  char *kept;                   /* TS_STOPPED: the unfinished output kept (malloc'ed), or NULL */
  int64_t resumed;              /* --resume: tasks taken from the unfinished output, not computed */
  int64_t checkpoints;          /* checkpoints written */
  int resumable;                /* TS_STOPPED: a journal was kept, --resume finishes the job */
} ts_run_stats;

/* Free what a run allocated in stats. */
TS_API void ts_run_stats_free(ts_run_stats *stats);


/* Validate the job and run it. `log` gets progress (may be NULL). */
TS_API ts_status ts_run_local(const ts_job *job, ts_run_stats *stats, FILE *log,
                              ts_error *err);

#endif
