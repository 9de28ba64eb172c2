/*
 * activate.c - `mss-phone activate`: bind a new device to a user with the
 * activation code the RA gave them (docs/internals/me.md "Device binding
 * by activation code").  One WebSocket to the AFE (as the normal run uses,
 * phone.conf of the phones directory), the protocol of phone/app.h
 * (phone_activation_*), then the new phone directory.
 *
 * The outcome the user needs is a clear yes or no: "activated <msisdn>
 * device <id>" and exit 0, or a message and exit 1.  The AFE refuses with
 * close code 4001 and one generic reason (wrong or expired code, locked,
 * bad proof): we say so, without guessing which.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "cmd/mss-phone/mssphone.h"
#include "net/tls.h"
#include "net/wsclient.h"
#include "phone/app.h"
#include "util/limits.h"

#define AFE_PATH "/app/v1/ws"
#define DEMO_PIN "123456"

struct act {
	const struct mp_activate_opts *o;
	struct event_base *base;
	struct event *timer;
	struct wsc *c;
	struct phone_activation *a;
	const char *pin, *puk;	/* written to device.conf (NULL: none) */
	bool saved;		/* the phone directory is written       */
	bool failed;		/* our own error, already reported      */
	bool refused;		/* closed 4001 before "activated"       */
	char why[PHONE_ERR_MAX + 64];
};

static void fail(struct act *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Remember our first error (reported once, at the end). */
static void
fail(struct act *x, const char *fmt, ...)
{
	va_list ap;

	if (x->failed || x->saved)
		return;
	x->failed = true;
	va_start(ap, fmt);
	vsnprintf(x->why, sizeof(x->why), fmt, ap);
	va_end(ap);
}

static void
on_open(struct wsc *c, void *arg)
{
	struct act *x = arg;
	struct phone_err err = { { 0 } };
	char *fr = NULL;
	size_t len = 0;

	if (phone_activation_start(x->a, &fr, &len, &err) != 0 ||
	    wsc_send(c, (const uint8_t *)fr, len) != 0) {
		fail(x, "cannot start: %s", err.pe_msg[0] ? err.pe_msg : "send failed");
		wsc_close(c);
	}
	free(fr);
}

static void
on_message(struct wsc *c, void *arg, const uint8_t *msg, size_t len)
{
	struct act *x = arg;
	struct phone_err err = { { 0 } };
	char *out = NULL;
	size_t olen = 0;
	int rc;

	if (x->failed || x->saved)
		return; /* closing */
	rc = phone_activation_frame(x->a, msg, len, &out, &olen, &err);
	if (rc == PHONE_ACT_SEND) {
		if (wsc_send(c, (const uint8_t *)out, olen) != 0) {
			fail(x, "%s", "cannot send the proof");
			wsc_close(c);
		}
	} else if (rc == PHONE_ACT_DONE) {
		if (phone_activation_save(x->a, x->o->ma_phones, x->pin, x->puk, x->o->ma_force, NULL,
					  &err) != 0)
			fail(x, "activated, but the phone directory cannot be written: %s",
			     err.pe_msg);
		else
			x->saved = true;
		/* The AFE closes with 1000 now; we do not wait for it. */
		wsc_close(c);
	} else if (rc != PHONE_ACT_NONE) {
		fail(x, "protocol: %s", err.pe_msg);
		wsc_close(c);
	}
	free(out);
}

static void
on_closed(struct wsc *c, void *arg, const char *why)
{
	struct act *x = arg;

	if (!x->saved && !x->failed) {
		/* wsclient names close code 4001 so (net/wsclient.c) */
		if (why != NULL && strcmp(why, "authentication failed") == 0)
			x->refused = true;
		else
			fail(x, "connection closed: %s", why ? why : "closed");
	}
	wsc_free(c);
	x->c = NULL;
	event_base_loopbreak(x->base);
}

static const struct wsc_ops act_ops = {
	.on_open = on_open,
	.on_message = on_message,
	.on_closed = on_closed,
};

static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct act *x = arg;

	(void)fd;
	(void)what;
	fail(x, "%s", "no answer from the platform in time");
	event_base_loopbreak(x->base);
}

/* One line from the terminal without echo (stdin must be a terminal). */
static int
read_secret(const char *question, char *buf, size_t cap)
{
	struct termios saved, t;
	bool restore = false;
	size_t n;

	fputs(question, stderr);
	fflush(stderr);
	if (tcgetattr(STDIN_FILENO, &saved) == 0) {
		t = saved;
		t.c_lflag &= ~(tcflag_t)ECHO;
		t.c_lflag |= ECHONL;
		restore = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
	}
	if (fgets(buf, (int)cap, stdin) == NULL)
		buf[0] = '\0';
	if (restore)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	n = strcspn(buf, "\r\n");
	buf[n] = '\0';
	return n > 0 ? 0 : -1;
}

/* MSSP_KEYSTORE_PUK_LEN random digits (rejection sampling: no bias). */
static int
random_puk(char out[MSSP_KEYSTORE_PUK_LEN + 1])
{
	size_t n = 0;

	while (n < MSSP_KEYSTORE_PUK_LEN) {
		unsigned char b[16];

		if (RAND_bytes(b, sizeof(b)) != 1)
			return -1;
		for (size_t i = 0; i < sizeof(b) && n < MSSP_KEYSTORE_PUK_LEN; i++)
			if (b[i] < 250)
				out[n++] = (char)('0' + b[i] % 10);
		OPENSSL_cleanse(b, sizeof(b));
	}
	out[n] = '\0';
	return 0;
}

int
mp_activate(const struct mp_activate_opts *o)
{
	char path[MSSP_PHONE_MAX_PATH + 1], code[MSSP_PHONE_MAX_INPUT];
	char puk[MSSP_KEYSTORE_PUK_LEN + 1] = "";
	struct phone_err err = { { 0 } };
	struct net_err ne = { { 0 } };
	struct tls_client_conf tc = { 0 };
	struct phone_conf conf;
	struct act x;
	struct stat st;
	struct timeval tv;
	bool puk_made = false;
	int n, rc = 1;

	memset(&x, 0, sizeof(x));
	x.o = o;
	code[0] = '\0';
	setvbuf(stdout, NULL, _IOLBF, 0);
	n = snprintf(path, sizeof(path), "%s/%s", o->ma_phones, o->ma_msisdn);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		fputs("mss-phone: phones directory path too long\n", stderr);
		return 1;
	}
	/* Before the code is spent: a phone already there stays unless
	 * --force. */
	if (!o->ma_force && lstat(path, &st) == 0) {
		fprintf(stderr, "mss-phone: %s exists (--force replaces it)\n", path);
		return 1;
	}
	if (o->ma_pin != NULL && !phone_pin_ok(o->ma_pin)) {
		fprintf(stderr, "mss-phone: --pin wants %d..%d digits\n", MSSP_KEYSTORE_PIN_MIN_LEN,
			MSSP_KEYSTORE_PIN_MAX_LEN);
		return 2;
	}
	if (o->ma_puk != NULL && !phone_puk_ok(o->ma_puk)) {
		fprintf(stderr, "mss-phone: --puk wants %d digits\n", MSSP_KEYSTORE_PUK_LEN);
		return 2;
	}
	if (!o->ma_no_secrets) {
		x.pin = o->ma_pin != NULL ? o->ma_pin : DEMO_PIN;
		if (o->ma_puk != NULL) {
			x.puk = o->ma_puk;
		} else {
			if (random_puk(puk) != 0) {
				fputs("mss-phone: no randomness\n", stderr);
				return 1;
			}
			x.puk = puk;
			puk_made = true;
		}
	}
	if (o->ma_code != NULL) {
		snprintf(code, sizeof(code), "%s", o->ma_code);
	} else if (!isatty(STDIN_FILENO) ||
		   read_secret("Activation code: ", code, sizeof(code)) != 0) {
		fputs("mss-phone: no activation code (--code, or type it on a terminal)\n", stderr);
		goto out;
	}
	x.a = phone_activation_new(o->ma_msisdn, code, &err);
	OPENSSL_cleanse(code, sizeof(code));
	if (x.a == NULL) {
		fprintf(stderr, "mss-phone: %s\n", err.pe_msg);
		rc = 2;
		goto out;
	}
	snprintf(path, sizeof(path), "%s/phone.conf", o->ma_phones);
	if (phone_conf_load(path, &conf, &err) != 0) {
		fprintf(stderr, "mss-phone: %s\n", err.pe_msg);
		goto out;
	}
	tc.tc_ca_file = conf.pc_ca;
	tc.tc_alpn_http11 = true;
	{
		SSL_CTX *tls = tls_client_ctx_new(&tc, &ne);
		struct wsc_conf wc = {
			.wc_addr = conf.pc_afe_addr,
			.wc_port = conf.pc_afe_port,
			.wc_host = conf.pc_afe_host,
			.wc_path = AFE_PATH,
			.wc_tls = tls,
		};

		if (tls == NULL) {
			fprintf(stderr, "mss-phone: TLS: %s\n", ne.ne_detail);
			goto out;
		}
		x.base = event_base_new();
		x.timer = x.base != NULL ? evtimer_new(x.base, on_timeout, &x) : NULL;
		if (x.timer == NULL) {
			fputs("mss-phone: event base failed\n", stderr);
			SSL_CTX_free(tls);
			goto out;
		}
		tv.tv_sec = MSSP_PHONE_ACTIVATE_MS / 1000;
		tv.tv_usec = 0;
		evtimer_add(x.timer, &tv);
		x.c = wsc_connect(x.base, &wc, &act_ops, &x, &ne);
		if (x.c == NULL)
			fail(&x, "connect: %s", ne.ne_detail);
		else
			event_base_dispatch(x.base);
		wsc_free(x.c); /* still open only after a time-out */
		x.c = NULL;
		SSL_CTX_free(tls);
	}
	if (x.saved) {
		printf("activated %s device %s\n", o->ma_msisdn, phone_activation_device_id(x.a));
		if (puk_made)
			printf("PUK %s (demo PUK in device.conf; shown once, write it down)\n", puk);
		rc = 0;
	} else if (x.refused) {
		fprintf(stderr,
			"mss-phone: activation refused by the platform (wrong, expired or used "
			"code, or too many tries: ask for a new code)\n");
	} else {
		fprintf(stderr, "mss-phone: activation failed: %s\n",
			x.why[0] ? x.why : "closed before the end");
	}
out:
	OPENSSL_cleanse(puk, sizeof(puk));
	phone_activation_free(x.a);
	if (x.timer != NULL)
		event_free(x.timer);
	if (x.base != NULL)
		event_base_free(x.base);
	return rc;
}
