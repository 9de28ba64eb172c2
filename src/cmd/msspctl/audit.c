/*
 * audit.c - msspctl audit verify|show, offline: straight on the files of
 * a node (store/audit.h), no server needed, so that an auditor can check
 * a copied or archived log (security.md P-05, P-07).
 *
 *   msspctl audit verify --data-dir DIR [--node ID]
 *   msspctl audit verify --log FILE [--head FILE --pub FILE]
 *   msspctl audit show --data-dir DIR [--node ID] [--after N] [--limit N]
 *   msspctl audit show --log FILE [--after N] [--limit N]
 *
 * With --data-dir the files are DIR/audit/<node>.log, .head and
 * DIR/audit/audit.pub; the node is the `id` of [node] in DIR/msspd.conf,
 * or "node1".  verify prints one line per problem ("line 17 seq 17:
 * bad-hash: entry content does not match its hash") and a summary line;
 * exit 0 intact, 1 problems found, 2 usage or I/O error.  show prints the
 * entries as stored, one JSON object a line.  Argument handling and
 * printing only.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd/msspctl/ctl.h"
#include "store/audit.h"
#include "util/config.h"
#include "util/limits.h"

#define AU_EXIT_PROBLEMS 1
#define AU_EXIT_USAGE 2

static void
usage(FILE *f)
{
	fputs("usage: msspctl audit verify --data-dir DIR [--node ID]\n"
	      "       msspctl audit verify --log FILE [--head FILE --pub FILE]\n"
	      "       msspctl audit show (--data-dir DIR [--node ID] | --log FILE)\n"
	      "                          [--after SEQ] [--limit N]\n"
	      "\n"
	      "verify checks the hash chain, the sequence and the signed head of a node's\n"
	      "audit log and prints each problem by line number; show prints entries.\n"
	      "  --data-dir DIR  the node's data directory (files under DIR/audit/)\n"
	      "  --node ID       node id (default: [node] id in DIR/msspd.conf, or node1)\n"
	      "  --log/--head/--pub FILE  explicit files (e.g. an archived copy)\n"
	      "  --after SEQ     show entries after this sequence number\n"
	      "  --limit N       show at most N entries (default 50, at most 500)\n"
	      "Exit: 0 intact, 1 problems found, 2 usage or I/O error.\n",
	      f);
}

struct au_opts {
	const char *data_dir, *node, *log, *head, *pub;
	uint64_t after;
	size_t limit;
	char node_buf[MSSP_AUDIT_MAX_NODE + 1];
	char log_buf[4096], head_buf[4096], pub_buf[4096];
};

static int
parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return -1;
	*out = v;
	return 0;
}

/* The node id from DIR/msspd.conf ([node] id), or "node1" when there is
 * no such file or key.  -1 when the file exists but cannot be used. */
static int
node_from_conf(struct au_opts *o)
{
	char path[4096];
	struct cfg_err cerr = { 0 };
	struct stat st;
	struct cfg *c;
	const char *id = NULL;
	int sec, n;

	n = snprintf(path, sizeof(path), "%s/msspd.conf", o->data_dir);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -1;
	if (stat(path, &st) != 0 && errno == ENOENT) {
		o->node = "node1";
		return 0;
	}
	c = cfg_load(path, NULL, 0, &cerr);
	if (c == NULL) {
		fprintf(stderr, "msspctl audit: %s line %u: %s\n", path, cerr.line, cerr.msg);
		return -1;
	}
	sec = cfg_section_find(c, "node", NULL);
	if (sec >= 0)
		id = cfg_get(c, sec, "id");
	if (id != NULL && strlen(id) > MSSP_AUDIT_MAX_NODE) {
		fprintf(stderr, "msspctl audit: %s: [node] id too long\n", path);
		cfg_free(c);
		return -1;
	}
	snprintf(o->node_buf, sizeof(o->node_buf), "%s", id ? id : "node1");
	cfg_free(c);
	o->node = o->node_buf;
	return 0;
}

/* Fill the file names from --data-dir / --node. */
static int
resolve(struct au_opts *o)
{
	char adir[4096];
	int n;

	if (o->data_dir == NULL)
		return 0;
	if (o->node == NULL && node_from_conf(o) != 0)
		return -1;
	n = snprintf(adir, sizeof(adir), "%s/audit", o->data_dir);
	if (n < 0 || (size_t)n >= sizeof(adir) ||
	    audit_log_path(adir, o->node, o->log_buf, sizeof(o->log_buf)) != 0 ||
	    audit_head_path(adir, o->node, o->head_buf, sizeof(o->head_buf)) != 0) {
		fprintf(stderr, "msspctl audit: bad node id or path too long\n");
		return -1;
	}
	n = snprintf(o->pub_buf, sizeof(o->pub_buf), "%s/audit.pub", adir);
	if (n < 0 || (size_t)n >= sizeof(o->pub_buf))
		return -1;
	o->log = o->log_buf;
	o->head = o->head_buf;
	o->pub = o->pub_buf;
	return 0;
}

/* 0 ok, -1 usage error (already printed). */
static int
parse_opts(int argc, char **argv, bool show, struct au_opts *o)
{
	static const struct option opts[] = {
		{ "data-dir", required_argument, NULL, 'd' }, { "node", required_argument, NULL, 'n' },
		{ "log", required_argument, NULL, 'l' },      { "head", required_argument, NULL, 'H' },
		{ "pub", required_argument, NULL, 'p' },      { "after", required_argument, NULL, 'a' },
		{ "limit", required_argument, NULL, 'L' },    { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int c;

	memset(o, 0, sizeof(*o));
	o->limit = MSSP_ME_LIST_DEFAULT;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': o->data_dir = optarg; break;
		case 'n': o->node = optarg; break;
		case 'l': o->log = optarg; break;
		case 'H': o->head = optarg; break;
		case 'p': o->pub = optarg; break;
		case 'a':
			if (!show || parse_u64(optarg, INT64_MAX, &o->after) != 0)
				goto bad;
			break;
		case 'L':
			if (!show || parse_u64(optarg, MSSP_STORE_MAX_LIST, &v) != 0 || v == 0)
				goto bad;
			o->limit = (size_t)v;
			break;
		case 'h': usage(stdout); return 1;
		default: goto bad;
		}
	}
	if (optind != argc || (o->data_dir == NULL) == (o->log == NULL) ||
	    (o->data_dir != NULL && (o->head != NULL || o->pub != NULL)) ||
	    (o->log != NULL && o->node != NULL) || (show && (o->head || o->pub)) ||
	    (o->head == NULL) != (o->pub == NULL))
		goto bad;
	return 0;
bad:
	usage(stderr);
	return -1;
}

struct au_print {
	const char *log;
};

static void
print_problem(void *arg, const struct audit_problem *p)
{
	(void)arg;
	if (p->ap_line > 0)
		printf("line %" PRIu64 " seq %" PRIu64 ": %s: %s\n", p->ap_line, p->ap_seq,
		       audit_problem_name(p->ap_kind), p->ap_msg);
	else if (p->ap_seq > 0)
		printf("head seq %" PRIu64 ": %s: %s\n", p->ap_seq, audit_problem_name(p->ap_kind),
		       p->ap_msg);
	else
		printf("%s: %s\n", audit_problem_name(p->ap_kind), p->ap_msg);
}

static int
cmd_verify(int argc, char **argv)
{
	struct audit_verify_result res = { 0 };
	struct store_err err = { 0 };
	struct au_opts o;
	int rc = parse_opts(argc, argv, false, &o);

	if (rc != 0)
		return rc > 0 ? 0 : AU_EXIT_USAGE;
	if (resolve(&o) != 0)
		return AU_EXIT_USAGE;
	rc = audit_verify_file(o.log, o.head, o.pub, print_problem, NULL, &res, &err);
	if (rc < 0) {
		fprintf(stderr, "msspctl audit: %s: %s\n", o.log, err.detail);
		return AU_EXIT_USAGE;
	}
	if (res.av_problems > MSSP_AUDIT_MAX_PROBLEMS)
		printf("... %" PRIu64 " more problems not shown\n",
		       res.av_problems - MSSP_AUDIT_MAX_PROBLEMS);
	if (rc == 0)
		printf("%s: intact", o.log);
	else
		printf("%s: %" PRIu64 " problem%s", o.log, res.av_problems,
		       res.av_problems == 1 ? "" : "s");
	printf(" (%" PRIu64 " entries, last seq %" PRIu64 ", head %s)\n", res.av_entries,
	       res.av_last_seq, res.av_head_ok ? "ok" : o.head ? "NOT ok" : "not checked");
	return rc == 0 ? 0 : AU_EXIT_PROBLEMS;
}

static int
show_line(void *arg, uint64_t seq, const char *line, size_t len)
{
	(void)arg;
	(void)seq;
	fwrite(line, 1, len, stdout);
	fputc('\n', stdout);
	return 0;
}

static int
cmd_show(int argc, char **argv)
{
	struct store_err err = { 0 };
	struct au_opts o;
	int rc = parse_opts(argc, argv, true, &o);

	if (rc != 0)
		return rc > 0 ? 0 : AU_EXIT_USAGE;
	if (resolve(&o) != 0)
		return AU_EXIT_USAGE;
	if (audit_read(o.log, o.after, o.limit, show_line, NULL, &err) != 0) {
		fprintf(stderr, "msspctl audit: %s: %s\n", o.log, err.detail);
		return AU_EXIT_USAGE;
	}
	return fflush(stdout) == 0 ? 0 : AU_EXIT_USAGE;
}

int
ctl_audit_local(int argc, char **argv)
{
	/* argv[0] is "audit" (ctl.h), argv[1] the verb */
	if (argc >= 1 && strcmp(argv[0], "audit") == 0) {
		argc--;
		argv++;
	}
	if (argc >= 1 && strcmp(argv[0], "verify") == 0)
		return cmd_verify(argc, argv);
	if (argc >= 1 && strcmp(argv[0], "show") == 0)
		return cmd_show(argc, argv);
	if (argc >= 1 && (strcmp(argv[0], "help") == 0 || strcmp(argv[0], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	usage(stderr);
	return AU_EXIT_USAGE;
}
