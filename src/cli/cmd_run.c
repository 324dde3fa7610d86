/* tessera run: a pipeline over one image, tile by tile; in one process,
 * or under mpirun/srun with rank 0 dispatching to worker ranks. */
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "cli/job_opts.h"
#include "tessera/sched.h"

static const char help[] =
    "usage: tessera run [JOB.ini] --input IN.tif --output OUT.tif --pipeline \"K p=v | K ...\"\n"
    "                   [options]\n"
    "\n"
    "Run a pipeline of kernels over a TIFF, HDF5 or Zarr image of any size, tile\n"
    "by tile: each tile is read with a halo wide enough for the whole pipeline,\n"
    "so the output equals processing the whole image at once. The output is a\n"
    "tiled BigTIFF, an HDF5 dataset or an OME-Zarr store chunked by tile, written\n"
    "as OUT.partial and renamed when complete. Under mpirun or srun, rank 0\n"
    "plans, reads, dispatches and writes; the other ranks compute.\n"
    "\n"
    "A job file (INI) sets the same options: [input] input, glob, recursive,\n"
    "strips, max_image_pixels, page, input_level, [output] output, format, images,\n"
    "compression, jpeg_quality, compression_level, force, pyramid, pyramid_levels,\n"
    "downsample, nodata, layout, zarr_format, shard,\n"
    "[pipeline] pipeline, boundary, cval, plugins, [partition] tile, out_tile, [run]\n"
    "threads, io, root_compute, credits, stats, trace, quiet, resume,\n"
    "checkpoint_tasks, checkpoint_seconds. Options on the command line win.\n"
    "Relative paths in a job file are relative to the file.\n"
    "\n"
    "  -i, --input PATH      input TIFF or BigTIFF, FILE.h5:/dataset (H x W or\n"
    "                        H x W x C), a Zarr store IN.zarr (v2 or v3; an OME-NGFF\n"
    "                        multiscales group, or IN.zarr/path/to/array: y, x or\n"
    "                        c, y, x), or synth:WxH[:dtype[:channels]]\n"
    "  --page N              a multi-page TIFF input: process page N (0-based;\n"
    "                        default 0, with a note on stderr when there are more)\n"
    "  -o, --output PATH     output .tif / .tiff, FILE.h5[:/dataset] (default\n"
    "                        /image; --compression deflate or none), or OUT.zarr\n"
    "                        (an OME-Zarr store: chunk = output tile, levels 0, 1, ...)\n"
    "  -p, --pipeline TEXT   kernels separated by '|'; see `tessera kernels`; a Python\n"
    "                        function is py:MODULE.FUNCTION [halo=N] [key=value ...]\n"
    "  --plugin PATH.so      load a kernel plugin (repeatable; also TESSERA_PLUGIN_PATH:\n"
    "                        files or directories of *.so, ':' between); under mpirun\n"
    "                        rank 0 sends it to the workers\n"
    "  --boundary MODE       reflect|mirror|nearest|constant|wrap (default reflect),\n"
    "                        applied at the image border only, as scipy.ndimage\n"
    "  --cval V              the value outside the image for --boundary constant (0)\n"
    "  --tile N              task tile size, a multiple of 16 (default 1024)\n"
    "  --out-tile N          output TIFF tile size; a multiple of 16 dividing --tile\n"
    "                        (default: the largest of 256, 128, 64, 32, 16 that does)\n"
    "  --threads N           OpenMP threads per rank (default: OMP_NUM_THREADS, else\n"
    "                        all cores; under mpirun or srun, the cores of the\n"
    "                        node's ranks divided by the ranks on the node)\n"
    "  --compression C       none|deflate|lzw|zstd|jpeg (default none; jpeg: u8 with\n"
    "                        1 or 3 channels); Zarr: none|zlib (= deflate)|zstd|\n"
    "                        blosc-lz4|blosc-zstd (Blosc with byte shuffle)\n"
    "  --jpeg-quality Q      1..100 (default 90)\n"
    "  --compression-level N deflate 0..9, zstd 1..22: by default tiled TIFF and PNG\n"
    "                        files code the predictor's (filter's) output as literals\n"
    "                        and runs; HDF5 and Zarr deflate at 1, Zarr zstd at 3;\n"
    "                        list mode's TIFF files: libtiff's deflate 6, zstd 3; a level\n"
    "                        given: libdeflate's or zstd's. blosc 0..9 (default 5\n"
    "                        for blosc-lz4, 3 for blosc-zstd)\n"
    "  --pyramid             also write reduced-resolution levels (each half the\n"
    "                        one above, until one fits in a tile), in the same pass\n"
    "  --pyramid-levels N    at most N reduced levels (implies --pyramid)\n"
    "  --downsample M        mean|nearest|max|min: a level's sample from the 2x2\n"
    "                        block below (default mean, rounded half away from 0)\n"
    "  --nodata V            the output's nodata value (GDAL_NODATA; a number or\n"
    "                        nan), or none; default: the input's. Pyramid levels'\n"
    "                        mean, max and min skip it, as GDAL's overviews do\n"
    "  --layout L            TIFF output: plain (levels as SubIFDs), ome (OME-TIFF)\n"
    "                        or cog (Cloud-Optimized GeoTIFF; implies --pyramid);\n"
    "                        default ome for .ome.tif/.ome.tiff, else plain\n"
    "  --zarr-format V       Zarr output: 2 (default; OME-NGFF 0.4) or 3 (NGFF 0.5)\n"
    "  --shard N             Zarr v3 output: N x N chunks per file (sharding_indexed)\n"
    "  --input-level N       a pyramidal TIFF or OME-Zarr input: read level N (default 0)\n"
    "  --force               replace an existing output\n"
    "  --quiet               no progress and no summary lines\n"
    "  --resume              finish the unfinished output (OUT.partial + OUT.journal)\n"
    "                        a stopped or killed run of the same job left; only\n"
    "                        the missing tasks run, and the result is identical\n"
    "  --checkpoint-tasks N  make written tasks durable and journal them every N\n"
    "                        tasks (default 0: by time only)\n"
    "  --checkpoint-seconds S  ... or S seconds after the last checkpoint (default 10;\n"
    "                        0 with no --checkpoint-tasks: no journal, not resumable)\n"
    "  --stats FILE          write the run's figures (time, MPix/s, per rank: tasks,\n"
    "                        busy fraction, bytes sent and received) as JSON\n"
    "  --trace FILE          write a Chrome trace-event JSON of every task phase per\n"
    "                        rank and thread (open in Perfetto or chrome://tracing)\n"
    "list mode (--input is a directory, @LIST.txt or FILE.h5:/stack; one task per image):\n"
    "  --glob PATTERN        directory entries to take (default: .png .jpg .jpeg .tif .tiff)\n"
    "  --recursive           descend into subdirectories\n"
    "  --strips N            one image (TIFF, FILE.h5:/image) cut into strips of N rows,\n"
    "                        each strip one image of the list (strip_000000, ...)\n"
    "  --max-image-pixels N  an image (or blend with= image) whose header gives more\n"
    "                        pixels fails before decoding and goes to /failed\n"
    "                        (default 268435456 = 16384 x 16384; 0: no limit)\n"
    "  --output FILE.h5      /images, /names, /results/<kernel>, /failed\n"
    "  --output DIR/ --format png|tiff|jpeg   one file per input, mirroring the names\n"
    "  --images false        HDF5: store the emitted values only\n"
    "under mpirun:\n"
    "  --io MODE             root (default: rank 0 reads and sends the pixels, no\n"
    "                        shared filesystem needed) or direct (workers read the\n"
    "                        input themselves from a shared filesystem, and write\n"
    "                        their own chunks of a Zarr output)\n"
    "  --root-compute WHEN   auto|yes|no: rank 0 computes tasks when no worker needs\n"
    "                        it (auto: with at most 2 workers)\n"
    "  --credits N           batches of tasks in flight per worker (default 3)\n"
    "\n"
    "exit status: 0 success, 1 the job failed (message names the file), 2 bad\n"
    "command line, job file, pipeline, or existing output without --force,\n"
    "3 list mode: the run completed but some inputs failed (listed on stderr),\n"
    "75 stopped early by SIGTERM or SIGUSR1 (Slurm's warning before the time\n"
    "limit): no new task was started, the tasks under way were finished and\n"
    "written and checkpointed; OUT.partial and OUT.journal are kept for --resume\n";

int ts_cli_under_launcher(void) {
  return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

/* srun started several tasks (SLURM_STEP_NUM_TASKS), but this process sees
 * an MPI world of `world` (0: MPI not started, since no PMI told it of the
 * others). Each task would then run the whole job alone, all writing the
 * same output: refuse before any work. Returns -1 to go on, else the exit
 * status (only task 0 prints). */
static int refuse_singletons(int world) {
  const char *n = getenv("SLURM_STEP_NUM_TASKS");
  long tasks = n ? strtol(n, NULL, 10) : 0;
  if (tasks <= 1 || world >= tasks) return -1;
  const char *id = getenv("SLURM_PROCID");
  if (!id || !strcmp(id, "0"))
    ts_cli_error("run: srun started %ld tasks, but each sees an MPI world of %d process (no PMI connects "
                 "them), so every task would run the whole job alone. Start it with srun --mpi=pmix (see "
                 "slurm/tessera.sbatch), or with mpirun inside the allocation; nothing was run",
                 tasks, world > 0 ? world : 1);
  return TS_EXIT_USAGE;
}

static void on_stop_signal(int signo) { ts_request_stop(signo); }

/* SIGTERM and SIGUSR1 ask the job to stop early (every rank gets them
 * from srun or mpirun; rank 0 acts). SA_RESTART: file and MPI calls go
 * on; the loops look at the request between tasks. */
static void catch_stop_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGUSR1, &sa, NULL);
  ts_stop_immediate(1); /* until the engine first touches a file: a stop ends parsing or listing at once */
}

/* Rank 0's (or the only process's) checks after parsing. */
static int complete(const ts_cli_opts *o) {
  if (!o->job.input || !o->job.output) {
    ts_cli_error("run: --input and --output are required (see tessera run --help)");
    return TS_EXIT_USAGE;
  }
  return -1;
}

int ts_cmd_run(int argc, char **argv) {
  ts_cli_opts o;
  ts_cli_opts_init(&o);
  int code;
  catch_stop_signals();
  if (!ts_cli_under_launcher()) {
    if ((code = refuse_singletons(0)) >= 0) return code;
    code = ts_cli_parse(argc, argv, TS_CMD_RUN, help, &o);
    if (code < 0) code = complete(&o);
    if (code < 0) code = ts_cli_run_job(&o.job, o.quiet, o.stats, o.trace);
    ts_stop_immediate(0);
    ts_cli_opts_free(&o);
    return code;
  }
  int provided, rank, world;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  catch_stop_signals(); /* again: MPI_Init may install its own handlers */
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  /* workers act on rank 0's decisions, not on signals: when rank 0 ends
   * the job, the launcher's SIGTERM to them needs no words of their own */
  if (rank != 0) ts_stop_immediate(0);
  if ((code = refuse_singletons(world)) >= 0) {
    MPI_Finalize();
    return code;
  }
  /* rank 0 alone reads the command line and job file; the others get the
   * validated job from it, so they need no access to its files */
  code = -1;
  if (rank == 0) {
    code = ts_cli_parse(argc, argv, TS_CMD_RUN, help, &o);
    if (code < 0) code = complete(&o);
    o.job.progress = !o.quiet;
    o.job.trace = o.trace != NULL;
  }
  ts_error err = {0};
  ts_run_stats stats;
  ts_status st = ts_run_mpi(rank == 0 && code < 0 ? &o.job : NULL, MPI_COMM_WORLD, &stats, stderr, &err);
  ts_stop_immediate(0); /* decided: the launcher's SIGTERM to a finishing rank needs no words */
  if (rank == 0) {
    if (code < 0) code = ts_cli_report(&o.job, st, &err, &stats, o.quiet, o.stats, o.trace);
    ts_run_stats_free(&stats);
  } else {
    code = ts_cli_exit(st);
  }
  ts_cli_opts_free(&o);
  MPI_Finalize();
  return code;
}
