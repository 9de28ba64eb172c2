/*
 * loop.c - an event_base on its own thread with a cross-thread call queue.
 * See loop.h for the contract.
 */
#include "net/loop.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "util/limits.h"

struct loop_call_node {
	struct loop_call_node *lc_next;
	loop_fn lc_fn;
	void *lc_arg;
};

struct loop {
	struct event_base *l_base;
	struct event *l_wake;		/* activated by loop_call()          */
	pthread_t l_thread;
	bool l_started;			/* thread created (owner thread only) */
	bool l_joined;
	pthread_mutex_t l_mu;		/* guards everything below           */
	struct loop_call_node *l_head, *l_tail;
	unsigned l_queued;
	bool l_stopping;		/* no more loop_call()               */
	bool l_wake_pending;		/* l_wake is active, do not re-arm   */
};

/* libevent's locking is a process-wide switch that must be thrown before
 * the first event_base exists; a once-flag is the only state this needs. */
static pthread_once_t loop_evthread_once = PTHREAD_ONCE_INIT;
static int loop_evthread_rc = -1;

/* Which loop runs on this thread (NULL on other threads): lets
 * loop_in_thread() answer without reading another thread's state. */
static _Thread_local const struct loop *loop_current;

static void
loop_evthread_init(void)
{
	loop_evthread_rc = evthread_use_pthreads();
}

uint64_t
loop_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Take the whole queue under the lock, run it outside the lock (a call may
 * queue further calls, which then wait for the next wake-up). */
static void
loop_drain(struct loop *l, bool *stopping)
{
	struct loop_call_node *n, *next;

	pthread_mutex_lock(&l->l_mu);
	n = l->l_head;
	l->l_head = l->l_tail = NULL;
	l->l_queued = 0;
	l->l_wake_pending = false;
	*stopping = l->l_stopping;
	pthread_mutex_unlock(&l->l_mu);
	for (; n != NULL; n = next) {
		next = n->lc_next;
		n->lc_fn(n->lc_arg);
		free(n);
	}
}

static void
loop_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct loop *l = arg;
	bool stopping;

	(void)fd;
	(void)what;
	loop_drain(l, &stopping);
	/* loop_call() refuses new calls once l_stopping is set, so the queue
	 * taken under that flag was the last one. */
	if (stopping)
		event_base_loopbreak(l->l_base);
}

struct loop *
loop_new(void)
{
	struct loop *l;

	if (pthread_once(&loop_evthread_once, loop_evthread_init) != 0 ||
	    loop_evthread_rc != 0)
		return NULL;
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return NULL;
	if (pthread_mutex_init(&l->l_mu, NULL) != 0) {
		free(l);
		return NULL;
	}
	l->l_base = event_base_new();
	if (l->l_base == NULL)
		goto fail;
	l->l_wake = event_new(l->l_base, -1, 0, loop_wake_cb, l);
	if (l->l_wake == NULL)
		goto fail;
	return l;
fail:
	if (l->l_base != NULL)
		event_base_free(l->l_base);
	pthread_mutex_destroy(&l->l_mu);
	free(l);
	return NULL;
}

static void *
loop_main(void *arg)
{
	struct loop *l = arg;
	sigset_t set;

	/* EPIPE instead of SIGPIPE on writes to a dead peer (plain sockets and
	 * OpenSSL's socket BIO both use write(2)); process signals belong to
	 * the main thread. */
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	loop_current = l;
	event_base_loop(l->l_base, EVLOOP_NO_EXIT_ON_EMPTY);
	/* One more pass, without blocking: libevent 2.1 finishes freeing a
	 * bufferevent (and closes its socket) from a finalizer callback on
	 * the next iteration; without it, what the last calls closed would
	 * stay open until event_base_free. */
	event_base_loop(l->l_base, EVLOOP_NONBLOCK);
	loop_current = NULL;
	return NULL;
}

int
loop_start(struct loop *l)
{
	pthread_mutex_lock(&l->l_mu);
	if (l->l_started || l->l_stopping) {
		pthread_mutex_unlock(&l->l_mu);
		return -1;
	}
	l->l_started = true;
	/* Calls queued before the start must run: wake the loop for them. */
	if (l->l_head != NULL && !l->l_wake_pending) {
		l->l_wake_pending = true;
		event_active(l->l_wake, EV_READ, 0);
	}
	pthread_mutex_unlock(&l->l_mu);
	if (pthread_create(&l->l_thread, NULL, loop_main, l) != 0) {
		pthread_mutex_lock(&l->l_mu);
		l->l_started = false;
		pthread_mutex_unlock(&l->l_mu);
		return -1;
	}
	return 0;
}

int
loop_call(struct loop *l, loop_fn fn, void *arg)
{
	struct loop_call_node *n;
	bool wake = false;

	n = malloc(sizeof(*n));
	if (n == NULL)
		return -1;
	n->lc_next = NULL;
	n->lc_fn = fn;
	n->lc_arg = arg;
	pthread_mutex_lock(&l->l_mu);
	if (l->l_stopping || l->l_queued >= MSSP_LOOP_MAX_QUEUE) {
		pthread_mutex_unlock(&l->l_mu);
		free(n);
		return -1;
	}
	if (l->l_tail != NULL)
		l->l_tail->lc_next = n;
	else
		l->l_head = n;
	l->l_tail = n;
	l->l_queued++;
	if (l->l_started && !l->l_wake_pending) {
		l->l_wake_pending = true;
		wake = true;
	}
	/* event_active under our lock: loop_stop cannot free the event in
	 * between (it takes the same lock before touching l_wake). */
	if (wake)
		event_active(l->l_wake, EV_READ, 0);
	pthread_mutex_unlock(&l->l_mu);
	return 0;
}

void
loop_stop(struct loop *l)
{
	bool stopping;

	pthread_mutex_lock(&l->l_mu);
	l->l_stopping = true;
	if (l->l_started && !l->l_joined) {
		l->l_wake_pending = true;
		event_active(l->l_wake, EV_READ, 0);
	}
	pthread_mutex_unlock(&l->l_mu);
	if (l->l_started && !l->l_joined) {
		pthread_join(l->l_thread, NULL);
		l->l_joined = true;
	}
	/* Never started: run what was queued here, so every arg is freed. */
	loop_drain(l, &stopping);
}

void
loop_free(struct loop *l)
{
	if (l == NULL)
		return;
	loop_stop(l);
	event_free(l->l_wake);
	event_base_free(l->l_base);
	pthread_mutex_destroy(&l->l_mu);
	free(l);
}

struct event_base *
loop_base(const struct loop *l)
{
	return l->l_base;
}

bool
loop_in_thread(const struct loop *l)
{
	return loop_current == l;
}
