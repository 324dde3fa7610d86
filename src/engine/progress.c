/* Progress lines. */
#include <time.h>
#include <unistd.h>
#include "engine/progress.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void ts_progress_init(ts_progress *p, FILE *out, int64_t total, double start) {
  p->out = out;
  p->tty = out && isatty(fileno(out));
  p->total = total;
  p->done = p->pixels = 0;
  p->start = p->last = start;
}

static void print(ts_progress *p, double t) {
  double el = t - p->start, rate = el > 0 ? (double)p->pixels / el / 1e6 : 0;
  double eta = p->done ? el * (double)(p->total - p->done) / (double)p->done : 0;
  if (p->tty) {
    int bar = (int)(30 * p->done / (p->total ? p->total : 1));
    fprintf(p->out, "\r[%.*s%*s] %3d%% %lld/%lld tiles %7.1f MPix/s ETA %4.0fs", bar,
            "##############################", 30 - bar, "", (int)(100 * p->done / (p->total ? p->total : 1)),
            (long long)p->done, (long long)p->total, rate, eta);
  } else {
    fprintf(p->out, "progress: %lld/%lld tiles, %.1f MPix/s, %.0fs elapsed, ETA %.0fs\n",
            (long long)p->done, (long long)p->total, rate, el, eta);
  }
  fflush(p->out);
}

void ts_progress_tick(ts_progress *p, int64_t pixels) {
  p->done++;
  p->pixels += pixels;
  if (!p->out) return;
  double t = now();
  if (t - p->last >= (p->tty ? 0.2 : 5.0)) {
    p->last = t;
    print(p, t);
  }
}

void ts_progress_done(ts_progress *p) {
  if (!p->out || !p->tty || p->last == p->start) return;
  print(p, now());
  fputc('\n', p->out);
}
