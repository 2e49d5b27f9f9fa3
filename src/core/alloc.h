/*
 * alloc.h: the project's allocation entry points.
 *
 * All project code allocates through these so that the torture build
 * (meson -Dtorture=true) can fail the Nth allocation and prove every
 * caller cleans up (house rule R17). In normal builds they are thin
 * wrappers. dd_free(NULL) is a no-op; dd_freezero() wipes before freeing
 * (for keys, tokens and anything else secret).
 */
#ifndef DD_CORE_ALLOC_H
#define DD_CORE_ALLOC_H

#include <stddef.h>

void *dd_malloc(size_t n);
void *dd_calloc(size_t count, size_t size);
void *dd_realloc(void *p, size_t n);
/* Caller frees with dd_free(). NULL on allocation failure. */
char *dd_strdup(const char *s);
/* Copies n bytes and NUL-terminates. Caller frees with dd_free(). */
char *dd_strndup(const char *s, size_t n);
void dd_free(void *p);
void dd_freezero(void *p, size_t n);

/*
 * Room for at least need elements of elem bytes in the array v of *cap
 * elements: v itself when it fits, else v grown by doubling (to first
 * when empty) with *cap updated. NULL when the allocation fails or the
 * size would overflow; then v and *cap are untouched (the caller still
 * owns v).
 */
void *dd_grow(void *v, size_t *cap, size_t need, size_t elem, size_t first);

/*
 * Torture hook (only in -Dtorture builds; otherwise these do nothing and
 * dd_alloc_count() returns 0): fail the nth allocation from now on
 * (1-based; 0 disables), and count allocations since the last arm.
 */
void dd_alloc_fail_at(unsigned long nth);
unsigned long dd_alloc_count(void);

#endif
