/*
 * tls.h - OpenSSL contexts for the listeners (server side, optionally mutual
 * TLS) and for tests and outbound connections (client side), and the
 * certificate fingerprint every identity decision uses.
 *
 * One policy, written once (security.md P-27, bad-inputs.md §6):
 *   - TLS 1.2 minimum, 1.3 preferred; forward-secret suites only (ECDHE with
 *     AES-GCM or ChaCha20-Poly1305 in 1.2; every 1.3 suite); OpenSSL
 *     security level MSSP_TLS_SECURITY_LEVEL (RSA >= 2048, no SHA-1 in
 *     certificate signatures), server cipher preference (T-09);
 *   - no compression, no renegotiation (T-09, T-13), never post-handshake
 *     authentication;
 *   - ALPN: "http/1.1" is the only protocol; a client that offers ALPN
 *     without it (e.g. "h2" alone) gets the no_application_protocol alert
 *     (H-13); a client that offers no ALPN is served HTTP/1.1;
 *   - mutual TLS: a trust store of its own for client certificates, apart
 *     from everything else (T-02), SSL_VERIFY_PEER|FAIL_IF_NO_PEER_CERT
 *     (T-01), purpose sslclient (T-05, OpenSSL's default for a server),
 *     chain depth and Certificate-message size caps (T-10), optional CRL
 *     check of the client certificate (T-04);
 *   - resumption: a random session-id context per SSL_CTX (required for
 *     resumption with client certificates, stack.md pitfall 4, and it keeps
 *     a session from one context out of every other), a bounded session
 *     cache, stateless tickets whose keys live in the SSL_CTX; a new
 *     SSL_CTX (certificate or CRL reload) therefore ends every session of
 *     the old one, so a revoked client must do a full handshake again;
 *   - SSL_MODE_RELEASE_BUFFERS (memory of idle and parked connections),
 *     SSL_OP_IGNORE_UNEXPECTED_EOF (a peer that closes without close_notify
 *     reads as EOF: we never delimit a body by the close).
 *
 * The server's key and certificates are whatever the files hold (msspd init
 * writes ECDSA P-256); the files are size-capped before OpenSSL reads them.
 */
#ifndef MSSP_NET_TLS_H
#define MSSP_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#define NET_ERR_DETAIL_MAX 160

/*
 * The net layer's error type (tls and server): functions return 0 / a
 * pointer, or -1 / NULL with this filled.  The detail is generic text for the
 * log: which step failed and OpenSSL's reason string, never key material,
 * never bytes received from a peer.
 */
struct net_err {
	char ne_detail[NET_ERR_DETAIL_MAX];
};

/* SHA-256 of a certificate's DER: the identity of an AP or a peer
 * (stack.md §10: never a DN string). */
#define TLS_FP_LEN 32
#define TLS_FP_HEX_LEN (2 * TLS_FP_LEN)

struct tls_server_conf {
	const char *ts_cert_file;      /* PEM: leaf first, then intermediates */
	const char *ts_key_file;       /* PEM private key, not encrypted      */
	const char *ts_client_ca_file; /* PEM trust anchors for client
	                                * certificates; NULL: none requested  */
	const char *ts_crl_file;       /* PEM CRL(s) for the client chain's
	                                * issuers; NULL: no CRL check.  Needs
	                                * ts_client_ca_file                    */
	unsigned ts_verify_depth;      /* CA certificates above the client's
	                                * leaf; 0: MSSP_TLS_VERIFY_DEPTH       */
	bool ts_tls13_only;            /* refuse TLS 1.2 as well              */
	unsigned ts_session_timeout_s; /* 0: MSSP_TLS_SESSION_TIMEOUT_S      */
	bool ts_client_cert_optional;  /* request a client certificate but do
	                                * not require one (the AE with HTTP
	                                * credentials on REST, rest.md): a
	                                * presented certificate is still fully
	                                * verified; the application decides
	                                * what a request without one may do   */
};

/*
 * A server SSL_CTX with the policy above.  Reads the files (each capped at
 * MSSP_TLS_MAX_FILE, a CRL file at MSSP_TLS_MAX_CRL_FILE), checks that the
 * key matches the certificate.  Returns a new SSL_CTX the caller owns (free
 * with SSL_CTX_free; a listener takes its own reference), or NULL with e
 * filled.  c and e MUST NOT be NULL.
 */
SSL_CTX *tls_server_ctx_new(const struct tls_server_conf *c, struct net_err *e);

struct tls_client_conf {
	const char *tc_ca_file;   /* PEM trust anchors for the server: required */
	const char *tc_cert_file; /* PEM client chain, NULL for none            */
	const char *tc_key_file;  /* its key (required with tc_cert_file)       */
	bool tc_alpn_http11;      /* offer ALPN "http/1.1"                      */
};

/*
 * A client SSL_CTX: TLS 1.2 minimum, same suites and security level as the
 * server, SSL_VERIFY_PEER against tc_ca_file only (no system store: T-12).
 * Call tls_client_prepare() on each SSL made from it.  Returns a new SSL_CTX
 * (SSL_CTX_free), or NULL with e filled.
 */
SSL_CTX *tls_client_ctx_new(const struct tls_client_conf *c, struct net_err *e);

/*
 * Bind ssl (borrowed) to the server identity it must present: host is a DNS
 * name (sent as SNI and checked against the certificate) or a numeric IPv4 /
 * IPv6 address (checked against iPAddress SANs, no SNI).  0 or -1.
 */
int tls_client_prepare(SSL *ssl, const char *host);

/* fp (caller's TLS_FP_LEN bytes) = SHA-256 of cert's DER (borrowed).
 * 0 or -1. */
int tls_cert_fingerprint(const X509 *cert, uint8_t fp[TLS_FP_LEN]);

/* Lowercase hex of fp into hex (TLS_FP_HEX_LEN + 1 bytes, NUL-terminated). */
void tls_fp_hex(const uint8_t fp[TLS_FP_LEN], char hex[TLS_FP_HEX_LEN + 1]);

#endif
