/*
 * mss-ap - the AP side of TS 102 204: a client for every AP operation and
 * a load generator (docs/internals/mss-ap.md).
 *
 *   mss-ap sign --msisdn +N [...]          MSS_Signature (synch, async, ss)
 *   mss-ap status --trans-id ID            MSS_StatusQuery
 *   mss-ap receipt --trans-id ID --msisdn +N --message TEXT
 *   mss-ap profile --msisdn +N             MSS_ProfileQuery
 *   mss-ap handshake                       MSS_Handshake
 *   mss-ap bench --users-from +N --users M [...]
 *
 * main() and dispatch only: the commands are in src/cmd/mss-ap/.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "cmd/mss-ap/ap.h"
#include "mss/soap.h"

static void
usage(FILE *f)
{
	fputs("usage: mss-ap sign --msisdn +N [--dtbd TEXT] [--dtbs TEXT | --dtbs-b64 B64]\n"
	      "                   [--profile URI] [--mode synch|async|ss] [--timeout SECONDS]\n"
	      "                   [--ap-trans-id ID] [--validate] [--poll-ms MS] [--no-wait]\n"
	      "       mss-ap status --trans-id ID [--dtbs TEXT | --dtbs-b64 B64]\n"
	      "       mss-ap receipt --trans-id ID --msisdn +N --message TEXT\n"
	      "       mss-ap profile --msisdn +N\n"
	      "       mss-ap handshake\n"
	      "       mss-ap bench --users-from +N --users M [--connections C]\n"
	      "                    [--duration SECONDS] [--op sign|status] [--profile URI]\n"
	      "                    [--timeout S] [--verify]\n"
	      "       mss-ap bench --op park --count N --msisdn-from +N [--timeout S]\n"
	      "                    [--duration SECONDS]\n"
	      "\n"
	      "Every command takes --config FILE (default " AP_DEFAULT_CONF "),\n"
	      "--json or --soap11 (default SOAP 1.2), --url URL (the AE base URL) and\n"
	      "-v (the raw exchange on stderr, AP_PWD masked).\n"
	      "REST (each implies --json; docs/internals/rest.md):\n"
	      "  --basic-file FILE       HTTP Basic instead of the client certificate,\n"
	      "                          USER:PASSWORD read from FILE (one line), or from\n"
	      "                          the environment variable MSS_AP_BASIC with\n"
	      "                          --basic-file env (never on the command line)\n"
	      "  --api-key AP_ID:KEYFILE the Kiuru HMAC API key read from KEYFILE\n"
	      "  --rest-path             the per-operation paths /rest/service/sign ...\n"
	      "Exit: 0 success (signature verified), 1 ETSI error status, fault or bad\n"
	      "signature, 2 usage or configuration, 3 transport, TLS or garbled answer.\n",
	      f);
}

struct ap_rest_auth ap_rest;

/* One line of a secret file, without its newline, into out.  0 or -1.
 * A file that does not fit is refused, not cut: a cut secret would only
 * fail later as "401" with no hint why. */
static int
read_secret(const char *path, char *out, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(out, 1, cap - 1, f) : 0;
	int c = EOF;
	while (f && ((c = fgetc(f)) == '\n' || c == '\r'))
		; /* the line's end after a secret of exactly cap - 1 */
	bool more = c != EOF;
	if (f)
		fclose(f);
	while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		n--;
	out[n] = 0;
	if (f && more) {
		OPENSSL_cleanse(out, cap);
		fprintf(stderr, "mss-ap: %s: secret longer than %zu characters\n", path, cap - 1);
		return -1;
	}
	if (!f || !n || memchr(out, '\n', n)) {
		OPENSSL_cleanse(out, cap);
		fprintf(stderr, "mss-ap: %s: cannot read the secret (one line)\n", path);
		return -1;
	}
	return 0;
}

/* "USER:SECRET" into ap_rest. */
static int
set_user_secret(const char *v, enum ap_rest_mode mode)
{
	const char *c = strchr(v, ':');
	if (!c || c == v || !c[1] || (size_t)(c - v) >= sizeof ap_rest.ra_user ||
	    strlen(c + 1) >= sizeof ap_rest.ra_secret) {
		fprintf(stderr, "mss-ap: expected USER:SECRET\n");
		return -1;
	}
	snprintf(ap_rest.ra_user, sizeof ap_rest.ra_user, "%.*s", (int)(c - v), v);
	snprintf(ap_rest.ra_secret, sizeof ap_rest.ra_secret, "%s", c + 1);
	ap_rest.ra_mode = mode;
	return 0;
}

/* Take the REST options out of argv (each becomes --json, which the
 * commands' own option parsing then sees).  0, or -1 after a message. */
static int
rest_options(int *argc, char **argv)
{
	static char json_opt[] = "--json";
	char buf[2 * MSSP_REST_MAX_SECRET + 2];
	int out = 1, rc = 0;
	for (int i = 1; i < *argc; i++) {
		const char *o = argv[i];
		bool val = strcmp(o, "--basic-file") == 0 || strcmp(o, "--api-key") == 0;
		if (strcmp(o, "--") == 0) {
			while (i < *argc)
				argv[out++] = argv[i++];
			break;
		}
		if (!val && strcmp(o, "--rest-path") != 0) {
			argv[out++] = argv[i];
			continue;
		}
		if (val && i + 1 >= *argc) {
			fprintf(stderr, "mss-ap: %s needs a value\n", o);
			return -1;
		}
		const char *v = val ? argv[++i] : NULL;
		if (strcmp(o, "--rest-path") == 0) {
			ap_rest.ra_per_op_path = true;
		} else if (strcmp(o, "--basic-file") == 0) {
			const char *env = getenv("MSS_AP_BASIC");
			if (strcmp(v, "env") == 0) {
				if (!env) {
					fprintf(stderr, "mss-ap: MSS_AP_BASIC is not set\n");
					return -1;
				}
				if (strlen(env) >= sizeof buf) {
					fprintf(stderr, "mss-ap: MSS_AP_BASIC: longer than %zu "
							"characters\n", sizeof buf - 1);
					return -1;
				}
				snprintf(buf, sizeof buf, "%s", env);
			} else if (read_secret(v, buf, sizeof buf) != 0) {
				return -1;
			}
			rc = set_user_secret(buf, AP_REST_BASIC);
		} else {
			/* AP_ID:KEYFILE; the AP_ID may itself hold ':' (a URI):
			 * the file is after the last one */
			const char *c = strrchr(v, ':');
			if (!c || c == v || (size_t)(c - v) >= sizeof ap_rest.ra_user) {
				fprintf(stderr, "mss-ap: --api-key AP_ID:KEYFILE\n");
				return -1;
			}
			snprintf(ap_rest.ra_user, sizeof ap_rest.ra_user, "%.*s", (int)(c - v), v);
			if (read_secret(c + 1, ap_rest.ra_secret, sizeof ap_rest.ra_secret) != 0)
				return -1;
			ap_rest.ra_mode = AP_REST_APIKEY;
		}
		OPENSSL_cleanse(buf, sizeof buf);
		if (rc != 0)
			return -1;
		argv[out++] = json_opt;
	}
	argv[out] = NULL;
	*argc = out;
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(int, char **);
} commands[] = {
	{ "sign", ap_cmd_sign },       { "status", ap_cmd_status },
	{ "receipt", ap_cmd_receipt }, { "profile", ap_cmd_profile },
	{ "handshake", ap_cmd_handshake }, { "bench", ap_cmd_bench },
};

int
main(int argc, char **argv)
{
	size_t i;
	int rc;

	if (argc < 2) {
		usage(stderr);
		return AP_EXIT_USAGE;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return AP_EXIT_OK;
	}
	if (rest_options(&argc, argv) != 0)
		return AP_EXIT_USAGE;
	if (argc < 2) {
		usage(stderr);
		return AP_EXIT_USAGE;
	}
	/* `mss-ap --config FILE sign ...` and `mss-ap sign --config FILE ...`
	 * are the same: the common options may come before the command, so
	 * move the command to the front (skipping the values of --config and
	 * --url). */
	int k;
	for (k = 1; k < argc; k++) {
		if (argv[k][0] != '-')
			break;
		if ((strcmp(argv[k], "--config") == 0 || strcmp(argv[k], "--url") == 0) &&
		    k + 1 < argc)
			k++;
	}
	if (k > 1 && k < argc) {
		char *cmd = argv[k];
		memmove(&argv[2], &argv[1], (size_t)(k - 1) * sizeof argv[0]);
		argv[1] = cmd;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name) != 0)
			continue;
		/* a peer closing under a write must be an error, not a death */
		signal(SIGPIPE, SIG_IGN);
		mss_soap_init();
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			fprintf(stderr, "mss-ap: libcurl initialisation failed\n");
			return AP_EXIT_TRANSPORT;
		}
		rc = commands[i].fn(argc - 1, argv + 1);
		curl_global_cleanup();
		OPENSSL_cleanse(&ap_rest, sizeof ap_rest);
		return rc;
	}
	usage(stderr);
	return AP_EXIT_USAGE;
}
