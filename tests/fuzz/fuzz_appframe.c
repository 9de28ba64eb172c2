/*
 * fuzz_appframe.c - libFuzzer target for the text frames between the phone
 * app and the AFE (roles/afe.h has the protocol), parsed on both sides:
 *   - the AFE's message handler (src/roles/afe.c io_message, hence
 *     conn_on_auth and conn_on_blob with their strict base64 decoder) on a
 *     connection waiting for "auth", and on one that is authenticated;
 *   - the phone's phone_frame_parse (src/phone/app.c).
 *
 * The AFE parses frames in static functions behind a real server
 * connection, and scripts/fuzz.sh does not link src/phone/, so the harness
 * includes keystore.c, app.c and afe.c (the fuzz_keystore way; a few
 * static names they share are renamed with macros around the includes,
 * and afe.c's log calls go to a silent sink)
 * and builds the AFE's connection state by hand: no socket, no pool
 * (the afe is "stopping", so an auth frame that parses ends in the "try
 * again later" close instead of a store lookup), the ws endpoint's
 * transport gone.  Nothing in afe.c or app.c is changed for it.
 *
 * Each input is one frame.  Oracles (abort()), against an independent
 * strict reading of the protocol (jansson + mss_lex_base64_decode):
 *   - the AFE accepts an auth frame (the device id is taken and the
 *     failure counter does not move) iff it is exactly
 *     {"t":"auth","d":id,"n":base64 of 16 bytes,"s":base64 of 1..256
 *     bytes}, id of 1..64 characters [A-Za-z0-9._:+@-];
 *   - the AFE relays a blob iff the frame is exactly {"t":"e2e","b":...}
 *     with canonical base64 of 1..AFE_MAX_BLOB bytes, and relays those
 *     bytes; anything else closes the connection;
 *   - the phone accepts iff the frame is exactly a challenge of 32 bytes,
 *     "ready", or an e2e frame as above (up to MSSP_WS_MAX_MESSAGE bytes),
 *     with the same bytes; what it accepts, encoded again the way the AFE
 *     sends it, parses to the same frame;
 *   - the AFE's base64 decoder agrees with mss_lex_base64_decode on the
 *     raw input (both claim strict RFC 4648: padding, canonical bits).
 * Corpus: tests/fuzz/corpus/appframe/, frames as both sides send them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static volatile size_t fz_log_sink;

/* afe.c logs refused frames (util/log.h) on stderr, where libFuzzer and the
 * sanitizers report: a line per input would drown them and slow the run.
 * Its calls land here instead (renamed around the include below); the
 * arguments are still read, so a dangling one is seen by ASan. */
static void __attribute__((unused))
fz_log_event(const char *ev, const char *const *kv, size_t n)
{
	size_t total = strlen(ev);

	for (size_t i = 0; i < 2 * n; i++) {
		if (kv[i] != NULL)
			total += strlen(kv[i]);
		else if (i % 2 == 0)
			abort(); /* a key is never NULL */
	}
	fz_log_sink += total;
}

#define id_ok fz_keystore_id_ok
#include "phone/keystore.c"
#undef id_ok
#include "phone/app.c"
#define b64_decode afe_b64_decode
#define b64_json afe_b64_json
#define log_event fz_log_event
#include "roles/afe.c"
#undef b64_decode
#undef b64_json
#undef log_event

#include "mss/lex.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink;

/* ---- an independent reading of the protocol ------------------------------ */

struct want {
	int kind;	 /* 0: none, else the type below          */
	uint8_t *bytes;	 /* decoded "b" (e2e) or "c" (challenge) */
	size_t len;
};

enum { W_AUTH = 1, W_E2E, W_CHALLENGE, W_READY };

/* Canonical base64 of 1..max bytes, decoded (malloc'ed), or NULL. */
static uint8_t *
b64(json_t *v, size_t max, size_t *len)
{
	const char *s = json_string_value(v);
	long n;
	uint8_t *d;

	if (s == NULL)
		return NULL;
	n = mss_lex_base64_decode(s, NULL, max);
	if (n <= 0)
		return NULL;
	d = malloc((size_t)n);
	if (d == NULL || mss_lex_base64_decode(s, d, (size_t)n) != n)
		abort();
	*len = (size_t)n;
	return d;
}

static bool
id_syntax(json_t *v)
{
	const char *s = json_string_value(v);
	size_t n;

	if (s == NULL)
		return false;
	n = strlen(s);
	if (n == 0 || n > MSSP_KEYSTORE_MAX_ID)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || strchr("._:+@-", s[i]) != NULL))
			return false;
	return true;
}

/* What a strict reader makes of the frame; max_blob caps an e2e blob. */
static void
expect(const uint8_t *msg, size_t len, size_t max_blob, struct want *w)
{
	json_t *o = json_loadb((const char *)msg, len, JSON_REJECT_DUPLICATES, NULL);
	const char *t = json_string_value(json_object_get(o, "t"));
	size_t n = json_object_size(o), l = 0;
	uint8_t *d;

	memset(w, 0, sizeof(*w));
	if (!json_is_object(o) || t == NULL)
		goto out;
	if (strcmp(t, "auth") == 0 && n == 4 && id_syntax(json_object_get(o, "d"))) {
		d = b64(json_object_get(o, "n"), E2E_NONCE_LEN, &l);
		if (d != NULL && l == E2E_NONCE_LEN) {
			free(d);
			d = b64(json_object_get(o, "s"), MSSP_AFE_MAX_SIG, &l);
			if (d != NULL)
				w->kind = W_AUTH;
		}
		free(d);
	} else if (strcmp(t, "e2e") == 0 && n == 2) {
		w->bytes = b64(json_object_get(o, "b"), max_blob, &w->len);
		if (w->bytes != NULL)
			w->kind = W_E2E;
	} else if (strcmp(t, "challenge") == 0 && n == 2) {
		w->bytes = b64(json_object_get(o, "c"), E2E_CHALLENGE_LEN, &w->len);
		if (w->bytes != NULL && w->len == E2E_CHALLENGE_LEN)
			w->kind = W_CHALLENGE;
	} else if (strcmp(t, "ready") == 0 && n == 1) {
		w->kind = W_READY;
	}
out:
	json_decref(o);
}

static void
want_free(struct want *w)
{
	free(w->bytes);
	memset(w, 0, sizeof(*w));
}

/* ---- the AFE side ------------------------------------------------------- */

/* Set once in LLVMFuzzerInitialize. */
static struct afe fz_afe;
static struct afe_worker fz_worker;

/* ao_blob: what the AFE relays. */
static uint8_t *fz_blob;
static size_t fz_blob_len;
static unsigned fz_nblobs;

static void
fz_ao_blob(void *arg, const char *device_id, uint64_t session, const uint8_t *blob, size_t len)
{
	(void)arg;
	(void)device_id;
	if (session != 7 || fz_nblobs++ != 0 || len == 0)
		abort();
	fz_blob = malloc(len);
	if (fz_blob == NULL)
		abort();
	memcpy(fz_blob, blob, len);
	fz_blob_len = len;
}

static const struct afe_ops fz_ops = { NULL, fz_ao_blob, NULL };

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* afe_new without a pool or a server: only what io_message reaches */
	fz_afe.a_ops = &fz_ops;
	fz_afe.a_auth_ms = MSSP_AFE_AUTH_MS;
	fz_afe.a_ping_ms = MSSP_AFE_PING_MS;
	fz_afe.a_idle_ms = MSSP_AFE_IDLE_MS;
	atomic_init(&fz_afe.a_next_id, 1);
	atomic_init(&fz_afe.a_stopping, true); /* no pool job: "try later" */
	pthread_mutex_init(&fz_afe.a_mu, NULL);
	pthread_cond_init(&fz_afe.a_cv, NULL);
	fz_worker.w_afe = &fz_afe;
	return 0;
}

static struct afe_conn *
fz_conn(enum afe_cstate st)
{
	struct afe_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		abort();
	c->c_afe = &fz_afe;
	c->c_w = &fz_worker;
	c->c_id = 7;
	c->c_state = st;
	/* c_up NULL: the transport is gone, every write fails (the close
	 * frames of refused messages go nowhere) */
	c->c_ws = ws_new(false, &afe_ws_io, c, AFE_MAX_MSG);
	if (c->c_ws == NULL)
		abort();
	if (st == CS_READY) {
		c->c_authed = true;
		strcpy(c->c_device, "phone-1@example.org");
	}
	memset(c->c_challenge, 0xc5, sizeof(c->c_challenge));
	return c;
}

/* The "d" member of the frame (a copy), or "". */
static void
device_of(const uint8_t *msg, size_t len, char out[MSSP_KEYSTORE_MAX_ID + 1])
{
	json_t *o = json_loadb((const char *)msg, len, JSON_REJECT_DUPLICATES, NULL);
	const char *d = json_string_value(json_object_get(o, "d"));

	out[0] = '\0';
	if (d != NULL && strlen(d) <= MSSP_KEYSTORE_MAX_ID)
		strcpy(out, d);
	json_decref(o);
}

static void
afe_side(const uint8_t *msg, size_t len)
{
	char dev[MSSP_KEYSTORE_MAX_ID + 1];
	struct afe_conn *c;
	struct want w;
	uint64_t failed;

	expect(msg, len, AFE_MAX_BLOB, &w);

	/* waiting for "auth" */
	c = fz_conn(CS_CHALLENGE);
	failed = atomic_load(&fz_afe.s_auth_failed);
	io_message(c, msg, len, false);
	if (c->c_state != CS_CLOSING || fz_afe.a_jobs != 0)
		abort(); /* accepted or not, this connection ends here */
	if (w.kind == W_AUTH) {
		device_of(msg, len, dev);
		if (atomic_load(&fz_afe.s_auth_failed) != failed || c->c_device[0] == '\0' ||
		    strcmp(c->c_device, dev) != 0)
			abort();
	} else if (c->c_device[0] != '\0') {
		abort(); /* a frame the strict reading refuses was taken */
	}
	conn_free(c);

	/* authenticated: only e2e frames are relayed */
	c = fz_conn(CS_READY);
	fz_nblobs = 0;
	io_message(c, msg, len, false);
	if (w.kind == W_E2E) {
		if (fz_nblobs != 1 || fz_blob_len != w.len || memcmp(fz_blob, w.bytes, w.len) != 0 ||
		    c->c_state != CS_READY)
			abort();
	} else if (fz_nblobs != 0 || c->c_state != CS_CLOSING) {
		abort();
	}
	free(fz_blob);
	fz_blob = NULL;
	conn_free(c);
	want_free(&w);
}

/* ---- the phone side ------------------------------------------------------ */

static void
phone_side(const uint8_t *msg, size_t len)
{
	struct phone_frame f, g;
	struct phone_err err;
	struct want w;
	int rc;

	expect(msg, len, MSSP_WS_MAX_MESSAGE, &w);
	memset(&err, 0, sizeof(err));
	rc = phone_frame_parse(msg, len, &f, &err);
	switch (w.kind) {
	case W_CHALLENGE:
		if (rc != 0 || f.pf_type != PHONE_FRAME_CHALLENGE ||
		    memcmp(f.pf_challenge, w.bytes, E2E_CHALLENGE_LEN) != 0)
			abort();
		break;
	case W_READY:
		if (rc != 0 || f.pf_type != PHONE_FRAME_READY)
			abort();
		break;
	case W_E2E:
		if (rc != 0 || f.pf_type != PHONE_FRAME_E2E || f.pf_blob_len != w.len ||
		    memcmp(f.pf_blob, w.bytes, w.len) != 0)
			abort();
		break;
	default:
		if (rc == 0 || err.pe_msg[0] == '\0')
			abort();
		break;
	}
	if (rc == 0) {
		/* encoded again as the AFE sends it, it parses the same */
		json_t *o;
		char *text;

		if (f.pf_type == PHONE_FRAME_CHALLENGE)
			o = json_pack("{s:s,s:o}", "t", "challenge", "c",
				      afe_b64_json(f.pf_challenge, sizeof(f.pf_challenge)));
		else if (f.pf_type == PHONE_FRAME_E2E)
			o = json_pack("{s:s,s:o}", "t", "e2e", "b",
				      afe_b64_json(f.pf_blob, f.pf_blob_len));
		else
			o = json_pack("{s:s}", "t", "ready");
		text = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
		if (text == NULL || phone_frame_parse((const uint8_t *)text, strlen(text), &g, &err) != 0 ||
		    g.pf_type != f.pf_type || g.pf_blob_len != f.pf_blob_len ||
		    memcmp(g.pf_challenge, f.pf_challenge, sizeof(g.pf_challenge)) != 0 ||
		    (f.pf_blob_len > 0 && memcmp(g.pf_blob, f.pf_blob, f.pf_blob_len) != 0))
			abort();
		sink += strlen(text);
		free(text);
		json_decref(o);
		phone_frame_clear(&g);
	}
	phone_frame_clear(&f);
	want_free(&w);
}

/* ---- the two base64 decoders ---------------------------------------------- */

static void
base64_pair(const uint8_t *data, size_t size)
{
	uint8_t a[96], b[96];
	char s[129];
	size_t n = size < sizeof(s) - 1 ? size : sizeof(s) - 1, got = 0;
	size_t cap = size > 0 ? data[0] % 72 + 1 : 1;
	long want;
	int rc;

	memcpy(s, data, n);
	s[n] = '\0';
	n = strlen(s); /* the AFE sees jansson strings: no NUL inside */
	rc = afe_b64_decode(s, n, a, cap, &got);
	want = mss_lex_base64_decode(s, b, cap);
	if (rc == 0) {
		if (want <= 0 || (size_t)want != got || memcmp(a, b, got) != 0)
			abort();
	} else if (want > 0) {
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > MSSP_WS_MAX_MESSAGE)
		return 0;
	afe_side(data, size);
	phone_side(data, size);
	base64_pair(data, size);
	return 0;
}
