/*
 * msg.h - the TS 102 204 messages as C structs, and the schema that drives
 * both codecs.
 *
 * Every message, with the Kiuru/FiCom/Swisscom/Methics extensions real
 * clients send, is a tree of plain structs allocated from one arena
 * (util/arena.h): a decoded message is freed in one call and nothing in it
 * outlives the arena.  Scalars are kept as the text of the wire (XML
 * attribute or element content, JSON string) after the codec checked its
 * lexical type (integer, NCName, dateTime, ...); src/mss/validate.c then
 * applies the semantic rules.  Keeping the text means decode -> encode
 * never changes a value by reformatting it.
 *
 * The two codecs (soap.c, json.c) do not know the messages: they walk the
 * descriptor tables at the end of this header (struct mss_type), so one
 * table decides, for both encodings, what a message may contain.  Anything
 * not in the table is refused (bad-inputs X-17, J-05), except where a field
 * is declared RAW: an element kept whole as XML text (ds:Signature, SAML).
 * RAW text is a namespace-complete re-serialization of the element, not
 * the original bytes: a signature over it must be verified on the original
 * document before decoding (XML-DSig verification is a later module).
 *
 * Ownership: a struct mss_msg owns its arena; mss_msg_free() releases all.
 */
#ifndef MSSP_MSS_MSG_H
#define MSSP_MSS_MSG_H

#include <stdbool.h>
#include <stddef.h>

#include "util/arena.h"
#include "util/limits.h"

/* ---- namespaces ------------------------------------------------------- */
#define MSS_NS        "http://uri.etsi.org/TS102204/v1.1.2#"
#define MSS_NS_PREFIX "http://uri.etsi.org/TS102204/" /* other versions: 108 */
#define MSS_NS_WSDL   "http://uri.etsi.org/TS102204/etsi204-kiuru.wsdl"
#define MSS_NS_FI     "http://mss.ficom.fi/TS102204/v1.0.0#"
#define MSS_NS_MREG   "http://www.methics.fi/MSSPRegistration/v1.0.0#"
#define MSS_NS_MCS    "http://www.methics.fi/TS102204/ext/v1.0.0"
#define MSS_NS_SCO    "http://www.swisscom.ch/TS102204/ext/v1.0.0"
#define MSS_NS_SCAS   "http://mid.swisscom.ch/TS102204/as/v1.0"
#define MSS_NS_DS     "http://www.w3.org/2000/09/xmldsig#"
#define MSS_NS_XENC   "http://www.w3.org/2001/04/xmlenc#"
#define MSS_NS_SAMLP  "urn:oasis:names:tc:SAML:2.0:protocol"
#define MSS_NS_SOAP12 "http://www.w3.org/2003/05/soap-envelope"
#define MSS_NS_SOAP11 "http://schemas.xmlsoap.org/soap/envelope/"
#define MSS_NS_RPC    "http://www.w3.org/2003/05/soap-rpc"
#define MSS_NS_ROAM   "http://uri.etsi.org/TS102207/v1.1.2#"

/* ---- generic pieces --------------------------------------------------- */

/* A repeated element.  `items` holds `n` pointers: char * for scalar
 * lists, struct pointers for structured lists.  A NULL list pointer means
 * "absent"; a list with n == 0 is a present, empty wrapper element. */
struct mss_list {
	size_t n;
	void **items;
};

/* mss:DataType: text with optional MimeType and Encoding. */
struct mss_data {
	char *mime_type;
	char *encoding;
	char *data;
};

/* mss:MeshMemberType */
struct mss_mesh_member {
	char *dns_name;
	char *ip_address;
	char *uri;
	char *identifier_string;
};

/* mss:MobileUserType */
struct mss_mobile_user {
	struct mss_mesh_member *identity_issuer;
	char *user_identifier;
	struct mss_mesh_member *home_mssp;
	char *msisdn;
};

struct mss_ap_info {
	char *ap_id;
	char *ap_trans_id;
	char *ap_pwd;
	char *instant;
	char *ap_url;
};

struct mss_mssp_info {
	struct mss_mesh_member *mssp_id;
	char *instant;
};

/* mss:DigestAlgAndValueType: DigestMethod/@Algorithm + DigestValue */
struct mss_digest_method {
	char *algorithm;
};

struct mss_digest {
	struct mss_digest_method *method;
	char *value;
};

struct mss_key_reference {
	struct mss_list *certificate_url;	    /* char * */
	struct mss_list *certificate_issuer_dn;	    /* char * */
	struct mss_list *hash_of_users_public_key;  /* struct mss_digest * */
	struct mss_list *hash_of_ca_public_key;	    /* struct mss_digest * */
};

/* fi:NoSpamCode */
struct mss_nospam {
	char *verify;
	char *code;
};

/* mss:AdditionalServiceType with the service payloads clients send. */
struct mss_service {
	char *description; /* mssURI */
	struct mss_mesh_member *entity;
	char *session_id;
	char *event_id;
	struct mss_nospam *nospam;
	char *user_lang;
	char *display_name;
	char *attribute_query; /* samlp:AttributeQuery, kept as raw XML */
};

/* StatusCode is recursive (FiCom second-level codes). */
struct mss_status_code {
	char *value;
	struct mss_status_code *sub;
};

/* Swisscom GeoFencing / SubscriberInfo service results. */
struct mss_geofencing {
	char *country;
	char *accuracy;
	char *timestamp;
	char *device_confidence;
	char *location_confidence;
	char *error_code;
	char *error_message;
};

struct mss_subscriber_detail {
	char *id;
	char *value;
};

struct mss_subscriber_info {
	struct mss_list *detail; /* struct mss_subscriber_detail * */
};

struct mss_status;

struct mss_service_response {
	char *description;
	struct mss_mesh_member *entity;
	struct mss_status *status;
	char *saml_response; /* samlp:Response (personIdentity), raw XML */
	struct mss_subscriber_info *subscriber_info;
	struct mss_geofencing *geofencing;
};

/* Methics ProfileQueryExtension */
struct mss_pq_certificate {
	char *state;
	char *algorithm;
	struct mss_list *x509_certificate;  /* char * base64 */
	struct mss_list *x509_subject_name; /* char * */
};

struct mss_pq_pin_status {
	char *blocked; /* xs:boolean */
};

struct mss_pq_activation {
	char *name;
	char *success;
};

struct mss_pq_sscd {
	char *state;
	struct mss_pq_activation *activation;
	struct mss_pq_pin_status *pin_status;
	struct mss_list *certificate; /* struct mss_pq_certificate * */
};

struct mss_pq_user {
	char *recovery_code_created;
	char *auto_activation;
};

struct mss_pq_sscds {
	struct mss_pq_sscd *sim;
	struct mss_list *app; /* struct mss_pq_sscd * */
};

struct mss_pq_extension {
	struct mss_list *certificate; /* v1.x MobileUserCertificate */
	char *auto_activation;
	char *server_side_signature;
	char *recovery_code_created;
	struct mss_pq_user *mobile_user;
	struct mss_pq_sscds *sscds;
};

/* Swisscom receipt extension (request and response share the type). */
struct mss_receipt_profile {
	char *language;
	char *receipt_profile_uri;
};

struct mss_receipt_ext {
	char *receipt_messaging_mode;
	char *timeout;
	char *retry_timeout;
	char *next_retry;
	char *network_ack;
	char *client_ack;
	char *user_ack;
	char *user_response;
	char *fault_message;
	struct mss_receipt_profile *receipt_profile;
};

/* Methics MReg */
struct mss_mreg_param {
	char *name;
	char *value;
	char *name_space;
	char *mime_type;
	char *encoding;
	char *required; /* Kiuru REST only */
	char *tip;	/* Kiuru REST only */
	char *type;	/* Kiuru REST only */
};

struct mss_mreg_op_status {
	char *code;
	char *message;
	char *detail;
};

struct mss_mreg_operation {
	char *name;
	char *name_space;
	char *id;
	char *session_id;
	char *request_id;
	char *step;
	struct mss_list *parameter; /* struct mss_mreg_param * */
	struct mss_mreg_op_status *status; /* OperationOutput only */
};

struct mss_mreg_request {
	struct mss_mreg_operation *wireless;
	struct mss_mreg_operation *certification;
	struct mss_mreg_operation *provisioning;
	struct mss_mreg_operation *entity_user;
};

struct mss_mreg_response {
	struct mss_mreg_operation *output;
};

struct mss_mreg_simcard {
	char *iccid;
	char *imsi;
	char *msisdn;
};

struct mss_mreg_entity {
	char *ap_id;
	char *customer_id;
	struct mss_mesh_member *mssp_id;
	char *sp_id;
	char *entity_user_id;
};

struct mss_mreg_target {
	char *end_point_id;
	struct mss_mobile_user *mobile_user;
	struct mss_mreg_simcard *sim_card;
	struct mss_mreg_entity *entity_user;
};

struct mss_mreg_input {
	char *input_id;
	char *default_name_space;
	char *messaging_mode;
	char *case_id;
	struct mss_mreg_target *target;
	struct mss_list *request; /* struct mss_mreg_request * */
};

struct mss_mreg_output {
	char *input_id;
	char *case_id;
	struct mss_list *response; /* struct mss_mreg_response * */
};

/* Kiuru REST registration (laverca-rest, kiuru-ra): JSON only. */
struct mss_rest_user {
	char *role;
};

struct mss_rest_usecase {
	char *name;
	char *name_space;
	struct mss_list *inputs;  /* struct mss_mreg_param * */
	struct mss_list *outputs; /* struct mss_mreg_param * */
	struct mss_list *groups;  /* struct mss_rest_group * */
};

struct mss_rest_group {
	char *name;
	struct mss_list *outputs; /* struct mss_mreg_param * */
};

struct mss_status_detail {
	struct mss_mreg_output *registration_output;
	struct mss_list *service_responses; /* struct mss_service_response * */
	struct mss_receipt_ext *receipt_request_ext;
	struct mss_receipt_ext *receipt_response_ext;
	struct mss_pq_extension *profile_query_ext;
	char *text; /* Kiuru REST "StatusDetail":{"StatusDetail":"..."} */
};

struct mss_status {
	struct mss_status_code *code;
	char *message;
	struct mss_status_detail *detail;
};

/* fi:PKCS1 */
struct mss_pkcs1 {
	char *signature_value;
	char *x509_certificate;
};

/* mss:SignatureType: exactly one member is set. */
struct mss_signature {
	char *xml_signature; /* ds:Signature, raw XML */
	char *base64_signature;
	struct mss_pkcs1 *pkcs1;
};

struct mss_secure_methods {
	char *signature;
	char *registration;
	char *notification;
	char *profile_query;
	char *receipt;
	char *status;
};

/* ---- the messages ----------------------------------------------------- */

/* Fields every message carries (MessageAbstractType). */
struct mss_common {
	char *major_version;
	char *minor_version;
	char *id;
	struct mss_ap_info *ap_info;
	struct mss_mssp_info *mssp_info;
};

struct mss_signature_req {
	struct mss_common c;
	char *messaging_mode;
	char *timeout;
	char *validity_date;
	struct mss_mobile_user *mobile_user;
	struct mss_data *dtbs;
	struct mss_data *dtbd;
	char *signature_profile;
	struct mss_list *additional_services; /* struct mss_service * */
	char *mss_format;
	struct mss_key_reference *key_reference;
	char *signature_profile_comparison;
};

struct mss_signature_resp {
	struct mss_common c;
	char *mssp_trans_id;
	struct mss_mobile_user *mobile_user;
	struct mss_signature *signature;
	char *signature_profile;
	struct mss_status *status;
};

struct mss_status_req {
	struct mss_common c;
	char *mssp_trans_id;
	struct mss_mobile_user *mobile_user;
};

/* Also the notification of the server-server mode (MSSP_TransID set). */
struct mss_status_resp {
	struct mss_common c;
	char *mssp_trans_id;
	struct mss_mobile_user *mobile_user;
	struct mss_signature *signature;
	struct mss_status *status;
};

struct mss_receipt_req {
	struct mss_common c;
	char *mssp_trans_id;
	struct mss_mobile_user *mobile_user;
	struct mss_status *status;
	struct mss_data *message;
	char *signed_receipt; /* ds:Signature, raw XML */
};

struct mss_receipt_resp {
	struct mss_common c;
	struct mss_status *status;
};

struct mss_profile_req {
	struct mss_common c;
	struct mss_mobile_user *mobile_user;
	char *params;
	char *get_auto_activation;
	char *get_server_side_signature;
	char *get_recovery_code_created;
	char *get_certificates;
};

struct mss_profile_resp {
	struct mss_common c;
	struct mss_list *signature_profile; /* char * mssURI */
	struct mss_status *status;
};

struct mss_registration_req {
	struct mss_common c;
	struct mss_mobile_user *mobile_user;
	char *encrypted_data; /* raw XML */
	char *encrypt_response_by;
	char *certificate_uri;
	char *x509_certificate;
	struct mss_list *registration_input; /* struct mss_mreg_input * */
	struct mss_rest_user *user;	     /* JSON only */
	struct mss_rest_usecase *use_case;   /* JSON only */
};

struct mss_registration_resp {
	struct mss_common c;
	struct mss_status *status;
	char *encrypted_data;
	char *certificate_uri;
	char *x509_certificate;
	char *public_key;
	struct mss_rest_usecase *use_case; /* JSON only */
};

struct mss_handshake_req {
	struct mss_common c;
	struct mss_secure_methods *secure_methods;
	struct mss_list *certificates;	  /* char * base64 */
	struct mss_list *root_cas;	  /* char * DN */
	struct mss_list *signature_algs;  /* char * mssURI */
};

struct mss_handshake_resp {
	struct mss_common c;
	char *mssp_trans_id;
	struct mss_secure_methods *secure_methods;
	struct mss_list *mssp_certificates; /* char * base64 */
	struct mss_list *ap_certificates;   /* char * base64 */
	struct mss_list *signature_algs;    /* char * mssURI */
};

/* A SOAP fault or its JSON form, as a message. */
struct mss_fault_msg {
	char *code_value;    /* "Sender", "Receiver", "VersionMismatch", ... */
	char *code_ns;
	char *subcode_value; /* "_101" */
	char *subcode_ns;
	char *subsubcode_value; /* "_1011" (FiCom second level) */
	char *subsubcode_ns;
	char *reason;
	char *detail;
};

enum mss_msg_type {
	MSS_SIGNATURE_REQ,
	MSS_SIGNATURE_RESP,
	MSS_STATUS_REQ,
	MSS_STATUS_RESP,
	MSS_RECEIPT_REQ,
	MSS_RECEIPT_RESP,
	MSS_PROFILE_REQ,
	MSS_PROFILE_RESP,
	MSS_REGISTRATION_REQ,
	MSS_REGISTRATION_RESP,
	MSS_HANDSHAKE_REQ,
	MSS_HANDSHAKE_RESP,
	MSS_FAULT,
	MSS_MSG_TYPE_COUNT
};

/* The SOAP operation (rpc wrapper) a message travels in. */
enum mss_op {
	MSS_OP_NONE,
	MSS_OP_SIGNATURE,
	MSS_OP_STATUS_QUERY,
	MSS_OP_RECEIPT,
	MSS_OP_PROFILE_QUERY,
	MSS_OP_REGISTRATION,
	MSS_OP_HANDSHAKE,
	MSS_OP_NOTIFICATION, /* MSSP -> AP: StatusResp in, ReceiptReq out */
	MSS_OP_COUNT
};

enum mss_soap_version { MSS_SOAP_NONE, MSS_SOAP_11, MSS_SOAP_12 };

/* TS 102 207 RoamingHeader (docs/internals/mesh.md has the wire form).
 * One entry per hop, oldest first: each MSSP that forwards the message
 * appends its own.  All strings live in the message's arena. */
enum mss_mesh_role { MSS_MESH_ROLE_NONE, MSS_MESH_ROLE_AE, MSS_MESH_ROLE_HOME,
		     MSS_MESH_ROLE_TRANSIT };

struct mss_roam_entry {
	unsigned major, minor;		/* MajorVersion/MinorVersion (1/1)   */
	const char *instant;		/* RE_SenderInfo@Instant (xs:dateTime) */
	const char *re_trans_id;	/* RE_SenderInfo@RE_TransactionID:
					 * the sender's own transaction id   */
	unsigned timeout_s;		/* RE_SenderInfo@TimeOut, 0: absent  */
	const char *sender_id;		/* RE_Sender/MSSP_ID/URI             */
	enum mss_mesh_role role;	/* RE_Sender@Mesh_Role               */
};

struct mss_roam_hdr {
	struct mss_roam_entry entry[MSSP_MESH_MAX_HOPS];
	size_t n;			/* 1..MSSP_MESH_MAX_HOPS when decoded */
	const char *home_mssp;		/* CommonHeader/HomeMSSP/MSSP_ID/URI:
					 * where the sender routed it; NULL
					 * when absent                        */
};

struct mss_msg {
	enum mss_msg_type type;
	enum mss_op op;			/* from the wrapper, or the default */
	enum mss_soap_version soap;	/* envelope it came in, if SOAP */
	struct mss_arena *arena;	/* owns everything below */
	struct mss_roam_hdr *roam;	/* the RoamingHeader: set by the SOAP
					 * decoder under MSS_SOAP_ROAMING, and
					 * written by the encoder when set;
					 * NULL otherwise (JSON never has one) */
	union {
		struct mss_common *common; /* every non-fault member starts with it */
		struct mss_signature_req *sig_req;
		struct mss_signature_resp *sig_resp;
		struct mss_status_req *status_req;
		struct mss_status_resp *status_resp;
		struct mss_receipt_req *receipt_req;
		struct mss_receipt_resp *receipt_resp;
		struct mss_profile_req *profile_req;
		struct mss_profile_resp *profile_resp;
		struct mss_registration_req *reg_req;
		struct mss_registration_resp *reg_resp;
		struct mss_handshake_req *hs_req;
		struct mss_handshake_resp *hs_resp;
		struct mss_fault_msg *fault;
		void *any;
	} u;
};

/* ---- schema descriptors (used by the codecs) --------------------------- */

/* Where a field lives in XML. */
enum mss_place {
	MSS_P_ATTR,  /* attribute of the element (unqualified)                */
	MSS_P_ELEM,  /* child element with simple text content                */
	MSS_P_TEXT,  /* the element's own text content (DataType, NoSpamCode) */
	MSS_P_URI,   /* child element of mssURIType: <x><mss:mssURI>v</..></x> */
	MSS_P_OBJ,   /* child element of a structured type                    */
	MSS_P_RAW,   /* child element kept as serialized XML                  */
	MSS_P_JSON,  /* exists only in the JSON form (Kiuru REST MReg)        */
};

/* Lexical type of a scalar, checked by both codecs. */
enum mss_xtype {
	MSS_X_STRING,
	MSS_X_INTEGER,	/* xs:integer                     */
	MSS_X_POSINT,	/* xs:positiveInteger             */
	MSS_X_BOOLEAN,	/* xs:boolean                     */
	MSS_X_NCNAME,	/* xs:NCName                      */
	MSS_X_DATETIME,	/* xs:dateTime                    */
	MSS_X_ANYURI,	/* xs:anyURI                      */
	MSS_X_BASE64,	/* xs:base64Binary                */
	MSS_X_ID,	/* xs:ID (lenient: see clients.md §6) */
	MSS_X_MSGMODE,	/* mss:MessagingModeType enumeration  */
};

enum mss_field_flag {
	MSS_F_REQUIRED	= 1 << 0,
	MSS_F_LIST	= 1 << 1, /* repeated; with `item` set, inside a wrapper */
	MSS_F_JSON_BOOL = 1 << 2, /* JSON true/false instead of "true"/"false"  */
	MSS_F_JSON_VALUE = 1 << 3, /* JSON {"Value": v} (fi:UserLang, EventID)  */
	MSS_F_HOIST	= 1 << 4, /* JSON: member of the message, not of Status */
	MSS_F_BIG	= 1 << 5, /* long text allowed (DTBS, signatures)       */
	MSS_F_JOPT	= 1 << 7, /* required in SOAP, optional in Kiuru JSON   */
};

struct mss_type;

struct mss_field {
	const char *name;	/* XML local name                                  */
	const char *json;	/* JSON key (NULL: same as name)                   */
	const char *ns;		/* XML namespace of an element; NULL for attrs     */
	const char *alt_ns;	/* a second accepted namespace (PHP receipt ext)   */
	const char *item;	/* list item element inside wrapper `name`         */
	enum mss_place place;
	enum mss_xtype xtype;
	unsigned flags;
	size_t off;		/* offset of the member in the C struct            */
	const struct mss_type *sub; /* for MSS_P_OBJ                               */
};

struct mss_type {
	const char *name;
	size_t size;
	const struct mss_field *fields;
	size_t nfields;
	bool unordered; /* XML children may come in any order (Methics
			 * MobileUserCertificate interleaves its lists) */
	/* fields[choice_first..choice_last] are an XSD choice group (several
	 * may appear, in any order among themselves); 0/0: none */
	size_t choice_first, choice_last;
};

/* Per message type: element name, C struct, schema and SOAP operation. */
struct mss_msg_info {
	const char *element;	/* "MSS_SignatureReq"                    */
	const struct mss_type *type;
	enum mss_op op;		/* default operation                     */
	bool is_request;	/* travels AP -> MSSP (or MSSP -> AP for notif.) */
};

const struct mss_msg_info *mss_msg_info(enum mss_msg_type t);
/* Lookup by element local name; -1 when unknown. */
int mss_msg_type_by_element(const char *local_name);

/* Operation names: "MSS_Signature", ...; NULL for MSS_OP_NONE. */
const char *mss_op_name(enum mss_op op);
enum mss_op mss_op_by_name(const char *name); /* MSS_OP_NONE if unknown */
/* Which message a request (or response) of `op` carries; -1 for none. */
int mss_op_request_type(enum mss_op op);
int mss_op_response_type(enum mss_op op);

/* The descriptor of StatusDetail's ServiceResponses, which the JSON form
 * carries at the message level (flag MSS_F_HOIST). */
const struct mss_field *mss_msg_hoisted_field(void);

/* Allocate an empty message of `type` with its own arena (cap
 * MSSP_MSG_ARENA_MAX).  Returns NULL on allocation failure. */
struct mss_msg *mss_msg_new(enum mss_msg_type type);
/* Frees the message and everything reachable from it.  Accepts NULL. */
void mss_msg_free(struct mss_msg *msg);

/* Deep comparison through the schema (scalars by text).  True when equal. */
bool mss_msg_equal(const struct mss_msg *a, const struct mss_msg *b);

/* Convenience for writers: copy `s` into the message's arena.  NULL on
 * failure or if `s` is NULL. */
char *mss_msg_strdup(struct mss_msg *msg, const char *s);
void *mss_msg_alloc(struct mss_msg *msg, size_t size); /* zeroed */

#endif
