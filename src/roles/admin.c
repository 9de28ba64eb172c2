/*
 * admin.c - /metrics and /healthz (see admin.h).
 */
#include "roles/admin.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/server.h"
#include "roles/node.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/limits.h"
#include "util/metrics.h"
#include "util/pool.h"

#define HEALTH_PARK_MS MSSP_ADMIN_HEALTH_PARK_MS

struct admin {
	struct metrics *ad_metrics;
	struct pool *ad_pool;
	struct srv *ad_srv;
	admin_refresh_fn ad_refresh;
	void *ad_arg;
};

struct admin *
admin_new(struct metrics *m, struct pool *p, admin_refresh_fn refresh, void *arg)
{
	struct admin *a = calloc(1, sizeof *a);
	if (!a)
		return NULL;
	a->ad_metrics = m;
	a->ad_pool = p;
	a->ad_refresh = refresh;
	a->ad_arg = arg;
	return a;
}

void
admin_attach(struct admin *a, struct srv *s)
{
	a->ad_srv = s;
}

void
admin_free(struct admin *a)
{
	free(a);
}

struct health_job {
	struct admin *hj_admin;
	uint64_t hj_req;
};

static void
health_job(void *ctx, void *arg)
{
	struct node_worker *nw = ctx;
	struct health_job *j = arg;
	struct store_err se;
	bool ok = store_health(nw->nw_store, &se) == 0;
	struct srv_response rs = {
		.rs_status = ok ? 200 : 503,
		.rs_content_type = "text/plain; charset=utf-8",
		.rs_body = ok ? "ok\n" : "not ready: store unavailable\n",
	};
	rs.rs_body_len = strlen(rs.rs_body);
	(void)srv_reply_async(j->hj_admin->ad_srv, j->hj_req, &rs);
	free(j);
}

void
admin_cancel(struct srv_req *req, void *arg, enum srv_cancel why)
{
	(void)arg;
	if (why == SRV_CANCEL_DEADLINE) {
		static const char body[] = "not ready: no answer from the workers\n";
		(void)srv_reply(req, 503, "text/plain; charset=utf-8", body, sizeof body - 1);
	}
}

void
admin_handler(struct srv_req *req, void *arg)
{
	struct admin *a = arg;
	const char *path = srv_req_path(req);
	const char *m = srv_req_method(req);
	bool get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
	bool known = strcmp(path, "/metrics") == 0 || strcmp(path, "/healthz") == 0;
	if (!known) {
		static const char nf[] = "not found\n";
		(void)srv_reply(req, 404, "text/plain; charset=utf-8", nf, sizeof nf - 1);
		return;
	}
	if (!get) {
		struct srv_header h = {"Allow", "GET, HEAD"};
		struct srv_response rs = {.rs_status = 405, .rs_headers = &h, .rs_nheaders = 1};
		(void)srv_reply_ex(req, &rs);
		return;
	}
	if (strcmp(path, "/metrics") == 0) {
		struct mss_buf b;
		mss_buf_init(&b, MSSP_SRV_MAX_RESPONSE);
		if (a->ad_refresh)
			a->ad_refresh(a->ad_arg);
		if (metrics_render(a->ad_metrics, &b) != 0) {
			static const char e[] = "metrics too large\n";
			(void)srv_reply(req, 500, "text/plain; charset=utf-8", e, sizeof e - 1);
		} else {
			(void)srv_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8",
					mss_buf_str(&b), mss_buf_len(&b));
		}
		mss_buf_free(&b);
		return;
	}
	struct health_job *j = calloc(1, sizeof *j);
	if (!j || srv_req_park(req, HEALTH_PARK_MS) != 0) {
		free(j);
		static const char busy[] = "not ready: busy\n";
		(void)srv_reply(req, 503, "text/plain; charset=utf-8", busy, sizeof busy - 1);
		return;
	}
	j->hj_admin = a;
	j->hj_req = srv_req_id(req);
	if (pool_submit(a->ad_pool, health_job, j) != 0) {
		static const char busy[] = "not ready: busy\n";
		struct srv_response rs = {.rs_status = 503,
					  .rs_content_type = "text/plain; charset=utf-8",
					  .rs_body = busy,
					  .rs_body_len = sizeof busy - 1};
		(void)srv_reply_async(a->ad_srv, j->hj_req, &rs);
		free(j);
	}
}
