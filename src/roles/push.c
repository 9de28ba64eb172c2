/*
 * push.c - the push-provider interface and its built-in "local" provider:
 * one UDP datagram "mssp-wake 1 <device_id>\n" to a loopback port where
 * mss-phone listens.
 *
 * Why UDP: a wake is best effort by design (push.h), so a datagram says
 * exactly that, needs no connection state, and never blocks the caller:
 * the socket is non-blocking and unconnected (an unconnected UDP socket
 * does not report an earlier ICMP "port unreachable" on a later send, so
 * one phone that is not listening does not fail the wake of the next).
 * Why loopback only: the datagram is unauthenticated; it is a stand-in for
 * a mobile OS push service on one machine, never a network protocol.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "roles/push.h"
#include "util/limits.h"

#define PUSH_PREFIX "mssp-wake 1 "

struct push_local {
	struct push_provider pl_base; /* first: the interface pointer */
	int pl_fd;
	struct sockaddr_storage pl_addr;
	socklen_t pl_addrlen;
};

/* Device id syntax (keystore): 1..MSSP_KEYSTORE_MAX_ID of [A-Za-z0-9._:+@-]. */
static bool
push_id_ok(const char *s, size_t len)
{
	if (len == 0 || len > MSSP_KEYSTORE_MAX_ID)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			continue;
		if (c == '\0' || strchr("._:+@-", c) == NULL)
			return false;
	}
	return true;
}

int
push_local_parse(const char *dgram, size_t len, char *device_id, size_t cap)
{
	size_t plen = sizeof(PUSH_PREFIX) - 1, idlen;

	if (dgram == NULL || device_id == NULL || len < plen + 2 ||
	    memcmp(dgram, PUSH_PREFIX, plen) != 0 || dgram[len - 1] != '\n')
		return -1;
	idlen = len - plen - 1;
	if (!push_id_ok(dgram + plen, idlen) || idlen + 1 > cap)
		return -1;
	memcpy(device_id, dgram + plen, idlen);
	device_id[idlen] = '\0';
	return 0;
}

static int
local_wake(struct push_provider *p, const char *device_id, const char *push_token)
{
	struct push_local *pl = (struct push_local *)p;
	char msg[MSSP_PUSH_MAX_DGRAM];
	size_t idlen;
	int n;
	ssize_t sent;

	(void)push_token; /* the local provider addresses the device by id */
	if (device_id == NULL)
		return -1;
	idlen = strlen(device_id);
	if (!push_id_ok(device_id, idlen))
		return -1;
	n = snprintf(msg, sizeof(msg), PUSH_PREFIX "%s\n", device_id);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return -1;
	do {
		sent = sendto(pl->pl_fd, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL,
			      (const struct sockaddr *)&pl->pl_addr, pl->pl_addrlen);
	} while (sent < 0 && errno == EINTR);
	return sent == (ssize_t)n ? 0 : -1;
}

static void
local_free(struct push_provider *p)
{
	struct push_local *pl = (struct push_local *)p;

	if (pl->pl_fd >= 0)
		close(pl->pl_fd);
	free(pl);
}

struct push_provider *
push_local_new(const char *addr, uint16_t port)
{
	struct push_local *pl;
	struct sockaddr_in *v4;
	struct sockaddr_in6 *v6;

	if (addr == NULL || port == 0)
		return NULL;
	pl = calloc(1, sizeof(*pl));
	if (pl == NULL)
		return NULL;
	pl->pl_fd = -1;
	v4 = (struct sockaddr_in *)&pl->pl_addr;
	v6 = (struct sockaddr_in6 *)&pl->pl_addr;
	if (inet_pton(AF_INET, addr, &v4->sin_addr) == 1) {
		/* 127.0.0.0/8 */
		if ((ntohl(v4->sin_addr.s_addr) >> 24) != 127)
			goto fail;
		v4->sin_family = AF_INET;
		v4->sin_port = htons(port);
		pl->pl_addrlen = sizeof(*v4);
	} else if (inet_pton(AF_INET6, addr, &v6->sin6_addr) == 1) {
		if (!IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr))
			goto fail;
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons(port);
		pl->pl_addrlen = sizeof(*v6);
	} else {
		goto fail;
	}
	pl->pl_fd = socket(pl->pl_addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (pl->pl_fd < 0)
		goto fail;
	pl->pl_base.pp_name = "local";
	pl->pl_base.pp_wake = local_wake;
	pl->pl_base.pp_free = local_free;
	return &pl->pl_base;
fail:
	local_free(&pl->pl_base);
	return NULL;
}

void
push_free(struct push_provider *p)
{
	if (p != NULL && p->pp_free != NULL)
		p->pp_free(p);
}
