/*
 * push.h - the push-provider interface: wake a phone app that is not
 * connected to the AFE, so that it connects and receives its prompt.
 *
 * The interface is what APNS and FCM (HTTP/2 with a provider token or a
 * service-account JWT, one request per wake, a device token per app
 * install) need: a device id, the device's push token from its record,
 * and an asynchronous, best-effort send whose result is only logged (the
 * transaction's own TimeOut covers a wake that never arrives).
 *
 * The built-in provider "local" sends one UDP datagram
 *     "mssp-wake 1 <device_id>\n"
 * to a configured loopback address and port, where mss-phone listens
 * (--push-port): the stand-in for a mobile OS push service on one machine.
 *
 * Threads: pp_wake may be called from any thread (it must not block for
 * long: UDP, or a queue to an HTTP/2 client).  Ownership: arguments
 * borrowed for the call.
 */
#ifndef MSSP_ROLES_PUSH_H
#define MSSP_ROLES_PUSH_H

#include <stddef.h>
#include <stdint.h>

struct push_provider {
	const char *pp_name;
	/* 0 when handed to the provider, -1 when it could not be. */
	int (*pp_wake)(struct push_provider *p, const char *device_id, const char *push_token);
	void (*pp_free)(struct push_provider *p);
};

/* The local provider (numeric loopback address).  NULL on error. */
struct push_provider *push_local_new(const char *addr, uint16_t port);
/* Parse a wake datagram: 0 with the device id copied (cap bytes), -1 when
 * it is not one. */
int push_local_parse(const char *dgram, size_t len, char *device_id, size_t cap);
void push_free(struct push_provider *p); /* accepts NULL */

#endif
