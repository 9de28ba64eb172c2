/*
 * pool.h - a fixed pool of worker threads for blocking work (store calls,
 * fsync, RSA key generation, CMS verification) that must never run on an
 * event-loop thread (architecture.md "Event-driven").
 *
 * Each thread gets its own context from `init` (msspd: a struct node_worker
 * with its own store handle), passed to every job it runs.  Jobs run in
 * submission order per queue (FIFO) but in parallel across threads; a job
 * that must report back to a loop does so with loop_call().
 *
 * The queue is capped (max_queue): pool_submit() refuses instead of growing
 * without bound, and the caller answers "busy" (900 / 503 Retry-After).
 *
 * Threads: pool_new/pool_stop/pool_free from the owner thread;
 * pool_submit() from any thread, pool threads included.
 * Ownership: a queued job owns its `job` pointer until fn runs (fn frees
 * it); if pool_submit() fails the caller keeps it.
 */
#ifndef MSSP_UTIL_POOL_H
#define MSSP_UTIL_POOL_H

#include <stddef.h>

struct pool;

/* Per-thread context: `init` runs on the new thread before its first job
 * (NULL return: the thread exits and pool_new fails); `fini` on the same
 * thread after its last job. */
typedef void *(*pool_init_fn)(void *arg, unsigned idx);
typedef void (*pool_fini_fn)(void *arg, void *ctx);
typedef void (*pool_job_fn)(void *ctx, void *job);

/* Start `nthreads` (1..MSSP_POOL_MAX_THREADS) threads; `max_queue` jobs may
 * wait (0: MSSP_POOL_MAX_QUEUE).  Returns NULL if a thread cannot start or
 * an init failed (the started ones are stopped). */
struct pool *pool_new(unsigned nthreads, size_t max_queue, pool_init_fn init, pool_fini_fn fini,
		      void *arg);

/* Queue fn(ctx, job).  0, or -1 (queue full, pool stopping, memory). */
int pool_submit(struct pool *p, pool_job_fn fn, void *job);

/* Jobs waiting (not running), for metrics. */
size_t pool_queued(struct pool *p);

/* Run every job already queued, then join the threads (fini runs).  Later
 * submits fail.  Idempotent.  Not from a pool thread. */
void pool_stop(struct pool *p);

/* pool_stop if needed, then free.  Accepts NULL. */
void pool_free(struct pool *p);

#endif
