/*
 * http.c - one blocking HTTPS exchange with libcurl (the load generator
 * shares ap_curl_tls and ap_curl_headers for its multi handle).
 *
 * TLS is what the AE expects of an AP (protocol.md §1): our certificate as
 * client certificate, the AE verified against the configured CA only (no
 * system store: a test must never pass because of some public CA), TLS 1.2
 * or later, HTTP/1.1, no redirect, no proxy picked up from the environment.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "cmd/mss-ap/ap.h"
#include "roles/rest.h"

int
ap_curl_tls(CURL *e, const struct ap_conf *c)
{
	int bad = 0;

	/* REST with HTTP credentials: no client certificate at all */
	if (ap_rest.ra_mode == AP_REST_CERT) {
		bad |= curl_easy_setopt(e, CURLOPT_SSLCERT, c->ac_cert) != CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM") != CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_SSLKEY, c->ac_key) != CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM") != CURLE_OK;
	}
	bad |= curl_easy_setopt(e, CURLOPT_CAINFO, c->ac_ca) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_CAPATH, NULL) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http") != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_PROXY, "") != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)MSSP_AP_CONNECT_MS) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "mss-ap/1") != CURLE_OK;
	return bad ? -1 : 0;
}

struct curl_slist *
ap_curl_headers(const struct ap_wire *w)
{
	struct curl_slist *h = NULL, *n;
	char line[160];

	snprintf(line, sizeof(line), "Content-Type: %s", w->w_content_type);
	h = curl_slist_append(h, line);
	if (h != NULL && w->w_soap_action[0] != '\0') {
		snprintf(line, sizeof(line), "SOAPAction: %s", w->w_soap_action);
		if ((n = curl_slist_append(h, line)) == NULL)
			goto fail;
		h = n;
	}
	if (h != NULL) {
		/* Nobody real sends Expect: 100-continue (clients.md §6). */
		if ((n = curl_slist_append(h, "Expect:")) == NULL)
			goto fail;
		h = n;
		if ((n = curl_slist_append(h, strcmp(w->w_content_type, "application/json") == 0
						       ? "Accept: application/json"
						       : "Accept: application/soap+xml, text/xml")) ==
		    NULL)
			goto fail;
		h = n;
	}
	return h;
fail:
	curl_slist_free_all(h);
	return NULL;
}

/* Free a header list, wiping each line first: libcurl keeps its own copy
 * of every line (curl_slist_append), the Authorization one included, and
 * frees it without wiping. */
static void
headers_free(struct curl_slist *h)
{
	for (struct curl_slist *p = h; p; p = p->next)
		if (p->data)
			OPENSSL_cleanse(p->data, strlen(p->data));
	curl_slist_free_all(h);
}

/* Authorization (and for the API key Date and Host, which the HMAC
 * covers) of a REST request (protocol.md §10). */
static int
ap_rest_headers(struct curl_slist **hl, const struct ap_wire *w)
{
	char cred[2 * MSSP_REST_MAX_SECRET + 72], b64[4 * sizeof cred / 3 + 8];
	char line[sizeof b64 + 64], host[256], date[64], idb64[4 * MSSP_REST_MAX_SECRET / 3 + 8];
	struct curl_slist *n;
	int rc = -1;

	if (ap_rest.ra_mode == AP_REST_CERT)
		return 0;
	if (ap_rest.ra_mode == AP_REST_BASIC) {
		snprintf(cred, sizeof cred, "%s:%s", ap_rest.ra_user, ap_rest.ra_secret);
	} else {
		/* Host = the authority of the URL, Path = the rest of it */
		const char *a = strstr(w->w_url, "://");
		a = a ? a + 3 : w->w_url;
		const char *path = strchr(a, '/');
		snprintf(host, sizeof host, "%.*s", (int)(path ? path - a : (long)strlen(a)), a);
		time_t now = time(NULL);
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
		char mac[65];
		if (rest_apikey_mac(ap_rest.ra_secret, date, "POST", host, path ? path : "/",
				    (const uint8_t *)mss_buf_str(&w->w_body), mss_buf_len(&w->w_body),
				    mac) != 0)
			return -1;
		EVP_EncodeBlock((unsigned char *)idb64, (const unsigned char *)ap_rest.ra_user,
				(int)strlen(ap_rest.ra_user));
		snprintf(cred, sizeof cred, "%s:%s", idb64, mac);
		snprintf(line, sizeof line, "Date: %s", date);
		if ((n = curl_slist_append(*hl, line)) == NULL)
			goto out;
		*hl = n;
		snprintf(line, sizeof line, "Host: %s", host);
		if ((n = curl_slist_append(*hl, line)) == NULL)
			goto out;
		*hl = n;
	}
	EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)cred, (int)strlen(cred));
	snprintf(line, sizeof line, "Authorization: Basic %s", b64);
	if ((n = curl_slist_append(*hl, line)) != NULL) {
		*hl = n;
		rc = 0;
	}
out:
	OPENSSL_cleanse(cred, sizeof cred);
	OPENSSL_cleanse(b64, sizeof b64);
	OPENSSL_cleanse(line, sizeof line);
	return rc;
}

int
ap_http_init(struct ap_http *h, const struct ap_conf *c, bool verbose)
{
	memset(h, 0, sizeof(*h));
	h->h_verbose = verbose;
	if ((h->h_easy = curl_easy_init()) == NULL || ap_curl_tls(h->h_easy, c) != 0) {
		ap_http_free(h);
		return -1;
	}
	return 0;
}

void
ap_http_free(struct ap_http *h)
{
	if (h->h_easy != NULL)
		curl_easy_cleanup(h->h_easy);
	headers_free(h->h_hdrs);
	memset(h, 0, sizeof(*h));
}

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	struct mss_buf *b = arg;

	/* mss_buf refuses past MSSP_AP_MAX_RESPONSE: returning less than
	 * given makes curl fail the transfer (CURLE_WRITE_ERROR). */
	if (mss_buf_add(b, p, size * n) != 0)
		return 0;
	return size * n;
}

static void
print_body(const char *tag, const char *body, size_t len)
{
	char *red = ap_redact(body, len);

	fprintf(stderr, "%s%s%s", tag, red ? red : "(out of memory)",
		len > 0 && body[len - 1] == '\n' ? "" : "\n");
	free(red);
}

int
ap_http_post(struct ap_http *h, const struct ap_wire *w, unsigned timeout_s,
	     struct ap_http_resp *r)
{
	CURL *e = h->h_easy;
	CURLcode cc;

	memset(r, 0, sizeof(*r));
	mss_buf_init(&r->hr_body, MSSP_AP_MAX_RESPONSE);
	headers_free(h->h_hdrs);
	if ((h->h_hdrs = ap_curl_headers(w)) == NULL ||
	    (strcmp(w->w_content_type, "application/json") == 0 &&
	     ap_rest_headers(&h->h_hdrs, w) != 0)) {
		snprintf(r->hr_err, sizeof(r->hr_err), "out of memory");
		return -1;
	}
	curl_easy_setopt(e, CURLOPT_URL, w->w_url);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, mss_buf_str(&w->w_body));
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)mss_buf_len(&w->w_body));
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->h_hdrs);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &r->hr_body);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->hr_err);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)timeout_s);
	if (h->h_verbose) {
		fprintf(stderr, "> POST %s\n> Content-Type: %s\n", w->w_url, w->w_content_type);
		if (w->w_soap_action[0] != '\0')
			fprintf(stderr, "> SOAPAction: %s\n", w->w_soap_action);
		print_body("", mss_buf_str(&w->w_body), mss_buf_len(&w->w_body));
	}
	cc = curl_easy_perform(e);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
	if (cc != CURLE_OK) {
		if (cc == CURLE_WRITE_ERROR)
			snprintf(r->hr_err, sizeof(r->hr_err), "response larger than %d bytes",
				 MSSP_AP_MAX_RESPONSE);
		else if (r->hr_err[0] == '\0')
			snprintf(r->hr_err, sizeof(r->hr_err), "%s", curl_easy_strerror(cc));
		mss_buf_free(&r->hr_body);
		if (h->h_verbose)
			fprintf(stderr, "< (transport error: %s)\n", r->hr_err);
		return -1;
	}
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->hr_status);
	if (h->h_verbose) {
		fprintf(stderr, "< HTTP %ld\n", r->hr_status);
		print_body("", mss_buf_str(&r->hr_body), mss_buf_len(&r->hr_body));
	}
	return 0;
}
