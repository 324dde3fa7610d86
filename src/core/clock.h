/* The monotonic clock every layer times itself with. */
#ifndef TS_CORE_CLOCK_H
#define TS_CORE_CLOCK_H

/* Seconds on CLOCK_MONOTONIC (an arbitrary origin: take differences). */
double ts_now(void);

#endif
