/*
 * test_push.c - the local push provider: a real UDP socket on loopback
 * receives the wake datagram; addresses and ids it must refuse; the strict
 * parser mss-phone uses on what it receives.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "roles/push.h"
#include "util/limits.h"

#define LIT(s) (s), (sizeof(s) - 1)

/* A bound UDP socket of family `af` on loopback; its port in *port. */
static int
udp_listener(int af, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct timeval tv = { 3, 0 };
	int fd = socket(af, SOCK_DGRAM, 0);

	if (fd < 0)
		return -1;
	memset(&ss, 0, sizeof(ss));
	if (af == AF_INET) {
		struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;

		v4->sin_family = AF_INET;
		v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*v4);
	} else {
		struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;

		v6->sin6_family = AF_INET6;
		v6->sin6_addr = in6addr_loopback;
		len = sizeof(*v6);
	}
	if (bind(fd, (struct sockaddr *)&ss, len) != 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(af == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
				    : ((struct sockaddr_in6 *)&ss)->sin6_port);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void
wake_and_receive(int af, const char *addr)
{
	uint16_t port = 0;
	int fd = udp_listener(af, &port);
	struct push_provider *p;
	char buf[256], id[MSSP_KEYSTORE_MAX_ID + 1];
	ssize_t n;

	if (fd < 0 && af == AF_INET6) {
		skip(); /* no IPv6 loopback here */
		return;
	}
	assert_true(fd >= 0);
	p = push_local_new(addr, port);
	assert_non_null(p);
	assert_string_equal(p->pp_name, "local");

	assert_int_equal(p->pp_wake(p, "dev-1", "token"), 0);
	n = recv(fd, buf, sizeof(buf), 0);
	assert_int_equal(n, (ssize_t)strlen("mssp-wake 1 dev-1\n"));
	assert_memory_equal(buf, "mssp-wake 1 dev-1\n", (size_t)n);
	assert_int_equal(push_local_parse(buf, (size_t)n, id, sizeof(id)), 0);
	assert_string_equal(id, "dev-1");

	/* the whole id alphabet, at the longest length, without a token */
	{
		char longid[MSSP_KEYSTORE_MAX_ID + 1];

		memset(longid, 'a', MSSP_KEYSTORE_MAX_ID);
		memcpy(longid, "Az09._:+@-", 10);
		longid[MSSP_KEYSTORE_MAX_ID] = '\0';
		assert_int_equal(p->pp_wake(p, longid, NULL), 0);
		n = recv(fd, buf, sizeof(buf), 0);
		assert_true(n > 0);
		assert_int_equal(push_local_parse(buf, (size_t)n, id, sizeof(id)), 0);
		assert_string_equal(id, longid);
	}

	/* ids it will not put on the wire */
	assert_int_equal(p->pp_wake(p, "", NULL), -1);
	assert_int_equal(p->pp_wake(p, "dev 1", NULL), -1);
	assert_int_equal(p->pp_wake(p, "dev-1\nmssp-wake 1 other", NULL), -1);
	assert_int_equal(p->pp_wake(p, NULL, NULL), -1);
	{
		char toolong[MSSP_KEYSTORE_MAX_ID + 2];

		memset(toolong, 'a', sizeof(toolong) - 1);
		toolong[sizeof(toolong) - 1] = '\0';
		assert_int_equal(p->pp_wake(p, toolong, NULL), -1);
	}
	push_free(p);
	close(fd);
}

static void
test_wake_ipv4(void **state)
{
	(void)state;
	wake_and_receive(AF_INET, "127.0.0.1");
}

static void
test_wake_ipv6(void **state)
{
	(void)state;
	wake_and_receive(AF_INET6, "::1");
}

/* A phone that is not listening: the wake is still "handed over" (best
 * effort), and does not poison the next one. */
static void
test_wake_nobody_listening(void **state)
{
	uint16_t port = 0;
	int fd = udp_listener(AF_INET, &port);
	struct push_provider *p;

	(void)state;
	assert_true(fd >= 0);
	close(fd); /* the port is now (most likely) closed */
	p = push_local_new("127.0.0.1", port);
	assert_non_null(p);
	assert_int_equal(p->pp_wake(p, "dev-1", NULL), 0);
	usleep(20 * 1000); /* let an ICMP port-unreachable come back */
	assert_int_equal(p->pp_wake(p, "dev-1", NULL), 0);
	push_free(p);
}

static void
test_new_refusals(void **state)
{
	(void)state;
	assert_null(push_local_new("10.1.2.3", 9000));	  /* not loopback */
	assert_null(push_local_new("0.0.0.0", 9000));
	assert_null(push_local_new("::", 9000));
	assert_null(push_local_new("2001:db8::1", 9000));
	assert_null(push_local_new("localhost", 9000)); /* numeric only */
	assert_null(push_local_new("127.0.0.1:9000", 9000));
	assert_null(push_local_new("", 9000));
	assert_null(push_local_new(NULL, 9000));
	assert_null(push_local_new("127.0.0.1", 0));
	push_free(NULL);
	/* all of 127/8 is loopback */
	{
		struct push_provider *p = push_local_new("127.1.2.3", 9000);

		assert_non_null(p);
		push_free(p);
	}
}

static void
test_parse(void **state)
{
	char id[MSSP_KEYSTORE_MAX_ID + 1];
	char small[4];

	(void)state;
	assert_int_equal(push_local_parse(LIT("mssp-wake 1 abc\n"), id, sizeof(id)), 0);
	assert_string_equal(id, "abc");
	assert_int_equal(push_local_parse(LIT("mssp-wake 1 a\n"), id, sizeof(id)), 0);
	assert_string_equal(id, "a");
	/* exactly fitting the caller's buffer, and one byte short */
	assert_int_equal(push_local_parse(LIT("mssp-wake 1 abc\n"), small, sizeof(small)), 0);
	assert_string_equal(small, "abc");
	assert_int_equal(push_local_parse(LIT("mssp-wake 1 abcd\n"), small, sizeof(small)), -1);

	/* refusals */
	assert_int_equal(push_local_parse(LIT("mssp-wake 1 abc"), id, sizeof(id)), -1);
	assert_int_equal(push_local_parse(LIT("mssp-wake 1 abc\r\n"), id, sizeof(id)), -1);
	assert_int_equal(push_local_parse(LIT("mssp-wake 1 abc\n\n"), id, sizeof(id)), -1);
	assert_int_equal(push_local_parse(LIT("mssp-wake 1 abc\nx"), id, sizeof(id)), -1);
	assert_int_equal(push_local_parse(LIT("mssp-wake 1 \n"), id, sizeof(id)), -1);
	assert_int_equal(push_local_parse(LIT("mssp-wake 1 a b\n"), id, sizeof(id)), -1);
	assert_int_equal(push_local_parse(LIT("mssp-wake 1  ab\n"), id, sizeof(id)), -1);
	assert_int_equal(push_local_parse(LIT("mssp-wake 1 a\0b\n"), id, sizeof(id)), -1);
	assert_int_equal(push_local_parse(LIT("mssp-wake 2 abc\n"), id, sizeof(id)), -1);
	assert_int_equal(push_local_parse(LIT("mssp-wake 10 abc\n"), id, sizeof(id)), -1);
	assert_int_equal(push_local_parse(LIT("MSSP-WAKE 1 abc\n"), id, sizeof(id)), -1);
	assert_int_equal(push_local_parse(LIT(" mssp-wake 1 abc\n"), id, sizeof(id)), -1);
	assert_int_equal(push_local_parse(LIT("mssp-wake 1 ab/c\n"), id, sizeof(id)), -1);
	assert_int_equal(push_local_parse(LIT("mssp-wake 1 \xc3\xa9\n"), id, sizeof(id)), -1);
	assert_int_equal(push_local_parse(LIT(""), id, sizeof(id)), -1);
	assert_int_equal(push_local_parse(LIT("\n"), id, sizeof(id)), -1);
	assert_int_equal(push_local_parse(NULL, 5, id, sizeof(id)), -1);
	assert_int_equal(push_local_parse(LIT("mssp-wake 1 abc\n"), NULL, 10), -1);
	assert_int_equal(push_local_parse(LIT("mssp-wake 1 abc\n"), id, 0), -1);
	{
		char d[64 + MSSP_KEYSTORE_MAX_ID];
		int n;

		memset(id, 'a', MSSP_KEYSTORE_MAX_ID);
		id[MSSP_KEYSTORE_MAX_ID] = '\0';
		n = snprintf(d, sizeof(d), "mssp-wake 1 %s\n", id);
		assert_int_equal(push_local_parse(d, (size_t)n, id, sizeof(id)), 0);
		/* one character over the id cap */
		n = snprintf(d, sizeof(d), "mssp-wake 1 %sa\n", id);
		assert_int_equal(push_local_parse(d, (size_t)n, id, sizeof(id)), -1);
	}
	/* a refusal leaves nothing half-written */
	memcpy(id, "keep", 5);
	assert_int_equal(push_local_parse(LIT("mssp-wake 1 a b\n"), id, sizeof(id)), -1);
	assert_string_equal(id, "keep");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wake_ipv4),
		cmocka_unit_test(test_wake_ipv6),
		cmocka_unit_test(test_wake_nobody_listening),
		cmocka_unit_test(test_new_refusals),
		cmocka_unit_test(test_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
