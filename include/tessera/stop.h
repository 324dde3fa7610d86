/* tessera: asking a run to stop early (src/core/stop.c). */
#ifndef TESSERA_STOP_H
#define TESSERA_STOP_H

#include "tessera/status.h"

/* Stopping early. A job asked to stop hands out no new task, finishes the
 * tasks already under way and writes them, keeps the unfinished output
 * under its temporary name (OUT.partial; never the final name) and returns
 * TS_STOPPED. ts_request_stop is async-signal-safe: the command line calls
 * it from its SIGTERM and SIGUSR1 handlers on every rank, and rank 0
 * decides. signo is reported in the stats (0: a request without a
 * signal). */
TS_API void ts_request_stop(int signo);
/* The signal of the pending request, -1 for one without a signal, 0 none. */
TS_API int ts_stop_requested(void);
TS_API void ts_stop_clear(void);
/* While on, a stop request ends the process at once (exit TS_EXIT_STOPPED,
 * one line on stderr): for the phases before a job creates or moves any
 * file (parsing, listing inputs, opening them), which may block in a call
 * that no loop returns from. The engine turns it off before its first
 * change to the file system; the command line turns it on at start. */
TS_API void ts_stop_immediate(int on);
/* "SIGUSR1", "SIGTERM", ...; "a stop request" for -1. */
TS_API const char *ts_stop_name(int signo);

#endif
