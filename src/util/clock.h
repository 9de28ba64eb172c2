/*
 * clock.h - the two clocks of the platform (security.md P-08): the wall
 * clock for what is recorded and compared with other hosts (timestamps,
 * stored deadlines, expiry of records), and the monotonic clock for every
 * timeout a process measures itself (never moved by an NTP step).
 *
 * Thread-safe, no state.
 */
#ifndef MSSP_UTIL_CLOCK_H
#define MSSP_UTIL_CLOCK_H

#include <stdint.h>

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t clock_wall_ms(void);
/* Milliseconds on CLOCK_MONOTONIC (an arbitrary origin). */
int64_t clock_mono_ms(void);

#endif
