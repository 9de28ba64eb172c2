/*
 * run.c - mss-phone's event loop: every device of DIR/phones (phone/app.h)
 * gets a TLS WebSocket to the AFE (net/wsclient.h), re-opened with
 * exponential back-off, or at once when the local push provider wakes it
 * (a UDP datagram, roles/push.h).  Prompts go to the demo table or to the
 * terminal (ui.c); event lines go to stdout or --log.  Every
 * MSSP_PHONE_RESCAN_MS the phones directory is looked at again, and a
 * phone directory that appeared (mss-phone activate) comes online.
 *
 * Everything runs on one thread and one event base.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "cmd/mss-phone/mssphone.h"
#include "net/tls.h"
#include "net/wsclient.h"
#include "phone/app.h"
#include "roles/push.h"
#include "util/limits.h"

#define AFE_PATH "/app/v1/ws"

struct mp;

/* A phone directory that could not be opened: tried again only when it
 * changes (no warning every rescan). */
struct skip {
	struct skip *next;
	char name[MSSP_STORE_MAX_MSISDN + 2];
	dev_t dev;
	ino_t ino;
	struct timespec mtime, ctime;
};

struct mpdev {
	struct mp *mp;
	struct phone_dev *d;
	struct wsc *c;	    /* NULL: waiting for the reconnect timer  */
	bool open;	    /* upgrade done                           */
	struct event *timer; /* reconnect                             */
	unsigned backoff;   /* current base delay (ms), 0 after ready */
	bool started;	    /* its first connect was scheduled        */
	char why[PHONE_ERR_MAX + 16]; /* our reason when we close       */
};

struct mp {
	const struct mp_opts *o;
	struct event_base *base;
	struct phone_conf conf;
	SSL_CTX *tls;
	struct mpdev **devs; /* sorted by device id (wake look-up) */
	size_t ndevs;
	FILE *log;
	int push_fd;
	struct event *push_ev;
	struct event *sig_int, *sig_term, *stop_timer;
	struct mp_ui *ui;
	char phones[MSSP_PHONE_MAX_PATH + 1];
	struct event *rescan;
	struct skip *skipped; /* directories that did not open, as they were */
	bool stopping;
	size_t closing; /* close handshakes still running at exit */
};

static void connect_dev(struct mpdev *md);

static uint32_t
rnd32(void)
{
	uint32_t r = 0;

	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		r = (uint32_t)random();
	return r;
}

static void
ms_tv(unsigned ms, struct timeval *tv)
{
	tv->tv_sec = ms / 1000;
	tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
}

/* ---- device callbacks (phone_dev_ops) ---------------------------------- */

static int
dev_send(void *arg, const char *text, size_t len)
{
	struct mpdev *md = arg;

	if (md->c == NULL || !md->open)
		return -1;
	return wsc_send(md->c, (const uint8_t *)text, len);
}

static void
dev_event(void *arg, const char *line)
{
	struct mpdev *md = arg;

	fprintf(md->mp->log, "%s\n", line);
}

static void
dev_prompt(void *arg, const struct phone_prompt *p)
{
	struct mpdev *md = arg;

	if (md->mp->o->mo_demo)
		phone_dev_demo(md->d, p->pp_nonce);
	else
		mp_ui_enqueue(md->mp->ui, md->d, p->pp_nonce);
}

static void
dev_withdraw(void *arg, const char *nonce)
{
	struct mpdev *md = arg;

	if (md->mp->ui != NULL)
		mp_ui_withdraw(md->mp->ui, md->d, nonce);
}

static void
dev_receipt(void *arg, const char *nonce, const char *message)
{
	struct mpdev *md = arg;

	if (md->mp->ui != NULL)
		mp_ui_receipt(md->mp->ui, md->d, nonce, message);
}

static void
dev_warn(void *arg, const char *msg)
{
	(void)arg;
	fprintf(stderr, "mss-phone: %s\n", msg);
}

static void
dev_job(void *arg, const struct phone_job *j)
{
	struct mpdev *md = arg;

	if (md->mp->o->mo_demo)
		phone_dev_job_demo(md->d, j->pj_job);
	else
		mp_ui_enqueue_job(md->mp->ui, md->d, j->pj_job);
}

static const struct phone_dev_ops dev_ops = {
	.po_send = dev_send,
	.po_event = dev_event,
	.po_prompt = dev_prompt,
	.po_withdraw = dev_withdraw,
	.po_receipt = dev_receipt,
	.po_warn = dev_warn,
	.po_job = dev_job,
};

/* ---- connections ---------------------------------------------------------- */

static void
stop_done(struct mp *mp)
{
	event_base_loopbreak(mp->base);
}

static void
schedule(struct mpdev *md)
{
	struct timeval tv;

	if (md->mp->stopping)
		return;
	md->backoff = phone_backoff_next(md->backoff);
	ms_tv(phone_backoff_jitter(md->backoff, rnd32()), &tv);
	evtimer_add(md->timer, &tv);
}

static void
on_open(struct wsc *c, void *arg)
{
	struct mpdev *md = arg;

	(void)c;
	md->open = true;
	phone_dev_connected(md->d);
	if (md->mp->stopping) { /* not reached: connecting ones are freed */
		snprintf(md->why, sizeof(md->why), "shutdown");
		md->mp->closing++;
		wsc_close(md->c);
	}
}

static void
on_message(struct wsc *c, void *arg, const uint8_t *msg, size_t len)
{
	struct mpdev *md = arg;
	struct phone_err err = { 0 };

	(void)c;
	if (md->why[0] != '\0')
		return; /* closing: ignore the rest */
	if (phone_dev_frame(md->d, msg, len, &err) != 0) {
		fprintf(stderr, "mss-phone: %s: %s: closing\n", phone_dev_msisdn(md->d),
			err.pe_msg);
		snprintf(md->why, sizeof(md->why), "protocol: %s", err.pe_msg);
		wsc_close(md->c);
		return;
	}
	/* Authenticated: the AFE is reachable again, start the back-off over. */
	if (phone_dev_is_ready(md->d))
		md->backoff = 0;
}

static void
on_closed(struct wsc *c, void *arg, const char *why)
{
	struct mpdev *md = arg;
	struct mp *mp = md->mp;

	fprintf(mp->log, "CLOSED %s %s\n", phone_dev_msisdn(md->d),
		md->why[0] ? md->why : (why ? why : "closed"));
	phone_dev_disconnected(md->d);
	wsc_free(c);
	md->c = NULL;
	md->open = false;
	md->why[0] = '\0';
	if (mp->stopping) {
		if (mp->closing > 0 && --mp->closing == 0)
			stop_done(mp);
		return;
	}
	schedule(md);
}

static const struct wsc_ops ws_ops = {
	.on_open = on_open,
	.on_message = on_message,
	.on_closed = on_closed,
};

static void
connect_dev(struct mpdev *md)
{
	struct mp *mp = md->mp;
	struct net_err ne = { { 0 } };
	struct wsc_conf wc = {
		.wc_addr = mp->conf.pc_afe_addr,
		.wc_port = mp->conf.pc_afe_port,
		.wc_host = mp->conf.pc_afe_host,
		.wc_path = AFE_PATH,
		.wc_tls = mp->tls,
	};

	if (md->c != NULL || mp->stopping)
		return;
	md->open = false;
	md->why[0] = '\0';
	md->c = wsc_connect(mp->base, &wc, &ws_ops, md, &ne);
	if (md->c == NULL) {
		fprintf(mp->log, "CLOSED %s connect: %s\n", phone_dev_msisdn(md->d), ne.ne_detail);
		schedule(md);
	}
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	connect_dev(arg);
}

/* ---- push: wake datagrams -------------------------------------------------- */

static int
cmp_dev(const void *a, const void *b)
{
	const struct mpdev *x = *(const struct mpdev *const *)a;
	const struct mpdev *y = *(const struct mpdev *const *)b;

	return strcmp(phone_dev_id(x->d), phone_dev_id(y->d));
}

static struct mpdev *
find_dev(struct mp *mp, const char *device_id)
{
	size_t lo = 0, hi = mp->ndevs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(device_id, phone_dev_id(mp->devs[mid]->d));

		if (c == 0)
			return mp->devs[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static void
on_push(evutil_socket_t fd, short what, void *arg)
{
	struct mp *mp = arg;
	char buf[MSSP_PUSH_MAX_DGRAM + 1], id[MSSP_KEYSTORE_MAX_ID + 1];

	(void)what;
	for (int i = 0; i < MSSP_PHONE_MAX_WAKES; i++) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		struct mpdev *md;

		if (n < 0)
			return; /* EAGAIN, or an ICMP error: nothing to do */
		if (push_local_parse(buf, (size_t)n, id, sizeof(id)) != 0)
			continue; /* not a wake: dropped silently */
		md = find_dev(mp, id);
		if (md == NULL || md->c != NULL || mp->stopping)
			continue; /* not ours, or already connecting/connected */
		evtimer_del(md->timer);
		connect_dev(md);
	}
}

/* Bind the push port; a failure only costs the wake-ups (the back-off
 * still reconnects), so it is a warning. */
static void
push_start(struct mp *mp)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd;

	mp->push_fd = -1;
	if (mp->conf.pc_push_port == 0) {
		fputs("mss-phone: push_port is 0: no wake-ups (reconnect by back-off only)\n",
		      stderr);
		return;
	}
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, mp->conf.pc_push_addr,
		      &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(mp->conf.pc_push_port);
		sl = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		inet_pton(AF_INET6, mp->conf.pc_push_addr, &sin6->sin6_addr);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(mp->conf.pc_push_port);
		sl = sizeof(*sin6);
	}
	fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&ss, sl) != 0) {
		fprintf(stderr, "mss-phone: push port %s:%u: %s: no wake-ups\n",
			mp->conf.pc_push_addr, mp->conf.pc_push_port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	mp->push_ev = event_new(mp->base, fd, EV_READ | EV_PERSIST, on_push, mp);
	if (mp->push_ev == NULL || event_add(mp->push_ev, NULL) != 0) {
		fputs("mss-phone: push event failed: no wake-ups\n", stderr);
		close(fd);
		return;
	}
	mp->push_fd = fd;
}

/* ---- stop ------------------------------------------------------------------ */

static void
on_stop_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	stop_done(arg);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct mp *mp = arg;
	struct timeval tv;

	(void)sig;
	(void)what;
	if (mp->stopping) { /* a second signal: no more waiting */
		stop_done(mp);
		return;
	}
	mp->stopping = true;
	if (mp->push_ev != NULL)
		event_del(mp->push_ev);
	if (mp->rescan != NULL)
		evtimer_del(mp->rescan);
	for (size_t i = 0; i < mp->ndevs; i++) {
		struct mpdev *md = mp->devs[i];

		evtimer_del(md->timer);
		if (md->c == NULL)
			continue;
		if (md->open) {
			if (md->why[0] == '\0') {
				snprintf(md->why, sizeof(md->why), "shutdown");
				wsc_close(md->c);
			}
			mp->closing++;
		} else {
			/* Still connecting: nothing to close politely. */
			wsc_free(md->c);
			md->c = NULL;
		}
	}
	if (mp->closing == 0) {
		stop_done(mp);
		return;
	}
	ms_tv(MSSP_PHONE_CLOSE_WAIT_MS, &tv);
	evtimer_add(mp->stop_timer, &tv);
}

/* ---- loading ---------------------------------------------------------------- */

static bool
only_has(const char *only, const char *msisdn)
{
	size_t n = strlen(msisdn);

	for (const char *p = only; p != NULL && *p != '\0';) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);

		if (len == n && memcmp(p, msisdn, n) == 0)
			return true;
		p = e ? e + 1 : NULL;
	}
	return false;
}

static int
add_dev(struct mp *mp, struct mpdev *md)
{
	if (mp->ndevs % 64 == 0) {
		struct mpdev **nv = realloc(mp->devs, (mp->ndevs + 64) * sizeof(*nv));

		if (nv == NULL)
			return -1;
		mp->devs = nv;
	}
	mp->devs[mp->ndevs++] = md;
	return 0;
}

static void
free_dev(struct mpdev *md)
{
	if (md == NULL)
		return;
	wsc_free(md->c);
	if (md->timer != NULL)
		event_free(md->timer);
	phone_dev_free(md->d);
	free(md);
}

static bool
have_msisdn(const struct mp *mp, const char *msisdn)
{
	for (size_t i = 0; i < mp->ndevs; i++)
		if (strcmp(phone_dev_msisdn(mp->devs[i]->d), msisdn) == 0)
			return true;
	return false;
}

static bool
have_id(const struct mp *mp, const char *id)
{
	for (size_t i = 0; i < mp->ndevs; i++)
		if (strcmp(phone_dev_id(mp->devs[i]->d), id) == 0)
			return true;
	return false;
}

/* Skipped before and unchanged since? */
static bool
skipped_same(struct mp *mp, const char *name, const struct stat *st, bool remember)
{
	struct skip *k;

	for (k = mp->skipped; k != NULL; k = k->next)
		if (strcmp(k->name, name) == 0)
			break;
	if (!remember)
		return k != NULL && k->dev == st->st_dev && k->ino == st->st_ino &&
		       k->mtime.tv_sec == st->st_mtim.tv_sec &&
		       k->mtime.tv_nsec == st->st_mtim.tv_nsec &&
		       k->ctime.tv_sec == st->st_ctim.tv_sec &&
		       k->ctime.tv_nsec == st->st_ctim.tv_nsec;
	if (k == NULL) {
		k = calloc(1, sizeof(*k));
		if (k == NULL)
			return false;
		snprintf(k->name, sizeof(k->name), "%s", name);
		k->next = mp->skipped;
		mp->skipped = k;
	}
	k->dev = st->st_dev;
	k->ino = st->st_ino;
	k->mtime = st->st_mtim;
	k->ctime = st->st_ctim;
	return true;
}

/* Open the phone directories of mp->phones not open yet (at start: all of
 * them; on a rescan: the new ones).  The number opened, or -1 when the
 * directory cannot be read. */
static long
scan_devs(struct mp *mp, bool first)
{
	char path[MSSP_PHONE_MAX_PATH + 1];
	struct dirent *de;
	struct stat st;
	size_t before = mp->ndevs;
	DIR *dir;

	dir = opendir(mp->phones);
	if (dir == NULL) {
		fprintf(stderr, "mss-phone: %s: %s\n", mp->phones, strerror(errno));
		return -1;
	}
	while ((de = readdir(dir)) != NULL) {
		struct phone_err err = { { 0 } };
		struct mpdev *md;
		int n;

		if (de->d_name[0] != '+')
			continue; /* phone.conf, ., .., anything not a phone (nor
				   * activate's temporary directories) */
		if (mp->o->mo_only != NULL && !only_has(mp->o->mo_only, de->d_name))
			continue;
		if (strlen(de->d_name) > MSSP_STORE_MAX_MSISDN)
			continue;
		/* The directory is named after its MSISDN (phone_dev_open
		 * insists), so a known name is an open phone. */
		if (!first && have_msisdn(mp, de->d_name))
			continue;
		n = snprintf(path, sizeof(path), "%s/%s", mp->phones, de->d_name);
		if (n < 0 || (size_t)n >= sizeof(path) || stat(path, &st) != 0 ||
		    !S_ISDIR(st.st_mode))
			continue;
		if (skipped_same(mp, de->d_name, &st, false))
			continue;
		if (mp->ndevs >= MSSP_PHONE_MAX_DEVICES) {
			if (first)
				fprintf(stderr, "mss-phone: more than %d devices: the rest skipped\n",
					MSSP_PHONE_MAX_DEVICES);
			break;
		}
		md = calloc(1, sizeof(*md));
		if (md == NULL)
			break;
		md->mp = mp;
		md->d = phone_dev_open(path, &dev_ops, md, &err);
		md->timer = evtimer_new(mp->base, on_timer, md);
		if (md->d == NULL || md->timer == NULL) {
			fprintf(stderr, "mss-phone: skipping %s: %s\n", de->d_name,
				md->d == NULL ? err.pe_msg : "out of memory");
			free_dev(md);
			skipped_same(mp, de->d_name, &st, true);
			continue;
		}
		/* Two directories claiming one device id would fight over one
		 * AFE connection (the newer replaces the older): keep the
		 * first. */
		if (have_id(mp, phone_dev_id(md->d))) {
			fprintf(stderr, "mss-phone: skipping %s: device id already used\n",
				phone_dev_msisdn(md->d));
			free_dev(md);
			skipped_same(mp, de->d_name, &st, true);
			continue;
		}
		if (add_dev(mp, md) != 0) {
			free_dev(md);
			break;
		}
	}
	closedir(dir);
	qsort(mp->devs, mp->ndevs, sizeof(*mp->devs), cmp_dev);
	return (long)(mp->ndevs - before);
}

static int
load_devs(struct mp *mp)
{
	if (scan_devs(mp, true) < 0)
		return -1;
	if (mp->o->mo_only != NULL) {
		for (const char *p = mp->o->mo_only; *p != '\0';) {
			const char *e = strchr(p, ',');
			size_t len = e ? (size_t)(e - p) : strlen(p);
			bool found = false;

			for (size_t i = 0; i < mp->ndevs && !found; i++)
				found = strlen(phone_dev_msisdn(mp->devs[i]->d)) == len &&
					memcmp(phone_dev_msisdn(mp->devs[i]->d), p, len) == 0;
			if (!found)
				fprintf(stderr, "mss-phone: --only %.*s: no such phone\n", (int)len,
					p);
			if (e == NULL)
				break;
			p = e + 1;
		}
	}
	if (mp->ndevs == 0) {
		fprintf(stderr, "mss-phone: no usable phone in %s\n", mp->phones);
		return -1;
	}
	return 0;
}

/* New phone directories come online at once. */
static void
on_rescan(evutil_socket_t fd, short what, void *arg)
{
	struct mp *mp = arg;
	struct timeval tv;

	(void)fd;
	(void)what;
	if (mp->stopping)
		return;
	if (scan_devs(mp, false) > 0) {
		for (size_t i = 0; i < mp->ndevs; i++) {
			struct mpdev *md = mp->devs[i];

			if (md->started)
				continue;
			md->started = true;
			fprintf(stderr, "mss-phone: new phone %s\n", phone_dev_msisdn(md->d));
			connect_dev(md);
		}
	}
	ms_tv(MSSP_PHONE_RESCAN_MS, &tv);
	evtimer_add(mp->rescan, &tv);
}

/* Every device holds a keystore lock and a socket: a bench of thousands
 * needs more descriptors than the usual soft limit of 1024. */
static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int
mp_run(const struct mp_opts *o)
{
	struct mp mp;
	struct phone_err err = { { 0 } };
	struct net_err ne = { { 0 } };
	struct tls_client_conf tc = { 0 };
	char path[MSSP_PHONE_MAX_PATH + 1];
	unsigned spread;
	int rc = 1;

	memset(&mp, 0, sizeof(mp));
	mp.o = o;
	mp.push_fd = -1;
	mp.log = stdout;
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	if (o->mo_log != NULL) {
		mp.log = fopen(o->mo_log, "a");
		if (mp.log == NULL) {
			fprintf(stderr, "mss-phone: %s: %s\n", o->mo_log, strerror(errno));
			return 1;
		}
		setvbuf(mp.log, NULL, _IOLBF, 0);
	}
	snprintf(path, sizeof(path), "%s/phones/phone.conf", o->mo_data_dir);
	if (phone_conf_load(path, &mp.conf, &err) != 0) {
		fprintf(stderr, "mss-phone: %s\n", err.pe_msg);
		goto out;
	}
	tc.tc_ca_file = mp.conf.pc_ca;
	tc.tc_alpn_http11 = true;
	mp.tls = tls_client_ctx_new(&tc, &ne);
	if (mp.tls == NULL) {
		fprintf(stderr, "mss-phone: TLS: %s\n", ne.ne_detail);
		goto out;
	}
	mp.base = event_base_new();
	if (mp.base == NULL) {
		fputs("mss-phone: event base failed\n", stderr);
		goto out;
	}
	snprintf(mp.phones, sizeof(mp.phones), "%s/phones", o->mo_data_dir);
	if (load_devs(&mp) != 0)
		goto out;
	if (!o->mo_demo) {
		mp.ui = mp_ui_new(mp.base);
		if (mp.ui == NULL)
			goto out;
	}
	mp.sig_int = evsignal_new(mp.base, SIGINT, on_signal, &mp);
	mp.sig_term = evsignal_new(mp.base, SIGTERM, on_signal, &mp);
	mp.stop_timer = evtimer_new(mp.base, on_stop_timer, &mp);
	if (mp.sig_int == NULL || mp.sig_term == NULL || mp.stop_timer == NULL ||
	    evsignal_add(mp.sig_int, NULL) != 0 || evsignal_add(mp.sig_term, NULL) != 0) {
		fputs("mss-phone: signal events failed\n", stderr);
		goto out;
	}
	push_start(&mp);
	/* The first connects are spread a little, so that a bench of thousands
	 * of devices does not hit the AFE in one burst. */
	spread = mp.ndevs < MSSP_PHONE_START_SPREAD_MS ? (unsigned)mp.ndevs
						       : MSSP_PHONE_START_SPREAD_MS;
	for (size_t i = 0; i < mp.ndevs; i++) {
		struct timeval tv;

		ms_tv(spread > 1 ? rnd32() % spread : 0, &tv);
		evtimer_add(mp.devs[i]->timer, &tv);
		mp.devs[i]->started = true;
	}
	mp.rescan = evtimer_new(mp.base, on_rescan, &mp);
	if (mp.rescan != NULL) {
		struct timeval tv;

		ms_tv(MSSP_PHONE_RESCAN_MS, &tv);
		evtimer_add(mp.rescan, &tv);
	}
	fprintf(stderr, "mss-phone: %zu phone(s), AFE %s port %u%s\n", mp.ndevs,
		mp.conf.pc_afe_host, mp.conf.pc_afe_port, o->mo_demo ? ", demo answers" : "");
	event_base_dispatch(mp.base);
	rc = 0;
out:
	mp_ui_free(mp.ui);
	for (size_t i = 0; i < mp.ndevs; i++)
		free_dev(mp.devs[i]);
	free(mp.devs);
	if (mp.push_ev != NULL)
		event_free(mp.push_ev);
	if (mp.push_fd >= 0)
		close(mp.push_fd);
	if (mp.sig_int != NULL)
		event_free(mp.sig_int);
	if (mp.sig_term != NULL)
		event_free(mp.sig_term);
	if (mp.stop_timer != NULL)
		event_free(mp.stop_timer);
	if (mp.rescan != NULL)
		event_free(mp.rescan);
	while (mp.skipped != NULL) {
		struct skip *k = mp.skipped;

		mp.skipped = k->next;
		free(k);
	}
	if (mp.base != NULL)
		event_base_free(mp.base);
	SSL_CTX_free(mp.tls);
	if (mp.log != stdout)
		fclose(mp.log);
	else
		fflush(stdout);
	return rc;
}
