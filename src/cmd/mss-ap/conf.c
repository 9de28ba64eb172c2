/*
 * conf.c - mss-ap.conf (docs/internals/datadir.md): one [ap] section read
 * with the strict util/config dialect, so a typo in a key is an error and
 * not a silently ignored setting.  File paths are resolved against the
 * directory of the configuration file, so the demo directory can be moved.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cmd/mss-ap/ap.h"
#include "util/config.h"

static const char *const ap_keys[] = {
	"ap_id", "ap_pwd", "url", "cert", "key", "ca", "user_ca", "notify_listen", "notify_port", NULL,
};

static const struct cfg_section_schema ap_schema[] = {
	{ "ap", false, ap_keys },
};

/* `value` made absolute against `dir` (the file's directory). */
static char *
conf_path(const char *dir, const char *value)
{
	char *s;
	size_t n;

	if (value[0] == '/' || dir[0] == '\0')
		return strdup(value);
	n = strlen(dir) + 1 + strlen(value) + 1;
	if ((s = malloc(n)) != NULL)
		snprintf(s, n, "%s/%s", dir, value);
	return s;
}

static int
conf_str(const struct cfg *cf, int sec, const char *key, const char *dir, bool path, char **out,
	 char *err, size_t errlen)
{
	const char *v = cfg_get(cf, sec, key);

	if (v == NULL || v[0] == '\0') {
		snprintf(err, errlen, "missing key %s in [ap]", key);
		return -1;
	}
	*out = path ? conf_path(dir, v) : strdup(v);
	if (*out == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

int
ap_conf_load(const char *path, struct ap_conf *c, char *err, size_t errlen)
{
	struct cfg_err ce;
	struct cfg *cf;
	char dir[PATH_MAX];
	const char *slash;
	unsigned long port = 0;
	int sec, rc = -1;

	memset(c, 0, sizeof(*c));
	cf = cfg_load(path, ap_schema, sizeof(ap_schema) / sizeof(ap_schema[0]), &ce);
	if (cf == NULL) {
		if (ce.line)
			snprintf(err, errlen, "%s:%u: %s", path, ce.line, ce.msg);
		else
			snprintf(err, errlen, "%s: %s", path, ce.msg);
		return -1;
	}
	slash = strrchr(path, '/');
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if ((size_t)(slash - path) >= sizeof(dir)) {
		snprintf(err, errlen, "%s: path too long", path);
		goto out;
	} else
		snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
	sec = cfg_section_find(cf, "ap", NULL);
	if (sec < 0) {
		snprintf(err, errlen, "%s: no [ap] section", path);
		goto out;
	}
	if (conf_str(cf, sec, "ap_id", dir, false, &c->ac_ap_id, err, errlen) ||
	    conf_str(cf, sec, "ap_pwd", dir, false, &c->ac_ap_pwd, err, errlen) ||
	    conf_str(cf, sec, "url", dir, false, &c->ac_url, err, errlen) ||
	    conf_str(cf, sec, "cert", dir, true, &c->ac_cert, err, errlen) ||
	    conf_str(cf, sec, "key", dir, true, &c->ac_key, err, errlen) ||
	    conf_str(cf, sec, "ca", dir, true, &c->ac_ca, err, errlen) ||
	    conf_str(cf, sec, "user_ca", dir, true, &c->ac_user_ca, err, errlen))
		goto out;
	c->ac_notify_listen = strdup(cfg_get(cf, sec, "notify_listen") ? cfg_get(cf, sec, "notify_listen")
								     : "127.0.0.1");
	if (c->ac_notify_listen == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (cfg_get_uint(cf, sec, "notify_port", 0, 0, 65535, &port, &ce) != 0) {
		snprintf(err, errlen, "%s:%u: %s", path, ce.line, ce.msg);
		goto out;
	}
	c->ac_notify_port = (unsigned)port;
	if (ap_conf_set_url(c, c->ac_url) != 0) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	rc = 0;
out:
	cfg_free(cf);
	if (rc != 0)
		ap_conf_free(c);
	return rc;
}

int
ap_conf_set_url(struct ap_conf *c, const char *url)
{
	char *s = strdup(url);
	size_t n;

	if (s == NULL)
		return -1;
	/* "https://h:p/" and "https://h:p" name the same base */
	n = strlen(s);
	while (n > 0 && s[n - 1] == '/')
		s[--n] = '\0';
	free(c->ac_url); /* may be `url` itself: copied above */
	c->ac_url = s;
	return 0;
}

void
ap_conf_free(struct ap_conf *c)
{
	if (c->ac_ap_pwd != NULL)
		OPENSSL_cleanse(c->ac_ap_pwd, strlen(c->ac_ap_pwd));
	free(c->ac_ap_id);
	free(c->ac_ap_pwd);
	free(c->ac_url);
	free(c->ac_cert);
	free(c->ac_key);
	free(c->ac_ca);
	free(c->ac_user_ca);
	free(c->ac_notify_listen);
	memset(c, 0, sizeof(*c));
}
