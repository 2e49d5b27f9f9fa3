#include "core/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#ifdef DD_TORTURE
/* Test-build only state; never compiled into the shipped binary. */
static unsigned long torture_nth;
static unsigned long torture_count;

static int torture_should_fail(void)
{
	torture_count++;
	return torture_nth != 0 && torture_count == torture_nth;
}

void dd_alloc_fail_at(unsigned long nth)
{
	torture_nth = nth;
	torture_count = 0;
}

unsigned long dd_alloc_count(void)
{
	return torture_count;
}
#else
static int torture_should_fail(void)
{
	return 0;
}

void dd_alloc_fail_at(unsigned long nth)
{
	(void)nth;
}

unsigned long dd_alloc_count(void)
{
	return 0;
}
#endif

void *dd_malloc(size_t n)
{
	if (torture_should_fail())
		return NULL;
	return malloc(n ? n : 1);
}

void *dd_calloc(size_t count, size_t size)
{
	if (torture_should_fail())
		return NULL;
	if (count == 0 || size == 0)
		count = size = 1;
	return calloc(count, size);
}

void *dd_realloc(void *p, size_t n)
{
	if (torture_should_fail())
		return NULL;
	return realloc(p, n ? n : 1);
}

void *dd_grow(void *v, size_t *cap, size_t need, size_t elem, size_t first)
{
	size_t c = *cap ? *cap : first ? first : 1;
	void *nv;

	if (need <= *cap)
		return v;
	while (c < need) {
		if (c > SIZE_MAX / 2)
			return NULL;
		c *= 2;
	}
	if (elem != 0 && c > SIZE_MAX / elem)
		return NULL;
	nv = dd_realloc(v, c * elem);
	if (nv != NULL)
		*cap = c;
	return nv;
}

char *dd_strndup(const char *s, size_t n)
{
	char *d = dd_malloc(n + 1);

	if (d == NULL)
		return NULL;
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

char *dd_strdup(const char *s)
{
	return dd_strndup(s, strlen(s));
}

void dd_free(void *p)
{
	free(p);
}

void dd_freezero(void *p, size_t n)
{
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, n);
	free(p);
}
