/*
 * msspd - the OpenMSSP server.
 *
 *   msspd init --data-dir DIR [--demo] [--base-port N] [--bench-users M]
 *              [--mssp-id URI] [--demo-prefix +DIGITS]
 *   msspd --data-dir DIR [--roles ae,home,afe,mesh,me,admin]
 *
 * main() wires the roles together and waits for signals; everything else
 * is in src/roles (architecture.md: cmd holds main() and nothing else).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/crypto.h>
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
#include "roles/pkipub.h"
#include "pki/ca.h"
#include "roles/me.h"
#include "roles/push.h"
#include "roles/reg.h"
#include "store/audit.h"
#include "store/store.h"
#include "util/clock.h"
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
	struct audit *audit;
	struct pki_ca *ca;   /* opened with its key by the ME role only */
	struct reg *reg;
	struct me *me;
	struct pkipub *pkipub; /* OCSP and CRL publication (with the ME) */
	struct srv *srv;
	pthread_t main_thread;
	uint64_t ap_gen;     /* the AP generation of the installed table */
	struct metric *m_pool_queue, *m_parked, *m_conns, *m_online, *m_pending;
	/* device activation at the AFE (counters fed from its stats) */
	struct metric *m_act_ok, *m_act_failed, *m_act_limited, *m_act_nocode;
	struct afe_stats afe_last; /* the stats the counters were fed up to */
};

static void
usage(void)
{
	fprintf(stderr,
		"usage: msspd --data-dir DIR [--roles ROLE[,ROLE...]]\n"
		"       roles: ae home afe me admin (ae, home and afe together), or all\n"
		"       msspd init --data-dir DIR [--demo] [--base-port N] [--bench-users M]\n"
		"                  [--mssp-id URI] [--demo-prefix +DIGITS]\n");
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
	memset(&as, 0, sizeof as);
	memset(&hs, 0, sizeof hs);
	srv_get_stats(n->srv, &st);
	if (n->afe)
		afe_get_stats(n->afe, &as);
	if (n->home)
		home_get_stats(n->home, &hs);
	metric_set(n->m_pool_queue, (int64_t)pool_queued(n->pool));
	metric_set(n->m_parked, (int64_t)st.st_parked);
	metric_set(n->m_conns, (int64_t)st.st_conns_open);
	metric_set(n->m_online, (int64_t)as.as_online);
	metric_set(n->m_pending, (int64_t)hs.hs_pending);
	if (n->afe) {
		metric_add(n->m_act_ok, as.as_act_ok - n->afe_last.as_act_ok);
		metric_add(n->m_act_failed, as.as_act_failed - n->afe_last.as_act_failed);
		metric_add(n->m_act_limited, as.as_act_limited - n->afe_last.as_act_limited);
		metric_add(n->m_act_nocode, as.as_act_nocode - n->afe_last.as_act_nocode);
		n->afe_last = as;
	}
}

static void
node_free(struct node *n)
{
	if (n->me)
		me_stop(n->me);
	if (n->afe)
		afe_stop(n->afe);
	if (n->srv)
		srv_stop(n->srv);
	if (n->ae)
		ae_stop(n->ae);
	home_stop(n->home);
	if (n->pool)
		pool_stop(n->pool);
	srv_free(n->srv);
	me_free(n->me);
	ae_free(n->ae);
	afe_free(n->afe);
	home_free(n->home);
	admin_free(n->admin);
	pkipub_free(n->pkipub); /* after pool_stop: its jobs have ended */
	pool_free(n->pool);
	push_free(n->push);
	reg_free(n->reg);
	pki_ca_free(n->ca);
	audit_close(n->audit);
	metrics_free(n->metrics);
	store_close(n->store);
	conf_aps_swap(NULL);
	conf_free(n->conf);
}


/* The ME (another thread, in this process) changed the AP table: wake the
 * main thread, which reloads it at once. */
static void
on_ap_change(void *arg)
{
	struct node *n = arg;
	pthread_kill(n->main_thread, SIGUSR1);
}

/* Install the store's AP table if its generation moved (or `force`).  On
 * the main thread (it may block on the store: not an event loop). */
static void
reload_aps(struct node *n, bool force)
{
	struct store_err se;
	struct reg_err re;
	uint64_t gen = 0;
	char err[256];
	if (store_rec_generation(n->store, "ap", &gen, &se) != 0) {
		LOG_EV("conf.aps_unavailable", "detail", se.detail);
		return;
	}
	if (!force && gen == n->ap_gen)
		return;
	json_t *arr = NULL;
	if (reg_ap_table(n->store, &arr, &gen, &re) != 0) {
		LOG_EV("conf.aps_unavailable", "detail", re.msg);
		return;
	}
	struct conf_aps *t = conf_aps_from_json(arr, err, sizeof err);
	json_decref(arr);
	if (!t) {
		/* the old table stays: a bad table never weakens (F-11) */
		LOG_EV("conf.reload_refused", "detail", err);
		return;
	}
	char na[24], ng[24];
	snprintf(na, sizeof na, "%zu", t->naps);
	snprintf(ng, sizeof ng, "%llu", (unsigned long long)gen);
	conf_aps_swap(t);
	n->ap_gen = gen;
	LOG_EV("conf.aps_loaded", "aps", na, "generation", ng);
}

/* Before issue 5 the APs were [ap] sections of msspd.conf: a store whose AP
 * table was never written imports them once (audited), and from then on
 * the store is the only truth (the ME manages it). */
static int
import_conf_aps(struct node *n)
{
	struct store_err se;
	struct reg_err re;
	uint64_t gen = 0;
	if (store_rec_generation(n->store, "ap", &gen, &se) != 0) {
		fprintf(stderr, "msspd: store: %s\n", se.detail);
		return -1;
	}
	if (gen != 0 || n->conf->aps->naps == 0)
		return 0;
	for (size_t i = 0; i < n->conf->aps->naps; i++) {
		json_t *ap = conf_ap_to_json(&n->conf->aps->aps[i]);
		int rc = ap ? reg_ap_seed(n->reg, n->store, ap, clock_wall_ms(), &re) : -1;
		json_decref(ap);
		if (rc != 0) {
			fprintf(stderr, "msspd: importing [ap] sections: %s\n",
				ap ? re.msg : "out of memory");
			return -1;
		}
	}
	LOG_EV("conf.aps_imported", "detail", "[ap] sections of msspd.conf copied to the store");
	return 0;
}

/* Open the user CA with its key (the ME role issues and revokes). */
static struct pki_ca *
open_ca(const char *dir)
{
	char cadir[4096], pp[4096];
	struct pki_err pe;
	char secret[512];
	snprintf(cadir, sizeof cadir, "%s/ca", dir);
	snprintf(pp, sizeof pp, "%s/ca/passphrase", dir);
	int fd = open(pp, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "msspd: ME: %s: %s\n", pp, strerror(errno));
		return NULL;
	}
	ssize_t len = read(fd, secret, sizeof secret - 1);
	close(fd);
	if (len <= 0) {
		fprintf(stderr, "msspd: ME: %s: empty or unreadable\n", pp);
		return NULL;
	}
	while (len > 0 && (secret[len - 1] == '\n' || secret[len - 1] == '\r'))
		len--;
	struct pki_ca *ca = pki_ca_open(cadir, secret, (size_t)len, &pe);
	OPENSSL_cleanse(secret, sizeof secret);
	if (!ca)
		fprintf(stderr, "msspd: ME: user CA: %s\n", pe.detail);
	return ca;
}

static int
run(const char *dir, const char *roles_arg)
{
	struct node n;
	char err[512];
	struct net_err ne;
	struct store_err se;
	struct reg_err re;
	SSL_CTX *ae_tls = NULL, *afe_tls = NULL, *me_tls = NULL, *mesh_tls = NULL;
	int rc = 1;
	memset(&n, 0, sizeof n);
	n.main_thread = pthread_self();

	/* no core dumps: they would hold keys and request data (P-03) */
	struct rlimit rl = {0, 0};
	setrlimit(RLIMIT_CORE, &rl);

	/* signals are taken by the main thread only (sigwait below) */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	n.conf = conf_load(dir, err, sizeof err);
	if (!n.conf) {
		fprintf(stderr, "msspd: configuration refused: %s\n", err);
		return 1;
	}
	if (roles_arg && conf_roles_parse(roles_arg, &n.conf->roles) != 0) {
		fprintf(stderr, "msspd: --roles: a list of ae home afe mesh me admin (ae, home "
				"and afe together; mesh needs ae), or all\n");
		conf_free(n.conf);
		return 2;
	}
	const unsigned roles = n.conf->roles;
	const bool signing = roles & CONF_ROLE_AE;
	log_set_node(n.conf->node_id);
	mss_soap_init();

	n.store = store_open(n.conf->store_uri, 0, &se);
	if (!n.store) {
		fprintf(stderr, "msspd: store %s: %s\n", n.conf->store_uri, se.detail);
		goto out;
	}

	/* The audit log: refuses to start on a log that does not match its
	 * signed head (P-05: never continue silently after tampering). */
	char auditdir[4096], auditkey[4200];
	snprintf(auditdir, sizeof auditdir, "%s/audit", dir);
	snprintf(auditkey, sizeof auditkey, "%s/audit.key", auditdir);
	if (access(auditkey, F_OK) != 0) {
		/* A data directory made before issue 5 has no audit key yet.
		 * A directory that HAS an audit log but lost its key is not
		 * repaired silently: a new key would sign over whatever was
		 * done to the log (P-05). */
		char logp[4300];
		struct stat lst;
		char headp[4300];
		if (audit_log_path(auditdir, n.conf->node_id, logp, sizeof logp) != 0 ||
		    audit_head_path(auditdir, n.conf->node_id, headp, sizeof headp) != 0 ||
		    stat(logp, &lst) == 0 || stat(headp, &lst) == 0) {
			fprintf(stderr, "msspd: audit log %s exists but its key %s is missing: "
					"refusing to start (restore the key; a new one would hide "
					"tampering)\n", logp, auditkey);
			goto out;
		}
		if (audit_keygen(auditdir, &se) != 0) {
			fprintf(stderr, "msspd: audit key: %s\n", se.detail);
			goto out;
		}
		LOG_EV("audit.key_created", "detail", "audit/audit.key");
	}
	n.audit = audit_open(auditdir, n.conf->node_id, auditkey, &se);
	if (!n.audit) {
		fprintf(stderr, "msspd: audit log: %s\n", se.detail);
		goto out;
	}
	if ((roles & CONF_ROLE_ME) && !(n.ca = open_ca(dir)))
		goto out;
	char metrics_url[256];
	snprintf(metrics_url, sizeof metrics_url, "http://%s:%u/metrics",
		 strchr(n.conf->admin_listen, ':') ? "[::1]" : n.conf->admin_listen,
		 n.conf->admin_port);
	struct reg_conf rgc = {
		.rc_node = n.conf->node_id,
		.rc_mssp_id = n.conf->mssp_id,
		.rc_data_dir = dir,
		.rc_audit = n.audit,
		.rc_ca = n.ca,
		.rc_on_ap_change = signing ? on_ap_change : NULL,
		.rc_arg = &n,
		.rc_metrics_url = metrics_url,
	};
	n.reg = reg_new(&rgc, &re);
	if (!n.reg) {
		fprintf(stderr, "msspd: registration: %s\n", re.msg);
		goto out;
	}
	if (import_conf_aps(&n) != 0)
		goto out;
	if (signing) {
		reload_aps(&n, true);
		if (!n.ap_gen && store_rec_generation(n.store, "ap", &n.ap_gen, &se) == 0 &&
		    n.ap_gen) {
			fprintf(stderr, "msspd: the AP table in the store is unusable\n");
			goto out;
		}
		if (!n.ap_gen) {
			/* no AP yet: an empty table (every AP refused until the
			 * ME adds one) */
			conf_aps_swap(conf_aps_from_json(json_array(), err, sizeof err));
		}
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
	n.m_act_ok = metrics_counter(n.metrics, "mssp_afe_activations_total", "outcome=\"ok\"",
				     "Device activations at the AFE");
	n.m_act_failed = metrics_counter(n.metrics, "mssp_afe_activations_total",
					 "outcome=\"refused\"", "Device activations at the AFE");
	n.m_act_limited = metrics_counter(n.metrics, "mssp_afe_activations_total",
					  "outcome=\"rate_limited\"",
					  "Device activations at the AFE");
	n.m_act_nocode = metrics_counter(n.metrics, "mssp_afe_activation_no_code_total", NULL,
					 "Activation attempts for a number without an open code");

	if (signing) {
		if (strcmp(n.conf->push, "local") == 0 && n.conf->push_port) {
			n.push = push_local_new(n.conf->push_addr, (uint16_t)n.conf->push_port);
			if (!n.push)
				fprintf(stderr, "msspd: push provider unavailable; devices are "
						"not woken\n");
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
				     .ac_metrics = n.metrics, .ac_reg = n.reg};
		n.ae = ae_new(&ac, err, sizeof err);
		if (!n.afe || !n.ae) {
			fprintf(stderr, "msspd: cannot create the roles: %s\n",
				n.ae ? "memory" : err);
			goto out;
		}
		/* HomeMSSP reports final transactions to the AE */
		home_set_final(n.home, ae_on_final, n.ae);
		/* the mesh's peers and routes, before the first request */
		if (ae_reload_mesh(n.ae, n.store, true) < 0)
			fprintf(stderr, "msspd: mesh: peers and routes not loaded (see the log); "
					"retried every second\n");
		home_set_afe(n.home, n.afe);
		home_set_reg(n.home, n.reg);
		afe_set_reg(n.afe, n.reg);
		afe_set_act_limits(n.afe, n.conf->act_per_ip_min, n.conf->act_per_msisdn_min);
	}
	n.admin = admin_new(n.metrics, n.pool, refresh_gauges, &n);
	if (!n.admin) {
		fprintf(stderr, "msspd: cannot create the admin role\n");
		goto out;
	}

	struct srv_conf sc = {
		.sc_workers = n.conf->workers ? n.conf->workers
					      : (unsigned)sysconf(_SC_NPROCESSORS_ONLN),
		.sc_max_conns = n.conf->max_conns,
		.sc_max_conns_per_ip = n.conf->conns_per_ip,
		.sc_max_parked = n.conf->max_conns,
		.sc_log = srv_logger,
	};
	int li_ae = -1, li_afe = -1, li_admin = -1, li_me = -1, li_pki = -1, li_mesh = -1;
	if (signing) {
		struct tls_server_conf tae = {.ts_cert_file = n.conf->ae_cert,
					      .ts_key_file = n.conf->ae_key,
					      .ts_client_ca_file = n.conf->ae_client_ca,
					      /* REST credentials: a certificate is
					       * asked for, not required (rest.md) */
					      .ts_client_cert_optional =
						      (n.conf->rest_auth &
						       (CONF_REST_BASIC | CONF_REST_APIKEY)) != 0};
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
		li_ae = (int)sc.sc_nlisteners;
		sc.sc_listeners[sc.sc_nlisteners++] = (struct srv_listener_conf){
			.sl_name = "ae", .sl_addr = n.conf->ae_listen,
			.sl_port = (uint16_t)n.conf->ae_port, .sl_tls = ae_tls,
			.sl_handler = ae_handler, .sl_cancel = ae_cancel, .sl_arg = n.ae};
		li_afe = (int)sc.sc_nlisteners;
		sc.sc_listeners[sc.sc_nlisteners++] = (struct srv_listener_conf){
			.sl_name = "afe", .sl_addr = n.conf->afe_listen,
			.sl_port = (uint16_t)n.conf->afe_port, .sl_tls = afe_tls,
			.sl_handler = afe_handler, .sl_arg = n.afe};
	}
	if (signing && (roles & CONF_ROLE_MESH)) {
		/* peer MSSPs (TS 102 207): their own trust store, so an AP's
		 * CA never vouches for a peer nor a peer's CA for an AP */
		struct tls_server_conf tmesh = {.ts_cert_file = n.conf->mesh_cert,
						.ts_key_file = n.conf->mesh_key,
						.ts_client_ca_file = n.conf->mesh_client_ca};
		mesh_tls = tls_server_ctx_new(&tmesh, &ne);
		if (!mesh_tls) {
			fprintf(stderr, "msspd: mesh TLS: %s\n", ne.ne_detail);
			goto out;
		}
		li_mesh = (int)sc.sc_nlisteners;
		sc.sc_listeners[sc.sc_nlisteners++] = (struct srv_listener_conf){
			.sl_name = "mesh", .sl_addr = n.conf->mesh_listen,
			.sl_port = (uint16_t)n.conf->mesh_port, .sl_tls = mesh_tls,
			.sl_handler = ae_mesh_handler, .sl_cancel = ae_cancel, .sl_arg = n.ae};
	}
	if (roles & CONF_ROLE_ME) {
		struct tls_server_conf tme = {.ts_cert_file = n.conf->me_cert,
					      .ts_key_file = n.conf->me_key,
					      .ts_client_ca_file = n.conf->me_client_ca};
		me_tls = tls_server_ctx_new(&tme, &ne);
		if (!me_tls) {
			fprintf(stderr, "msspd: ME TLS: %s\n", ne.ne_detail);
			goto out;
		}
		/* the origins a browser sends for our console: the listen
		 * address, and "localhost" when that is a loopback address */
		char origin[600];
		bool v6 = strchr(n.conf->me_listen, ':') != NULL;
		if (n.conf->me_origin)
			snprintf(origin, sizeof origin, "%s", n.conf->me_origin);
		else {
		bool loop = strcmp(n.conf->me_listen, "127.0.0.1") == 0 ||
			    strcmp(n.conf->me_listen, "::1") == 0;
		int ol = snprintf(origin, sizeof origin, v6 ? "https://[%s]:%u" : "https://%s:%u",
				  n.conf->me_listen, n.conf->me_port);
		if (loop && ol > 0 && (size_t)ol < sizeof origin)
			snprintf(origin + ol, sizeof origin - (size_t)ol, " https://localhost:%u",
				 n.conf->me_port);
		}
		/* leave signing at least one pool thread: the publication
		 * listener holds MSSP_PKIPUB_MAX_RUNNING, the ME the rest */
		unsigned me_threads = n.conf->pool_threads > MSSP_PKIPUB_MAX_RUNNING + 1
					      ? n.conf->pool_threads - MSSP_PKIPUB_MAX_RUNNING - 1
					      : 1;
		struct me_conf mc = {.mc_reg = n.reg, .mc_pool = n.pool,
				     .mc_web_root = n.conf->me_web_root, .mc_origin = origin,
				     .mc_mssp_id = n.conf->mssp_id, .mc_max_running = me_threads};
		n.me = me_new(&mc, err, sizeof err);
		if (!n.me) {
			fprintf(stderr, "msspd: ME: %s\n", err);
			goto out;
		}
		li_me = (int)sc.sc_nlisteners;
		sc.sc_listeners[sc.sc_nlisteners++] = (struct srv_listener_conf){
			.sl_name = "me", .sl_addr = n.conf->me_listen,
			.sl_port = (uint16_t)n.conf->me_port, .sl_tls = me_tls,
			.sl_handler = me_handler, .sl_cancel = me_cancel, .sl_arg = n.me};
		/* OCSP and the CRL for relying parties: plain HTTP (RFC 6960,
		 * RFC 5280; the answers are signed).  It is meant to be
		 * published, but only where the operator says so: a public
		 * address needs [me] pki_listen written in msspd.conf. */
		struct pkipub_conf pc = {.pc_reg = n.reg, .pc_pool = n.pool};
		n.pkipub = pkipub_new(&pc, err, sizeof err);
		if (!n.pkipub) {
			fprintf(stderr, "msspd: ME publication: %s\n", err);
			goto out;
		}
		li_pki = (int)sc.sc_nlisteners;
		sc.sc_listeners[sc.sc_nlisteners++] = (struct srv_listener_conf){
			.sl_name = "pki", .sl_addr = n.conf->pki_listen,
			.sl_port = (uint16_t)n.conf->pki_port,
			.sl_plain_public = n.conf->pki_listen_set, .sl_max_body = PKIPUB_MAX_BODY,
			.sl_handler = pkipub_handler, .sl_cancel = pkipub_cancel,
			.sl_arg = n.pkipub};
	}
	if (roles & CONF_ROLE_ADMIN) {
		li_admin = (int)sc.sc_nlisteners;
		sc.sc_listeners[sc.sc_nlisteners++] = (struct srv_listener_conf){
			.sl_name = "admin", .sl_addr = n.conf->admin_listen,
			.sl_port = (uint16_t)n.conf->admin_port,
			.sl_handler = admin_handler, .sl_cancel = admin_cancel,
			.sl_arg = n.admin};
	}
	if (sc.sc_nlisteners == 0) {
		fprintf(stderr, "msspd: no role with a listener\n");
		goto out;
	}
	if (sc.sc_workers == 0 || sc.sc_workers > MSSP_SRV_MAX_WORKERS)
		sc.sc_workers = 2;
	n.srv = srv_new(&sc, &ne);
	if (!n.srv) {
		fprintf(stderr, "msspd: listeners: %s\n", ne.ne_detail);
		goto out;
	}
	if (n.ae)
		ae_attach(n.ae, n.srv);
	if (n.afe)
		afe_attach(n.afe, n.srv);
	if (n.me)
		me_attach(n.me, n.srv);
	if (n.pkipub)
		pkipub_attach(n.pkipub, n.srv);
	admin_attach(n.admin, n.srv);
	if (srv_start(n.srv, &ne) != 0) {
		fprintf(stderr, "msspd: start: %s\n", ne.ne_detail);
		goto out;
	}
	if (n.ae && ae_start(n.ae, err, sizeof err) != 0) {
		fprintf(stderr, "msspd: AE: %s\n", err);
		goto out;
	}
	if (n.me && me_start(n.me, n.store) != 0) {
		fprintf(stderr, "msspd: ME: cannot start its job thread\n");
		goto out;
	}
	printf("msspd: ready:");
	if (li_ae >= 0)
		printf(" AE https://%s:%u/soap/services/MSS_SignaturePort AFE wss://%s:%u/app/v1/ws",
		       n.conf->ae_listen, srv_listener_port(n.srv, (unsigned)li_ae),
		       n.conf->afe_listen, srv_listener_port(n.srv, (unsigned)li_afe));
	if (li_mesh >= 0)
		printf(" mesh https://%s:%u/", n.conf->mesh_listen,
		       srv_listener_port(n.srv, (unsigned)li_mesh));
	if (li_me >= 0)
		printf(" ME https://%s:%u/", n.conf->me_listen,
		       srv_listener_port(n.srv, (unsigned)li_me));
	if (li_pki >= 0)
		printf(strchr(n.conf->pki_listen, ':') ? " pki http://[%s]:%u/ocsp"
						       : " pki http://%s:%u/ocsp",
		       n.conf->pki_listen, srv_listener_port(n.srv, (unsigned)li_pki));
	if (li_admin >= 0)
		printf(" admin http://%s:%u/metrics", n.conf->admin_listen,
		       srv_listener_port(n.srv, (unsigned)li_admin));
	printf("\n");
	fflush(stdout);

	for (;;) {
		siginfo_t si;
		struct timespec poll = {.tv_sec = MSSP_AE_AP_POLL_MS / 1000,
					.tv_nsec = (MSSP_AE_AP_POLL_MS % 1000) * 1000000L};
		int sig = sigtimedwait(&sigs, &si, &poll);
		if (sig < 0 || sig == SIGHUP || sig == SIGUSR1) {
			/* the AE's AP table follows the store: changed by the ME
			 * of this process (SIGUSR1), of another process (the
			 * generation moved), or reload asked (SIGHUP) */
			if (signing) {
				reload_aps(&n, sig == SIGHUP);
				(void)ae_reload_mesh(n.ae, n.store, sig == SIGHUP);
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
	SSL_CTX_free(me_tls);
	SSL_CTX_free(mesh_tls);
	return rc;
}

int
main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "init") == 0)
		return msspd_init_main(argc - 1, argv + 1);
	const char *dir = NULL, *roles = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "--roles") == 0 && i + 1 < argc)
			roles = argv[++i];
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
	return run(dir, roles);
}
