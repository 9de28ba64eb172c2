/*
 * msspd - the OpenMSSP server.
 *
 *   msspd init --data-dir DIR [--demo] [--base-port N] [--bench-users M]
 *   msspd --data-dir DIR
 *
 * main() wires the roles together and waits for signals; everything else
 * is in src/roles (architecture.md: cmd holds main() and nothing else).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cmd/msspd/msspd.h"
#include "mss/soap.h"
#include "net/server.h"
#include "net/tls.h"
#include "roles/admin.h"
#include "roles/ae.h"
#include "roles/afe.h"
#include "roles/conf.h"
#include "roles/home.h"
#include "roles/node.h"
#include "roles/push.h"
#include "store/store.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/pool.h"

struct node {
	struct mssp_conf *conf;
	struct store *store; /* the main thread's handle (startup check) */
	struct pool *pool;
	struct metrics *metrics;
	struct push_provider *push;
	struct home *home;
	struct afe *afe;
	struct ae *ae;
	struct admin *admin;
	struct srv *srv;
	struct metric *m_pool_queue, *m_parked, *m_conns, *m_online, *m_pending;
};

static void
usage(void)
{
	fprintf(stderr,
		"usage: msspd --data-dir DIR\n"
		"       msspd init --data-dir DIR [--demo] [--base-port N] [--bench-users M]\n");
}

static void *
worker_init(void *arg, unsigned idx)
{
	struct node *n = arg;
	struct store_err se;
	struct node_worker *w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
	w->nw_idx = idx;
	w->nw_store = store_clone(n->store, &se);
	if (!w->nw_store) {
		fprintf(stderr, "msspd: worker %u: store: %s\n", idx, se.detail);
		free(w);
		return NULL;
	}
	return w;
}

static void
worker_fini(void *arg, void *ctx)
{
	(void)arg;
	struct node_worker *w = ctx;
	store_close(w->nw_store);
	free(w);
}

static void
srv_logger(void *arg, const char *event, const char *peer, const char *detail)
{
	(void)arg;
	/* one line per event; never bytes a peer sent */
	LOG_EV(event, "peer", peer[0] ? peer : "-", "detail", detail && *detail ? detail : NULL);
}

static void
refresh_gauges(void *arg)
{
	struct node *n = arg;
	struct srv_stats st;
	struct afe_stats as;
	struct home_stats hs;
	srv_get_stats(n->srv, &st);
	afe_get_stats(n->afe, &as);
	home_get_stats(n->home, &hs);
	metric_set(n->m_pool_queue, (int64_t)pool_queued(n->pool));
	metric_set(n->m_parked, (int64_t)st.st_parked);
	metric_set(n->m_conns, (int64_t)st.st_conns_open);
	metric_set(n->m_online, (int64_t)as.as_online);
	metric_set(n->m_pending, (int64_t)hs.hs_pending);
}

static void
node_free(struct node *n)
{
	if (n->afe)
		afe_stop(n->afe);
	if (n->srv)
		srv_stop(n->srv);
	ae_stop(n->ae);
	if (n->pool)
		pool_stop(n->pool);
	srv_free(n->srv);
	ae_free(n->ae);
	afe_free(n->afe);
	home_free(n->home);
	admin_free(n->admin);
	pool_free(n->pool);
	push_free(n->push);
	metrics_free(n->metrics);
	store_close(n->store);
	conf_aps_swap(NULL);
	conf_free(n->conf);
}

static int
run(const char *dir)
{
	struct node n;
	char err[512];
	struct net_err ne;
	struct store_err se;
	SSL_CTX *ae_tls = NULL, *afe_tls = NULL;
	int rc = 1;
	memset(&n, 0, sizeof n);

	/* no core dumps: they would hold keys and request data (P-03) */
	struct rlimit rl = {0, 0};
	setrlimit(RLIMIT_CORE, &rl);

	/* signals are taken by the main thread only (sigwait below) */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	n.conf = conf_load(dir, err, sizeof err);
	if (!n.conf) {
		fprintf(stderr, "msspd: configuration refused: %s\n", err);
		return 1;
	}
	log_set_node(n.conf->node_id);
	n.conf->aps->refs++; /* the process-wide table shares it */
	conf_aps_swap(n.conf->aps);
	mss_soap_init();

	n.store = store_open(n.conf->store_uri, 0, &se);
	if (!n.store) {
		fprintf(stderr, "msspd: store %s: %s\n", n.conf->store_uri, se.detail);
		goto out;
	}
	n.metrics = metrics_new();
	n.pool = pool_new(n.conf->pool_threads, 0, worker_init, worker_fini, &n);
	if (!n.metrics || !n.pool) {
		fprintf(stderr, "msspd: cannot start the worker pool\n");
		goto out;
	}
	n.m_pool_queue = metrics_gauge(n.metrics, "mssp_pool_queued", NULL,
				       "Jobs waiting for a worker thread");
	n.m_parked = metrics_gauge(n.metrics, "mssp_parked_requests", NULL,
				   "Requests waiting for their answer");
	n.m_conns = metrics_gauge(n.metrics, "mssp_connections_open", NULL,
				  "Open connections on all listeners");
	n.m_online = metrics_gauge(n.metrics, "mssp_afe_devices_online", NULL,
				   "Devices connected to the AFE");
	n.m_pending = metrics_gauge(n.metrics, "mssp_home_prompts_pending", NULL,
				    "Prompts waiting for a device");

	if (strcmp(n.conf->push, "local") == 0 && n.conf->push_port) {
		n.push = push_local_new(n.conf->push_addr, (uint16_t)n.conf->push_port);
		if (!n.push)
			fprintf(stderr, "msspd: push provider unavailable; devices are not woken\n");
	}
	struct home_conf hc = {
		.hc_user_ca_cert = n.conf->user_ca_cert,
		.hc_pool = n.pool,
	};
	n.home = home_new(&hc, err, sizeof err);
	if (!n.home) {
		fprintf(stderr, "msspd: HomeMSSP: %s\n", err);
		goto out;
	}
	n.afe = afe_new(n.pool, home_afe_ops(), n.home, n.push);
	struct ae_conf ac = {.ac_conf = n.conf, .ac_pool = n.pool, .ac_home = n.home,
			     .ac_metrics = n.metrics};
	n.ae = ae_new(&ac, err, sizeof err);
	n.admin = admin_new(n.metrics, n.pool, refresh_gauges, &n);
	if (!n.afe || !n.ae || !n.admin) {
		fprintf(stderr, "msspd: cannot create the roles: %s\n", n.ae ? "memory" : err);
		goto out;
	}
	/* HomeMSSP reports final transactions to the AE */
	home_set_final(n.home, ae_on_final, n.ae);
	home_set_afe(n.home, n.afe);

	struct tls_server_conf tae = {.ts_cert_file = n.conf->ae_cert,
				      .ts_key_file = n.conf->ae_key,
				      .ts_client_ca_file = n.conf->ae_client_ca};
	struct tls_server_conf tafe = {.ts_cert_file = n.conf->afe_cert,
				       .ts_key_file = n.conf->afe_key};
	ae_tls = tls_server_ctx_new(&tae, &ne);
	if (!ae_tls) {
		fprintf(stderr, "msspd: AE TLS: %s\n", ne.ne_detail);
		goto out;
	}
	afe_tls = tls_server_ctx_new(&tafe, &ne);
	if (!afe_tls) {
		fprintf(stderr, "msspd: AFE TLS: %s\n", ne.ne_detail);
		goto out;
	}
	struct srv_conf sc = {
		.sc_workers = n.conf->workers ? n.conf->workers
					      : (unsigned)sysconf(_SC_NPROCESSORS_ONLN),
		.sc_max_conns = n.conf->max_conns,
		.sc_max_conns_per_ip = n.conf->conns_per_ip,
		.sc_max_parked = n.conf->max_conns,
		.sc_log = srv_logger,
		.sc_nlisteners = 3,
		.sc_listeners = {
			{.sl_name = "ae", .sl_addr = n.conf->ae_listen,
			 .sl_port = (uint16_t)n.conf->ae_port, .sl_tls = ae_tls,
			 .sl_handler = ae_handler, .sl_cancel = ae_cancel, .sl_arg = n.ae},
			{.sl_name = "afe", .sl_addr = n.conf->afe_listen,
			 .sl_port = (uint16_t)n.conf->afe_port, .sl_tls = afe_tls,
			 .sl_handler = afe_handler, .sl_arg = n.afe},
			{.sl_name = "admin", .sl_addr = n.conf->admin_listen,
			 .sl_port = (uint16_t)n.conf->admin_port,
			 .sl_handler = admin_handler, .sl_cancel = admin_cancel,
			 .sl_arg = n.admin},
		},
	};
	if (sc.sc_workers == 0 || sc.sc_workers > MSSP_SRV_MAX_WORKERS)
		sc.sc_workers = 2;
	n.srv = srv_new(&sc, &ne);
	if (!n.srv) {
		fprintf(stderr, "msspd: listeners: %s\n", ne.ne_detail);
		goto out;
	}
	ae_attach(n.ae, n.srv);
	afe_attach(n.afe, n.srv);
	admin_attach(n.admin, n.srv);
	if (srv_start(n.srv, &ne) != 0) {
		fprintf(stderr, "msspd: start: %s\n", ne.ne_detail);
		goto out;
	}
	if (ae_start(n.ae, err, sizeof err) != 0) {
		fprintf(stderr, "msspd: AE: %s\n", err);
		goto out;
	}
	printf("msspd: ready: AE https://%s:%u/soap/services/MSS_SignaturePort "
	       "AFE wss://%s:%u/app/v1/ws admin http://%s:%u/metrics\n",
	       n.conf->ae_listen, srv_listener_port(n.srv, 0), n.conf->afe_listen,
	       srv_listener_port(n.srv, 1), n.conf->admin_listen, srv_listener_port(n.srv, 2));
	fflush(stdout);

	for (;;) {
		int sig = 0;
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			struct conf_aps *t = conf_load_aps(dir, err, sizeof err);
			if (t) {
				char na[24];
				snprintf(na, sizeof na, "%zu", t->naps);
				conf_aps_swap(t);
				LOG_EV("conf.reloaded", "aps", na);
			} else {
				/* the old table stays: a bad file never weakens (F-11) */
				LOG_EV("conf.reload_refused", "detail", err);
			}
			continue;
		}
		LOG_EV("node.stopping", "signal", sig == SIGINT ? "INT" : "TERM");
		break;
	}
	rc = 0;
out:
	node_free(&n);
	SSL_CTX_free(ae_tls);
	SSL_CTX_free(afe_tls);
	return rc;
}

int
main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "init") == 0)
		return msspd_init_main(argc - 1, argv + 1);
	const char *dir = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage();
			return 0;
		} else {
			usage();
			return 2;
		}
	}
	if (!dir) {
		usage();
		return 2;
	}
	return run(dir);
}
