/*
 * config.c - strict INI parser (see config.h).
 */
#include "util/config.h"

#include "util/utf8.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/arena.h"
#include "util/limits.h"

struct cfg_kv {
	const char *key;
	const char *value;
	unsigned line;
};

struct cfg_sec {
	const char *type;
	const char *name;
	struct cfg_kv *kv;
	size_t nkv;
};

struct cfg {
	struct mss_arena *arena;
	struct cfg_sec *sec;
	size_t nsec;
};

static int
cerr(struct cfg_err *e, unsigned line, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return -1;
	e->line = line;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -1;
}

static bool
is_ident_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-' || c == '.';
}

static const char *
trim(const char *s, const char *e, const char **end)
{
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*end = e;
	return s;
}

static const struct cfg_section_schema *
schema_find(const struct cfg_section_schema *schema, size_t n, const char *type)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(schema[i].type, type) == 0)
			return &schema[i];
	return NULL;
}

static bool
schema_has_key(const struct cfg_section_schema *s, const char *key)
{
	const char *const *k;

	for (k = s->keys; k && *k; k++)
		if (strcmp(*k, key) == 0)
			return true;
	return false;
}

/* [type] or [type "name"] */
static int
parse_header(struct cfg *c, const char *p, const char *e, unsigned line, struct cfg_err *err)
{
	const char *t, *te, *n = NULL, *ne = NULL;
	struct cfg_sec *s;

	p++; /* '[' */
	if (e[-1] != ']')
		return cerr(err, line, "section header must end with ]");
	e--;
	t = trim(p, e, &te);
	for (p = t; p < te && is_ident_char(*p); p++)
		;
	if (p == t)
		return cerr(err, line, "empty section name");
	if (p < te) {
		const char *q = p;

		while (q < te && (*q == ' ' || *q == '\t'))
			q++;
		if (q == p || q >= te || *q != '"' || te[-1] != '"' || te - q < 2)
			return cerr(err, line, "section header: expected [type] or [type \"name\"]");
		n = q + 1;
		ne = te - 1;
		if (memchr(n, '"', (size_t)(ne - n)) != NULL || ne == n)
			return cerr(err, line, "section name: empty or with a quote");
		te = p;
	}
	if (c->nsec >= MSSP_CFG_MAX_SECTIONS)
		return cerr(err, line, "too many sections");
	s = &c->sec[c->nsec];
	memset(s, 0, sizeof(*s));
	s->type = mss_arena_strndup(c->arena, t, (size_t)(te - t));
	s->name = n ? mss_arena_strndup(c->arena, n, (size_t)(ne - n)) : NULL;
	s->kv = mss_arena_alloc(c->arena, MSSP_CFG_MAX_KEYS * sizeof(*s->kv));
	if (s->type == NULL || (n && s->name == NULL) || s->kv == NULL)
		return cerr(err, line, "configuration too large");
	c->nsec++;
	return 0;
}

struct cfg *
cfg_parse(const char *text, size_t len, const struct cfg_section_schema *schema, size_t n,
	  struct cfg_err *err)
{
	struct cfg *c;
	const char *p = text, *end = text + len, *nl, *le, *ls, *eq, *k, *ke, *v, *ve;
	unsigned line = 0;
	size_t i, j;

	if (err)
		memset(err, 0, sizeof(*err));
	if (len > MSSP_CFG_MAX_BYTES)
		return cerr(err, 0, "configuration file too large"), NULL;
	if (memchr(text, '\0', len) != NULL || !utf8_valid(text, len))
		return cerr(err, 0, "configuration is not UTF-8 text"), NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->arena = mss_arena_new(MSSP_CFG_ARENA);
	if (c->arena == NULL)
		goto fail_mem;
	c->sec = mss_arena_alloc(c->arena, MSSP_CFG_MAX_SECTIONS * sizeof(*c->sec));
	if (c->sec == NULL)
		goto fail_mem;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		le = nl ? nl : end;
		line++;
		if (line > MSSP_CFG_MAX_LINES) {
			cerr(err, line, "too many lines");
			goto fail;
		}
		if ((size_t)(le - p) > MSSP_CFG_MAX_LINE) {
			cerr(err, line, "line too long");
			goto fail;
		}
		if (le > p && le[-1] == '\r')
			le--; /* CRLF files are fine */
		for (ls = p; ls < le; ls++)
			if ((unsigned char)*ls < 0x20 && *ls != '\t')
				break;
		if (ls < le) {
			cerr(err, line, "control character");
			goto fail;
		}
		ls = trim(p, le, &le);
		p = nl ? nl + 1 : end;
		if (ls == le || *ls == '#' || *ls == ';')
			continue;
		if (*ls == '[') {
			if (parse_header(c, ls, le, line, err))
				goto fail;
			continue;
		}
		if (c->nsec == 0) {
			cerr(err, line, "key outside any section");
			goto fail;
		}
		eq = memchr(ls, '=', (size_t)(le - ls));
		if (eq == NULL) {
			cerr(err, line, "expected key = value");
			goto fail;
		}
		k = trim(ls, eq, &ke);
		v = trim(eq + 1, le, &ve);
		for (ls = k; ls < ke && is_ident_char(*ls); ls++)
			;
		if (k == ke || ls != ke) {
			cerr(err, line, "invalid key name");
			goto fail;
		}
		{
			struct cfg_sec *s = &c->sec[c->nsec - 1];
			struct cfg_kv *kv;

			for (i = 0; i < s->nkv; i++)
				if (strlen(s->kv[i].key) == (size_t)(ke - k) &&
				    strncmp(s->kv[i].key, k, (size_t)(ke - k)) == 0) {
					cerr(err, line, "key repeated in its section (first on line %u)",
					     s->kv[i].line);
					goto fail;
				}
			if (s->nkv >= MSSP_CFG_MAX_KEYS) {
				cerr(err, line, "too many keys in one section");
				goto fail;
			}
			kv = &s->kv[s->nkv];
			kv->key = mss_arena_strndup(c->arena, k, (size_t)(ke - k));
			kv->value = mss_arena_strndup(c->arena, v, (size_t)(ve - v));
			kv->line = line;
			if (kv->key == NULL || kv->value == NULL) {
				cerr(err, line, "configuration too large");
				goto fail;
			}
			s->nkv++;
		}
	}

	/* Against the schema, and no section twice. */
	for (i = 0; i < c->nsec; i++) {
		const struct cfg_sec *s = &c->sec[i];
		const struct cfg_section_schema *sc = schema ? schema_find(schema, n, s->type) : NULL;

		for (j = 0; j < i; j++)
			if (strcmp(c->sec[j].type, s->type) == 0 &&
			    ((s->name == NULL && c->sec[j].name == NULL) ||
			     (s->name && c->sec[j].name && strcmp(s->name, c->sec[j].name) == 0))) {
				cerr(err, 0, "section [%s] appears twice", s->type);
				goto fail;
			}
		if (schema == NULL)
			continue;
		if (sc == NULL) {
			cerr(err, 0, "unknown section [%s]", s->type);
			goto fail;
		}
		if (sc->named != (s->name != NULL)) {
			cerr(err, 0, sc->named ? "section [%s] needs a name" : "section [%s] takes no name",
			     s->type);
			goto fail;
		}
		for (j = 0; j < s->nkv; j++)
			if (!schema_has_key(sc, s->kv[j].key)) {
				cerr(err, s->kv[j].line, "unknown key in section [%s]", s->type);
				goto fail;
			}
	}
	return c;
fail_mem:
	cerr(err, 0, "out of memory");
fail:
	cfg_free(c);
	return NULL;
}

struct cfg *
cfg_load(const char *path, const struct cfg_section_schema *schema, size_t n, struct cfg_err *err)
{
	FILE *f = fopen(path, "rb");
	struct cfg *c;
	char *buf;
	size_t len;

	if (f == NULL)
		return cerr(err, 0, "cannot open configuration: %s", strerror(errno)), NULL;
	buf = malloc(MSSP_CFG_MAX_BYTES + 1);
	if (buf == NULL) {
		fclose(f);
		return cerr(err, 0, "out of memory"), NULL;
	}
	len = fread(buf, 1, MSSP_CFG_MAX_BYTES + 1, f);
	if (ferror(f)) {
		fclose(f);
		explicit_bzero(buf, MSSP_CFG_MAX_BYTES + 1);
		free(buf);
		return cerr(err, 0, "cannot read configuration"), NULL;
	}
	fclose(f);
	c = cfg_parse(buf, len, schema, n, err);
	explicit_bzero(buf, len);
	free(buf);
	return c;
}

void
cfg_free(struct cfg *c)
{
	if (c == NULL)
		return;
	/* a configuration may hold secrets (device.conf: the channel key) */
	mss_arena_wipe_free(c->arena);
	free(c);
}

size_t
cfg_section_count(const struct cfg *c)
{
	return c->nsec;
}

const char *
cfg_section_type(const struct cfg *c, size_t i)
{
	return i < c->nsec ? c->sec[i].type : NULL;
}

const char *
cfg_section_name(const struct cfg *c, size_t i)
{
	return i < c->nsec ? c->sec[i].name : NULL;
}

int
cfg_section_find(const struct cfg *c, const char *type, const char *name)
{
	size_t i;

	for (i = 0; i < c->nsec; i++) {
		if (strcmp(c->sec[i].type, type) != 0)
			continue;
		if ((name == NULL && c->sec[i].name == NULL) ||
		    (name && c->sec[i].name && strcmp(name, c->sec[i].name) == 0))
			return (int)i;
	}
	return -1;
}

static const struct cfg_kv *
find_kv(const struct cfg *c, int sec, const char *key)
{
	size_t i;

	if (sec < 0 || (size_t)sec >= c->nsec)
		return NULL;
	for (i = 0; i < c->sec[sec].nkv; i++)
		if (strcmp(c->sec[sec].kv[i].key, key) == 0)
			return &c->sec[sec].kv[i];
	return NULL;
}

const char *
cfg_get(const struct cfg *c, int sec, const char *key)
{
	const struct cfg_kv *kv = find_kv(c, sec, key);

	return kv ? kv->value : NULL;
}

unsigned
cfg_line(const struct cfg *c, int sec, const char *key)
{
	const struct cfg_kv *kv = find_kv(c, sec, key);

	return kv ? kv->line : 0;
}

int
cfg_get_uint(const struct cfg *c, int sec, const char *key, unsigned long def,
	     unsigned long min, unsigned long max, unsigned long *out, struct cfg_err *err)
{
	const struct cfg_kv *kv = find_kv(c, sec, key);
	unsigned long v = 0;
	const char *p;

	if (kv == NULL) {
		*out = def;
		return 0;
	}
	if (kv->value[0] == '\0' || strlen(kv->value) > 12)
		return cerr(err, kv->line, "%s: expected a number", key);
	for (p = kv->value; *p; p++) {
		if (*p < '0' || *p > '9')
			return cerr(err, kv->line, "%s: expected a number", key);
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v < min || v > max)
		return cerr(err, kv->line, "%s: must be between %lu and %lu", key, min, max);
	*out = v;
	return 0;
}

int
cfg_get_bool(const struct cfg *c, int sec, const char *key, bool def, bool *out,
	     struct cfg_err *err)
{
	const struct cfg_kv *kv = find_kv(c, sec, key);

	if (kv == NULL) {
		*out = def;
		return 0;
	}
	if (strcmp(kv->value, "yes") == 0 || strcmp(kv->value, "true") == 0 ||
	    strcmp(kv->value, "on") == 0)
		*out = true;
	else if (strcmp(kv->value, "no") == 0 || strcmp(kv->value, "false") == 0 ||
		 strcmp(kv->value, "off") == 0)
		*out = false;
	else
		return cerr(err, kv->line, "%s: expected yes or no", key);
	return 0;
}
