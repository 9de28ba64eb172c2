/*
 * test_phone_app.c - the reference phone app's logic (src/phone/app).
 *
 * The pure parts (configuration files, demo table, back-off, nonce set,
 * AFE frames, sanitizing) are tested directly.  The device tests play the
 * AFE and HomeMSSP against a real device: a device directory with a real
 * device key and a real keystore (scrypt at its floor, certificates from a
 * throw-away CA), a real e2e session on the HOME side and real app
 * messages; signatures are checked with CMS_verify against the CA.
 */
#include "testutil.h"
#include "testtls.h"

#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "mss/appmsg.h"
#include "mss/lex.h"
#include "phone/app.h"
#include "phone/keystore.h"
#include "pki/e2e.h"
#include "util/limits.h"

#define PIN "123456"
#define PUK "12345678"
#define NONCE1 "nonce-0000000000000001"
#define NONCE2 "nonce-0000000000000002"
#define NONCE3 "nonce-0000000000000003"
#define DTBS "Pay 10 EUR to Bob"

static const struct ks_params fast = { .kp_scrypt_log2n = MSSP_KEYSTORE_SCRYPT_MIN_LOG2N };

/* What the device did through its ops. */
struct rec {
	char *sent[64];
	size_t nsent;
	char *events[64];
	size_t nevents;
	char prompt[MSSP_STORE_MAX_NONCE + 1];
	struct phone_prompt pv; /* copy of the last prompt (pointers borrowed) */
	size_t nprompts;
	char withdrawn[MSSP_STORE_MAX_NONCE + 1];
	char receipt[256];
	size_t nwarn;
	int send_rc;
};

static void
rec_clear(struct rec *r)
{
	for (size_t i = 0; i < r->nsent; i++)
		free(r->sent[i]);
	for (size_t i = 0; i < r->nevents; i++)
		free(r->events[i]);
	memset(r, 0, sizeof(*r));
}

static int
op_send(void *arg, const char *text, size_t len)
{
	struct rec *r = arg;

	assert_true(r->nsent < 64);
	assert_int_equal(strlen(text), len);
	r->sent[r->nsent++] = strdup(text);
	return r->send_rc;
}

static void
op_event(void *arg, const char *line)
{
	struct rec *r = arg;

	assert_true(r->nevents < 64);
	r->events[r->nevents++] = strdup(line);
}

static void
op_prompt(void *arg, const struct phone_prompt *p)
{
	struct rec *r = arg;

	snprintf(r->prompt, sizeof(r->prompt), "%s", p->pp_nonce);
	r->pv = *p;
	r->nprompts++;
}

static void
op_withdraw(void *arg, const char *nonce)
{
	struct rec *r = arg;

	snprintf(r->withdrawn, sizeof(r->withdrawn), "%s", nonce);
}

static void
op_receipt(void *arg, const char *nonce, const char *message)
{
	struct rec *r = arg;

	(void)nonce;
	snprintf(r->receipt, sizeof(r->receipt), "%s", message);
}

static void
op_warn(void *arg, const char *msg)
{
	struct rec *r = arg;

	(void)msg;
	r->nwarn++;
}

static const struct phone_dev_ops ops = {
	.po_send = op_send,
	.po_event = op_event,
	.po_prompt = op_prompt,
	.po_withdraw = op_withdraw,
	.po_receipt = op_receipt,
	.po_warn = op_warn,
};

static const char *
last_event(const struct rec *r)
{
	return r->nevents ? r->events[r->nevents - 1] : "";
}

/* ---- fixture: CA, files, device directories ------------------------------ */

static void
write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static void
add_group(struct tt_cafx *f, struct ks *ks, const char *id, const char *pin, const char *puk)
{
	struct pki_err err = { 0 };
	const char *profs[1] = { "mss:demo:sign:loa3:app" };
	struct ks_group_spec s = {
		.gs_id = id,
		.gs_purpose = KS_PURPOSE_SIGN,
		.gs_profiles = profs,
		.gs_nprofiles = 1,
		.gs_pin = pin,
		.gs_puk = puk,
	};
	EVP_PKEY *pub;
	X509 *cert;

	if (ks_add_group(ks, &s, &err) != 0)
		fail_msg("ks_add_group: %d %s", err.status, err.detail);
	pub = ks_public_key(ks, id, &err);
	assert_non_null(pub);
	cert = tt_cafx_issue(f, pub, id);
	assert_int_equal(ks_install_cert(ks, id, cert, NULL, &err), 0);
	X509_free(cert);
	EVP_PKEY_free(pub);
}

static const unsigned char CHANNEL_KEY[E2E_KEY_LEN] = {
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
	17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
};

/* DIR/<msisdn>/ with device.conf (demo PIN `pin`), device.key and a
 * keystore with groups "sign" (PIN) and "click" (no PIN).  Returns the
 * directory in `out`, the device key's public half in *pub. */
static void
make_device(struct tt_cafx *f, const char *msisdn, const char *pin, char *out, size_t cap,
	    EVP_PKEY **pub)
{
	char path[512], conf[512], b64[64];
	struct pki_err err = { 0 };
	EVP_PKEY *k = EVP_EC_gen("P-256");
	struct ks *ks;
	FILE *fp;

	snprintf(out, cap, "%s/%s", f->dir, msisdn);
	assert_int_equal(mkdir(out, 0700), 0);
	EVP_EncodeBlock((unsigned char *)b64, CHANNEL_KEY, E2E_KEY_LEN);
	snprintf(conf, sizeof(conf),
		 "# test device\n[device]\nid = dev-%s\nmsisdn = %s\nchannel_key = %s\n%s%s%s",
		 msisdn + 1, msisdn, b64, pin ? "pin = " : "", pin ? pin : "", pin ? "\n" : "");
	snprintf(path, sizeof(path), "%s/device.conf", out);
	write_file(path, conf, 0600);
	snprintf(path, sizeof(path), "%s/device.key", out);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL), 1);
	fclose(fp);
	chmod(path, 0600);
	snprintf(path, sizeof(path), "%s/keystore", out);
	snprintf(conf, sizeof(conf), "dev-%s", msisdn + 1);
	ks = ks_create(path, conf, &fast, &err);
	if (ks == NULL)
		fail_msg("ks_create: %s", err.detail);
	add_group(f, ks, "sign", PIN, PUK);
	add_group(f, ks, "click", NULL, NULL);
	ks_close(ks);
	if (pub != NULL)
		*pub = k;
	else
		EVP_PKEY_free(k);
}

/* ---- the HOME side: an AFE + HomeMSSP stand-in ---------------------------- */

struct home {
	struct e2e_session s;
	char device_id[MSSP_KEYSTORE_MAX_ID + 1];
	unsigned char app_nonce[E2E_NONCE_LEN];
};

static char *
frame_e2e(const unsigned char *blob, size_t len)
{
	char *b64 = malloc(4 * ((len + 2) / 3) + 1), *out;
	json_t *o;

	EVP_EncodeBlock((unsigned char *)b64, blob, (int)len);
	o = json_pack("{s:s,s:s}", "t", "e2e", "b", b64);
	out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	free(b64);
	return out;
}

static int
feed(struct phone_dev *d, const char *text)
{
	struct phone_err err = { { 0 } };

	return phone_dev_frame(d, (const uint8_t *)text, strlen(text), &err);
}

/* Connect, answer the challenge, check the auth signature, "ready". */
static void
home_login(struct home *h, struct phone_dev *d, struct rec *r, EVP_PKEY *dev_pub)
{
	unsigned char challenge[E2E_CHALLENGE_LEN], sig[256], *spki = NULL;
	char frame[256], b64[64];
	struct pki_err pe = { 0 };
	json_t *o;
	size_t spki_len = 0, before = r->nsent;
	long siglen;

	memset(h, 0, sizeof(*h));
	snprintf(h->device_id, sizeof(h->device_id), "%s", phone_dev_id(d));
	phone_dev_connected(d);
	for (size_t i = 0; i < sizeof(challenge); i++)
		challenge[i] = (unsigned char)(i * 7 + r->nsent);
	EVP_EncodeBlock((unsigned char *)b64, challenge, sizeof(challenge));
	snprintf(frame, sizeof(frame), "{\"t\":\"challenge\",\"c\":\"%s\"}", b64);
	assert_int_equal(feed(d, frame), 0);
	assert_int_equal(r->nsent, before + 1);
	o = json_loads(r->sent[before], 0, NULL);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "t")), "auth");
	assert_string_equal(json_string_value(json_object_get(o, "d")), h->device_id);
	assert_int_equal(mss_lex_base64_decode(json_string_value(json_object_get(o, "n")),
					       h->app_nonce, sizeof(h->app_nonce)),
			 E2E_NONCE_LEN);
	siglen = mss_lex_base64_decode(json_string_value(json_object_get(o, "s")), sig,
				       sizeof(sig));
	assert_true(siglen > 0);
	json_decref(o);
	assert_int_equal(e2e_spki_der(dev_pub, &spki, &spki_len, &pe), 0);
	assert_int_equal(e2e_auth_verify(spki, spki_len, h->device_id, challenge, h->app_nonce,
					 sig, (size_t)siglen, &pe),
			 0);
	/* The signature binds the challenge: another one does not verify. */
	challenge[0] ^= 1;
	assert_int_equal(e2e_auth_verify(spki, spki_len, h->device_id, challenge, h->app_nonce,
					 sig, (size_t)siglen, &pe),
			 -1);
	OPENSSL_free(spki);
	assert_false(phone_dev_is_ready(d));
	assert_int_equal(feed(d, "{\"t\":\"ready\"}"), 0);
	assert_true(phone_dev_is_ready(d));
	snprintf(frame, sizeof(frame), "READY %s %s", phone_dev_msisdn(d), h->device_id);
	assert_string_equal(last_event(r), frame);
}

/* Send HELLO (a new session on both sides). */
static void
home_hello(struct home *h, struct phone_dev *d)
{
	unsigned char hello[E2E_HELLO_LEN], hn[E2E_NONCE_LEN];
	struct pki_err pe = { 0 };
	char *fr;

	assert_int_equal(e2e_hello(hello, hn, &pe), 0);
	e2e_session_wipe(&h->s);
	assert_int_equal(e2e_session_init(&h->s, E2E_ROLE_HOME, h->device_id, CHANNEL_KEY, hn,
					  h->app_nonce, &pe),
			 0);
	fr = frame_e2e(hello, sizeof(hello));
	assert_int_equal(feed(d, fr), 0);
	free(fr);
}

/* Seal an app message for the device; returns the frame (free()). */
static char *
home_seal(struct home *h, const struct appmsg *m)
{
	struct mss_err me = { 0 };
	struct pki_err pe = { 0 };
	unsigned char *blob;
	size_t blen = 0, len = 0;
	char *text = NULL, *fr;

	if (appmsg_encode(m, &text, &len, &me) != 0)
		fail_msg("appmsg_encode: %s", me.detail);
	blob = malloc(len + E2E_SEAL_OVERHEAD);
	assert_int_equal(e2e_seal(&h->s, (unsigned char *)text, len, blob, len + E2E_SEAL_OVERHEAD,
				  &blen, &pe),
			 0);
	fr = frame_e2e(blob, blen);
	free(blob);
	free(text);
	return fr;
}

static void
home_send(struct home *h, struct phone_dev *d, const struct appmsg *m)
{
	char *fr = home_seal(h, m);

	assert_int_equal(feed(d, fr), 0);
	free(fr);
}

static void
home_sign(struct home *h, struct phone_dev *d, const char *nonce, const char *key)
{
	struct appmsg m;

	memset(&m, 0, sizeof(m));
	m.am_type = APPMSG_SIGN;
	snprintf(m.am_nonce, sizeof(m.am_nonce), "%s", nonce);
	snprintf(m.am_ap_name, sizeof(m.am_ap_name), "Demo AP");
	snprintf(m.am_ap_id, sizeof(m.am_ap_id), "http://demo.ap/");
	snprintf(m.am_key, sizeof(m.am_key), "%s", key);
	snprintf(m.am_profile, sizeof(m.am_profile), "mss:demo:sign:loa3:app");
	m.am_pin = true;
	m.am_dtbd = (char *)DTBS;
	snprintf(m.am_dtbd_mime, sizeof(m.am_dtbd_mime), "text/plain");
	m.am_dtbs = (uint8_t *)DTBS;
	m.am_dtbs_len = strlen(DTBS);
	snprintf(m.am_dtbs_mime, sizeof(m.am_dtbs_mime), "text/plain");
	m.am_deadline_ms = 4102444800000LL;
	snprintf(m.am_lang, sizeof(m.am_lang), "en");
	home_send(h, d, &m);
}

static void
home_status(struct home *h, struct phone_dev *d, enum appmsg_type t, const char *nonce,
	    int status)
{
	struct appmsg m;

	memset(&m, 0, sizeof(m));
	m.am_type = t;
	snprintf(m.am_nonce, sizeof(m.am_nonce), "%s", nonce);
	m.am_status = status;
	home_send(h, d, &m);
}

/* Open the sent frame `i` as HomeMSSP: an answer. */
static void
home_open(struct home *h, const struct rec *r, size_t i, struct appmsg *out)
{
	struct pki_err pe = { 0 };
	struct mss_err me = { 0 };
	unsigned char *blob, *pt;
	size_t blen = 0, ptlen = 0;
	json_t *o;

	assert_true(i < r->nsent);
	o = json_loads(r->sent[i], 0, NULL);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "t")), "e2e");
	blen = strlen(json_string_value(json_object_get(o, "b")));
	blob = malloc(blen);
	blen = (size_t)mss_lex_base64_decode(json_string_value(json_object_get(o, "b")), blob, blen);
	json_decref(o);
	pt = malloc(blen);
	assert_int_equal(e2e_open(&h->s, blob, blen, pt, blen, &ptlen, &pe), 0);
	memset(out, 0, sizeof(*out));
	assert_int_equal(appmsg_decode(pt, ptlen, out, &me), 0);
	assert_int_equal(out->am_type, APPMSG_ANSWER);
	free(pt);
	free(blob);
}

/* The CMS verifies against the test CA; returns its content (free()). */
static char *
cms_content(struct tt_cafx *f, const struct appmsg *a)
{
	const unsigned char *p = a->am_cms;
	CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)a->am_cms_len);
	X509_STORE *st = X509_STORE_new();
	BIO *out = BIO_new(BIO_s_mem());
	char *data, *ret;
	long n;

	assert_non_null(cms);
	X509_STORE_add_cert(st, f->ca_cert);
	assert_int_equal(CMS_verify(cms, NULL, st, NULL, out, CMS_BINARY), 1);
	n = BIO_get_mem_data(out, &data);
	ret = calloc(1, (size_t)n + 1);
	memcpy(ret, data, (size_t)n);
	BIO_free(out);
	X509_STORE_free(st);
	CMS_ContentInfo_free(cms);
	return ret;
}

/* ---- pure helpers ------------------------------------------------------------- */

static void
test_conf_load(void **state)
{
	struct tt_cafx *f = *state;
	struct phone_err err = { { 0 } };
	struct phone_conf c;
	char path[512], expect[600];

	snprintf(path, sizeof(path), "%s/phone.conf", f->dir);
	write_file(path,
		   "[phone]\nafe_addr = 127.0.0.1\nafe_port = 9445\nafe_host = localhost\n"
		   "ca = ../tls/ca.crt\npush_addr = ::1\npush_port = 9447\n",
		   0644);
	assert_int_equal(phone_conf_load(path, &c, &err), 0);
	assert_string_equal(c.pc_afe_addr, "127.0.0.1");
	assert_int_equal(c.pc_afe_port, 9445);
	assert_string_equal(c.pc_afe_host, "localhost");
	snprintf(expect, sizeof(expect), "%s/../tls/ca.crt", f->dir);
	assert_string_equal(c.pc_ca, expect);
	assert_string_equal(c.pc_push_addr, "::1");
	assert_int_equal(c.pc_push_port, 9447);

	/* Defaults: no push port, loopback push address; absolute CA kept. */
	write_file(path, "[phone]\nafe_addr = ::1\nafe_port = 1\nafe_host = h\nca = /x/ca.crt\n",
		   0644);
	assert_int_equal(phone_conf_load(path, &c, &err), 0);
	assert_string_equal(c.pc_ca, "/x/ca.crt");
	assert_int_equal(c.pc_push_port, 0);
	assert_string_equal(c.pc_push_addr, "127.0.0.1");

	/* Refused: a missing key, a host name as address, an unknown key, a
	 * port out of range, a missing file. */
	write_file(path, "[phone]\nafe_addr = 127.0.0.1\nafe_port = 9445\nca = c\n", 0644);
	assert_int_equal(phone_conf_load(path, &c, &err), -1);
	assert_non_null(strstr(err.pe_msg, "afe_host"));
	write_file(path, "[phone]\nafe_addr = localhost\nafe_port = 9445\nafe_host = h\nca = c\n",
		   0644);
	assert_int_equal(phone_conf_load(path, &c, &err), -1);
	write_file(path,
		   "[phone]\nafe_addr = 127.0.0.1\nafe_port = 9445\nafe_host = h\nca = c\nfoo = 1\n",
		   0644);
	assert_int_equal(phone_conf_load(path, &c, &err), -1);
	write_file(path, "[phone]\nafe_addr = 127.0.0.1\nafe_port = 0\nafe_host = h\nca = c\n",
		   0644);
	assert_int_equal(phone_conf_load(path, &c, &err), -1);
	write_file(path,
		   "[phone]\nafe_addr = 127.0.0.1\nafe_port = 9\nafe_host = h\nca = c\n"
		   "push_port = 70000\n",
		   0644);
	assert_int_equal(phone_conf_load(path, &c, &err), -1);
	unlink(path);
	assert_int_equal(phone_conf_load(path, &c, &err), -1);
}

static void
test_device_conf(void **state)
{
	struct phone_device_conf c;
	struct phone_err err = { { 0 } };
	char b64[64], text[512], b31[64];
	unsigned char k31[31] = { 0 };

	(void)state;
	EVP_EncodeBlock((unsigned char *)b64, CHANNEL_KEY, E2E_KEY_LEN);
	EVP_EncodeBlock((unsigned char *)b31, k31, sizeof(k31));
#define DEV(extra, key)                                                                        \
	snprintf(text, sizeof(text), "[device]\nid = dev-35847000001\nmsisdn = +35847000001\n"  \
				     "channel_key = %s\n%s",                                    \
		 key, extra)

	DEV("pin = 123456\n", b64);
	assert_int_equal(phone_device_conf_parse(text, strlen(text), &c, &err), 0);
	assert_string_equal(c.dc_id, "dev-35847000001");
	assert_string_equal(c.dc_msisdn, "+35847000001");
	assert_memory_equal(c.dc_channel_key, CHANNEL_KEY, E2E_KEY_LEN);
	assert_string_equal(c.dc_pin, "123456");
	phone_device_conf_wipe(&c);
	assert_int_equal(c.dc_channel_key[0], 0);

	DEV("", b64); /* no PIN: fine (a bench user) */
	assert_int_equal(phone_device_conf_parse(text, strlen(text), &c, &err), 0);
	assert_string_equal(c.dc_pin, "");

	/* 31 bytes, not base64, a bad PIN, an unknown key: refused, and the
	 * message never repeats the value. */
	DEV("", b31);
	assert_int_equal(phone_device_conf_parse(text, strlen(text), &c, &err), -1);
	assert_null(strstr(err.pe_msg, b31));
	assert_non_null(strstr(err.pe_msg, "channel_key"));
	DEV("", "not base64!");
	assert_int_equal(phone_device_conf_parse(text, strlen(text), &c, &err), -1);
	DEV("pin = 12ab\n", b64);
	assert_int_equal(phone_device_conf_parse(text, strlen(text), &c, &err), -1);
	assert_null(strstr(err.pe_msg, "12ab"));
	DEV("pin = 123\n", b64);
	assert_int_equal(phone_device_conf_parse(text, strlen(text), &c, &err), -1);
	DEV("puk = 12345678\n", b64);
	assert_int_equal(phone_device_conf_parse(text, strlen(text), &c, &err), -1);
#undef DEV
	snprintf(text, sizeof(text), "[device]\nid = dev 1\nmsisdn = +35847000001\nchannel_key = %s\n",
		 b64);
	assert_int_equal(phone_device_conf_parse(text, strlen(text), &c, &err), -1);
	snprintf(text, sizeof(text), "[device]\nid = d\nmsisdn = 35847000001\nchannel_key = %s\n", b64);
	assert_int_equal(phone_device_conf_parse(text, strlen(text), &c, &err), -1);
	snprintf(text, sizeof(text), "[device]\nmsisdn = +35847000001\nchannel_key = %s\n", b64);
	assert_int_equal(phone_device_conf_parse(text, strlen(text), &c, &err), -1);
	assert_int_equal(c.dc_msisdn[0], 0); /* wiped on failure */
}

static void
test_demo_table_and_status(void **state)
{
	(void)state;
	assert_int_equal(phone_demo_action("+35847000001"), PHONE_DEMO_SIGN);
	assert_int_equal(phone_demo_action("+35847000002"), PHONE_DEMO_REFUSE);
	assert_int_equal(phone_demo_action("+35847000003"), PHONE_DEMO_SIGN);
	assert_int_equal(phone_demo_action("+35847000004"), PHONE_DEMO_IGNORE);
	assert_int_equal(phone_demo_action("+35847000005"), PHONE_DEMO_SIGN);
	assert_int_equal(phone_demo_action("+35847000006"), PHONE_DEMO_SIGN);
	assert_int_equal(phone_demo_action("+35847000007"), PHONE_DEMO_SIGN);
	assert_int_equal(phone_demo_action("+35847000008"), PHONE_DEMO_SIGN_OTHER);
	assert_int_equal(phone_demo_action("+35849000123"), PHONE_DEMO_SIGN);
	assert_int_equal(phone_demo_action("+41790000000"), PHONE_DEMO_SIGN);

	assert_int_equal(phone_answer_status(402), 402);
	assert_int_equal(phone_answer_status(403), 403);
	assert_int_equal(phone_answer_status(404), 404);
	assert_int_equal(phone_answer_status(422), 422);
	assert_int_equal(phone_answer_status(KS_STATUS_WRONG_PIN), 900);
	assert_int_equal(phone_answer_status(101), 900);
	assert_int_equal(phone_answer_status(900), 900);
}

static void
test_backoff(void **state)
{
	static const unsigned seq[] = { 1000, 2000, 4000, 8000, 16000, 30000, 30000 };
	unsigned b = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
		b = phone_backoff_next(b);
		assert_int_equal(b, seq[i]);
	}
	assert_int_equal(phone_backoff_jitter(1000, 0), 800);
	assert_int_equal(phone_backoff_jitter(1000, 400), 1200);
	assert_int_equal(phone_backoff_jitter(1000, 401), 800);
	for (uint32_t r = 0; r < 100000; r += 997) {
		unsigned j = phone_backoff_jitter(30000, r * 2654435761u);

		assert_true(j >= 24000 && j <= 36000);
	}
}

static void
test_sanitize(void **state)
{
	char out[64];

	(void)state;
	phone_sanitize("a b\nc\x1b[2J", out, sizeof(out), true);
	assert_string_equal(out, "a?b?c?[2J");
	phone_sanitize("Pay \xc3\xa4\n\x1b[31mred\xc2\x9b\x7f", out, sizeof(out), false);
	assert_string_equal(out, "Pay \xc3\xa4\n?[31mred??");
	/* Truncation never splits a character. */
	phone_sanitize("ab\xe2\x82\xac", out, 5, false);
	assert_string_equal(out, "ab");
	phone_sanitize("abcdef", out, 4, true);
	assert_string_equal(out, "abc");
	phone_sanitize(NULL, out, sizeof(out), true);
	assert_string_equal(out, "");
}

static void
test_nonce_set(void **state)
{
	struct phone_nonces *s = phone_nonces_new(3);
	char n[32];

	(void)state;
	assert_non_null(s);
	assert_int_equal(phone_nonces_add(s, "a"), 1);
	assert_int_equal(phone_nonces_add(s, "a"), 0);
	assert_int_equal(phone_nonces_add(s, "b"), 1);
	assert_int_equal(phone_nonces_add(s, "c"), 1);
	assert_int_equal(phone_nonces_count(s), 3);
	assert_int_equal(phone_nonces_add(s, "d"), 1); /* forgets "a", the oldest */
	assert_false(phone_nonces_has(s, "a"));
	assert_true(phone_nonces_has(s, "b") && phone_nonces_has(s, "d"));
	assert_int_equal(phone_nonces_add(s, "e"), 1); /* then "b" */
	assert_false(phone_nonces_has(s, "b"));
	assert_true(phone_nonces_has(s, "c"));
	assert_int_equal(phone_nonces_count(s), 3);
	phone_nonces_free(s);

	/* The real cap: 1024 remembered, the 1025th pushes out the first. */
	s = phone_nonces_new(MSSP_PHONE_MAX_NONCES);
	for (int i = 0; i <= MSSP_PHONE_MAX_NONCES; i++) {
		snprintf(n, sizeof(n), "n%d", i);
		assert_int_equal(phone_nonces_add(s, n), 1);
	}
	assert_int_equal(phone_nonces_count(s), MSSP_PHONE_MAX_NONCES);
	assert_false(phone_nonces_has(s, "n0"));
	assert_true(phone_nonces_has(s, "n1"));
	assert_true(phone_nonces_has(s, "n1024"));
	phone_nonces_free(s);
	assert_null(phone_nonces_new(0));
}

static int
parse(const char *text, struct phone_frame *fr)
{
	struct phone_err err = { { 0 } };

	return phone_frame_parse((const uint8_t *)text, strlen(text), fr, &err);
}

static void
test_frames(void **state)
{
	struct phone_frame fr;
	unsigned char ch[E2E_CHALLENGE_LEN];
	char b64[64], text[256];

	(void)state;
	for (size_t i = 0; i < sizeof(ch); i++)
		ch[i] = (unsigned char)i;
	EVP_EncodeBlock((unsigned char *)b64, ch, sizeof(ch));
	snprintf(text, sizeof(text), "{\"t\":\"challenge\",\"c\":\"%s\"}", b64);
	assert_int_equal(parse(text, &fr), 0);
	assert_int_equal(fr.pf_type, PHONE_FRAME_CHALLENGE);
	assert_memory_equal(fr.pf_challenge, ch, sizeof(ch));
	phone_frame_clear(&fr);
	snprintf(text, sizeof(text), "{\"t\":\"challenge\",\"c\":\"%s\",\"x\":1}", b64);
	assert_int_equal(parse(text, &fr), -1);
	EVP_EncodeBlock((unsigned char *)b64, ch, 31);
	snprintf(text, sizeof(text), "{\"t\":\"challenge\",\"c\":\"%s\"}", b64);
	assert_int_equal(parse(text, &fr), -1);

	assert_int_equal(parse("{\"t\":\"ready\"}", &fr), 0);
	assert_int_equal(fr.pf_type, PHONE_FRAME_READY);
	assert_int_equal(parse("{\"t\":\"ready\",\"t\":\"ready\"}", &fr), -1);
	assert_int_equal(parse("{\"t\":\"ready\",\"x\":0}", &fr), -1);

	assert_int_equal(parse("{\"t\":\"e2e\",\"b\":\"AQID\"}", &fr), 0);
	assert_int_equal(fr.pf_type, PHONE_FRAME_E2E);
	assert_int_equal(fr.pf_blob_len, 3);
	assert_int_equal(fr.pf_blob[2], 3);
	phone_frame_clear(&fr);
	assert_null(fr.pf_blob);
	assert_int_equal(parse("{\"t\":\"e2e\",\"b\":\"AQI\"}", &fr), -1);
	assert_int_equal(parse("{\"t\":\"e2e\",\"b\":\"\"}", &fr), -1);
	assert_int_equal(parse("{\"t\":\"e2e\",\"b\":7}", &fr), -1);
	assert_int_equal(parse("{\"t\":\"auth\"}", &fr), -1);
	assert_int_equal(parse("[\"ready\"]", &fr), -1);
	assert_int_equal(parse("{\"t\":\"ready\"", &fr), -1);
	assert_int_equal(parse("", &fr), -1);
}

/* ---- a device against a HOME stand-in -------------------------------------------- */

static struct phone_dev *
open_dev(const char *dir, struct rec *r)
{
	struct phone_err err = { { 0 } };
	struct phone_dev *d = phone_dev_open(dir, &ops, r, &err);

	if (d == NULL)
		fail_msg("phone_dev_open: %s", err.pe_msg);
	return d;
}

/* A new device DIR/<msisdn>/ (make_device), opened, logged in and past
 * HELLO on a fresh HOME session: ready for prompts.  *pub is its device
 * key's public half; dev_close frees both. */
static struct phone_dev *
online_dev(struct tt_cafx *f, const char *msisdn, const char *pin, struct rec *r,
	   struct home *h, EVP_PKEY **pub)
{
	struct phone_dev *d;
	char dir[512];

	make_device(f, msisdn, pin, dir, sizeof(dir), pub);
	d = open_dev(dir, r);
	home_login(h, d, r, *pub);
	home_hello(h, d);
	return d;
}

static void
dev_close(struct phone_dev *d, EVP_PKEY *pub)
{
	phone_dev_free(d);
	EVP_PKEY_free(pub);
}

static void
test_device_open_refusals(void **state)
{
	struct tt_cafx *f = *state;
	struct phone_err err = { { 0 } };
	struct rec r = { 0 };
	char dir[512], path[600], other[600];

	make_device(f, "+35847000101", PIN, dir, sizeof(dir), NULL);
	/* A directory named after another MSISDN is a misplaced file. */
	snprintf(other, sizeof(other), "%s/+35847000199", f->dir);
	assert_int_equal(rename(dir, other), 0);
	assert_null(phone_dev_open(other, &ops, &r, &err));
	assert_non_null(strstr(err.pe_msg, "another MSISDN"));
	assert_int_equal(rename(other, dir), 0);
	/* The keystore is locked while a device holds it. */
	{
		struct phone_dev *d = open_dev(dir, &r);

		assert_null(phone_dev_open(dir, &ops, &r, &err));
		phone_dev_free(d);
	}
	/* Incomplete: no device key. */
	snprintf(path, sizeof(path), "%s/device.key", dir);
	snprintf(other, sizeof(other), "%s/device.key.off", dir);
	assert_int_equal(rename(path, other), 0);
	assert_null(phone_dev_open(dir, &ops, &r, &err));
	assert_int_equal(rename(other, path), 0);
	/* Not a key. */
	snprintf(other, sizeof(other), "%s/device.key", dir);
	write_file(other, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", 0600);
	assert_null(phone_dev_open(dir, &ops, &r, &err));
	/* No keystore at all. */
	snprintf(path, sizeof(path), "%s/+35847000102", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_null(phone_dev_open(path, &ops, &r, &err));
	rec_clear(&r);
}

static void
test_device_sign_ack_resend(void **state)
{
	struct tt_cafx *f = *state;
	struct rec r = { 0 };
	struct home h;
	struct appmsg a;
	struct phone_dev *d;
	EVP_PKEY *pub;
	char dir[512], *content;
	size_t n;

	make_device(f, "+35847000111", PIN, dir, sizeof(dir), &pub);
	d = open_dev(dir, &r);
	assert_string_equal(phone_dev_msisdn(d), "+35847000111");
	assert_string_equal(phone_dev_id(d), "dev-35847000111");

	/* "ready" before any challenge is a protocol violation. */
	phone_dev_connected(d);
	assert_int_equal(feed(d, "{\"t\":\"ready\"}"), -1);
	phone_dev_disconnected(d);

	home_login(&h, d, &r, pub);
	/* A second challenge after auth is refused, and so is garbage. */
	assert_int_equal(feed(d, "{\"t\":\"challenge\",\"c\":\"AAAA\"}"), -1);
	assert_int_equal(feed(d, "nonsense"), -1);
	home_hello(&h, d);
	n = r.nsent;
	assert_int_equal(n, 1); /* only auth so far */

	/* A prompt: logged, shown, with the keystore's view of the key. */
	home_sign(&h, d, NONCE1, "sign");
	assert_string_equal(last_event(&r), "PROMPT +35847000111 " NONCE1 " sign");
	assert_int_equal(r.nprompts, 1);
	assert_string_equal(r.prompt, NONCE1);
	assert_true(r.pv.pp_has_pin);
	assert_int_equal(r.pv.pp_pin_tries, MSSP_KEYSTORE_PIN_TRIES);
	assert_int_equal(r.pv.pp_key_status, 0);
	assert_string_equal(r.pv.pp_ap_name, "Demo AP");
	assert_string_equal(r.pv.pp_dtbd, DTBS);
	assert_int_equal(phone_dev_pending(d), 1);

	/* A wrong PIN asks again (prompt kept, one try fewer); nothing sent. */
	assert_int_equal(phone_dev_sign(d, NONCE1, "000000", PHONE_SIGN_RETRY_PIN),
			 KS_STATUS_WRONG_PIN);
	assert_int_equal(phone_dev_pending(d), 1);
	assert_int_equal(phone_dev_prompt(d, NONCE1)->pp_pin_tries, MSSP_KEYSTORE_PIN_TRIES - 1);
	assert_int_equal(r.nsent, n);

	/* The right PIN: a 500 answer with a CMS over the DTBS, sent at once. */
	assert_int_equal(phone_dev_sign(d, NONCE1, PIN, PHONE_SIGN_RETRY_PIN), 0);
	assert_string_equal(last_event(&r), "ANSWER +35847000111 " NONCE1 " 500");
	assert_int_equal(phone_dev_pending(d), 0);
	assert_null(phone_dev_prompt(d, NONCE1));
	assert_int_equal(phone_dev_unacked(d), 1);
	assert_int_equal(r.nsent, n + 1);
	home_open(&h, &r, n, &a);
	assert_string_equal(a.am_nonce, NONCE1);
	assert_int_equal(a.am_status, 500);
	content = cms_content(f, &a);
	assert_string_equal(content, DTBS);
	free(content);
	appmsg_clear(&a);
	assert_int_equal(phone_dev_sign(d, NONCE1, PIN, 0), -1); /* answered */

	/* The same prompt again (HomeMSSP re-sent it): never asked twice, the
	 * unacknowledged answer goes again. */
	home_sign(&h, d, NONCE1, "sign");
	assert_int_equal(r.nprompts, 1);
	assert_int_equal(r.nsent, n + 2);
	home_open(&h, &r, n + 1, &a);
	assert_int_equal(a.am_status, 500);
	appmsg_clear(&a);

	/* A new connection and session: the answer is re-sent after HELLO. */
	phone_dev_disconnected(d);
	home_login(&h, d, &r, pub);
	n = r.nsent;
	home_hello(&h, d);
	assert_int_equal(r.nsent, n + 1);
	home_open(&h, &r, n, &a);
	assert_string_equal(a.am_nonce, NONCE1);
	appmsg_clear(&a);

	/* Acknowledged: forgotten, not re-sent on the next session, and a
	 * late copy of the prompt is still not shown. */
	home_status(&h, d, APPMSG_ACK, NONCE1, 502);
	assert_string_equal(last_event(&r), "ACK +35847000111 " NONCE1 " 502");
	assert_int_equal(phone_dev_unacked(d), 0);
	home_hello(&h, d);
	assert_int_equal(r.nsent, n + 1);
	home_sign(&h, d, NONCE1, "sign");
	assert_int_equal(r.nprompts, 1);
	assert_int_equal(r.nsent, n + 1);

	/* A replayed sealed blob does not open: dropped with a warning. */
	{
		struct appmsg m;
		char *fr;
		size_t w;

		memset(&m, 0, sizeof(m));
		m.am_type = APPMSG_RECEIPT;
		snprintf(m.am_nonce, sizeof(m.am_nonce), NONCE1);
		m.am_message = (char *)"Thanks";
		fr = home_seal(&h, &m);
		assert_int_equal(feed(d, fr), 0);
		assert_string_equal(last_event(&r), "RECEIPT +35847000111 " NONCE1);
		assert_string_equal(r.receipt, "Thanks");
		w = r.nwarn;
		n = r.nevents;
		assert_int_equal(feed(d, fr), 0);
		assert_int_equal(r.nevents, n);
		assert_int_equal(r.nwarn, w + 1);
		free(fr);
	}
	dev_close(d, pub);
	rec_clear(&r);
}

static void
test_device_cancel_refuse_click(void **state)
{
	struct tt_cafx *f = *state;
	struct rec r = { 0 };
	struct home h;
	struct appmsg a;
	struct phone_dev *d;
	EVP_PKEY *pub;
	char *content;
	size_t n;

	/* Answered while offline: kept, and sent on the first session. */
	d = online_dev(f, "+35847000121", NULL, &r, &h, &pub);
	home_sign(&h, d, NONCE3, "click");
	assert_false(r.pv.pp_has_pin);
	phone_dev_disconnected(d);
	assert_int_equal(phone_dev_sign(d, NONCE3, NULL, 0), 0);
	assert_string_equal(last_event(&r), "ANSWER +35847000121 " NONCE3 " 500");
	home_login(&h, d, &r, pub);
	n = r.nsent;
	home_hello(&h, d);
	assert_int_equal(r.nsent, n + 1);
	home_open(&h, &r, n, &a);
	content = cms_content(f, &a);
	assert_string_equal(content, DTBS);
	free(content);
	appmsg_clear(&a);

	/* Cancel withdraws the prompt; a re-sent copy is not shown again. */
	home_sign(&h, d, NONCE1, "click");
	assert_int_equal(r.nprompts, 2);
	home_status(&h, d, APPMSG_CANCEL, NONCE1, 208);
	assert_string_equal(last_event(&r), "CANCEL +35847000121 " NONCE1 " 208");
	assert_string_equal(r.withdrawn, NONCE1);
	assert_int_equal(phone_dev_pending(d), 0);
	assert_int_equal(phone_dev_sign(d, NONCE1, NULL, 0), -1);
	home_sign(&h, d, NONCE1, "click");
	assert_int_equal(r.nprompts, 2);

	/* The user says no: 401, no CMS. */
	home_sign(&h, d, NONCE2, "click");
	assert_int_equal(phone_dev_refuse(d, NONCE2, 208), -1); /* not a phone's */
	n = r.nsent;
	assert_int_equal(phone_dev_refuse(d, NONCE2, 401), 0);
	assert_string_equal(last_event(&r), "ANSWER +35847000121 " NONCE2 " 401");
	home_open(&h, &r, n, &a);
	assert_int_equal(a.am_status, 401);
	assert_null(a.am_cms);
	appmsg_clear(&a);

	/* A key group the phone does not have: the prompt says 404. */
	home_sign(&h, d, "nonce-0000000000000404", "nokey");
	assert_int_equal(r.pv.pp_key_status, 404);
	assert_int_equal(phone_dev_sign(d, "nonce-0000000000000404", NULL, 0), 0);
	assert_string_equal(last_event(&r), "ANSWER +35847000121 nonce-0000000000000404 404");

	/* Too many prompts waiting: the extra one is refused (900). */
	for (int i = 0; i <= MSSP_PHONE_MAX_PROMPTS; i++) {
		char nn[40];

		snprintf(nn, sizeof(nn), "nonce-many-%010d", i);
		home_sign(&h, d, nn, "click");
	}
	assert_int_equal(phone_dev_pending(d), MSSP_PHONE_MAX_PROMPTS);
	assert_string_equal(last_event(&r), "ANSWER +35847000121 nonce-many-0000000016 900");
	dev_close(d, pub);
	rec_clear(&r);
}

/* The demo table with real keystore outcomes. */
static void
test_device_demo(void **state)
{
	struct tt_cafx *f = *state;
	struct rec r = { 0 };
	struct home h;
	struct appmsg a;
	struct phone_dev *d;
	EVP_PKEY *pub;
	char *content;
	size_t n;

	/* 008 signs other data: the CMS is valid but not over the DTBS. */
	d = online_dev(f, "+35847000008", PIN, &r, &h, &pub);
	home_sign(&h, d, NONCE1, "sign");
	n = r.nsent;
	assert_int_equal(phone_dev_demo(d, NONCE1), 0);
	home_open(&h, &r, n, &a);
	assert_int_equal(a.am_status, 500);
	content = cms_content(f, &a);
	assert_true(strncmp(content, DTBS, strlen(DTBS)) == 0);
	assert_true(strcmp(content, DTBS) != 0);
	free(content);
	appmsg_clear(&a);
	dev_close(d, pub);

	/* 002 cancels; 004 never answers. */
	d = online_dev(f, "+35847000002", PIN, &r, &h, &pub);
	home_sign(&h, d, NONCE1, "sign");
	assert_int_equal(phone_dev_demo(d, NONCE1), 0);
	assert_string_equal(last_event(&r), "ANSWER +35847000002 " NONCE1 " 401");
	dev_close(d, pub);
	d = online_dev(f, "+35847000004", PIN, &r, &h, &pub);
	home_sign(&h, d, NONCE1, "sign");
	n = r.nsent;
	assert_int_equal(phone_dev_demo(d, NONCE1), 0);
	assert_int_equal(r.nsent, n);
	assert_int_equal(phone_dev_pending(d), 1);
	dev_close(d, pub);

	/* A demo user whose configured PIN is wrong: each prompt is a bug
	 * (900) and costs a try; the third blocks the PIN, and from then on
	 * the keystore says 402 (what demo user 003 shows). */
	d = online_dev(f, "+35847000003", "999999", &r, &h, &pub);
	home_sign(&h, d, "nonce-demo-003-000001", "sign");
	assert_int_equal(phone_dev_demo(d, "nonce-demo-003-000001"), 0);
	assert_string_equal(last_event(&r), "ANSWER +35847000003 nonce-demo-003-000001 900");
	home_sign(&h, d, "nonce-demo-003-000002", "sign");
	assert_int_equal(phone_dev_demo(d, "nonce-demo-003-000002"), 0);
	home_sign(&h, d, "nonce-demo-003-000003", "sign");
	assert_int_equal(phone_dev_demo(d, "nonce-demo-003-000003"), 0);
	assert_string_equal(last_event(&r), "ANSWER +35847000003 nonce-demo-003-000003 402");
	home_sign(&h, d, "nonce-demo-003-000004", "sign");
	assert_int_equal(r.pv.pp_key_status, 402);
	assert_int_equal(phone_dev_demo(d, "nonce-demo-003-000004"), 0);
	assert_string_equal(last_event(&r), "ANSWER +35847000003 nonce-demo-003-000004 402");
	/* ... while the PIN-less key still signs at once, and a missing
	 * group gets the keystore's 404 (demo user 006). */
	home_sign(&h, d, "nonce-demo-003-000005", "click");
	assert_int_equal(phone_dev_demo(d, "nonce-demo-003-000005"), 0);
	assert_string_equal(last_event(&r), "ANSWER +35847000003 nonce-demo-003-000005 500");
	home_sign(&h, d, "nonce-demo-003-000006", "authn");
	assert_int_equal(phone_dev_demo(d, "nonce-demo-003-000006"), 0);
	assert_string_equal(last_event(&r), "ANSWER +35847000003 nonce-demo-003-000006 404");
	dev_close(d, pub);

	/* 001 with the right PIN signs. */
	d = online_dev(f, "+35847000001", PIN, &r, &h, &pub);
	home_sign(&h, d, NONCE1, "sign");
	assert_int_equal(phone_dev_demo(d, NONCE1), 0);
	assert_string_equal(last_event(&r), "ANSWER +35847000001 " NONCE1 " 500");
	assert_int_equal(phone_dev_demo(d, NONCE1), -1); /* no longer pending */
	dev_close(d, pub);
	rec_clear(&r);
}

static int
setup(void **state)
{
	return tt_cafx_setup(state, "test_phone_app", "Phone test CA");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conf_load),
		cmocka_unit_test(test_device_conf),
		cmocka_unit_test(test_demo_table_and_status),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_sanitize),
		cmocka_unit_test(test_nonce_set),
		cmocka_unit_test(test_frames),
		cmocka_unit_test(test_device_open_refusals),
		cmocka_unit_test(test_device_sign_ack_resend),
		cmocka_unit_test(test_device_cancel_refuse_click),
		cmocka_unit_test(test_device_demo),
	};

	return cmocka_run_group_tests(tests, setup, tt_cafx_teardown);
}
