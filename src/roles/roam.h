/*
 * roam.h - the mesh transport of one node (TS 102 207,
 * docs/internals/mesh.md): the peers and routing table as loaded from the
 * store, the RoamingHeader an outgoing message gets, the checks an
 * incoming one must pass, and the calls to peers (libcurl multi on the
 * AE's loop, mutual TLS, a pinned peer certificate, a bulkhead and a
 * circuit breaker per peer).
 *
 * The transaction side (what is stored, who is answered) is the AE's
 * (roles/ae.c); this module never touches a transaction.
 *
 * Threads: roam_reload, roam_tab_get/put, roam_stamp, roam_check_inbound
 * and roam_send on any thread; the done callback of roam_send runs on the
 * AE loop thread (the `rc_loop`); roam_stop_on_loop on that thread.
 * Ownership: tables are reference counted (roam_tab_get/roam_tab_put);
 * roam_send copies what it needs from the peer and the message.
 */
#ifndef MSSP_ROLES_ROAM_H
#define MSSP_ROLES_ROAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mss/msg.h"
#include "roles/meshconf.h"

struct loop;
struct store;
struct metrics;
struct roam;
struct roam_tab;

struct roam_conf {
	const char *rc_self_id;		/* our MSSP_ID ([ae] mssp_id)        */
	const char *rc_cert_file;	/* our certificate towards peers      */
	const char *rc_key_file;
	struct loop *rc_loop;		/* the AE loop: calls run there       */
	struct metrics *rc_metrics;	/* may be NULL                        */
	bool rc_allow_plain;		/* tests only: http:// to loopback    */
};

struct roam *roam_new(const struct roam_conf *c, char *err, size_t errlen);
/* On the loop thread, before the loop stops: ends the calls in flight
 * (their done callbacks run with 780 "shutdown") and frees the clients. */
void roam_stop_on_loop(struct roam *r);
void roam_free(struct roam *r); /* after roam_stop_on_loop; NULL ok */

const char *roam_self_id(const struct roam *r);

/* Reload the table if the peer or route generation moved (or `force`).
 * 1 reloaded, 0 unchanged, -1 store failure (the old table stays). */
int roam_reload(struct roam *r, struct store *st, bool force);
/* The current table, with a reference (never NULL after roam_new: an
 * empty table until the first load). */
struct roam_tab *roam_tab_get(struct roam *r);
const struct mesh_table *roam_tab_table(const struct roam_tab *t);
void roam_tab_put(struct roam *r, struct roam_tab *t); /* NULL ok */

/* Give `m` (a request, or an answer / notification going back) its
 * RoamingHeader: the `history` received (NULL at the AE that starts the
 * route), then our entry (RE_TransactionID = `our_trans_id`, TimeOut =
 * `timeout_s` (0: none), Mesh_Role = `role`), CommonHeader/HomeMSSP =
 * `home_id`.  For a request to `to` (NULL for answers) it also sets
 * MSSP_Info/MSSP_ID to the peer and maps the SignatureProfile and the
 * request's TimeOut (`timeout_s`).  0, or -1 on allocation failure. */
int roam_stamp(struct roam *r, struct mss_msg *m, const struct mss_roam_hdr *history,
	       const struct mesh_peer *to, const char *home_id, const char *our_trans_id,
	       unsigned timeout_s, enum mss_mesh_role role);

/* The checks on a message that came in on the mesh listener from
 * `sender` (found by its TLS certificate).  0, or the status to answer
 * with (701 no header, 703 no HomeMSSP, 780 a loop, 104 the last entry
 * is not the sender, 710 no RE_TransactionID) and a short reason in
 * `why`.  `answer`: a result travelling back (a notification): our own
 * entry must be in its history (101 otherwise) instead of being a loop. */
int roam_check_inbound(const struct roam *r, const struct mss_msg *m,
		       const struct mesh_peer *sender, bool answer, const char **why);
/* The RE_TransactionID our own node put into `h` (the entry whose sender
 * is us), or NULL. */
const char *roam_own_trans_id(const struct roam *r, const struct mss_roam_hdr *h);
/* The TimeOut the last entry allows (0: none). */
unsigned roam_hdr_timeout(const struct mss_roam_hdr *h);

/* The outcome of a call to a peer. */
struct roam_answer {
	int ra_status;			/* 0: ra_msg is the peer's answer of the
					 * expected type; else the status to
					 * give (a peer fault's code, or 780) */
	char ra_detail[128];		/* short printable text             */
	struct mss_msg *ra_msg;		/* owned by the callback (free it)  */
	bool ra_shutdown;		/* the node is stopping: the call was
					 * cut (or never left), nothing is
					 * known about the peer's side; the
					 * caller leaves its transaction for
					 * recovery (ra_status is 780)       */
};
typedef void (*roam_done_fn)(void *arg, struct roam_answer *ans);

/* POST `m` (encoded here, SOAP 1.2, its header already stamped) to
 * `to`'s mesh listener at `path` and decode the answer strictly: a
 * message of type `want` (or a fault: its code in ra_status; a code we do
 * not know, or any other answer, transport failure, timeout, oversized
 * body: 780).  `done` runs exactly once on the loop thread, also when the
 * peer is suspended, its circuit open or its bulkhead full (780 at once).
 * 0, or -1 when nothing was started (then `done` is not called). */
int roam_send(struct roam *r, const struct mesh_peer *to, const char *path,
	      const struct mss_msg *m, enum mss_msg_type want, unsigned timeout_ms,
	      roam_done_fn done, void *arg);

#endif
