/*
 * teststore.h - what the SQLite store tests (test_store.c,
 * test_store_registry.c) set up alike (header-only, static): one
 * mkdtemp() directory per run (ts_dir), one database file per test under
 * it (sqlite:<ts_dir>/<name>.db), and a raw sqlite3 connection for the
 * checks that go around the store (schema, constraints, row counts).
 */
#ifndef MSSP_TESTSTORE_H
#define MSSP_TESTSTORE_H

#include "testutil.h"
#include "testdir.h"

#include <sqlite3.h>

#include "store/store.h"

/* The run's directory: made by ts_setup, removed by ts_teardown. */
static char ts_dir[256];

static inline int
ts_setup(const char *name)
{
	return td_make(ts_dir, sizeof(ts_dir), name);
}

static inline int
ts_teardown(void **state)
{
	(void)state;
	td_remove(ts_dir);
	return 0;
}

/* The store URI of database `name`. */
static inline void
ts_db_uri(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "sqlite:%s/%s.db", ts_dir, name);
}

/* store_open of database `name`; fails the test if it cannot. */
static inline struct store *
ts_must_open(const char *name, unsigned flags)
{
	struct store_err err = { 0 };
	char uri[512];
	struct store *s;

	ts_db_uri(uri, sizeof(uri), name);
	s = store_open(uri, flags, &err);
	if (s == NULL)
		fail_msg("store_open %s: %d %s", uri, err.status, err.detail);
	return s;
}

/* An independent sqlite3 connection to database `name` (read-write, 5 s
 * busy timeout, SQLite's defaults otherwise). */
static inline sqlite3 *
ts_raw_open(const char *name)
{
	char path[512];
	sqlite3 *db = NULL;

	snprintf(path, sizeof(path), "%s/%s.db", ts_dir, name);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

/* The first column of the first row of `sql` as text ("" if none). */
static inline void
ts_raw_text(sqlite3 *db, const char *sql, char *buf, size_t len)
{
	sqlite3_stmt *st = NULL;

	buf[0] = '\0';
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
		snprintf(buf, len, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
}

/* The same, as a number (a COUNT(*)). */
static inline long
ts_raw_count(sqlite3 *db, const char *sql)
{
	char buf[32];

	ts_raw_text(db, sql, buf, sizeof(buf));
	return strtol(buf, NULL, 10);
}

#endif
