/*
 * pool.c - fixed worker threads behind one capped FIFO queue (pool.h).
 *
 * One mutex guards the queue and the flags; one condition variable wakes
 * workers (work or stop), another tells pool_new how the inits went.  The
 * queue is a singly linked list of small nodes: allocation per job is
 * cheap next to what the jobs do (store calls, fsync, RSA), and nothing is
 * reserved for the cap up front.
 */
#include "util/pool.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>

#include "util/limits.h"

struct pool_job {
	struct pool_job *pj_next;
	pool_job_fn pj_fn;
	void *pj_job;
};

struct pool_thread {
	struct pool *pt_pool;
	pthread_t pt_tid;
	unsigned pt_idx;
};

struct pool {
	pthread_mutex_t p_mu;
	pthread_cond_t p_work;	   /* a job was queued, or stopping        */
	pthread_cond_t p_started;  /* a thread finished its init           */
	struct pool_job *p_head, *p_tail;
	size_t p_queued;
	size_t p_max_queue;
	bool p_stopping;	   /* no more submits; workers drain, exit */
	bool p_joined;		   /* pool_stop done                       */
	unsigned p_nthreads;	   /* threads created (joinable)           */
	unsigned p_init_ok, p_init_failed;
	pool_init_fn p_init;
	pool_fini_fn p_fini;
	void *p_arg;
	struct pool_thread *p_threads;
};

static void *
pool_main(void *vt)
{
	struct pool_thread *t = vt;
	struct pool *p = t->pt_pool;
	struct pool_job *j;
	void *ctx = NULL;

	if (p->p_init != NULL)
		ctx = p->p_init(p->p_arg, t->pt_idx);
	pthread_mutex_lock(&p->p_mu);
	if (p->p_init != NULL && ctx == NULL) {
		/* No context, no fini: the thread never ran a job. */
		p->p_init_failed++;
		pthread_cond_signal(&p->p_started);
		pthread_mutex_unlock(&p->p_mu);
		return NULL;
	}
	p->p_init_ok++;
	pthread_cond_signal(&p->p_started);
	for (;;) {
		while (p->p_head == NULL && !p->p_stopping)
			pthread_cond_wait(&p->p_work, &p->p_mu);
		if (p->p_head == NULL)
			break; /* stopping and drained */
		j = p->p_head;
		p->p_head = j->pj_next;
		if (p->p_head == NULL)
			p->p_tail = NULL;
		p->p_queued--;
		pthread_mutex_unlock(&p->p_mu);
		j->pj_fn(ctx, j->pj_job);
		free(j);
		pthread_mutex_lock(&p->p_mu);
	}
	pthread_mutex_unlock(&p->p_mu);
	if (p->p_fini != NULL)
		p->p_fini(p->p_arg, ctx);
	return NULL;
}

struct pool *
pool_new(unsigned nthreads, size_t max_queue, pool_init_fn init, pool_fini_fn fini, void *arg)
{
	struct pool *p;
	sigset_t all, old;
	bool failed;

	if (nthreads == 0 || nthreads > MSSP_POOL_MAX_THREADS)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->p_threads = calloc(nthreads, sizeof(*p->p_threads));
	if (p->p_threads == NULL) {
		free(p);
		return NULL;
	}
	p->p_max_queue = max_queue ? max_queue : MSSP_POOL_MAX_QUEUE;
	p->p_init = init;
	p->p_fini = fini;
	p->p_arg = arg;
	pthread_mutex_init(&p->p_mu, NULL);
	pthread_cond_init(&p->p_work, NULL);
	pthread_cond_init(&p->p_started, NULL);

	/* Workers block every signal, so that signals reach the threads that
	 * handle them (the main loop) and never interrupt a job. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (unsigned i = 0; i < nthreads; i++) {
		p->p_threads[i].pt_pool = p;
		p->p_threads[i].pt_idx = i;
		if (pthread_create(&p->p_threads[i].pt_tid, NULL, pool_main, &p->p_threads[i]) != 0)
			break;
		p->p_nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	pthread_mutex_lock(&p->p_mu);
	while (p->p_init_ok + p->p_init_failed < p->p_nthreads)
		pthread_cond_wait(&p->p_started, &p->p_mu);
	failed = p->p_init_failed > 0 || p->p_nthreads < nthreads;
	pthread_mutex_unlock(&p->p_mu);
	if (failed) {
		pool_free(p); /* stops and joins the started ones (fini runs) */
		return NULL;
	}
	return p;
}

int
pool_submit(struct pool *p, pool_job_fn fn, void *job)
{
	struct pool_job *j;

	if (p == NULL || fn == NULL)
		return -1;
	/* Allocated outside the lock: submitters never wait on malloc while
	 * holding up the workers. */
	j = malloc(sizeof(*j));
	if (j == NULL)
		return -1;
	j->pj_next = NULL;
	j->pj_fn = fn;
	j->pj_job = job;
	pthread_mutex_lock(&p->p_mu);
	if (p->p_stopping || p->p_queued >= p->p_max_queue) {
		pthread_mutex_unlock(&p->p_mu);
		free(j);
		return -1;
	}
	if (p->p_tail != NULL)
		p->p_tail->pj_next = j;
	else
		p->p_head = j;
	p->p_tail = j;
	p->p_queued++;
	pthread_cond_signal(&p->p_work);
	pthread_mutex_unlock(&p->p_mu);
	return 0;
}

size_t
pool_queued(struct pool *p)
{
	size_t n;

	if (p == NULL)
		return 0;
	pthread_mutex_lock(&p->p_mu);
	n = p->p_queued;
	pthread_mutex_unlock(&p->p_mu);
	return n;
}

void
pool_stop(struct pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->p_mu);
	if (p->p_joined) {
		pthread_mutex_unlock(&p->p_mu);
		return;
	}
	p->p_stopping = true;
	pthread_cond_broadcast(&p->p_work);
	pthread_mutex_unlock(&p->p_mu);
	/* Workers leave only once the queue is empty, so every job queued
	 * before this call (and none after) runs. */
	for (unsigned i = 0; i < p->p_nthreads; i++)
		pthread_join(p->p_threads[i].pt_tid, NULL);
	pthread_mutex_lock(&p->p_mu);
	p->p_joined = true;
	pthread_mutex_unlock(&p->p_mu);
}

void
pool_free(struct pool *p)
{
	if (p == NULL)
		return;
	pool_stop(p);
	pthread_cond_destroy(&p->p_started);
	pthread_cond_destroy(&p->p_work);
	pthread_mutex_destroy(&p->p_mu);
	free(p->p_threads);
	free(p);
}
