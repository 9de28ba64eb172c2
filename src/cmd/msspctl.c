/*
 * msspctl - the operator's command line.
 *
 *   msspctl decode [FILE|-]
 *   msspctl encode --soap|--soap11|--json [--op OPERATION] [FILE|-]
 *   msspctl profile parse URI
 *   msspctl profile match --comparison exact|minimum|better
 *                         --requested URI[,URI...] --available URI[,URI...]
 *                         [--alias LEGACY=mss:URI]... [--demo-aliases]
 *
 * main() and argument handling only: the work is done by src/mss.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cmd/msspctl/ctl.h"
#include "mss/json.h"
#include "mss/profile.h"
#include "mss/soap.h"
#include "mss/status.h"
#include "mss/validate.h"
#include "util/buf.h"
#include "util/limits.h"

#define EXIT_INVALID 1
#define EXIT_USAGE 2

static void
usage(FILE *f)
{
	fputs("usage: msspctl decode [FILE|-]\n"
	      "       msspctl encode --soap|--soap11|--json [--op OPERATION] [FILE|-]\n"
	      "       msspctl profile parse URI\n"
	      "       msspctl profile match --comparison exact|minimum|better\n"
	      "                             --requested URI[,URI...] --available URI[,URI...]\n"
	      "                             [--alias LEGACY=mss:URI]... [--demo-aliases]\n"
	      "       msspctl ca init|issue|revoke|crl|show ...   (msspctl ca --help)\n"
	      "       msspctl sig verify|sign ...                 (msspctl sig --help)\n"
	      "       msspctl keycheck [--policy TEXT] [--known FILE] [--compromised FILE]\n"
	      "                        [--fingerprint] FILE...\n"
	      "       msspctl audit verify|show --data-dir DIR   (offline audit log check)\n"
	      "       msspctl [--conf FILE | --data-dir DIR [--account NAME]] [--json] COMMAND\n"
	      "                        the ME's registration and administration API:\n"
	      "                        user, device, job, cert, ap, profile list|put, account,\n"
	      "                        approval, audit list|verify, keys scan, stats, session,\n"
	      "                        peer, route (the mesh)\n"
	      "                        (msspctl --data-dir DIR --help)\n"
	      "\n"
	      "decode  reads one TS 102 204 message (SOAP or JSON, detected by content),\n"
	      "        applies the checks the server applies before any business logic and\n"
	      "        prints its JSON mirror (exit 0), or the fault it earns (exit 1).\n"
	      "encode  writes a JSON-mirror message as SOAP or JSON.\n"
	      "profile parses signature profile URIs and picks a user's profile for a request.\n"
	      "keycheck checks public keys (keys, certificates, CSRs) against the key-quality\n"
	      "        rules: size, exponent, small factors, Fermat, ROCA, curves, duplicates.\n",
	      f);
}

/* The fault line printed for an invalid message, and exit status 1. */
static int
print_fault(const struct mss_err *e)
{
	struct mss_fault f;
	json_t *o, *root;
	char code[32];
	char *s;

	mss_fault_from_err(e, &f);
	if (f.code)
		snprintf(code, sizeof(code), "_%d", f.code);
	else if (e->kind == MSS_E_HTTP)
		snprintf(code, sizeof(code), "%d", e->code);
	else
		snprintf(code, sizeof(code), "%s", f.code_value);
	o = json_object();
	json_object_set_new(o, "Code", json_string(code));
	if (f.subcode) {
		snprintf(code, sizeof(code), "_%d", f.subcode);
		json_object_set_new(o, "SubCode", json_string(code));
	}
	json_object_set_new(o, "Reason", json_string(f.reason));
	json_object_set_new(o, "Detail", json_string(f.detail ? f.detail : ""));
	root = json_pack("{s:o}", "Fault", o);
	s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (s != NULL)
		puts(s);
	free(s);
	json_decref(root);
	return EXIT_INVALID;
}

/* Read all of FILE or stdin, at most one byte more than the body limit (so
 * "too large" can be told apart).  Returns a malloc'd buffer or NULL. */
static char *
read_input(const char *path, size_t *len)
{
	FILE *f = stdin;
	size_t cap = MSSP_HTTP_MAX_BODY + 1, n;
	char *buf;

	if (path != NULL && strcmp(path, "-") != 0) {
		f = fopen(path, "rb");
		if (f == NULL) {
			fprintf(stderr, "msspctl: %s: %s\n", path, strerror(errno));
			return NULL;
		}
	}
	buf = malloc(cap + 1);
	if (buf == NULL)
		goto out;
	n = fread(buf, 1, cap, f);
	if (ferror(f)) {
		fprintf(stderr, "msspctl: read error\n");
		free(buf);
		buf = NULL;
		goto out;
	}
	buf[n] = '\0';
	*len = n;
out:
	if (f != stdin)
		fclose(f);
	return buf;
}

/* SOAP or JSON, by the first significant byte. */
static struct mss_msg *
decode_any(const char *buf, size_t len, struct mss_err *err)
{
	size_t i = 0;

	/* XML allows a UTF-8 byte order mark (some .NET clients send one);
	 * the JSON gateway refuses it (J-09), so only '<' may follow it. */
	if (len >= 4 && memcmp(buf, "\xef\xbb\xbf<", 4) == 0)
		i = 3;
	while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
		i++;
	if (i < len && buf[i] == '<')
		return mss_soap_decode(buf, len, 0, err);
	if (i < len && buf[i] == '{')
		return mss_json_decode(buf, len, 0, err);
	if (len > MSSP_HTTP_MAX_BODY)
		mss_err_http(err, 413, "Message too large");
	else if (i == len)
		mss_err_set(err, MSS_WRONG_PARAM, 0, "Empty message");
	else
		mss_err_set(err, MSS_WRONG_PARAM, 0, "Neither SOAP nor JSON");
	return NULL;
}

static int
cmd_decode(int argc, char **argv)
{
	struct mss_err err;
	struct mss_msg *m;
	struct mss_buf out;
	size_t len = 0;
	char *buf;
	int rc;

	if (argc > 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	buf = read_input(argc == 2 ? argv[1] : NULL, &len);
	if (buf == NULL)
		return EXIT_USAGE;
	m = decode_any(buf, len, &err);
	free(buf);
	if (m == NULL)
		return print_fault(&err);
	if (mss_validate(m, &err) != 0) {
		mss_msg_free(m);
		return print_fault(&err);
	}
	mss_buf_init(&out, 4 * MSSP_HTTP_MAX_BODY);
	rc = mss_json_encode(m, &out, &err);
	mss_msg_free(m);
	if (rc != 0)
		return print_fault(&err);
	puts(mss_buf_str(&out));
	mss_buf_free(&out);
	return 0;
}

static int
cmd_encode(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "soap", no_argument, NULL, 's' },   { "soap11", no_argument, NULL, '1' },
		{ "json", no_argument, NULL, 'j' },   { "op", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },   { NULL, 0, NULL, 0 },
	};
	enum { NONE, SOAP12, SOAP11, JSON } fmt = NONE;
	const char *opname = NULL;
	struct mss_err err;
	struct mss_msg *m;
	struct mss_buf out;
	size_t len = 0;
	char *buf;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': fmt = SOAP12; break;
		case '1': fmt = SOAP11; break;
		case 'j': fmt = JSON; break;
		case 'o': opname = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (fmt == NONE || argc - optind > 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	buf = read_input(optind < argc ? argv[optind] : NULL, &len);
	if (buf == NULL)
		return EXIT_USAGE;
	m = mss_json_decode(buf, len, 0, &err);
	free(buf);
	if (m == NULL)
		return print_fault(&err);
	if (opname != NULL) {
		enum mss_op op = mss_op_by_name(opname);

		if (op == MSS_OP_NONE || (mss_op_request_type(op) != (int)m->type &&
					  mss_op_response_type(op) != (int)m->type)) {
			fprintf(stderr, "msspctl: --op %s does not carry this message\n", opname);
			mss_msg_free(m);
			return EXIT_USAGE;
		}
		m->op = op;
	}
	mss_buf_init(&out, 4 * MSSP_HTTP_MAX_BODY);
	if (fmt == JSON)
		rc = mss_json_encode(m, &out, &err);
	else
		rc = mss_soap_encode(m, fmt == SOAP11 ? MSS_SOAP_11 : MSS_SOAP_12, &out, &err);
	mss_msg_free(m);
	if (rc != 0)
		return print_fault(&err);
	fputs(mss_buf_str(&out), stdout);
	if (fmt == JSON)
		putchar('\n');
	mss_buf_free(&out);
	return 0;
}

static int
profile_fault(const char *detail)
{
	struct mss_err err;

	mss_err_set(&err, MSS_UNSUPPORTED_PROFILE, 0, detail);
	return print_fault(&err);
}

static int
cmd_profile_parse(int argc, char **argv)
{
	struct mss_profile p;
	char perr[128];
	json_t *j;
	char *s;

	if (argc != 4) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (mss_profile_parse(argv[3], &p, perr, sizeof(perr)) != 0)
		return profile_fault(perr);
	j = mss_profile_to_json(&p);
	s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(j);
	if (s == NULL)
		return profile_fault("Cannot describe the profile");
	puts(s);
	free(s);
	return 0;
}

#define MAX_PROFILES 32
#define MAX_ALIASES 32

/* Split a comma-separated list in place into `out` (at most `max`). */
static int
split_list(char *s, char **out, size_t max, size_t *n)
{
	char *p = s, *comma;

	*n = 0;
	while (p != NULL) {
		comma = strchr(p, ',');
		if (comma)
			*comma = '\0';
		if (*p != '\0') {
			if (*n >= max)
				return -1;
			out[(*n)++] = p;
		}
		p = comma ? comma + 1 : NULL;
	}
	return 0;
}

/* Parse a profile, resolving a legacy URI through the aliases first. */
static int
profile_load(const char *uri, const struct mss_profile_alias *aliases, size_t naliases,
	     struct mss_profile *out, char *perr, size_t perrlen)
{
	if (mss_profile_parse(uri, out, perr, perrlen) != 0)
		return -1;
	if (out->pr_legacy && naliases > 0 &&
	    mss_profile_resolve_alias(uri, aliases, naliases, out, perr, perrlen) != 0)
		return mss_profile_parse(uri, out, perr, perrlen); /* no alias: stays opaque */
	return 0;
}

static int
cmd_profile_match(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "comparison", required_argument, NULL, 'c' },
		{ "requested", required_argument, NULL, 'r' },
		{ "available", required_argument, NULL, 'a' },
		{ "alias", required_argument, NULL, 'l' },
		{ "demo-aliases", no_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	struct mss_profile req[MAX_PROFILES], avail[MAX_PROFILES];
	struct mss_profile_alias aliases[MAX_ALIASES];
	char *req_uri[MAX_PROFILES], *avail_uri[MAX_PROFILES];
	char *requested = NULL, *available = NULL, *eq, perr[128];
	enum mss_profile_cmp cmp = MSS_CMP_EXACT;
	size_t nreq = 0, navail = 0, nalias = 0, i;
	int c, idx;

	optind = 3;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			cmp = mss_profile_cmp_parse(optarg);
			if (cmp == MSS_CMP_INVALID) {
				fprintf(stderr, "msspctl: --comparison is exact, minimum or better\n");
				return EXIT_USAGE;
			}
			break;
		case 'r': requested = optarg; break;
		case 'a': available = optarg; break;
		case 'l':
			eq = strchr(optarg, '=');
			if (eq == NULL || nalias >= MAX_ALIASES) {
				fprintf(stderr, "msspctl: --alias LEGACY=mss:URI\n");
				return EXIT_USAGE;
			}
			*eq = '\0';
			aliases[nalias].pa_from = optarg;
			aliases[nalias++].pa_to = eq + 1;
			break;
		case 'd':
			for (i = 0; i < mss_profile_demo_aliases_count && nalias < MAX_ALIASES; i++)
				aliases[nalias++] = mss_profile_demo_aliases[i];
			break;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (requested == NULL || available == NULL || optind != argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (split_list(requested, req_uri, MAX_PROFILES, &nreq) ||
	    split_list(available, avail_uri, MAX_PROFILES, &navail)) {
		fprintf(stderr, "msspctl: at most %d profiles per list\n", MAX_PROFILES);
		return EXIT_USAGE;
	}
	for (i = 0; i < nreq; i++)
		if (profile_load(req_uri[i], aliases, nalias, &req[i], perr, sizeof(perr)) != 0)
			return profile_fault("Unknown signature profile");
	for (i = 0; i < navail; i++)
		if (profile_load(avail_uri[i], aliases, nalias, &avail[i], perr, sizeof(perr)) != 0) {
			fprintf(stderr, "msspctl: available profile %zu: %s\n", i + 1, perr);
			return EXIT_USAGE;
		}
	idx = mss_profile_select(req, nreq, avail, navail, cmp);
	if (idx < 0)
		return profile_fault("No profile of the user fits the request");
	puts(avail_uri[idx]);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	mss_soap_init();
	if (ctl_me_wants(argc, argv))
		return ctl_me(argc, argv);
	if (strcmp(argv[1], "audit") == 0)
		return ctl_audit_local(argc - 1, argv + 1);
	if (strcmp(argv[1], "decode") == 0)
		return cmd_decode(argc - 1, argv + 1);
	if (strcmp(argv[1], "encode") == 0)
		return cmd_encode(argc - 1, argv + 1);
	if (strcmp(argv[1], "profile") == 0 && argc >= 3 && strcmp(argv[2], "parse") == 0)
		return cmd_profile_parse(argc, argv);
	if (strcmp(argv[1], "profile") == 0 && argc >= 3 && strcmp(argv[2], "match") == 0)
		return cmd_profile_match(argc, argv);
	if (strcmp(argv[1], "ca") == 0)
		return ctl_ca(argc - 1, argv + 1);
	if (strcmp(argv[1], "keycheck") == 0)
		return ctl_keycheck(argc - 1, argv + 1);
	if (strcmp(argv[1], "sig") == 0)
		return ctl_sig(argc - 1, argv + 1);
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	usage(stderr);
	return EXIT_USAGE;
}
