/*
 * mss-phone - OpenMSSP's reference phone app: the phones of a data
 * directory (DIR/phones, written by `msspd init --demo`) connect to the
 * AFE, authenticate with their device keys, and answer signature prompts
 * from HomeMSSP, either as the demo users do (--demo) or by asking on the
 * terminal.  See docs/internals/mss-phone.md.
 *
 *   mss-phone --data-dir DIR [--demo] [--only +MSISDN[,+MSISDN...]] [--log FILE]
 *   mss-phone activate (--dir PHONES_DIR | --data-dir DIR) --msisdn M
 *             [--code C] [--pin PIN] [--puk PUK] [--no-demo-secrets] [--force]
 *
 * main() and argument handling only: src/cmd/mss-phone/run.c runs the
 * loop, src/phone/app.c holds the logic.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd/mss-phone/mssphone.h"
#include "util/limits.h"

#define EXIT_USAGE 2

static void
usage(FILE *f)
{
	fputs("usage: mss-phone --data-dir DIR [--demo] [--only +MSISDN[,+MSISDN...]]\n"
	      "                 [--log FILE]\n"
	      "\n"
	      "Runs the phones of DIR/phones: each keeps a TLS WebSocket to the AFE and\n"
	      "answers signature prompts.  --demo answers as the demo users do (see\n"
	      "docs/internals/datadir.md); otherwise each prompt is shown on the terminal.\n"
	      "--only restricts to the listed MSISDNs.  Event lines (READY, PROMPT, ANSWER,\n"
	      "ACK, CANCEL, RECEIPT, CLOSED) go to stdout or --log FILE.  SIGINT/SIGTERM\n"
	      "closes every connection and exits.\n"
	      "\n"
	      "       mss-phone activate (--dir PHONES_DIR | --data-dir DIR) --msisdn +M\n"
	      "                 [--code NNNN-NNNN-NNNN] [--pin PIN] [--puk PUK]\n"
	      "                 [--no-demo-secrets] [--force]\n"
	      "\n"
	      "Binds a new phone to +M with the activation code from the RA (asked on the\n"
	      "terminal when --code is missing) and writes PHONES_DIR/+M/.  The demo PIN\n"
	      "and PUK that --demo types go to its device.conf (default PIN 123456, a\n"
	      "random PUK printed once); --no-demo-secrets writes none.  An existing\n"
	      "phone directory is kept unless --force.\n",
	      f);
}

static int
activate_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'p' },
		{ "data-dir", required_argument, NULL, 'd' },
		{ "msisdn", required_argument, NULL, 'm' },
		{ "code", required_argument, NULL, 'c' },
		{ "pin", required_argument, NULL, 'P' },
		{ "puk", required_argument, NULL, 'K' },
		{ "no-demo-secrets", no_argument, NULL, 'n' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct mp_activate_opts o = { 0 };
	char phones[MSSP_PHONE_MAX_PATH + 1];
	const char *data_dir = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			o.ma_phones = optarg;
			break;
		case 'd':
			data_dir = optarg;
			break;
		case 'm':
			o.ma_msisdn = optarg;
			break;
		case 'c':
			o.ma_code = optarg;
			break;
		case 'P':
			o.ma_pin = optarg;
			break;
		case 'K':
			o.ma_puk = optarg;
			break;
		case 'n':
			o.ma_no_secrets = true;
			break;
		case 'f':
			o.ma_force = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc || o.ma_msisdn == NULL || (o.ma_phones == NULL) == (data_dir == NULL) ||
	    (o.ma_no_secrets && (o.ma_pin != NULL || o.ma_puk != NULL))) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (data_dir != NULL) {
		int n = snprintf(phones, sizeof(phones), "%s/phones", data_dir);

		if (n < 0 || (size_t)n >= sizeof(phones)) {
			fputs("mss-phone: --data-dir too long\n", stderr);
			return EXIT_USAGE;
		}
		o.ma_phones = phones;
	}
	return mp_activate(&o);
}

/* "+digits[,+digits...]": a typo should not silently select nothing. */
static int
only_ok(const char *s)
{
	const char *p = s;

	for (;;) {
		size_t n = 0;

		if (*p++ != '+')
			return 0;
		while (*p >= '0' && *p <= '9') {
			p++;
			n++;
		}
		if (n == 0)
			return 0;
		if (*p == '\0')
			return 1;
		if (*p++ != ',')
			return 0;
	}
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data-dir", required_argument, NULL, 'd' },
		{ "demo", no_argument, NULL, 'D' },
		{ "only", required_argument, NULL, 'o' },
		{ "log", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct mp_opts o = { 0 };
	int c;

	if (argc > 1 && strcmp(argv[1], "activate") == 0)
		return activate_main(argc - 1, argv + 1);
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			o.mo_data_dir = optarg;
			break;
		case 'D':
			o.mo_demo = true;
			break;
		case 'o':
			o.mo_only = optarg;
			break;
		case 'l':
			o.mo_log = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc || o.mo_data_dir == NULL) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (o.mo_only != NULL && !only_ok(o.mo_only)) {
		fprintf(stderr, "mss-phone: --only wants +MSISDN[,+MSISDN...]\n");
		return EXIT_USAGE;
	}
	return mp_run(&o);
}
