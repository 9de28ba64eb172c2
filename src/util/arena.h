/*
 * arena.h - bounded bump allocator for one message.
 *
 * A decoded message is a tree of small objects that all die together; an
 * arena makes freeing it one call and puts a hard cap on the memory one
 * message may use (style.md habit 5: every buffer has a cap).
 *
 * Ownership: the arena owns every block it hands out; blocks are never freed
 * one by one.  mss_arena_free() releases all of them.
 */
#ifndef MSSP_UTIL_ARENA_H
#define MSSP_UTIL_ARENA_H

#include <stddef.h>

struct mss_arena;

/* New arena that will hand out at most `cap` bytes in total.  NULL on
 * allocation failure. */
struct mss_arena *mss_arena_new(size_t cap);
/* Releases the arena and every block.  Accepts NULL. */
void mss_arena_free(struct mss_arena *a);
/* The same, after zeroing every byte handed out (the arena held secrets:
 * a configuration file with a channel key or PIN). */
void mss_arena_wipe_free(struct mss_arena *a);
/* `size` zeroed bytes aligned for any type; NULL when the cap is reached or
 * memory is short. */
void *mss_arena_alloc(struct mss_arena *a, size_t size);
/* NUL-terminated copy of `len` bytes of `s` (which need not be terminated).
 * NULL on failure. */
char *mss_arena_strndup(struct mss_arena *a, const char *s, size_t len);
char *mss_arena_strdup(struct mss_arena *a, const char *s);
/* Bytes handed out so far (for tests and metrics). */
size_t mss_arena_used(const struct mss_arena *a);

#endif
