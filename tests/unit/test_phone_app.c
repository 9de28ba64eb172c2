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
#include <openssl/rand.h>
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
	const unsigned char *key; /* channel key; NULL: CHANNEL_KEY */
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

	memset(h, 0, sizeof(*h)); /* key: CHANNEL_KEY unless set after */
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
	assert_int_equal(e2e_session_init(&h->s, E2E_ROLE_HOME, h->device_id,
					  h->key ? h->key : CHANNEL_KEY, hn,
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

/* Open the sent frame `i` as HomeMSSP: a message of type `t`. */
static void
home_open_t(struct home *h, const struct rec *r, size_t i, struct appmsg *out,
	    enum appmsg_type t)
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
	assert_int_equal(out->am_type, t);
	free(pt);
	free(blob);
}

static void
home_open(struct home *h, const struct rec *r, size_t i, struct appmsg *out)
{
	home_open_t(h, r, i, out, APPMSG_ANSWER);
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
	DEV("colour = red\n", b64);
	assert_int_equal(phone_device_conf_parse(text, strlen(text), &c, &err), -1);
	/* the demo PUK: exactly MSSP_KEYSTORE_PUK_LEN digits */
	DEV("puk = 12345678\n", b64);
	assert_int_equal(phone_device_conf_parse(text, strlen(text), &c, &err), 0);
	assert_string_equal(c.dc_puk, "12345678");
	phone_device_conf_wipe(&c);
	DEV("puk = 1234567\n", b64);
	assert_int_equal(phone_device_conf_parse(text, strlen(text), &c, &err), -1);
	DEV("puk = 123456789\n", b64);
	assert_int_equal(phone_device_conf_parse(text, strlen(text), &c, &err), -1);
	DEV("puk = 1234567x\n", b64);
	assert_int_equal(phone_device_conf_parse(text, strlen(text), &c, &err), -1);
	assert_null(strstr(err.pe_msg, "1234567x"));
	assert_true(phone_pin_ok("1234"));
	assert_true(phone_pin_ok("12345678"));
	assert_false(phone_pin_ok("123"));
	assert_false(phone_pin_ok("123456789"));
	assert_false(phone_pin_ok("12a4"));
	assert_false(phone_pin_ok(NULL));
	assert_true(phone_puk_ok("00000000"));
	assert_false(phone_puk_ok("0000000"));
	assert_false(phone_puk_ok(""));
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
	/* device.conf's demo_action names them under any number */
	assert_int_equal(phone_demo_action_parse("sign"), PHONE_DEMO_SIGN);
	assert_int_equal(phone_demo_action_parse("refuse"), PHONE_DEMO_REFUSE);
	assert_int_equal(phone_demo_action_parse("ignore"), PHONE_DEMO_IGNORE);
	assert_int_equal(phone_demo_action_parse("sign_other"), PHONE_DEMO_SIGN_OTHER);
	assert_int_equal(phone_demo_action_parse("Sign"), 0);
	assert_int_equal(phone_demo_action_parse(""), 0);
	assert_int_equal(phone_demo_action_parse(NULL), 0);

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

/* ---- activation (the HOME side computed with pki/e2e as HomeMSSP does) ---- */

#define CODE "1234-5678-9012"
#define CODE_DIGITS "123456789012"

/* Decode base64 member `name` of `o` into a new buffer. */
static unsigned char *
b64_member(json_t *o, const char *name, size_t *len)
{
	const char *s = json_string_value(json_object_get(o, name));
	unsigned char *out;
	long n;

	assert_non_null(s);
	out = malloc(strlen(s) + 1);
	n = mss_lex_base64_decode(s, out, strlen(s) + 1);
	assert_true(n > 0);
	*len = (size_t)n;
	return out;
}

static char *
b64_text(const unsigned char *d, size_t n)
{
	char *s = malloc(4 * ((n + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)s, d, (int)n);
	return s;
}

/* What the AFE/HomeMSSP side keeps during one activation. */
struct act_home {
	EVP_PKEY *bind;
	unsigned char *bspki;
	size_t bspki_len;
	unsigned char hn[E2E_NONCE_LEN], an[E2E_NONCE_LEN];
	uint8_t *t;
	size_t tlen;
	unsigned char *dev_spki, *app_bind;
	size_t dev_spki_len, app_bind_len;
};

static void
act_home_free(struct act_home *ah)
{
	EVP_PKEY_free(ah->bind);
	OPENSSL_free(ah->bspki);
	free(ah->t);
	free(ah->dev_spki);
	free(ah->app_bind);
	memset(ah, 0, sizeof(*ah));
}

static int
act_feed(struct phone_activation *a, const char *text, char **out)
{
	struct phone_err err = { { 0 } };
	size_t len = 0;

	return phone_activation_frame(a, (const uint8_t *)text, strlen(text), out, &len, &err);
}

/* Run the protocol up to the proof: checks the "activate" frame, sends
 * activate_hello, checks the proof (signature over T by the device key,
 * HMAC with the code's hash). */
static void
act_to_proof(struct phone_activation *a, const char *msisdn, struct act_home *ah)
{
	struct phone_err err = { { 0 } };
	struct pki_err pe = { 0 };
	char *fr = NULL, *out = NULL, *hn64, *b64, hello[1024];
	unsigned char *sig, *mac, *an, h[32], want[32];
	size_t len = 0, siglen, maclen, anlen;
	json_t *o;

	memset(ah, 0, sizeof(*ah));
	assert_int_equal(phone_activation_start(a, &fr, &len, &err), 0);
	assert_int_equal(strlen(fr), len);
	o = json_loads(fr, 0, NULL);
	assert_non_null(o);
	assert_int_equal(json_object_size(o), 3);
	assert_string_equal(json_string_value(json_object_get(o, "t")), "activate");
	assert_string_equal(json_string_value(json_object_get(o, "m")), msisdn);
	an = b64_member(o, "n", &anlen);
	assert_int_equal(anlen, E2E_NONCE_LEN);
	memcpy(ah->an, an, E2E_NONCE_LEN);
	free(an);
	json_decref(o);
	free(fr);
	/* started once only */
	assert_int_equal(phone_activation_start(a, &fr, &len, &err), -1);
	/* the AFE's greeting challenge is not answered (activate replaces
	 * auth) */
	assert_int_equal(act_feed(a, "{\"t\":\"challenge\",\"c\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}",
				  &out),
			 PHONE_ACT_NONE);
	assert_null(out);

	ah->bind = e2e_binding_keygen(&pe);
	assert_non_null(ah->bind);
	assert_int_equal(e2e_spki_der(ah->bind, &ah->bspki, &ah->bspki_len, &pe), 0);
	assert_int_equal(RAND_bytes(ah->hn, sizeof(ah->hn)), 1);
	hn64 = b64_text(ah->hn, sizeof(ah->hn));
	b64 = b64_text(ah->bspki, ah->bspki_len);
	snprintf(hello, sizeof(hello), "{\"t\":\"activate_hello\",\"n\":\"%s\",\"b\":\"%s\"}", hn64,
		 b64);
	free(hn64);
	free(b64);
	assert_int_equal(act_feed(a, hello, &out), PHONE_ACT_SEND);
	o = json_loads(out, 0, NULL);
	assert_non_null(o);
	assert_int_equal(json_object_size(o), 5);
	assert_string_equal(json_string_value(json_object_get(o, "t")), "activate_proof");
	ah->dev_spki = b64_member(o, "k", &ah->dev_spki_len);
	ah->app_bind = b64_member(o, "b", &ah->app_bind_len);
	sig = b64_member(o, "s", &siglen);
	mac = b64_member(o, "p", &maclen);
	json_decref(o);
	free(out);
	ah->t = e2e_activation_transcript(msisdn, ah->an, ah->hn, ah->bspki, ah->bspki_len,
					  ah->app_bind, ah->app_bind_len, ah->dev_spki,
					  ah->dev_spki_len, &ah->tlen);
	assert_non_null(ah->t);
	assert_int_equal(e2e_verify_msg(ah->dev_spki, ah->dev_spki_len, ah->t, ah->tlen, sig, siglen,
					&pe),
			 0);
	assert_int_equal(e2e_activation_code_hash(CODE_DIGITS, h), 0);
	assert_int_equal(e2e_activation_mac(h, ah->t, ah->tlen, "app", NULL, want), 0);
	assert_int_equal(maclen, 32);
	assert_memory_equal(mac, want, 32);
	/* ... which another code would not give */
	assert_int_equal(e2e_activation_code_hash("123456789013", h), 0);
	assert_int_equal(e2e_activation_mac(h, ah->t, ah->tlen, "app", NULL, want), 0);
	assert_memory_not_equal(mac, want, 32);
	free(sig);
	free(mac);
}

/* The "activated" frame for device `id` with the MAC of `code_digits`. */
static char *
act_done_frame(const struct act_home *ah, const char *id, const char *code_digits)
{
	unsigned char h[32], mac[32];
	char *m64, *fr = malloc(256);

	assert_int_equal(e2e_activation_code_hash(code_digits, h), 0);
	assert_int_equal(e2e_activation_mac(h, ah->t, ah->tlen, "home", id, mac), 0);
	m64 = b64_text(mac, sizeof(mac));
	snprintf(fr, 256, "{\"t\":\"activated\",\"d\":\"%s\",\"p\":\"%s\"}", id, m64);
	free(m64);
	return fr;
}

/* A complete activation of `msisdn` saved under f->dir (demo pin/puk as
 * given): *pub is the device key's public half, key the channel key as
 * HomeMSSP derives it. */
static void
activate_device(struct tt_cafx *f, const char *msisdn, const char *pin, const char *puk,
		char *dir, size_t cap, EVP_PKEY **pub, unsigned char key[E2E_KEY_LEN])
{
	struct phone_err err = { { 0 } };
	struct pki_err pe = { 0 };
	struct phone_activation *a = phone_activation_new(msisdn, CODE, &err);
	struct act_home ah;
	char id[64], *fr, *out = NULL;
	const unsigned char *p;

	assert_non_null(a);
	act_to_proof(a, msisdn, &ah);
	snprintf(id, sizeof(id), "dev-%s", msisdn + 1);
	fr = act_done_frame(&ah, id, CODE_DIGITS);
	assert_int_equal(act_feed(a, fr, &out), PHONE_ACT_DONE);
	assert_null(out);
	free(fr);
	assert_string_equal(phone_activation_device_id(a), id);
	assert_int_equal(e2e_binding_derive(ah.bind, ah.app_bind, ah.app_bind_len, id, key, &pe), 0);
	if (phone_activation_save(a, f->dir, pin, puk, false, &fast, &err) != 0)
		fail_msg("save: %s", err.pe_msg);
	p = ah.dev_spki;
	*pub = d2i_PUBKEY(NULL, &p, (long)ah.dev_spki_len);
	assert_non_null(*pub);
	snprintf(dir, cap, "%s/%s", f->dir, msisdn);
	act_home_free(&ah);
	phone_activation_free(a);
}

static void
test_activation(void **state)
{
	struct tt_cafx *f = *state;
	struct phone_err err = { { 0 } };
	struct phone_device_conf dc;
	struct phone_activation *a;
	struct act_home ah;
	struct rec r = { 0 };
	struct home h;
	struct phone_dev *d;
	struct stat st, st2;
	unsigned char key[E2E_KEY_LEN];
	char dir[512], path[600], norm[MSSP_REG_ACTIVATION_DIGITS + 1], *fr, *out;
	EVP_PKEY *pub;

	/* the code as typed */
	assert_int_equal(phone_activation_code_normalize("1234-5678-9012", norm), 0);
	assert_string_equal(norm, CODE_DIGITS);
	assert_int_equal(phone_activation_code_normalize(" 1234 5678 9012 ", norm), 0);
	assert_string_equal(norm, CODE_DIGITS);
	assert_int_equal(phone_activation_code_normalize("123456789012", norm), 0);
	assert_int_equal(phone_activation_code_normalize("12345678901", norm), -1);
	assert_int_equal(phone_activation_code_normalize("1234567890123", norm), -1);
	assert_int_equal(phone_activation_code_normalize("1234_5678_9012", norm), -1);
	assert_int_equal(phone_activation_code_normalize("1234-5678-901x", norm), -1);
	assert_int_equal(phone_activation_code_normalize("", norm), -1);
	assert_null(phone_activation_new("35847000301", CODE, &err));
	assert_null(phone_activation_new("+3584700030a", CODE, &err));
	assert_null(phone_activation_new("+35847000301", "1234", &err));
	assert_non_null(strstr(err.pe_msg, "12 digits"));

	/* A complete activation: the directory holds a usable phone whose
	 * channel key is HomeMSSP's. */
	activate_device(f, "+35847000301", PIN, PUK, dir, sizeof(dir), &pub, key);
	snprintf(path, sizeof(path), "%s/device.key", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/device.conf", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(phone_device_conf_load(path, &dc, &err), 0);
	assert_string_equal(dc.dc_id, "dev-35847000301");
	assert_string_equal(dc.dc_msisdn, "+35847000301");
	assert_memory_equal(dc.dc_channel_key, key, E2E_KEY_LEN);
	assert_string_equal(dc.dc_pin, PIN);
	assert_string_equal(dc.dc_puk, PUK);
	phone_device_conf_wipe(&dc);
	{
		char *pem;

		snprintf(path, sizeof(path), "%s/device.key", dir);
		pem = tu_slurp(path, NULL);

		assert_non_null(strstr(pem, "-----BEGIN PRIVATE KEY-----")); /* PKCS#8 */
		OPENSSL_cleanse(pem, strlen(pem));
		free(pem);
	}
	/* nothing left beside it */
	{
		char cmd[700];

		snprintf(cmd, sizeof(cmd), "ls -a %s | grep -q '^\\.activate-'", f->dir);
		assert_int_not_equal(system(cmd), 0);
	}
	d = open_dev(dir, &r);
	home_login(&h, d, &r, pub);
	h.key = key;
	home_hello(&h, d);
	home_status(&h, d, APPMSG_ACK, NONCE1, 0); /* opens: the keys agree */
	assert_string_equal(last_event(&r), "ACK +35847000301 " NONCE1 " 0");
	phone_dev_free(d);

	/* Saving over it: refused without force (untouched), replaced with. */
	a = phone_activation_new("+35847000301", CODE, &err);
	act_to_proof(a, "+35847000301", &ah);
	fr = act_done_frame(&ah, "dev-35847000301b", CODE_DIGITS);
	assert_int_equal(act_feed(a, fr, &out), PHONE_ACT_DONE);
	free(fr);
	/* nothing is accepted after the end */
	assert_int_equal(act_feed(a, "{\"t\":\"activated\"}", &out), -1);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(phone_activation_save(a, f->dir, NULL, NULL, false, &fast, &err), -1);
	assert_non_null(strstr(err.pe_msg, "exists"));
	assert_int_equal(phone_activation_save(a, f->dir, "12", NULL, true, &fast, &err), -1);
	assert_int_equal(phone_activation_save(a, f->dir, NULL, "1234567", true, &fast, &err), -1);
	snprintf(path, sizeof(path), "%s/device.conf", dir);
	assert_int_equal(phone_device_conf_load(path, &dc, &err), 0);
	assert_string_equal(dc.dc_id, "dev-35847000301");
	phone_device_conf_wipe(&dc);
	assert_int_equal(phone_activation_save(a, f->dir, NULL, NULL, true, &fast, &err), 0);
	assert_int_equal(stat(dir, &st2), 0);
	assert_true(st.st_ino != st2.st_ino);
	snprintf(path, sizeof(path), "%s/device.conf", dir);
	assert_int_equal(phone_device_conf_load(path, &dc, &err), 0);
	assert_string_equal(dc.dc_id, "dev-35847000301b");
	assert_string_equal(dc.dc_pin, ""); /* none given */
	assert_string_equal(dc.dc_puk, "");
	phone_device_conf_wipe(&dc);
	act_home_free(&ah);
	phone_activation_free(a);

	/* A wrong home MAC (the other end does not know the code): refused,
	 * and nothing can be saved. */
	a = phone_activation_new("+35847000302", CODE, &err);
	act_to_proof(a, "+35847000302", &ah);
	fr = act_done_frame(&ah, "dev-35847000302", "123456789013");
	assert_int_equal(act_feed(a, fr, &out), -1);
	free(fr);
	assert_null(phone_activation_device_id(a));
	assert_int_equal(phone_activation_save(a, f->dir, PIN, PUK, false, &fast, &err), -1);
	snprintf(path, sizeof(path), "%s/+35847000302", f->dir);
	assert_int_equal(stat(path, &st), -1);
	/* ... and once failed, the right one is not accepted either */
	fr = act_done_frame(&ah, "dev-35847000302", CODE_DIGITS);
	assert_int_equal(act_feed(a, fr, &out), -1);
	free(fr);
	act_home_free(&ah);
	phone_activation_free(a);

	/* A MAC for another device id; a bad device id. */
	a = phone_activation_new("+35847000302", CODE, &err);
	act_to_proof(a, "+35847000302", &ah);
	fr = act_done_frame(&ah, "dev-other", CODE_DIGITS);
	fr[strlen("{\"t\":\"activated\",\"d\":\"dev-") ] = 'X'; /* id changed after the MAC */
	assert_int_equal(act_feed(a, fr, &out), -1);
	free(fr);
	act_home_free(&ah);
	phone_activation_free(a);
	a = phone_activation_new("+35847000302", CODE, &err);
	act_to_proof(a, "+35847000302", &ah);
	fr = act_done_frame(&ah, "dev/1", CODE_DIGITS);
	assert_int_equal(act_feed(a, fr, &out), -1);
	free(fr);
	act_home_free(&ah);
	phone_activation_free(a);

	/* Out of order and malformed frames. */
	a = phone_activation_new("+35847000302", CODE, &err);
	assert_int_equal(act_feed(a, "{\"t\":\"activate_hello\",\"n\":\"AAAAAAAAAAAAAAAAAAAAAA==\","
				     "\"b\":\"AAAA\"}",
				  &out),
			 -1); /* before start */
	phone_activation_free(a);
	{
		static const char *const bad[] = {
			"{\"t\":\"activated\",\"d\":\"x\",\"p\":\"AAAA\"}",
			"{\"t\":\"activate_hello\",\"n\":\"AAAA\",\"b\":\"AAAA\"}",
			"{\"t\":\"activate_hello\",\"n\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}",
			"{\"t\":\"activate_hello\",\"n\":\"AAAAAAAAAAAAAAAAAAAAAA==\",\"b\":\"AAAA\","
			"\"x\":1}",
			"{\"t\":\"activate_hello\",\"n\":\"AAAAAAAAAAAAAAAAAAAAAA==\",\"b\":\"\"}",
			"{\"t\":\"challenge\",\"c\":\"AAAA\"}", /* malformed */
			"{\"t\":\"ready\"}",
			"[]",
			"not json",
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			size_t len;

			a = phone_activation_new("+35847000302", CODE, &err);
			assert_int_equal(phone_activation_start(a, &fr, &len, &err), 0);
			free(fr);
			if (act_feed(a, bad[i], &out) != -1)
				fail_msg("accepted: %s", bad[i]);
			phone_activation_free(a);
		}
	}
	EVP_PKEY_free(pub);
	rec_clear(&r);
}

/* ---- registration jobs ---------------------------------------------------------- */

#define JOB1 "J0000000000000001"
#define JOB2 "J0000000000000002"
#define JOB3 "J0000000000000003"

static struct phone_job last_job;
static size_t njobs;

static void
op_job(void *arg, const struct phone_job *j)
{
	(void)arg;
	last_job = *j;
	njobs++;
}

static const struct phone_dev_ops job_ops = {
	.po_send = op_send,
	.po_event = op_event,
	.po_prompt = op_prompt,
	.po_withdraw = op_withdraw,
	.po_receipt = op_receipt,
	.po_warn = op_warn,
	.po_job = op_job,
};

static void
home_keygen(struct home *h, struct phone_dev *d, const char *job, const char *key, bool pin)
{
	struct appmsg m;

	memset(&m, 0, sizeof(m));
	m.am_type = APPMSG_KEYGEN;
	snprintf(m.am_job, sizeof(m.am_job), "%s", job);
	snprintf(m.am_key, sizeof(m.am_key), "%s", key);
	snprintf(m.am_purpose, sizeof(m.am_purpose), "sign");
	snprintf(m.am_profiles[0], sizeof(m.am_profiles[0]), "mss:demo:sign:loa3:app");
	m.am_nprofiles = 1;
	m.am_pin = pin;
	snprintf(m.am_alg, sizeof(m.am_alg), "ec-p256");
	home_send(h, d, &m);
}

static void
home_job(struct home *h, struct phone_dev *d, enum appmsg_type t, const char *job,
	 const char *key)
{
	struct appmsg m;

	memset(&m, 0, sizeof(m));
	m.am_type = t;
	snprintf(m.am_job, sizeof(m.am_job), "%s", job);
	if (key != NULL)
		snprintf(m.am_key, sizeof(m.am_key), "%s", key);
	home_send(h, d, &m);
}

static void
home_cert(struct home *h, struct phone_dev *d, const char *job, const char *key, X509 *cert,
	  X509 *ca)
{
	struct appmsg m;
	unsigned char *p = NULL;
	int n;

	memset(&m, 0, sizeof(m));
	m.am_type = APPMSG_CERT;
	snprintf(m.am_job, sizeof(m.am_job), "%s", job);
	snprintf(m.am_key, sizeof(m.am_key), "%s", key);
	n = i2d_X509(cert, &p);
	assert_true(n > 0);
	m.am_der = malloc((size_t)n);
	memcpy(m.am_der, p, (size_t)n);
	m.am_der_len = (size_t)n;
	OPENSSL_free(p);
	if (ca != NULL) {
		p = NULL;
		n = i2d_X509(ca, &p);
		m.am_chain[0] = malloc((size_t)n);
		memcpy(m.am_chain[0], p, (size_t)n);
		m.am_chain_len[0] = (size_t)n;
		m.am_nchain = 1;
		OPENSSL_free(p);
	}
	home_send(h, d, &m);
	appmsg_clear(&m);
}

/* The job answer in sent frame i: status, and the CSR (verified: signed by
 * its own key) as a new X509_REQ or NULL. */
static X509_REQ *
job_answer(struct home *h, const struct rec *r, size_t i, const char *job, int status)
{
	struct appmsg a;
	const unsigned char *p;
	X509_REQ *req = NULL;

	home_open_t(h, r, i, &a, APPMSG_JOB_ANSWER);
	assert_string_equal(a.am_job, job);
	assert_int_equal(a.am_status, status);
	if (a.am_der != NULL) {
		EVP_PKEY *k;

		p = a.am_der;
		req = d2i_X509_REQ(NULL, &p, (long)a.am_der_len);
		assert_non_null(req);
		k = X509_REQ_get0_pubkey(req);
		assert_non_null(k);
		assert_int_equal(X509_REQ_verify(req, k), 1);
	}
	appmsg_clear(&a);
	return req;
}

static void
test_jobs_keygen_cert(void **state)
{
	struct tt_cafx *f = *state;
	struct phone_err err = { { 0 } };
	struct pki_err pe = { 0 };
	struct rec r = { 0 };
	struct home h;
	struct appmsg a;
	struct phone_dev *d;
	unsigned char key[E2E_KEY_LEN];
	char dir[512], path[600], *content;
	EVP_PKEY *pub, *k1, *k3;
	X509_REQ *req, *req2;
	X509 *cert;
	size_t n;

	activate_device(f, "+35847000311", PIN, PUK, dir, sizeof(dir), &pub, key);
	d = phone_dev_open(dir, &job_ops, &r, &err);
	assert_non_null(d);
	home_login(&h, d, &r, pub);
	h.key = key;
	home_hello(&h, d);

	/* keygen with a PIN: waits for the user (here: the demo answer) */
	njobs = 0;
	home_keygen(&h, d, JOB1, "sign", true);
	assert_string_equal(last_event(&r), "JOB +35847000311 " JOB1 " keygen sign");
	assert_int_equal(njobs, 1);
	assert_string_equal(last_job.pj_job, JOB1);
	assert_string_equal(last_job.pj_key, "sign");
	assert_false(last_job.pj_unblock);
	assert_true(last_job.pj_pin);
	assert_false(last_job.pj_exists);
	assert_int_equal(phone_dev_jobs_pending(d), 1);
	/* the same job again while waiting: not asked twice */
	home_keygen(&h, d, JOB1, "sign", true);
	assert_int_equal(njobs, 1);
	n = r.nsent;
	assert_int_equal(phone_dev_job_demo(d, JOB1), 0);
	assert_int_equal(phone_dev_jobs_pending(d), 0);
	assert_null(phone_dev_job(d, JOB1));
	assert_string_equal(last_event(&r), "JOB_ANSWER +35847000311 " JOB1 " 0");
	assert_int_equal(r.nsent, n + 1);
	req = job_answer(&h, &r, n, JOB1, 0);
	assert_non_null(req);
	k1 = X509_REQ_get_pubkey(req);
	assert_true(EVP_PKEY_is_a(k1, "EC"));
	assert_int_equal(phone_dev_jobs_unacked(d), 1);

	/* the job comes again (HomeMSSP lost the answer): the same answer,
	 * the same CSR bytes, no second key, no user */
	home_keygen(&h, d, JOB1, "sign", true);
	assert_int_equal(njobs, 1);
	assert_int_equal(r.nsent, n + 2);
	req2 = job_answer(&h, &r, n + 1, JOB1, 0);
	assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(req2), k1), 1);
	{
		unsigned char *d1 = NULL, *d2 = NULL;
		int l1 = i2d_X509_REQ(req, &d1), l2 = i2d_X509_REQ(req2, &d2);

		assert_int_equal(l1, l2);
		assert_memory_equal(d1, d2, (size_t)l1);
		OPENSSL_free(d1);
		OPENSSL_free(d2);
	}
	X509_REQ_free(req2);
	/* a new session re-sends it too */
	phone_dev_disconnected(d);
	home_login(&h, d, &r, pub);
	h.key = key;
	n = r.nsent;
	home_hello(&h, d);
	assert_int_equal(r.nsent, n + 1);
	X509_REQ_free(job_answer(&h, &r, n, JOB1, 0));

	/* job_ack: forgotten */
	home_job(&h, d, APPMSG_JOB_ACK, JOB1, NULL);
	assert_string_equal(last_event(&r), "JOB_ACK +35847000311 " JOB1);
	assert_int_equal(phone_dev_jobs_unacked(d), 0);
	n = r.nsent;
	home_hello(&h, d);
	assert_int_equal(r.nsent, n);

	/* the certificate (with the CA as chain): installed, then it signs */
	cert = tt_cafx_issue(f, k1, "Test User");
	n = r.nsent;
	home_cert(&h, d, JOB2, "sign", cert, f->ca_cert);
	assert_string_equal(r.events[r.nevents - 2], "JOB +35847000311 " JOB2 " cert sign");
	X509_REQ_free(job_answer(&h, &r, n, JOB2, 0));
	home_sign(&h, d, NONCE1, "sign");
	n = r.nsent;
	assert_int_equal(phone_dev_demo(d, NONCE1), 0);
	home_open(&h, &r, n, &a);
	assert_int_equal(a.am_status, 500);
	content = cms_content(f, &a);
	assert_string_equal(content, DTBS);
	free(content);
	appmsg_clear(&a);

	/* the finished keygen job after its ack: the key is certified now,
	 * refused (101), never a second key */
	n = r.nsent;
	home_keygen(&h, d, JOB1, "sign", true);
	assert_int_equal(njobs, 1);
	assert_null(job_answer(&h, &r, n, JOB1, 101));

	/* a certificate for another key (101) or a missing group (404) */
	{
		EVP_PKEY *other = EVP_EC_gen("P-256");
		X509 *oc = tt_cafx_issue(f, other, "Other");

		n = r.nsent;
		home_cert(&h, d, JOB3, "sign", oc, NULL);
		assert_null(job_answer(&h, &r, n, JOB3, 101));
		home_cert(&h, d, "J0000000000000004", "nokey", oc, NULL);
		assert_null(job_answer(&h, &r, n + 1, "J0000000000000004", 404));
		X509_free(oc);
		EVP_PKEY_free(other);
	}

	/* a PIN-less key: generated at once, no user */
	n = r.nsent;
	home_keygen(&h, d, "J0000000000000005", "click", false);
	assert_int_equal(njobs, 1);
	X509_REQ_free(job_answer(&h, &r, n, "J0000000000000005", 0));

	/* interactive: the user cancels (401); the user types a PIN and PUK */
	home_keygen(&h, d, "J0000000000000006", "auth2", true);
	assert_int_equal(njobs, 2);
	n = r.nsent;
	assert_int_equal(phone_dev_job_refuse(d, "J0000000000000006", 42), -1);
	assert_int_equal(phone_dev_job_refuse(d, "J0000000000000006", 401), 0);
	assert_null(job_answer(&h, &r, n, "J0000000000000006", 401));
	assert_int_equal(phone_dev_job_refuse(d, "J0000000000000006", 401), -1); /* answered */
	home_keygen(&h, d, "J0000000000000007", "auth3", true);
	assert_int_equal(njobs, 3);
	n = r.nsent;
	assert_int_equal(phone_dev_job_keygen(d, "J0000000000000007", "4321", PUK), 0);
	X509_REQ_free(req); /* the first one (k1 stays) */
	req = job_answer(&h, &r, n, "J0000000000000007", 0);
	assert_non_null(req);

	/* a key made before whose answer was lost with its ack (e.g. after a
	 * restart): the same key again, after its PIN */
	home_job(&h, d, APPMSG_JOB_ACK, "J0000000000000007", NULL);
	home_keygen(&h, d, "J0000000000000007", "auth3", true);
	assert_int_equal(njobs, 4);
	assert_true(last_job.pj_exists);
	assert_true(last_job.pj_pin);
	n = r.nsent;
	assert_int_equal(phone_dev_job_keygen(d, "J0000000000000007", "0000", NULL),
			 KS_STATUS_WRONG_PIN);
	assert_int_equal(r.nsent, n);
	assert_int_equal(phone_dev_job_keygen(d, "J0000000000000007", "4321", NULL), 0);
	req2 = job_answer(&h, &r, n, "J0000000000000007", 0);
	k3 = X509_REQ_get_pubkey(req2);
	X509_REQ_free(req2);

	/* a keygen job for a full keystore: 101 (5 groups by default) */
	home_keygen(&h, d, "J0000000000000008", "g4", false);
	home_keygen(&h, d, "J0000000000000009", "g5", false);
	n = r.nsent;
	home_keygen(&h, d, "J000000000000000a", "g6", false);
	assert_null(job_answer(&h, &r, n, "J000000000000000a", 101));

	/* the CSRs' keys are the keystore's */
	phone_dev_free(d);
	{
		struct ks *ks;
		EVP_PKEY *kk;

		snprintf(path, sizeof(path), "%s/keystore", dir);
		ks = ks_open(path, &pe);
		assert_non_null(ks);
		assert_int_equal(ks_count(ks), 5);
		kk = ks_public_key(ks, "sign", &pe);
		assert_int_equal(EVP_PKEY_eq(kk, k1), 1);
		EVP_PKEY_free(kk);
		kk = ks_public_key(ks, "auth3", &pe);
		assert_int_equal(EVP_PKEY_eq(kk, k3), 1);
		EVP_PKEY_free(kk);
		ks_close(ks);
	}
	X509_REQ_free(req);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k3);
	X509_free(cert);
	EVP_PKEY_free(pub);
	rec_clear(&r);
}

static void
test_jobs_unblock(void **state)
{
	struct tt_cafx *f = *state;
	struct phone_err err = { { 0 } };
	struct rec r = { 0 };
	struct home h;
	struct phone_dev *d;
	unsigned char key[E2E_KEY_LEN];
	char dir[512];
	EVP_PKEY *pub;
	size_t n;
	X509_REQ *req;
	EVP_PKEY *k;
	X509 *cert;

	activate_device(f, "+35847000321", PIN, PUK, dir, sizeof(dir), &pub, key);
	d = phone_dev_open(dir, &job_ops, &r, &err);
	assert_non_null(d);
	home_login(&h, d, &r, pub);
	h.key = key;
	home_hello(&h, d);
	njobs = 0;
	home_keygen(&h, d, JOB1, "sign", true);
	n = r.nsent;
	assert_int_equal(phone_dev_job_demo(d, JOB1), 0);
	req = job_answer(&h, &r, n, JOB1, 0);
	k = X509_REQ_get_pubkey(req);
	cert = tt_cafx_issue(f, k, "Test User");
	/* HomeMSSP sends the certificate under the keygen's job id, before
	 * its job_ack: installed (the kept keygen answer is another one) */
	n = r.nsent;
	home_cert(&h, d, JOB1, "sign", cert, NULL);
	assert_string_equal(last_event(&r), "JOB_ANSWER +35847000321 " JOB1 " 0");
	assert_null(job_answer(&h, &r, n, JOB1, 0));
	home_keygen(&h, d, JOB1, "sign", true); /* the keygen answer again */
	X509_REQ_free(job_answer(&h, &r, n + 1, JOB1, 0));
	home_cert(&h, d, JOB1, "sign", cert, NULL); /* the cert answer again */
	assert_null(job_answer(&h, &r, n + 2, JOB1, 0));
	assert_int_equal(r.nsent, n + 3);
	home_keygen(&h, d, JOB3, "click", false);

	/* three wrong PINs block the key */
	for (int i = 0; i < 3; i++) {
		char nn[40];

		snprintf(nn, sizeof(nn), "nonce-unblock-%08d", i);
		home_sign(&h, d, nn, "sign");
		assert_int_equal(phone_dev_sign(d, nn, "000000", 0), 0);
	}
	assert_string_equal(last_event(&r), "ANSWER +35847000321 nonce-unblock-00000002 402");

	/* unblock for a missing group (404), a PIN-less one (101): at once */
	n = r.nsent;
	home_job(&h, d, APPMSG_UNBLOCK, "J0000000000000010", "nokey");
	assert_null(job_answer(&h, &r, n, "J0000000000000010", 404));
	home_job(&h, d, APPMSG_UNBLOCK, "J0000000000000011", "click");
	assert_null(job_answer(&h, &r, n + 1, "J0000000000000011", 101));
	assert_int_equal(njobs, 1);

	/* interactive: a wrong PUK asks again (one try fewer), then cancel */
	home_job(&h, d, APPMSG_UNBLOCK, "J0000000000000012", "sign");
	assert_int_equal(njobs, 2);
	assert_true(last_job.pj_unblock);
	assert_int_equal(last_job.pj_puk_tries, MSSP_KEYSTORE_PUK_TRIES);
	n = r.nsent;
	assert_int_equal(phone_dev_job_unblock(d, "J0000000000000012", "00000000", "1111",
					       PHONE_JOB_RETRY_PUK),
			 KS_STATUS_WRONG_PUK);
	assert_int_equal(phone_dev_job(d, "J0000000000000012")->pj_puk_tries,
			 MSSP_KEYSTORE_PUK_TRIES - 1);
	assert_int_equal(r.nsent, n);
	assert_int_equal(phone_dev_job_refuse(d, "J0000000000000012", 401), 0);
	assert_null(job_answer(&h, &r, n, "J0000000000000012", 401));

	/* demo: the PUK and PIN of device.conf: the PIN works again */
	home_job(&h, d, APPMSG_UNBLOCK, "J0000000000000013", "sign");
	n = r.nsent;
	assert_int_equal(phone_dev_job_demo(d, "J0000000000000013"), 0);
	assert_null(job_answer(&h, &r, n, "J0000000000000013", 0));
	/* the same job again: the kept answer, no second PUK attempt */
	home_job(&h, d, APPMSG_UNBLOCK, "J0000000000000013", "sign");
	assert_int_equal(r.nsent, n + 2);
	assert_null(job_answer(&h, &r, n + 1, "J0000000000000013", 0));
	home_sign(&h, d, NONCE2, "sign");
	assert_int_equal(phone_dev_demo(d, NONCE2), 0);
	assert_string_equal(last_event(&r), "ANSWER +35847000321 " NONCE2 " 500");

	/* job_ack forgets; a job_ack for a job still waiting withdraws it */
	n = phone_dev_jobs_unacked(d);
	assert_true(n >= 5);
	home_job(&h, d, APPMSG_JOB_ACK, "J0000000000000013", NULL);
	assert_int_equal(phone_dev_jobs_unacked(d), n - 1);
	home_job(&h, d, APPMSG_UNBLOCK, "J0000000000000014", "sign");
	assert_int_equal(phone_dev_jobs_pending(d), 1);
	home_job(&h, d, APPMSG_JOB_ACK, "J0000000000000014", NULL);
	assert_int_equal(phone_dev_jobs_pending(d), 0);
	assert_string_equal(r.withdrawn, "J0000000000000014");

	/* a device.conf without demo secrets: the demo answer is 900 */
	phone_dev_free(d);
	EVP_PKEY_free(pub);
	activate_device(f, "+35847000322", NULL, NULL, dir, sizeof(dir), &pub, key);
	d = phone_dev_open(dir, &job_ops, &r, &err);
	assert_non_null(d);
	home_login(&h, d, &r, pub);
	h.key = key;
	home_hello(&h, d);
	home_keygen(&h, d, JOB1, "sign", true);
	n = r.nsent;
	assert_int_equal(phone_dev_job_demo(d, JOB1), 0);
	assert_null(job_answer(&h, &r, n, JOB1, 900));
	phone_dev_free(d);

	X509_REQ_free(req);
	EVP_PKEY_free(k);
	X509_free(cert);
	EVP_PKEY_free(pub);
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
		cmocka_unit_test(test_activation),
		cmocka_unit_test(test_jobs_keygen_cert),
		cmocka_unit_test(test_jobs_unblock),
	};

	return cmocka_run_group_tests(tests, setup, tt_cafx_teardown);
}
