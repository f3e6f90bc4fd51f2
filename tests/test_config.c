// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for core/config.c, the main thread's parser of command-line values: listen
 * addresses (IPv4, bracketed IPv6, localhost, loopback detection) and byte sizes with
 * K/M/G suffixes, including every malformed and out-of-range form. No resources.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/config.h"

static void expect_listen(const char *s, const char *host, uint16_t port, int is_loopback)
{
	struct lm_config_listen l;
	const char *why = NULL;
	int err;

	memset(&l, 0xa5, sizeof(l));
	err = lm_config_parse_listen(s, &l, &why);
	if (err)
		fail_msg("\"%s\": returned %d (%s), want 0", s, err, why ? why : "no reason");
	if (strcmp(l.host, host))
		fail_msg("\"%s\": host \"%.64s\", want \"%s\"", s, l.host, host);
	if (l.port != port)
		fail_msg("\"%s\": port %u, want %u", s, l.port, port);
	if (l.is_loopback != is_loopback)
		fail_msg("\"%s\": is_loopback %d, want %d", s, l.is_loopback, is_loopback);
}

static void expect_listen_rejected(const char *s)
{
	struct lm_config_listen l;
	const char *why = NULL;
	int err;

	err = lm_config_parse_listen(s, &l, &why);
	if (err != -EINVAL)
		fail_msg("\"%.80s\": returned %d, want -EINVAL", s, err);
	if (!why || !why[0])
		fail_msg("\"%.80s\": rejected without a reason in why", s);
}

static void test_config_listen_accepts(void **state)
{
	(void)state;
	expect_listen("127.0.0.1:8080", "127.0.0.1", 8080, 1);
	expect_listen("0.0.0.0:1", "0.0.0.0", 1, 0);
	expect_listen("[::1]:65535", "::1", 65535, 1);
	expect_listen("localhost:9000", "127.0.0.1", 9000, 1);
	expect_listen("10.1.2.3:80", "10.1.2.3", 80, 0);
	expect_listen("127.1.2.3:443", "127.1.2.3", 443, 1); /* all of 127.0.0.0/8 */
	expect_listen("126.255.255.255:2", "126.255.255.255", 2, 0);
	expect_listen("128.0.0.1:3", "128.0.0.1", 3, 0);
	expect_listen("[::]:8080", "::", 8080, 0);
	expect_listen("[2001:db8::1]:443", "2001:db8::1", 443, 0);
}

/* A long but valid spelling of ::1 still fits host[] and is loopback. */
static void test_config_listen_long_v6_loopback(void **state)
{
	const char *s = "[0000:0000:0000:0000:0000:0000:0000:0001]:9";
	struct lm_config_listen l;
	struct in6_addr a;
	const char *why = NULL;

	(void)state;
	memset(&l, 0xa5, sizeof(l));
	assert_int_equal(lm_config_parse_listen(s, &l, &why), 0);
	assert_non_null(memchr(l.host, '\0', sizeof(l.host)));
	assert_int_equal(inet_pton(AF_INET6, l.host, &a), 1);
	assert_memory_equal(&a, &in6addr_loopback, sizeof(a));
	assert_int_equal(l.port, 9);
	assert_int_equal(l.is_loopback, 1);
}

static void test_config_listen_rejects(void **state)
{
	static const char *const bad[] = {
	    "",
	    ":8080",
	    "127.0.0.1",
	    "127.0.0.1:",
	    "127.0.0.1:0",
	    "127.0.0.1:65536",
	    "127.0.0.1:99999999999999999999",
	    "127.0.0.1:80x",
	    "127.0.0.1:-1",
	    "127.0.0.1:+80",
	    "127.0.0.1: 80",
	    "300.1.1.1:80",
	    "1.2.3:80",
	    "::1:80",
	    "[::1]80",
	    "[::1]:",
	    "[::1]",
	    "[::1:80",
	    "[]:80",
	    "[zz::1]:80",
	    "example.com:80",
	    "localhost:0",
	    "localhost:",
	};
	char long_host[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_listen_rejected(bad[i]);

	/* Longer than host[] (which must not overflow) and not an address. */
	memset(long_host, 'a', 200);
	strcpy(long_host + 200, ":80");
	expect_listen_rejected(long_host);
	/* 200 characters that look like an address. */
	for (i = 0; i < 200; i++)
		long_host[i] = i % 2 ? '.' : '1';
	strcpy(long_host + 200, ":80");
	expect_listen_rejected(long_host);
	/* Bracketed and too long for any IPv6 spelling. */
	long_host[0] = '[';
	memset(long_host + 1, '0', 199);
	strcpy(long_host + 200, "]:80");
	expect_listen_rejected(long_host);
}

static void expect_size(const char *s, uint64_t max, uint64_t want)
{
	uint64_t v = 0xdeadbeef;
	int err;

	err = lm_config_parse_size(s, max, &v);
	if (err)
		fail_msg("size \"%s\" max %llu: returned %d, want 0", s, (unsigned long long)max,
			 err);
	if (v != want)
		fail_msg("size \"%s\": %llu, want %llu", s, (unsigned long long)v,
			 (unsigned long long)want);
}

static void expect_size_err(const char *s, uint64_t max, int want)
{
	uint64_t v = 0;
	int err;

	err = lm_config_parse_size(s, max, &v);
	if (err != want)
		fail_msg("size \"%s\" max %llu: returned %d, want %d", s, (unsigned long long)max,
			 err, want);
}

static void test_config_size_accepts(void **state)
{
	(void)state;
	expect_size("4096", UINT64_MAX, 4096);
	expect_size("1", UINT64_MAX, 1);
	expect_size("4K", UINT64_MAX, 4096);
	expect_size("4M", UINT64_MAX, 4ULL << 20);
	expect_size("1G", UINT64_MAX, 1ULL << 30);
	expect_size("16G", UINT64_MAX, 16ULL << 30);
	expect_size("17179869183G", UINT64_MAX, 17179869183ULL << 30);
	/* max is inclusive */
	expect_size("4096", 4096, 4096);
	expect_size("4K", 4096, 4096);
	expect_size("1G", 1ULL << 30, 1ULL << 30);
}

/* Every u64 is a valid size: the overflow check must not reject the top of the range. */
static void test_config_size_accepts_u64_top(void **state)
{
	(void)state;
	expect_size("18446744073709551609", UINT64_MAX, 18446744073709551609ULL);
	expect_size("18446744073709551610", UINT64_MAX, 18446744073709551610ULL);
	expect_size("18446744073709551615", UINT64_MAX, UINT64_MAX);
}

static void test_config_size_rejects_malformed(void **state)
{
	static const char *const bad[] = {
	    "", "M", "K", "4X", "-1", "+4", "4KB", "4KK", "K4", "4 K", " 4", "4 ", "0x10", "1.5M",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_size_err(bad[i], UINT64_MAX, -EINVAL);
}

static void test_config_size_rejects_range(void **state)
{
	(void)state;
	/* Overflow of u64, in the digits and in the suffix multiplication. */
	expect_size_err("18446744073709551616", UINT64_MAX, -ERANGE);
	expect_size_err("99999999999999999999999", UINT64_MAX, -ERANGE);
	expect_size_err("17179869184G", UINT64_MAX, -ERANGE);
	expect_size_err("18014398509481984K", UINT64_MAX, -ERANGE);
	expect_size_err("18446744073709551615K", UINT64_MAX, -ERANGE);
	/* Above max. */
	expect_size_err("4097", 4096, -ERANGE);
	expect_size_err("5K", 4096, -ERANGE);
	expect_size_err("2G", 1ULL << 30, -ERANGE);
	expect_size_err("1M", (1ULL << 20) - 1, -ERANGE);
}

static void test_config_host_checks(void **state)
{
	static const char *const ok[] = { "lifemon.example", "lifemon.example:8443", "[::1]",
					  "[fe80::1]:8080",  "192.168.1.5",	    "a_b-c.d",
					  "h:65535" };
	static const char *const bad[] = { "",	       ":8080",	       "x:",	     "x:0",
					   "x:08080",  "x:65536",      "x:80x",	     "a b",
					   "a/b",      "x@y",	       "[::1",	     "[nope]",
					   "[::1]x",   "[::1]:",       "http://x",   "x:80:80" };
	char big[LM_CONFIG_HOST_MAX + 2];
	const char *why;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(lm_config_check_host(ok[i], &why), 0);
		assert_null(why);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(lm_config_check_host(bad[i], &why), -EINVAL);
		assert_non_null(why);
	}
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(lm_config_check_host(big, &why), -EINVAL);
	big[sizeof(big) - 2] = '\0';
	assert_int_equal(lm_config_check_host(big, &why), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config_listen_accepts),
	    cmocka_unit_test(test_config_listen_long_v6_loopback),
	    cmocka_unit_test(test_config_listen_rejects),
	    cmocka_unit_test(test_config_size_accepts),
	    cmocka_unit_test(test_config_size_accepts_u64_top),
	    cmocka_unit_test(test_config_size_rejects_malformed),
	    cmocka_unit_test(test_config_size_rejects_range),
	    cmocka_unit_test(test_config_host_checks),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
