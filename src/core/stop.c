/* The request to stop a running job early. One word, written from a signal
 * handler and read by the scheduler loops between tasks: nothing else is
 * async-signal-safe, so nothing else happens here. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "tessera/stop.h"

static volatile sig_atomic_t requested, immediate;

void ts_request_stop(int signo) {
  if (!requested) requested = signo > 0 ? signo : -1;
  if (immediate) { /* nothing written yet: end now, whatever call we are in (write and _exit are signal-safe) */
    static const char msg[] = "tessera: stopped early by a signal before any output was created; nothing was "
                              "written\n";
    ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)ignored;
    _exit(75); /* TS_EXIT_STOPPED */
  }
}

void ts_stop_immediate(int on) { immediate = on; }

int ts_stop_requested(void) { return requested; }

void ts_stop_clear(void) { requested = 0; }

const char *ts_stop_name(int signo) {
  static char other[32];
  switch (signo) {
    case SIGTERM: return "SIGTERM";
    case SIGUSR1: return "SIGUSR1";
    case SIGUSR2: return "SIGUSR2";
    case SIGINT: return "SIGINT";
    case SIGHUP: return "SIGHUP";
    case 0: case -1: return "a stop request";
    default: snprintf(other, sizeof other, "signal %d", signo); return other;
  }
}
