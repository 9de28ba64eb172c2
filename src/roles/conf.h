/*
 * conf.h - msspd's configuration: DIR/msspd.conf (docs/internals/datadir.md)
 * read through util/config (strict INI: an unknown key, a bad value or a
 * missing required key refuses the whole file, bad-inputs F-11).
 *
 * The AP table is the part that changes at run time (an AP suspended,
 * a certificate rotated): msspd reloads the file on SIGHUP and swaps the
 * table (conf_aps_swap); each request takes a reference to the table it
 * uses (conf_aps_get / conf_aps_put), so a reload never frees a table
 * under a running request.  The rest of the configuration needs a restart.
 *
 * Ownership: conf_load returns a struct mssp_conf owned by the caller
 * (conf_free); every string in it belongs to it.  Paths are absolute
 * (resolved against the data directory).
 */
#ifndef MSSP_ROLES_CONF_H
#define MSSP_ROLES_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "net/tls.h"
#include "util/limits.h"

#define CONF_ERR_MAX 256

/* Messaging modes an AP may use (bit set). */
enum conf_mode {
	CONF_MODE_SYNCH = 1 << 0,
	CONF_MODE_ASYNCH_CS = 1 << 1,
	CONF_MODE_ASYNCH_SS = 1 << 2,
};

/* Roles a process runs ([node] roles, msspd --roles; docs/internals/me.md).
 * ae, home and afe go together (or none of them). */
enum conf_role {
	CONF_ROLE_AE = 1 << 0,
	CONF_ROLE_HOME = 1 << 1,
	CONF_ROLE_AFE = 1 << 2,
	CONF_ROLE_ME = 1 << 3,
	CONF_ROLE_ADMIN = 1 << 4,
	CONF_ROLE_MESH = 1 << 5, /* the mesh listener ([mesh], mesh.md): needs ae */
};
#define CONF_ROLE_ALL                                                                         \
	(CONF_ROLE_AE | CONF_ROLE_HOME | CONF_ROLE_AFE | CONF_ROLE_ME | CONF_ROLE_ADMIN |     \
	 CONF_ROLE_MESH)

/* How an AP may authenticate on the AE's REST paths ([ae] rest_auth,
 * roles/rest.h).  SOAP is always mutual TLS. */
enum conf_rest_auth {
	CONF_REST_CERT = 1 << 0,
	CONF_REST_BASIC = 1 << 1,
	CONF_REST_APIKEY = 1 << 2,
};

struct conf_ap {
	char *ca_id;			  /* AP_ID, exact                        */
	char *ca_name;			  /* shown to the user                   */
	uint8_t ca_fps[MSSP_CONF_MAX_AP_CERTS][TLS_FP_LEN];
	size_t ca_nfps;
	bool ca_all_profiles;
	char **ca_profiles;		  /* ca_nprofiles URIs (exact)           */
	size_t ca_nprofiles;
	unsigned ca_modes;		  /* enum conf_mode bits                 */
	char **ca_notify;		  /* allowed notification URL prefixes   */
	size_t ca_nnotify;
	unsigned ca_rate;		  /* requests per second, 0: unlimited   */
	bool ca_suspended;
	/* REST credentials (roles/rest.h, docs/internals/rest.md); an AP
	 * record with either may have no certificate at all */
	char *ca_rest_user;		  /* HTTP Basic user name; NULL: AP_ID   */
	bool ca_has_rest_pw;		  /* salt + SHA-256 below are set        */
	uint8_t ca_rest_salt[MSSP_REST_SALT_LEN];
	uint8_t ca_rest_hash[MSSP_REST_HASH_LEN]; /* SHA-256(salt || password) */
	char *ca_api_key;		  /* HMAC key as given, NULL: none;
					   * wiped when the table is freed      */
};

struct conf_aps {
	struct conf_ap *aps;
	size_t naps;
	/* reference count, protected by the conf module's lock */
	unsigned refs;
};

struct mssp_conf {
	char *data_dir;
	char *node_id;
	unsigned workers;
	unsigned pool_threads;
	unsigned max_conns;		  /* open connections, all listeners     */
	unsigned conns_per_ip;		  /* from one address (phones behind one
					   * NAT, a load generator: raise it)   */
	unsigned roles;			  /* enum conf_role bits                 */
	char *store_uri;
	/* [me] */
	char *me_listen;
	unsigned me_port;
	char *me_cert, *me_key, *me_client_ca;
	char *me_web_root;		  /* the console's static files          */
	char *me_origin;		  /* browser origins of the console, space
					   * separated; NULL: from listen/port    */
	char *pki_listen;		  /* OCSP and CRL publication, plain HTTP */
	unsigned pki_port;
	bool pki_listen_set;		  /* pki_listen named in the file: it may
					   * be a public address                 */
	/* [ae] */
	char *ae_listen;
	unsigned ae_port;
	char *ae_cert, *ae_key, *ae_client_ca;
	char *mssp_id;
	unsigned instant_skew_s;
	unsigned default_timeout_s;
	unsigned max_timeout_s;
	unsigned rest_auth;		  /* enum conf_rest_auth bits            */
	/* [afe] */
	char *afe_listen;
	unsigned afe_port;
	char *afe_cert, *afe_key;
	char *push;			  /* "local" or "none"                   */
	char *push_addr;
	unsigned push_port;
	unsigned act_per_ip_min;	  /* device activation attempts (AFE):   */
	unsigned act_per_msisdn_min;	  /* per source address / per number     */
	/* [admin] */
	char *admin_listen;
	unsigned admin_port;
	/* [mesh] the listener other MSSPs call (TS 102 207, mesh.md) */
	char *mesh_listen;		  /* default: [ae] listen                */
	unsigned mesh_port;		  /* default: [ae] port + 6              */
	char *mesh_cert, *mesh_key;	  /* default tls/server.crt, .key        */
	char *mesh_client_ca;		  /* the peers' CAs (a bundle the operator
					   * appends to); default tls/ca.crt     */
	/* [home] */
	char *user_ca_cert;		  /* <user_ca>/ca.crt                    */
	/* [notify] */
	char *notify_cert, *notify_key, *notify_ca;
	unsigned notify_retries;
	unsigned notify_retry_ms;
	/* [ap "..."] sections, as loaded.  Since issue 5 the AP table lives in
	 * the store (managed through the ME); these sections are imported
	 * once into an empty store AP table and ignored afterwards. */
	struct conf_aps *aps;
};

/* Load DIR/msspd.conf.  NULL with err (line number and reason, never a
 * value). */
struct mssp_conf *conf_load(const char *data_dir, char *err, size_t errlen);
void conf_free(struct mssp_conf *c); /* accepts NULL */

/* Only the AP table of DIR/msspd.conf (SIGHUP).  NULL with err; the
 * returned table has one reference (the caller's). */
struct conf_aps *conf_load_aps(const char *data_dir, char *err, size_t errlen);

/* The process-wide current AP table: install (takes over the caller's
 * reference; the old table is released), get a reference, release one. */
void conf_aps_swap(struct conf_aps *t);
struct conf_aps *conf_aps_get(void);
void conf_aps_put(struct conf_aps *t);

/* "ae,home,afe me" / "all" -> enum conf_role bits.  0, or -1 (unknown
 * role, empty, or ae/home/afe split apart). */
int conf_roles_parse(const char *text, unsigned *out);
/* "cert basic apikey" ([ae] rest_auth) -> enum conf_rest_auth bits; NULL
 * text: CONF_REST_CERT.  0, or -1 (unknown word, empty). */
int conf_rest_auth_parse(const char *text, unsigned *out);

/* The AP table from its JSON form (an array of AP objects as roles/reg.c
 * stores them, docs/internals/me.md).  NULL with err; one reference.
 * `arr` is borrowed, but its "api_key" strings are wiped (the table keeps
 * its own copies): free it right after. */
struct conf_aps *conf_aps_from_json(json_t *arr, char *err, size_t errlen);
/* One AP as JSON (new reference), or NULL on memory shortage. */
json_t *conf_ap_to_json(const struct conf_ap *a);

/* The AP whose certificate fingerprint is fp (constant-time compare over
 * every fingerprint), or NULL. */
const struct conf_ap *conf_ap_by_fp(const struct conf_aps *t, const uint8_t fp[TLS_FP_LEN]);
/* Is `url` an https URL, without credentials, whose host and port are an
 * allowed target's (notify_urls: "https://HOST[:PORT|:*][/PATH]") and
 * whose path starts with the target's path on a segment boundary? */
bool conf_ap_notify_allowed(const struct conf_ap *ap, const char *url);
/* Is `rule` a valid notify_urls entry? */
bool conf_notify_rule_valid(const char *rule);

#endif
