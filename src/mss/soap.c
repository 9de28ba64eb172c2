/*
 * soap.c - SOAP codec: libxml2 tree in, descriptor walk to structs; structs
 * out as text through a bounded buffer.  See soap.h for the rules.
 */
#include "mss/soap.h"

#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/tree.h>

#include "mss/lex.h"
#include "util/limits.h"

/* ---- hardened parsing ------------------------------------------------- */

static xmlParserInputPtr
deny_entity_loader(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
	(void)url;
	(void)id;
	(void)ctxt;
	return NULL; /* nothing is ever loaded: no file, no network */
}

void
mss_soap_init(void)
{
	xmlInitParser();
	xmlSetExternalEntityLoader(deny_entity_loader);
}

/* SAX hook: a DOCTYPE stops the parse at once (SOAP forbids DTDs). */
static void
sax_internal_subset(void *ctx, const xmlChar *name, const xmlChar *eid,
		    const xmlChar *sid)
{
	xmlParserCtxtPtr ctxt = ctx;

	(void)name;
	(void)eid;
	(void)sid;
	ctxt->_private = (void *)1;
	xmlStopParser(ctxt);
}

static void
sax_silent(void *ctx, const char *msg, ...)
{
	(void)ctx;
	(void)msg;
}

static bool
starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* libxml2 2.9 checks duplicate attributes of one start tag pairwise: a 64
 * KiB tag of thousands of attributes costs quadratic time before any of our
 * caps could look at the tree (bad-inputs X-08, rule 4).  So count, on the
 * raw bytes, the '=' of every start tag (outside quoted values, skipping
 * comments, CDATA sections and processing instructions) and refuse a tag
 * with more than attributes plus namespace declarations allow.  Returns 0
 * or -1. */
static int
prescan_attributes(const char *buf, size_t len)
{
	const size_t max = MSSP_XML_MAX_ATTRS + MSSP_XML_MAX_NSDECL;
	size_t i = 0, n;
	char quote;

	while (i < len) {
		const char *lt = memchr(buf + i, '<', len - i);

		if (lt == NULL)
			return 0;
		i = (size_t)(lt - buf) + 1;
		if (i + 3 <= len && memcmp(buf + i, "!--", 3) == 0) {
			const char *e = memmem(buf + i, len - i, "-->", 3);

			i = e ? (size_t)(e - buf) + 3 : len;
			continue;
		}
		if (i + 8 <= len && memcmp(buf + i, "![CDATA[", 8) == 0) {
			const char *e = memmem(buf + i, len - i, "]]>", 3);

			i = e ? (size_t)(e - buf) + 3 : len;
			continue;
		}
		if (i < len && (buf[i] == '?' || buf[i] == '!' || buf[i] == '/'))
			continue; /* PI, DOCTYPE (refused later), end tag */
		for (n = 0, quote = 0; i < len && (quote || buf[i] != '>'); i++) {
			if (quote) {
				if (buf[i] == quote)
					quote = 0;
			} else if (buf[i] == '"' || buf[i] == '\'') {
				quote = buf[i];
			} else if (buf[i] == '=' && ++n > max) {
				return -1;
			}
		}
	}
	return 0;
}

/* Depth, attribute, namespace-declaration and element caps over the whole
 * tree, header blocks and elements kept as raw XML included.  Iterative:
 * no recursion that a deep document could exhaust. */
static int
tree_limits(const xmlNode *root, unsigned start_depth, struct mss_err *err)
{
	const xmlNode *n = root;
	unsigned depth = start_depth, elements = 0, count;
	const xmlAttr *a;
	const xmlNs *ns;

	while (n != NULL) {
		if (n->type == XML_ELEMENT_NODE) {
			if (depth > MSSP_XML_MAX_DEPTH)
				return mss_err_set(err, MSS_WRONG_PARAM, 0, "XML nested too deeply");
			if (++elements > MSSP_XML_MAX_ELEMENTS)
				return mss_err_set(err, MSS_WRONG_PARAM, 0, "Too many XML elements");
			count = 0;
			for (a = n->properties; a; a = a->next) {
				if (++count > MSSP_XML_MAX_ATTRS)
					return mss_err_set(err, MSS_WRONG_PARAM, 0, "Too many attributes");
				if (a->children && a->children->content &&
				    (size_t)xmlStrlen(a->children->content) > MSSP_XML_MAX_ATTR_LEN)
					return mss_err_set(err, MSS_WRONG_PARAM, 0, "Attribute too long");
			}
			count = 0;
			for (ns = n->nsDef; ns; ns = ns->next)
				if (++count > MSSP_XML_MAX_NSDECL)
					return mss_err_set(err, MSS_WRONG_PARAM, 0,
							   "Too many namespace declarations");
			if (n->children != NULL) {
				n = n->children;
				depth++;
				continue;
			}
		}
		while (n != NULL && n->next == NULL && n != root) {
			n = n->parent;
			depth--;
		}
		if (n == NULL || n == root)
			break;
		n = n->next;
	}
	return 0;
}

/* Parse under the project's rules; NULL with err set on any refusal. */
static xmlDocPtr
parse_hardened(const char *buf, size_t len, struct mss_err *err)
{
	const unsigned char *u = (const unsigned char *)buf;
	xmlParserCtxtPtr ctxt;
	xmlDocPtr doc = NULL;
	size_t i;
	int ok;

	if (len > MSSP_HTTP_MAX_BODY)
		return mss_err_http(err, 413, "Message too large"), NULL;
	for (i = 0; i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'); i++)
		;
	if (i == len)
		return mss_err_set(err, MSS_WRONG_PARAM, 0, "Empty message"), NULL;
	/* UTF-16/32 byte order marks: UTF-8 only. */
	if (len >= 2 && ((u[0] == 0xFE && u[1] == 0xFF) || (u[0] == 0xFF && u[1] == 0xFE) ||
			 (u[0] == 0 && u[1] == 0) || u[0] == 0 || u[1] == 0))
		return mss_err_set(err, MSS_WRONG_PARAM, 0, "Only UTF-8 is accepted"), NULL;
	if (memchr(buf, '\0', len) != NULL)
		return mss_err_set(err, MSS_WRONG_PARAM, 0, "NUL byte in message"), NULL;

	if (prescan_attributes(buf, len) != 0)
		return mss_err_set(err, MSS_WRONG_PARAM, 0, "Too many attributes"), NULL;

	ctxt = xmlCreateMemoryParserCtxt(buf, (int)len);
	if (ctxt == NULL)
		return mss_err_set(err, MSS_INTERNAL_ERROR, 0, "Parser unavailable"), NULL;
	ctxt->sax->internalSubset = sax_internal_subset;
	ctxt->sax->externalSubset = sax_internal_subset;
	ctxt->sax->error = sax_silent;
	ctxt->sax->warning = sax_silent;
	ctxt->vctxt.error = sax_silent;
	ctxt->vctxt.warning = sax_silent;
	ctxt->sax->serror = NULL;
	/* NONET: no network even if something asked; no NOENT, DTDLOAD,
	 * DTDATTR, XINCLUDE, HUGE or RECOVER: ever (bad-inputs §1). */
	xmlCtxtUseOptions(ctxt, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	xmlParseDocument(ctxt);
	/* Namespace errors (undeclared prefixes, an empty prefixed
	 * namespace, attributes equal after namespace resolution) are
	 * errors here too, not warnings. */
	ok = ctxt->wellFormed && ctxt->nsWellFormed && ctxt->_private == NULL;
	doc = ctxt->myDoc;
	ctxt->myDoc = NULL;
	if (ctxt->_private != NULL) {
		mss_err_set(err, MSS_WRONG_PARAM, 0, "DTD not allowed");
	} else if (!ok) {
		mss_err_set(err, MSS_WRONG_PARAM, 0, "Malformed XML");
	}
	xmlFreeParserCtxt(ctxt);
	if (!ok)
		goto fail;
	if (doc == NULL || doc->intSubset != NULL || doc->extSubset != NULL) {
		mss_err_set(err, MSS_WRONG_PARAM, 0, "DTD not allowed");
		goto fail;
	}
	if (doc->version == NULL || strcmp((const char *)doc->version, "1.0") != 0) {
		mss_err_set(err, MSS_WRONG_PARAM, 0, "Only XML 1.0 is accepted");
		goto fail;
	}
	if (doc->encoding != NULL && xmlStrcasecmp(doc->encoding, BAD_CAST "UTF-8") != 0) {
		mss_err_set(err, MSS_WRONG_PARAM, 0, "Only UTF-8 is accepted");
		goto fail;
	}
	if (tree_limits(xmlDocGetRootElement(doc), 1, err) != 0)
		goto fail;
	return doc;
fail:
	xmlFreeDoc(doc);
	return NULL;
}

/* ---- reading ---------------------------------------------------------- */

struct rd {
	struct mss_msg *msg;
	struct mss_err *err;
	unsigned elements;
	bool lenient_b64; /* see mss_lex_check_field() */
};

static const char *
node_ns(const xmlNode *n)
{
	return n->ns && n->ns->href ? (const char *)n->ns->href : NULL;
}

static bool
ns_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static bool
is_ws_text(const xmlNode *n)
{
	const xmlChar *p = n->content;

	for (; p && *p; p++)
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
			return false;
	return true;
}

static bool
is_truthy(const xmlChar *v)
{
	return v && (xmlStrcmp(v, BAD_CAST "true") == 0 || xmlStrcmp(v, BAD_CAST "1") == 0);
}

/* Checks every element passes: caps, no foreign attributes. */
static int
check_element(struct rd *r, const xmlNode *el, int depth, bool allow_encoding_style)
{
	const xmlAttr *a;
	const xmlNs *ns;
	unsigned nattr = 0, nns = 0;

	if (depth > MSSP_XML_MAX_DEPTH)
		return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "XML nested too deeply");
	if (++r->elements > MSSP_XML_MAX_ELEMENTS)
		return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Too many XML elements");
	for (ns = el->nsDef; ns; ns = ns->next)
		if (++nns > MSSP_XML_MAX_NSDECL)
			return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Too many namespace declarations");
	for (a = el->properties; a; a = a->next) {
		const char *ans = a->ns ? (const char *)a->ns->href : NULL;

		if (++nattr > MSSP_XML_MAX_ATTRS)
			return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Too many attributes");
		if (ans == NULL || ns_eq(ans, (const char *)XML_XML_NAMESPACE))
			continue;
		if (allow_encoding_style && xmlStrcmp(a->name, BAD_CAST "encodingStyle") == 0 &&
		    (ns_eq(ans, MSS_NS_SOAP12) || ns_eq(ans, MSS_NS_SOAP11)))
			continue;
		if (xmlStrcmp(a->name, BAD_CAST "encodingStyle") == 0)
			return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "SOAP encoding is not supported");
		/* xsi:schemaLocation, xsi:type, env:mustUnderstand in Body...:
		 * never acted on, so refused rather than silently ignored. */
		return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Unexpected qualified attribute");
	}
	return 0;
}

/* Text content of a simple element: text and CDATA only (X-21, S-03). */
static char *
simple_text(struct rd *r, const xmlNode *el, size_t max)
{
	const xmlNode *c;
	size_t len = 0, l;
	char *s;

	for (c = el->children; c; c = c->next) {
		if (c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE) {
			mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Only text allowed in a simple field");
			return NULL;
		}
		len += xmlStrlen(c->content);
		if (len > max) {
			mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Field too long");
			return NULL;
		}
	}
	s = mss_arena_alloc(r->msg->arena, len + 1);
	if (s == NULL) {
		mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Message too large");
		return NULL;
	}
	len = 0;
	for (c = el->children; c; c = c->next) {
		l = (size_t)xmlStrlen(c->content);
		memcpy(s + len, c->content, l);
		len += l;
	}
	s[len] = '\0';
	return s;
}

static size_t
field_max(const struct mss_field *f)
{
	return (f->flags & MSS_F_BIG) ? MSSP_HTTP_MAX_BODY : MSSP_MSG_MAX_FIELD;
}

static int
check_scalar(struct rd *r, const struct mss_field *f, char *v)
{
	if (mss_lex_check_field(f->xtype, v, r->lenient_b64) != 0)
		return mss_err_setf(r->err, MSS_WRONG_PARAM,
				    f->xtype == MSS_X_MSGMODE ? MSS_SUB_ILLEGAL_MESSAGINGMODE : 0,
				    "Invalid value of %s", f->name ? f->name : f->json);
	return 0;
}

static int read_obj(struct rd *r, const xmlNode *el, const struct mss_type *t,
		    void **out, int depth);

static char *
read_raw(struct rd *r, const xmlNode *el)
{
	xmlDocPtr nd;
	xmlNodePtr cp;
	xmlBufferPtr xb;
	char *s = NULL;

	nd = xmlNewDoc(BAD_CAST "1.0");
	if (nd == NULL)
		goto out;
	cp = xmlDocCopyNode((xmlNodePtr)el, nd, 1);
	if (cp == NULL)
		goto out;
	xmlDocSetRootElement(nd, cp);
	xb = xmlBufferCreate();
	if (xb == NULL)
		goto out;
	if (xmlNodeDump(xb, nd, cp, 0, 0) >= 0 && xmlBufferLength(xb) <= MSSP_HTTP_MAX_BODY)
		s = mss_arena_strndup(r->msg->arena, (const char *)xmlBufferContent(xb),
				      (size_t)xmlBufferLength(xb));
	xmlBufferFree(xb);
out:
	xmlFreeDoc(nd);
	if (s == NULL)
		mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Cannot keep XML element");
	return s;
}

/* mssURIType: exactly one mss:mssURI child with the URI. */
static char *
read_uri(struct rd *r, const struct mss_field *f, const xmlNode *el, int depth)
{
	const xmlNode *c, *uri = NULL;
	char *v;

	if (check_element(r, el, depth, false))
		return NULL;
	for (c = el->children; c; c = c->next) {
		if (c->type == XML_COMMENT_NODE || (c->type == XML_TEXT_NODE && is_ws_text(c)))
			continue;
		if (c->type == XML_ELEMENT_NODE && uri == NULL && ns_eq(node_ns(c), MSS_NS) &&
		    xmlStrcmp(c->name, BAD_CAST "mssURI") == 0) {
			uri = c;
			continue;
		}
		mss_err_setf(r->err, MSS_WRONG_PARAM, 0, "Unexpected content in %s", f->name);
		return NULL;
	}
	if (uri == NULL) {
		mss_err_setf(r->err, MSS_WRONG_PARAM, 0, "Missing mssURI in %s", f->name);
		return NULL;
	}
	if (check_element(r, uri, depth + 1, false))
		return NULL;
	v = simple_text(r, uri, MSSP_MSG_MAX_FIELD);
	if (v == NULL || check_scalar(r, f, v))
		return NULL;
	return v;
}

/* One value of field f from element el (a list item or the field itself). */
static void *
read_value(struct rd *r, const struct mss_field *f, const xmlNode *el, int depth)
{
	void *obj = NULL;
	char *v;

	switch (f->place) {
	case MSS_P_ELEM:
		if (check_element(r, el, depth, false))
			return NULL;
		if (el->properties != NULL) {
			mss_err_setf(r->err, MSS_WRONG_PARAM, 0, "Unexpected attribute on %s", f->name);
			return NULL;
		}
		v = simple_text(r, el, field_max(f));
		if (v == NULL || check_scalar(r, f, v))
			return NULL;
		return v;
	case MSS_P_URI:
		return read_uri(r, f, el, depth);
	case MSS_P_OBJ:
		if (read_obj(r, el, f->sub, &obj, depth))
			return NULL;
		return obj;
	case MSS_P_RAW:
		if (check_element(r, el, depth, false))
			return NULL;
		return read_raw(r, el);
	default:
		mss_err_set(r->err, MSS_INTERNAL_ERROR, 0, "Schema error");
		return NULL;
	}
}

static int
list_append(struct rd *r, struct mss_list **lp, void *item)
{
	struct mss_list *l = *lp;
	void **items;

	if (l == NULL) {
		l = mss_arena_alloc(r->msg->arena, sizeof(*l));
		if (l == NULL)
			return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Message too large");
		*lp = l;
	}
	if (item == NULL)
		return 0;
	if (l->n >= MSSP_MSG_MAX_LIST)
		return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Too many repeated elements");
	/* Arena: grow by copying; lists are short (capped above). */
	items = mss_arena_alloc(r->msg->arena, (l->n + 1) * sizeof(void *));
	if (items == NULL)
		return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Message too large");
	if (l->n)
		memcpy(items, l->items, l->n * sizeof(void *));
	items[l->n++] = item;
	l->items = items;
	return 0;
}

/* A wrapper list: <name><item/>*</name>. */
static int
read_wrapped(struct rd *r, const struct mss_field *f, const xmlNode *el,
	     struct mss_list **lp, int depth)
{
	const xmlNode *c;
	void *v;

	if (check_element(r, el, depth, false))
		return -1;
	if (el->properties != NULL)
		return mss_err_setf(r->err, MSS_WRONG_PARAM, 0, "Unexpected attribute on %s", f->name);
	if (list_append(r, lp, NULL))
		return -1;
	for (c = el->children; c; c = c->next) {
		if (c->type == XML_COMMENT_NODE || (c->type == XML_TEXT_NODE && is_ws_text(c)))
			continue;
		if (c->type != XML_ELEMENT_NODE || xmlStrcmp(c->name, BAD_CAST f->item) != 0 ||
		    !(ns_eq(node_ns(c), f->ns) || (f->alt_ns && ns_eq(node_ns(c), f->alt_ns))))
			return mss_err_setf(r->err, MSS_WRONG_PARAM, 0, "Unexpected content in %s", f->name);
		v = read_value(r, f, c, depth + 1);
		if (v == NULL || list_append(r, lp, v))
			return -1;
	}
	return 0;
}

static const struct mss_field *
find_child_field(const struct mss_type *t, const xmlNode *c, size_t *idx)
{
	const char *ns = node_ns(c);
	size_t i;

	for (i = 0; i < t->nfields; i++) {
		const struct mss_field *f = &t->fields[i];

		if (f->place == MSS_P_ATTR || f->place == MSS_P_TEXT || f->place == MSS_P_JSON)
			continue;
		if (xmlStrcmp(c->name, BAD_CAST f->name) != 0)
			continue;
		if (ns_eq(ns, f->ns) || (f->alt_ns && ns_eq(ns, f->alt_ns))) {
			*idx = i;
			return f;
		}
	}
	return NULL;
}

static int
read_obj(struct rd *r, const xmlNode *el, const struct mss_type *t, void **out, int depth)
{
	const struct mss_field *f, *text_field = NULL;
	const xmlAttr *a;
	const xmlNode *c;
	size_t i, idx, last = 0;
	bool seen_child = false;
	void *obj;
	char *v;

	if (check_element(r, el, depth, false))
		return -1;
	obj = mss_arena_alloc(r->msg->arena, t->size);
	if (obj == NULL)
		return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Message too large");

	for (a = el->properties; a; a = a->next) {
		xmlChar *av;

		if (a->ns != NULL)
			continue; /* xml:lang and the like: checked in check_element */
		f = NULL;
		for (i = 0; i < t->nfields; i++)
			if (t->fields[i].place == MSS_P_ATTR &&
			    xmlStrcmp(a->name, BAD_CAST t->fields[i].name) == 0)
				f = &t->fields[i];
		if (f == NULL)
			return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Unknown attribute");
		av = xmlNodeListGetString(el->doc, a->children, 1);
		if (av == NULL)
			av = xmlStrdup(BAD_CAST "");
		if (av == NULL || (size_t)xmlStrlen(av) > MSSP_XML_MAX_ATTR_LEN) {
			xmlFree(av);
			return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Attribute too long");
		}
		v = mss_arena_strdup(r->msg->arena, (const char *)av);
		xmlFree(av);
		if (v == NULL)
			return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Message too large");
		if (check_scalar(r, f, v))
			return -1;
		*(char **)((char *)obj + f->off) = v;
	}

	for (i = 0; i < t->nfields; i++)
		if (t->fields[i].place == MSS_P_TEXT)
			text_field = &t->fields[i];
	if (text_field != NULL) {
		v = simple_text(r, el, field_max(text_field));
		if (v == NULL || check_scalar(r, text_field, v))
			return -1;
		/* Empty content is absent content: XML cannot tell them apart,
		 * so neither codec does (the validator answers 102 for both). */
		if (v[0] != '\0')
			*(char **)((char *)obj + text_field->off) = v;
		*out = obj;
		return 0;
	}

	for (c = el->children; c; c = c->next) {
		void **slot;

		if (c->type == XML_COMMENT_NODE)
			continue;
		if (c->type == XML_TEXT_NODE && is_ws_text(c))
			continue;
		if (c->type != XML_ELEMENT_NODE)
			return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Unexpected content");
		f = find_child_field(t, c, &idx);
		if (f == NULL)
			return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Unknown element");
		slot = (void **)((char *)obj + f->off);
		if (t->choice_last > t->choice_first && idx >= t->choice_first && idx <= t->choice_last)
			idx = t->choice_first; /* a choice group: any order inside */
		if (!t->unordered && seen_child && idx < last)
			return mss_err_setf(r->err, MSS_WRONG_PARAM, 0, "Element %s out of order", f->name);
		if (!(f->flags & MSS_F_LIST) && *slot != NULL)
			return mss_err_setf(r->err, MSS_WRONG_PARAM, 0, "Duplicate element %s", f->name);
		if ((f->flags & MSS_F_LIST) && f->item != NULL && *slot != NULL)
			return mss_err_setf(r->err, MSS_WRONG_PARAM, 0, "Duplicate element %s", f->name);
		last = idx;
		seen_child = true;
		if (f->flags & MSS_F_LIST) {
			if (f->item != NULL) {
				if (read_wrapped(r, f, c, (struct mss_list **)slot, depth + 1))
					return -1;
			} else {
				void *item = read_value(r, f, c, depth + 1);

				if (item == NULL || list_append(r, (struct mss_list **)slot, item))
					return -1;
			}
		} else {
			*slot = read_value(r, f, c, depth + 1);
			if (*slot == NULL)
				return -1;
		}
	}
	*out = obj;
	return 0;
}

/* ---- faults ----------------------------------------------------------- */

static const xmlNode *
first_child_element(const xmlNode *n)
{
	for (n = n ? n->children : NULL; n; n = n->next)
		if (n->type == XML_ELEMENT_NODE)
			return n;
	return NULL;
}

static const xmlNode *
child_named(const xmlNode *parent, const char *ns, const char *local)
{
	const xmlNode *c;

	for (c = parent ? parent->children : NULL; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE && ns_eq(node_ns(c), ns) &&
		    xmlStrcmp(c->name, BAD_CAST local) == 0)
			return c;
	return NULL;
}

/* QName text "p:_101" -> local part and namespace of p in scope. */
static int
read_qname(struct rd *r, const xmlNode *el, char **local, char **ns)
{
	char *v = simple_text(r, el, MSSP_MSG_MAX_FIELD);
	char *colon;
	xmlNsPtr xns;

	if (v == NULL)
		return -1;
	mss_lex_normalize(MSS_X_ANYURI, v);
	colon = strchr(v, ':');
	*ns = NULL;
	if (colon != NULL) {
		*colon = '\0';
		xns = xmlSearchNs(el->doc, (xmlNodePtr)el, BAD_CAST v);
		if (xns == NULL) /* a QName with an undeclared prefix */
			return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Invalid fault code");
		*ns = mss_arena_strdup(r->msg->arena, (const char *)xns->href);
		*local = colon + 1;
	} else {
		xns = xmlSearchNs(el->doc, (xmlNodePtr)el, NULL);
		if (xns != NULL)
			*ns = mss_arena_strdup(r->msg->arena, (const char *)xns->href);
		*local = v;
	}
	if (mss_lex_check(MSS_X_NCNAME, *local) != 0)
		return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Invalid fault code");
	return 0;
}

static char *
detail_text(struct rd *r, const xmlNode *detail)
{
	const xmlNode *c = first_child_element(detail);

	return simple_text(r, c ? c : detail, MSSP_MSG_MAX_FIELD);
}

static int
read_fault(struct rd *r, const xmlNode *fe, const char *env_ns)
{
	struct mss_fault_msg *fm = r->msg->u.fault;
	const xmlNode *code, *val, *sub, *n;

	if (ns_eq(env_ns, MSS_NS_SOAP12)) {
		code = child_named(fe, env_ns, "Code");
		val = child_named(code, env_ns, "Value");
		if (val == NULL)
			return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Fault without code");
		if (read_qname(r, val, &fm->code_value, &fm->code_ns))
			return -1;
		sub = child_named(code, env_ns, "Subcode");
		if (sub != NULL) {
			val = child_named(sub, env_ns, "Value");
			if (val == NULL || read_qname(r, val, &fm->subcode_value, &fm->subcode_ns))
				return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Invalid fault subcode");
			sub = child_named(sub, env_ns, "Subcode");
			val = child_named(sub, env_ns, "Value");
			if (val != NULL && read_qname(r, val, &fm->subsubcode_value, &fm->subsubcode_ns))
				return -1;
		}
		n = child_named(child_named(fe, env_ns, "Reason"), env_ns, "Text");
		if (n != NULL && (fm->reason = simple_text(r, n, MSSP_MSG_MAX_FIELD)) == NULL)
			return -1;
		n = child_named(fe, env_ns, "Detail");
	} else {
		char *local, *ns;

		val = child_named(fe, NULL, "faultcode");
		if (val == NULL || read_qname(r, val, &local, &ns))
			return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Fault without code");
		if (local[0] == '_') {
			fm->code_value = mss_arena_strdup(r->msg->arena, "Sender");
			fm->subcode_value = local;
			fm->subcode_ns = ns;
		} else {
			fm->code_value = local;
			fm->code_ns = ns;
		}
		n = child_named(fe, NULL, "faultstring");
		if (n != NULL && (fm->reason = simple_text(r, n, MSSP_MSG_MAX_FIELD)) == NULL)
			return -1;
		n = child_named(fe, NULL, "detail");
	}
	if (n != NULL && (fm->detail = detail_text(r, n)) == NULL)
		return -1;
	/* empty texts are absent texts, as in the JSON codec */
	if (fm->reason && fm->reason[0] == '\0')
		fm->reason = NULL;
	if (fm->detail && fm->detail[0] == '\0')
		fm->detail = NULL;
	return 0;
}

/* ---- TS 102 207 RoamingHeader (MSS_SOAP_ROAMING) ---------------------- */

/* No public schema of TS 102 207 exists in our material: this is the
 * reading of docs/internals/mesh.md ("Wire form"), kept strict (every
 * element, attribute and count is known; anything else is 101) because a
 * peer's header decides loop detection and the TimeOut budget. */
#define ROAM_ROLE_NEXT12     "http://www.w3.org/2003/05/soap-envelope/role/next"
#define ROAM_ROLE_ULTIMATE12 "http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver"
#define ROAM_ACTOR_NEXT11    "http://schemas.xmlsoap.org/soap/actor/next"

/* TS 102 207 UNABLE_TO_PROVIDE_SERVICES (status.c's table; status.h has no
 * named constant for the 7xx codes yet). */
enum { SOAP_ROAM_TOO_MANY_HOPS = 780 };

static const char *const mesh_role_names[] = {
	[MSS_MESH_ROLE_AE] = "AE",
	[MSS_MESH_ROLE_HOME] = "HomeMSSP",
	[MSS_MESH_ROLE_TRANSIT] = "TransitMSSP",
};

static bool
is_el(const xmlNode *n, const char *ns, const char *local)
{
	return n->type == XML_ELEMENT_NODE && ns_eq(node_ns(n), ns) &&
	       xmlStrcmp(n->name, BAD_CAST local) == 0;
}

/* RE_TransactionID: 1..MSSP_MSG_MAX_TRANSID visible ASCII characters (it
 * becomes the AP_TransID of the transaction at the next MSSP). */
static bool
roam_trans_id_ok(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if ((unsigned char)s[n] < 0x21 || (unsigned char)s[n] > 0x7E)
			return false;
	return n >= 1 && n <= MSSP_MSG_MAX_TRANSID;
}

/* A non-empty xs:anyURI: the MSSP_ID of a mesh member. */
static bool
roam_uri_ok(const char *s)
{
	return s != NULL && s[0] != '\0' && strlen(s) <= MSSP_MSG_MAX_FIELD &&
	       mss_lex_check(MSS_X_ANYURI, s) == 0;
}

/* The rules one entry obeys, whether it was decoded or is to be encoded:
 * the encoder never writes what the decoder would refuse. */
static bool
roam_entry_ok(const struct mss_roam_entry *e)
{
	long long t;
	bool tz;

	return e->major <= MSSP_MSG_MAX_VERSION && e->minor <= MSSP_MSG_MAX_VERSION &&
	       e->instant != NULL && mss_lex_datetime(e->instant, &t, &tz) == 0 && tz &&
	       e->re_trans_id != NULL && roam_trans_id_ok(e->re_trans_id) &&
	       e->timeout_s <= MSSP_MSG_MAX_TIMEOUT_S && roam_uri_ok(e->sender_id) &&
	       e->role > MSS_MESH_ROLE_NONE && e->role <= MSS_MESH_ROLE_TRANSIT;
}

static bool
roam_hdr_ok(const struct mss_roam_hdr *h)
{
	size_t i;

	if (h->n < 1 || h->n > MSSP_MESH_MAX_HOPS)
		return false;
	for (i = 0; i < h->n; i++)
		if (!roam_entry_ok(&h->entry[i]))
			return false;
	return h->home_mssp == NULL || roam_uri_ok(h->home_mssp);
}

/* An unsigned decimal of at most MSSP_MSG_MAX_INT_DIGITS digits in
 * [min, max], after the schema's white-space collapse.  No sign. */
static int
roam_uint(char *s, unsigned min, unsigned max, unsigned *out)
{
	unsigned long v = 0;
	size_t i;

	mss_lex_normalize(MSS_X_INTEGER, s);
	for (i = 0; s[i]; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= MSSP_MSG_MAX_INT_DIGITS)
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
		if (v > max)
			return -1;
	}
	if (i == 0 || v < min)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* The attributes an element of the header may carry; any other, qualified
 * or not (xml:lang included), is refused. */
struct roam_attr {
	const char *ns; /* NULL: unqualified */
	const char *name;
	char *val;	/* out: arena copy, NULL when absent */
};

static int
roam_attrs(struct rd *r, const xmlNode *el, struct roam_attr *want, size_t n)
{
	const xmlAttr *a;
	size_t i;

	for (i = 0; i < n; i++)
		want[i].val = NULL;
	for (a = el->properties; a; a = a->next) {
		const char *ans = a->ns ? (const char *)a->ns->href : NULL;
		xmlChar *av;

		for (i = 0; i < n; i++)
			if (ns_eq(ans, want[i].ns) && xmlStrcmp(a->name, BAD_CAST want[i].name) == 0)
				break;
		if (i == n)
			return mss_err_set(r->err, MSS_WRONG_PARAM, 0,
					   "Unknown attribute in RoamingHeader");
		av = xmlNodeListGetString(el->doc, a->children, 1);
		want[i].val = mss_arena_strdup(r->msg->arena, av ? (const char *)av : "");
		xmlFree(av);
		if (want[i].val == NULL)
			return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Message too large");
	}
	return 0;
}

/* Next element child from `c` on: white space and comments are skipped,
 * any other text (or CDATA) is refused.  NULL at the end or with `*bad`. */
static const xmlNode *
roam_next(struct rd *r, const xmlNode *c, bool *bad)
{
	for (; c; c = c->next) {
		if (c->type == XML_COMMENT_NODE || (c->type == XML_TEXT_NODE && is_ws_text(c)))
			continue;
		if (c->type == XML_ELEMENT_NODE)
			return c;
		mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Unexpected content in RoamingHeader");
		*bad = true;
		return NULL;
	}
	return NULL;
}

/* The single element child of `el`, which must be {ns}local. */
static const xmlNode *
roam_only(struct rd *r, const xmlNode *el, const char *ns, const char *local)
{
	bool bad = false;
	const xmlNode *c = roam_next(r, el->children, &bad);

	if (bad)
		return NULL;
	if (c == NULL || !is_el(c, ns, local)) {
		mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Invalid element in RoamingHeader");
		return NULL;
	}
	if (roam_next(r, c->next, &bad) != NULL || bad) {
		if (!bad)
			mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Invalid element in RoamingHeader");
		return NULL;
	}
	return c;
}

/* <holder><mss:MSSP_ID><mss:URI>uri</mss:URI></mss:MSSP_ID></holder>:
 * only the URI form of MeshMemberType names a mesh member. */
static int
roam_mssp_id(struct rd *r, const xmlNode *holder, const char **out)
{
	const xmlNode *id, *uri;
	char *v;

	id = roam_only(r, holder, MSS_NS, "MSSP_ID");
	if (id == NULL || roam_attrs(r, id, NULL, 0))
		return -1;
	uri = roam_only(r, id, MSS_NS, "URI");
	if (uri == NULL || roam_attrs(r, uri, NULL, 0))
		return -1;
	v = simple_text(r, uri, MSSP_MSG_MAX_FIELD);
	if (v == NULL)
		return -1;
	mss_lex_normalize(MSS_X_ANYURI, v);
	if (!roam_uri_ok(v))
		return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Invalid MSSP_ID in RoamingHeader");
	*out = v;
	return 0;
}

static int
roam_entry(struct rd *r, const xmlNode *el, struct mss_roam_entry *e)
{
	struct roam_attr ver[] = { { NULL, "MajorVersion", NULL }, { NULL, "MinorVersion", NULL } };
	struct roam_attr si[] = { { NULL, "Instant", NULL }, { NULL, "RE_TransactionID", NULL },
				  { NULL, "TimeOut", NULL } };
	struct roam_attr role[] = { { NULL, "Mesh_Role", NULL } };
	const xmlNode *info, *sender;
	int k;

	if (roam_attrs(r, el, ver, 2))
		return -1;
	if (ver[0].val == NULL || ver[1].val == NULL ||
	    roam_uint(ver[0].val, 0, MSSP_MSG_MAX_VERSION, &e->major) ||
	    roam_uint(ver[1].val, 0, MSSP_MSG_MAX_VERSION, &e->minor))
		return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Invalid version in RoamingHeaderEntry");

	info = roam_only(r, el, MSS_NS_ROAM, "RE_SenderInfo");
	if (info == NULL || roam_attrs(r, info, si, 3))
		return -1;
	if (si[0].val == NULL || si[1].val == NULL)
		return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Incomplete RE_SenderInfo");
	if (mss_lex_check_field(MSS_X_DATETIME, si[0].val, false) != 0)
		return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Invalid Instant in RE_SenderInfo");
	e->instant = si[0].val;
	e->re_trans_id = si[1].val;
	e->timeout_s = 0;
	if (si[2].val != NULL && roam_uint(si[2].val, 1, MSSP_MSG_MAX_TIMEOUT_S, &e->timeout_s))
		return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Invalid TimeOut in RE_SenderInfo");

	sender = roam_only(r, info, MSS_NS_ROAM, "RE_Sender");
	if (sender == NULL || roam_attrs(r, sender, role, 1))
		return -1;
	e->role = MSS_MESH_ROLE_NONE;
	for (k = MSS_MESH_ROLE_AE; k <= MSS_MESH_ROLE_TRANSIT; k++)
		if (role[0].val != NULL && strcmp(role[0].val, mesh_role_names[k]) == 0)
			e->role = (enum mss_mesh_role)k;
	if (e->role == MSS_MESH_ROLE_NONE)
		return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Invalid Mesh_Role in RE_Sender");
	if (roam_mssp_id(r, sender, &e->sender_id))
		return -1;
	/* the same rules the encoder applies (Instant without a time zone,
	 * RE_TransactionID characters and length) */
	if (!roam_entry_ok(e))
		return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Invalid RoamingHeaderEntry");
	return 0;
}

/* The header block itself: its SOAP attributes, 1..MSSP_MESH_MAX_HOPS
 * entries (oldest first), then at most one CommonHeader.  Fills
 * r->msg->roam (arena memory). */
static int
read_roam(struct rd *r, const xmlNode *rh, const char *env_ns)
{
	struct roam_attr at[] = { { env_ns, "mustUnderstand", NULL }, { env_ns, "role", NULL } };
	struct mss_roam_hdr *h;
	const xmlNode *c, *common = NULL;
	bool bad = false, v11 = ns_eq(env_ns, MSS_NS_SOAP11);

	/* SOAP 1.1 targets a block with env:actor, SOAP 1.2 with env:role. */
	if (v11)
		at[1].name = "actor";
	if (roam_attrs(r, rh, at, 2))
		return -1;
	/* check_header already refused a mustUnderstand that is no boolean.
	 * A block for another role or actor is not ours: refused, not
	 * ignored, since the mesh sends only "next" (fail closed, as P-07). */
	if (at[1].val != NULL &&
	    (v11 ? strcmp(at[1].val, ROAM_ACTOR_NEXT11) != 0
		 : strcmp(at[1].val, ROAM_ROLE_NEXT12) != 0 &&
			   strcmp(at[1].val, ROAM_ROLE_ULTIMATE12) != 0))
		return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "RoamingHeader for another role");

	h = mss_arena_alloc(r->msg->arena, sizeof(*h));
	if (h == NULL)
		return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Message too large");
	for (c = roam_next(r, rh->children, &bad); c; c = roam_next(r, c->next, &bad)) {
		if (is_el(c, MSS_NS_ROAM, "RoamingHeaderEntry")) {
			if (common != NULL)
				return mss_err_set(r->err, MSS_WRONG_PARAM, 0,
						   "RoamingHeaderEntry after CommonHeader");
			/* counted before the entry is read, so a long
			 * history costs nothing more */
			if (h->n == MSSP_MESH_MAX_HOPS)
				return mss_err_set(r->err, SOAP_ROAM_TOO_MANY_HOPS, 0,
						   "Too many RoamingHeaderEntry elements");
			if (roam_entry(r, c, &h->entry[h->n]))
				return -1;
			h->n++;
		} else if (is_el(c, MSS_NS_ROAM, "CommonHeader") && common == NULL) {
			const xmlNode *home;

			common = c;
			if (roam_attrs(r, c, NULL, 0))
				return -1;
			home = roam_only(r, c, MSS_NS_ROAM, "HomeMSSP");
			if (home == NULL || roam_attrs(r, home, NULL, 0) ||
			    roam_mssp_id(r, home, &h->home_mssp))
				return -1;
		} else {
			return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Invalid element in RoamingHeader");
		}
	}
	if (bad)
		return -1;
	if (h->n == 0)
		return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "RoamingHeader without an entry");
	r->msg->roam = h;
	return 0;
}

/* ---- the envelope ----------------------------------------------------- */

/* The header blocks.  Under MSS_SOAP_ROAMING the one RoamingHeader is
 * understood: it is returned in `*roam` (read once the message's arena
 * exists) and its mustUnderstand is honoured; a second one is 101. */
static int
check_header(struct rd *r, const xmlNode *hdr, const char *env_ns, unsigned flags,
	     const xmlNode **roam)
{
	const xmlNode *c;
	xmlChar *mu;

	if (check_element(r, hdr, 2, false))
		return -1;
	for (c = hdr->children; c; c = c->next) {
		if (c->type == XML_COMMENT_NODE || (c->type == XML_TEXT_NODE && is_ws_text(c)))
			continue;
		if (c->type != XML_ELEMENT_NODE)
			return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Unexpected content in Header");
		/* SOAP 1.2 §5.2.1: header blocks are namespace-qualified; a Body
		 * (or any envelope element) inside the Header is malformed. */
		if (node_ns(c) == NULL || ns_eq(node_ns(c), env_ns))
			return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Invalid header block");
		mu = xmlGetNsProp((xmlNodePtr)c, BAD_CAST "mustUnderstand", BAD_CAST env_ns);
		if (mu != NULL && xmlStrcmp(mu, BAD_CAST "true") && xmlStrcmp(mu, BAD_CAST "false") &&
		    xmlStrcmp(mu, BAD_CAST "1") && xmlStrcmp(mu, BAD_CAST "0")) {
			xmlFree(mu);
			return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Invalid mustUnderstand");
		}
		if ((flags & MSS_SOAP_ROAMING) && is_el(c, MSS_NS_ROAM, "RoamingHeader")) {
			xmlFree(mu);
			if (*roam != NULL)
				return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Duplicate RoamingHeader");
			*roam = c;
			continue;
		}
		if (is_truthy(mu)) {
			xmlFree(mu);
			return mss_err_soap(r->err, MSS_E_MUST_UNDERSTAND,
					    "Header block not understood");
		}
		xmlFree(mu);
		/* Other blocks are ignored: identity never comes from a header. */
	}
	return 0;
}

/* Find the single element child of `parent`; extra elements, text or PIs
 * are refused.  `skip_rpc_result` skips a leading rpc:result (Kiuru). */
static int
only_child(struct rd *r, const xmlNode *parent, const xmlNode **out, bool skip_rpc_result)
{
	const xmlNode *c;

	*out = NULL;
	for (c = parent->children; c; c = c->next) {
		if (c->type == XML_COMMENT_NODE || (c->type == XML_TEXT_NODE && is_ws_text(c)))
			continue;
		if (c->type != XML_ELEMENT_NODE)
			return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Unexpected content");
		if (skip_rpc_result && *out == NULL && ns_eq(node_ns(c), MSS_NS_RPC) &&
		    xmlStrcmp(c->name, BAD_CAST "result") == 0)
			continue;
		if (*out != NULL)
			return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Exactly one operation per message");
		*out = c;
	}
	return 0;
}

static bool
wrapper_ns_ok(const char *ns, const char *env_ns)
{
	return ns == NULL || ns_eq(ns, MSS_NS_WSDL) || ns_eq(ns, env_ns) || ns_eq(ns, MSS_NS);
}

static int
part_ns_check(struct rd *r, const xmlNode *part)
{
	const char *ns = node_ns(part);

	if (ns == NULL || ns_eq(ns, MSS_NS))
		return 0;
	if (starts_with(ns, MSS_NS_PREFIX))
		return mss_err_set(r->err, MSS_INCOMPATIBLE_INTERFACE, 0,
				   "Unsupported TS 102 204 version");
	return mss_err_set(r->err, MSS_WRONG_PARAM, 0, "Unknown message namespace");
}

static int
any_pi(const xmlNode *n)
{
	for (; n; n = n->next) {
		if (n->type == XML_PI_NODE)
			return 1;
		if (n->type == XML_ELEMENT_NODE && any_pi(n->children))
			return 1;
	}
	return 0;
}

struct mss_msg *
mss_soap_decode(const char *buf, size_t len, unsigned flags, struct mss_err *err)
{
	struct rd r = { NULL, err, 0, false };
	xmlDocPtr doc;
	const xmlNode *env, *c, *hdr = NULL, *body = NULL, *wrap, *part, *roam = NULL;
	const char *env_ns;
	const struct mss_msg_info *mi;
	enum mss_soap_version ver;
	enum mss_op op = MSS_OP_NONE;
	bool response = false;
	int type = -1;
	char local[64];

	mss_err_clear(err);
	doc = parse_hardened(buf, len, err);
	if (doc == NULL)
		return NULL;
	if (any_pi(doc->children)) {
		mss_err_set(err, MSS_WRONG_PARAM, 0, "Processing instructions not allowed");
		goto fail;
	}
	env = xmlDocGetRootElement(doc);
	env_ns = node_ns(env);
	if (xmlStrcmp(env->name, BAD_CAST "Envelope") != 0) {
		mss_err_set(err, MSS_WRONG_PARAM, 0, "Not a SOAP envelope");
		goto fail;
	}
	if (ns_eq(env_ns, MSS_NS_SOAP12)) {
		ver = MSS_SOAP_12;
	} else if (ns_eq(env_ns, MSS_NS_SOAP11)) {
		ver = MSS_SOAP_11;
	} else {
		mss_err_soap(err, MSS_E_VERSION_MISMATCH, "Unsupported SOAP envelope");
		goto fail;
	}
	if (check_element(&r, env, 1, true))
		goto fail;
	if (env->properties != NULL) {
		const xmlAttr *a;

		for (a = env->properties; a; a = a->next)
			if (a->ns == NULL) {
				/* SOAP 1.2 Part 1 §5.1: only qualified attributes */
				mss_err_set(err, MSS_WRONG_PARAM, 0, "Unexpected attribute on Envelope");
				goto fail;
			}
	}
	for (c = env->children; c; c = c->next) {
		if (c->type == XML_COMMENT_NODE || (c->type == XML_TEXT_NODE && is_ws_text(c)))
			continue;
		if (c->type == XML_ELEMENT_NODE && ns_eq(node_ns(c), env_ns) && body == NULL &&
		    hdr == NULL && xmlStrcmp(c->name, BAD_CAST "Header") == 0) {
			hdr = c;
		} else if (c->type == XML_ELEMENT_NODE && ns_eq(node_ns(c), env_ns) &&
			   body == NULL && xmlStrcmp(c->name, BAD_CAST "Body") == 0) {
			body = c;
		} else {
			mss_err_set(err, MSS_WRONG_PARAM, 0, "Invalid SOAP envelope structure");
			goto fail;
		}
	}
	if (body == NULL) {
		mss_err_set(err, MSS_WRONG_PARAM, 0, "No SOAP body");
		goto fail;
	}
	if (hdr != NULL && check_header(&r, hdr, env_ns, flags, &roam))
		goto fail;
	if (check_element(&r, body, 2, false) || only_child(&r, body, &wrap, false))
		goto fail;
	if (wrap == NULL) {
		mss_err_set(err, MSS_MISSING_PARAM, 0, "Empty SOAP body");
		goto fail;
	}

	/* A fault in the body. */
	if (ns_eq(node_ns(wrap), env_ns) && xmlStrcmp(wrap->name, BAD_CAST "Fault") == 0) {
		if (flags & MSS_SOAP_REQUESTS_ONLY) {
			mss_err_set(err, MSS_WRONG_PARAM, 0, "Unsupported operation");
			goto fail;
		}
		r.msg = mss_msg_new(MSS_FAULT);
		if (r.msg == NULL) {
			mss_err_set(err, MSS_INTERNAL_ERROR, 0, "Out of memory");
			goto fail;
		}
		r.msg->soap = ver;
		/* a peer's fault may carry the header: checked and kept, though
		 * the encoder writes none on a fault (mss_soap_encode) */
		if (roam != NULL && read_roam(&r, roam, env_ns))
			goto fail;
		if (check_element(&r, wrap, 3, false) || read_fault(&r, wrap, env_ns))
			goto fail;
		xmlFreeDoc(doc);
		return r.msg;
	}

	if (check_element(&r, wrap, 3, false))
		goto fail;
	if (strlen((const char *)wrap->name) < sizeof(local))
		memcpy(local, wrap->name, strlen((const char *)wrap->name) + 1);
	else
		local[0] = '\0';
	if (wrapper_ns_ok(node_ns(wrap), env_ns)) {
		size_t l = strlen(local);

		if (l > 8 && strcmp(local + l - 8, "Response") == 0) {
			local[l - 8] = '\0';
			response = true;
		}
		op = mss_op_by_name(local);
	}
	if (op != MSS_OP_NONE) {
		if (only_child(&r, wrap, &part, response))
			goto fail;
		if (part == NULL) {
			mss_err_set(err, MSS_MISSING_PARAM, 0, "Operation without its message");
			goto fail;
		}
		type = response ? mss_op_response_type(op) : mss_op_request_type(op);
		if (part_ns_check(&r, part))
			goto fail;
		mi = mss_msg_info((enum mss_msg_type)type);
		if (xmlStrcmp(part->name, BAD_CAST mi->element) != 0) {
			mss_err_set(err, MSS_WRONG_PARAM, 0, "Message does not match the operation");
			goto fail;
		}
	} else {
		/* document/literal: the message element directly in Body */
		part = wrap;
		type = mss_msg_type_by_element((const char *)part->name);
		if (type < 0 || type == MSS_FAULT || part_ns_check(&r, part)) {
			if (err->kind == MSS_E_NONE)
				mss_err_set(err, MSS_WRONG_PARAM, 0, "Unsupported operation");
			goto fail;
		}
		mi = mss_msg_info((enum mss_msg_type)type);
		op = mi->op;
		response = !mi->is_request;
	}
	if ((flags & MSS_SOAP_REQUESTS_ONLY) && (response || op == MSS_OP_NOTIFICATION)) {
		mss_err_set(err, MSS_WRONG_PARAM, 0, "Unsupported operation");
		goto fail;
	}

	r.msg = mss_msg_new((enum mss_msg_type)type);
	if (r.msg == NULL) {
		mss_err_set(err, MSS_INTERNAL_ERROR, 0, "Out of memory");
		goto fail;
	}
	r.msg->op = op;
	r.msg->soap = ver;
	r.lenient_b64 = !mss_msg_info(r.msg->type)->is_request;
	if (roam != NULL && read_roam(&r, roam, env_ns))
		goto fail;
	{
		void *obj = NULL;
		const struct mss_type *t = mss_msg_info(r.msg->type)->type;

		if (read_obj(&r, part, t, &obj, 4))
			goto fail;
		memcpy(r.msg->u.any, obj, t->size);
	}
	xmlFreeDoc(doc);
	return r.msg;
fail:
	if (err->kind == MSS_E_NONE)
		mss_err_set(err, MSS_WRONG_PARAM, 0, "Invalid message");
	mss_msg_free(r.msg);
	xmlFreeDoc(doc);
	return NULL;
}

char *
mss_soap_raw_check(struct mss_msg *msg, const char *xml, const char *ns,
		   const char *local, int depth, struct mss_err *err)
{
	struct rd r = { msg, err, 0, false };
	xmlDocPtr doc;
	const xmlNode *root;
	char *s = NULL;

	doc = parse_hardened(xml, strlen(xml), err);
	if (doc == NULL)
		return NULL;
	root = xmlDocGetRootElement(doc);
	if (any_pi(doc->children) || root == NULL || !ns_eq(node_ns(root), ns) ||
	    xmlStrcmp(root->name, BAD_CAST local) != 0) {
		mss_err_setf(err, MSS_WRONG_PARAM, 0, "Invalid XML in %s", local);
		goto out;
	}
	/* the same checks as the element gets inside a SOAP message, at the
	 * depth it will have there (J-10) */
	if (tree_limits(root, depth > 0 ? (unsigned)depth : 1, err) != 0 ||
	    check_element(&r, root, depth, false) != 0)
		goto out;
	s = read_raw(&r, root);
out:
	xmlFreeDoc(doc);
	return s;
}

/* ---- writing ---------------------------------------------------------- */

struct ns_prefix {
	const char *ns;
	const char *prefix;
};

static const struct ns_prefix prefixes[] = {
	{ MSS_NS, "mss" },     { MSS_NS_FI, "fi" },	{ MSS_NS_MREG, "mreg" },
	{ MSS_NS_MCS, "mcs" }, { MSS_NS_SCO, "sco" },	{ MSS_NS_SCAS, "scas" },
	{ MSS_NS_DS, "ds" },   { MSS_NS_SAMLP, "samlp" },
};
#define NPREFIX (sizeof(prefixes) / sizeof(prefixes[0]))

struct wr {
	struct mss_buf *out;
	struct mss_err *err;
	unsigned used; /* bitmask of prefixes[] */
	int failed;
};

static const char *
prefix_of(struct wr *w, const char *ns)
{
	size_t i;

	for (i = 0; i < NPREFIX; i++)
		if (strcmp(prefixes[i].ns, ns) == 0) {
			w->used |= 1u << i;
			return prefixes[i].prefix;
		}
	return "mss"; /* unreachable with the tables in msg.c */
}

static void
w_add(struct wr *w, const char *s, size_t len)
{
	if (!w->failed && mss_buf_add(w->out, s, len) != 0)
		w->failed = 1;
}

static void
w_str(struct wr *w, const char *s)
{
	w_add(w, s, strlen(s));
}

/* Escape for text (attr = 0) or attribute values (attr = 1). */
static void
w_esc(struct wr *w, const char *s, int attr)
{
	const char *run = s, *rep;

	for (; *s; s++) {
		switch (*s) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '\r': rep = "&#13;"; break;
		case '"': rep = attr ? "&quot;" : NULL; break;
		case '\n': rep = attr ? "&#10;" : NULL; break;
		case '\t': rep = attr ? "&#9;" : NULL; break;
		default: rep = NULL; break;
		}
		if (rep == NULL)
			continue;
		w_add(w, run, (size_t)(s - run));
		w_str(w, rep);
		run = s + 1;
	}
	w_add(w, run, (size_t)(s - run));
}

static void w_obj(struct wr *w, const struct mss_type *t, const void *obj,
		  const char *prefix, const char *name, const char *xmlns);

static void
w_start(struct wr *w, const char *prefix, const char *name)
{
	w_str(w, "<");
	w_str(w, prefix);
	w_str(w, ":");
	w_str(w, name);
}

static void
w_end(struct wr *w, const char *prefix, const char *name)
{
	w_str(w, "</");
	w_str(w, prefix);
	w_str(w, ":");
	w_str(w, name);
	w_str(w, ">\n");
}

static void
w_value(struct wr *w, const struct mss_field *f, const char *name, const void *v)
{
	const char *p = prefix_of(w, f->ns);

	switch (f->place) {
	case MSS_P_ELEM:
		w_start(w, p, name);
		w_str(w, ">");
		w_esc(w, v, 0);
		w_end(w, p, name);
		break;
	case MSS_P_URI:
		w_start(w, p, name);
		w_str(w, ">");
		w_start(w, prefix_of(w, MSS_NS), "mssURI");
		w_str(w, ">");
		w_esc(w, v, 0);
		w_end(w, "mss", "mssURI");
		w_end(w, p, name);
		break;
	case MSS_P_OBJ:
		w_obj(w, f->sub, v, p, name, NULL);
		break;
	case MSS_P_RAW:
		w_str(w, v);
		w_str(w, "\n");
		break;
	default:
		break;
	}
}

static void
w_obj(struct wr *w, const struct mss_type *t, const void *obj, const char *prefix,
      const char *name, const char *xmlns)
{
	const struct mss_field *f;
	const char *text = NULL;
	bool has_children = false;
	size_t i, k;

	w_start(w, prefix, name);
	if (xmlns != NULL)
		w_str(w, xmlns);
	for (i = 0; i < t->nfields; i++) {
		const void *v;

		f = &t->fields[i];
		v = *(void *const *)((const char *)obj + f->off);
		if (v == NULL)
			continue;
		if (f->place == MSS_P_ATTR) {
			w_str(w, " ");
			w_str(w, f->name);
			w_str(w, "=\"");
			w_esc(w, v, 1);
			w_str(w, "\"");
		} else if (f->place == MSS_P_TEXT) {
			text = v;
		} else if (f->place == MSS_P_JSON) {
			mss_err_setf(w->err, MSS_WRONG_PARAM, 0,
				     "%s has no SOAP form", f->json ? f->json : f->name);
			w->failed = 2;
		} else {
			has_children = true;
		}
	}
	if (text != NULL) {
		w_str(w, ">");
		w_esc(w, text, 0);
		w_end(w, prefix, name);
		return;
	}
	if (!has_children) {
		w_str(w, "/>\n");
		return;
	}
	w_str(w, ">\n");
	for (i = 0; i < t->nfields; i++) {
		const void *v;

		f = &t->fields[i];
		v = *(void *const *)((const char *)obj + f->off);
		if (v == NULL || f->place == MSS_P_ATTR || f->place == MSS_P_TEXT ||
		    f->place == MSS_P_JSON)
			continue;
		if (f->flags & MSS_F_LIST) {
			const struct mss_list *l = v;
			const char *p = prefix_of(w, f->ns);

			if (f->item != NULL) {
				if (l->n == 0) {
					w_start(w, p, f->name);
					w_str(w, "/>\n");
					continue;
				}
				w_start(w, p, f->name);
				w_str(w, ">\n");
			}
			for (k = 0; k < l->n; k++)
				w_value(w, f, f->item ? f->item : f->name, l->items[k]);
			if (f->item != NULL)
				w_end(w, p, f->name);
		} else {
			w_value(w, f, f->name, v);
		}
	}
	w_end(w, prefix, name);
}

static const char *
env_ns_of(enum mss_soap_version v)
{
	return v == MSS_SOAP_11 ? MSS_NS_SOAP11 : MSS_NS_SOAP12;
}

static void
w_mssp_id(struct wr *w, const char *uri)
{
	w_str(w, "<mss:MSSP_ID>\n<mss:URI>");
	w_esc(w, uri, 0);
	w_str(w, "</mss:URI>\n</mss:MSSP_ID>\n");
}

/* The TS 102 207 RoamingHeader block, as docs/internals/mesh.md shows it.
 * It is processed hop by hop: SOAP 1.2 targets it at role "next" with
 * mustUnderstand="true"; SOAP 1.1 has no role but env:actor, whose "next"
 * URI means the same, and its mustUnderstand is "1" (1.1 §4.2.3). */
static void
w_roam(struct wr *w, const struct mss_roam_hdr *h, enum mss_soap_version v)
{
	char num[16];
	size_t i;

	w_str(w, "<soapenv:Header>\n<msrs:RoamingHeader xmlns:msrs=\"" MSS_NS_ROAM "\""
		 " xmlns:mss=\"" MSS_NS "\"");
	if (v == MSS_SOAP_11)
		w_str(w, " soapenv:mustUnderstand=\"1\" soapenv:actor=\"" ROAM_ACTOR_NEXT11 "\">\n");
	else
		w_str(w, " soapenv:mustUnderstand=\"true\" soapenv:role=\"" ROAM_ROLE_NEXT12 "\">\n");
	for (i = 0; i < h->n; i++) {
		const struct mss_roam_entry *e = &h->entry[i];

		snprintf(num, sizeof(num), "%u", e->major);
		w_str(w, "<msrs:RoamingHeaderEntry MajorVersion=\"");
		w_str(w, num);
		snprintf(num, sizeof(num), "%u", e->minor);
		w_str(w, "\" MinorVersion=\"");
		w_str(w, num);
		w_str(w, "\">\n<msrs:RE_SenderInfo Instant=\"");
		w_esc(w, e->instant, 1);
		w_str(w, "\" RE_TransactionID=\"");
		w_esc(w, e->re_trans_id, 1);
		if (e->timeout_s != 0) {
			snprintf(num, sizeof(num), "%u", e->timeout_s);
			w_str(w, "\" TimeOut=\"");
			w_str(w, num);
		}
		w_str(w, "\">\n<msrs:RE_Sender Mesh_Role=\"");
		w_str(w, mesh_role_names[e->role]);
		w_str(w, "\">\n");
		w_mssp_id(w, e->sender_id);
		w_str(w, "</msrs:RE_Sender>\n</msrs:RE_SenderInfo>\n</msrs:RoamingHeaderEntry>\n");
	}
	if (h->home_mssp != NULL) {
		w_str(w, "<msrs:CommonHeader>\n<msrs:HomeMSSP>\n");
		w_mssp_id(w, h->home_mssp);
		w_str(w, "</msrs:HomeMSSP>\n</msrs:CommonHeader>\n");
	}
	w_str(w, "</msrs:RoamingHeader>\n</soapenv:Header>\n");
}

/* `roam` NULL: no header at all (the form every AP client expects). */
static void
w_envelope_start(struct wr *w, enum mss_soap_version v, const struct mss_roam_hdr *roam)
{
	w_str(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soapenv:Envelope xmlns:soapenv=\"");
	w_str(w, env_ns_of(v));
	w_str(w, "\">\n");
	if (roam != NULL)
		w_roam(w, roam, v);
	w_str(w, "<soapenv:Body>\n");
}

static void
w_envelope_end(struct wr *w)
{
	w_str(w, "</soapenv:Body>\n</soapenv:Envelope>\n");
}

/* One fault envelope from text parts.  `code_ns` NULL or the envelope
 * namespace means a SOAP code (Sender, Receiver, ...); subcodes are QNames
 * in their namespace (TS 102 204 `mss:`, TS 102 207 `msrs:`).  Values MUST
 * be NCNames (checked by the callers). */
struct fault_text {
	const char *code, *code_ns;
	const char *sub, *sub_ns;
	const char *subsub, *subsub_ns;
	const char *reason, *detail;
};

static const char *
subcode_prefix(const char *ns)
{
	if (ns == NULL || strcmp(ns, MSS_NS) == 0)
		return "mss";
	if (strcmp(ns, MSS_NS_ROAM) == 0)
		return "msrs";
	return "sc";
}

static void
w_qname_decl(struct wr *w, const char *prefix, const char *ns)
{
	w_str(w, " xmlns:");
	w_str(w, prefix);
	w_str(w, "=\"");
	w_esc(w, ns, 1);
	w_str(w, "\"");
}

static int
w_fault(struct mss_buf *out, enum mss_soap_version v, const struct fault_text *t)
{
	struct wr w = { out, NULL, 0, 0 };
	const char *env = env_ns_of(v);
	bool soap_code = t->code_ns == NULL || strcmp(t->code_ns, env) == 0;
	const char *sp = subcode_prefix(t->sub_ns), *ssp;

	w_str(&w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soapenv:Envelope xmlns:soapenv=\"");
	w_str(&w, env);
	w_str(&w, "\">\n");
	if (v != MSS_SOAP_11 && soap_code && strcmp(t->code, "VersionMismatch") == 0)
		w_str(&w, "<soapenv:Header>\n<soapenv:Upgrade>\n"
			  "<soapenv:SupportedEnvelope qname=\"ns1:Envelope\" xmlns:ns1=\"" MSS_NS_SOAP12 "\"/>\n"
			  "<soapenv:SupportedEnvelope qname=\"ns2:Envelope\" xmlns:ns2=\"" MSS_NS_SOAP11 "\"/>\n"
			  "</soapenv:Upgrade>\n</soapenv:Header>\n");
	w_str(&w, "<soapenv:Body>\n<soapenv:Fault>\n");
	if (v == MSS_SOAP_11) {
		/* SOAP 1.1 has one code: the ETSI one when there is one */
		w_str(&w, "<faultcode");
		if (t->sub != NULL) {
			w_qname_decl(&w, sp, t->sub_ns ? t->sub_ns : MSS_NS);
			w_str(&w, ">");
			w_str(&w, sp);
			w_str(&w, ":");
			w_esc(&w, t->sub, 0);
		} else if (soap_code) {
			w_str(&w, ">soapenv:");
			w_esc(&w, t->code, 0);
		} else {
			w_qname_decl(&w, "c", t->code_ns);
			w_str(&w, ">c:");
			w_esc(&w, t->code, 0);
		}
		w_str(&w, "</faultcode>\n<faultstring>");
		w_esc(&w, t->reason ? t->reason : "", 0);
		w_str(&w, "</faultstring>\n");
		if (t->detail != NULL) {
			w_str(&w, "<detail><ns1:detail xmlns:ns1=\"http://kiuru.methics.fi/mssp\">");
			w_esc(&w, t->detail, 0);
			w_str(&w, "</ns1:detail></detail>\n");
		}
	} else {
		w_str(&w, "<soapenv:Code>\n<soapenv:Value");
		if (soap_code) {
			w_str(&w, ">soapenv:");
		} else {
			w_qname_decl(&w, "c", t->code_ns);
			w_str(&w, ">c:");
		}
		w_esc(&w, t->code, 0);
		w_str(&w, "</soapenv:Value>\n");
		if (t->sub != NULL) {
			w_str(&w, "<soapenv:Subcode");
			w_qname_decl(&w, sp, t->sub_ns ? t->sub_ns : MSS_NS);
			w_str(&w, ">\n<soapenv:Value>");
			w_str(&w, sp);
			w_str(&w, ":");
			w_esc(&w, t->sub, 0);
			w_str(&w, "</soapenv:Value>\n");
			if (t->subsub != NULL) {
				ssp = t->subsub_ns && (t->sub_ns == NULL || strcmp(t->subsub_ns, t->sub_ns)) ? "ssc" : sp;
				w_str(&w, "<soapenv:Subcode");
				if (ssp != sp)
					w_qname_decl(&w, ssp, t->subsub_ns);
				w_str(&w, ">\n<soapenv:Value>");
				w_str(&w, ssp);
				w_str(&w, ":");
				w_esc(&w, t->subsub, 0);
				w_str(&w, "</soapenv:Value>\n</soapenv:Subcode>\n");
			}
			w_str(&w, "</soapenv:Subcode>\n");
		}
		w_str(&w, "</soapenv:Code>\n<soapenv:Reason>\n<soapenv:Text xml:lang=\"en\">");
		w_esc(&w, t->reason ? t->reason : "", 0);
		w_str(&w, "</soapenv:Text>\n</soapenv:Reason>\n");
		if (t->detail != NULL) {
			w_str(&w, "<soapenv:Detail>\n<ns1:detail xmlns:ns1=\"http://kiuru.methics.fi/mssp\">");
			w_esc(&w, t->detail, 0);
			w_str(&w, "</ns1:detail>\n</soapenv:Detail>\n");
		}
	}
	w_str(&w, "</soapenv:Fault>\n");
	w_envelope_end(&w);
	return w.failed ? -1 : 0;
}

int
mss_soap_encode_fault(const struct mss_fault *f, enum mss_soap_version v,
		      struct mss_buf *out)
{
	struct fault_text t;
	char code[16], sub[16];

	memset(&t, 0, sizeof(t));
	t.code = f->code_value;
	if (f->code) {
		snprintf(code, sizeof(code), "_%d", f->code);
		t.sub = code;
		t.sub_ns = f->subcode_ns;
		/* The FiCom second-level code (f->subcode) is not put on the
		 * wire: the Swisscom scripts take every `mss:_NNN` Value of a
		 * fault as the code and break on a second one.  It stays in
		 * logs and the audit trail. */
		(void)sub;
	}
	t.reason = f->reason;
	t.detail = f->detail ? f->detail : "";
	return w_fault(out, v, &t);
}

/* A fault message (decoded from JSON or SOAP) back to SOAP, text kept. */
static int
encode_fault_msg(const struct mss_fault_msg *fm, enum mss_soap_version v,
		 struct mss_buf *out, struct mss_err *err)
{
	struct fault_text t;

	t.code = fm->code_value ? fm->code_value : "Sender";
	t.code_ns = fm->code_ns;
	t.sub = fm->subcode_value;
	t.sub_ns = fm->subcode_ns;
	t.subsub = fm->subcode_value ? fm->subsubcode_value : NULL;
	t.subsub_ns = fm->subsubcode_ns;
	t.reason = fm->reason;
	t.detail = fm->detail;
	if (mss_lex_check(MSS_X_NCNAME, t.code) != 0 ||
	    (t.sub && mss_lex_check(MSS_X_NCNAME, t.sub) != 0) ||
	    (t.subsub && mss_lex_check(MSS_X_NCNAME, t.subsub) != 0))
		return mss_err_set(err, MSS_WRONG_PARAM, 0, "Invalid fault code");
	if (w_fault(out, v, &t) != 0)
		return mss_err_set(err, MSS_INTERNAL_ERROR, 0, "Message too large");
	return 0;
}

/* Which prefixes a message will use, so they are declared once on the
 * message element (the literal `mss:` prefix everywhere, as clients need). */
static void
scan_ns(struct wr *w, const struct mss_type *t, const void *obj)
{
	size_t i, k;

	for (i = 0; i < t->nfields; i++) {
		const struct mss_field *f = &t->fields[i];
		const void *v = *(void *const *)((const char *)obj + f->off);

		if (v == NULL || f->place == MSS_P_ATTR || f->place == MSS_P_TEXT ||
		    f->place == MSS_P_JSON)
			continue;
		prefix_of(w, f->ns);
		if (f->place == MSS_P_URI)
			prefix_of(w, MSS_NS);
		if (f->sub == NULL)
			continue;
		if (f->flags & MSS_F_LIST) {
			const struct mss_list *l = v;

			for (k = 0; k < l->n; k++)
				scan_ns(w, f->sub, l->items[k]);
		} else {
			scan_ns(w, f->sub, v);
		}
	}
}

int
mss_soap_encode(const struct mss_msg *msg, enum mss_soap_version v,
		struct mss_buf *out, struct mss_err *err)
{
	struct wr w = { out, err, 0, 0 };
	const struct mss_msg_info *mi;
	const struct mss_roam_hdr *roam;
	struct mss_buf decl, scratch;
	enum mss_op op;
	bool request;
	const char *opname;
	size_t i;

	mss_err_clear(err);
	if (v == MSS_SOAP_NONE)
		v = MSS_SOAP_12;
	if (msg->type == MSS_FAULT)
		return encode_fault_msg(msg->u.fault, v, out, err);
	mi = mss_msg_info(msg->type);
	op = msg->op;
	if (mss_op_request_type(op) != (int)msg->type && mss_op_response_type(op) != (int)msg->type)
		op = mi->op;
	request = mss_op_request_type(op) == (int)msg->type;
	opname = mss_op_name(op);
	roam = msg->roam != NULL && msg->roam->n > 0 ? msg->roam : NULL;
	if (roam != NULL && !roam_hdr_ok(roam))
		return mss_err_set(err, MSS_INTERNAL_ERROR, 0, "Invalid RoamingHeader");

	/* Namespace declarations for everything the message uses. */
	w.used = 1; /* mss */
	scan_ns(&w, mi->type, msg->u.any);
	mss_buf_init(&decl, 2048);
	for (i = 0; i < NPREFIX; i++)
		if (w.used & (1u << i))
			mss_buf_addf(&decl, " xmlns:%s=\"%s\"", prefixes[i].prefix, prefixes[i].ns);

	/* Written into a scratch buffer first, appended only when complete:
	 * a failed encode leaves nothing half-written in the caller's buffer. */
	mss_buf_init(&scratch, mss_buf_room(out));
	w.out = &scratch;
	w_envelope_start(&w, v, roam);
	w_str(&w, "<");
	w_str(&w, opname);
	w_str(&w, request ? ">\n" : "Response>\n");
	w_obj(&w, mi->type, msg->u.any, "mss", mi->element, mss_buf_str(&decl));
	w_str(&w, "</");
	w_str(&w, opname);
	w_str(&w, request ? ">\n" : "Response>\n");
	w_envelope_end(&w);
	mss_buf_free(&decl);
	if (w.failed == 0 && mss_buf_add(out, mss_buf_str(&scratch), mss_buf_len(&scratch)) != 0)
		w.failed = 1;
	mss_buf_free(&scratch);
	if (w.failed == 2)
		return -1;
	if (w.failed)
		return mss_err_set(err, MSS_INTERNAL_ERROR, 0, "Message too large");
	return 0;
}
