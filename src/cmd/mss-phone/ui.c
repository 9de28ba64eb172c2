/*
 * ui.c - mss-phone's interactive prompt: one signature request on the
 * terminal at a time (others wait in a queue), the answer read from stdin
 * through a libevent event so that the loop, and every other device's
 * connection, never waits for the user.
 *
 * The terminal is stderr: stdout carries the machine-readable event log.
 * A PIN is read with echo off when stdin is a terminal, and wiped from
 * our buffer as soon as the keystore has seen it.  When stdin ends (or
 * cannot be watched, e.g. /dev/null) there is no user: every prompt is
 * answered 401 USER_CANCEL at once.
 *
 * Registration jobs (phone/app.h struct phone_job) share the queue: a new
 * key asks a new PIN and the PUK, a key made before asks its PIN, an
 * unblock asks the PUK and a new PIN; all without echo, an empty line
 * cancels (401).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "cmd/mss-phone/mssphone.h"
#include "phone/app.h"
#include "phone/keystore.h"
#include "util/limits.h"

struct item {
	struct item *next;
	struct phone_dev *d;
	char nonce[MSSP_STORE_MAX_NONCE + 1]; /* or the job id       */
	bool job;
	int step;			      /* job: 0 first secret, 1 second */
	char first[MSSP_PHONE_MAX_INPUT];     /* job: the first secret (wiped) */
};

struct mp_ui {
	struct event *ev;
	struct item *head; /* head: on screen; the rest wait */
	bool no_user;	   /* stdin ended: refuse everything  */
	bool tty;
	bool echo_off;
	struct termios saved;
	char in[MSSP_PHONE_MAX_INPUT];
	size_t inlen;
	bool skipping;	   /* discarding the rest of an over-long line */
};

static void
echo(struct mp_ui *ui, bool on)
{
	struct termios t;

	if (!ui->tty || on == !ui->echo_off)
		return;
	if (on) {
		tcsetattr(STDIN_FILENO, TCSANOW, &ui->saved);
		ui->echo_off = false;
		return;
	}
	t = ui->saved;
	t.c_lflag &= ~(tcflag_t)ECHO;
	t.c_lflag |= ECHONL;
	if (tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0)
		ui->echo_off = true;
}

static void
pop(struct mp_ui *ui)
{
	struct item *it = ui->head;

	if (it == NULL)
		return;
	ui->head = it->next;
	OPENSSL_cleanse(it->first, sizeof(it->first));
	free(it);
	echo(ui, true);
}

/* The question for the job on screen, at its current step. */
static void
ask_job(struct mp_ui *ui, const struct item *it, const struct phone_job *j)
{
	if (j->pj_unblock)
		fprintf(stderr,
			it->step == 0 ? "PUK (%u tries left; empty line cancels): "
				      : "New PIN (%d..%d digits): ",
			it->step == 0 ? j->pj_puk_tries : MSSP_KEYSTORE_PIN_MIN_LEN,
			MSSP_KEYSTORE_PIN_MAX_LEN);
	else if (j->pj_exists)
		fputs("PIN of this key (empty line cancels): ", stderr);
	else if (it->step == 0)
		fprintf(stderr, "Choose its PIN (%d..%d digits; empty line cancels): ",
			MSSP_KEYSTORE_PIN_MIN_LEN, MSSP_KEYSTORE_PIN_MAX_LEN);
	else
		fprintf(stderr, "Its PUK (%d digits, from your registration letter): ",
			MSSP_KEYSTORE_PUK_LEN);
	echo(ui, false);
	fflush(stderr);
}

/* Put the job at the head on screen.  False when it is gone. */
static bool
show_job(struct mp_ui *ui, struct item *it)
{
	char key[MSSP_KEYSTORE_MAX_ID + 1];
	const struct phone_job *j = phone_dev_job(it->d, it->nonce);

	if (j == NULL)
		return false;
	if (ui->no_user) {
		phone_dev_job_refuse(it->d, it->nonce, 401);
		return false;
	}
	phone_sanitize(j->pj_key, key, sizeof(key), true);
	if (j->pj_unblock)
		fprintf(stderr, "\n=== Unblock the PIN of key %s for %s\n", key,
			phone_dev_msisdn(it->d));
	else
		fprintf(stderr, "\n=== %s key %s (%s) for %s\n",
			j->pj_exists ? "Certificate request for" : "New", key,
			j->pj_purpose[0] == 's' ? "signing" : "authentication",
			phone_dev_msisdn(it->d));
	ask_job(ui, it, j);
	return true;
}

/* One line typed for the job on screen.  True when the job is done with
 * (answered or gone), false when the next question is on screen. */
static bool
job_line(struct mp_ui *ui, struct item *it, const char *line)
{
	const struct phone_job *j = phone_dev_job(it->d, it->nonce);
	int rc;

	if (j == NULL)
		return true;
	echo(ui, true);
	if (line[0] == '\0') {
		phone_dev_job_refuse(it->d, it->nonce, 401);
		fputs("Cancelled.\n", stderr);
		return true;
	}
	if (j->pj_exists) {
		rc = phone_dev_job_keygen(it->d, it->nonce, line, NULL);
		if (rc == KS_STATUS_WRONG_PIN) {
			fputs("Wrong PIN.\n", stderr);
			ask_job(ui, it, j);
			return false;
		}
		fputs(rc == 0 ? "Answered.\n" : "Failed.\n", stderr);
		return true;
	}
	/* Which secret this step wants: keygen PIN then PUK, unblock PUK
	 * then PIN.  A malformed one is asked again before the keystore
	 * could refuse it for good. */
	if ((j->pj_unblock == (it->step == 0)) ? !phone_puk_ok(line) : !phone_pin_ok(line)) {
		fputs("Not in the right form.\n", stderr);
		ask_job(ui, it, j);
		return false;
	}
	if (it->step == 0) {
		snprintf(it->first, sizeof(it->first), "%s", line);
		it->step = 1;
		ask_job(ui, it, j);
		return false;
	}
	if (j->pj_unblock)
		rc = phone_dev_job_unblock(it->d, it->nonce, it->first, line, PHONE_JOB_RETRY_PUK);
	else
		rc = phone_dev_job_keygen(it->d, it->nonce, it->first, line);
	OPENSSL_cleanse(it->first, sizeof(it->first));
	it->step = 0;
	if (rc == KS_STATUS_WRONG_PUK) {
		fputs("Wrong PUK.\n", stderr);
		ask_job(ui, it, j);
		return false;
	}
	fputs(rc == 0 ? "Answered.\n" : "Failed.\n", stderr);
	return true;
}

/* The question for the prompt on screen (again after a wrong PIN). */
static void
ask(struct mp_ui *ui, const struct phone_prompt *p)
{
	if (p->pp_has_pin) {
		fprintf(stderr, "PIN for key %s (%u tries left; empty line cancels): ", p->pp_key,
			p->pp_pin_tries);
		echo(ui, false);
	} else {
		fputs("OK? [y/N] ", stderr);
	}
	fflush(stderr);
}

/* Put the head of the queue on screen; answer at once what needs no user
 * (a blocked or missing key, no user at all). */
static void
show(struct mp_ui *ui)
{
	char ap[MSSP_APPMSG_MAX_TEXT + 1], key[MSSP_KEYSTORE_MAX_ID + 1];
	const struct phone_prompt *p;
	char *dtbd;
	size_t cap;

	while (ui->head != NULL) {
		struct item *it = ui->head;

		if (it->job) {
			if (show_job(ui, it))
				return;
			pop(ui);
			continue;
		}
		p = phone_dev_prompt(it->d, it->nonce);
		if (p == NULL) {
			pop(ui);
			continue;
		}
		phone_sanitize(p->pp_key, key, sizeof(key), true);
		if (ui->no_user) {
			phone_dev_refuse(it->d, it->nonce, 401);
			pop(ui);
			continue;
		}
		if (p->pp_key_status != 0) {
			fprintf(stderr, "\n%s: a request for key %s, which is %s: refused (%d)\n",
				phone_dev_msisdn(it->d), key,
				p->pp_key_status == 404 ? "not on this phone" : "blocked",
				p->pp_key_status);
			phone_dev_refuse(it->d, it->nonce, p->pp_key_status);
			pop(ui);
			continue;
		}
		phone_sanitize(p->pp_ap_name, ap, sizeof(ap), false);
		cap = strlen(p->pp_dtbd) + 1;
		dtbd = malloc(cap);
		if (dtbd != NULL)
			phone_sanitize(p->pp_dtbd, dtbd, cap, false);
		fprintf(stderr,
			"\n=== Signature request for %s (key %s)\n"
			"From: %s\n"
			"Text: %s\n",
			phone_dev_msisdn(it->d), key, ap, dtbd ? dtbd : "(out of memory)");
		free(dtbd);
		ask(ui, p);
		return;
	}
}

/* One complete line typed by the user (wiped by the caller). */
static void
answer_line(struct mp_ui *ui, char *line)
{
	struct item *it = ui->head;
	const struct phone_prompt *p;
	int rc;

	if (it == NULL)
		return; /* nothing asked: typed ahead, dropped */
	if (it->job) {
		if (job_line(ui, it, line)) {
			pop(ui);
			show(ui);
		}
		return;
	}
	p = phone_dev_prompt(it->d, it->nonce);
	if (p == NULL) {
		pop(ui);
		show(ui);
		return;
	}
	if (p->pp_has_pin) {
		echo(ui, true);
		if (line[0] == '\0') {
			phone_dev_refuse(it->d, it->nonce, 401);
			fputs("Cancelled.\n", stderr);
		} else {
			rc = phone_dev_sign(it->d, it->nonce, line, PHONE_SIGN_RETRY_PIN);
			if (rc == KS_STATUS_WRONG_PIN) {
				fputs("Wrong PIN.\n", stderr);
				ask(ui, p);
				return;
			}
			fputs(rc == 0 ? "Answered.\n" : "Failed.\n", stderr);
		}
	} else if (strcmp(line, "y") == 0 || strcmp(line, "Y") == 0 ||
		   strcmp(line, "yes") == 0) {
		rc = phone_dev_sign(it->d, it->nonce, NULL, 0);
		fputs(rc == 0 ? "Answered.\n" : "Failed.\n", stderr);
	} else {
		phone_dev_refuse(it->d, it->nonce, 401);
		fputs("Cancelled.\n", stderr);
	}
	pop(ui);
	show(ui);
}

static void
no_more_user(struct mp_ui *ui)
{
	ui->no_user = true;
	if (ui->ev != NULL)
		event_del(ui->ev);
	echo(ui, true);
	show(ui); /* refuses everything queued */
}

static void
on_stdin(evutil_socket_t fd, short what, void *arg)
{
	struct mp_ui *ui = arg;
	ssize_t n;

	(void)what;
	n = read(fd, ui->in + ui->inlen, sizeof(ui->in) - ui->inlen);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		no_more_user(ui);
		return;
	}
	if (n == 0) {
		no_more_user(ui);
		return;
	}
	ui->inlen += (size_t)n;
	for (;;) {
		char *nl = memchr(ui->in, '\n', ui->inlen);
		size_t used;

		if (nl == NULL)
			break;
		*nl = '\0';
		if (nl > ui->in && nl[-1] == '\r')
			nl[-1] = '\0';
		used = (size_t)(nl - ui->in) + 1;
		if (ui->skipping)
			ui->skipping = false;
		else
			answer_line(ui, ui->in);
		OPENSSL_cleanse(ui->in, used);
		memmove(ui->in, ui->in + used, ui->inlen - used);
		ui->inlen -= used;
	}
	if (ui->inlen == sizeof(ui->in)) {
		/* An over-long line is nobody's PIN: drop it, and the rest of
		 * it up to the newline. */
		OPENSSL_cleanse(ui->in, sizeof(ui->in));
		ui->inlen = 0;
		ui->skipping = true;
	}
}

struct mp_ui *
mp_ui_new(struct event_base *base)
{
	struct mp_ui *ui = calloc(1, sizeof(*ui));

	if (ui == NULL)
		return NULL;
	ui->tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &ui->saved) == 0;
	ui->ev = event_new(base, STDIN_FILENO, EV_READ | EV_PERSIST, on_stdin, ui);
	/* epoll refuses regular files and /dev/null: then nobody can answer. */
	if (ui->ev == NULL || event_add(ui->ev, NULL) != 0) {
		fputs("mss-phone: stdin cannot be read: every prompt is refused (401)\n", stderr);
		ui->no_user = true;
	}
	return ui;
}

static void
enqueue(struct mp_ui *ui, struct phone_dev *d, const char *nonce, bool job)
{
	struct item *it = calloc(1, sizeof(*it)), **tail;

	if (it == NULL) {
		if (job)
			phone_dev_job_refuse(d, nonce, 900);
		else
			phone_dev_refuse(d, nonce, 900);
		return;
	}
	it->d = d;
	it->job = job;
	snprintf(it->nonce, sizeof(it->nonce), "%s", nonce);
	for (tail = &ui->head; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = it;
	if (ui->head == it)
		show(ui);
	else
		fprintf(stderr, "(another request is waiting)\n");
}

void
mp_ui_enqueue(struct mp_ui *ui, struct phone_dev *d, const char *nonce)
{
	enqueue(ui, d, nonce, false);
}

void
mp_ui_enqueue_job(struct mp_ui *ui, struct phone_dev *d, const char *job)
{
	enqueue(ui, d, job, true);
}

void
mp_ui_withdraw(struct mp_ui *ui, struct phone_dev *d, const char *nonce)
{
	struct item **pp, *it;

	for (pp = &ui->head; *pp != NULL; pp = &(*pp)->next) {
		it = *pp;
		if (it->d != d || strcmp(it->nonce, nonce) != 0)
			continue;
		if (it == ui->head) {
			fputs("\n(request withdrawn)\n", stderr);
			pop(ui);
			show(ui);
		} else {
			*pp = it->next;
			free(it);
		}
		return;
	}
}

void
mp_ui_receipt(struct mp_ui *ui, struct phone_dev *d, const char *nonce, const char *msg)
{
	size_t cap = strlen(msg) + 1;
	char *text = malloc(cap);

	(void)ui;
	(void)nonce;
	if (text == NULL)
		return;
	phone_sanitize(msg, text, cap, false);
	fprintf(stderr, "\n--- Receipt for %s: %s\n", phone_dev_msisdn(d), text);
	free(text);
}

void
mp_ui_free(struct mp_ui *ui)
{
	if (ui == NULL)
		return;
	if (ui->ev != NULL)
		event_free(ui->ev);
	while (ui->head != NULL)
		pop(ui);
	echo(ui, true);
	OPENSSL_cleanse(ui->in, sizeof(ui->in));
	free(ui);
}
