/*
 * test_pkipub.c - roles/pkipub (OCSP and CRL publication) and the reg
 * functions behind it (reg_pki_ocsp, reg_pki_crl), with real parts only:
 * a plain-HTTP server on loopback (net/server.h) whose listener is
 * pkipub_handler, a worker pool, a real struct reg over a real CA made in
 * a scratch directory (pki_ca_init) and a real audit log.  The client is a
 * raw socket (HTTP/1.1, Connection: close), so that the request target is
 * sent exactly as written; OCSP requests are built and answers checked
 * with libcrypto (the signature against the CA certificate, the nonce,
 * each status).
 *
 * Revocations are made through a second handle on the CA directory, as
 * another msspd process would make them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "net/server.h"
#include "pki/ca.h"
#include "roles/node.h"
#include "roles/pkipub.h"
#include "roles/reg.h"
#include "roles/reg_int.h" /* r_ca_lock: held by the test to stall the CA */
#include "store/audit.h"
#include "util/pool.h"

#include "testdir.h"

#define PASS "pkipub test pass phrase"
#define PARK_MS 1500 /* the listener's request deadline here */

static struct {
	char dir[256];
	char cadir[300];
	struct audit *audit;
	struct pki_ca *ca;   /* the reg's (with its key)                 */
	struct pki_ca *ca2;  /* another handle: "another process"        */
	struct reg *reg;
	struct pool *pool;
	struct pkipub *pub;
	struct srv *srv;
	uint16_t port;
	X509 *good, *revoked; /* issued certificates */
} T;

/* ---- the client ---------------------------------------------------------- */

struct answer {
	int status;
	char head[4096];
	uint8_t *body;
	size_t len;
};

static void
answer_free(struct answer *a)
{
	free(a->body);
	memset(a, 0, sizeof *a);
}

/* The value of header `name` in a->head, or NULL (static buffer). */
static const char *
header_of(const struct answer *a, const char *name)
{
	static char v[512];
	size_t nl = strlen(name);
	for (const char *l = strstr(a->head, "\r\n"); l && l[2]; l = strstr(l + 2, "\r\n")) {
		const char *h = l + 2;
		if (strncasecmp(h, name, nl) == 0 && h[nl] == ':') {
			h += nl + 1;
			h += strspn(h, " ");
			snprintf(v, sizeof v, "%.*s", (int)strcspn(h, "\r\n"), h);
			return v;
		}
	}
	return NULL;
}

/* One request on a new connection: `method` `target` exactly as given,
 * optional Content-Type and body.  Fills `a` (status 0: no answer). */
static void
http(const char *method, const char *target, const char *ctype, const void *body, size_t blen,
     struct answer *a)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(T.port)};
	struct timeval tv = {.tv_sec = 20};
	char head[6000];
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	size_t cap = 1 << 16, got = 0;
	uint8_t *buf = malloc(cap);
	ssize_t n;

	memset(a, 0, sizeof *a);
	assert_non_null(buf);
	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	int hl = snprintf(head, sizeof head,
			  "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s%s"
			  "Content-Length: %zu\r\n\r\n",
			  method, target, ctype ? "Content-Type: " : "", ctype ? ctype : "",
			  ctype ? "\r\n" : "", blen);
	assert_true(hl > 0 && (size_t)hl < sizeof head);
	assert_int_equal(send(fd, head, (size_t)hl, MSG_NOSIGNAL), hl);
	/* a refused body may be answered before it is all sent */
	if (blen)
		(void)send(fd, body, blen, MSG_NOSIGNAL);
	while ((n = recv(fd, buf + got, cap - got, 0)) > 0) {
		got += (size_t)n;
		if (got == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
	}
	close(fd);
	uint8_t *end = memmem(buf, got, "\r\n\r\n", 4);
	if (!end || sscanf((char *)buf, "HTTP/1.1 %d", &a->status) != 1) {
		free(buf);
		a->status = 0;
		return;
	}
	size_t hlen = (size_t)(end - buf) + 2;
	snprintf(a->head, sizeof a->head, "%.*s", (int)hlen, (char *)buf);
	a->len = got - hlen - 2;
	a->body = malloc(a->len + 1);
	assert_non_null(a->body);
	memcpy(a->body, end + 4, a->len);
	a->body[a->len] = 0;
	free(buf);
	const char *cl = header_of(a, "Content-Length");
	assert_non_null(cl);
	if (strcmp(method, "HEAD") != 0)
		assert_int_equal(strtoul(cl, NULL, 10), a->len);
}

/* A request whose answer must have `status` and, when `name` is given,
 * that header with `value`. */
static void
expect(const char *method, const char *target, const char *ctype, const void *body, size_t blen,
       int status, const char *name, const char *value)
{
	struct answer a;
	http(method, target, ctype, body, blen, &a);
	assert_int_equal(a.status, status);
	if (name) {
		assert_non_null(header_of(&a, name));
		assert_string_equal(header_of(&a, name), value);
	}
	answer_free(&a);
}

/* ---- OCSP requests and answers -------------------------------------------- */

/* A DER OCSPRequest for `serial` under issuer `issuer` (SHA-1 CertID, as
 * most clients send it), with a nonce.  *id: the CertID (OCSP_CERTID_free). */
static unsigned char *
ocsp_req(X509 *issuer, const ASN1_INTEGER *serial, OCSP_CERTID **id, OCSP_REQUEST **keep,
	 size_t *len)
{
	OCSP_REQUEST *rq = OCSP_REQUEST_new();
	unsigned char *der = NULL;
	OCSP_CERTID *cid = OCSP_cert_id_new(EVP_sha1(), X509_get_subject_name(issuer),
					    X509_get0_pubkey_bitstr(issuer), serial);
	assert_non_null(rq);
	assert_non_null(cid);
	*id = OCSP_CERTID_dup(cid);
	assert_non_null(OCSP_request_add0_id(rq, cid));
	assert_int_equal(OCSP_request_add1_nonce(rq, NULL, 16), 1);
	int n = i2d_OCSP_REQUEST(rq, &der);
	assert_true(n > 0);
	*len = (size_t)n;
	*keep = rq;
	return der;
}

/* Parse an OCSP answer: its responseStatus; for a successful one the
 * signature is verified against the CA, the nonce checked against `rq`,
 * and the status of `id` returned in *st (and *reason). */
static int
ocsp_check(const struct answer *a, OCSP_REQUEST *rq, OCSP_CERTID *id, int *st, int *reason)
{
	const unsigned char *p = a->body;
	OCSP_RESPONSE *r = d2i_OCSP_RESPONSE(NULL, &p, (long)a->len);
	assert_non_null(r);
	assert_ptr_equal(p, a->body + a->len);
	int rs = OCSP_response_status(r);
	if (rs == OCSP_RESPONSE_STATUS_SUCCESSFUL) {
		OCSP_BASICRESP *bs = OCSP_response_get1_basic(r);
		X509_STORE *xs = X509_STORE_new();
		STACK_OF(X509) *certs = sk_X509_new_null();
		ASN1_GENERALIZEDTIME *rev = NULL, *thisu = NULL, *nextu = NULL;
		assert_non_null(bs);
		assert_int_equal(X509_STORE_add_cert(xs, pki_ca_cert(T.ca)), 1);
		assert_true(sk_X509_push(certs, pki_ca_cert(T.ca)) > 0);
		/* signed by the CA key itself (responder ID by key hash) */
		assert_int_equal(OCSP_basic_verify(bs, certs, xs, OCSP_TRUSTOTHER), 1);
		assert_int_equal(OCSP_check_nonce(rq, bs), 1);
		assert_int_equal(OCSP_resp_find_status(bs, id, st, reason, &rev, &thisu, &nextu), 1);
		assert_int_equal(OCSP_check_validity(thisu, nextu, 300, -1), 1);
		sk_X509_free(certs);
		X509_STORE_free(xs);
		OCSP_BASICRESP_free(bs);
	}
	OCSP_RESPONSE_free(r);
	return rs;
}

/* POST /ocsp for `serial` of `issuer`: the OCSP responseStatus, *st. */
static int
ocsp_post(X509 *issuer, const ASN1_INTEGER *serial, int *st, int *reason)
{
	OCSP_CERTID *id;
	OCSP_REQUEST *rq;
	size_t len;
	struct answer a;
	unsigned char *der = ocsp_req(issuer, serial, &id, &rq, &len);

	http("POST", "/ocsp", "application/ocsp-request", der, len, &a);
	assert_int_equal(a.status, 200);
	assert_string_equal(header_of(&a, "Content-Type"), "application/ocsp-response");
	int rs = ocsp_check(&a, rq, id, st, reason);
	answer_free(&a);
	OPENSSL_free(der);
	OCSP_CERTID_free(id);
	OCSP_REQUEST_free(rq);
	return rs;
}

/* ---- fixture --------------------------------------------------------------- */

static void *
pool_init(void *arg, unsigned idx)
{
	(void)arg;
	struct node_worker *nw = calloc(1, sizeof *nw); /* no store: not used */
	if (nw)
		nw->nw_idx = idx;
	return nw;
}

static void
pool_fini(void *arg, void *ctx)
{
	(void)arg;
	free(ctx);
}

static X509 *
issue(const char *serial_number)
{
	struct pki_ca_identity id = {.id_serial_number = serial_number,
				     .id_common_name = "Relying Party Test", .id_country = "FI"};
	struct pki_err pe = {0};
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = NULL;
	assert_non_null(k);
	if (pki_ca_issue(T.ca, "authn", &id, k, NULL, 0, &x, &pe) != 0)
		fail_msg("pki_ca_issue: %d %s", pe.status, pe.detail);
	EVP_PKEY_free(k);
	return x;
}

/* Revoke `x` through the second handle (another process). */
static void
revoke_elsewhere(X509 *x, int reason)
{
	struct pki_err pe = {0};
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *h = bn ? BN_bn2hex(bn) : NULL;
	assert_non_null(h);
	if (pki_ca_revoke(T.ca2, h, reason, 0, &pe) != 0)
		fail_msg("pki_ca_revoke: %d %s", pe.status, pe.detail);
	OPENSSL_free(h);
	BN_free(bn);
}

static int
group_setup(void **state)
{
	(void)state;
	struct store_err se;
	struct pki_err pe = {0};
	struct reg_err re;
	char p[400], key[500], err[200];

	assert_int_equal(td_make(T.dir, sizeof T.dir, "test_pkipub"), 0);
	snprintf(p, sizeof p, "%s/audit", T.dir);
	assert_int_equal(audit_keygen(p, &se), 0);
	snprintf(key, sizeof key, "%s/audit.key", p);
	T.audit = audit_open(p, "node1", key, &se);
	assert_non_null(T.audit);
	snprintf(T.cadir, sizeof T.cadir, "%s/ca", T.dir);
	struct pki_ca_init_params ip = {.ci_dir = T.cadir, .ci_alg = PKI_CA_KEY_EC_P256,
					.ci_cn = "Publication Test CA", .ci_c = "FI",
					.ci_passphrase = PASS, .ci_passphrase_len = strlen(PASS)};
	T.ca = pki_ca_init(&ip, &pe);
	if (!T.ca)
		fail_msg("pki_ca_init: %d %s", pe.status, pe.detail);
	T.ca2 = pki_ca_open(T.cadir, NULL, 0, &pe);
	assert_non_null(T.ca2);
	struct reg_conf rc = {.rc_node = "node1", .rc_data_dir = T.dir, .rc_audit = T.audit,
			      .rc_ca = T.ca};
	T.reg = reg_new(&rc, &re);
	if (!T.reg)
		fail_msg("reg_new: %d %s", re.status, re.msg);
	T.good = issue("PNOFI-1");
	T.revoked = issue("PNOFI-2");

	T.pool = pool_new(2, 0, pool_init, pool_fini, NULL);
	assert_non_null(T.pool);
	struct pkipub_conf pc = {.pc_reg = T.reg, .pc_pool = T.pool, .pc_park_ms = PARK_MS};
	T.pub = pkipub_new(&pc, err, sizeof err);
	if (!T.pub)
		fail_msg("pkipub_new: %s", err);
	struct srv_conf sc = {.sc_workers = 2, .sc_nlisteners = 1};
	sc.sc_listeners[0] = (struct srv_listener_conf){
		.sl_name = "pki", .sl_addr = "127.0.0.1", .sl_max_body = PKIPUB_MAX_BODY,
		.sl_handler = pkipub_handler, .sl_cancel = pkipub_cancel, .sl_arg = T.pub};
	struct net_err ne;
	T.srv = srv_new(&sc, &ne);
	if (!T.srv)
		fail_msg("srv_new: %s", ne.ne_detail);
	pkipub_attach(T.pub, T.srv);
	T.port = srv_listener_port(T.srv, 0);
	if (srv_start(T.srv, &ne) != 0)
		fail_msg("srv_start: %s", ne.ne_detail);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	if (T.srv)
		srv_stop(T.srv);
	if (T.pool)
		pool_stop(T.pool);
	pkipub_free(T.pub);
	srv_free(T.srv);
	pool_free(T.pool);
	reg_free(T.reg);
	pki_ca_free(T.ca2);
	pki_ca_free(T.ca);
	audit_close(T.audit);
	X509_free(T.good);
	X509_free(T.revoked);
	if (T.dir[0])
		td_remove(T.dir);
	return 0;
}

/* ---- tests ----------------------------------------------------------------- */

static void
test_ocsp_good(void **state)
{
	(void)state;
	int st = -1, reason = -1;
	assert_int_equal(ocsp_post(pki_ca_cert(T.ca), X509_get0_serialNumber(T.good), &st, &reason),
			 OCSP_RESPONSE_STATUS_SUCCESSFUL);
	assert_int_equal(st, V_OCSP_CERTSTATUS_GOOD);
}

/* Revoked by "another process" a moment ago: answered at once. */
static void
test_ocsp_revoked(void **state)
{
	(void)state;
	int st = -1, reason = -1;
	assert_int_equal(ocsp_post(pki_ca_cert(T.ca), X509_get0_serialNumber(T.revoked), &st,
				   &reason),
			 OCSP_RESPONSE_STATUS_SUCCESSFUL);
	assert_int_equal(st, V_OCSP_CERTSTATUS_GOOD);
	revoke_elsewhere(T.revoked, PKI_CA_REASON_KEY_COMPROMISE);
	assert_int_equal(ocsp_post(pki_ca_cert(T.ca), X509_get0_serialNumber(T.revoked), &st,
				   &reason),
			 OCSP_RESPONSE_STATUS_SUCCESSFUL);
	assert_int_equal(st, V_OCSP_CERTSTATUS_REVOKED);
	assert_int_equal(reason, OCSP_REVOKED_STATUS_KEYCOMPROMISE);
	/* the other certificate is not touched */
	assert_int_equal(ocsp_post(pki_ca_cert(T.ca), X509_get0_serialNumber(T.good), &st, &reason),
			 OCSP_RESPONSE_STATUS_SUCCESSFUL);
	assert_int_equal(st, V_OCSP_CERTSTATUS_GOOD);
}

/* A serial this CA never issued: unknown; a CertID of another CA:
 * unauthorized - both answered 200, they are OCSP answers. */
static void
test_ocsp_unknown_and_foreign(void **state)
{
	(void)state;
	int st = -1, reason = -1;
	ASN1_INTEGER *s = ASN1_INTEGER_new();
	assert_int_equal(ASN1_INTEGER_set(s, 0x7eadbeef), 1);
	assert_int_equal(ocsp_post(pki_ca_cert(T.ca), s, &st, &reason),
			 OCSP_RESPONSE_STATUS_SUCCESSFUL);
	assert_int_equal(st, V_OCSP_CERTSTATUS_UNKNOWN);
	/* T.good as issuer: a name and key that are not the CA's */
	assert_int_equal(ocsp_post(T.good, s, &st, &reason), OCSP_RESPONSE_STATUS_UNAUTHORIZED);
	ASN1_INTEGER_free(s);
}

/* RFC 6960 A.1.1: GET /ocsp/{url-encoding of base64 of the DER}. */
static void
test_ocsp_get(void **state)
{
	(void)state;
	OCSP_CERTID *id;
	OCSP_REQUEST *rq;
	size_t len;
	unsigned char *der = ocsp_req(pki_ca_cert(T.ca), X509_get0_serialNumber(T.good), &id, &rq,
				      &len);
	char b64[2048], target[4096];
	int bl = EVP_EncodeBlock((unsigned char *)b64, der, (int)len);
	assert_true(bl > 0);
	/* percent-encode '+', '/' and '=' */
	size_t o = snprintf(target, sizeof target, "/ocsp/");
	for (int i = 0; i < bl; i++)
		o += (size_t)snprintf(target + o, sizeof target - o,
				      strchr("+/=", b64[i]) ? "%%%02X" : "%c", b64[i]);
	struct answer a;
	int st = -1, reason = -1;
	http("GET", target, NULL, NULL, 0, &a);
	assert_int_equal(a.status, 200);
	assert_string_equal(header_of(&a, "Content-Type"), "application/ocsp-response");
	assert_int_equal(ocsp_check(&a, rq, id, &st, &reason), OCSP_RESPONSE_STATUS_SUCCESSFUL);
	assert_int_equal(st, V_OCSP_CERTSTATUS_GOOD);
	answer_free(&a);
	/* the same with the base64 as it is ('/' raw: clients do send it) */
	snprintf(target, sizeof target, "/ocsp/%.*s", bl, b64);
	http("GET", target, NULL, NULL, 0, &a);
	assert_int_equal(a.status, 200);
	assert_int_equal(ocsp_check(&a, rq, id, &st, &reason), OCSP_RESPONSE_STATUS_SUCCESSFUL);
	answer_free(&a);
	/* HEAD: the headers only */
	http("HEAD", target, NULL, NULL, 0, &a);
	assert_int_equal(a.status, 200);
	assert_int_equal(a.len, 0);
	assert_string_equal(header_of(&a, "Content-Type"), "application/ocsp-response");
	answer_free(&a);
	OPENSSL_free(der);
	OCSP_CERTID_free(id);
	OCSP_REQUEST_free(rq);
}

/* What is not an OCSPRequest gets the OCSP answer malformedRequest. */
static void
test_ocsp_malformed(void **state)
{
	(void)state;
	static const char *const targets[] = {
		"/ocsp/", "/ocsp/%25%25%25%25", "/ocsp/bm90IGRlcg==", "/ocsp/not*base64", "/ocsp/YQ%00=",
		"/ocsp/YQ", "/ocsp/YR==",
	};
	struct answer a;
	for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
		http("GET", targets[i], NULL, NULL, 0, &a);
		assert_int_equal(a.status, 200);
		assert_int_equal(ocsp_check(&a, NULL, NULL, NULL, NULL),
				 OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
		answer_free(&a);
	}
	static const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x01, 0x00};
	http("POST", "/ocsp", "application/ocsp-request", junk, sizeof junk, &a);
	assert_int_equal(a.status, 200);
	assert_int_equal(ocsp_check(&a, NULL, NULL, NULL, NULL),
			 OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	answer_free(&a);
	http("POST", "/ocsp", "application/ocsp-request", NULL, 0, &a);
	assert_int_equal(a.status, 200);
	assert_int_equal(ocsp_check(&a, NULL, NULL, NULL, NULL),
			 OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	answer_free(&a);
}

/* Bounds and routing: 413 past MSSP_CA_MAX_OCSP_REQ, 415, 404, 405. */
static void
test_refusals(void **state)
{
	(void)state;
	uint8_t *big = calloc(1, MSSP_CA_MAX_OCSP_REQ + 1);
	assert_non_null(big);
	expect("POST", "/ocsp", "application/ocsp-request", big, MSSP_CA_MAX_OCSP_REQ + 1, 413,
	       NULL, NULL);
	free(big);
	static const uint8_t junk[] = {0x30, 0x00};
	expect("POST", "/ocsp", "application/octet-stream", junk, sizeof junk, 415, NULL, NULL);
	expect("POST", "/ocsp", NULL, junk, sizeof junk, 415, NULL, NULL);
	static const char *const nf[] = {"/", "/ocsp2", "/crl/x", "/metrics", "/crl.pem"};
	for (size_t i = 0; i < sizeof nf / sizeof nf[0]; i++)
		expect("GET", nf[i], NULL, NULL, 0, 404, NULL, NULL);
	expect("GET", "/ocsp", NULL, NULL, 0, 405, "Allow", "POST");
	expect("POST", "/crl", "application/ocsp-request", junk, sizeof junk, 405, "Allow",
	       "GET, HEAD");
	expect("DELETE", "/ocsp/AAAA", NULL, NULL, 0, 405, "Allow", "GET, HEAD");
}

/* The CRL (DER) lists `x`?  Checks the signature against the CA too. */
static bool
crl_lists(const struct answer *a, X509 *x)
{
	const unsigned char *p = a->body;
	X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)a->len);
	X509_REVOKED *rv = NULL;
	assert_non_null(crl);
	assert_ptr_equal(p, a->body + a->len);
	assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(pki_ca_cert(T.ca))), 1);
	assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(crl),
				       X509_get_subject_name(pki_ca_cert(T.ca))),
			 0);
	bool found = X509_CRL_get0_by_serial(crl, &rv, X509_get0_serialNumber(x)) == 1;
	X509_CRL_free(crl);
	return found;
}

static void
crl_get(struct answer *a)
{
	http("GET", "/crl", NULL, NULL, 0, a);
	assert_int_equal(a->status, 200);
	assert_string_equal(header_of(a, "Content-Type"), "application/pkix-crl");
}

static void
test_crl(void **state)
{
	(void)state;
	struct answer a;
	char path[400];
	struct stat st, st2;
	snprintf(path, sizeof path, "%s/crl.pem", T.cadir);

	crl_get(&a);
	assert_true(crl_lists(&a, T.revoked));
	assert_false(crl_lists(&a, T.good));
	answer_free(&a);
	assert_int_equal(stat(path, &st), 0);
	/* current and complete: served as it is (the file is not rewritten) */
	crl_get(&a);
	assert_true(crl_lists(&a, T.revoked));
	answer_free(&a);
	assert_int_equal(stat(path, &st2), 0);
	assert_int_equal(st.st_ino, st2.st_ino);
	/* a revocation elsewhere without a new CRL (as when its re-issue
	 * failed): the served CRL lists it anyway */
	X509 *x = issue("PNOFI-3");
	crl_get(&a);
	answer_free(&a);
	revoke_elsewhere(x, PKI_CA_REASON_CESSATION_OF_OPERATION);
	crl_get(&a);
	assert_true(crl_lists(&a, x));
	assert_true(crl_lists(&a, T.revoked));
	answer_free(&a);
	/* missing: issued again */
	assert_int_equal(unlink(path), 0);
	crl_get(&a);
	assert_true(crl_lists(&a, x));
	answer_free(&a);
	assert_int_equal(stat(path, &st), 0);
	/* HEAD: headers only */
	http("HEAD", "/crl", NULL, NULL, 0, &a);
	assert_int_equal(a.status, 200);
	assert_int_equal(a.len, 0);
	answer_free(&a);
	X509_free(x);
}

/* The CRL number of the CRL reg_pki_crl serves now. */
static long
served_crl_number(void)
{
	uint8_t *der = NULL;
	size_t len = 0;
	struct reg_err e;
	assert_int_equal(reg_pki_crl(T.reg, &der, &len, &e), 0);
	const unsigned char *p = der;
	X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
	assert_non_null(crl);
	assert_true(X509_cmp_time(X509_CRL_get0_nextUpdate(crl), NULL) > 0);
	ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	assert_non_null(num);
	long n = ASN1_INTEGER_get(num);
	ASN1_INTEGER_free(num);
	X509_CRL_free(crl);
	OPENSSL_free(der);
	return n;
}

/* A CRL with less than a quarter of its validity left (crl_hours 168
 * here) is replaced before it is served; one with more is served. */
static void
test_crl_stale(void **state)
{
	(void)state;
	struct pki_err pe = {0};
	long n;
	/* issued a day ago: six days left */
	assert_int_equal(pki_ca_crl(T.ca, time(NULL) - 86400, NULL, &pe), 0);
	n = served_crl_number();
	assert_int_equal(served_crl_number(), n);
	/* issued six days ago: one day left */
	assert_int_equal(pki_ca_crl(T.ca, time(NULL) - 6 * 86400, NULL, &pe), 0);
	assert_int_equal(served_crl_number(), n + 2);
	assert_int_equal(served_crl_number(), n + 2);
}

/* reg without the CA in the process: OCSP 503; a current CRL file is
 * still served, a missing one is 503. */
static void
test_reg_without_ca(void **state)
{
	(void)state;
	struct reg_conf rc = {.rc_node = "node1", .rc_data_dir = T.dir, .rc_audit = T.audit};
	struct reg_err e;
	struct reg *r = reg_new(&rc, &e);
	uint8_t *out = NULL;
	size_t len = 0;
	static const uint8_t junk[] = {0x30, 0x00};
	char path[400], keep[420];
	assert_non_null(r);
	assert_int_equal(reg_pki_ocsp(r, junk, sizeof junk, &out, &len, &e), -1);
	assert_int_equal(e.status, 503);
	assert_null(out);
	assert_int_equal(reg_pki_crl(r, &out, &len, &e), 0);
	assert_non_null(out);
	OPENSSL_free(out);
	out = NULL;
	snprintf(path, sizeof path, "%s/crl.pem", T.cadir);
	snprintf(keep, sizeof keep, "%s.keep", path);
	assert_int_equal(rename(path, keep), 0);
	assert_int_equal(reg_pki_crl(r, &out, &len, &e), -1);
	assert_int_equal(e.status, 503);
	assert_null(out);
	assert_int_equal(rename(keep, path), 0);
	reg_free(r);
	/* the reg with the CA: an OCSP error response is REG_OCSP_ERROR */
	assert_int_equal(reg_pki_ocsp(T.reg, junk, sizeof junk, &out, &len, &e), REG_OCSP_ERROR);
	assert_int_equal(e.status, 400);
	assert_non_null(out);
	OPENSSL_free(out);
}

/* The CA stalled (its lock held, as by a long revocation): a request is
 * answered 503 with Retry-After at its deadline, one waiting behind it
 * too (dropped from the queue); then the listener works again. */
static void
test_deadline(void **state)
{
	(void)state;
	pthread_mutex_lock(&T.reg->r_ca_lock);
	expect("GET", "/crl", NULL, NULL, 0, 503, "Retry-After", "1");
	/* the first job still holds the run slot (stuck on the lock): this
	 * one waits in the queue until its deadline */
	expect("GET", "/crl", NULL, NULL, 0, 503, "Retry-After", "1");
	pthread_mutex_unlock(&T.reg->r_ca_lock);
	int st = -1, reason = -1;
	assert_int_equal(ocsp_post(pki_ca_cert(T.ca), X509_get0_serialNumber(T.good), &st, &reason),
			 OCSP_RESPONSE_STATUS_SUCCESSFUL);
	assert_int_equal(st, V_OCSP_CERTSTATUS_GOOD);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ocsp_good),
		cmocka_unit_test(test_ocsp_revoked),
		cmocka_unit_test(test_ocsp_unknown_and_foreign),
		cmocka_unit_test(test_ocsp_get),
		cmocka_unit_test(test_ocsp_malformed),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_crl),
		cmocka_unit_test(test_crl_stale),
		cmocka_unit_test(test_reg_without_ca),
		cmocka_unit_test(test_deadline),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
