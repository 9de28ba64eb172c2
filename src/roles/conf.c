/*
 * conf.c - msspd.conf into struct mssp_conf (see conf.h).
 */
#include "roles/conf.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ctype.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "util/config.h"
#include "util/hex.h"
#include "util/limits.h"

/* Where the console's files are: the Makefile passes the source tree's
 * web/ directory; other builds (the fuzz targets, a packaged install) get
 * the installed location.  [me] web_root overrides either. */
#ifndef MSSP_WEB_ROOT
#define MSSP_WEB_ROOT "/usr/share/openmssp/web"
#endif

static const char *const node_keys[] = {"id", "workers", "pool_threads", "max_conns",
					"conns_per_ip", "roles", NULL};
static const char *const store_keys[] = {"uri", NULL};
static const char *const ae_keys[] = {"listen", "port", "cert", "key", "client_ca", "mssp_id",
				      "instant_skew_s", "default_timeout_s", "max_timeout_s",
				      "rest_auth", NULL};
static const char *const afe_keys[] = {"listen", "port", "cert", "key",
				       "push", "push_addr", "push_port",
				       "activations_per_ip_per_min",
				       "activations_per_msisdn_per_min", NULL};
static const char *const admin_keys[] = {"listen", "port", NULL};
static const char *const me_keys[] = {"listen", "port", "cert", "key", "client_ca",
				      "web_root", "origin", "pki_listen", "pki_port", NULL};
static const char *const home_keys[] = {"user_ca", NULL};
static const char *const notify_keys[] = {"cert", "key", "ca", "retries", "retry_ms", NULL};
static const char *const mesh_keys[] = {"listen", "port", "cert", "key", "client_ca", NULL};
static const char *const ap_keys[] = {"name", "cert_sha256", "profiles", "modes",
				      "notify_urls", "rate", "suspended", NULL};

static const struct cfg_section_schema schema[] = {
	{"node", false, node_keys},	{"store", false, store_keys},
	{"ae", false, ae_keys},		{"afe", false, afe_keys},
	{"admin", false, admin_keys},	{"me", false, me_keys},
	{"home", false, home_keys},	{"notify", false, notify_keys},
	{"ap", true, ap_keys},		{"mesh", false, mesh_keys},
};
#define NSCHEMA (sizeof schema / sizeof schema[0])

static int
errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Resolve `v` against the data directory; NULL on memory shortage. */
static char *
path_join(const char *dir, const char *v)
{
	char *out;
	if (v[0] == '/')
		return strdup(v);
	if (asprintf(&out, "%s/%s", dir, v) < 0)
		return NULL;
	return out;
}

static int
get_str(const struct cfg *c, int sec, const char *secname, const char *key, const char *def,
	char **out, char *err, size_t errlen)
{
	const char *v = sec >= 0 ? cfg_get(c, sec, key) : NULL;
	if (!v)
		v = def;
	if (!v)
		return errf(err, errlen, "[%s] %s is required", secname, key);
	*out = strdup(v);
	return *out ? 0 : errf(err, errlen, "out of memory");
}

static int
get_path(const struct cfg *c, int sec, const char *secname, const char *key, const char *def,
	 const char *dir, char **out, char *err, size_t errlen)
{
	const char *v = sec >= 0 ? cfg_get(c, sec, key) : NULL;
	if (!v)
		v = def;
	if (!v || !*v)
		return errf(err, errlen, "[%s] %s is required", secname, key);
	*out = path_join(dir, v);
	return *out ? 0 : errf(err, errlen, "out of memory");
}

static int
get_uint(const struct cfg *c, int sec, const char *key, unsigned long def, unsigned long min,
	 unsigned long max, unsigned *out, char *err, size_t errlen)
{
	unsigned long v = def;
	struct cfg_err ce;
	if (sec >= 0 && cfg_get_uint(c, sec, key, def, min, max, &v, &ce) != 0)
		return errf(err, errlen, "line %u: %s", ce.line, ce.msg);
	*out = (unsigned)v;
	return 0;
}

/* Split a list on blanks and commas into a NULL-free array of copies. */
static int
split_list(const char *v, char ***out, size_t *n)
{
	char **arr = NULL;
	size_t cnt = 0;
	const char *p = v;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			break;
		const char *s = p;
		while (*p && *p != ' ' && *p != '\t' && *p != ',')
			p++;
		if (cnt >= MSSP_CONF_MAX_LIST)
			goto fail;
		char **na = realloc(arr, (cnt + 1) * sizeof *arr);
		if (!na)
			goto fail;
		arr = na;
		arr[cnt] = strndup(s, (size_t)(p - s));
		if (!arr[cnt])
			goto fail;
		cnt++;
	}
	*out = arr;
	*n = cnt;
	return 0;
fail:
	for (size_t i = 0; i < cnt; i++)
		free(arr[i]);
	free(arr);
	return -1;
}

static void
free_list(char **l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(l[i]);
	free(l);
}


static void
ap_clear(struct conf_ap *a)
{
	free(a->ca_id);
	free(a->ca_name);
	free_list(a->ca_profiles, a->ca_nprofiles);
	free_list(a->ca_notify, a->ca_nnotify);
	free(a->ca_rest_user);
	if (a->ca_api_key) {
		OPENSSL_cleanse(a->ca_api_key, strlen(a->ca_api_key));
		free(a->ca_api_key);
	}
	OPENSSL_cleanse(a, sizeof *a);
}

static void
aps_free(struct conf_aps *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->naps; i++)
		ap_clear(&t->aps[i]);
	free(t->aps);
	free(t);
}

static int
load_ap(const struct cfg *c, int sec, struct conf_ap *a, char *err, size_t errlen)
{
	const char *id = cfg_section_name(c, sec);
	const char *v;
	a->ca_id = strdup(id);
	if (!a->ca_id)
		return errf(err, errlen, "out of memory");
	if (!*id || strlen(id) > MSSP_STORE_MAX_AP_ID)
		return errf(err, errlen, "[ap] section name must be an AP_ID of 1..%d bytes",
			    MSSP_STORE_MAX_AP_ID);
	v = cfg_get(c, sec, "name");
	a->ca_name = strdup(v ? v : id);
	if (!a->ca_name)
		return errf(err, errlen, "out of memory");
	if (strlen(a->ca_name) > MSSP_APPMSG_MAX_TEXT)
		return errf(err, errlen, "line %u: AP name too long", cfg_line(c, sec, "name"));

	v = cfg_get(c, sec, "cert_sha256");
	if (!v)
		return errf(err, errlen, "[ap] %s: cert_sha256 is required (no AP without a "
			    "certificate binding, P-11)", "section");
	char **fps;
	size_t nfps;
	if (split_list(v, &fps, &nfps) != 0)
		return errf(err, errlen, "line %u: too many fingerprints",
			    cfg_line(c, sec, "cert_sha256"));
	int rc = 0;
	if (nfps == 0 || nfps > MSSP_CONF_MAX_AP_CERTS)
		rc = errf(err, errlen, "line %u: 1..%d fingerprints",
			  cfg_line(c, sec, "cert_sha256"), MSSP_CONF_MAX_AP_CERTS);
	for (size_t i = 0; rc == 0 && i < nfps; i++) {
		const char *h = fps[i];
		size_t hl = strlen(h);
		/* accept "AB:CD:..." as openssl prints it, and plain hex */
		size_t k = 0;
		for (size_t j = 0; j < hl && rc == 0;) {
			if (h[j] == ':') {
				j++;
				continue;
			}
			int hi = hex_digit((unsigned char)h[j]);
			int lo = j + 1 < hl ? hex_digit((unsigned char)h[j + 1]) : -1;
			if (hi < 0 || lo < 0 || k >= TLS_FP_LEN)
				rc = -1;
			else
				a->ca_fps[i][k++] = (uint8_t)(hi << 4 | lo);
			j += 2;
		}
		if (rc != 0 || k != TLS_FP_LEN)
			rc = errf(err, errlen, "line %u: cert_sha256 must be 64 hex digits",
				  cfg_line(c, sec, "cert_sha256"));
	}
	a->ca_nfps = nfps;
	free_list(fps, nfps);
	if (rc)
		return rc;

	v = cfg_get(c, sec, "profiles");
	if (!v || strcmp(v, "*") == 0) {
		a->ca_all_profiles = true;
	} else if (split_list(v, &a->ca_profiles, &a->ca_nprofiles) != 0) {
		return errf(err, errlen, "line %u: too many profiles", cfg_line(c, sec, "profiles"));
	}

	v = cfg_get(c, sec, "modes");
	if (!v)
		v = "synch asynchClientServer asynchServerServer";
	char **modes;
	size_t nmodes;
	if (split_list(v, &modes, &nmodes) != 0)
		return errf(err, errlen, "line %u: bad modes", cfg_line(c, sec, "modes"));
	for (size_t i = 0; i < nmodes; i++) {
		if (strcmp(modes[i], "synch") == 0)
			a->ca_modes |= CONF_MODE_SYNCH;
		else if (strcmp(modes[i], "asynchClientServer") == 0)
			a->ca_modes |= CONF_MODE_ASYNCH_CS;
		else if (strcmp(modes[i], "asynchServerServer") == 0)
			a->ca_modes |= CONF_MODE_ASYNCH_SS;
		else
			rc = -1;
	}
	free_list(modes, nmodes);
	if (rc)
		return errf(err, errlen, "line %u: modes are synch, asynchClientServer, "
			    "asynchServerServer", cfg_line(c, sec, "modes"));

	v = cfg_get(c, sec, "notify_urls");
	if (v && split_list(v, &a->ca_notify, &a->ca_nnotify) != 0)
		return errf(err, errlen, "line %u: too many URLs", cfg_line(c, sec, "notify_urls"));
	for (size_t i = 0; i < a->ca_nnotify; i++)
		if (!conf_notify_rule_valid(a->ca_notify[i]))
			return errf(err, errlen, "line %u: notification URLs are "
				    "https://HOST[:PORT|:*][/PATH]", cfg_line(c, sec, "notify_urls"));
	if (get_uint(c, sec, "rate", 0, 0, 1000000, &a->ca_rate, err, errlen))
		return -1;
	struct cfg_err ce;
	if (cfg_get_bool(c, sec, "suspended", false, &a->ca_suspended, &ce) != 0)
		return errf(err, errlen, "line %u: %s", ce.line, ce.msg);
	return 0;
}

static struct conf_aps *
load_aps(const struct cfg *c, char *err, size_t errlen)
{
	struct conf_aps *t = calloc(1, sizeof *t);
	if (!t) {
		errf(err, errlen, "out of memory");
		return NULL;
	}
	t->refs = 1;
	size_t n = cfg_section_count(c);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(cfg_section_type(c, i), "ap") != 0)
			continue;
		if (t->naps >= MSSP_CONF_MAX_APS) {
			errf(err, errlen, "more than %d APs", MSSP_CONF_MAX_APS);
			goto fail;
		}
		struct conf_ap *na = realloc(t->aps, (t->naps + 1) * sizeof *na);
		if (!na) {
			errf(err, errlen, "out of memory");
			goto fail;
		}
		t->aps = na;
		memset(&t->aps[t->naps], 0, sizeof t->aps[0]);
		t->naps++;
		if (load_ap(c, (int)i, &t->aps[t->naps - 1], err, errlen) != 0)
			goto fail;
	}
	/* one certificate maps to exactly one AP (P-11) */
	for (size_t i = 0; i < t->naps; i++)
		for (size_t j = i + 1; j < t->naps; j++)
			for (size_t a = 0; a < t->aps[i].ca_nfps; a++)
				for (size_t b = 0; b < t->aps[j].ca_nfps; b++)
					if (memcmp(t->aps[i].ca_fps[a], t->aps[j].ca_fps[b],
						   TLS_FP_LEN) == 0) {
						errf(err, errlen, "one certificate is bound to two "
							     "APs");
						goto fail;
					}
	return t;
fail:
	aps_free(t);
	return NULL;
}

static struct cfg *
load_file(const char *data_dir, char *err, size_t errlen)
{
	char *path;
	if (asprintf(&path, "%s/msspd.conf", data_dir) < 0) {
		errf(err, errlen, "out of memory");
		return NULL;
	}
	struct cfg_err ce;
	struct cfg *c = cfg_load(path, schema, NSCHEMA, &ce);
	if (!c) {
		if (ce.line)
			errf(err, errlen, "%s line %u: %s", path, ce.line, ce.msg);
		else
			errf(err, errlen, "%s: %s", path, ce.msg);
	}
	free(path);
	return c;
}

struct mssp_conf *
conf_load(const char *data_dir, char *err, size_t errlen)
{
	struct cfg *c = load_file(data_dir, err, errlen);
	if (!c)
		return NULL;
	struct mssp_conf *m = calloc(1, sizeof *m);
	if (!m) {
		errf(err, errlen, "out of memory");
		cfg_free(c);
		return NULL;
	}
	int node = cfg_section_find(c, "node", NULL);
	int st = cfg_section_find(c, "store", NULL);
	int ae = cfg_section_find(c, "ae", NULL);
	int afe = cfg_section_find(c, "afe", NULL);
	int adm = cfg_section_find(c, "admin", NULL);
	int home = cfg_section_find(c, "home", NULL);
	int nt = cfg_section_find(c, "notify", NULL);
	int mesh = cfg_section_find(c, "mesh", NULL);
	const char *d = data_dir;
	char *uca = NULL;
	int rc = 0;
	m->data_dir = strdup(d);
	rc |= m->data_dir ? 0 : errf(err, errlen, "out of memory");
	rc = rc ? rc : get_str(c, node, "node", "id", "node1", &m->node_id, err, errlen);
	rc = rc ? rc : get_uint(c, node, "workers", 2, 0, MSSP_SRV_MAX_WORKERS, &m->workers, err, errlen);
	rc = rc ? rc : get_uint(c, node, "pool_threads", 4, 1, MSSP_POOL_MAX_THREADS, &m->pool_threads, err, errlen);
	rc = rc ? rc : get_uint(c, node, "max_conns", MSSP_SRV_MAX_CONNS, 1, MSSP_SRV_MAX_CONNS, &m->max_conns, err, errlen);
	rc = rc ? rc : get_uint(c, node, "conns_per_ip", MSSP_SRV_CONNS_PER_IP, 1, MSSP_SRV_MAX_CONNS, &m->conns_per_ip, err, errlen);
	if (!rc) {
		const char *r = node >= 0 ? cfg_get(c, node, "roles") : NULL;
		if (conf_roles_parse(r ? r : "all", &m->roles) != 0)
			rc = errf(err, errlen, "[node] roles: a list of ae home afe me admin mesh, or all");
	}
	if (!rc) {
		const char *u = st >= 0 ? cfg_get(c, st, "uri") : NULL;
		if (!u)
			u = "sqlite:mssp.db";
		if (strncmp(u, "sqlite:", 7) == 0 && u[7] != '/') {
			if (asprintf(&m->store_uri, "sqlite:%s/%s", d, u + 7) < 0)
				m->store_uri = NULL;
		} else {
			m->store_uri = strdup(u);
		}
		if (!m->store_uri)
			rc = errf(err, errlen, "out of memory");
	}
	rc = rc ? rc : get_str(c, ae, "ae", "listen", "127.0.0.1", &m->ae_listen, err, errlen);
	rc = rc ? rc : get_uint(c, ae, "port", 9443, 0, 65535, &m->ae_port, err, errlen);
	rc = rc ? rc : get_path(c, ae, "ae", "cert", "tls/server.crt", d, &m->ae_cert, err, errlen);
	rc = rc ? rc : get_path(c, ae, "ae", "key", "tls/server.key", d, &m->ae_key, err, errlen);
	rc = rc ? rc : get_path(c, ae, "ae", "client_ca", "tls/ca.crt", d, &m->ae_client_ca, err, errlen);
	rc = rc ? rc : get_str(c, ae, "ae", "mssp_id", "http://openmssp.local/", &m->mssp_id, err, errlen);
	rc = rc ? rc : get_uint(c, ae, "instant_skew_s", 300, 1, 86400, &m->instant_skew_s, err, errlen);
	rc = rc ? rc : get_uint(c, ae, "max_timeout_s", MSSP_MSG_MAX_TIMEOUT_S, 1, MSSP_MSG_MAX_TIMEOUT_S, &m->max_timeout_s, err, errlen);
	rc = rc ? rc : get_uint(c, ae, "default_timeout_s", 80, 1, MSSP_MSG_MAX_TIMEOUT_S, &m->default_timeout_s, err, errlen);
	if (!rc && conf_rest_auth_parse(ae >= 0 ? cfg_get(c, ae, "rest_auth") : NULL,
					&m->rest_auth) != 0)
		rc = errf(err, errlen, "[ae] rest_auth: a list of cert basic apikey");
	rc = rc ? rc : get_str(c, afe, "afe", "listen", "127.0.0.1", &m->afe_listen, err, errlen);
	rc = rc ? rc : get_uint(c, afe, "port", 9445, 0, 65535, &m->afe_port, err, errlen);
	rc = rc ? rc : get_path(c, afe, "afe", "cert", "tls/server.crt", d, &m->afe_cert, err, errlen);
	rc = rc ? rc : get_path(c, afe, "afe", "key", "tls/server.key", d, &m->afe_key, err, errlen);
	rc = rc ? rc : get_str(c, afe, "afe", "push", "none", &m->push, err, errlen);
	rc = rc ? rc : get_str(c, afe, "afe", "push_addr", "127.0.0.1", &m->push_addr, err, errlen);
	rc = rc ? rc : get_uint(c, afe, "push_port", 0, 0, 65535, &m->push_port, err, errlen);
	rc = rc ? rc : get_uint(c, afe, "activations_per_ip_per_min", MSSP_AFE_ACT_PER_IP_MIN, 1, 100000, &m->act_per_ip_min, err, errlen);
	rc = rc ? rc : get_uint(c, afe, "activations_per_msisdn_per_min", MSSP_AFE_ACT_PER_MSISDN_MIN, 1, 1000, &m->act_per_msisdn_min, err, errlen);
	if (!rc && strcmp(m->push, "local") != 0 && strcmp(m->push, "none") != 0)
		rc = errf(err, errlen, "[afe] push is local or none");
	int me = cfg_section_find(c, "me", NULL);
	rc = rc ? rc : get_str(c, me, "me", "listen", "127.0.0.1", &m->me_listen, err, errlen);
	rc = rc ? rc : get_uint(c, me, "port", 9444, 0, 65535, &m->me_port, err, errlen);
	rc = rc ? rc : get_path(c, me, "me", "cert", "tls/server.crt", d, &m->me_cert, err, errlen);
	rc = rc ? rc : get_path(c, me, "me", "key", "tls/server.key", d, &m->me_key, err, errlen);
	rc = rc ? rc : get_path(c, me, "me", "client_ca", "tls/ca.crt", d, &m->me_client_ca, err, errlen);
	rc = rc ? rc : get_path(c, me, "me", "web_root", MSSP_WEB_ROOT, d, &m->me_web_root, err, errlen);
	if (!rc && me >= 0 && cfg_get(c, me, "origin")) {
		/* the console's origins as browsers send them, when the ME is
		 * reached by a name (behind a proxy, or listening on 0.0.0.0) */
		const char *o = cfg_get(c, me, "origin");
		if (strlen(o) > 512 || strncmp(o, "https://", 8) != 0 || strpbrk(o, "\t\"'<>"))
			rc = errf(err, errlen, "[me] origin: https://HOST[:PORT] ..., space separated");
		else if (!(m->me_origin = strdup(o)))
			rc = errf(err, errlen, "out of memory");
	}
	/* the publication listener (OCSP, CRL): plain HTTP; on an address
	 * other than the loopback only when the operator names it here */
	rc = rc ? rc : get_str(c, me, "me", "pki_listen", "127.0.0.1", &m->pki_listen, err, errlen);
	rc = rc ? rc : get_uint(c, me, "pki_port", 9448, 0, 65535, &m->pki_port, err, errlen);
	m->pki_listen_set = me >= 0 && cfg_get(c, me, "pki_listen") != NULL;
	rc = rc ? rc : get_str(c, adm, "admin", "listen", "127.0.0.1", &m->admin_listen, err, errlen);
	rc = rc ? rc : get_uint(c, adm, "port", 9446, 0, 65535, &m->admin_port, err, errlen);
	rc = rc ? rc : get_path(c, home, "home", "user_ca", "ca", d, &uca, err, errlen);
	if (!rc && asprintf(&m->user_ca_cert, "%s/ca.crt", uca) < 0) {
		m->user_ca_cert = NULL;
		rc = errf(err, errlen, "out of memory");
	}
	free(uca);
	rc = rc ? rc : get_path(c, nt, "notify", "cert", "tls/server.crt", d, &m->notify_cert, err, errlen);
	rc = rc ? rc : get_path(c, nt, "notify", "key", "tls/server.key", d, &m->notify_key, err, errlen);
	rc = rc ? rc : get_path(c, nt, "notify", "ca", "tls/ca.crt", d, &m->notify_ca, err, errlen);
	rc = rc ? rc : get_uint(c, nt, "retries", 5, 0, 20, &m->notify_retries, err, errlen);
	rc = rc ? rc : get_uint(c, nt, "retry_ms", 2000, 100, 600000, &m->notify_retry_ms, err, errlen);
	/* [mesh]: beside the AE by default (its address, its port + 6, the
	 * server certificate); client_ca holds the peers' CAs */
	rc = rc ? rc : get_str(c, mesh, "mesh", "listen", m->ae_listen, &m->mesh_listen, err, errlen);
	if (!rc && (mesh < 0 || !cfg_get(c, mesh, "port")) && m->ae_port + 6 > 65535)
		rc = errf(err, errlen, "[mesh] port: name it ([ae] port + 6 is beyond 65535)");
	rc = rc ? rc : get_uint(c, mesh, "port", m->ae_port ? m->ae_port + 6 : 0, 0, 65535, &m->mesh_port, err, errlen);
	rc = rc ? rc : get_path(c, mesh, "mesh", "cert", "tls/server.crt", d, &m->mesh_cert, err, errlen);
	rc = rc ? rc : get_path(c, mesh, "mesh", "key", "tls/server.key", d, &m->mesh_key, err, errlen);
	rc = rc ? rc : get_path(c, mesh, "mesh", "client_ca", "tls/ca.crt", d, &m->mesh_client_ca, err, errlen);
	if (!rc && m->default_timeout_s > m->max_timeout_s)
		rc = errf(err, errlen, "[ae] default_timeout_s exceeds max_timeout_s");
	if (!rc) {
		m->aps = load_aps(c, err, errlen);
		if (!m->aps)
			rc = -1;
	}
	cfg_free(c);
	if (rc) {
		conf_free(m);
		return NULL;
	}
	return m;
}

struct conf_aps *
conf_load_aps(const char *data_dir, char *err, size_t errlen)
{
	struct cfg *c = load_file(data_dir, err, errlen);
	if (!c)
		return NULL;
	struct conf_aps *t = load_aps(c, err, errlen);
	cfg_free(c);
	return t;
}

void
conf_free(struct mssp_conf *m)
{
	if (!m)
		return;
	char **strs[] = {&m->data_dir, &m->node_id, &m->store_uri, &m->ae_listen, &m->ae_cert,
			 &m->ae_key, &m->ae_client_ca, &m->mssp_id, &m->afe_listen, &m->afe_cert,
			 &m->afe_key, &m->push, &m->push_addr, &m->admin_listen,
			 &m->user_ca_cert, &m->notify_cert, &m->notify_key, &m->notify_ca,
			 &m->me_listen, &m->me_cert, &m->me_key, &m->me_client_ca,
			 &m->me_web_root, &m->me_origin, &m->pki_listen, &m->mesh_listen,
			 &m->mesh_cert, &m->mesh_key, &m->mesh_client_ca};
	for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
		free(*strs[i]);
	conf_aps_put(m->aps);
	free(m);
}

static pthread_mutex_t aps_lock = PTHREAD_MUTEX_INITIALIZER;
static struct conf_aps *aps_current;

void
conf_aps_swap(struct conf_aps *t)
{
	pthread_mutex_lock(&aps_lock);
	struct conf_aps *old = aps_current;
	aps_current = t;
	pthread_mutex_unlock(&aps_lock);
	conf_aps_put(old);
}

struct conf_aps *
conf_aps_get(void)
{
	pthread_mutex_lock(&aps_lock);
	struct conf_aps *t = aps_current;
	if (t)
		t->refs++;
	pthread_mutex_unlock(&aps_lock);
	return t;
}

void
conf_aps_put(struct conf_aps *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&aps_lock);
	unsigned left = --t->refs;
	pthread_mutex_unlock(&aps_lock);
	if (left == 0)
		aps_free(t);
}

const struct conf_ap *
conf_ap_by_fp(const struct conf_aps *t, const uint8_t fp[TLS_FP_LEN])
{
	const struct conf_ap *found = NULL;
	if (!t || !fp)
		return NULL;
	/* every entry is compared, in constant time, whatever matches */
	for (size_t i = 0; i < t->naps; i++)
		for (size_t j = 0; j < t->aps[i].ca_nfps; j++)
			if (CRYPTO_memcmp(t->aps[i].ca_fps[j], fp, TLS_FP_LEN) == 0 && !found)
				found = &t->aps[i];
	return found;
}

/* One allowed notification target: "https://HOST[:PORT|:*][/PATH]".
 * Parsed strictly here (at load) so that matching compares parts, never
 * raw prefixes: "https://ap.example" must not allow
 * "https://ap.example.evil/" nor "https://ap.example@evil/". */
struct notify_rule {
	char host[256];
	long port;	/* -1: any */
	char path[MSSP_STORE_MAX_URL + 1];
};

static int
notify_rule_parse(const char *s, struct notify_rule *r)
{
	memset(r, 0, sizeof *r);
	if (strncmp(s, "https://", 8) != 0)
		return -1;
	const char *h = s + 8, *e = h;
	while (*e && *e != ':' && *e != '/')
		e++;
	if (e == h || (size_t)(e - h) >= sizeof r->host)
		return -1;
	for (const char *p = h; p < e; p++)
		if (!(isalnum((unsigned char)*p) || *p == '.' || *p == '-'))
			return -1;
	memcpy(r->host, h, (size_t)(e - h));
	r->port = 443;
	if (*e == ':') {
		e++;
		if (*e == '*') {
			r->port = -1;
			e++;
		} else {
			char *end;
			r->port = strtol(e, &end, 10);
			if (end == e || r->port < 1 || r->port > 65535)
				return -1;
			e = end;
		}
	}
	if (*e && *e != '/')
		return -1;
	snprintf(r->path, sizeof r->path, "%s", *e ? e : "/");
	return 0;
}

bool
conf_notify_rule_valid(const char *rule)
{
	struct notify_rule r;
	return notify_rule_parse(rule, &r) == 0;
}

bool
conf_ap_notify_allowed(const struct conf_ap *ap, const char *url)
{
	bool ok = false;
	char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL, *pw = NULL, *path = NULL;
	CURLU *u = curl_url();
	if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
		goto out;
	/* no credentials in a callback URL, ever */
	if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PASSWORD, &pw, 0) == CURLUE_OK)
		goto out;
	if (strcmp(scheme, "https") != 0)
		goto out;
	long pnum = strtol(port, NULL, 10);
	for (size_t i = 0; i < ap->ca_nnotify && !ok; i++) {
		struct notify_rule r;
		if (notify_rule_parse(ap->ca_notify[i], &r) != 0)
			continue;
		if (strcasecmp(r.host, host) != 0 || (r.port >= 0 && r.port != pnum))
			continue;
		size_t n = strlen(r.path);
		/* a path prefix ends on a segment boundary */
		if (strncmp(path, r.path, n) == 0 &&
		    (r.path[n - 1] == '/' || path[n] == 0 || path[n] == '/'))
			ok = true;
	}
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(user);
	curl_free(pw);
	curl_free(path);
	curl_url_cleanup(u);
	return ok;
}

/* ---- Roles ---------------------------------------------------------- */

static const struct {
	const char *name;
	unsigned bit;
} role_names[] = {
	{"ae", CONF_ROLE_AE},	  {"home", CONF_ROLE_HOME}, {"afe", CONF_ROLE_AFE},
	{"me", CONF_ROLE_ME},	  {"admin", CONF_ROLE_ADMIN}, {"mesh", CONF_ROLE_MESH},
};

int
conf_roles_parse(const char *text, unsigned *out)
{
	unsigned roles = 0;
	char buf[128];
	if (!text || strlen(text) >= sizeof buf)
		return -1;
	snprintf(buf, sizeof buf, "%s", text);
	char *save = NULL;
	for (char *t = strtok_r(buf, " ,", &save); t; t = strtok_r(NULL, " ,", &save)) {
		if (strcmp(t, "all") == 0) {
			roles |= CONF_ROLE_ALL;
			continue;
		}
		size_t i;
		for (i = 0; i < sizeof role_names / sizeof role_names[0]; i++)
			if (strcmp(t, role_names[i].name) == 0)
				break;
		if (i == sizeof role_names / sizeof role_names[0])
			return -1;
		roles |= role_names[i].bit;
	}
	if (!roles)
		return -1;
	/* HomeMSSP talks to devices only through the AFE, and the AFE has
	 * nothing to relay without HomeMSSP; the AE routes to HomeMSSP in
	 * process: the three travel together (architecture.md). */
	if ((roles & (CONF_ROLE_AE | CONF_ROLE_HOME | CONF_ROLE_AFE)) &&
	    (roles & (CONF_ROLE_AE | CONF_ROLE_HOME | CONF_ROLE_AFE)) !=
		    (CONF_ROLE_AE | CONF_ROLE_HOME | CONF_ROLE_AFE))
		return -1;
	/* the mesh listener is the AE's other door: it runs beside it */
	if ((roles & CONF_ROLE_MESH) && !(roles & CONF_ROLE_AE))
		return -1;
	*out = roles;
	return 0;
}

/* ---- The AP table as JSON (store records, roles/reg.c) ----------------- */

static int
hex_decode_fixed(const char *h, uint8_t *out, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		int hi = hex_digit((unsigned char)h[2 * k]), lo = hex_digit((unsigned char)h[2 * k + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[k] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static char *
json_strdup(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));
	return v ? strdup(v) : NULL;
}

static int
strings_from_json(json_t *arr, char ***out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (!arr)
		return 0;
	if (!json_is_array(arr) || json_array_size(arr) > MSSP_CONF_MAX_LIST)
		return -1;
	size_t cnt = json_array_size(arr);
	if (cnt == 0)
		return 0;
	char **v = calloc(cnt, sizeof *v);
	if (!v)
		return -1;
	for (size_t i = 0; i < cnt; i++) {
		const char *s = json_string_value(json_array_get(arr, i));
		if (!s || !(v[i] = strdup(s))) {
			free_list(v, i);
			return -1;
		}
	}
	*out = v;
	*n = cnt;
	return 0;
}

/* "cert basic apikey" -> enum conf_rest_auth bits; NULL: cert only. */
int
conf_rest_auth_parse(const char *text, unsigned *out)
{
	unsigned bits = 0;
	char buf[64];
	if (!text) {
		*out = CONF_REST_CERT;
		return 0;
	}
	if (strlen(text) >= sizeof buf)
		return -1;
	snprintf(buf, sizeof buf, "%s", text);
	char *save = NULL;
	for (char *t = strtok_r(buf, " ,", &save); t; t = strtok_r(NULL, " ,", &save)) {
		if (strcmp(t, "cert") == 0)
			bits |= CONF_REST_CERT;
		else if (strcmp(t, "basic") == 0)
			bits |= CONF_REST_BASIC;
		else if (strcmp(t, "apikey") == 0)
			bits |= CONF_REST_APIKEY;
		else
			return -1;
	}
	if (!bits)
		return -1;
	*out = bits;
	return 0;
}

/* The REST credentials of an AP record (roles/reg.c writes them:
 * "rest_user", "rest_password_hash" = hex(salt) ":" hex(SHA-256), and
 * "api_key"). */
static int
ap_rest_from_json(json_t *o, struct conf_ap *a, char *err, size_t errlen)
{
	json_t *u = json_object_get(o, "rest_user"), *h = json_object_get(o, "rest_password_hash"),
	       *k = json_object_get(o, "api_key");
	if (u && (!json_is_string(u) || !(a->ca_rest_user = json_strdup(o, "rest_user"))))
		return errf(err, errlen, "AP record: bad rest_user");
	if (h) {
		const char *v = json_string_value(h);
		if (!v || strlen(v) != 2 * MSSP_REST_SALT_LEN + 1 + 2 * MSSP_REST_HASH_LEN ||
		    v[2 * MSSP_REST_SALT_LEN] != ':' ||
		    hex_decode_fixed(v, a->ca_rest_salt, MSSP_REST_SALT_LEN) != 0 ||
		    hex_decode_fixed(v + 2 * MSSP_REST_SALT_LEN + 1, a->ca_rest_hash,
				     MSSP_REST_HASH_LEN) != 0)
			return errf(err, errlen, "AP record: bad rest_password_hash");
		a->ca_has_rest_pw = true;
	}
	if (k) {
		const char *v = json_string_value(k);
		bool ok = v && strlen(v) >= MSSP_REST_MIN_API_KEY &&
			  strlen(v) <= MSSP_REST_MAX_SECRET && (a->ca_api_key = strdup(v));
		/* the table's copy is the one kept (wiped when freed); the
		 * record's, in the caller's tree, is wiped here: the callers
		 * (msspd's AP reload) free the tree right after */
		if (json_is_string(k))
			OPENSSL_cleanse((char *)v, json_string_length(k));
		if (!ok)
			return errf(err, errlen, "AP record: bad api_key");
	}
	return 0;
}

static int
ap_from_json(json_t *o, struct conf_ap *a, char *err, size_t errlen)
{
	if (!json_is_object(o))
		return errf(err, errlen, "AP record is not an object");
	a->ca_id = json_strdup(o, "id");
	if (!a->ca_id || !*a->ca_id || strlen(a->ca_id) > MSSP_STORE_MAX_AP_ID ||
	    strncasecmp(a->ca_id, "mesh:", 5) == 0)
		return errf(err, errlen, "AP record without a valid id");
	a->ca_name = json_strdup(o, "name");
	if (!a->ca_name && !(a->ca_name = strdup(a->ca_id)))
		return errf(err, errlen, "out of memory");
	if (strlen(a->ca_name) > MSSP_APPMSG_MAX_TEXT)
		return errf(err, errlen, "AP name too long");
	if (ap_rest_from_json(o, a, err, errlen) != 0)
		return -1;
	json_t *fps = json_object_get(o, "cert_sha256");
	bool rest_only = a->ca_has_rest_pw || a->ca_api_key;
	if (!json_is_array(fps) || (json_array_size(fps) == 0 && !rest_only) ||
	    json_array_size(fps) > MSSP_CONF_MAX_AP_CERTS)
		return errf(err, errlen, "AP record: 1..%d certificate fingerprints",
			    MSSP_CONF_MAX_AP_CERTS);
	for (size_t i = 0; i < json_array_size(fps); i++) {
		const char *h = json_string_value(json_array_get(fps, i));
		if (!h || strlen(h) != 2 * TLS_FP_LEN)
			return errf(err, errlen, "AP record: bad fingerprint");
		for (size_t k = 0; k < TLS_FP_LEN; k++) {
			int hi = hex_digit((unsigned char)h[2 * k]), lo = hex_digit((unsigned char)h[2 * k + 1]);
			if (hi < 0 || lo < 0)
				return errf(err, errlen, "AP record: bad fingerprint");
			a->ca_fps[i][k] = (uint8_t)(hi << 4 | lo);
		}
	}
	a->ca_nfps = json_array_size(fps);
	json_t *prof = json_object_get(o, "profiles");
	if (!prof || (json_is_array(prof) && json_array_size(prof) == 1 &&
		      json_string_value(json_array_get(prof, 0)) &&
		      strcmp(json_string_value(json_array_get(prof, 0)), "*") == 0))
		a->ca_all_profiles = true;
	else if (strings_from_json(prof, &a->ca_profiles, &a->ca_nprofiles) != 0)
		return errf(err, errlen, "AP record: bad profiles");
	json_t *modes = json_object_get(o, "modes");
	if (!modes) {
		a->ca_modes = CONF_MODE_SYNCH | CONF_MODE_ASYNCH_CS | CONF_MODE_ASYNCH_SS;
	} else {
		if (!json_is_array(modes))
			return errf(err, errlen, "AP record: bad modes");
		for (size_t i = 0; i < json_array_size(modes); i++) {
			const char *m = json_string_value(json_array_get(modes, i));
			if (m && strcmp(m, "synch") == 0)
				a->ca_modes |= CONF_MODE_SYNCH;
			else if (m && strcmp(m, "asynchClientServer") == 0)
				a->ca_modes |= CONF_MODE_ASYNCH_CS;
			else if (m && strcmp(m, "asynchServerServer") == 0)
				a->ca_modes |= CONF_MODE_ASYNCH_SS;
			else
				return errf(err, errlen, "AP record: bad mode");
		}
	}
	if (strings_from_json(json_object_get(o, "notify_urls"), &a->ca_notify, &a->ca_nnotify) != 0)
		return errf(err, errlen, "AP record: bad notify_urls");
	for (size_t i = 0; i < a->ca_nnotify; i++)
		if (!conf_notify_rule_valid(a->ca_notify[i]))
			return errf(err, errlen, "AP record: bad notification URL rule");
	json_t *rate = json_object_get(o, "rate");
	if (rate && (!json_is_integer(rate) || json_integer_value(rate) < 0 ||
		     json_integer_value(rate) > 1000000))
		return errf(err, errlen, "AP record: bad rate");
	a->ca_rate = rate ? (unsigned)json_integer_value(rate) : 0;
	json_t *susp = json_object_get(o, "suspended");
	if (susp && !json_is_boolean(susp))
		return errf(err, errlen, "AP record: bad suspended");
	a->ca_suspended = susp && json_is_true(susp);
	return 0;
}

struct conf_aps *
conf_aps_from_json(json_t *arr, char *err, size_t errlen)
{
	if (!json_is_array(arr) || json_array_size(arr) > MSSP_CONF_MAX_APS) {
		errf(err, errlen, "AP table: not an array of at most %d APs", MSSP_CONF_MAX_APS);
		return NULL;
	}
	struct conf_aps *t = calloc(1, sizeof *t);
	size_t n = json_array_size(arr);
	if (!t || (n && !(t->aps = calloc(n, sizeof *t->aps)))) {
		free(t);
		errf(err, errlen, "out of memory");
		return NULL;
	}
	t->refs = 1;
	for (size_t i = 0; i < n; i++) {
		t->naps++;
		if (ap_from_json(json_array_get(arr, i), &t->aps[i], err, errlen) != 0) {
			aps_free(t);
			return NULL;
		}
	}
	for (size_t i = 0; i < t->naps; i++)
		for (size_t j = i + 1; j < t->naps; j++)
			for (size_t a = 0; a < t->aps[i].ca_nfps; a++)
				for (size_t b = 0; b < t->aps[j].ca_nfps; b++)
					if (memcmp(t->aps[i].ca_fps[a], t->aps[j].ca_fps[b],
						   TLS_FP_LEN) == 0) {
						errf(err, errlen, "one certificate is bound to two APs");
						aps_free(t);
						return NULL;
					}
	return t;
}

json_t *
conf_ap_to_json(const struct conf_ap *a)
{
	json_t *o = json_object(), *fps = json_array(), *prof = json_array(),
	       *modes = json_array(), *urls = json_array();
	if (!o || !fps || !prof || !modes || !urls)
		goto fail;
	for (size_t i = 0; i < a->ca_nfps; i++) {
		char hex[2 * TLS_FP_LEN + 1];
		for (size_t k = 0; k < TLS_FP_LEN; k++)
			snprintf(hex + 2 * k, 3, "%02x", a->ca_fps[i][k]);
		json_array_append_new(fps, json_string(hex));
	}
	if (a->ca_all_profiles)
		json_array_append_new(prof, json_string("*"));
	for (size_t i = 0; i < a->ca_nprofiles; i++)
		json_array_append_new(prof, json_string(a->ca_profiles[i]));
	if (a->ca_modes & CONF_MODE_SYNCH)
		json_array_append_new(modes, json_string("synch"));
	if (a->ca_modes & CONF_MODE_ASYNCH_CS)
		json_array_append_new(modes, json_string("asynchClientServer"));
	if (a->ca_modes & CONF_MODE_ASYNCH_SS)
		json_array_append_new(modes, json_string("asynchServerServer"));
	for (size_t i = 0; i < a->ca_nnotify; i++)
		json_array_append_new(urls, json_string(a->ca_notify[i]));
	json_object_set_new(o, "id", json_string(a->ca_id));
	json_object_set_new(o, "name", json_string(a->ca_name));
	json_object_set_new(o, "cert_sha256", fps);
	json_object_set_new(o, "profiles", prof);
	json_object_set_new(o, "modes", modes);
	json_object_set_new(o, "notify_urls", urls);
	json_object_set_new(o, "rate", json_integer(a->ca_rate));
	json_object_set_new(o, "suspended", json_boolean(a->ca_suspended));
	return o;
fail:
	json_decref(o);
	json_decref(fps);
	json_decref(prof);
	json_decref(modes);
	json_decref(urls);
	return NULL;
}
