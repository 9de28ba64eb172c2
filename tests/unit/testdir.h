/*
 * testdir.h - a test's scratch directory under /tmp (header-only, static).
 */
#ifndef MSSP_TESTDIR_H
#define MSSP_TESTDIR_H

#include <ftw.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* dir = a new, private (0700) /tmp/<name>.XXXXXX; 0, or -1 as cmocka
 * setups return it. */
static inline int
td_make(char *dir, size_t cap, const char *name)
{
	int n = snprintf(dir, cap, "/tmp/%s.XXXXXX", name);

	if (n < 0 || (size_t)n >= cap)
		return -1;
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static inline int
td_remove_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/* dir and everything below it; links are removed, never followed.  0, or
 * -1 if something could not be removed. */
static inline int
td_remove(const char *dir)
{
	return nftw(dir, td_remove_one, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

#endif
