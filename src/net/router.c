#include "net/router.h"

#include <string.h>

#include "core/alloc.h"
#include "core/strutil.h"

/* Two score bits per segment must fit in 64 bits (see score()). */
#define MAX_PATTERN_SEGMENTS 30

enum seg_kind { SEG_LITERAL, SEG_PARAM, SEG_REST };

struct seg {
	enum seg_kind kind;
	const char *text; /* literal text or parameter name (not terminated) */
	size_t len;
};

struct route {
	const char *pattern;
	unsigned methods;
	const void *user;
	size_t nseg;
	struct seg segs[MAX_PATTERN_SEGMENTS];
};

struct dd_router {
	struct route *routes;
	size_t n, alloc;
};

/* A decoded request path, split without copying further. */
struct path {
	size_t nseg;
	struct {
		char *p;
		size_t len;
	} segs[DD_ROUTER_MAX_SEGMENTS];
};

dd_router *dd_router_new(void)
{
	return dd_calloc(1, sizeof(dd_router));
}

void dd_router_free(dd_router *r)
{
	if (r == NULL)
		return;
	dd_free(r->routes);
	dd_free(r);
}

static int is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_';
}

static dd_err_t parse_segment(const char *s, size_t n, int last, struct seg *out)
{
	if (n >= 2 && s[0] == '{' && s[n - 1] == '}') {
		size_t name_len = n - 2;
		out->kind = SEG_PARAM;
		if (name_len > 0 && s[n - 2] == '*') {
			if (!last)
				return DD_ERR_INVALID;
			out->kind = SEG_REST;
			name_len--;
		}
		if (name_len == 0)
			return DD_ERR_INVALID;
		for (size_t i = 0; i < name_len; i++) {
			if (!is_name_char(s[1 + i]))
				return DD_ERR_INVALID;
		}
		out->text = s + 1;
		out->len = name_len;
		return DD_OK;
	}
	if (n == 0 || memchr(s, '{', n) != NULL || memchr(s, '}', n) != NULL)
		return DD_ERR_INVALID;
	out->kind = SEG_LITERAL;
	out->text = s;
	out->len = n;
	return DD_OK;
}

static dd_err_t parse_pattern(const char *pattern, struct route *rt)
{
	const char *p = pattern;
	size_t nparams = 0;

	if (p[0] != '/')
		return DD_ERR_INVALID;
	rt->nseg = 0;
	if (strcmp(p, "/") == 0)
		return DD_OK;
	while (*p == '/') {
		const char *start = p + 1;
		const char *end = strchr(start, '/');
		size_t n = end ? (size_t)(end - start) : strlen(start);
		dd_err_t rc;

		if (rt->nseg == MAX_PATTERN_SEGMENTS)
			return DD_ERR_INVALID;
		rc = parse_segment(start, n, end == NULL, &rt->segs[rt->nseg]);
		if (rc)
			return rc;
		if (rt->segs[rt->nseg].kind != SEG_LITERAL &&
		    ++nparams > DD_ROUTER_MAX_PARAMS)
			return DD_ERR_INVALID;
		rt->nseg++;
		p = start + n;
	}
	return DD_OK;
}

static int same_shape(const struct route *a, const struct route *b)
{
	if (a->nseg != b->nseg)
		return 0;
	for (size_t i = 0; i < a->nseg; i++) {
		const struct seg *x = &a->segs[i], *y = &b->segs[i];
		if (x->kind != y->kind)
			return 0;
		if (x->kind == SEG_LITERAL &&
		    (x->len != y->len || memcmp(x->text, y->text, x->len) != 0))
			return 0;
	}
	return 1;
}

dd_err_t dd_router_add(dd_router *r, unsigned methods, const char *pattern,
		       const void *route)
{
	struct route rt;
	dd_err_t rc;

	if (methods == 0)
		return DD_ERR_INVALID;
	memset(&rt, 0, sizeof rt);
	rc = parse_pattern(pattern, &rt);
	if (rc)
		return rc;
	if (methods & DD_M_GET)
		methods |= DD_M_HEAD;
	for (size_t i = 0; i < r->n; i++) {
		if (same_shape(&r->routes[i], &rt) && (r->routes[i].methods & methods))
			return DD_ERR_INVALID;
	}
	if (r->n == r->alloc) {
		size_t next = r->alloc ? r->alloc * 2 : 16;
		struct route *p = dd_realloc(r->routes, next * sizeof *p);
		if (p == NULL)
			return DD_ERR_NOMEM;
		r->routes = p;
		r->alloc = next;
	}
	rt.pattern = pattern;
	rt.methods = methods;
	rt.user = route;
	r->routes[r->n++] = rt;
	return DD_OK;
}

/* Decodes one segment in place; returns its new length or -1. */
static long decode_segment(char *s, size_t n)
{
	size_t w;

	/* Decoding only shrinks, so in place is safe. */
	if (dd_pct_decode(s, n, 0, s, &w) != DD_OK || memchr(s, '/', w) != NULL)
		return -1;
	if ((w == 1 && s[0] == '.') || (w == 2 && s[0] == '.' && s[1] == '.'))
		return -1;
	return (long)w;
}

/*
 * Splits raw into segments and decodes each in place, leaving '/'
 * between them (an encoded '/' was refused, so '/' is unambiguous).
 */
static dd_err_t split_path(char *buf, size_t len, struct path *out)
{
	size_t i = 1, w = 0;

	out->nseg = 0;
	if (len == 0 || buf[0] != '/')
		return DD_ERR_INVALID;
	if (len == 1)
		return DD_OK;
	while (i <= len) {
		size_t start = i, n;
		long dn;
		char *end = memchr(buf + i, '/', len - i);

		n = end ? (size_t)(end - (buf + i)) : len - i;
		if (out->nseg == DD_ROUTER_MAX_SEGMENTS)
			return DD_ERR_TOO_LARGE;
		dn = decode_segment(buf + start, n);
		if (dn < 0)
			return DD_ERR_INVALID;
		/* Compact left so decoded segments stay '/'-separated. */
		memmove(buf + w + 1, buf + start, (size_t)dn);
		buf[w] = '/';
		out->segs[out->nseg].p = buf + w + 1;
		out->segs[out->nseg].len = (size_t)dn;
		out->nseg++;
		w += 1 + (size_t)dn;
		i = start + n + 1;
	}
	buf[w] = '\0';
	return DD_OK;
}

/*
 * Scores a match: literals weigh more than parameters at each position,
 * earlier positions first, so the most specific route wins. 0 = no match.
 */
static unsigned long long score(const struct route *rt, const struct path *p)
{
	unsigned long long s = 1;
	size_t i;

	for (i = 0; i < rt->nseg; i++) {
		const struct seg *g = &rt->segs[i];
		if (g->kind == SEG_REST)
			return i < p->nseg ? s << 1 : 0;
		if (i >= p->nseg)
			return 0;
		if (g->kind == SEG_LITERAL) {
			if (g->len != p->segs[i].len ||
			    memcmp(g->text, p->segs[i].p, g->len) != 0)
				return 0;
			s = s << 2 | 2;
		} else {
			if (p->segs[i].len == 0)
				return 0;
			s = s << 2 | 1;
		}
	}
	return i == p->nseg ? s : 0;
}

static void capture(const struct route *rt, struct path *p, dd_route_match *m)
{
	m->nparams = 0;
	for (size_t i = 0; i < rt->nseg; i++) {
		const struct seg *g = &rt->segs[i];
		if (g->kind == SEG_LITERAL)
			continue;
		m->params[m->nparams].name = g->text;
		m->params[m->nparams].value = p->segs[i].p;
		m->nparams++;
		/* Terminate a single-segment value; a rest value runs to the end. */
		if (g->kind == SEG_PARAM)
			p->segs[i].p[p->segs[i].len] = '\0';
	}
}

dd_err_t dd_router_match(const dd_router *r, unsigned method, const char *path,
			 size_t path_len, dd_route_match *m)
{
	struct path p;
	const struct route *best = NULL;
	unsigned long long best_score = 0;
	dd_err_t rc;

	memset(m, 0, sizeof *m);
	m->storage = dd_strndup(path, path_len);
	if (m->storage == NULL)
		return DD_ERR_NOMEM;
	rc = split_path(m->storage, path_len, &p);
	if (rc)
		return rc;
	for (size_t i = 0; i < r->n; i++) {
		const struct route *rt = &r->routes[i];
		unsigned long long s = score(rt, &p);

		if (s == 0)
			continue;
		m->allow |= rt->methods;
		if ((rt->methods & method) && s > best_score) {
			best = rt;
			best_score = s;
		}
	}
	if (best == NULL)
		return m->allow ? DD_ERR_UNSUPPORTED : DD_ERR_NOT_FOUND;
	m->route = best->user;
	capture(best, &p, m);
	return DD_OK;
}

void dd_route_match_clear(dd_route_match *m)
{
	dd_free(m->storage);
	m->storage = NULL;
	m->nparams = 0;
}

const char *dd_route_param_get(const dd_route_match *m, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < m->nparams; i++) {
		const char *pn = m->params[i].name;
		if (strncmp(pn, name, n) == 0 && (pn[n] == '}' || pn[n] == '*'))
			return m->params[i].value;
	}
	return NULL;
}

static const struct {
	const char *name;
	unsigned bit;
} methods[] = {
	{"GET", DD_M_GET},     {"HEAD", DD_M_HEAD},     {"POST", DD_M_POST},
	{"PUT", DD_M_PUT},     {"DELETE", DD_M_DELETE}, {"PATCH", DD_M_PATCH},
	{"OPTIONS", DD_M_OPTIONS},
};

unsigned dd_method_bit(const char *name)
{
	for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
		if (strcmp(methods[i].name, name) == 0)
			return methods[i].bit;
	}
	return 0;
}

void dd_method_allow_str(unsigned mask, char *out, size_t out_len)
{
	size_t w = 0;

	if (out_len == 0)
		return;
	out[0] = '\0';
	for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
		size_t n = strlen(methods[i].name);
		if (!(mask & methods[i].bit))
			continue;
		if (w + n + 3 > out_len)
			break;
		if (w > 0) {
			memcpy(out + w, ", ", 2);
			w += 2;
		}
		memcpy(out + w, methods[i].name, n);
		w += n;
		out[w] = '\0';
	}
}
