/*
 * me.c - msspctl's ME client: every registration and administration
 * operation of the ME's JSON API (docs/internals/me.md) from the command
 * line, for operators, RAs and scripts.
 *
 *   msspctl [--conf FILE | --data-dir DIR [--account NAME]] [--json] COMMAND ...
 *
 * The account's configuration (DIR/admin/<name>.conf, written by msspd
 * init) names the ME URL, the client certificate that authenticates the
 * account, and the CA that verifies the ME.  Output: human-readable
 * tables and "key: value" lines by default, the ME's JSON with --json.
 * Exit status: 0 success (2xx), 1 the ME refused (its error message is
 * printed), 2 usage, 3 the ME could not be reached.
 *
 * Nothing here decides anything: the ME authorizes, validates and audits.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cmd/msspctl/ctl.h"
#include "util/config.h"
#include "util/limits.h"

#include <openssl/crypto.h>

#define ME_EXIT_REFUSED 1
#define ME_EXIT_USAGE 2
#define ME_EXIT_UNREACHABLE 3
#define ME_TIMEOUT_S 150 /* beyond the ME's own deadline (MSSP_ME_PARK_MS) */
#define ME_PATH_MAX 4096

struct mectl {
	char url[1024];
	char cert[ME_PATH_MAX], key[ME_PATH_MAX], ca[ME_PATH_MAX];
	bool json;
	char csrf[2 * MSSP_ME_CSRF_LEN + 1];
};

/* ---- configuration ---------------------------------------------------- */

static const char *const me_conf_keys[] = {"url", "cert", "key", "ca", NULL};
static const struct cfg_section_schema me_conf_schema[] = {{"me", false, me_conf_keys}};

static int
resolve(const char *confpath, const char *v, char *out, size_t cap)
{
	int n;
	if (v[0] == '/') {
		n = snprintf(out, cap, "%s", v);
	} else {
		const char *slash = strrchr(confpath, '/');
		int dl = slash ? (int)(slash - confpath) : 1;
		n = snprintf(out, cap, "%.*s/%s", dl, slash ? confpath : ".", v);
	}
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static int
load_conf(struct mectl *m, const char *path)
{
	struct cfg_err ce;
	struct cfg *c = cfg_load(path, me_conf_schema, 1, &ce);
	if (!c) {
		fprintf(stderr, "msspctl: %s: line %u: %s\n", path, ce.line, ce.msg);
		return -1;
	}
	int sec = cfg_section_find(c, "me", NULL);
	const char *url = sec >= 0 ? cfg_get(c, sec, "url") : NULL;
	const char *cert = sec >= 0 ? cfg_get(c, sec, "cert") : NULL;
	const char *key = sec >= 0 ? cfg_get(c, sec, "key") : NULL;
	const char *ca = sec >= 0 ? cfg_get(c, sec, "ca") : NULL;
	int rc = -1;
	if (!url || !cert || !key || !ca)
		fprintf(stderr, "msspctl: %s: [me] needs url, cert, key and ca\n", path);
	else if (strncmp(url, "https://", 8) != 0 || strlen(url) >= sizeof m->url)
		fprintf(stderr, "msspctl: %s: url must be https://HOST:PORT\n", path);
	else if (resolve(path, cert, m->cert, sizeof m->cert) || resolve(path, key, m->key, sizeof m->key) ||
		 resolve(path, ca, m->ca, sizeof m->ca))
		fprintf(stderr, "msspctl: %s: path too long\n", path);
	else {
		snprintf(m->url, sizeof m->url, "%s", url);
		size_t l = strlen(m->url);
		while (l > 0 && m->url[l - 1] == '/')
			m->url[--l] = '\0';
		rc = 0;
	}
	cfg_free(c);
	return rc;
}

/* ---- HTTP ----------------------------------------------------------------- */

struct body {
	char *p;
	size_t n;
	bool over;
};

static size_t
on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct body *b = arg;
	size_t len = size * nmemb;
	if (b->n + len > MSSP_ME_MAX_RESPONSE) {
		b->over = true;
		return 0;
	}
	char *np = realloc(b->p, b->n + len + 1);
	if (!np)
		return 0;
	b->p = np;
	memcpy(b->p + b->n, ptr, len);
	b->n += len;
	b->p[b->n] = '\0';
	return len;
}

static long session_token(struct mectl *m, json_t **out);

/* One request.  Returns the HTTP status (and *out: the parsed body, or
 * NULL), or -1 when the ME could not be reached (message printed).
 * Every request but GET /session carries the account's CSRF token - the
 * ME refuses reads without it too - fetched from the session on the
 * first request (a refused session is that request's answer). */
static long
http(struct mectl *m, const char *method, const char *path, json_t *body, json_t **out)
{
	char url[2048];
	struct body b = {0};
	long status = -1;
	char *payload = NULL;
	*out = NULL;
	if (strcmp(path, "/session") != 0 && !m->csrf[0]) {
		long st = session_token(m, out);
		if (st != 200)
			return st;
	}
	if (snprintf(url, sizeof url, "%s/api/v1%s", m->url, path) >= (int)sizeof url) {
		fprintf(stderr, "msspctl: request path too long\n");
		return -1;
	}
	CURL *h = curl_easy_init();
	if (!h)
		return -1;
	struct curl_slist *hdr = NULL;
	char csrf[128];
	hdr = curl_slist_append(hdr, "Accept: application/json");
	if (m->csrf[0]) {
		snprintf(csrf, sizeof csrf, "X-MSSP-CSRF: %s", m->csrf);
		hdr = curl_slist_append(hdr, csrf);
	}
	if (strcmp(method, "GET") != 0) {
		hdr = curl_slist_append(hdr, "Content-Type: application/json");
		payload = body ? json_dumps(body, JSON_COMPACT) : strdup("{}");
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload ? payload : "{}");
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_SSLCERT, m->cert);
	curl_easy_setopt(h, CURLOPT_SSLKEY, m->key);
	curl_easy_setopt(h, CURLOPT_CAINFO, m->ca);
	curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(h, CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)ME_TIMEOUT_S);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	CURLcode rc = curl_easy_perform(h);
	if (rc != CURLE_OK) {
		fprintf(stderr, "msspctl: %s: %s\n", m->url,
			b.over ? "answer too large" : curl_easy_strerror(rc));
	} else {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		if (b.n) {
			json_error_t je;
			*out = json_loadb(b.p, b.n, JSON_REJECT_DUPLICATES, &je);
			if (!*out) {
				fprintf(stderr, "msspctl: the ME answered %ld with a body that is not "
						"JSON\n", status);
				status = -1;
			}
		}
	}
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	free(payload);
	free(b.p);
	return status;
}

/* The account's CSRF token into m->csrf (GET /session): 200, or the
 * session's status with *out its body (the caller reports it as the
 * answer to its own request), or -1. */
static long
session_token(struct mectl *m, json_t **out)
{
	json_t *s = NULL;
	long st = http(m, "GET", "/session", NULL, &s);
	if (st < 0)
		return -1;
	const char *t = json_string_value(json_object_get(s, "csrf"));
	if (st != 200) {
		*out = s;
		return st;
	}
	if (!t || strlen(t) >= sizeof m->csrf) {
		fprintf(stderr, "msspctl: the ME's session has no usable CSRF token\n");
		json_decref(s);
		return -1;
	}
	snprintf(m->csrf, sizeof m->csrf, "%s", t);
	json_decref(s);
	return 200;
}

/* ---- output ------------------------------------------------------------ */

static void
print_scalar(FILE *f, json_t *v)
{
	if (json_is_string(v)) {
		/* never let a value move the terminal: controls become '?' */
		for (const char *p = json_string_value(v); *p; p++)
			fputc((unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p, f);
	} else if (json_is_integer(v))
		fprintf(f, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		fprintf(f, "%g", json_real_value(v));
	else if (json_is_true(v))
		fputs("yes", f);
	else if (json_is_false(v))
		fputs("no", f);
	else if (json_is_null(v))
		fputs("-", f);
	else if (json_is_array(v)) {
		size_t i;
		json_t *e;
		bool scalars = true;
		json_array_foreach(v, i, e) scalars &= !json_is_object(e) && !json_is_array(e);
		if (scalars) {
			json_array_foreach(v, i, e)
			{
				if (i)
					fputs(",", f);
				print_scalar(f, e);
			}
		} else
			fprintf(f, "[%zu]", json_array_size(v));
	} else
		fputs("{...}", f);
}

static size_t
scalar_width(json_t *v)
{
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);
	if (!f)
		return 8;
	print_scalar(f, v);
	fclose(f);
	free(s);
	return len;
}

/* An array of objects as a table: the columns are the scalar members of
 * the first object. */
static void
print_table(json_t *arr)
{
	json_t *first = json_array_get(arr, 0);
	const char *cols[32];
	size_t w[32], nc = 0, i;
	const char *k;
	json_t *v;
	if (!json_is_object(first)) {
		json_array_foreach(arr, i, v)
		{
			print_scalar(stdout, v);
			putchar('\n');
		}
		return;
	}
	json_object_foreach(first, k, v)
	{
		if (nc < 32 && !json_is_object(v) &&
		    !(json_is_array(v) && json_array_size(v) && json_is_object(json_array_get(v, 0)))) {
			cols[nc] = k;
			w[nc++] = strlen(k);
		}
	}
	json_array_foreach(arr, i, v) for (size_t c = 0; c < nc; c++)
	{
		size_t sw = scalar_width(json_object_get(v, cols[c]));
		if (sw > w[c])
			w[c] = sw > 60 ? 60 : sw;
	}
	for (size_t c = 0; c < nc; c++)
		printf("%-*s%s", (int)w[c], cols[c], c + 1 < nc ? "  " : "\n");
	json_array_foreach(arr, i, v)
	{
		for (size_t c = 0; c < nc; c++) {
			char *s = NULL;
			size_t len = 0;
			FILE *f = open_memstream(&s, &len);
			if (f) {
				json_t *cell = json_object_get(v, cols[c]);
				if (cell)
					print_scalar(f, cell);
				else
					fputs("-", f);
				fclose(f);
			}
			printf("%-*.*s%s", (int)w[c], (int)w[c], s ? s : "", c + 1 < nc ? "  " : "\n");
			free(s);
		}
	}
}

static void
print_human(json_t *v, int depth)
{
	const char *k;
	json_t *e;
	if (json_is_array(v)) {
		print_table(v);
		return;
	}
	if (!json_is_object(v)) {
		print_scalar(stdout, v);
		putchar('\n');
		return;
	}
	/* scalars first, then the nested lists as tables under a heading */
	json_object_foreach(v, k, e)
	{
		if (json_is_object(e) || (json_is_array(e) && json_array_size(e) &&
					  json_is_object(json_array_get(e, 0))))
			continue;
		printf("%*s%s: ", depth * 2, "", k);
		print_scalar(stdout, e);
		putchar('\n');
	}
	json_object_foreach(v, k, e)
	{
		if (json_is_object(e)) {
			printf("%*s%s:\n", depth * 2, "", k);
			print_human(e, depth + 1);
		} else if (json_is_array(e) && json_array_size(e) &&
			   json_is_object(json_array_get(e, 0))) {
			printf("\n%s:\n", k);
			print_table(e);
		}
	}
}

/* Run a request and print the outcome; the exit status. */
static int
call(struct mectl *m, const char *method, const char *path, json_t *body, json_t **keep)
{
	json_t *out = NULL;
	long st = http(m, method, path, body, &out);
	if (st < 0)
		return ME_EXIT_UNREACHABLE;
	if (st < 200 || st > 299) {
		json_t *err = json_object_get(out, "error");
		const char *msg = json_string_value(json_object_get(err, "message"));
		json_int_t code = json_integer_value(json_object_get(err, "code"));
		if (m->json && out) {
			char *s = json_dumps(out, JSON_INDENT(2) | JSON_SORT_KEYS);
			if (s)
				puts(s);
			free(s);
		}
		fprintf(stderr, "msspctl: refused: HTTP %ld%s%s", st, msg ? ": " : "",
			msg ? msg : "");
		if (code)
			fprintf(stderr, " (code %lld)", (long long)code);
		fputc('\n', stderr);
		json_decref(out);
		return ME_EXIT_REFUSED;
	}
	if (m->json) {
		char *s = out ? json_dumps(out, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
		puts(s ? s : "{}");
		free(s);
	} else {
		if (st == 202 && json_object_get(out, "approval"))
			printf("pending: another administrator must approve (msspctl approval "
			       "approve %s)\n",
			       json_string_value(json_object_get(out, "approval")));
		else if (out)
			print_human(out, 0);
	}
	if (keep)
		*keep = out;
	else
		json_decref(out);
	return 0;
}

/* ---- arguments ------------------------------------------------------------ */

/* Percent-encode a path segment or query value (RFC 3986 unreserved kept;
 * '+' encoded too: in a query it would read as a space). */
static int
seg(const char *in, char *out, size_t cap)
{
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			if (o + 1 >= cap)
				return -1;
			out[o++] = (char)*p;
		} else {
			if (o + 3 >= cap)
				return -1;
			o += (size_t)snprintf(out + o, cap - o, "%%%02X", *p);
		}
	}
	if (o >= cap)
		return -1;
	out[o] = '\0';
	return 0;
}

/* "--name value" options of a command into a JSON object with the
 * option names mapped by `map` ("given-name" -> "given_name").  Options
 * not in `map` are a usage error. */
struct optmap {
	const char *opt;
	const char *field;
	bool integer, list, boolean;
};

static int
opts_to_json(int argc, char **argv, const struct optmap *map, json_t *obj)
{
	for (int i = 0; i < argc; i++) {
		const struct optmap *o = NULL;
		if (strncmp(argv[i], "--", 2) == 0)
			for (o = map; o->opt && strcmp(o->opt, argv[i] + 2) != 0; o++)
				;
		if (!o || !o->opt) {
			fprintf(stderr, "msspctl: unknown argument: %s\n", argv[i]);
			return -1;
		}
		if (o->boolean) {
			json_object_set_new(obj, o->field, json_true());
			continue;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "msspctl: %s needs a value\n", argv[i]);
			return -1;
		}
		const char *v = argv[++i];
		if (o->integer) {
			char *end;
			errno = 0;
			long long n = strtoll(v, &end, 10);
			if (errno || *end || end == v) {
				fprintf(stderr, "msspctl: %s: a number\n", argv[i - 1]);
				return -1;
			}
			json_object_set_new(obj, o->field, json_integer(n));
		} else if (o->list) {
			json_t *arr = json_object_get(obj, o->field);
			if (!arr) {
				arr = json_array();
				json_object_set_new(obj, o->field, arr);
			}
			json_array_append_new(arr, json_string(v));
		} else {
			json_object_set_new(obj, o->field, json_string(v));
		}
	}
	return 0;
}

static json_t *
read_json_file(const char *path)
{
	json_error_t je;
	json_t *j = strcmp(path, "-") == 0 ? json_loadf(stdin, JSON_REJECT_DUPLICATES, &je)
					   : json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		fprintf(stderr, "msspctl: %s: line %d: %s\n", path, je.line, je.text);
	return j;
}

/* SHA-256 of a PEM certificate's DER, for AP bindings and accounts. */
static int
cert_fp_hex(const char *path, char out[65])
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "msspctl: %s: %s\n", path, strerror(errno));
		return -1;
	}
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	unsigned char md[32];
	unsigned mdlen = 0;
	if (!x || !X509_digest(x, EVP_sha256(), md, &mdlen) || mdlen != 32) {
		X509_free(x);
		fprintf(stderr, "msspctl: %s: not a PEM certificate\n", path);
		return -1;
	}
	X509_free(x);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/* ---- commands ------------------------------------------------------------ */

static const struct optmap user_opts[] = {
	{"given-name", "given_name", 0, 0, 0}, {"surname", "surname", 0, 0, 0},
	{"id-number", "id_number", 0, 0, 0},   {"country", "country", 0, 0, 0},
	{"lang", "lang", 0, 0, 0},	       {"name", "name", 0, 0, 0},
	{NULL, NULL, 0, 0, 0},
};

static void
usage_me(FILE *f)
{
	fputs("usage: msspctl [--conf FILE | --data-dir DIR [--account NAME]] [--json] COMMAND\n"
	      "  session | stats\n"
	      "  user list [--q TEXT] [--state active|suspended] [--after MSISDN] [--limit N]\n"
	      "  user show|suspend|resume|delete MSISDN\n"
	      "  user create|update MSISDN [--given-name G] [--surname S] [--id-number N]\n"
	      "                            [--country CC] [--lang L] [--name DISPLAY]\n"
	      "  user activate MSISDN          a one-time activation code for the phone\n"
	      "  user keys MSISDN --profile REGISTRATION_PROFILE [--device ID] [--wait S]\n"
	      "  user unblock MSISDN KEY_ID [--wait S]\n"
	      "  device delete MSISDN DEVICE_ID\n"
	      "  job show JOB_ID [--wait S]\n"
	      "  cert list MSISDN | cert revoke SERIAL [--reason NAME]\n"
	      "  ap list | ap show|suspend|resume|delete AP_ID\n"
	      "  ap create --id AP_ID --name NAME --cert PEM... [--profile URI|*]...\n"
	      "            [--mode MODE]... [--notify RULE]... [--rate N]\n"
	      "  ap update AP_ID [--name N] [--cert PEM]... [--profile URI]... [--mode M]...\n"
	      "            [--notify RULE]... [--rate N]\n"
	      "     (create, update) [--rest-user NAME] [--rest-password-file FILE]\n"
	      "            [--api-key-file FILE]   REST credentials (docs/internals/rest.md)\n"
	      "  profile list signature|registration\n"
	      "  profile put signature URI FILE.json | profile put registration NAME FILE.json\n"
	      "  account list | account create NAME --role admin|ra|auditor --cert PEM\n"
	      "  account delete NAME\n"
	      "  approval list | approval approve|reject ID\n"
	      "  audit list [--after SEQ] [--limit N] | audit verify (remote; offline:\n"
	      "        msspctl audit verify --data-dir DIR)\n"
	      "  keys scan                     re-check every registered key\n"
	      "  peer list | peer get|delete MSSP_ID   mesh peers (create, delete: dual)\n"
	      "  peer put MSSP_ID --url URL --cert PEM [--cert PEM]... --ca-file PATH\n"
	      "           [--name N] [--profiles URI,...|*] [--map LOCAL=PEER]...\n"
	      "           [--rate N] [--suspend|--resume]   (update: only what is given)\n"
	      "  route list | route put PREFIX --peer MSSP_ID [--exact] | route delete PREFIX\n",
	      f);
}

static int
need(int argc, int n)
{
	if (argc < n) {
		usage_me(stderr);
		return -1;
	}
	return 0;
}

/* Poll a job until it is done, failed or expired, or `secs` pass. */
static int
wait_job(struct mectl *m, const char *id, unsigned secs)
{
	char path[256], s[128];
	if (seg(id, s, sizeof s) != 0)
		return ME_EXIT_USAGE;
	snprintf(path, sizeof path, "/jobs/%s", s);
	time_t end = time(NULL) + secs;
	for (;;) {
		json_t *out = NULL;
		long st = http(m, "GET", path, NULL, &out);
		if (st != 200) {
			json_decref(out);
			return st < 0 ? ME_EXIT_UNREACHABLE : ME_EXIT_REFUSED;
		}
		const char *state = json_string_value(json_object_get(out, "state"));
		if (state && (strcmp(state, "done") == 0 || strcmp(state, "failed") == 0 ||
			      strcmp(state, "expired") == 0)) {
			if (!m->json)
				printf("job %s: %s\n", id, state);
			int rc = strcmp(state, "done") == 0 ? 0 : ME_EXIT_REFUSED;
			if (rc && !m->json) {
				const char *d = json_string_value(json_object_get(out, "detail"));
				fprintf(stderr, "msspctl: job %s %s%s%s\n", id, state, d ? ": " : "",
					d ? d : "");
			}
			json_decref(out);
			return rc;
		}
		json_decref(out);
		if (time(NULL) >= end) {
			fprintf(stderr, "msspctl: job %s not finished after %u s (%s)\n", id, secs,
				state ? state : "?");
			return ME_EXIT_REFUSED;
		}
		usleep(300 * 1000);
	}
}

static int
parse_wait(int *argc, char **argv, unsigned *secs)
{
	for (int i = 0; i < *argc; i++) {
		if (strcmp(argv[i], "--wait") == 0) {
			if (i + 1 >= *argc)
				return -1;
			*secs = (unsigned)strtoul(argv[i + 1], NULL, 10);
			for (int j = i; j + 2 < *argc + 0; j++)
				argv[j] = argv[j + 2];
			*argc -= 2;
			return 0;
		}
	}
	return 0;
}

static int
cmd_user(struct mectl *m, int argc, char **argv)
{
	char path[512], ms[128], k[256];
	const char *verb = argv[0];
	json_t *body = NULL;
	int rc;
	if (strcmp(verb, "list") == 0) {
		static const struct optmap o[] = {{"q", "q", 0, 0, 0}, {"state", "state", 0, 0, 0},
						  {"after", "after", 0, 0, 0}, {"limit", "limit", 0, 0, 0},
						  {NULL, NULL, 0, 0, 0}};
		json_t *q = json_object();
		if (opts_to_json(argc - 1, argv + 1, o, q) != 0) {
			json_decref(q);
			return ME_EXIT_USAGE;
		}
		size_t off = (size_t)snprintf(path, sizeof path, "/users");
		const char *key;
		json_t *v;
		char sep = '?';
		json_object_foreach(q, key, v)
		{
			char e[300];
			if (seg(json_string_value(v), e, sizeof e) != 0 ||
			    off + strlen(key) + strlen(e) + 3 >= sizeof path) {
				json_decref(q);
				return ME_EXIT_USAGE;
			}
			off += (size_t)snprintf(path + off, sizeof path - off, "%c%s=%s", sep, key, e);
			sep = '&';
		}
		json_decref(q);
		return call(m, "GET", path, NULL, NULL);
	}
	if (need(argc, 2) || seg(argv[1], ms, sizeof ms) != 0)
		return ME_EXIT_USAGE;
	if (strcmp(verb, "show") == 0) {
		snprintf(path, sizeof path, "/users/%s", ms);
		return call(m, "GET", path, NULL, NULL);
	}
	if (strcmp(verb, "create") == 0 || strcmp(verb, "update") == 0) {
		body = json_object();
		if (opts_to_json(argc - 2, argv + 2, user_opts, body) != 0) {
			json_decref(body);
			return ME_EXIT_USAGE;
		}
		if (verb[0] == 'c') {
			json_object_set_new(body, "msisdn", json_string(argv[1]));
			rc = call(m, "POST", "/users", body, NULL);
		} else {
			snprintf(path, sizeof path, "/users/%s", ms);
			rc = call(m, "PUT", path, body, NULL);
		}
		json_decref(body);
		return rc;
	}
	if (strcmp(verb, "suspend") == 0 || strcmp(verb, "resume") == 0 ||
	    strcmp(verb, "activate") == 0) {
		snprintf(path, sizeof path, "/users/%s/%s", ms,
			 verb[0] == 'a' ? "activation" : verb);
		return call(m, "POST", path, NULL, NULL);
	}
	if (strcmp(verb, "delete") == 0) {
		snprintf(path, sizeof path, "/users/%s", ms);
		return call(m, "DELETE", path, NULL, NULL);
	}
	if (strcmp(verb, "keys") == 0 || strcmp(verb, "unblock") == 0) {
		unsigned secs = 0;
		if (parse_wait(&argc, argv, &secs) != 0)
			return ME_EXIT_USAGE;
		json_t *out = NULL;
		if (verb[0] == 'k') {
			static const struct optmap o[] = {
				{"profile", "registration_profile", 0, 0, 0},
				{"device", "device", 0, 0, 0}, {NULL, NULL, 0, 0, 0}};
			body = json_object();
			if (opts_to_json(argc - 2, argv + 2, o, body) != 0) {
				json_decref(body);
				return ME_EXIT_USAGE;
			}
			snprintf(path, sizeof path, "/users/%s/keys", ms);
		} else {
			if (need(argc, 3) || seg(argv[2], k, sizeof k) != 0)
				return ME_EXIT_USAGE;
			snprintf(path, sizeof path, "/users/%s/keys/%s/unblock", ms, k);
		}
		rc = call(m, "POST", path, body, secs ? &out : NULL);
		json_decref(body);
		if (rc == 0 && secs) {
			json_t *jobs = json_object_get(out, "jobs");
			size_t i;
			json_t *j;
			if (json_is_array(jobs)) {
				json_array_foreach(jobs, i, j)
				{
					const char *id = json_string_value(json_object_get(j, "job"));
					int r = id ? wait_job(m, id, secs) : ME_EXIT_REFUSED;
					if (r)
						rc = r;
				}
			} else {
				const char *id = json_string_value(json_object_get(out, "job"));
				rc = id ? wait_job(m, id, secs) : ME_EXIT_REFUSED;
			}
		}
		json_decref(out);
		return rc;
	}
	usage_me(stderr);
	return ME_EXIT_USAGE;
}

static int
ap_body(int argc, char **argv, json_t *body)
{
	static const struct optmap o[] = {
		{"id", "id", 0, 0, 0},		 {"name", "name", 0, 0, 0},
		{"cert", "cert_sha256", 0, 1, 0}, {"profile", "profiles", 0, 1, 0},
		{"mode", "modes", 0, 1, 0},	 {"notify", "notify_urls", 0, 1, 0},
		{"rate", "rate", 1, 0, 0},
		/* REST credentials (rest.md): secrets from files, never argv */
		{"rest-user", "rest_user", 0, 0, 0},
		{"rest-password-file", "rest_password", 0, 0, 0},
		{"api-key-file", "api_key", 0, 0, 0},
		{NULL, NULL, 0, 0, 0}};
	if (opts_to_json(argc, argv, o, body) != 0)
		return -1;
	static const char *const secret_fields[] = {"rest_password", "api_key"};
	for (size_t k = 0; k < 2; k++) {
		json_t *fv = json_object_get(body, secret_fields[k]);
		if (!fv)
			continue;
		char sec[MSSP_REST_MAX_SECRET + 2];
		FILE *sf = fopen(json_string_value(fv), "r");
		size_t sn = sf ? fread(sec, 1, sizeof sec - 1, sf) : 0;
		if (sf)
			fclose(sf);
		while (sn && (sec[sn - 1] == '\n' || sec[sn - 1] == '\r'))
			sn--;
		sec[sn] = 0;
		if (!sf || !sn) {
			fprintf(stderr, "msspctl: %s: cannot read the secret\n",
				json_string_value(fv));
			return -1;
		}
		json_object_set_new(body, secret_fields[k], json_stringn(sec, sn));
		OPENSSL_cleanse(sec, sizeof sec);
	}
	/* --cert takes PEM files: the ME binds their SHA-256 */
	json_t *certs = json_object_get(body, "cert_sha256");
	size_t i;
	json_t *c;
	json_array_foreach(certs, i, c)
	{
		char fp[65];
		if (cert_fp_hex(json_string_value(c), fp) != 0)
			return -1;
		json_array_set_new(certs, i, json_string(fp));
	}
	return 0;
}

static int
cmd_ap(struct mectl *m, int argc, char **argv)
{
	char path[4096], id[3200];
	const char *verb = argv[0];
	int rc;
	if (strcmp(verb, "list") == 0)
		return call(m, "GET", "/aps", NULL, NULL);
	if (strcmp(verb, "create") == 0) {
		json_t *body = json_object();
		rc = ap_body(argc - 1, argv + 1, body) == 0 ? call(m, "POST", "/aps", body, NULL)
							    : ME_EXIT_USAGE;
		json_decref(body);
		return rc;
	}
	if (need(argc, 2) || seg(argv[1], id, sizeof id) != 0)
		return ME_EXIT_USAGE;
	if (strcmp(verb, "show") == 0 || strcmp(verb, "delete") == 0) {
		snprintf(path, sizeof path, "/aps/%s", id);
		return call(m, verb[0] == 's' ? "GET" : "DELETE", path, NULL, NULL);
	}
	if (strcmp(verb, "suspend") == 0 || strcmp(verb, "resume") == 0) {
		snprintf(path, sizeof path, "/aps/%s/%s", id, verb);
		return call(m, "POST", path, NULL, NULL);
	}
	if (strcmp(verb, "update") == 0) {
		json_t *body = json_object();
		snprintf(path, sizeof path, "/aps/%s", id);
		rc = ap_body(argc - 2, argv + 2, body) == 0 ? call(m, "PUT", path, body, NULL)
							    : ME_EXIT_USAGE;
		json_decref(body);
		return rc;
	}
	usage_me(stderr);
	return ME_EXIT_USAGE;
}

/* The body of `peer put` from its options; -1 on a usage error. */
static int
peer_body(int argc, char **argv, json_t *body)
{
	json_t *fps = NULL, *map = NULL;
	for (int i = 0; i < argc; i++) {
		const char *o = argv[i];
		if (strcmp(o, "--suspend") == 0 || strcmp(o, "--resume") == 0) {
			json_object_set_new(body, "suspended", json_boolean(o[2] == 's'));
			continue;
		}
		if (i + 1 >= argc || strncmp(o, "--", 2) != 0) {
			fprintf(stderr, "msspctl: %s: %s\n", o,
				strncmp(o, "--", 2) == 0 ? "needs a value" : "unknown argument");
			return -1;
		}
		const char *v = argv[++i];
		if (strcmp(o, "--url") == 0 || strcmp(o, "--name") == 0) {
			json_object_set_new(body, o + 2, json_string(v));
		} else if (strcmp(o, "--ca-file") == 0) {
			json_object_set_new(body, "ca_file", json_string(v));
		} else if (strcmp(o, "--cert") == 0) {
			/* PEM files: the ME pins their SHA-256 */
			char fp[65];
			if (cert_fp_hex(v, fp) != 0)
				return -1;
			if (!fps) {
				fps = json_array();
				json_object_set_new(body, "cert_sha256", fps);
			}
			json_array_append_new(fps, json_string(fp));
		} else if (strcmp(o, "--profiles") == 0) {
			json_t *arr = json_array();
			char *copy = strdup(v), *save = NULL;
			for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t;
			     t = strtok_r(NULL, ",", &save))
				json_array_append_new(arr, json_string(t));
			free(copy);
			json_object_set_new(body, "profiles", arr);
		} else if (strcmp(o, "--map") == 0) {
			const char *eq = strchr(v, '=');
			if (!eq || eq == v || !eq[1]) {
				fprintf(stderr, "msspctl: --map LOCAL_URI=PEER_URI\n");
				return -1;
			}
			if (!map) {
				map = json_array();
				json_object_set_new(body, "profile_map", map);
			}
			json_array_append_new(map, json_pack("{s:s%, s:s}", "local", v, (size_t)(eq - v),
							     "peer", eq + 1));
		} else if (strcmp(o, "--rate") == 0) {
			char *end;
			errno = 0;
			long long n = strtoll(v, &end, 10);
			if (errno || *end || end == v) {
				fprintf(stderr, "msspctl: --rate: a number\n");
				return -1;
			}
			json_object_set_new(body, "rate", json_integer(n));
		} else {
			fprintf(stderr, "msspctl: unknown argument: %s\n", o);
			return -1;
		}
	}
	return 0;
}

/* msspctl peer ... and msspctl route ... (the mesh, docs/internals/mesh.md) */
static int
cmd_mesh(struct mectl *m, const char *res, int argc, char **argv)
{
	char path[4096], a[3200];
	const char *verb = argv[0];
	bool peer = strcmp(res, "peer") == 0;
	int rc = ME_EXIT_USAGE;
	if (strcmp(verb, "list") == 0 && argc == 1) {
		if (m->json)
			return call(m, "GET", peer ? "/peers" : "/routes", NULL, NULL);
		/* a table with the identifying columns first (the records'
		 * members come sorted by name) */
		static const char *const pcols[] = {"id", "name", "url", "suspended", "rate",
						    "profiles", "cert_sha256", NULL};
		static const char *const rcols[] = {"prefix", "peer", "exact", NULL};
		const char *const *cols = peer ? pcols : rcols;
		json_t *out = NULL, *rows = json_array(), *v;
		size_t i;
		long st = http(m, "GET", peer ? "/peers" : "/routes", NULL, &out);
		if (st != 200) {
			json_decref(out);
			json_decref(rows);
			return call(m, "GET", peer ? "/peers" : "/routes", NULL, NULL);
		}
		json_array_foreach(json_object_get(out, peer ? "peers" : "routes"), i, v)
		{
			json_t *row = json_object();
			for (size_t c = 0; cols[c]; c++) {
				json_t *x = json_object_get(v, cols[c]);
				json_object_set(row, cols[c], x ? x : json_null());
			}
			json_array_append_new(rows, row);
		}
		if (json_array_size(rows))
			print_table(rows);
		else
			printf("no %s\n", peer ? "peers" : "routes");
		json_decref(rows);
		json_decref(out);
		return 0;
	}
	if (argc < 2 || seg(argv[1], a, sizeof a) != 0) {
		usage_me(stderr);
		return ME_EXIT_USAGE;
	}
	snprintf(path, sizeof path, "/%s/%s", peer ? "peers" : "routes", a);
	if (peer && strcmp(verb, "get") == 0 && argc == 2)
		return call(m, "GET", path, NULL, NULL);
	if (strcmp(verb, "delete") == 0 && argc == 2)
		return call(m, "DELETE", path, NULL, NULL);
	if (strcmp(verb, "put") == 0) {
		json_t *body = json_object();
		if (peer) {
			if (peer_body(argc - 2, argv + 2, body) == 0)
				rc = call(m, "PUT", path, body, NULL);
		} else {
			static const struct optmap o[] = {{"peer", "peer", 0, 0, 0},
							  {"exact", "exact", 0, 0, 1},
							  {NULL, NULL, 0, 0, 0}};
			if (opts_to_json(argc - 2, argv + 2, o, body) == 0) {
				if (!json_object_get(body, "exact"))
					json_object_set_new(body, "exact", json_false());
				rc = call(m, "PUT", path, body, NULL);
			}
		}
		json_decref(body);
		return rc;
	}
	usage_me(stderr);
	return ME_EXIT_USAGE;
}

static int
cmd_simple(struct mectl *m, const char *res, int argc, char **argv)
{
	char path[4096], a[3200];
	const char *verb = argv[0];
	if (strcmp(res, "job") == 0 && strcmp(verb, "show") == 0 && argc >= 2) {
		unsigned secs = 0;
		if (parse_wait(&argc, argv, &secs) != 0 || seg(argv[1], a, sizeof a) != 0)
			return ME_EXIT_USAGE;
		if (secs)
			return wait_job(m, argv[1], secs);
		snprintf(path, sizeof path, "/jobs/%s", a);
		return call(m, "GET", path, NULL, NULL);
	}
	if (strcmp(res, "device") == 0 && strcmp(verb, "delete") == 0 && argc == 3) {
		char d[256];
		if (seg(argv[1], a, sizeof a) != 0 || seg(argv[2], d, sizeof d) != 0)
			return ME_EXIT_USAGE;
		snprintf(path, sizeof path, "/users/%s/devices/%s", a, d);
		return call(m, "DELETE", path, NULL, NULL);
	}
	if (strcmp(res, "cert") == 0 && strcmp(verb, "list") == 0 && argc == 2) {
		if (seg(argv[1], a, sizeof a) != 0)
			return ME_EXIT_USAGE;
		snprintf(path, sizeof path, "/certificates?msisdn=%s", a);
		return call(m, "GET", path, NULL, NULL);
	}
	if (strcmp(res, "cert") == 0 && strcmp(verb, "revoke") == 0 && argc >= 2) {
		static const struct optmap o[] = {{"reason", "reason", 0, 0, 0}, {NULL, NULL, 0, 0, 0}};
		json_t *body = json_object();
		int rc = ME_EXIT_USAGE;
		if (seg(argv[1], a, sizeof a) == 0 && opts_to_json(argc - 2, argv + 2, o, body) == 0) {
			if (!json_object_get(body, "reason"))
				json_object_set_new(body, "reason", json_string("unspecified"));
			snprintf(path, sizeof path, "/certificates/%s/revoke", a);
			rc = call(m, "POST", path, body, NULL);
		}
		json_decref(body);
		return rc;
	}
	if (strcmp(res, "profile") == 0 && strcmp(verb, "list") == 0 && argc == 2) {
		if (strcmp(argv[1], "signature") != 0 && strcmp(argv[1], "registration") != 0)
			return ME_EXIT_USAGE;
		snprintf(path, sizeof path, "/profiles/%s", argv[1]);
		return call(m, "GET", path, NULL, NULL);
	}
	if (strcmp(res, "profile") == 0 && strcmp(verb, "put") == 0 && argc == 4) {
		if ((strcmp(argv[1], "signature") != 0 && strcmp(argv[1], "registration") != 0) ||
		    seg(argv[2], a, sizeof a) != 0)
			return ME_EXIT_USAGE;
		json_t *body = read_json_file(argv[3]);
		if (!body)
			return ME_EXIT_USAGE;
		snprintf(path, sizeof path, "/profiles/%s/%s", argv[1], a);
		int rc = call(m, "PUT", path, body, NULL);
		json_decref(body);
		return rc;
	}
	if (strcmp(res, "account") == 0 && strcmp(verb, "list") == 0)
		return call(m, "GET", "/accounts", NULL, NULL);
	if (strcmp(res, "account") == 0 && strcmp(verb, "create") == 0 && argc >= 2) {
		static const struct optmap o[] = {{"role", "role", 0, 0, 0},
						  {"cert", "cert", 0, 0, 0}, {NULL, NULL, 0, 0, 0}};
		json_t *body = json_object();
		int rc = ME_EXIT_USAGE;
		char fp[65];
		if (opts_to_json(argc - 2, argv + 2, o, body) == 0 &&
		    json_object_get(body, "cert") &&
		    cert_fp_hex(json_string_value(json_object_get(body, "cert")), fp) == 0) {
			json_object_del(body, "cert");
			json_object_set_new(body, "cert_sha256", json_string(fp));
			json_object_set_new(body, "name", json_string(argv[1]));
			rc = call(m, "POST", "/accounts", body, NULL);
		}
		json_decref(body);
		return rc;
	}
	if (strcmp(res, "account") == 0 && strcmp(verb, "delete") == 0 && argc == 2) {
		if (seg(argv[1], a, sizeof a) != 0)
			return ME_EXIT_USAGE;
		snprintf(path, sizeof path, "/accounts/%s", a);
		return call(m, "DELETE", path, NULL, NULL);
	}
	if (strcmp(res, "approval") == 0 && strcmp(verb, "list") == 0)
		return call(m, "GET", "/approvals", NULL, NULL);
	if (strcmp(res, "approval") == 0 && argc == 2 &&
	    (strcmp(verb, "approve") == 0 || strcmp(verb, "reject") == 0)) {
		if (seg(argv[1], a, sizeof a) != 0)
			return ME_EXIT_USAGE;
		snprintf(path, sizeof path, "/approvals/%s/%s", a, verb);
		return call(m, "POST", path, NULL, NULL);
	}
	if (strcmp(res, "audit") == 0 && strcmp(verb, "list") == 0) {
		static const struct optmap o[] = {{"after", "after", 0, 0, 0},
						  {"limit", "limit", 0, 0, 0}, {NULL, NULL, 0, 0, 0}};
		json_t *q = json_object();
		int rc = ME_EXIT_USAGE;
		if (opts_to_json(argc - 1, argv + 1, o, q) == 0) {
			const char *after = json_string_value(json_object_get(q, "after"));
			const char *limit = json_string_value(json_object_get(q, "limit"));
			snprintf(path, sizeof path, "/audit?after=%lu&limit=%lu",
				 after ? strtoul(after, NULL, 10) : 0UL,
				 limit ? strtoul(limit, NULL, 10) : (unsigned long)MSSP_ME_LIST_DEFAULT);
			rc = call(m, "GET", path, NULL, NULL);
		}
		json_decref(q);
		return rc;
	}
	if (strcmp(res, "audit") == 0 && strcmp(verb, "verify") == 0) {
		json_t *out = NULL;
		int rc = call(m, "GET", "/audit/verify", NULL, &out);
		if (rc == 0 && !json_is_true(json_object_get(out, "ok")))
			rc = ME_EXIT_REFUSED;
		json_decref(out);
		return rc;
	}
	if (strcmp(res, "keys") == 0 && strcmp(verb, "scan") == 0)
		return call(m, "POST", "/keys/scan", NULL, NULL);
	usage_me(stderr);
	return ME_EXIT_USAGE;
}

int
ctl_me(int argc, char **argv)
{
	struct mectl m;
	const char *conf = getenv("MSSPCTL_CONF"), *dir = NULL, *account = "admin";
	char confbuf[ME_PATH_MAX];
	int i = 1;
	memset(&m, 0, sizeof m);
	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--json") == 0)
			m.json = true;
		else if (strcmp(argv[i], "--conf") == 0 && i + 1 < argc)
			conf = argv[++i];
		else if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "--account") == 0 && i + 1 < argc)
			account = argv[++i];
		else if (strcmp(argv[i], "--help") == 0) {
			usage_me(stdout);
			return 0;
		} else {
			usage_me(stderr);
			return ME_EXIT_USAGE;
		}
	}
	if (dir) {
		/* an account name is a file name under DIR/admin: no paths */
		if (strpbrk(account, "/\\") || account[0] == '.' ||
		    snprintf(confbuf, sizeof confbuf, "%s/admin/%s.conf", dir, account) >=
			    (int)sizeof confbuf) {
			fprintf(stderr, "msspctl: bad --account\n");
			return ME_EXIT_USAGE;
		}
		conf = confbuf;
	}
	if (!conf) {
		fprintf(stderr, "msspctl: which ME? --conf FILE, --data-dir DIR [--account NAME], "
				"or MSSPCTL_CONF\n");
		return ME_EXIT_USAGE;
	}
	if (i >= argc) {
		usage_me(stderr);
		return ME_EXIT_USAGE;
	}
	if (load_conf(&m, conf) != 0)
		return ME_EXIT_USAGE;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	const char *res = argv[i];
	int rc;
	if (strcmp(res, "session") == 0)
		rc = call(&m, "GET", "/session", NULL, NULL);
	else if (strcmp(res, "stats") == 0)
		rc = call(&m, "GET", "/stats", NULL, NULL);
	else if (i + 1 >= argc) {
		usage_me(stderr);
		rc = ME_EXIT_USAGE;
	} else if (strcmp(res, "user") == 0)
		rc = cmd_user(&m, argc - i - 1, argv + i + 1);
	else if (strcmp(res, "ap") == 0)
		rc = cmd_ap(&m, argc - i - 1, argv + i + 1);
	else if (strcmp(res, "peer") == 0 || strcmp(res, "route") == 0)
		rc = cmd_mesh(&m, res, argc - i - 1, argv + i + 1);
	else
		rc = cmd_simple(&m, res, argc - i - 1, argv + i + 1);
	OPENSSL_cleanse(m.csrf, sizeof m.csrf);
	curl_global_cleanup();
	return rc;
}

/* Is this msspctl command line for the ME client? */
bool
ctl_me_wants(int argc, char **argv)
{
	static const char *const res[] = {"session", "stats", "user", "device", "job", "cert",
					  "ap", "account", "approval", "peer", "route", NULL};
	if (argc < 2)
		return false;
	if (strcmp(argv[1], "--conf") == 0 || strcmp(argv[1], "--data-dir") == 0 ||
	    strcmp(argv[1], "--account") == 0 || strcmp(argv[1], "--json") == 0)
		return true;
	for (size_t i = 0; res[i]; i++)
		if (strcmp(argv[1], res[i]) == 0)
			return true;
	/* profile list/put, audit list, keys scan: the ME; profile parse/match
	 * and audit verify/show --data-dir stay offline tools */
	if (strcmp(argv[1], "profile") == 0)
		return argc >= 3 && (strcmp(argv[2], "list") == 0 || strcmp(argv[2], "put") == 0);
	if (strcmp(argv[1], "audit") == 0 || strcmp(argv[1], "keys") == 0)
		return getenv("MSSPCTL_CONF") != NULL;
	return false;
}
