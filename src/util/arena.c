#include "util/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/limits.h"

#define ARENA_BLOCK MSSP_MSG_ARENA_BLOCK
#define ARENA_ALIGN (sizeof(max_align_t))

struct arena_block {
	struct arena_block *next;
	size_t size;
	size_t used;
	max_align_t data[];
};

struct mss_arena {
	struct arena_block *head;
	size_t cap;
	size_t used;
};

struct mss_arena *
mss_arena_new(size_t cap)
{
	struct mss_arena *a = calloc(1, sizeof(*a));

	if (a != NULL)
		a->cap = cap;
	return a;
}

void
mss_arena_free(struct mss_arena *a)
{
	struct arena_block *b, *next;

	if (a == NULL)
		return;
	for (b = a->head; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	free(a);
}

void
mss_arena_wipe_free(struct mss_arena *a)
{
	struct arena_block *b;

	if (a == NULL)
		return;
	for (b = a->head; b != NULL; b = b->next)
		explicit_bzero(b->data, b->used);
	mss_arena_free(a);
}

void *
mss_arena_alloc(struct mss_arena *a, size_t size)
{
	struct arena_block *b;
	size_t want, bsize;
	void *p;

	if (size == 0)
		size = 1;
	if (size > SIZE_MAX - ARENA_ALIGN)
		return NULL;
	want = (size + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
	if (want > a->cap - a->used)
		return NULL;
	b = a->head;
	if (b == NULL || b->size - b->used < want) {
		bsize = want > ARENA_BLOCK ? want : ARENA_BLOCK;
		b = malloc(sizeof(*b) + bsize);
		if (b == NULL)
			return NULL;
		b->size = bsize;
		b->used = 0;
		b->next = a->head;
		a->head = b;
	}
	p = (char *)b->data + b->used;
	b->used += want;
	a->used += want;
	memset(p, 0, size);
	return p;
}

char *
mss_arena_strndup(struct mss_arena *a, const char *s, size_t len)
{
	char *p;

	if (s == NULL || len == SIZE_MAX)
		return NULL;
	p = mss_arena_alloc(a, len + 1);
	if (p == NULL)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *
mss_arena_strdup(struct mss_arena *a, const char *s)
{
	return s == NULL ? NULL : mss_arena_strndup(a, s, strlen(s));
}

size_t
mss_arena_used(const struct mss_arena *a)
{
	return a->used;
}
