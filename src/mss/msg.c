/*
 * msg.c - the schema of every TS 102 204 message (descriptor tables) and
 * the generic operations on messages: allocation, freeing, comparison.
 *
 * The tables follow the XSDs in shared/etsi (MSS-plus-Mobile-Ink.xsd,
 * ficom.xsd, MSS-ProfileExt.xsd, MSS-ReceiptExt.xsd, MSS-SubscriberInfo.xsd,
 * mssp-registration-Mobile-Ink-1.0.xsd) in element order, and the JSON key
 * names of the Kiuru REST samples (shared/etsi/samples/rest*).
 */
#include "mss/msg.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "util/limits.h"

#define NF(a) (sizeof(a) / sizeof((a)[0]))

/* Field constructors.  st = C struct, m = member. */
#define ATTR(nm, js, st, m, xt, fl) \
	{ nm, js, NULL, NULL, NULL, MSS_P_ATTR, xt, fl, offsetof(st, m), NULL }
#define ELEM(nm, js, ns, st, m, xt, fl) \
	{ nm, js, ns, NULL, NULL, MSS_P_ELEM, xt, fl, offsetof(st, m), NULL }
#define TEXT(js, st, m, xt, fl) \
	{ NULL, js, NULL, NULL, NULL, MSS_P_TEXT, xt, fl, offsetof(st, m), NULL }
#define URI(nm, js, ns, st, m, fl) \
	{ nm, js, ns, NULL, NULL, MSS_P_URI, MSS_X_ANYURI, fl, offsetof(st, m), NULL }
#define OBJ(nm, js, ns, st, m, sub, fl) \
	{ nm, js, ns, NULL, NULL, MSS_P_OBJ, MSS_X_STRING, fl, offsetof(st, m), sub }
#define OBJ2(nm, js, ns, ns2, st, m, sub, fl) \
	{ nm, js, ns, ns2, NULL, MSS_P_OBJ, MSS_X_STRING, fl, offsetof(st, m), sub }
#define RAW(nm, js, ns, st, m, fl) \
	{ nm, js, ns, NULL, NULL, MSS_P_RAW, MSS_X_STRING, fl, offsetof(st, m), NULL }
#define JSONLY(js, st, m, sub, fl) \
	{ NULL, js, NULL, NULL, NULL, MSS_P_JSON, MSS_X_STRING, fl, offsetof(st, m), sub }
/* Lists.  WRAP: <nm><item/>*</nm>, JSON "js": [...].  BARE: repeated <nm/>. */
#define WRAP(nm, js, ns, item, place, xt, st, m, sub, fl) \
	{ nm, js, ns, NULL, item, place, xt, (fl) | MSS_F_LIST, offsetof(st, m), sub }
#define WRAP2(nm, js, ns, ns2, item, place, xt, st, m, sub, fl) \
	{ nm, js, ns, ns2, item, place, xt, (fl) | MSS_F_LIST, offsetof(st, m), sub }
#define BARE(nm, js, ns, place, xt, st, m, sub, fl) \
	{ nm, js, ns, NULL, NULL, place, xt, (fl) | MSS_F_LIST, offsetof(st, m), sub }

#define TYPE(var, st, fields) \
	static const struct mss_type var = { #st, sizeof(struct st), fields, NF(fields), false, 0, 0 }
#define TYPE_UNORDERED(var, st, fields) \
	static const struct mss_type var = { #st, sizeof(struct st), fields, NF(fields), true, 0, 0 }
/* fields [first, last] form an XSD choice: any order among themselves */
#define TYPE_CHOICE(var, st, fields, first, last) \
	static const struct mss_type var = { #st, sizeof(struct st), fields, NF(fields), false, first, last }

#define REQ MSS_F_REQUIRED
#define JOPT MSS_F_JOPT

/* ---- shared types ----------------------------------------------------- */

static const struct mss_field mesh_member_f[] = {
	ELEM("DNSName", NULL, MSS_NS, struct mss_mesh_member, dns_name, MSS_X_STRING, 0),
	ELEM("IPAddress", NULL, MSS_NS, struct mss_mesh_member, ip_address, MSS_X_STRING, 0),
	ELEM("URI", NULL, MSS_NS, struct mss_mesh_member, uri, MSS_X_ANYURI, 0),
	ELEM("IdentifierString", NULL, MSS_NS, struct mss_mesh_member, identifier_string, MSS_X_STRING, 0),
};
TYPE(mesh_member_t, mss_mesh_member, mesh_member_f);

static const struct mss_field mobile_user_f[] = {
	OBJ("IdentityIssuer", NULL, MSS_NS, struct mss_mobile_user, identity_issuer, &mesh_member_t, 0),
	ELEM("UserIdentifier", NULL, MSS_NS, struct mss_mobile_user, user_identifier, MSS_X_STRING, 0),
	OBJ("HomeMSSP", NULL, MSS_NS, struct mss_mobile_user, home_mssp, &mesh_member_t, 0),
	ELEM("MSISDN", NULL, MSS_NS, struct mss_mobile_user, msisdn, MSS_X_STRING, 0),
};
TYPE(mobile_user_t, mss_mobile_user, mobile_user_f);

static const struct mss_field ap_info_f[] = {
	ATTR("AP_ID", NULL, struct mss_ap_info, ap_id, MSS_X_ANYURI, REQ | JOPT),
	ATTR("AP_TransID", NULL, struct mss_ap_info, ap_trans_id, MSS_X_NCNAME, REQ | JOPT),
	ATTR("AP_PWD", NULL, struct mss_ap_info, ap_pwd, MSS_X_STRING, REQ | JOPT),
	ATTR("Instant", NULL, struct mss_ap_info, instant, MSS_X_DATETIME, REQ | JOPT),
	ATTR("AP_URL", NULL, struct mss_ap_info, ap_url, MSS_X_ANYURI, 0),
};
TYPE(ap_info_t, mss_ap_info, ap_info_f);

static const struct mss_field mssp_info_f[] = {
	OBJ("MSSP_ID", NULL, MSS_NS, struct mss_mssp_info, mssp_id, &mesh_member_t, REQ),
	ATTR("Instant", NULL, struct mss_mssp_info, instant, MSS_X_DATETIME, 0),
};
TYPE(mssp_info_t, mss_mssp_info, mssp_info_f);

static const struct mss_field data_f[] = {
	ATTR("MimeType", NULL, struct mss_data, mime_type, MSS_X_STRING, 0),
	ATTR("Encoding", NULL, struct mss_data, encoding, MSS_X_STRING, 0),
	TEXT("Data", struct mss_data, data, MSS_X_STRING, MSS_F_BIG),
};
TYPE(data_t, mss_data, data_f);

static const struct mss_field digest_method_f[] = {
	ATTR("Algorithm", NULL, struct mss_digest_method, algorithm, MSS_X_ANYURI, REQ),
};
TYPE(digest_method_t, mss_digest_method, digest_method_f);

static const struct mss_field digest_f[] = {
	OBJ("DigestMethod", NULL, MSS_NS, struct mss_digest, method, &digest_method_t, 0),
	ELEM("DigestValue", NULL, MSS_NS, struct mss_digest, value, MSS_X_BASE64, REQ),
};
TYPE(digest_t, mss_digest, digest_f);

static const struct mss_field key_reference_f[] = {
	BARE("CertificateURL", NULL, MSS_NS, MSS_P_ELEM, MSS_X_ANYURI, struct mss_key_reference, certificate_url, NULL, 0),
	BARE("CertificateIssuerDN", NULL, MSS_NS, MSS_P_ELEM, MSS_X_STRING, struct mss_key_reference, certificate_issuer_dn, NULL, 0),
	BARE("HashOfUsersPublicKey", NULL, MSS_NS, MSS_P_OBJ, MSS_X_STRING, struct mss_key_reference, hash_of_users_public_key, &digest_t, 0),
	BARE("HashOfCAPublicKey", NULL, MSS_NS, MSS_P_OBJ, MSS_X_STRING, struct mss_key_reference, hash_of_ca_public_key, &digest_t, 0),
};
TYPE(key_reference_t, mss_key_reference, key_reference_f);

static const struct mss_field nospam_f[] = {
	ATTR("verify", "Verify", struct mss_nospam, verify, MSS_X_STRING, 0),
	TEXT("Code", struct mss_nospam, code, MSS_X_STRING, 0),
};
TYPE(nospam_t, mss_nospam, nospam_f);

static const struct mss_field service_f[] = {
	URI("Description", NULL, MSS_NS, struct mss_service, description, REQ),
	OBJ("Entity", NULL, MSS_NS, struct mss_service, entity, &mesh_member_t, 0),
	ELEM("SessionID", NULL, MSS_NS_FI, struct mss_service, session_id, MSS_X_STRING, MSS_F_JSON_VALUE),
	ELEM("EventID", NULL, MSS_NS_FI, struct mss_service, event_id, MSS_X_STRING, MSS_F_JSON_VALUE),
	OBJ("NoSpamCode", NULL, MSS_NS_FI, struct mss_service, nospam, &nospam_t, 0),
	ELEM("UserLang", NULL, MSS_NS_FI, struct mss_service, user_lang, MSS_X_STRING, MSS_F_JSON_VALUE),
	ELEM("DisplayName", NULL, MSS_NS_FI, struct mss_service, display_name, MSS_X_STRING, MSS_F_JSON_VALUE),
	RAW("AttributeQuery", NULL, MSS_NS_SAMLP, struct mss_service, attribute_query, 0),
};
TYPE_CHOICE(service_t, mss_service, service_f, 2, 7);

static const struct mss_type status_code_t;
static const struct mss_field status_code_f[] = {
	ATTR("Value", NULL, struct mss_status_code, value, MSS_X_INTEGER, REQ),
	OBJ("StatusCode", NULL, MSS_NS, struct mss_status_code, sub, &status_code_t, 0),
};
TYPE(status_code_t, mss_status_code, status_code_f);

static const struct mss_field geofencing_f[] = {
	ATTR("country", "Country", struct mss_geofencing, country, MSS_X_STRING, 0),
	ATTR("accuracy", "Accuracy", struct mss_geofencing, accuracy, MSS_X_STRING, 0),
	ATTR("timestamp", "Timestamp", struct mss_geofencing, timestamp, MSS_X_DATETIME, 0),
	ATTR("deviceconfidence", "DeviceConfidence", struct mss_geofencing, device_confidence, MSS_X_STRING, 0),
	ATTR("locationconfidence", "LocationConfidence", struct mss_geofencing, location_confidence, MSS_X_STRING, 0),
	ATTR("errorcode", "ErrorCode", struct mss_geofencing, error_code, MSS_X_INTEGER, 0),
	ATTR("errormessage", "ErrorMessage", struct mss_geofencing, error_message, MSS_X_STRING, 0),
};
TYPE(geofencing_t, mss_geofencing, geofencing_f);

static const struct mss_field subscriber_detail_f[] = {
	ATTR("id", NULL, struct mss_subscriber_detail, id, MSS_X_STRING, 0),
	ATTR("value", NULL, struct mss_subscriber_detail, value, MSS_X_STRING, 0),
};
TYPE(subscriber_detail_t, mss_subscriber_detail, subscriber_detail_f);

static const struct mss_field subscriber_info_f[] = {
	BARE("Detail", NULL, MSS_NS_SCAS, MSS_P_OBJ, MSS_X_STRING, struct mss_subscriber_info, detail, &subscriber_detail_t, 0),
};
TYPE(subscriber_info_t, mss_subscriber_info, subscriber_info_f);

static const struct mss_type status_t;
static const struct mss_field service_response_f[] = {
	URI("Description", NULL, MSS_NS_FI, struct mss_service_response, description, REQ),
	OBJ("Entity", NULL, MSS_NS_FI, struct mss_service_response, entity, &mesh_member_t, 0),
	OBJ("Status", NULL, MSS_NS_FI, struct mss_service_response, status, &status_t, 0),
	RAW("Response", NULL, MSS_NS_SAMLP, struct mss_service_response, saml_response, MSS_F_BIG),
	OBJ("SubscriberInfo", NULL, MSS_NS_SCAS, struct mss_service_response, subscriber_info, &subscriber_info_t, 0),
	OBJ("GeoFencing", "Geofencing", MSS_NS_SCAS, struct mss_service_response, geofencing, &geofencing_t, 0),
};
TYPE(service_response_t, mss_service_response, service_response_f);

/* ---- Methics ProfileQueryExtension ------------------------------------ */

static const struct mss_field pq_certificate_f[] = {
	ATTR("State", NULL, struct mss_pq_certificate, state, MSS_X_STRING, 0),
	ATTR("Algorithm", NULL, struct mss_pq_certificate, algorithm, MSS_X_STRING, 0),
	BARE("X509Certificate", NULL, MSS_NS_DS, MSS_P_ELEM, MSS_X_BASE64, struct mss_pq_certificate, x509_certificate, NULL, MSS_F_BIG),
	BARE("X509SubjectName", NULL, MSS_NS_DS, MSS_P_ELEM, MSS_X_STRING, struct mss_pq_certificate, x509_subject_name, NULL, 0),
};
TYPE_UNORDERED(pq_certificate_t, mss_pq_certificate, pq_certificate_f);

static const struct mss_field pq_pin_status_f[] = {
	ATTR("blocked", "Blocked", struct mss_pq_pin_status, blocked, MSS_X_BOOLEAN, MSS_F_JSON_BOOL),
};
TYPE(pq_pin_status_t, mss_pq_pin_status, pq_pin_status_f);

static const struct mss_field pq_activation_f[] = {
	ATTR("name", "Name", struct mss_pq_activation, name, MSS_X_STRING, 0),
	ATTR("success", "Success", struct mss_pq_activation, success, MSS_X_BOOLEAN, MSS_F_JSON_BOOL),
};
TYPE(pq_activation_t, mss_pq_activation, pq_activation_f);

static const struct mss_field pq_sscd_f[] = {
	ELEM("State", NULL, MSS_NS_MCS, struct mss_pq_sscd, state, MSS_X_STRING, 0),
	OBJ("Activation", NULL, MSS_NS_MCS, struct mss_pq_sscd, activation, &pq_activation_t, 0),
	OBJ("PinStatus", NULL, MSS_NS_MCS, struct mss_pq_sscd, pin_status, &pq_pin_status_t, 0),
	BARE("MobileUserCertificate", NULL, MSS_NS_MCS, MSS_P_OBJ, MSS_X_STRING, struct mss_pq_sscd, certificate, &pq_certificate_t, 0),
};
TYPE(pq_sscd_t, mss_pq_sscd, pq_sscd_f);

static const struct mss_field pq_user_f[] = {
	ATTR("RecoveryCodeCreated", NULL, struct mss_pq_user, recovery_code_created, MSS_X_BOOLEAN, MSS_F_JSON_BOOL),
	ATTR("AutoActivation", NULL, struct mss_pq_user, auto_activation, MSS_X_BOOLEAN, MSS_F_JSON_BOOL),
};
TYPE(pq_user_t, mss_pq_user, pq_user_f);

static const struct mss_field pq_sscds_f[] = {
	OBJ("Sim", NULL, MSS_NS_MCS, struct mss_pq_sscds, sim, &pq_sscd_t, 0),
	BARE("App", NULL, MSS_NS_MCS, MSS_P_OBJ, MSS_X_STRING, struct mss_pq_sscds, app, &pq_sscd_t, 0),
};
TYPE(pq_sscds_t, mss_pq_sscds, pq_sscds_f);

static const struct mss_field pq_extension_f[] = {
	BARE("MobileUserCertificate", NULL, MSS_NS_MCS, MSS_P_OBJ, MSS_X_STRING, struct mss_pq_extension, certificate, &pq_certificate_t, 0),
	ELEM("AutoActivation", NULL, MSS_NS_MCS, struct mss_pq_extension, auto_activation, MSS_X_BOOLEAN, MSS_F_JSON_BOOL),
	ELEM("ServerSideSignature", NULL, MSS_NS_MCS, struct mss_pq_extension, server_side_signature, MSS_X_BOOLEAN, MSS_F_JSON_BOOL),
	ELEM("RecoveryCodeCreated", NULL, MSS_NS_MCS, struct mss_pq_extension, recovery_code_created, MSS_X_BOOLEAN, MSS_F_JSON_BOOL),
	OBJ("MobileUser", NULL, MSS_NS_MCS, struct mss_pq_extension, mobile_user, &pq_user_t, 0),
	OBJ("Sscds", NULL, MSS_NS_MCS, struct mss_pq_extension, sscds, &pq_sscds_t, 0),
};
TYPE(pq_extension_t, mss_pq_extension, pq_extension_f);

/* ---- Swisscom receipt extension --------------------------------------- */

static const struct mss_field receipt_profile_f[] = {
	ATTR("Language", NULL, struct mss_receipt_profile, language, MSS_X_STRING, 0),
	ELEM("ReceiptProfileURI", NULL, MSS_NS_SCO, struct mss_receipt_profile, receipt_profile_uri, MSS_X_ANYURI, REQ),
};
TYPE(receipt_profile_t, mss_receipt_profile, receipt_profile_f);

static const struct mss_field receipt_ext_f[] = {
	ATTR("ReceiptMessagingMode", NULL, struct mss_receipt_ext, receipt_messaging_mode, MSS_X_STRING, REQ),
	ATTR("TimeOut", NULL, struct mss_receipt_ext, timeout, MSS_X_INTEGER, 0),
	ATTR("RetryTimeOut", NULL, struct mss_receipt_ext, retry_timeout, MSS_X_INTEGER, 0),
	ATTR("NextRetry", NULL, struct mss_receipt_ext, next_retry, MSS_X_INTEGER, 0),
	ATTR("NetworkAck", NULL, struct mss_receipt_ext, network_ack, MSS_X_BOOLEAN, 0),
	ATTR("ClientAck", NULL, struct mss_receipt_ext, client_ack, MSS_X_BOOLEAN, 0),
	ATTR("UserAck", NULL, struct mss_receipt_ext, user_ack, MSS_X_BOOLEAN, 0),
	ATTR("UserResponse", NULL, struct mss_receipt_ext, user_response, MSS_X_STRING, 0),
	ATTR("FaultMessage", NULL, struct mss_receipt_ext, fault_message, MSS_X_STRING, 0),
	OBJ("ReceiptProfile", NULL, MSS_NS_SCO, struct mss_receipt_ext, receipt_profile, &receipt_profile_t, 0),
};
TYPE(receipt_ext_t, mss_receipt_ext, receipt_ext_f);

/* ---- Methics MReg ------------------------------------------------------ */

static const struct mss_field mreg_param_f[] = {
	ATTR("Name", NULL, struct mss_mreg_param, name, MSS_X_STRING, REQ),
	ATTR("Value", NULL, struct mss_mreg_param, value, MSS_X_STRING, 0),
	ATTR("NameSpace", NULL, struct mss_mreg_param, name_space, MSS_X_STRING, 0),
	ATTR("MimeType", NULL, struct mss_mreg_param, mime_type, MSS_X_STRING, 0),
	ATTR("Encoding", NULL, struct mss_mreg_param, encoding, MSS_X_STRING, 0),
	JSONLY("Required", struct mss_mreg_param, required, NULL, 0),
	JSONLY("Tip", struct mss_mreg_param, tip, NULL, 0),
	JSONLY("Type", struct mss_mreg_param, type, NULL, 0),
};
TYPE(mreg_param_t, mss_mreg_param, mreg_param_f);

static const struct mss_field mreg_op_status_f[] = {
	ELEM("OperationStatusCode", NULL, MSS_NS_MREG, struct mss_mreg_op_status, code, MSS_X_INTEGER, REQ),
	ELEM("OperationStatusMessage", NULL, MSS_NS_MREG, struct mss_mreg_op_status, message, MSS_X_STRING, 0),
	ELEM("OperationStatusDetail", NULL, MSS_NS_MREG, struct mss_mreg_op_status, detail, MSS_X_STRING, 0),
};
TYPE(mreg_op_status_t, mss_mreg_op_status, mreg_op_status_f);

static const struct mss_field mreg_operation_f[] = {
	ATTR("Name", NULL, struct mss_mreg_operation, name, MSS_X_STRING, REQ),
	ATTR("NameSpace", NULL, struct mss_mreg_operation, name_space, MSS_X_STRING, 0),
	ATTR("ID", NULL, struct mss_mreg_operation, id, MSS_X_ID, 0),
	ATTR("SessionId", NULL, struct mss_mreg_operation, session_id, MSS_X_STRING, 0),
	ATTR("RequestId", NULL, struct mss_mreg_operation, request_id, MSS_X_ID, 0),
	ATTR("Step", NULL, struct mss_mreg_operation, step, MSS_X_STRING, 0),
	BARE("Parameter", NULL, MSS_NS_MREG, MSS_P_OBJ, MSS_X_STRING, struct mss_mreg_operation, parameter, &mreg_param_t, 0),
	OBJ("Status", NULL, MSS_NS_MREG, struct mss_mreg_operation, status, &mreg_op_status_t, 0),
};
TYPE(mreg_operation_t, mss_mreg_operation, mreg_operation_f);

static const struct mss_field mreg_request_f[] = {
	OBJ("WirelessOperation", NULL, MSS_NS_MREG, struct mss_mreg_request, wireless, &mreg_operation_t, 0),
	OBJ("CertificationOperation", NULL, MSS_NS_MREG, struct mss_mreg_request, certification, &mreg_operation_t, 0),
	OBJ("ProvisioningOperation", NULL, MSS_NS_MREG, struct mss_mreg_request, provisioning, &mreg_operation_t, 0),
	OBJ("EntityUserOperation", NULL, MSS_NS_MREG, struct mss_mreg_request, entity_user, &mreg_operation_t, 0),
};
TYPE(mreg_request_t, mss_mreg_request, mreg_request_f);

static const struct mss_field mreg_response_f[] = {
	OBJ("OperationOutput", NULL, MSS_NS_MREG, struct mss_mreg_response, output, &mreg_operation_t, 0),
};
TYPE(mreg_response_t, mss_mreg_response, mreg_response_f);

static const struct mss_field mreg_simcard_f[] = {
	ELEM("ICCID", NULL, MSS_NS_MREG, struct mss_mreg_simcard, iccid, MSS_X_STRING, 0),
	ELEM("IMSI", NULL, MSS_NS_MREG, struct mss_mreg_simcard, imsi, MSS_X_STRING, 0),
	ELEM("MSISDN", NULL, MSS_NS_MREG, struct mss_mreg_simcard, msisdn, MSS_X_STRING, 0),
};
TYPE(mreg_simcard_t, mss_mreg_simcard, mreg_simcard_f);

static const struct mss_field mreg_entity_f[] = {
	ELEM("ApID", NULL, MSS_NS_MREG, struct mss_mreg_entity, ap_id, MSS_X_ANYURI, 0),
	ELEM("CustomerID", NULL, MSS_NS_MREG, struct mss_mreg_entity, customer_id, MSS_X_STRING, 0),
	OBJ("MsspID", NULL, MSS_NS_MREG, struct mss_mreg_entity, mssp_id, &mesh_member_t, 0),
	ELEM("SpID", NULL, MSS_NS_MREG, struct mss_mreg_entity, sp_id, MSS_X_ANYURI, 0),
	ELEM("EntityUserID", NULL, MSS_NS_MREG, struct mss_mreg_entity, entity_user_id, MSS_X_STRING, 0),
};
TYPE(mreg_entity_t, mss_mreg_entity, mreg_entity_f);

static const struct mss_field mreg_target_f[] = {
	ELEM("EndPointID", NULL, MSS_NS_MREG, struct mss_mreg_target, end_point_id, MSS_X_STRING, 0),
	OBJ("MobileUser", NULL, MSS_NS_MREG, struct mss_mreg_target, mobile_user, &mobile_user_t, 0),
	OBJ("SimCard", NULL, MSS_NS_MREG, struct mss_mreg_target, sim_card, &mreg_simcard_t, 0),
	OBJ("EntityUser", NULL, MSS_NS_MREG, struct mss_mreg_target, entity_user, &mreg_entity_t, 0),
};
TYPE(mreg_target_t, mss_mreg_target, mreg_target_f);

static const struct mss_field mreg_input_f[] = {
	ATTR("InputId", NULL, struct mss_mreg_input, input_id, MSS_X_ID, 0),
	ATTR("DefaultNameSpace", NULL, struct mss_mreg_input, default_name_space, MSS_X_STRING, 0),
	ATTR("MessagingMode", NULL, struct mss_mreg_input, messaging_mode, MSS_X_STRING, 0),
	ELEM("CaseId", NULL, MSS_NS_MREG, struct mss_mreg_input, case_id, MSS_X_STRING, 0),
	OBJ("Target", NULL, MSS_NS_MREG, struct mss_mreg_input, target, &mreg_target_t, REQ),
	BARE("MregRequest", NULL, MSS_NS_MREG, MSS_P_OBJ, MSS_X_STRING, struct mss_mreg_input, request, &mreg_request_t, 0),
};
TYPE(mreg_input_t, mss_mreg_input, mreg_input_f);

static const struct mss_field mreg_output_f[] = {
	ATTR("InputId", NULL, struct mss_mreg_output, input_id, MSS_X_ID, 0),
	ELEM("CaseId", NULL, MSS_NS_MREG, struct mss_mreg_output, case_id, MSS_X_STRING, 0),
	BARE("MregResponse", NULL, MSS_NS_MREG, MSS_P_OBJ, MSS_X_STRING, struct mss_mreg_output, response, &mreg_response_t, 0),
};
TYPE(mreg_output_t, mss_mreg_output, mreg_output_f);

static const struct mss_field rest_user_f[] = {
	JSONLY("Role", struct mss_rest_user, role, NULL, 0),
};
TYPE(rest_user_t, mss_rest_user, rest_user_f);

static const struct mss_field rest_group_f[] = {
	JSONLY("Name", struct mss_rest_group, name, NULL, 0),
	{ NULL, "Outputs", NULL, NULL, NULL, MSS_P_JSON, MSS_X_STRING, MSS_F_LIST, offsetof(struct mss_rest_group, outputs), &mreg_param_t },
};
TYPE(rest_group_t, mss_rest_group, rest_group_f);

static const struct mss_field rest_usecase_f[] = {
	JSONLY("Name", struct mss_rest_usecase, name, NULL, 0),
	JSONLY("NameSpace", struct mss_rest_usecase, name_space, NULL, 0),
	{ NULL, "Inputs", NULL, NULL, NULL, MSS_P_JSON, MSS_X_STRING, MSS_F_LIST, offsetof(struct mss_rest_usecase, inputs), &mreg_param_t },
	{ NULL, "Outputs", NULL, NULL, NULL, MSS_P_JSON, MSS_X_STRING, MSS_F_LIST, offsetof(struct mss_rest_usecase, outputs), &mreg_param_t },
	{ NULL, "Groups", NULL, NULL, NULL, MSS_P_JSON, MSS_X_STRING, MSS_F_LIST, offsetof(struct mss_rest_usecase, groups), &rest_group_t },
};
TYPE(rest_usecase_t, mss_rest_usecase, rest_usecase_f);

/* ---- Status ------------------------------------------------------------ */

/* In the ETSI schema StatusDetail holds ##any; we list the extensions real
 * deployments put there.  Swisscom's WSDL declares them locally, so PHP
 * SoapClient sends them in the TS 102 204 namespace: accept both. */
static const struct mss_field status_detail_f[] = {
	OBJ("RegistrationOutput", NULL, MSS_NS_MREG, struct mss_status_detail, registration_output, &mreg_output_t, 0),
	WRAP2("ServiceResponses", NULL, MSS_NS_FI, MSS_NS, "ServiceResponse", MSS_P_OBJ, MSS_X_STRING, struct mss_status_detail, service_responses, &service_response_t, MSS_F_HOIST),
	OBJ2("ReceiptRequestExtension", NULL, MSS_NS_SCO, MSS_NS, struct mss_status_detail, receipt_request_ext, &receipt_ext_t, 0),
	OBJ2("ReceiptResponseExtension", NULL, MSS_NS_SCO, MSS_NS, struct mss_status_detail, receipt_response_ext, &receipt_ext_t, 0),
	OBJ2("ProfileQueryExtension", NULL, MSS_NS_MCS, MSS_NS, struct mss_status_detail, profile_query_ext, &pq_extension_t, 0),
	JSONLY("StatusDetail", struct mss_status_detail, text, NULL, 0),
};
TYPE_CHOICE(status_detail_t, mss_status_detail, status_detail_f, 0, 4);

static const struct mss_field status_f[] = {
	OBJ("StatusCode", NULL, MSS_NS, struct mss_status, code, &status_code_t, REQ),
	ELEM("StatusMessage", NULL, MSS_NS, struct mss_status, message, MSS_X_STRING, 0),
	OBJ("StatusDetail", NULL, MSS_NS, struct mss_status, detail, &status_detail_t, 0),
};
TYPE(status_t, mss_status, status_f);

static const struct mss_field pkcs1_f[] = {
	ELEM("SignatureValue", NULL, MSS_NS_FI, struct mss_pkcs1, signature_value, MSS_X_BASE64, REQ | MSS_F_BIG),
	ELEM("X509Certificate", NULL, MSS_NS_FI, struct mss_pkcs1, x509_certificate, MSS_X_BASE64, REQ | MSS_F_BIG),
};
TYPE(pkcs1_t, mss_pkcs1, pkcs1_f);

static const struct mss_field signature_f[] = {
	RAW("XMLSignature", NULL, MSS_NS, struct mss_signature, xml_signature, MSS_F_BIG),
	ELEM("Base64Signature", NULL, MSS_NS, struct mss_signature, base64_signature, MSS_X_BASE64, MSS_F_BIG),
	OBJ("PKCS1", NULL, MSS_NS_FI, struct mss_signature, pkcs1, &pkcs1_t, 0),
};
TYPE_CHOICE(signature_t, mss_signature, signature_f, 0, 2);

static const struct mss_field secure_methods_f[] = {
	ATTR("MSS_Signature", NULL, struct mss_secure_methods, signature, MSS_X_BOOLEAN, REQ),
	ATTR("MSS_Registration", NULL, struct mss_secure_methods, registration, MSS_X_BOOLEAN, REQ),
	ATTR("MSS_Notification", NULL, struct mss_secure_methods, notification, MSS_X_BOOLEAN, REQ),
	ATTR("MSS_ProfileQuery", NULL, struct mss_secure_methods, profile_query, MSS_X_BOOLEAN, REQ),
	ATTR("MSS_Receipt", NULL, struct mss_secure_methods, receipt, MSS_X_BOOLEAN, REQ),
	ATTR("MSS_Status", NULL, struct mss_secure_methods, status, MSS_X_BOOLEAN, REQ),
};
TYPE(secure_methods_t, mss_secure_methods, secure_methods_f);

/* ---- the messages ------------------------------------------------------ */

/* MessageAbstractType: attributes, then AP_Info and MSSP_Info. */
#define COMMON(st)                                                                       \
	ATTR("MajorVersion", NULL, st, c.major_version, MSS_X_INTEGER, REQ | JOPT),     \
	ATTR("MinorVersion", NULL, st, c.minor_version, MSS_X_INTEGER, REQ | JOPT),     \
	ATTR("ID", NULL, st, c.id, MSS_X_ID, 0),                                         \
	OBJ("AP_Info", NULL, MSS_NS, st, c.ap_info, &ap_info_t, REQ | JOPT),             \
	OBJ("MSSP_Info", NULL, MSS_NS, st, c.mssp_info, &mssp_info_t, REQ | JOPT)

static const struct mss_field sig_req_f[] = {
	COMMON(struct mss_signature_req),
	ATTR("MessagingMode", NULL, struct mss_signature_req, messaging_mode, MSS_X_MSGMODE, REQ),
	ATTR("TimeOut", NULL, struct mss_signature_req, timeout, MSS_X_POSINT, 0),
	ATTR("ValidityDate", NULL, struct mss_signature_req, validity_date, MSS_X_DATETIME, 0),
	OBJ("MobileUser", NULL, MSS_NS, struct mss_signature_req, mobile_user, &mobile_user_t, REQ),
	OBJ("DataToBeSigned", NULL, MSS_NS, struct mss_signature_req, dtbs, &data_t, REQ),
	OBJ("DataToBeDisplayed", NULL, MSS_NS, struct mss_signature_req, dtbd, &data_t, 0),
	URI("SignatureProfile", NULL, MSS_NS, struct mss_signature_req, signature_profile, 0),
	WRAP("AdditionalServices", NULL, MSS_NS, "Service", MSS_P_OBJ, MSS_X_STRING, struct mss_signature_req, additional_services, &service_t, 0),
	URI("MSS_Format", NULL, MSS_NS, struct mss_signature_req, mss_format, 0),
	OBJ("KeyReference", NULL, MSS_NS, struct mss_signature_req, key_reference, &key_reference_t, 0),
	ELEM("SignatureProfileComparison", NULL, MSS_NS, struct mss_signature_req, signature_profile_comparison, MSS_X_STRING, 0),
};
TYPE(sig_req_t, mss_signature_req, sig_req_f);

static const struct mss_field sig_resp_f[] = {
	COMMON(struct mss_signature_resp),
	ATTR("MSSP_TransID", NULL, struct mss_signature_resp, mssp_trans_id, MSS_X_NCNAME, REQ),
	OBJ("MobileUser", NULL, MSS_NS, struct mss_signature_resp, mobile_user, &mobile_user_t, REQ),
	OBJ("MSS_Signature", NULL, MSS_NS, struct mss_signature_resp, signature, &signature_t, 0),
	URI("SignatureProfile", NULL, MSS_NS, struct mss_signature_resp, signature_profile, 0),
	OBJ("Status", NULL, MSS_NS, struct mss_signature_resp, status, &status_t, REQ),
};
TYPE(sig_resp_t, mss_signature_resp, sig_resp_f);

static const struct mss_field status_req_f[] = {
	COMMON(struct mss_status_req),
	ATTR("MSSP_TransID", NULL, struct mss_status_req, mssp_trans_id, MSS_X_NCNAME, REQ),
	OBJ("MobileUser", NULL, MSS_NS, struct mss_status_req, mobile_user, &mobile_user_t, 0),
};
TYPE(status_req_t, mss_status_req, status_req_f);

static const struct mss_field status_resp_f[] = {
	COMMON(struct mss_status_resp),
	ATTR("MSSP_TransID", NULL, struct mss_status_resp, mssp_trans_id, MSS_X_NCNAME, 0),
	OBJ("MobileUser", NULL, MSS_NS, struct mss_status_resp, mobile_user, &mobile_user_t, REQ),
	OBJ("MSS_Signature", NULL, MSS_NS, struct mss_status_resp, signature, &signature_t, 0),
	OBJ("Status", NULL, MSS_NS, struct mss_status_resp, status, &status_t, REQ),
};
TYPE(status_resp_t, mss_status_resp, status_resp_f);

static const struct mss_field receipt_req_f[] = {
	COMMON(struct mss_receipt_req),
	ATTR("MSSP_TransID", NULL, struct mss_receipt_req, mssp_trans_id, MSS_X_NCNAME, REQ),
	OBJ("MobileUser", NULL, MSS_NS, struct mss_receipt_req, mobile_user, &mobile_user_t, REQ | JOPT),
	OBJ("Status", NULL, MSS_NS, struct mss_receipt_req, status, &status_t, 0),
	OBJ("Message", NULL, MSS_NS, struct mss_receipt_req, message, &data_t, 0),
	RAW("SignedReceipt", NULL, MSS_NS, struct mss_receipt_req, signed_receipt, 0),
};
TYPE(receipt_req_t, mss_receipt_req, receipt_req_f);

static const struct mss_field receipt_resp_f[] = {
	COMMON(struct mss_receipt_resp),
	OBJ("Status", NULL, MSS_NS, struct mss_receipt_resp, status, &status_t, REQ),
};
TYPE(receipt_resp_t, mss_receipt_resp, receipt_resp_f);

static const struct mss_field profile_req_f[] = {
	COMMON(struct mss_profile_req),
	OBJ("MobileUser", NULL, MSS_NS, struct mss_profile_req, mobile_user, &mobile_user_t, REQ),
	ELEM("Params", NULL, MSS_NS, struct mss_profile_req, params, MSS_X_STRING, 0),
	ELEM("GetAutoActivation", NULL, MSS_NS, struct mss_profile_req, get_auto_activation, MSS_X_BOOLEAN, 0),
	ELEM("GetServerSideSignature", NULL, MSS_NS, struct mss_profile_req, get_server_side_signature, MSS_X_BOOLEAN, 0),
	ELEM("GetRecoveryCodeCreated", NULL, MSS_NS, struct mss_profile_req, get_recovery_code_created, MSS_X_BOOLEAN, 0),
	ELEM("GetCertificates", NULL, MSS_NS, struct mss_profile_req, get_certificates, MSS_X_BOOLEAN, 0),
};
TYPE_CHOICE(profile_req_t, mss_profile_req, profile_req_f, 7, 10);

static const struct mss_field profile_resp_f[] = {
	COMMON(struct mss_profile_resp),
	BARE("SignatureProfile", NULL, MSS_NS, MSS_P_URI, MSS_X_ANYURI, struct mss_profile_resp, signature_profile, NULL, 0),
	OBJ("Status", NULL, MSS_NS, struct mss_profile_resp, status, &status_t, REQ),
};
TYPE(profile_resp_t, mss_profile_resp, profile_resp_f);

static const struct mss_field reg_req_f[] = {
	COMMON(struct mss_registration_req),
	OBJ("MobileUser", NULL, MSS_NS, struct mss_registration_req, mobile_user, &mobile_user_t, REQ | JOPT),
	RAW("EncryptedData", NULL, MSS_NS, struct mss_registration_req, encrypted_data, MSS_F_BIG),
	ELEM("EncryptResponseBy", NULL, MSS_NS, struct mss_registration_req, encrypt_response_by, MSS_X_ANYURI, 0),
	ELEM("CertificateURI", NULL, MSS_NS, struct mss_registration_req, certificate_uri, MSS_X_ANYURI, 0),
	ELEM("X509Certificate", NULL, MSS_NS, struct mss_registration_req, x509_certificate, MSS_X_BASE64, MSS_F_BIG),
	BARE("RegistrationInput", NULL, MSS_NS_MREG, MSS_P_OBJ, MSS_X_STRING, struct mss_registration_req, registration_input, &mreg_input_t, 0),
	JSONLY("User", struct mss_registration_req, user, &rest_user_t, 0),
	JSONLY("UseCase", struct mss_registration_req, use_case, &rest_usecase_t, 0),
};
TYPE(reg_req_t, mss_registration_req, reg_req_f);

static const struct mss_field reg_resp_f[] = {
	COMMON(struct mss_registration_resp),
	OBJ("Status", NULL, MSS_NS, struct mss_registration_resp, status, &status_t, REQ),
	RAW("EncryptedData", NULL, MSS_NS, struct mss_registration_resp, encrypted_data, MSS_F_BIG),
	ELEM("CertificateURI", NULL, MSS_NS, struct mss_registration_resp, certificate_uri, MSS_X_ANYURI, 0),
	ELEM("X509Certificate", NULL, MSS_NS, struct mss_registration_resp, x509_certificate, MSS_X_BASE64, MSS_F_BIG),
	ELEM("PublicKey", NULL, MSS_NS, struct mss_registration_resp, public_key, MSS_X_BASE64, MSS_F_BIG),
	JSONLY("UseCase", struct mss_registration_resp, use_case, &rest_usecase_t, 0),
};
TYPE(reg_resp_t, mss_registration_resp, reg_resp_f);

static const struct mss_field hs_req_f[] = {
	COMMON(struct mss_handshake_req),
	OBJ("SecureMethods", NULL, MSS_NS, struct mss_handshake_req, secure_methods, &secure_methods_t, REQ),
	WRAP("Certificates", NULL, MSS_NS, "Certificate", MSS_P_ELEM, MSS_X_BASE64, struct mss_handshake_req, certificates, NULL, REQ | MSS_F_BIG),
	WRAP("RootCAs", NULL, MSS_NS, "DN", MSS_P_ELEM, MSS_X_STRING, struct mss_handshake_req, root_cas, NULL, REQ),
	WRAP("SignatureAlgList", NULL, MSS_NS, "Algorithm", MSS_P_URI, MSS_X_ANYURI, struct mss_handshake_req, signature_algs, NULL, REQ),
};
TYPE(hs_req_t, mss_handshake_req, hs_req_f);

static const struct mss_field hs_resp_f[] = {
	COMMON(struct mss_handshake_resp),
	ATTR("MSSP_TransID", NULL, struct mss_handshake_resp, mssp_trans_id, MSS_X_NCNAME, REQ),
	OBJ("SecureMethods", NULL, MSS_NS, struct mss_handshake_resp, secure_methods, &secure_methods_t, REQ),
	WRAP("MatchingMSSPCertificates", NULL, MSS_NS, "Certificate", MSS_P_ELEM, MSS_X_BASE64, struct mss_handshake_resp, mssp_certificates, NULL, REQ | MSS_F_BIG),
	WRAP("MatchingAPCertificates", NULL, MSS_NS, "Certificate", MSS_P_ELEM, MSS_X_BASE64, struct mss_handshake_resp, ap_certificates, NULL, REQ | MSS_F_BIG),
	WRAP("MatchingSigAlgList", NULL, MSS_NS, "Algorithm", MSS_P_URI, MSS_X_ANYURI, struct mss_handshake_resp, signature_algs, NULL, REQ),
};
TYPE(hs_resp_t, mss_handshake_resp, hs_resp_f);

static const struct mss_msg_info msg_info[MSS_MSG_TYPE_COUNT] = {
	[MSS_SIGNATURE_REQ] = { "MSS_SignatureReq", &sig_req_t, MSS_OP_SIGNATURE, true },
	[MSS_SIGNATURE_RESP] = { "MSS_SignatureResp", &sig_resp_t, MSS_OP_SIGNATURE, false },
	[MSS_STATUS_REQ] = { "MSS_StatusReq", &status_req_t, MSS_OP_STATUS_QUERY, true },
	[MSS_STATUS_RESP] = { "MSS_StatusResp", &status_resp_t, MSS_OP_STATUS_QUERY, false },
	[MSS_RECEIPT_REQ] = { "MSS_ReceiptReq", &receipt_req_t, MSS_OP_RECEIPT, true },
	[MSS_RECEIPT_RESP] = { "MSS_ReceiptResp", &receipt_resp_t, MSS_OP_RECEIPT, false },
	[MSS_PROFILE_REQ] = { "MSS_ProfileReq", &profile_req_t, MSS_OP_PROFILE_QUERY, true },
	[MSS_PROFILE_RESP] = { "MSS_ProfileResp", &profile_resp_t, MSS_OP_PROFILE_QUERY, false },
	[MSS_REGISTRATION_REQ] = { "MSS_RegistrationReq", &reg_req_t, MSS_OP_REGISTRATION, true },
	[MSS_REGISTRATION_RESP] = { "MSS_RegistrationResp", &reg_resp_t, MSS_OP_REGISTRATION, false },
	[MSS_HANDSHAKE_REQ] = { "MSS_HandshakeReq", &hs_req_t, MSS_OP_HANDSHAKE, true },
	[MSS_HANDSHAKE_RESP] = { "MSS_HandshakeResp", &hs_resp_t, MSS_OP_HANDSHAKE, false },
	[MSS_FAULT] = { "Fault", NULL, MSS_OP_NONE, false },
};

const struct mss_field *
mss_msg_hoisted_field(void)
{
	return &status_detail_f[1];
}

const struct mss_msg_info *
mss_msg_info(enum mss_msg_type t)
{
	if ((unsigned)t >= MSS_MSG_TYPE_COUNT)
		return NULL;
	return &msg_info[t];
}

int
mss_msg_type_by_element(const char *local_name)
{
	int i;

	for (i = 0; i < MSS_MSG_TYPE_COUNT; i++)
		if (strcmp(msg_info[i].element, local_name) == 0)
			return i;
	return -1;
}

static const char *const op_names[MSS_OP_COUNT] = {
	[MSS_OP_NONE] = NULL,
	[MSS_OP_SIGNATURE] = "MSS_Signature",
	[MSS_OP_STATUS_QUERY] = "MSS_StatusQuery",
	[MSS_OP_RECEIPT] = "MSS_Receipt",
	[MSS_OP_PROFILE_QUERY] = "MSS_ProfileQuery",
	[MSS_OP_REGISTRATION] = "MSS_Registration",
	[MSS_OP_HANDSHAKE] = "MSS_Handshake",
	[MSS_OP_NOTIFICATION] = "MSS_Notification",
};

const char *
mss_op_name(enum mss_op op)
{
	return (unsigned)op < MSS_OP_COUNT ? op_names[op] : NULL;
}

enum mss_op
mss_op_by_name(const char *name)
{
	int i;

	for (i = 1; i < MSS_OP_COUNT; i++)
		if (strcmp(op_names[i], name) == 0)
			return (enum mss_op)i;
	return MSS_OP_NONE;
}

int
mss_op_request_type(enum mss_op op)
{
	switch (op) {
	case MSS_OP_SIGNATURE: return MSS_SIGNATURE_REQ;
	case MSS_OP_STATUS_QUERY: return MSS_STATUS_REQ;
	case MSS_OP_RECEIPT: return MSS_RECEIPT_REQ;
	case MSS_OP_PROFILE_QUERY: return MSS_PROFILE_REQ;
	case MSS_OP_REGISTRATION: return MSS_REGISTRATION_REQ;
	case MSS_OP_HANDSHAKE: return MSS_HANDSHAKE_REQ;
	case MSS_OP_NOTIFICATION: return MSS_STATUS_RESP;
	default: return -1;
	}
}

int
mss_op_response_type(enum mss_op op)
{
	switch (op) {
	case MSS_OP_SIGNATURE: return MSS_SIGNATURE_RESP;
	case MSS_OP_STATUS_QUERY: return MSS_STATUS_RESP;
	case MSS_OP_RECEIPT: return MSS_RECEIPT_RESP;
	case MSS_OP_PROFILE_QUERY: return MSS_PROFILE_RESP;
	case MSS_OP_REGISTRATION: return MSS_REGISTRATION_RESP;
	case MSS_OP_HANDSHAKE: return MSS_HANDSHAKE_RESP;
	case MSS_OP_NOTIFICATION: return MSS_RECEIPT_REQ;
	default: return -1;
	}
}

struct mss_msg *
mss_msg_new(enum mss_msg_type type)
{
	struct mss_arena *a;
	struct mss_msg *m;
	size_t size;

	if ((unsigned)type >= MSS_MSG_TYPE_COUNT)
		return NULL;
	a = mss_arena_new(MSSP_MSG_ARENA_MAX);
	if (a == NULL)
		return NULL;
	m = mss_arena_alloc(a, sizeof(*m));
	if (m == NULL)
		goto fail;
	m->arena = a;
	m->type = type;
	m->op = msg_info[type].op;
	size = msg_info[type].type ? msg_info[type].type->size : sizeof(struct mss_fault_msg);
	m->u.any = mss_arena_alloc(a, size);
	if (m->u.any == NULL)
		goto fail;
	return m;
fail:
	mss_arena_free(a);
	return NULL;
}

void
mss_msg_free(struct mss_msg *msg)
{
	if (msg != NULL)
		mss_arena_free(msg->arena); /* the message lives in its arena */
}

char *
mss_msg_strdup(struct mss_msg *msg, const char *s)
{
	return mss_arena_strdup(msg->arena, s);
}

void *
mss_msg_alloc(struct mss_msg *msg, size_t size)
{
	return mss_arena_alloc(msg->arena, size);
}

/* ---- deep comparison --------------------------------------------------- */

static bool obj_equal(const struct mss_type *t, const void *a, const void *b);

static bool
str_equal(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static bool
value_equal(const struct mss_field *f, const void *a, const void *b)
{
	if (f->sub != NULL)
		return obj_equal(f->sub, a, b);
	return str_equal(a, b);
}

static bool
obj_equal(const struct mss_type *t, const void *a, const void *b)
{
	size_t i, k;

	if (a == NULL || b == NULL)
		return a == b;
	for (i = 0; i < t->nfields; i++) {
		const struct mss_field *f = &t->fields[i];
		const void *va = *(void *const *)((const char *)a + f->off);
		const void *vb = *(void *const *)((const char *)b + f->off);

		if (f->flags & MSS_F_LIST) {
			const struct mss_list *la = va, *lb = vb;

			if (la == NULL || lb == NULL) {
				if (la != lb)
					return false;
				continue;
			}
			if (la->n != lb->n)
				return false;
			for (k = 0; k < la->n; k++)
				if (!value_equal(f, la->items[k], lb->items[k]))
					return false;
		} else if (!value_equal(f, va, vb)) {
			return false;
		}
	}
	return true;
}

static bool
fault_equal(const struct mss_fault_msg *a, const struct mss_fault_msg *b)
{
	return str_equal(a->code_value, b->code_value) &&
	       str_equal(a->subcode_value, b->subcode_value) &&
	       str_equal(a->subsubcode_value, b->subsubcode_value) &&
	       str_equal(a->reason, b->reason) && str_equal(a->detail, b->detail);
}

bool
mss_msg_equal(const struct mss_msg *a, const struct mss_msg *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	if (a->type != b->type)
		return false;
	if (a->type == MSS_FAULT)
		return fault_equal(a->u.fault, b->u.fault);
	return obj_equal(msg_info[a->type].type, a->u.any, b->u.any);
}
