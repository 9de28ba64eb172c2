/*
 * soap.h - the SOAP 1.2 / 1.1 codec of TS 102 204 messages.
 *
 * Reading is strict where it protects the platform and lenient where real
 * clients need it (clients.md §5):
 *   - libxml2 never loads a DTD, an entity or anything from the network;
 *     a DOCTYPE aborts the parse (bad-inputs X-01..X-05); UTF-8 and XML 1.0
 *     only; processing instructions are refused;
 *     depth, attribute, namespace-declaration and element counts are capped.
 *   - elements are matched by namespace URI and local name only;
 *     unknown elements and attributes are refused, duplicates
 *     of single elements are refused, simple fields may hold only
 *     text, never comments or elements (X-21, S-03).
 *   - the rpc wrapper may be unqualified, in the WSDL namespace or in the
 *     envelope's namespace (PHP); the part element may be unqualified
 *     (Kiuru samples) or in the TS 102 204 namespace; another TS 102 204
 *     version namespace is 108; an empty MSSP_ID and a DTBS without
 *     MimeType are fine; a one-line envelope is fine.
 *   - a header block with mustUnderstand="true" is a MustUnderstand fault
 *     (P-07); other header blocks are ignored and never give identity (P-08).
 *
 * Writing produces what every tested client parses: an unqualified
 * `<op>Response` wrapper, the `mss:` prefix literally on the message and
 * its children, `soapenv:` on the envelope, one element per line.
 *
 * Errors: functions fill the caller's struct mss_err (status.h) and return
 * NULL / -1.  Ownership is stated per function.
 */
#ifndef MSSP_MSS_SOAP_H
#define MSSP_MSS_SOAP_H

#include <stddef.h>

#include "mss/msg.h"
#include "mss/status.h"
#include "util/buf.h"

/* Decoder flags. */
enum {
	/* Server side: only a request of an operation may come in; a response,
	 * a fault or a notification is refused with 101 (P-10, P-11). */
	MSS_SOAP_REQUESTS_ONLY = 1 << 0,
	/* A mesh endpoint (TS 102 207): the msrs:RoamingHeader block is
	 * understood (mustUnderstand is honoured) and decoded into msg->roam;
	 * a malformed one is 101, more than MSSP_MESH_MAX_HOPS entries 780
	 * .  Its absence is not an error here (the role decides: 701).
	 * Without this flag a RoamingHeader with mustUnderstand="true" is a
	 * MustUnderstand fault, as any other header block. */
	MSS_SOAP_ROAMING = 1 << 1,
};

/* Once per process, before any other call: initialises libxml2 and installs
 * an external-entity loader that refuses every load (the loader is a
 * process-wide libxml2 setting; this is the only place that sets it). */
void mss_soap_init(void);

/* Decode one SOAP message of `len` bytes.  Returns a new message (free with
 * mss_msg_free) or NULL with `err` set.  `buf` is borrowed. */
struct mss_msg *mss_soap_decode(const char *buf, size_t len, unsigned flags,
				struct mss_err *err);

/* Append the SOAP form of `msg` to `out` (a request in its operation's
 * wrapper, a response in `<op>Response`, a fault as env:Fault).  `v` picks
 * the envelope; MSS_SOAP_NONE means SOAP 1.2.  0 or -1 with `err` set. */
int mss_soap_encode(const struct mss_msg *msg, enum mss_soap_version v,
		    struct mss_buf *out, struct mss_err *err);

/* Append a fault envelope for `f` (see mss_fault_from_err).  0 or -1 when
 * `out` overflows. */
int mss_soap_encode_fault(const struct mss_fault *f, enum mss_soap_version v,
			  struct mss_buf *out);

/* Check that `xml` is exactly one well-formed element {ns}local under the
 * same hardening as a message, as if it stood at element depth `depth` of
 * an envelope (so the depth cap is the same), and return its serialized
 * form copied into
 * the message's arena (used by the JSON codec for fields kept as raw XML,
 * so a JSON string can never inject markup: bad-inputs J-08). */
char *mss_soap_raw_check(struct mss_msg *msg, const char *xml, const char *ns,
			 const char *local, int depth, struct mss_err *err);

#endif
