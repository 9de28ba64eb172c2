/*
 * ca_engine.c - the CA key in a PKCS#11 token, through OpenSSL's ENGINE API
 * and libengine-pkcs11-openssl (libp11).
 *
 * Why an engine: pkcs11-provider is not in Debian 12, and the engine API is
 * deprecated in OpenSSL 3.0 but works.  This file is the only translation
 * unit built without OPENSSL_NO_DEPRECATED (see the Makefile rule for
 * src/pki/%_engine.o); nothing else may touch ENGINE.
 *
 * The engine is never made a default for any algorithm.  Things libp11
 * does that callers must know:
 *  - ENGINE_by_id() loads the dynamic engine once and keeps it in
 *    OpenSSL's engine list, so every open in a process shares one libp11
 *    context: one PKCS#11 module per process (the first MODULE_PATH wins).
 *  - The module stays initialised until the process exits (libp11's
 *    finish does not unload it), and PKCS#11 login state belongs to the
 *    application: once a token is logged in, a later open in the same
 *    process is not re-checked by the token.  msspctl processes are
 *    short-lived; a server opens its CA once.
 */
#include "pki/ca.h"

#include <string.h>

/* The deprecation is known and accepted here (see above); the Makefile
 * says so too, this keeps other builds (scripts/fuzz.sh) quiet. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

#include <openssl/crypto.h>
#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/ui.h>

#include "util/limits.h"

struct pki_ca_p11 {
	ENGINE *p11_engine; /* functional reference (ENGINE_init) */
	EVP_PKEY *p11_key;
	UI_METHOD *p11_ui;
};

/* A UI that never answers: a wrong or missing PIN must fail, never block
 * on a terminal prompt inside a server. */
static int
p11_ui_read_nothing(UI *ui, UI_STRING *uis)
{
	(void)ui;
	(void)uis;
	return 0;
}

struct pki_ca_p11 *
pki_ca_p11_open(const char *module, const char *uri, const char *pin, size_t pin_len,
		struct pki_err *err)
{
	struct pki_ca_p11 *k = NULL;
	char *pinz = NULL;
	bool inited = false;

	if (uri == NULL || pin_len > MSSP_CA_MAX_SECRET || (pin == NULL && pin_len != 0)) {
		pki_err_set(err, 101, "PKCS#11: bad URI or PIN");
		goto fail;
	}
	k = OPENSSL_zalloc(sizeof(*k));
	if (k == NULL) {
		pki_err_set(err, 900, "PKCS#11: out of memory");
		goto fail;
	}
	k->p11_ui = UI_create_method("openmssp-no-prompt");
	if (k->p11_ui == NULL || UI_method_set_reader(k->p11_ui, p11_ui_read_nothing) != 0) {
		pki_err_set(err, 900, "PKCS#11: out of memory");
		goto fail;
	}
	k->p11_engine = ENGINE_by_id("pkcs11");
	if (k->p11_engine == NULL) {
		pki_err_set(err, 900, "PKCS#11: the pkcs11 engine is not available");
		goto fail;
	}
	if (module != NULL &&
	    !ENGINE_ctrl_cmd_string(k->p11_engine, "MODULE_PATH", module, 0)) {
		pki_err_set(err, 900, "PKCS#11: module path refused by the engine");
		goto fail;
	}
	if (pin != NULL) {
		/* The engine wants a C string; the copy is wiped below. */
		pinz = OPENSSL_malloc(pin_len + 1);
		if (pinz == NULL) {
			pki_err_set(err, 900, "PKCS#11: out of memory");
			goto fail;
		}
		memcpy(pinz, pin, pin_len);
		pinz[pin_len] = '\0';
		if (memchr(pin, '\0', pin_len) != NULL ||
		    !ENGINE_ctrl_cmd_string(k->p11_engine, "PIN", pinz, 0)) {
			pki_err_set(err, 900, "PKCS#11: PIN refused by the engine");
			goto fail;
		}
	}
	if (!ENGINE_init(k->p11_engine)) {
		pki_err_set(err, 900, "PKCS#11: cannot initialise the engine or module");
		goto fail;
	}
	inited = true;
	k->p11_key = ENGINE_load_private_key(k->p11_engine, uri, k->p11_ui, NULL);
	if (k->p11_key == NULL) {
		pki_err_set(err, 900, "PKCS#11: cannot load the key (token, PIN or URI)");
		goto fail;
	}
	/* libp11 keeps the PIN for re-login until the engine is destroyed
	 * (process exit): overwrite its copy.  A later re-login then fails,
	 * which is the fail-closed outcome (F-06). */
	if (pinz != NULL)
		ENGINE_ctrl_cmd_string(k->p11_engine, "PIN", "", 0);
	OPENSSL_clear_free(pinz, pin_len + 1);
	ERR_clear_error();
	return k;
fail:
	if (pinz != NULL)
		OPENSSL_clear_free(pinz, pin_len + 1);
	if (k != NULL) {
		if (inited)
			ENGINE_finish(k->p11_engine);
		ENGINE_free(k->p11_engine);
		UI_destroy_method(k->p11_ui);
		OPENSSL_free(k);
	}
	ERR_clear_error();
	return NULL;
}

EVP_PKEY *
pki_ca_p11_key(const struct pki_ca_p11 *k)
{
	return k->p11_key;
}

void
pki_ca_p11_close(struct pki_ca_p11 *k)
{
	if (k == NULL)
		return;
	/* The key first: it holds references into the engine's session. */
	EVP_PKEY_free(k->p11_key);
	ENGINE_finish(k->p11_engine);
	ENGINE_free(k->p11_engine);
	UI_destroy_method(k->p11_ui);
	OPENSSL_free(k);
}
