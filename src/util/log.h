/*
 * log.h - structured log lines: one line per event, logfmt style
 *
 *   ts=2026-11-22T18:16:07.702Z node=node1 ev=tx.final tx=T943c... status=500
 *
 * on stderr (msspd's journal), written whole under a lock so lines of
 * several threads never interleave.  Values are written as given when
 * they are plain tokens, otherwise quoted with every byte outside
 * printable ASCII escaped (\xNN), so a value can never start a new line or
 * fake another field (P-29, log injection).  Never pass secrets, PINs, keys
 * or request content; MSISDNs go through log_msisdn() (P-28: masked).
 *
 * Threads: any.  Ownership: arguments borrowed for the call.
 */
#ifndef MSSP_UTIL_LOG_H
#define MSSP_UTIL_LOG_H

#include <stddef.h>

/* The node name put on every line (call once at start; copied). */
void log_set_node(const char *node);

/* One event: `ev` a static dotted tag, then `n` key/value pairs
 * (kv[0]=key, kv[1]=value, ...; a NULL value is skipped). */
void log_event(const char *ev, const char *const *kv, size_t n);

/* Convenience for up to four pairs: LOG_EV("tx.final", "tx", id, "status", s). */
#define LOG_EV(ev, ...)                                                                            \
	do {                                                                                       \
		const char *const log_kv_[] = {__VA_ARGS__};                                       \
		log_event((ev), log_kv_, sizeof log_kv_ / sizeof log_kv_[0] / 2);                  \
	} while (0)

/* "+35847****01": "+", the first five digits and the last two kept. */
void log_msisdn(const char *msisdn, char *out, size_t cap);

#endif
