/*
 * admin.h - the plain-HTTP admin listener (loopback only): GET /metrics
 * (Prometheus text format 0.0.4) and GET /healthz (200 "ok" when the store
 * answers through the worker pool, 503 "not ready" otherwise: F-02).
 *
 * Threads: the handler runs on server workers; the health check runs on
 * the pool and answers with srv_reply_async.
 */
#ifndef MSSP_ROLES_ADMIN_H
#define MSSP_ROLES_ADMIN_H

#include "net/server.h"

struct srv;
struct srv_req;
struct pool;
struct metrics;
struct admin;

/* Called before each /metrics rendering to refresh gauges (may be NULL). */
typedef void (*admin_refresh_fn)(void *arg);

struct admin *admin_new(struct metrics *m, struct pool *p, admin_refresh_fn refresh, void *arg);
void admin_attach(struct admin *a, struct srv *s);
void admin_handler(struct srv_req *req, void *arg);
void admin_cancel(struct srv_req *req, void *arg, enum srv_cancel why);
void admin_free(struct admin *a);

#endif
