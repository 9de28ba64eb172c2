/*
 * loop.h - one libevent event loop running on its own thread, plus the one
 * thread-safe way into it (loop_call).
 *
 * Why a wrapper: the server runs one loop per worker thread, and everything
 * that has to reach a loop from another thread (a worker pool's result, an
 * asynchronous reply to a parked request, libcurl or libpq glue) goes through
 * loop_call(): a mutex-protected queue drained on the loop thread after an
 * event_active() wake-up.  Nothing else of libevent is ever touched from a
 * foreign thread.  If libevent has to go one day, this file and server.c are
 * what changes (stack.md 1.6).
 *
 * Threads: loop_new/loop_start/loop_stop/loop_free are called by the owner
 * thread (msspd's main thread, a test).  loop_call() may be called from any
 * thread, the loop's own included.  The loop thread blocks SIGPIPE and the
 * usual process signals, so a write to a dead peer returns EPIPE instead of
 * killing the process, and signals are left to the main thread.
 */
#ifndef MSSP_NET_LOOP_H
#define MSSP_NET_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct loop;

/* A call queued with loop_call(); it owns `arg` (frees it if it must). */
typedef void (*loop_fn)(void *arg);

/*
 * A new, stopped loop with its own event_base (which keeps running with no
 * event registered).  The first call also enables libevent's pthread locking
 * (evthread_use_pthreads) for the whole process: cross-thread event_active()
 * needs it, and it must precede every event_base.  Returns NULL on memory or
 * libevent failure.  Free with loop_free().
 */
struct loop *loop_new(void);

/* Start the loop thread.  0, or -1 if it is already started or the thread
 * cannot be created.  MUST NOT be called from the loop thread. */
int loop_start(struct loop *l);

/*
 * Run fn(arg) on the loop thread, after the calls queued before it (FIFO).
 * Thread-safe.  Returns 0 when queued: fn then runs exactly once, on the loop
 * thread (or inside loop_stop/loop_free if the loop is not running at that
 * time).  Returns -1 without queuing (the caller keeps arg) when the loop is
 * stopping or stopped, when MSSP_LOOP_MAX_QUEUE calls are already pending, or
 * on memory shortage.
 */
int loop_call(struct loop *l, loop_fn fn, void *arg);

/*
 * Stop the loop: calls already queued still run (on the loop thread), later
 * loop_call()s fail, then the thread exits and is joined.  Idempotent.  MUST
 * NOT be called from the loop thread.  The event_base stays valid (and empty
 * of our wake-up event only after loop_free) so its owner can free what it
 * registered on it.
 */
void loop_stop(struct loop *l);

/* Stop if needed, run calls still queued, free the event_base and l.
 * Accepts NULL.  Everything registered on the base MUST be freed first. */
void loop_free(struct loop *l);

/* The loop's event_base (borrowed; valid until loop_free).  Only the loop
 * thread may use it once the loop is started. */
struct event_base *loop_base(const struct loop *l);

/* True when called on l's thread. */
bool loop_in_thread(const struct loop *l);

/* Monotonic clock in milliseconds (CLOCK_MONOTONIC), for deadlines. */
uint64_t loop_now_ms(void);

#endif
