/*
 * test_pool.c - the worker pool with real threads: every job runs exactly
 * once, in parallel across threads, with the context its thread's init
 * made; the queue cap refuses; stop drains what was queued and refuses
 * what comes after; a failed init fails pool_new; jobs may submit jobs;
 * many threads may submit at once.
 */
#include "testutil.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>

#include "util/limits.h"
#include "util/pool.h"

struct tctx {
	unsigned idx;
	pthread_t tid;
	atomic_uint jobs; /* jobs this thread ran */
};

struct shared {
	atomic_uint inits, finis, fini_wrong_thread;
	unsigned fail_idx;	/* init of this index fails (UINT32_MAX: none) */
	struct tctx *ctxs[MSSP_POOL_MAX_THREADS];
};

static void *
t_init(void *arg, unsigned idx)
{
	struct shared *sh = arg;
	struct tctx *c;

	if (idx == sh->fail_idx)
		return NULL;
	c = calloc(1, sizeof(*c));
	assert_non_null(c);
	c->idx = idx;
	c->tid = pthread_self();
	sh->ctxs[idx] = c;
	atomic_fetch_add(&sh->inits, 1);
	return c;
}

static void
t_fini(void *arg, void *vctx)
{
	struct shared *sh = arg;
	struct tctx *c = vctx;

	if (!pthread_equal(c->tid, pthread_self()))
		atomic_fetch_add(&sh->fini_wrong_thread, 1);
	atomic_fetch_add(&sh->finis, 1);
	/* the ctx stays in sh->ctxs for the test to inspect; freed there */
}

static void
shared_init(struct shared *sh)
{
	memset(sh, 0, sizeof(*sh));
	sh->fail_idx = UINT32_MAX;
}

static void
shared_free(struct shared *sh)
{
	for (unsigned i = 0; i < MSSP_POOL_MAX_THREADS; i++)
		free(sh->ctxs[i]);
}

/* ---- every job once, in parallel, with its thread's context ---------- */

#define NJOBS 20000
#define SUBMITTERS 8
#define PER_SUBMITTER 4000
static atomic_uint ran[SUBMITTERS * PER_SUBMITTER > NJOBS ? SUBMITTERS * PER_SUBMITTER : NJOBS];
static atomic_uint ctx_wrong;

struct counted {
	unsigned id;
};

static void
count_job(void *vctx, void *vjob)
{
	struct tctx *c = vctx;
	struct counted *j = vjob;

	if (!pthread_equal(c->tid, pthread_self()))
		atomic_fetch_add(&ctx_wrong, 1);
	atomic_fetch_add(&c->jobs, 1);
	atomic_fetch_add(&ran[j->id], 1);
	free(j); /* the job owns its pointer */
}

static pthread_barrier_t barrier;

/* Completes only if all four run at the same time: proof of parallelism. */
static void
barrier_job(void *vctx, void *vjob)
{
	(void)vctx;
	(void)vjob;
	pthread_barrier_wait(&barrier);
}

static void
test_all_once_parallel(void **state)
{
	struct shared sh;
	struct pool *p;
	unsigned total = 0;
	(void)state;

	shared_init(&sh);
	memset(ran, 0, sizeof(ran));
	atomic_store(&ctx_wrong, 0);
	p = pool_new(4, 0, t_init, t_fini, &sh);
	assert_non_null(p);
	assert_int_equal(atomic_load(&sh.inits), 4); /* inits done on return */

	assert_int_equal(pthread_barrier_init(&barrier, NULL, 4), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pool_submit(p, barrier_job, NULL), 0);
	for (unsigned i = 0; i < NJOBS; i++) {
		struct counted *j = malloc(sizeof(*j));

		assert_non_null(j);
		j->id = i;
		assert_int_equal(pool_submit(p, count_job, j), 0);
	}
	pool_stop(p);
	pthread_barrier_destroy(&barrier);
	for (unsigned i = 0; i < NJOBS; i++)
		assert_int_equal(atomic_load(&ran[i]), 1);
	for (unsigned i = 0; i < 4; i++) {
		assert_non_null(sh.ctxs[i]);
		assert_int_equal(sh.ctxs[i]->idx, i);
		total += atomic_load(&sh.ctxs[i]->jobs);
	}
	assert_int_equal(total, NJOBS);
	assert_int_equal(atomic_load(&ctx_wrong), 0);
	assert_int_equal(atomic_load(&sh.finis), 4);
	assert_int_equal(atomic_load(&sh.fini_wrong_thread), 0);
	pool_free(p);
	shared_free(&sh);
}

/* ---- FIFO, cap, stop -------------------------------------------------- */

static sem_t gate_in, gate_out;

static void
gate_job(void *vctx, void *vjob)
{
	(void)vctx;
	(void)vjob;
	sem_post(&gate_in);  /* running now */
	sem_wait(&gate_out); /* until the test lets go */
}

struct order {
	pthread_mutex_t mu;
	unsigned seq[64];
	unsigned n;
};

struct ordered {
	struct order *o;
	unsigned id;
};

static void
order_job(void *vctx, void *vjob)
{
	struct ordered *j = vjob;
	(void)vctx;

	pthread_mutex_lock(&j->o->mu);
	j->o->seq[j->o->n++] = j->id;
	pthread_mutex_unlock(&j->o->mu);
	free(j);
}

static int
submit_ordered(struct pool *p, struct order *o, unsigned id)
{
	struct ordered *j = malloc(sizeof(*j));
	int rc;

	assert_non_null(j);
	j->o = o;
	j->id = id;
	rc = pool_submit(p, order_job, j);
	if (rc != 0)
		free(j); /* refused: the caller keeps it */
	return rc;
}

static void
test_cap_fifo_stop(void **state)
{
	struct order o = { PTHREAD_MUTEX_INITIALIZER, { 0 }, 0 };
	struct shared sh;
	struct pool *p;
	(void)state;

	shared_init(&sh);
	sem_init(&gate_in, 0, 0);
	sem_init(&gate_out, 0, 0);
	p = pool_new(1, 3, t_init, t_fini, &sh);
	assert_non_null(p);
	assert_int_equal(pool_queued(p), 0);
	assert_int_equal(pool_submit(p, gate_job, NULL), 0);
	sem_wait(&gate_in); /* the only thread is busy: the rest waits */
	assert_int_equal(submit_ordered(p, &o, 1), 0);
	assert_int_equal(submit_ordered(p, &o, 2), 0);
	assert_int_equal(submit_ordered(p, &o, 3), 0);
	assert_int_equal(pool_queued(p), 3);
	assert_int_equal(submit_ordered(p, &o, 4), -1); /* cap */
	assert_int_equal(pool_queued(p), 3);
	assert_int_equal(pool_submit(p, NULL, NULL), -1);
	sem_post(&gate_out);
	/* Stop runs what was queued (in order), then joins. */
	pool_stop(p);
	assert_int_equal(o.n, 3);
	assert_int_equal(o.seq[0], 1);
	assert_int_equal(o.seq[1], 2);
	assert_int_equal(o.seq[2], 3);
	assert_int_equal(pool_queued(p), 0);
	assert_int_equal(atomic_load(&sh.finis), 1);
	/* Later submits fail; stop is idempotent. */
	assert_int_equal(submit_ordered(p, &o, 5), -1);
	pool_stop(p);
	assert_int_equal(atomic_load(&sh.finis), 1);
	pool_free(p);
	pool_free(NULL);
	shared_free(&sh);
	sem_destroy(&gate_in);
	sem_destroy(&gate_out);
}

/* Stop while the queue is full of slow jobs: all run before it returns. */
static atomic_uint slow_done;

static void
slow_job(void *vctx, void *vjob)
{
	struct timespec ts = { 0, 2 * 1000 * 1000 };
	(void)vctx;
	(void)vjob;

	nanosleep(&ts, NULL);
	atomic_fetch_add(&slow_done, 1);
}

static void
test_stop_drains(void **state)
{
	struct shared sh;
	struct pool *p;
	(void)state;

	shared_init(&sh);
	atomic_store(&slow_done, 0);
	p = pool_new(2, 0, t_init, t_fini, &sh);
	assert_non_null(p);
	for (int i = 0; i < 60; i++)
		assert_int_equal(pool_submit(p, slow_job, NULL), 0);
	assert_true(pool_queued(p) > 0);
	pool_free(p); /* stop + free */
	assert_int_equal(atomic_load(&slow_done), 60);
	assert_int_equal(atomic_load(&sh.finis), 2);
	shared_free(&sh);
}

/* ---- init failure, bad arguments -------------------------------------- */

static void
test_init_failure(void **state)
{
	struct shared sh;
	(void)state;

	shared_init(&sh);
	sh.fail_idx = 2;
	assert_null(pool_new(4, 0, t_init, t_fini, &sh));
	/* The three that started were stopped, each with its fini. */
	assert_int_equal(atomic_load(&sh.inits), 3);
	assert_int_equal(atomic_load(&sh.finis), 3);
	assert_int_equal(atomic_load(&sh.fini_wrong_thread), 0);
	shared_free(&sh);

	shared_init(&sh);
	assert_null(pool_new(0, 0, t_init, t_fini, &sh));
	assert_null(pool_new(MSSP_POOL_MAX_THREADS + 1, 0, t_init, t_fini, &sh));
	assert_int_equal(atomic_load(&sh.inits), 0);
	shared_free(&sh);

	/* No init/fini at all: the context is NULL. */
	struct pool *p = pool_new(1, 0, NULL, NULL, NULL);
	assert_non_null(p);
	pool_free(p);
}

/* ---- jobs submitting jobs; many submitters ----------------------------- */

struct chain {
	struct pool *p;
	sem_t done;
	atomic_uint left;
};

static void
chain_job(void *vctx, void *vjob)
{
	struct chain *c = vjob;
	(void)vctx;

	if (atomic_fetch_sub(&c->left, 1) == 1) {
		sem_post(&c->done);
		return;
	}
	if (pool_submit(c->p, chain_job, c) != 0)
		sem_post(&c->done); /* make the test fail, not hang */
}

static void
test_submit_from_job(void **state)
{
	struct shared sh;
	struct chain c;
	(void)state;

	shared_init(&sh);
	c.p = pool_new(2, 4, t_init, t_fini, &sh);
	assert_non_null(c.p);
	sem_init(&c.done, 0, 0);
	atomic_store(&c.left, 1000);
	assert_int_equal(pool_submit(c.p, chain_job, &c), 0);
	sem_wait(&c.done);
	assert_int_equal(atomic_load(&c.left), 0);
	pool_free(c.p);
	sem_destroy(&c.done);
	shared_free(&sh);
}

struct submitter {
	struct pool *p;
	unsigned base;
	unsigned refused;
};

static void *
submit_many(void *arg)
{
	struct submitter *s = arg;

	for (unsigned i = 0; i < PER_SUBMITTER; i++) {
		struct counted *j = malloc(sizeof(*j));

		if (j == NULL) {
			s->refused++;
			continue;
		}
		j->id = s->base + i;
		if (pool_submit(s->p, count_job, j) != 0) {
			free(j);
			s->refused++;
		}
	}
	return NULL;
}

static void
test_concurrent_submitters(void **state)
{
	struct shared sh;
	struct submitter s[SUBMITTERS];
	pthread_t t[SUBMITTERS];
	struct pool *p;
	(void)state;

	shared_init(&sh);
	memset(ran, 0, sizeof(ran));
	atomic_store(&ctx_wrong, 0);
	p = pool_new(3, 0, t_init, t_fini, &sh);
	assert_non_null(p);
	for (unsigned i = 0; i < SUBMITTERS; i++) {
		s[i] = (struct submitter){ p, i * PER_SUBMITTER, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, submit_many, &s[i]), 0);
	}
	for (unsigned i = 0; i < SUBMITTERS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(s[i].refused, 0);
	}
	pool_stop(p);
	for (unsigned i = 0; i < SUBMITTERS * PER_SUBMITTER; i++)
		assert_int_equal(atomic_load(&ran[i]), 1);
	assert_int_equal(atomic_load(&ctx_wrong), 0);
	pool_free(p);
	shared_free(&sh);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_once_parallel),
		cmocka_unit_test(test_cap_fifo_stop),
		cmocka_unit_test(test_stop_drains),
		cmocka_unit_test(test_init_failure),
		cmocka_unit_test(test_submit_from_job),
		cmocka_unit_test(test_concurrent_submitters),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
