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
	      "Exit: 0 success (signature verified), 1 ETSI error status, fault or bad\n"
	      "signature, 2 usage or configuration, 3 transport, TLS or garbled answer.\n",
	      f);
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
		return rc;
	}
	usage(stderr);
	return AP_EXIT_USAGE;
}
