/*
 * app.c - the reference phone app's logic (see app.h; the program around
 * it is src/cmd/mss-phone, the page docs/internals/mss-phone.md).
 */
#include "phone/app.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "mss/appmsg.h"
#include "mss/lex.h"
#include "phone/keystore.h"
#include "pki/sig.h"
#include "util/config.h"

/* What demo user +35847000008 appends to the DTBS before signing: the
 * signature is then valid over other data, which the platform must catch. */
static const char OTHER_SUFFIX[] = " [not what you were shown]";

static int
perr(struct phone_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
perr(struct phone_err *e, const char *fmt, ...)
{
	va_list ap;

	if (e != NULL) {
		va_start(ap, fmt);
		vsnprintf(e->pe_msg, sizeof(e->pe_msg), fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* Whole file into a malloc'ed NUL-terminated buffer, at most `cap` bytes
 * (the caller cleanses it when it holds a secret).  NULL with err. */
static char *
read_small_file(const char *path, size_t cap, size_t *len, struct phone_err *err)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (f == NULL) {
		perr(err, "%s: %s", path, strerror(errno));
		return NULL;
	}
	buf = malloc(cap + 2);
	if (buf == NULL) {
		fclose(f);
		perr(err, "out of memory");
		return NULL;
	}
	n = fread(buf, 1, cap + 1, f);
	if (ferror(f) || n > cap) {
		fclose(f);
		OPENSSL_cleanse(buf, cap + 2);
		free(buf);
		perr(err, "%s: %s", path, n > cap ? "file too large" : "read error");
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

static int
copy_str(char *dst, size_t cap, const char *src, const char *what, struct phone_err *err)
{
	size_t n = strlen(src);

	if (n == 0 || n >= cap)
		return perr(err, "%s: empty or too long", what);
	memcpy(dst, src, n + 1);
	return 0;
}

static bool
numeric_addr(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* ---- phone.conf ---------------------------------------------------------- */

static const char *const phone_keys[] = {
	"afe_addr", "afe_port", "afe_host", "ca", "push_addr", "push_port", NULL,
};
static const struct cfg_section_schema phone_schema[] = {
	{ "phone", false, phone_keys },
};

static int
get_port(const struct cfg *c, int sec, const char *key, bool required, unsigned long min,
	 uint16_t *out, const char *path, struct phone_err *err)
{
	struct cfg_err ce = { 0 };
	unsigned long v;

	if (cfg_get(c, sec, key) == NULL) {
		if (required)
			return perr(err, "%s: [phone] %s missing", path, key);
		*out = 0;
		return 0;
	}
	if (cfg_get_uint(c, sec, key, 0, min, 65535, &v, &ce) != 0)
		return perr(err, "%s:%u: %s", path, ce.line, ce.msg);
	*out = (uint16_t)v;
	return 0;
}

int
phone_conf_load(const char *path, struct phone_conf *out, struct phone_err *err)
{
	struct cfg_err ce = { 0 };
	const char *v, *slash;
	struct cfg *c;
	int sec, rc = -1;
	static const char *const required[] = { "afe_addr", "afe_host", "ca" };

	memset(out, 0, sizeof(*out));
	c = cfg_load(path, phone_schema, 1, &ce);
	if (c == NULL)
		return perr(err, "%s:%u: %s", path, ce.line, ce.msg);
	sec = cfg_section_find(c, "phone", NULL);
	if (sec < 0) {
		perr(err, "%s: no [phone] section", path);
		goto out;
	}
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		if (cfg_get(c, sec, required[i]) == NULL) {
			perr(err, "%s: [phone] %s missing", path, required[i]);
			goto out;
		}
	if (copy_str(out->pc_afe_addr, sizeof(out->pc_afe_addr), cfg_get(c, sec, "afe_addr"),
		     "afe_addr", err) != 0 ||
	    !numeric_addr(out->pc_afe_addr)) {
		perr(err, "%s:%u: afe_addr must be a numeric IPv4 or IPv6 address", path,
		     cfg_line(c, sec, "afe_addr"));
		goto out;
	}
	if (copy_str(out->pc_afe_host, sizeof(out->pc_afe_host), cfg_get(c, sec, "afe_host"),
		     "afe_host", err) != 0)
		goto out;
	v = cfg_get(c, sec, "push_addr");
	if (copy_str(out->pc_push_addr, sizeof(out->pc_push_addr), v ? v : "127.0.0.1",
		     "push_addr", err) != 0 ||
	    !numeric_addr(out->pc_push_addr)) {
		perr(err, "%s:%u: push_addr must be a numeric IPv4 or IPv6 address", path,
		     cfg_line(c, sec, "push_addr"));
		goto out;
	}
	if (get_port(c, sec, "afe_port", true, 1, &out->pc_afe_port, path, err) != 0 ||
	    get_port(c, sec, "push_port", false, 0, &out->pc_push_port, path, err) != 0)
		goto out;
	/* The CA path is relative to phone.conf's directory, so that the data
	 * directory can move as a whole. */
	v = cfg_get(c, sec, "ca");
	slash = strrchr(path, '/');
	if (v[0] == '/' || slash == NULL) {
		if (copy_str(out->pc_ca, sizeof(out->pc_ca), v, "ca", err) != 0)
			goto out;
	} else {
		int n = snprintf(out->pc_ca, sizeof(out->pc_ca), "%.*s/%s", (int)(slash - path),
				 path, v);

		if (n < 0 || (size_t)n >= sizeof(out->pc_ca) || v[0] == '\0') {
			perr(err, "%s: ca: empty or too long", path);
			goto out;
		}
	}
	rc = 0;
out:
	cfg_free(c);
	return rc;
}

/* ---- device.conf --------------------------------------------------------- */

static const char *const device_keys[] = { "id", "msisdn", "channel_key", "pin", "puk",
					    "demo_action", NULL };
static const struct cfg_section_schema device_schema[] = {
	{ "device", false, device_keys },
};

/* The keystore's device id alphabet (keystore.h ks_create), which e2e.c
 * also requires (the id goes between NUL separators). */
static bool
id_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > MSSP_KEYSTORE_MAX_ID)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      strchr("._:+@-", c) != NULL))
			return false;
	}
	return true;
}

static bool
digits(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s);

	if (n < min || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

int
phone_device_conf_parse(const char *text, size_t len, struct phone_device_conf *out,
			struct phone_err *err)
{
	struct cfg_err ce = { 0 };
	const char *id, *msisdn, *key, *pin, *puk, *demo;
	unsigned char kbuf[E2E_KEY_LEN + 1];
	struct cfg *c;
	long klen;
	int sec, rc = -1;

	memset(out, 0, sizeof(*out));
	c = cfg_parse(text, len, device_schema, 1, &ce);
	if (c == NULL)
		return perr(err, "device.conf:%u: %s", ce.line, ce.msg);
	sec = cfg_section_find(c, "device", NULL);
	if (sec < 0) {
		perr(err, "device.conf: no [device] section");
		goto out;
	}
	id = cfg_get(c, sec, "id");
	msisdn = cfg_get(c, sec, "msisdn");
	key = cfg_get(c, sec, "channel_key");
	pin = cfg_get(c, sec, "pin");
	puk = cfg_get(c, sec, "puk");
	demo = cfg_get(c, sec, "demo_action");
	if (id == NULL || msisdn == NULL || key == NULL) {
		perr(err, "device.conf: id, msisdn and channel_key are required");
		goto out;
	}
	if (!id_ok(id)) {
		perr(err, "device.conf:%u: bad device id", cfg_line(c, sec, "id"));
		goto out;
	}
	if (msisdn[0] != '+' ||
	    !digits(msisdn + 1, MSSP_MSG_MIN_MSISDN_DIGITS, MSSP_MSG_MAX_MSISDN_DIGITS)) {
		perr(err, "device.conf:%u: msisdn must be + and %d..%d digits",
		     cfg_line(c, sec, "msisdn"), MSSP_MSG_MIN_MSISDN_DIGITS,
		     MSSP_MSG_MAX_MSISDN_DIGITS);
		goto out;
	}
	klen = mss_lex_base64_decode(key, kbuf, sizeof(kbuf));
	if (klen != E2E_KEY_LEN) {
		perr(err, "device.conf:%u: channel_key must be the base64 of %d bytes",
		     cfg_line(c, sec, "channel_key"), E2E_KEY_LEN);
		goto out;
	}
	if (pin != NULL && !digits(pin, MSSP_KEYSTORE_PIN_MIN_LEN, MSSP_KEYSTORE_PIN_MAX_LEN)) {
		perr(err, "device.conf:%u: pin must be %d..%d digits", cfg_line(c, sec, "pin"),
		     MSSP_KEYSTORE_PIN_MIN_LEN, MSSP_KEYSTORE_PIN_MAX_LEN);
		goto out;
	}
	if (puk != NULL && !phone_puk_ok(puk)) {
		perr(err, "device.conf:%u: puk must be %d digits", cfg_line(c, sec, "puk"),
		     MSSP_KEYSTORE_PUK_LEN);
		goto out;
	}
	if (demo != NULL && phone_demo_action_parse(demo) == 0) {
		perr(err, "device.conf:%u: demo_action must be sign, refuse, ignore or sign_other",
		     cfg_line(c, sec, "demo_action"));
		goto out;
	}
	/* Lengths were checked above: these never truncate. */
	out->dc_demo_action = demo != NULL ? phone_demo_action_parse(demo) : 0;
	snprintf(out->dc_id, sizeof(out->dc_id), "%s", id);
	snprintf(out->dc_msisdn, sizeof(out->dc_msisdn), "%s", msisdn);
	memcpy(out->dc_channel_key, kbuf, E2E_KEY_LEN);
	if (pin != NULL)
		snprintf(out->dc_pin, sizeof(out->dc_pin), "%s", pin);
	if (puk != NULL)
		snprintf(out->dc_puk, sizeof(out->dc_puk), "%s", puk);
	rc = 0;
out:
	OPENSSL_cleanse(kbuf, sizeof(kbuf));
	if (rc != 0)
		phone_device_conf_wipe(out);
	/* Note: util/config's arena is freed without being wiped, so copies of
	 * the key text outlive this call in freed heap (reported upstream). */
	cfg_free(c);
	return rc;
}

bool
phone_pin_ok(const char *pin)
{
	return pin != NULL && digits(pin, MSSP_KEYSTORE_PIN_MIN_LEN, MSSP_KEYSTORE_PIN_MAX_LEN);
}

bool
phone_puk_ok(const char *puk)
{
	return puk != NULL && digits(puk, MSSP_KEYSTORE_PUK_LEN, MSSP_KEYSTORE_PUK_LEN);
}

int
phone_device_conf_load(const char *path, struct phone_device_conf *out, struct phone_err *err)
{
	size_t len = 0;
	char *text;
	int rc;

	memset(out, 0, sizeof(*out));
	text = read_small_file(path, MSSP_PHONE_MAX_FILE, &len, err);
	if (text == NULL)
		return -1;
	rc = phone_device_conf_parse(text, len, out, err);
	OPENSSL_cleanse(text, len);
	free(text);
	return rc;
}

void
phone_device_conf_wipe(struct phone_device_conf *c)
{
	if (c != NULL)
		OPENSSL_cleanse(c, sizeof(*c));
}

/* ---- small helpers --------------------------------------------------------- */

int
phone_demo_action_parse(const char *name)
{
	static const struct {
		const char *n;
		enum phone_demo_action a;
	} t[] = { { "sign", PHONE_DEMO_SIGN }, { "refuse", PHONE_DEMO_REFUSE },
		  { "ignore", PHONE_DEMO_IGNORE }, { "sign_other", PHONE_DEMO_SIGN_OTHER } };

	for (size_t i = 0; name != NULL && i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(name, t[i].n) == 0)
			return (int)t[i].a;
	return 0;
}

enum phone_demo_action
phone_demo_action(const char *msisdn)
{
	/* Only the users whose phone behaves differently; 003, 005 and 006
	 * "sign" and let the keystore refuse (402, 403, 404), 007 signs and
	 * HomeMSSP refuses the revoked key: outcomes are never faked here. */
	if (strcmp(msisdn, "+35847000002") == 0)
		return PHONE_DEMO_REFUSE;
	if (strcmp(msisdn, "+35847000004") == 0)
		return PHONE_DEMO_IGNORE;
	if (strcmp(msisdn, "+35847000008") == 0)
		return PHONE_DEMO_SIGN_OTHER;
	return PHONE_DEMO_SIGN;
}

int
phone_answer_status(int ks_status)
{
	switch (ks_status) {
	case 402:
	case 403:
	case 404:
	case 422:
		return ks_status;
	default:
		return 900;
	}
}

unsigned
phone_backoff_next(unsigned cur_ms)
{
	if (cur_ms < MSSP_PHONE_BACKOFF_MIN_MS)
		return MSSP_PHONE_BACKOFF_MIN_MS;
	if (cur_ms >= MSSP_PHONE_BACKOFF_MAX_MS / 2)
		return MSSP_PHONE_BACKOFF_MAX_MS;
	return cur_ms * 2;
}

unsigned
phone_backoff_jitter(unsigned base_ms, uint32_t rnd)
{
	unsigned span = (unsigned)((unsigned long long)base_ms * MSSP_PHONE_JITTER_PCT / 100);

	return base_ms - span + (unsigned)(rnd % (2ull * span + 1));
}

/* Length of the UTF-8 sequence led by c (1 for anything else). */
static size_t
utf8_seq_len(unsigned char c)
{
	if (c >= 0xf0 && c <= 0xf4)
		return 4;
	if (c >= 0xe0)
		return c <= 0xef ? 3 : 1;
	if (c >= 0xc2)
		return 2;
	return 1;
}

void
phone_sanitize(const char *in, char *out, size_t cap, bool token)
{
	size_t o = 0;
	const unsigned char *s = (const unsigned char *)(in ? in : "");

	if (cap == 0)
		return;
	while (*s != '\0' && o + 1 < cap) {
		unsigned char c = *s;

		if (token) {
			out[o++] = (c > 0x20 && c < 0x7f) ? (char)c : '?';
			s++;
			continue;
		}
		if ((c < 0x20 && c != '\n') || c == 0x7f) {
			out[o++] = '?';
			s++;
			continue;
		}
		if (c == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f) { /* C1 control */
			out[o++] = '?';
			s += 2;
			continue;
		}
		size_t n = utf8_seq_len(c), k;

		for (k = 1; k < n && s[k] >= 0x80 && s[k] <= 0xbf; k++)
			;
		if (k < n) { /* broken sequence: one replacement for the lead */
			out[o++] = c < 0x80 ? (char)c : '?';
			s++;
			continue;
		}
		if (o + n >= cap) /* never cut a character in half */
			break;
		memcpy(out + o, s, n);
		o += n;
		s += n;
	}
	out[o] = '\0';
}

/* ---- recent nonces ----------------------------------------------------------- */

struct phone_nonces {
	char **v;	/* ring: v[(head + i) % cap] is the i-th oldest */
	size_t cap;	/* most entries kept                             */
	size_t alloc;	/* slots allocated (grows up to cap)             */
	size_t n;
	size_t head;	/* stays 0 until the ring is full                */
};

struct phone_nonces *
phone_nonces_new(size_t cap)
{
	struct phone_nonces *s;

	if (cap == 0)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (s != NULL)
		s->cap = cap;
	return s;
}

bool
phone_nonces_has(const struct phone_nonces *s, const char *nonce)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i], nonce) == 0)
			return true;
	return false;
}

int
phone_nonces_add(struct phone_nonces *s, const char *nonce)
{
	char *dup;

	if (phone_nonces_has(s, nonce))
		return 0;
	dup = strdup(nonce);
	if (dup == NULL)
		return -1;
	if (s->n < s->cap) {
		if (s->n == s->alloc) {
			size_t na = s->alloc ? s->alloc * 2 : 8;
			char **nv;

			if (na > s->cap)
				na = s->cap;
			nv = realloc(s->v, na * sizeof(*nv));
			if (nv == NULL) {
				free(dup);
				return -1;
			}
			s->v = nv;
			s->alloc = na;
		}
		s->v[s->n++] = dup;
		return 1;
	}
	free(s->v[s->head]);
	s->v[s->head] = dup;
	s->head = (s->head + 1) % s->cap;
	return 1;
}

size_t
phone_nonces_count(const struct phone_nonces *s)
{
	return s->n;
}

void
phone_nonces_free(struct phone_nonces *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	free(s);
}

/* ---- AFE frames ----------------------------------------------------------------- */

/* Decode base64 text into a new buffer of at most `max` bytes. */
static unsigned char *
b64_dup(const char *s, size_t max, size_t *len)
{
	long n = mss_lex_base64_decode(s, NULL, max);
	unsigned char *out;

	if (n <= 0)
		return NULL;
	out = malloc((size_t)n);
	if (out == NULL)
		return NULL;
	if (mss_lex_base64_decode(s, out, (size_t)n) != n) {
		free(out);
		return NULL;
	}
	*len = (size_t)n;
	return out;
}

/* New NUL-terminated base64 text of `len` bytes (free()). */
static char *
b64_enc(const unsigned char *in, size_t len)
{
	size_t cap = 4 * ((len + 2) / 3) + 1;
	char *out;

	if (len > (size_t)INT32_MAX / 2)
		return NULL;
	out = malloc(cap);
	if (out != NULL)
		EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	return out;
}

int
phone_frame_parse(const uint8_t *msg, size_t len, struct phone_frame *f, struct phone_err *err)
{
	json_error_t je;
	json_t *root, *c, *b;
	const char *t;
	int rc = -1;

	memset(f, 0, sizeof(*f));
	if (len > MSSP_WS_MAX_MESSAGE)
		return perr(err, "frame too large");
	root = json_loadb((const char *)msg, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL)
		return perr(err, "frame is not JSON");
	if (!json_is_object(root) || !json_is_string(json_object_get(root, "t"))) {
		perr(err, "frame without a type");
		goto out;
	}
	t = json_string_value(json_object_get(root, "t"));
	if (strcmp(t, "challenge") == 0) {
		long n;

		c = json_object_get(root, "c");
		if (json_object_size(root) != 2 || !json_is_string(c)) {
			perr(err, "bad challenge frame");
			goto out;
		}
		n = mss_lex_base64_decode(json_string_value(c), f->pf_challenge,
					  sizeof(f->pf_challenge));
		if (n != E2E_CHALLENGE_LEN) {
			perr(err, "bad challenge");
			goto out;
		}
		f->pf_type = PHONE_FRAME_CHALLENGE;
	} else if (strcmp(t, "ready") == 0) {
		if (json_object_size(root) != 1) {
			perr(err, "bad ready frame");
			goto out;
		}
		f->pf_type = PHONE_FRAME_READY;
	} else if (strcmp(t, "e2e") == 0) {
		b = json_object_get(root, "b");
		if (json_object_size(root) != 2 || !json_is_string(b)) {
			perr(err, "bad e2e frame");
			goto out;
		}
		f->pf_blob = b64_dup(json_string_value(b), MSSP_WS_MAX_MESSAGE, &f->pf_blob_len);
		if (f->pf_blob == NULL) {
			perr(err, "bad e2e blob encoding");
			goto out;
		}
		f->pf_type = PHONE_FRAME_E2E;
	} else {
		perr(err, "unknown frame type");
		goto out;
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

void
phone_frame_clear(struct phone_frame *f)
{
	if (f == NULL)
		return;
	free(f->pf_blob);
	memset(f, 0, sizeof(*f));
}

/* ---- a device ------------------------------------------------------------------- */

enum dev_state {
	DS_OFFLINE = 0,
	DS_CHALLENGE, /* connected, waiting for the challenge */
	DS_AUTH,      /* auth sent, waiting for ready         */
	DS_READY,     /* ready, waiting for HELLO             */
	DS_SESSION,   /* e2e session up                       */
};

struct pending {
	struct pending *next;
	struct appmsg msg; /* the "sign" message (owns DTBD and DTBS) */
	struct phone_prompt view;
};

struct answer {
	struct answer *next;
	char nonce[MSSP_STORE_MAX_NONCE + 1];
	char *text; /* the answer's JSON, sealed afresh on every send */
	size_t len;
};

/* A keygen or unblock job waiting for the user (po_job). */
struct jpend {
	struct jpend *next;
	struct appmsg msg; /* the job message */
	struct phone_job view;
};

/* A job answer kept until job_ack. */
struct janswer {
	struct janswer *next;
	char job[MSSP_APPMSG_MAX_JOB + 1];
	enum appmsg_type type; /* what it answers: one job id may carry a
				* keygen and then its cert */
	char *text;
	size_t len;
};

struct phone_dev {
	const struct phone_dev_ops *ops;
	void *arg;
	struct phone_device_conf conf;
	EVP_PKEY *dkey;
	struct ks *ks;
	struct phone_nonces *seen;
	enum dev_state st;
	unsigned char app_nonce[E2E_NONCE_LEN];
	struct e2e_session sess;
	struct pending *pending; /* oldest first */
	size_t npending;
	struct answer *answers;	 /* oldest first */
	size_t nanswers;
	struct jpend *jpending;	 /* oldest first */
	size_t njpending;
	struct janswer *janswers; /* oldest first */
	size_t njanswers;
};

static void
warn(struct phone_dev *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
warn(struct phone_dev *d, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (d->ops->po_warn == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	d->ops->po_warn(d->arg, line);
}

/* One event line: "<WHAT> <msisdn> <nonce> [<extra>]", each field made a
 * single printable token (the nonce is the peer's). */
static void
event(struct phone_dev *d, const char *what, const char *nonce, const char *extra)
{
	char tok[MSSP_STORE_MAX_NONCE + 1], tok2[MSSP_KEYSTORE_MAX_ID + 1], line[512];

	phone_sanitize(nonce, tok, sizeof(tok), true);
	if (extra != NULL) {
		phone_sanitize(extra, tok2, sizeof(tok2), true);
		snprintf(line, sizeof(line), "%s %s %s %s", what, d->conf.dc_msisdn, tok, tok2);
	} else {
		snprintf(line, sizeof(line), "%s %s %s", what, d->conf.dc_msisdn, tok);
	}
	d->ops->po_event(d->arg, line);
}

static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return 0; /* never prompt on the terminal: the key is not encrypted */
}

static EVP_PKEY *
load_device_key(const char *path, struct phone_err *err)
{
	EVP_PKEY *k = NULL;
	size_t len = 0;
	char *pem;
	BIO *bio;

	pem = read_small_file(path, MSSP_PHONE_MAX_FILE, &len, err);
	if (pem == NULL)
		return NULL;
	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio != NULL)
		k = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	OPENSSL_cleanse(pem, len);
	free(pem);
	if (k == NULL) {
		perr(err, "%s: not a PEM private key", path);
		return NULL;
	}
	if (!EVP_PKEY_is_a(k, "EC")) {
		EVP_PKEY_free(k);
		perr(err, "%s: the device key must be EC P-256", path);
		return NULL;
	}
	return k;
}

struct phone_dev *
phone_dev_open(const char *dir, const struct phone_dev_ops *ops, void *arg,
	       struct phone_err *err)
{
	struct pki_err pe = { 0 };
	struct phone_dev *d;
	char path[MSSP_PHONE_MAX_PATH + 1];
	const char *base;
	int n;

	d = calloc(1, sizeof(*d));
	if (d == NULL) {
		perr(err, "out of memory");
		return NULL;
	}
	d->ops = ops;
	d->arg = arg;
	n = snprintf(path, sizeof(path), "%s/device.conf", dir);
	if (n < 0 || (size_t)n >= sizeof(path) - 16) {
		perr(err, "%s: path too long", dir);
		goto fail;
	}
	if (phone_device_conf_load(path, &d->conf, err) != 0)
		goto fail;
	/* The directory is named after the MSISDN (datadir.md), and --only
	 * selects by that name: a mismatch is a misplaced file. */
	base = strrchr(dir, '/');
	base = base ? base + 1 : dir;
	if (strcmp(base, d->conf.dc_msisdn) != 0) {
		perr(err, "%s: device.conf is for another MSISDN", dir);
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/device.key", dir);
	d->dkey = load_device_key(path, err);
	if (d->dkey == NULL)
		goto fail;
	snprintf(path, sizeof(path), "%s/keystore", dir);
	d->ks = ks_open(path, &pe);
	if (d->ks == NULL) {
		perr(err, "%s: keystore: %s", dir, pe.detail);
		goto fail;
	}
	d->seen = phone_nonces_new(MSSP_PHONE_MAX_NONCES);
	if (d->seen == NULL) {
		perr(err, "out of memory");
		goto fail;
	}
	return d;
fail:
	phone_dev_free(d);
	return NULL;
}

static void
pending_free(struct pending *p)
{
	appmsg_clear(&p->msg);
	free(p);
}

static void
answer_free(struct answer *a)
{
	free(a->text);
	free(a);
}

static void
jpend_free(struct jpend *p)
{
	appmsg_clear(&p->msg);
	free(p);
}

static void
janswer_free(struct janswer *a)
{
	free(a->text);
	free(a);
}

void
phone_dev_free(struct phone_dev *d)
{
	if (d == NULL)
		return;
	while (d->pending != NULL) {
		struct pending *p = d->pending;

		d->pending = p->next;
		pending_free(p);
	}
	while (d->answers != NULL) {
		struct answer *a = d->answers;

		d->answers = a->next;
		answer_free(a);
	}
	while (d->jpending != NULL) {
		struct jpend *p = d->jpending;

		d->jpending = p->next;
		jpend_free(p);
	}
	while (d->janswers != NULL) {
		struct janswer *a = d->janswers;

		d->janswers = a->next;
		janswer_free(a);
	}
	e2e_session_wipe(&d->sess);
	ks_close(d->ks);
	EVP_PKEY_free(d->dkey);
	phone_nonces_free(d->seen);
	phone_device_conf_wipe(&d->conf);
	OPENSSL_cleanse(d->app_nonce, sizeof(d->app_nonce));
	free(d);
}

const char *
phone_dev_id(const struct phone_dev *d)
{
	return d->conf.dc_id;
}

const char *
phone_dev_msisdn(const struct phone_dev *d)
{
	return d->conf.dc_msisdn;
}

void
phone_dev_connected(struct phone_dev *d)
{
	e2e_session_wipe(&d->sess);
	d->st = DS_CHALLENGE;
}

void
phone_dev_disconnected(struct phone_dev *d)
{
	e2e_session_wipe(&d->sess);
	OPENSSL_cleanse(d->app_nonce, sizeof(d->app_nonce));
	d->st = DS_OFFLINE;
}

bool
phone_dev_is_ready(const struct phone_dev *d)
{
	return d->st >= DS_READY;
}

size_t
phone_dev_pending(const struct phone_dev *d)
{
	return d->npending;
}

size_t
phone_dev_unacked(const struct phone_dev *d)
{
	return d->nanswers;
}

static struct pending *
find_pending(struct phone_dev *d, const char *nonce, struct pending ***link)
{
	struct pending **pp;

	for (pp = &d->pending; *pp != NULL; pp = &(*pp)->next)
		if (strcmp((*pp)->msg.am_nonce, nonce) == 0) {
			if (link)
				*link = pp;
			return *pp;
		}
	return NULL;
}

static struct answer *
find_answer(struct phone_dev *d, const char *nonce, struct answer ***link)
{
	struct answer **pp;

	for (pp = &d->answers; *pp != NULL; pp = &(*pp)->next)
		if (strcmp((*pp)->nonce, nonce) == 0) {
			if (link)
				*link = pp;
			return *pp;
		}
	return NULL;
}

/* Remove the pending prompt `nonce`; tell the UI when `withdraw`. */
static void
drop_pending(struct phone_dev *d, const char *nonce, bool withdraw)
{
	struct pending **link, *p = find_pending(d, nonce, &link);

	if (p == NULL)
		return;
	*link = p->next;
	d->npending--;
	if (withdraw && d->ops->po_withdraw != NULL)
		d->ops->po_withdraw(d->arg, nonce);
	pending_free(p);
}

static void
drop_answer(struct phone_dev *d, const char *nonce)
{
	struct answer **link, *a = find_answer(d, nonce, &link);

	if (a == NULL)
		return;
	*link = a->next;
	d->nanswers--;
	answer_free(a);
}

/* Seal one app message and send it as an e2e frame.  0 or -1 (not sent:
 * no session, or the connection refused it). */
static int
send_plain(struct phone_dev *d, const char *text, size_t len)
{
	struct pki_err pe = { 0 };
	unsigned char *blob = NULL;
	char *b64 = NULL, *frame = NULL;
	size_t blen = 0;
	json_t *o = NULL;
	int rc = -1;

	if (d->st != DS_SESSION)
		return -1;
	blob = malloc(len + E2E_SEAL_OVERHEAD);
	if (blob == NULL)
		goto out;
	if (e2e_seal(&d->sess, (const unsigned char *)text, len, blob, len + E2E_SEAL_OVERHEAD,
		     &blen, &pe) != 0) {
		warn(d, "seal: %s", pe.detail);
		goto out;
	}
	b64 = b64_enc(blob, blen);
	if (b64 == NULL)
		goto out;
	o = json_pack("{s:s,s:s}", "t", "e2e", "b", b64);
	if (o == NULL)
		goto out;
	frame = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (frame == NULL)
		goto out;
	rc = d->ops->po_send(d->arg, frame, strlen(frame));
out:
	free(blob);
	free(b64);
	free(frame);
	json_decref(o);
	return rc;
}

/* Keep an answer until acknowledged, log it, and send it if we can. */
static int
put_answer(struct phone_dev *d, const char *nonce, int status, const unsigned char *cms,
	   size_t cms_len)
{
	struct mss_err me = { 0 };
	struct appmsg m;
	struct answer *a, **tail;
	char st[16];

	memset(&m, 0, sizeof(m));
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return -1;
	m.am_type = APPMSG_ANSWER;
	snprintf(m.am_nonce, sizeof(m.am_nonce), "%s", nonce);
	snprintf(a->nonce, sizeof(a->nonce), "%s", nonce);
	m.am_status = status;
	m.am_cms = (uint8_t *)cms; /* borrowed: not cleared below */
	m.am_cms_len = cms_len;
	if (appmsg_encode(&m, &a->text, &a->len, &me) != 0) {
		warn(d, "answer encode: %s", me.detail);
		free(a);
		return -1;
	}
	/* The oldest unacknowledged answer goes when the list is full: HomeMSSP
	 * acknowledges each one, so this only happens when it is gone for long,
	 * and that transaction has timed out by then. */
	if (d->nanswers >= MSSP_PHONE_MAX_ANSWERS) {
		struct answer *old = d->answers;

		warn(d, "too many unacknowledged answers: forgetting the oldest");
		d->answers = old->next;
		d->nanswers--;
		answer_free(old);
	}
	for (tail = &d->answers; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = a;
	d->nanswers++;
	snprintf(st, sizeof(st), "%d", status);
	event(d, "ANSWER", nonce, st);
	send_plain(d, a->text, a->len);
	return 0;
}

int
phone_dev_refuse(struct phone_dev *d, const char *nonce, int status)
{
	char n[MSSP_STORE_MAX_NONCE + 1];

	/* Only what a phone may answer (appmsg refuses anything else). */
	if (status != 401 && phone_answer_status(status) == 900 && status != 900)
		return -1;
	if (find_pending(d, nonce, NULL) == NULL)
		return -1;
	snprintf(n, sizeof(n), "%s", nonce); /* `nonce` may be the prompt's own */
	drop_pending(d, n, false);
	return put_answer(d, n, status, NULL, 0);
}

int
phone_dev_sign(struct phone_dev *d, const char *nonce, const char *pin, unsigned flags)
{
	struct pki_err pe = { 0 };
	struct pending *p = find_pending(d, nonce, NULL);
	unsigned char *data, *other = NULL, *cms = NULL;
	char n[MSSP_STORE_MAX_NONCE + 1];
	size_t len, cms_len = 0;
	int status, rc;

	if (p == NULL)
		return -1;
	data = p->msg.am_dtbs;
	len = p->msg.am_dtbs_len;
	if ((flags & PHONE_SIGN_OTHER_DATA) != 0 && len > 0) {
		size_t extra = sizeof(OTHER_SUFFIX) - 1;

		other = malloc(len + extra);
		if (other == NULL)
			return -1;
		memcpy(other, data, len);
		if (len + extra <= MSSP_KEYSTORE_MAX_DTBS) {
			memcpy(other + len, OTHER_SUFFIX, extra);
			len += extra;
		} else {
			other[len - 1] ^= 0x01; /* no room: change the last byte */
		}
		data = other;
	}
	rc = ks_sign(d->ks, p->msg.am_key, pin, PKI_SIG_CMS, 0, NID_sha256, data, len, &cms,
		     &cms_len, &pe);
	free(other);
	if (rc == 0) {
		status = 500;
	} else if (pe.status == KS_STATUS_WRONG_PIN && (flags & PHONE_SIGN_RETRY_PIN) != 0) {
		struct ks_group_info gi;

		if (ks_group_info_by_id(d->ks, p->msg.am_key, &gi, NULL) == 0)
			p->view.pp_pin_tries = gi.gi_pin_tries;
		return KS_STATUS_WRONG_PIN;
	} else {
		status = phone_answer_status(pe.status);
		if (status == 900)
			warn(d, "signing for %s failed (%d): %s", d->conf.dc_msisdn, pe.status,
			     pe.detail);
	}
	snprintf(n, sizeof(n), "%s", nonce);
	drop_pending(d, n, false);
	rc = put_answer(d, n, status, cms, cms_len);
	OPENSSL_free(cms);
	return rc;
}

int
phone_dev_demo(struct phone_dev *d, const char *nonce)
{
	struct pending *p = find_pending(d, nonce, NULL);
	struct ks_group_info gi;
	const char *pin = NULL;
	enum phone_demo_action act;

	if (p == NULL)
		return -1;
	act = d->conf.dc_demo_action ? (enum phone_demo_action)d->conf.dc_demo_action
				     : phone_demo_action(d->conf.dc_msisdn);
	switch (act) {
	case PHONE_DEMO_REFUSE:
		return phone_dev_refuse(d, nonce, 401);
	case PHONE_DEMO_IGNORE:
		return 0;
	case PHONE_DEMO_SIGN:
	case PHONE_DEMO_SIGN_OTHER:
		break;
	}
	/* The PIN the demo user "types" when the group has one; an unknown
	 * group gets none and the keystore answers 404 itself. */
	if (ks_group_info_by_id(d->ks, p->msg.am_key, &gi, NULL) == 0 && gi.gi_has_pin)
		pin = d->conf.dc_pin;
	return phone_dev_sign(d, nonce, pin,
			      act == PHONE_DEMO_SIGN_OTHER ? PHONE_SIGN_OTHER_DATA : 0);
}

const struct phone_prompt *
phone_dev_prompt(struct phone_dev *d, const char *nonce)
{
	struct pending *p = find_pending(d, nonce, NULL);

	return p ? &p->view : NULL;
}

/* A "sign" message: a new prompt, or one we have already seen. */
static void
on_sign(struct phone_dev *d, struct appmsg *m)
{
	struct answer *a = find_answer(d, m->am_nonce, NULL);
	struct ks_group_info gi;
	struct pki_err pe = { 0 };
	struct pending *p, **tail;

	if (a != NULL) {
		/* Answered but not acknowledged: HomeMSSP lost it, send it again
		 * (never ask the user twice). */
		send_plain(d, a->text, a->len);
		return;
	}
	if (find_pending(d, m->am_nonce, NULL) != NULL || phone_nonces_has(d->seen, m->am_nonce))
		return;
	if (phone_nonces_add(d->seen, m->am_nonce) < 0) {
		warn(d, "out of memory");
		return;
	}
	if (d->npending >= MSSP_PHONE_MAX_PROMPTS) {
		warn(d, "too many prompts waiting for %s: refusing one", d->conf.dc_msisdn);
		put_answer(d, m->am_nonce, 900, NULL, 0);
		return;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		warn(d, "out of memory");
		return;
	}
	p->msg = *m; /* the prompt takes the heap members */
	memset(m, 0, sizeof(*m));
	p->view.pp_nonce = p->msg.am_nonce;
	p->view.pp_key = p->msg.am_key;
	p->view.pp_ap_name = p->msg.am_ap_name;
	p->view.pp_dtbd = p->msg.am_dtbd ? p->msg.am_dtbd : "";
	p->view.pp_dtbd_mime = p->msg.am_dtbd_mime;
	if (ks_group_info_by_id(d->ks, p->msg.am_key, &gi, &pe) == 0) {
		p->view.pp_has_pin = gi.gi_has_pin;
		p->view.pp_pin_tries = gi.gi_pin_tries;
		p->view.pp_key_status = gi.gi_state == KS_STATE_ACTIVE ? 0 : (int)gi.gi_state;
	} else {
		p->view.pp_key_status = phone_answer_status(pe.status);
	}
	for (tail = &d->pending; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = p;
	d->npending++;
	event(d, "PROMPT", p->msg.am_nonce, p->msg.am_key);
	d->ops->po_prompt(d->arg, &p->view);
}


/* ---- registration jobs ------------------------------------------------------ */

/* "<WHAT> <msisdn> <job> [<a> [<b>]]", each field one printable token. */
static void
job_event(struct phone_dev *d, const char *what, const char *job, const char *a, const char *b)
{
	char tj[MSSP_APPMSG_MAX_JOB + 1], ta[MSSP_KEYSTORE_MAX_ID + 1], tb[MSSP_KEYSTORE_MAX_ID + 1];
	char line[512];

	phone_sanitize(job, tj, sizeof(tj), true);
	phone_sanitize(a, ta, sizeof(ta), true);
	phone_sanitize(b, tb, sizeof(tb), true);
	snprintf(line, sizeof(line), "%s %s %s%s%s%s%s", what, d->conf.dc_msisdn, tj,
		 a ? " " : "", a ? ta : "", b ? " " : "", b ? tb : "");
	d->ops->po_event(d->arg, line);
}

static struct jpend *
find_jpend(struct phone_dev *d, const char *job, struct jpend ***link)
{
	for (struct jpend **pp = &d->jpending; *pp != NULL; pp = &(*pp)->next)
		if (strcmp((*pp)->msg.am_job, job) == 0) {
			if (link)
				*link = pp;
			return *pp;
		}
	return NULL;
}

/* The kept answer to `type` (0: any type) of `job`. */
static struct janswer *
find_janswer(struct phone_dev *d, const char *job, enum appmsg_type type,
	     struct janswer ***link)
{
	for (struct janswer **pp = &d->janswers; *pp != NULL; pp = &(*pp)->next)
		if (strcmp((*pp)->job, job) == 0 && (type == 0 || (*pp)->type == type)) {
			if (link)
				*link = pp;
			return *pp;
		}
	return NULL;
}

static void
drop_jpend(struct phone_dev *d, const char *job, bool withdraw)
{
	char j[MSSP_APPMSG_MAX_JOB + 1];
	struct jpend **link, *p = find_jpend(d, job, &link);

	if (p == NULL)
		return;
	snprintf(j, sizeof(j), "%s", job); /* `job` may be the entry's own */
	*link = p->next;
	d->njpending--;
	jpend_free(p);
	if (withdraw && d->ops->po_withdraw != NULL)
		d->ops->po_withdraw(d->arg, j);
}

/* job_ack: every kept answer of the job goes. */
static void
drop_janswer(struct phone_dev *d, const char *job)
{
	struct janswer **link, *a;

	while ((a = find_janswer(d, job, 0, &link)) != NULL) {
		*link = a->next;
		d->njanswers--;
		janswer_free(a);
	}
}

/* Keep a job answer until job_ack, log it, send it if we can. */
static int
put_job_answer(struct phone_dev *d, const char *job, enum appmsg_type type, int status,
	       const uint8_t *der, size_t der_len)
{
	struct mss_err me = { 0 };
	struct appmsg m;
	struct janswer *a, **tail;
	char st[16];

	memset(&m, 0, sizeof(m));
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return -1;
	m.am_type = APPMSG_JOB_ANSWER;
	snprintf(m.am_job, sizeof(m.am_job), "%s", job);
	snprintf(a->job, sizeof(a->job), "%s", job);
	a->type = type;
	m.am_status = status;
	m.am_der = (uint8_t *)der; /* borrowed: not cleared below */
	m.am_der_len = der_len;
	if (appmsg_encode(&m, &a->text, &a->len, &me) != 0) {
		warn(d, "job answer encode: %s", me.detail);
		free(a);
		return -1;
	}
	/* Like signature answers: HomeMSSP acknowledges each one, so a full
	 * list means it has been gone for long (the job has expired). */
	if (d->njanswers >= MSSP_PHONE_MAX_JOBS) {
		struct janswer *old = d->janswers;

		warn(d, "too many unacknowledged job answers: forgetting the oldest");
		d->janswers = old->next;
		d->njanswers--;
		janswer_free(old);
	}
	for (tail = &d->janswers; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = a;
	d->njanswers++;
	snprintf(st, sizeof(st), "%d", status);
	job_event(d, "JOB_ANSWER", job, st, NULL);
	send_plain(d, a->text, a->len);
	return 0;
}

/* Answer `p` and forget it as pending. */
static int
finish_job(struct phone_dev *d, struct jpend *p, int status, const uint8_t *der, size_t len)
{
	char j[MSSP_APPMSG_MAX_JOB + 1];
	enum appmsg_type t = p->msg.am_type;

	snprintf(j, sizeof(j), "%s", p->msg.am_job);
	drop_jpend(d, j, false);
	return put_job_answer(d, j, t, status, der, len);
}

static enum ks_key_type
key_type(const char *alg)
{
	if (strcmp(alg, "rsa-2048") == 0)
		return KS_KEY_RSA_2048;
	if (strcmp(alg, "rsa-3072") == 0)
		return KS_KEY_RSA_3072;
	return KS_KEY_EC_P256; /* appmsg admits only these three */
}

/* The key generation itself: the group (unless it exists), then a CSR.
 * Returns the answer status (0 with *der), or KS_STATUS_WRONG_PIN when
 * `retry` and an existing group's PIN was wrong with tries left. */
static int
keygen(struct phone_dev *d, const struct appmsg *m, const char *pin, const char *puk,
       bool retry, uint8_t **der, size_t *der_len)
{
	struct pki_err pe = { 0 };
	struct ks_group_info gi;
	const char *profs[MSSP_KEYSTORE_MAX_PROFILES];
	X509_REQ *req;
	unsigned char *p = NULL;
	int n;

	*der = NULL;
	*der_len = 0;
	if (ks_group_info_by_id(d->ks, m->am_key, &gi, NULL) != 0) {
		struct ks_group_spec spec = {
			.gs_id = m->am_key,
			.gs_purpose = strcmp(m->am_purpose, "sign") == 0 ? KS_PURPOSE_SIGN
									: KS_PURPOSE_AUTHN,
			.gs_profiles = profs,
			.gs_nprofiles = m->am_nprofiles,
			.gs_key_type = key_type(m->am_alg),
			.gs_pin = m->am_pin ? pin : NULL,
			.gs_puk = m->am_pin ? puk : NULL,
		};

		for (size_t i = 0; i < m->am_nprofiles; i++)
			profs[i] = m->am_profiles[i];
		if (m->am_pin && (pin == NULL || puk == NULL)) {
			warn(d, "key %s for %s needs a PIN and a PUK: none given", m->am_key,
			     d->conf.dc_msisdn);
			return 900;
		}
		if (ks_add_group(d->ks, &spec, &pe) != 0) {
			warn(d, "key generation for %s refused (%d): %s", d->conf.dc_msisdn,
			     pe.status, pe.detail);
			return pe.status == 101 ? 101 : 900;
		}
	} else if (gi.gi_has_cert) {
		/* A certified key under this id: never replaced by a job. */
		warn(d, "keygen for %s: key %s already has a certificate", d->conf.dc_msisdn,
		     m->am_key);
		return 101;
	}
	if (ks_group_info_by_id(d->ks, m->am_key, &gi, NULL) != 0)
		return 900;
	req = ks_csr(d->ks, m->am_key, gi.gi_has_pin ? pin : NULL, NULL, &pe);
	if (req == NULL) {
		if (pe.status == KS_STATUS_WRONG_PIN && retry)
			return KS_STATUS_WRONG_PIN;
		warn(d, "CSR for %s failed (%d): %s", d->conf.dc_msisdn, pe.status, pe.detail);
		return pe.status == 402 || pe.status == 403 ? pe.status : 900;
	}
	n = i2d_X509_REQ(req, &p);
	X509_REQ_free(req);
	if (n <= 0) {
		OPENSSL_free(p);
		return 900;
	}
	*der = p;
	*der_len = (size_t)n;
	return 0;
}

static int
job_keygen(struct phone_dev *d, const char *job, const char *pin, const char *puk, bool retry)
{
	struct jpend *p = find_jpend(d, job, NULL);
	uint8_t *der = NULL;
	size_t len = 0;
	int st, rc;

	if (p == NULL || p->view.pj_unblock)
		return -1;
	st = keygen(d, &p->msg, pin, puk, retry, &der, &len);
	if (st == KS_STATUS_WRONG_PIN)
		return KS_STATUS_WRONG_PIN;
	rc = finish_job(d, p, st, der, len);
	OPENSSL_free(der);
	return rc;
}

int
phone_dev_job_keygen(struct phone_dev *d, const char *job, const char *pin, const char *puk)
{
	return job_keygen(d, job, pin, puk, true);
}

int
phone_dev_job_unblock(struct phone_dev *d, const char *job, const char *puk, const char *new_pin,
		      unsigned flags)
{
	struct jpend *p = find_jpend(d, job, NULL);
	struct pki_err pe = { 0 };
	int st;

	if (p == NULL || !p->view.pj_unblock)
		return -1;
	if (ks_unblock(d->ks, p->msg.am_key, puk, new_pin, &pe) == 0) {
		st = 0;
	} else if (pe.status == KS_STATUS_WRONG_PUK && (flags & PHONE_JOB_RETRY_PUK) != 0) {
		struct ks_group_info gi;

		if (ks_group_info_by_id(d->ks, p->msg.am_key, &gi, NULL) == 0)
			p->view.pj_puk_tries = gi.gi_puk_tries;
		return KS_STATUS_WRONG_PUK;
	} else {
		st = pe.status == 403 || pe.status == 404 || pe.status == 101 ? pe.status : 900;
		if (st != 403)
			warn(d, "unblock for %s failed (%d): %s", d->conf.dc_msisdn, pe.status,
			     pe.detail);
	}
	return finish_job(d, p, st, NULL, 0);
}

int
phone_dev_job_refuse(struct phone_dev *d, const char *job, int status)
{
	struct jpend *p = find_jpend(d, job, NULL);

	if (p == NULL || status < 100 || status > 999)
		return -1;
	return finish_job(d, p, status, NULL, 0);
}

int
phone_dev_job_demo(struct phone_dev *d, const char *job)
{
	struct jpend *p = find_jpend(d, job, NULL);
	const char *pin = d->conf.dc_pin[0] ? d->conf.dc_pin : NULL;
	const char *puk = d->conf.dc_puk[0] ? d->conf.dc_puk : NULL;

	if (p == NULL)
		return -1;
	if (pin == NULL || (puk == NULL && !p->view.pj_exists)) {
		warn(d, "%s: device.conf has no demo %s: job refused", d->conf.dc_msisdn,
		     pin == NULL ? "pin" : "puk");
		return finish_job(d, p, 900, NULL, 0);
	}
	if (p->view.pj_unblock)
		return phone_dev_job_unblock(d, job, puk, pin, 0);
	return job_keygen(d, job, pin, puk, false);
}

const struct phone_job *
phone_dev_job(struct phone_dev *d, const char *job)
{
	struct jpend *p = find_jpend(d, job, NULL);

	return p ? &p->view : NULL;
}

size_t
phone_dev_jobs_pending(const struct phone_dev *d)
{
	return d->njpending;
}

size_t
phone_dev_jobs_unacked(const struct phone_dev *d)
{
	return d->njanswers;
}

/* "cert": install it (no user needed). */
static int
install_cert(struct phone_dev *d, const struct appmsg *m)
{
	struct pki_err pe = { 0 };
	STACK_OF(X509) *chain = sk_X509_new_null();
	const unsigned char *q;
	X509 *cert;
	int st = 101;

	q = m->am_der;
	cert = d2i_X509(NULL, &q, (long)m->am_der_len);
	if (chain == NULL) {
		st = 900;
		goto out;
	}
	if (cert == NULL || q != m->am_der + m->am_der_len)
		goto out;
	for (size_t i = 0; i < m->am_nchain; i++) {
		X509 *c;

		q = m->am_chain[i];
		c = d2i_X509(NULL, &q, (long)m->am_chain_len[i]);
		if (c == NULL || q != m->am_chain[i] + m->am_chain_len[i] ||
		    !sk_X509_push(chain, c)) {
			X509_free(c);
			goto out;
		}
	}
	if (ks_install_cert(d->ks, m->am_key, cert, chain, &pe) == 0)
		st = 0;
	else
		st = pe.status == 101 || pe.status == 404 ? pe.status : 900;
out:
	if (st != 0)
		warn(d, "certificate for %s not installed (%d)", d->conf.dc_msisdn, st);
	pki_err_clear_openssl();
	X509_free(cert);
	sk_X509_pop_free(chain, X509_free);
	return st;
}

/* A keygen, cert or unblock message. */
static void
on_job(struct phone_dev *d, struct appmsg *m)
{
	struct janswer *a = find_janswer(d, m->am_job, m->am_type, NULL);
	struct ks_group_info gi;
	struct jpend *p, **tail;
	int st;

	if (a != NULL) {
		/* Done before, not yet acknowledged: HomeMSSP lost the answer.
		 * Send it again; never a second key or PUK attempt. */
		send_plain(d, a->text, a->len);
		return;
	}
	if (find_jpend(d, m->am_job, NULL) != NULL)
		return; /* already waiting for the user */
	job_event(d, "JOB", m->am_job, appmsg_type_name(m->am_type), m->am_key);
	if (m->am_type == APPMSG_CERT) {
		put_job_answer(d, m->am_job, m->am_type, install_cert(d, m), NULL, 0);
		return;
	}
	/* What needs no user is answered at once: an unblock for a key that
	 * is missing, PIN-less or blocked for ever, a PIN-less key. */
	if (m->am_type == APPMSG_UNBLOCK) {
		struct pki_err pe = { 0 };

		st = -1;
		if (ks_group_info_by_id(d->ks, m->am_key, &gi, &pe) != 0)
			st = 404;
		else if (!gi.gi_has_pin)
			st = 101;
		else if (gi.gi_state == KS_STATE_DISABLED)
			st = 403;
		if (st >= 0) {
			put_job_answer(d, m->am_job, m->am_type, st, NULL, 0);
			return;
		}
	} else if (ks_group_info_by_id(d->ks, m->am_key, &gi, NULL) == 0
			   ? !gi.gi_has_pin || gi.gi_has_cert /* keygen() refuses it */
			   : !m->am_pin) {
		uint8_t *der = NULL;
		size_t len = 0;

		st = keygen(d, m, NULL, NULL, false, &der, &len);
		put_job_answer(d, m->am_job, m->am_type, st, der, len);
		OPENSSL_free(der);
		return;
	}
	if (d->njpending >= MSSP_PHONE_MAX_JOBS) {
		warn(d, "too many jobs waiting for %s: refusing one", d->conf.dc_msisdn);
		put_job_answer(d, m->am_job, m->am_type, 900, NULL, 0);
		return;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		warn(d, "out of memory");
		return;
	}
	p->msg = *m; /* takes the heap members */
	memset(m, 0, sizeof(*m));
	p->view.pj_job = p->msg.am_job;
	p->view.pj_unblock = p->msg.am_type == APPMSG_UNBLOCK;
	p->view.pj_key = p->msg.am_key;
	p->view.pj_purpose = p->msg.am_purpose;
	p->view.pj_pin = p->msg.am_pin;
	if (ks_group_info_by_id(d->ks, p->msg.am_key, &gi, NULL) == 0) {
		p->view.pj_exists = !p->view.pj_unblock;
		p->view.pj_pin = gi.gi_has_pin;
		p->view.pj_puk_tries = gi.gi_puk_tries;
	}
	for (tail = &d->jpending; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = p;
	d->njpending++;
	if (d->ops->po_job != NULL)
		d->ops->po_job(d->arg, &p->view);
	else
		phone_dev_job_demo(d, p->msg.am_job);
}

static void
on_message(struct phone_dev *d, struct appmsg *m)
{
	char st[16];

	snprintf(st, sizeof(st), "%d", m->am_status);
	switch (m->am_type) {
	case APPMSG_SIGN:
		on_sign(d, m);
		break;
	case APPMSG_ACK:
		event(d, "ACK", m->am_nonce, st);
		drop_answer(d, m->am_nonce);
		drop_pending(d, m->am_nonce, true);
		break;
	case APPMSG_CANCEL:
		event(d, "CANCEL", m->am_nonce, st);
		drop_pending(d, m->am_nonce, true);
		drop_answer(d, m->am_nonce);
		/* Remember it, so that a late re-sent prompt is not shown. */
		phone_nonces_add(d->seen, m->am_nonce);
		break;
	case APPMSG_RECEIPT:
		event(d, "RECEIPT", m->am_nonce, NULL);
		if (d->ops->po_receipt != NULL)
			d->ops->po_receipt(d->arg, m->am_nonce, m->am_message ? m->am_message : "");
		break;
	case APPMSG_KEYGEN:
	case APPMSG_CERT:
	case APPMSG_UNBLOCK:
		on_job(d, m);
		break;
	case APPMSG_JOB_ACK:
		job_event(d, "JOB_ACK", m->am_job, NULL, NULL);
		drop_janswer(d, m->am_job);
		drop_jpend(d, m->am_job, true);
		break;
	default:
		warn(d, "unexpected %s message for %s: dropped", appmsg_type_name(m->am_type),
		     d->conf.dc_msisdn);
		break;
	}
}

static int
on_challenge(struct phone_dev *d, const unsigned char *challenge, struct phone_err *err)
{
	struct pki_err pe = { 0 };
	unsigned char *sig = NULL;
	char *n64 = NULL, *s64 = NULL, *frame = NULL;
	size_t siglen = 0;
	json_t *o = NULL;
	int rc = -1;

	if (RAND_bytes(d->app_nonce, sizeof(d->app_nonce)) != 1) {
		perr(err, "no randomness");
		goto out;
	}
	if (e2e_auth_sign(d->dkey, d->conf.dc_id, challenge, d->app_nonce, &sig, &siglen,
			  &pe) != 0) {
		perr(err, "auth signature: %s", pe.detail);
		goto out;
	}
	n64 = b64_enc(d->app_nonce, sizeof(d->app_nonce));
	s64 = b64_enc(sig, siglen);
	if (n64 != NULL && s64 != NULL)
		o = json_pack("{s:s,s:s,s:s,s:s}", "t", "auth", "d", d->conf.dc_id, "n", n64, "s",
			      s64);
	if (o != NULL)
		frame = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (frame == NULL) {
		perr(err, "out of memory");
		goto out;
	}
	if (d->ops->po_send(d->arg, frame, strlen(frame)) != 0) {
		perr(err, "cannot send auth");
		goto out;
	}
	d->st = DS_AUTH;
	rc = 0;
out:
	OPENSSL_free(sig);
	free(n64);
	free(s64);
	free(frame);
	json_decref(o);
	return rc;
}

static int
on_blob(struct phone_dev *d, const unsigned char *blob, size_t len, struct phone_err *err)
{
	unsigned char home_nonce[E2E_NONCE_LEN];
	struct pki_err pe = { 0 };
	struct mss_err me = { 0 };
	struct appmsg m;
	unsigned char *pt;
	size_t ptlen = 0;

	if (len > 0 && blob[0] == E2E_BLOB_HELLO) {
		if (e2e_hello_parse(blob, len, home_nonce, &pe) != 0)
			return perr(err, "bad HELLO");
		e2e_session_wipe(&d->sess);
		if (e2e_session_init(&d->sess, E2E_ROLE_APP, d->conf.dc_id, d->conf.dc_channel_key,
				     home_nonce, d->app_nonce, &pe) != 0)
			return perr(err, "e2e session: %s", pe.detail);
		d->st = DS_SESSION;
		/* Answers not yet acknowledged go again on every new session:
		 * HomeMSSP may have missed them when the last connection died. */
		for (struct answer *a = d->answers; a != NULL; a = a->next)
			send_plain(d, a->text, a->len);
		for (struct janswer *a = d->janswers; a != NULL; a = a->next)
			send_plain(d, a->text, a->len);
		return 0;
	}
	if (d->st != DS_SESSION) {
		warn(d, "sealed blob before HELLO for %s: dropped", d->conf.dc_msisdn);
		return 0;
	}
	if (len <= E2E_SEAL_OVERHEAD || len - E2E_SEAL_OVERHEAD > MSSP_E2E_MAX_PLAIN) {
		warn(d, "bad blob size for %s: dropped", d->conf.dc_msisdn);
		return 0;
	}
	pt = malloc(len - E2E_SEAL_OVERHEAD);
	if (pt == NULL)
		return perr(err, "out of memory");
	if (e2e_open(&d->sess, blob, len, pt, len - E2E_SEAL_OVERHEAD, &ptlen, &pe) != 0) {
		warn(d, "blob for %s does not open: dropped (%s)", d->conf.dc_msisdn, pe.detail);
		free(pt);
		return 0;
	}
	memset(&m, 0, sizeof(m));
	if (appmsg_decode(pt, ptlen, &m, &me) != 0) {
		warn(d, "bad app message for %s: dropped (%s)", d->conf.dc_msisdn, me.detail);
	} else {
		on_message(d, &m);
		appmsg_clear(&m);
	}
	free(pt);
	return 0;
}

int
phone_dev_frame(struct phone_dev *d, const uint8_t *msg, size_t len, struct phone_err *err)
{
	struct phone_frame f;
	int rc = -1;

	if (phone_frame_parse(msg, len, &f, err) != 0)
		return -1;
	switch (f.pf_type) {
	case PHONE_FRAME_CHALLENGE:
		if (d->st != DS_CHALLENGE) {
			perr(err, "unexpected challenge");
			break;
		}
		rc = on_challenge(d, f.pf_challenge, err);
		break;
	case PHONE_FRAME_READY:
		if (d->st != DS_AUTH) {
			perr(err, "unexpected ready");
			break;
		}
		d->st = DS_READY;
		{
			char line[256];

			snprintf(line, sizeof(line), "READY %s %s", d->conf.dc_msisdn, d->conf.dc_id);
			d->ops->po_event(d->arg, line);
		}
		rc = 0;
		break;
	case PHONE_FRAME_E2E:
		if (d->st < DS_READY) {
			perr(err, "blob before ready");
			break;
		}
		rc = on_blob(d, f.pf_blob, f.pf_blob_len, err);
		break;
	}
	phone_frame_clear(&f);
	return rc;
}

/* ---- device activation ------------------------------------------------------------ */

enum act_state {
	AS_NEW = 0,
	AS_STARTED, /* "activate" sent, waiting for activate_hello */
	AS_PROOF,   /* proof sent, waiting for "activated"         */
	AS_DONE,
	AS_FAILED,  /* any error: nothing more is accepted         */
};

struct phone_activation {
	enum act_state st;
	bool challenged;		   /* the AFE's challenge was seen   */
	char msisdn[MSSP_STORE_MAX_MSISDN + 1];
	uint8_t h[32];			   /* SHA-256 of the code (secret)   */
	EVP_PKEY *dkey;			   /* device key                     */
	EVP_PKEY *bkey;			   /* app binding key                */
	uint8_t app_nonce[E2E_NONCE_LEN];
	uint8_t *t;			   /* the transcript T               */
	size_t tlen;
	uint8_t *home_spki;
	size_t home_spki_len;
	char device_id[MSSP_KEYSTORE_MAX_ID + 1];
	uint8_t channel_key[E2E_KEY_LEN];  /* secret                         */
};

int
phone_activation_code_normalize(const char *in, char out[MSSP_REG_ACTIVATION_DIGITS + 1])
{
	size_t n = 0;

	if (in == NULL)
		return -1;
	for (const char *p = in; *p != '\0'; p++) {
		if (*p == '-' || *p == ' ')
			continue;
		if (*p < '0' || *p > '9' || n == MSSP_REG_ACTIVATION_DIGITS) {
			OPENSSL_cleanse(out, MSSP_REG_ACTIVATION_DIGITS + 1);
			return -1;
		}
		out[n++] = *p;
	}
	out[n] = '\0';
	if (n != MSSP_REG_ACTIVATION_DIGITS) {
		OPENSSL_cleanse(out, MSSP_REG_ACTIVATION_DIGITS + 1);
		return -1;
	}
	return 0;
}

static bool
msisdn_ok(const char *m)
{
	return m != NULL && m[0] == '+' &&
	       digits(m + 1, MSSP_MSG_MIN_MSISDN_DIGITS, MSSP_MSG_MAX_MSISDN_DIGITS);
}

void
phone_activation_free(struct phone_activation *a)
{
	if (a == NULL)
		return;
	EVP_PKEY_free(a->dkey);
	EVP_PKEY_free(a->bkey);
	free(a->t);
	free(a->home_spki);
	OPENSSL_cleanse(a, sizeof(*a));
	free(a);
}

struct phone_activation *
phone_activation_new(const char *msisdn, const char *code, struct phone_err *err)
{
	char digits12[MSSP_REG_ACTIVATION_DIGITS + 1];
	struct pki_err pe = { 0 };
	struct phone_activation *a;

	if (!msisdn_ok(msisdn)) {
		perr(err, "the MSISDN must be + and %d..%d digits", MSSP_MSG_MIN_MSISDN_DIGITS,
		     MSSP_MSG_MAX_MSISDN_DIGITS);
		return NULL;
	}
	if (phone_activation_code_normalize(code, digits12) != 0) {
		perr(err, "the activation code must be %d digits (dashes and spaces allowed)",
		     MSSP_REG_ACTIVATION_DIGITS);
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		OPENSSL_cleanse(digits12, sizeof(digits12));
		perr(err, "out of memory");
		return NULL;
	}
	snprintf(a->msisdn, sizeof(a->msisdn), "%s", msisdn);
	if (e2e_activation_code_hash(digits12, a->h) != 0) {
		perr(err, "cannot hash the code");
		goto fail;
	}
	a->dkey = e2e_binding_keygen(&pe); /* a fresh P-256 key, as binding keys are */
	a->bkey = a->dkey != NULL ? e2e_binding_keygen(&pe) : NULL;
	if (a->bkey == NULL) {
		perr(err, "key generation: %s", pe.detail);
		goto fail;
	}
	if (RAND_bytes(a->app_nonce, sizeof(a->app_nonce)) != 1) {
		perr(err, "no randomness");
		goto fail;
	}
	OPENSSL_cleanse(digits12, sizeof(digits12));
	return a;
fail:
	OPENSSL_cleanse(digits12, sizeof(digits12));
	phone_activation_free(a);
	return NULL;
}

const char *
phone_activation_device_id(const struct phone_activation *a)
{
	return a->st == AS_DONE ? a->device_id : NULL;
}

/* Compact JSON of `o` (consumed) into *out. */
static int
dump_frame(json_t *o, char **out, size_t *len, struct phone_err *err)
{
	char *f = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

	json_decref(o);
	if (f == NULL)
		return perr(err, "out of memory");
	*out = f;
	if (len != NULL)
		*len = strlen(f);
	return 0;
}

int
phone_activation_start(struct phone_activation *a, char **frame, size_t *len,
		       struct phone_err *err)
{
	char *n64;
	int rc;

	*frame = NULL;
	if (a->st != AS_NEW)
		return perr(err, "activation already started");
	n64 = b64_enc(a->app_nonce, sizeof(a->app_nonce));
	if (n64 == NULL)
		return perr(err, "out of memory");
	rc = dump_frame(json_pack("{s:s,s:s,s:s}", "t", "activate", "m", a->msisdn, "n", n64), frame,
			len, err);
	free(n64);
	if (rc == 0)
		a->st = AS_STARTED;
	return rc;
}

/* activate_hello -> T, signature and app MAC -> activate_proof. */
static int
act_hello(struct phone_activation *a, json_t *root, char **out, size_t *outlen,
	  struct phone_err *err)
{
	json_t *n = json_object_get(root, "n"), *b = json_object_get(root, "b");
	uint8_t home_nonce[E2E_NONCE_LEN], sig[MSSP_AFE_MAX_SIG], mac[32];
	unsigned char *dspki = NULL, *bspki = NULL;
	char *k64 = NULL, *b64 = NULL, *s64 = NULL, *p64 = NULL;
	size_t dlen = 0, blen = 0, siglen = 0;
	struct pki_err pe = { 0 };
	int rc = -1;

	if (json_object_size(root) != 3 || !json_is_string(n) || !json_is_string(b))
		return perr(err, "bad activate_hello frame");
	if (mss_lex_base64_decode(json_string_value(n), home_nonce, sizeof(home_nonce)) !=
	    E2E_NONCE_LEN)
		return perr(err, "bad home nonce");
	a->home_spki = b64_dup(json_string_value(b), MSSP_KEYSTORE_MAX_SPKI, &a->home_spki_len);
	if (a->home_spki == NULL)
		return perr(err, "bad home binding key");
	if (e2e_spki_der(a->dkey, &dspki, &dlen, &pe) != 0 ||
	    e2e_spki_der(a->bkey, &bspki, &blen, &pe) != 0) {
		perr(err, "public key: %s", pe.detail);
		goto out;
	}
	a->t = e2e_activation_transcript(a->msisdn, a->app_nonce, home_nonce, a->home_spki,
					 a->home_spki_len, bspki, blen, dspki, dlen, &a->tlen);
	if (a->t == NULL) {
		perr(err, "cannot build the transcript");
		goto out;
	}
	if (e2e_sign_msg(a->dkey, a->t, a->tlen, sig, &siglen, &pe) != 0) {
		perr(err, "signature: %s", pe.detail);
		goto out;
	}
	if (e2e_activation_mac(a->h, a->t, a->tlen, "app", NULL, mac) != 0) {
		perr(err, "cannot compute the proof");
		goto out;
	}
	k64 = b64_enc(dspki, dlen);
	b64 = b64_enc(bspki, blen);
	s64 = b64_enc(sig, siglen);
	p64 = b64_enc(mac, sizeof(mac));
	if (k64 == NULL || b64 == NULL || s64 == NULL || p64 == NULL) {
		perr(err, "out of memory");
		goto out;
	}
	if (dump_frame(json_pack("{s:s,s:s,s:s,s:s,s:s}", "t", "activate_proof", "k", k64, "b",
				 b64, "s", s64, "p", p64),
		       out, outlen, err) != 0)
		goto out;
	a->st = AS_PROOF;
	rc = 0;
out:
	OPENSSL_cleanse(mac, sizeof(mac));
	OPENSSL_free(dspki);
	OPENSSL_free(bspki);
	free(k64);
	free(b64);
	free(s64);
	if (p64 != NULL)
		OPENSSL_cleanse(p64, strlen(p64));
	free(p64);
	return rc;
}

/* activated: the home MAC proves the other end knows the code too. */
static int
act_done(struct phone_activation *a, json_t *root, struct phone_err *err)
{
	json_t *dv = json_object_get(root, "d"), *pv = json_object_get(root, "p");
	uint8_t got[33], want[32];
	struct pki_err pe = { 0 };
	const char *id;
	int rc = -1;

	if (json_object_size(root) != 3 || !json_is_string(dv) || !json_is_string(pv))
		return perr(err, "bad activated frame");
	id = json_string_value(dv);
	if (strlen(id) != json_string_length(dv) || !id_ok(id))
		return perr(err, "bad device id");
	if (mss_lex_base64_decode(json_string_value(pv), got, sizeof(got)) != 32)
		return perr(err, "bad home proof");
	if (e2e_activation_mac(a->h, a->t, a->tlen, "home", id, want) != 0) {
		perr(err, "cannot compute the proof");
		goto out;
	}
	if (CRYPTO_memcmp(got, want, sizeof(want)) != 0) {
		perr(err, "the platform's proof does not verify (it does not know the code)");
		goto out;
	}
	if (e2e_binding_derive(a->bkey, a->home_spki, a->home_spki_len, id, a->channel_key,
			       &pe) != 0) {
		perr(err, "channel key: %s", pe.detail);
		goto out;
	}
	snprintf(a->device_id, sizeof(a->device_id), "%s", id);
	a->st = AS_DONE;
	rc = 0;
out:
	OPENSSL_cleanse(got, sizeof(got));
	OPENSSL_cleanse(want, sizeof(want));
	return rc;
}

int
phone_activation_frame(struct phone_activation *a, const uint8_t *msg, size_t len, char **out,
		       size_t *outlen, struct phone_err *err)
{
	json_error_t je;
	json_t *root;
	const char *t;
	int rc = -1;

	*out = NULL;
	if (outlen != NULL)
		*outlen = 0;
	if (a->st == AS_DONE || a->st == AS_FAILED)
		return perr(err, "unexpected frame after the activation");
	if (len > MSSP_WS_MAX_MESSAGE)
		return perr(err, "frame too large");
	root = json_loadb((const char *)msg, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL || !json_is_object(root) ||
	    !json_is_string(json_object_get(root, "t"))) {
		perr(err, "frame is not a typed JSON object");
		goto out;
	}
	t = json_string_value(json_object_get(root, "t"));
	if (strcmp(t, "challenge") == 0 && a->st == AS_STARTED && !a->challenged) {
		/* The AFE greets every connection with its challenge; an
		 * activating device answers "activate" instead of "auth"
		 * (sent already), so the challenge itself is not used. */
		struct phone_frame f;

		a->challenged = true;
		if (phone_frame_parse(msg, len, &f, err) == 0) {
			phone_frame_clear(&f);
			rc = PHONE_ACT_NONE;
		}
	} else if (strcmp(t, "activate_hello") == 0 && a->st == AS_STARTED) {
		if (act_hello(a, root, out, outlen, err) == 0)
			rc = PHONE_ACT_SEND;
	} else if (strcmp(t, "activated") == 0 && a->st == AS_PROOF) {
		if (act_done(a, root, err) == 0)
			rc = PHONE_ACT_DONE;
	} else {
		perr(err, "unexpected frame");
	}
out:
	if (rc < 0)
		a->st = AS_FAILED;
	json_decref(root);
	return rc;
}

/* Write `len` bytes to a new file (mode 0600, must not exist), synced. */
static int
write_new_file(const char *path, const void *data, size_t len, struct phone_err *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	const char *p = data;

	if (fd < 0)
		return perr(err, "%s: %s", path, strerror(errno));
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			perr(err, "%s: %s", path, strerror(errno));
			close(fd);
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fsync(fd) != 0 || close(fd) != 0)
		return perr(err, "%s: %s", path, strerror(errno));
	return 0;
}

static void
sync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

static int
rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/* A directory tree we made (links removed, never followed). */
static void
rm_tree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The files of the new phone directory into `dir` (exists, empty). */
static int
write_phone_files(struct phone_activation *a, const char *dir, const char *pin,
		  const char *puk, const struct ks_params *kp, struct phone_err *err)
{
	char path[MSSP_PHONE_MAX_PATH + 32], key64[64], conf[1024];
	struct pki_err pe = { 0 };
	BIO *bio = BIO_new(BIO_s_mem());
	char *pem = NULL;
	struct ks *ks;
	long pemlen = 0;
	int n, rc = -1;

	if (bio == NULL || PEM_write_bio_PrivateKey(bio, a->dkey, NULL, NULL, 0, NULL, NULL) != 1 ||
	    (pemlen = BIO_get_mem_data(bio, &pem)) <= 0) {
		perr(err, "cannot encode the device key");
		goto out;
	}
	snprintf(path, sizeof(path), "%s/device.key", dir);
	if (write_new_file(path, pem, (size_t)pemlen, err) != 0)
		goto out;
	EVP_EncodeBlock((unsigned char *)key64, a->channel_key, E2E_KEY_LEN);
	n = snprintf(conf, sizeof(conf),
		     "# written by mss-phone activate; secret (channel key%s)\n"
		     "[device]\nid = %s\nmsisdn = %s\nchannel_key = %s\n%s%s%s%s%s%s",
		     pin || puk ? ", demo PIN and PUK" : "", a->device_id, a->msisdn, key64,
		     pin ? "pin = " : "", pin ? pin : "", pin ? "\n" : "", puk ? "puk = " : "",
		     puk ? puk : "", puk ? "\n" : "");
	if (n < 0 || (size_t)n >= sizeof(conf)) {
		perr(err, "device.conf too long");
		goto out;
	}
	snprintf(path, sizeof(path), "%s/device.conf", dir);
	if (write_new_file(path, conf, (size_t)n, err) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/keystore", dir);
	ks = ks_create(path, a->device_id, kp, &pe);
	if (ks == NULL) {
		perr(err, "keystore: %s", pe.detail);
		goto out;
	}
	ks_close(ks);
	sync_dir(dir);
	rc = 0;
out:
	/* the mem BIO's buffer holds the private key */
	if (pem != NULL && pemlen > 0)
		OPENSSL_cleanse(pem, (size_t)pemlen);
	BIO_free(bio);
	OPENSSL_cleanse(key64, sizeof(key64));
	OPENSSL_cleanse(conf, sizeof(conf));
	return rc;
}

int
phone_activation_save(struct phone_activation *a, const char *phones_dir, const char *pin,
		      const char *puk, bool force, const struct ks_params *kp,
		      struct phone_err *err)
{
	char final[MSSP_PHONE_MAX_PATH + 1], tmp[MSSP_PHONE_MAX_PATH + 1];
	char old[MSSP_PHONE_MAX_PATH + 1];
	struct stat st;
	bool exists, old_made = false;
	int n;

	if (a->st != AS_DONE)
		return perr(err, "not activated");
	if (pin != NULL && !phone_pin_ok(pin))
		return perr(err, "the PIN must be %d..%d digits", MSSP_KEYSTORE_PIN_MIN_LEN,
			    MSSP_KEYSTORE_PIN_MAX_LEN);
	if (puk != NULL && !phone_puk_ok(puk))
		return perr(err, "the PUK must be %d digits", MSSP_KEYSTORE_PUK_LEN);
	n = snprintf(final, sizeof(final), "%s/%s", phones_dir, a->msisdn);
	if (n < 0 || (size_t)n + 32 >= sizeof(final))
		return perr(err, "%s: path too long", phones_dir);
	/* Temporary names do not start with '+': mss-phone's rescan never
	 * picks up a directory being written. */
	snprintf(tmp, sizeof(tmp), "%s/.activate-%s.XXXXXX", phones_dir, a->msisdn + 1);
	snprintf(old, sizeof(old), "%s/.replaced-%s.XXXXXX", phones_dir, a->msisdn + 1);
	exists = lstat(final, &st) == 0;
	if (exists && !force)
		return perr(err, "%s exists (--force replaces it)", final);
	if (mkdtemp(tmp) == NULL)
		return perr(err, "%s: %s", phones_dir, strerror(errno));
	if (write_phone_files(a, tmp, pin, puk, kp, err) != 0)
		goto fail;
	if (!exists) {
		/* NOREPLACE: a directory that appeared meanwhile is kept. */
		if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) != 0) {
			perr(err, "%s: %s", final, strerror(errno));
			goto fail;
		}
	} else {
		/* The old directory moves aside (onto an empty temporary one),
		 * the new one takes its name, then the old one goes. */
		old_made = mkdtemp(old) != NULL;
		if (!old_made || rename(final, old) != 0) {
			perr(err, "%s: %s", final, strerror(errno));
			goto fail;
		}
		if (rename(tmp, final) != 0) {
			perr(err, "%s: %s", final, strerror(errno));
			rename(old, final);
			goto fail;
		}
		rm_tree(old);
	}
	sync_dir(phones_dir);
	return 0;
fail:
	rm_tree(tmp);
	if (old_made)
		rmdir(old); /* the empty placeholder, if it is still there */
	return -1;
}
