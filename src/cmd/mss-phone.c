/*
 * mss-phone - OpenMSSP's reference phone app: the phones of a data
 * directory (DIR/phones, written by `msspd init --demo`) connect to the
 * AFE, authenticate with their device keys, and answer signature prompts
 * from HomeMSSP, either as the demo users do (--demo) or by asking on the
 * terminal.  See docs/internals/mss-phone.md.
 *
 *   mss-phone --data-dir DIR [--demo] [--only +MSISDN[,+MSISDN...]] [--log FILE]
 *
 * main() and argument handling only: src/cmd/mss-phone/run.c runs the
 * loop, src/phone/app.c holds the logic.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd/mss-phone/mssphone.h"

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
	      "closes every connection and exits.\n",
	      f);
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
