/* tessera: the executable is a thin dispatcher over libtessera. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli/cli.h"
#include "tessera/plugin.h"

/* Under an MPI launcher, idle OpenMP threads sleep instead of spinning,
 * unless the user chose a wait policy: ranks that share a node's cores
 * would otherwise steal them from each other while they wait. The OpenMP
 * runtime reads OMP_WAIT_POLICY once, in its initializer, before main()
 * runs (and an executable's .preinit_array runs before libc has its
 * environment, so a variable set there is lost). So the process sets the
 * variable and executes itself again, once, before MPI starts; if that
 * fails it goes on as it is. */
static void passive_under_launcher(char **argv) {
  if (!ts_cli_under_launcher() || getenv("OMP_WAIT_POLICY")) return;
  char self[4096]; /* by its own name: a process runs under its file's name (ps, pgrep) */
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0 || n >= (ssize_t)sizeof self - 1) return;
  self[n] = '\0';
  if (setenv("OMP_WAIT_POLICY", "passive", 0) == 0) execv(self, argv);
}

static const char usage[] =
    "usage: tessera COMMAND [OPTIONS]\n"
    "\n"
    "Process images far larger than RAM, tile by tile, with OpenMP threads.\n"
    "\n"
    "commands:\n"
    "  run        run a pipeline of kernels over an image (tile mode)\n"
    "  info       describe an image file\n"
    "  kernels    list the kernels and their parameters\n"
    "  generate   write the built-in deterministic test image\n"
    "\n"
    "  tessera COMMAND --help   options of one command\n"
    "  tessera --version        version\n";

int main(int argc, char **argv) {
  passive_under_launcher(argv);
  /* past a file-size limit (ulimit -f), a write fails with EFBIG and the
   * message names the file, where SIGXFSZ would end the process unsaid */
  signal(SIGXFSZ, SIG_IGN);
  if (argc < 2) {
    fputs(usage, stderr);
    return TS_EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
    fputs(usage, stdout);
    return TS_EXIT_OK;
  }
  if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
    printf("tessera %s\n", ts_version());
    return TS_EXIT_OK;
  }
  int code = -1;
  if (!strcmp(cmd, "run")) code = ts_cmd_run(argc - 1, argv + 1);
  if (!strcmp(cmd, "kernels")) code = ts_cmd_kernels(argc - 1, argv + 1);
  if (code >= 0) {
    ts_plugins_unload(); /* the kernels' set-up states, then the plugins */
    return code;
  }
  if (!strcmp(cmd, "info")) return ts_cmd_info(argc - 1, argv + 1);
  if (!strcmp(cmd, "generate")) return ts_cmd_generate(argc - 1, argv + 1);
  ts_cli_error("unknown command '%s'; commands: run, info, kernels, generate", cmd);
  return TS_EXIT_USAGE;
}
