/* tessera run: a pipeline over one image, tile by tile. */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>
#include "tessera/sched.h"
#include "cli/cli.h"
#include "core/params.h"
#include "cli/job_opts.h"

static const char help[] =
    "usage: tessera run --input IN.tif --output OUT.tif --pipeline \"K p=v | K ...\" [options]\n"
    "\n"
    "Run a pipeline of kernels over a TIFF image of any size, tile by tile: each\n"
    "tile is read with a halo wide enough for the whole pipeline, so the output\n"
    "equals processing the whole image at once. The output is a tiled BigTIFF,\n"
    "written as OUT.tif.partial and renamed when complete.\n"
    "\n"
    "  -i, --input PATH      input TIFF or BigTIFF (or synth:WxH[:dtype[:channels]])\n"
    "  -o, --output PATH     output .tif / .tiff\n"
    "  -p, --pipeline TEXT   kernels separated by '|'; see `tessera kernels`\n"
    "  --boundary MODE       reflect|mirror|nearest|constant|wrap (default reflect),\n"
    "                        applied at the image border only, as scipy.ndimage\n"
    "  --cval V              the value outside the image for --boundary constant (0)\n"
    "  --io MODE             under mpirun: root (default: rank 0 reads and sends the\n"
    "                        pixels, no shared filesystem needed) or direct (workers\n"
    "                        read the input themselves from a shared filesystem)\n"
    "  --root-compute WHEN   under mpirun: auto|yes|no: rank 0 computes tasks when\n"
    "                        no worker needs it (auto: with at most 2 workers)\n"
    "  --stats FILE          write the run's figures (time, MPix/s, per rank: tasks,\n"
    "                        busy fraction, bytes sent and received) as JSON\n" TS_JOB_OPTIONS_HELP
    "\n"
    "exit status: 0 success, 1 the job failed (message names the file), 2 bad\n"
    "command line, pipeline, or existing output without --force\n";

/* Parse the command line into job-> Returns -1 to go on, else the exit
 * status to return with. */
static const char *stats_path;

static int parse(int argc, char **argv, ts_job *job, int *quiet) {
  static const struct option longopts[] = {
      {"input", required_argument, NULL, 'i'},
      {"output", required_argument, NULL, 'o'},
      {"pipeline", required_argument, NULL, 'p'},
      {"boundary", required_argument, NULL, OPT_BOUNDARY},
      {"cval", required_argument, NULL, OPT_CVAL},
      {"io", required_argument, NULL, OPT_IO},
      {"root-compute", required_argument, NULL, OPT_ROOT_COMPUTE},
      {"stats", required_argument, NULL, OPT_STATS},
      TS_JOB_LONG_OPTIONS,
      {NULL, 0, NULL, 0},
  };
  int c, r;
  optind = 1;
  while ((c = getopt_long(argc, argv, "i:o:p:", longopts, NULL)) != -1) {
    switch (c) {
      case 'i': job->input = optarg; break;
      case 'o': job->output = optarg; break;
      case 'p': job->pipeline = optarg; break;
      case OPT_BOUNDARY:
        if (ts_boundary_parse(optarg, &job->boundary)) {
          ts_cli_error("--boundary %s: expected reflect, mirror, nearest, constant or wrap", optarg);
          return TS_EXIT_USAGE;
        }
        break;
      case OPT_IO:
        if (!strcmp(optarg, "root")) job->io = TS_IO_ROOT;
        else if (!strcmp(optarg, "direct")) job->io = TS_IO_DIRECT;
        else {
          ts_cli_error("--io %s: expected root or direct", optarg);
          return TS_EXIT_USAGE;
        }
        break;
      case OPT_STATS:
        stats_path = optarg;
        break;
      case OPT_ROOT_COMPUTE:
        if (!strcmp(optarg, "auto")) job->root_compute = -1;
        else if (ts_parse_bool(optarg, &job->root_compute)) {
          ts_cli_error("--root-compute %s: expected auto, yes or no", optarg);
          return TS_EXIT_USAGE;
        }
        break;
      case OPT_CVAL:
        if (ts_opt_double("--cval", optarg, &job->cval)) return TS_EXIT_USAGE;
        break;
      case OPT_HELP: fputs(help, stdout); return TS_EXIT_OK;
      default:
        if ((r = ts_job_option(c, optarg, job, quiet)) == 1) break;
        if (r == 0) fputs(help, stderr);
        return TS_EXIT_USAGE;
    }
  }
  if (optind < argc) {
    ts_cli_error("run: unexpected argument '%s'", argv[optind]);
    return TS_EXIT_USAGE;
  }
  if (!job->input || !job->output) {
    ts_cli_error("run: --input and --output are required (see tessera run --help)");
    return TS_EXIT_USAGE;
  }
  return -1;
}

/* Launched by mpirun or srun? Then MPI is initialized; otherwise tessera
 * runs in one process without touching MPI at all. */
static int under_launcher(void) {
  return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

int ts_cmd_run(int argc, char **argv) {
  ts_job job;
  ts_job_init(&job);
  int quiet = 0;
  if (!under_launcher()) {
    int code = parse(argc, argv, &job, &quiet);
    return code >= 0 ? code : ts_cli_run_job(&job, quiet, stats_path);
  }
  int provided, rank, code = -1;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  /* rank 0 alone reads the command line (and job file); the others get
   * the validated job from it, so they need no access to its files */
  if (rank == 0) code = parse(argc, argv, &job, &quiet);
  job.progress = !quiet;
  ts_error err = {0};
  ts_run_stats stats;
  ts_status st = ts_run_mpi(rank == 0 && code < 0 ? &job : NULL, MPI_COMM_WORLD, &stats, stderr, &err);
  if (rank == 0) {
    if (code >= 0) {
      st = TS_OK; /* --help, or a bad command line already reported */
    } else if (st) {
      ts_cli_error("%s", err.msg);
      code = ts_cli_exit(st);
    } else {
      if (!quiet) ts_cli_summary(job.output, &stats);
      code = stats_path && ts_cli_write_stats(stats_path, &job, &stats) ? TS_EXIT_ERROR : TS_EXIT_OK;
    }
    ts_run_stats_free(&stats);
  } else {
    code = ts_cli_exit(st);
  }
  MPI_Finalize();
  return code;
}
