/*
 * app.c - the reference phone app's logic (see app.h; the program around
 * it is src/cmd/mss-phone, the page docs/internals/mss-phone.md).
 */
#include "phone/app.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

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

static const char *const device_keys[] = { "id", "msisdn", "channel_key", "pin", NULL };
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
	const char *id, *msisdn, *key, *pin;
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
	/* Lengths were checked above: these never truncate. */
	snprintf(out->dc_id, sizeof(out->dc_id), "%s", id);
	snprintf(out->dc_msisdn, sizeof(out->dc_msisdn), "%s", msisdn);
	memcpy(out->dc_channel_key, kbuf, E2E_KEY_LEN);
	if (pin != NULL)
		snprintf(out->dc_pin, sizeof(out->dc_pin), "%s", pin);
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
	act = phone_demo_action(d->conf.dc_msisdn);
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
