#include "auth/replay.h"

#include <string.h>

#include "core/alloc.h"
#include "core/strutil.h"

/*
 * Layout: separate chaining in a power-of-two bucket array that doubles
 * while the set fills (load at most 1), plus a binary min-heap on
 * expires_at so expired ids leave in O(log n) each, without scanning.
 * One allocation per id (node and bytes together).
 */

#define MIN_BUCKETS 16u
#define MAX_CAPACITY ((size_t)1 << 26)

typedef struct node {
	struct node *next;      /* in its bucket */
	int64_t expires_at;
	uint64_t hash;
	size_t heap_at;         /* index in r->heap */
	size_t len;
	char id[];
} node;

struct dd_replay {
	uint64_t k0, k1;        /* SipHash key, random per set */
	node **buckets;
	size_t n_buckets;       /* power of two */
	size_t max_buckets;     /* power of two >= capacity */
	node **heap;            /* min-heap on expires_at; n entries */
	size_t heap_alloc;
	size_t n;
	size_t capacity;
};

/* ---- SipHash-2-4 (Aumasson and Bernstein, 2012) ---- */

static uint64_t rotl(uint64_t x, unsigned b)
{
	return (x << b) | (x >> (64 - b));
}

static uint64_t load_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void sip_round(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = rotl(v[1], 13);
	v[1] ^= v[0];
	v[0] = rotl(v[0], 32);
	v[2] += v[3];
	v[3] = rotl(v[3], 16);
	v[3] ^= v[2];
	v[0] += v[3];
	v[3] = rotl(v[3], 21);
	v[3] ^= v[0];
	v[2] += v[1];
	v[1] = rotl(v[1], 17);
	v[1] ^= v[2];
	v[2] = rotl(v[2], 32);
}

static uint64_t siphash24(uint64_t k0, uint64_t k1, const void *data,
			  size_t len)
{
	const uint8_t *p = data;
	uint64_t v[4] = {
		k0 ^ 0x736f6d6570736575ull, k1 ^ 0x646f72616e646f6dull,
		k0 ^ 0x6c7967656e657261ull, k1 ^ 0x7465646279746573ull,
	};
	uint64_t m, last = (uint64_t)(len & 0xff) << 56;
	size_t whole = len - len % 8;

	for (size_t i = 0; i < whole; i += 8) {
		m = load_le64(p + i);
		v[3] ^= m;
		sip_round(v);
		sip_round(v);
		v[0] ^= m;
	}
	for (size_t i = whole; i < len; i++)
		last |= (uint64_t)p[i] << (8 * (i - whole));
	v[3] ^= last;
	sip_round(v);
	sip_round(v);
	v[0] ^= last;
	v[2] ^= 0xff;
	for (unsigned i = 0; i < 4; i++)
		sip_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* ---- heap ---- */

static void heap_set(dd_replay *r, size_t i, node *e)
{
	r->heap[i] = e;
	e->heap_at = i;
}

static void heap_up(dd_replay *r, size_t i)
{
	node *e = r->heap[i];
	size_t parent;

	while (i > 0) {
		parent = (i - 1) / 2;
		if (r->heap[parent]->expires_at <= e->expires_at)
			break;
		heap_set(r, i, r->heap[parent]);
		i = parent;
	}
	heap_set(r, i, e);
}

static void heap_down(dd_replay *r, size_t i)
{
	node *e = r->heap[i];
	size_t child;

	for (;;) {
		child = 2 * i + 1;
		if (child >= r->n)
			break;
		if (child + 1 < r->n && r->heap[child + 1]->expires_at <
					r->heap[child]->expires_at)
			child++;
		if (e->expires_at <= r->heap[child]->expires_at)
			break;
		heap_set(r, i, r->heap[child]);
		i = child;
	}
	heap_set(r, i, e);
}

/* ---- table ---- */

static node **bucket_of(const dd_replay *r, uint64_t hash)
{
	return &r->buckets[hash & (r->n_buckets - 1)];
}

/* Removes the heap's top (the earliest expiry) from both structures. */
static void drop_first(dd_replay *r)
{
	node *e = r->heap[0], **pp = bucket_of(r, e->hash);

	while (*pp != e)
		pp = &(*pp)->next;
	*pp = e->next;
	r->n--;
	if (r->n > 0) {
		heap_set(r, 0, r->heap[r->n]);
		heap_down(r, 0);
	}
	dd_free(e);
}

/* Doubles the bucket array; on NOMEM the old one stays in use. */
static dd_err_t grow(dd_replay *r)
{
	size_t nb = r->n_buckets * 2;
	node **b, *e, *next;

	b = dd_calloc(nb, sizeof *b);
	if (b == NULL)
		return DD_ERR_NOMEM;
	for (size_t i = 0; i < r->n_buckets; i++) {
		for (e = r->buckets[i]; e != NULL; e = next) {
			next = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	}
	dd_free(r->buckets);
	r->buckets = b;
	r->n_buckets = nb;
	return DD_OK;
}

/* Room for one more heap slot; the heap grows with the set. */
static dd_err_t heap_reserve(dd_replay *r)
{
	size_t na;
	node **h;

	if (r->n < r->heap_alloc)
		return DD_OK;
	na = r->heap_alloc * 2;
	if (na > r->capacity)
		na = r->capacity;
	h = dd_realloc(r->heap, na * sizeof *h);
	if (h == NULL)
		return DD_ERR_NOMEM;
	r->heap = h;
	r->heap_alloc = na;
	return DD_OK;
}

/* ---- public ---- */

dd_err_t dd_replay_new(size_t capacity, dd_replay **out)
{
	uint8_t key[16];
	dd_replay *r = NULL;
	dd_err_t rc;

	*out = NULL;
	if (capacity == 0 || capacity > MAX_CAPACITY)
		return DD_ERR_INVALID;
	r = dd_calloc(1, sizeof *r);
	if (r == NULL)
		return DD_ERR_NOMEM;
	r->capacity = capacity;
	r->max_buckets = MIN_BUCKETS;
	while (r->max_buckets < capacity)
		r->max_buckets *= 2;
	r->n_buckets = MIN_BUCKETS;
	r->heap_alloc = capacity < MIN_BUCKETS ? capacity : MIN_BUCKETS;
	rc = DD_ERR_NOMEM;
	r->buckets = dd_calloc(r->n_buckets, sizeof *r->buckets);
	r->heap = dd_calloc(r->heap_alloc, sizeof *r->heap);
	if (r->buckets == NULL || r->heap == NULL)
		goto out;
	rc = dd_random_bytes(key, sizeof key);
	if (rc)
		goto out;
	r->k0 = load_le64(key);
	r->k1 = load_le64(key + 8);
	*out = r;
	r = NULL; /* transferred */
out:
	dd_replay_free(r);
	return rc;
}

void dd_replay_free(dd_replay *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++)
		dd_free(r->heap[i]);
	dd_free(r->heap);
	dd_free(r->buckets);
	dd_free(r);
}

dd_err_t dd_replay_use(dd_replay *r, const char *id, size_t len,
		       int64_t expires_at, int64_t now)
{
	uint64_t hash;
	node *e, **head;
	dd_err_t rc;

	if (len == 0 || len > DD_REPLAY_MAX_ID)
		return DD_ERR_INVALID;
	while (r->n > 0 && r->heap[0]->expires_at <= now)
		drop_first(r);
	hash = siphash24(r->k0, r->k1, id, len);
	for (e = *bucket_of(r, hash); e != NULL; e = e->next) {
		if (e->hash == hash && e->len == len &&
		    memcmp(e->id, id, len) == 0)
			return DD_ERR_EXISTS;
	}
	/* Nothing to remember: it could not be replayed anyway. */
	if (expires_at <= now)
		return DD_OK;
	if (r->n >= r->capacity)
		return DD_ERR_BUSY;
	if (r->n >= r->n_buckets && r->n_buckets < r->max_buckets) {
		rc = grow(r);
		if (rc)
			return rc;
	}
	rc = heap_reserve(r);
	if (rc)
		return rc;
	e = dd_malloc(sizeof *e + len);
	if (e == NULL)
		return DD_ERR_NOMEM;
	e->expires_at = expires_at;
	e->hash = hash;
	e->len = len;
	memcpy(e->id, id, len);
	head = bucket_of(r, hash);
	e->next = *head;
	*head = e;
	heap_set(r, r->n, e);
	r->n++;
	heap_up(r, r->n - 1);
	return DD_OK;
}

size_t dd_replay_count(const dd_replay *r)
{
	return r->n;
}
