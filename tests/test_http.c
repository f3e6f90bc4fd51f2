// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for net/http.c: request routing, the Host and WebSocket Origin rules that keep
 * foreign web pages away from the event stream, and the handshake header checks. Pure;
 * single-threaded.
 */
#include "net/http.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void test_http_routes_known_paths(void **state)
{
	(void)state;
	assert_int_equal(lm_http_route("/"), LM_HTTP_INDEX);
	assert_int_equal(lm_http_route("/healthz"), LM_HTTP_HEALTHZ);
	assert_int_equal(lm_http_route("/metrics"), LM_HTTP_METRICS);
	assert_int_equal(lm_http_route("/metrics?x=1"), LM_HTTP_METRICS);
	assert_int_equal(lm_http_route("/ws"), LM_HTTP_WS);
	assert_int_equal(lm_http_route("/ws?token=a"), LM_HTTP_WS);
	assert_int_equal(lm_http_route("/?q"), LM_HTTP_INDEX);
}

static void test_http_refuses_lookalike_paths(void **state)
{
	static const char *const bad[] = { "",	       "ws",	     "/wss",	  "/ws/",
					   "/metricsx", "/healthz/", "//",	  "/../metrics",
					   "/WS",	       "/metrics#", "/health", "/ws\x01" };
	size_t i;

	(void)state;
	assert_int_equal(lm_http_route(NULL), LM_HTTP_NOT_FOUND);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(lm_http_route(bad[i]), LM_HTTP_NOT_FOUND);
}

static void test_http_allows_own_origins(void **state)
{
	(void)state;
	assert_true(lm_http_is_origin_allowed(NULL, 8080, NULL, 0));
	assert_true(lm_http_is_origin_allowed("", 8080, NULL, 0));
	assert_true(lm_http_is_origin_allowed("http://127.0.0.1:8080", 8080, NULL, 0));
	assert_true(lm_http_is_origin_allowed("http://localhost:8080", 8080, NULL, 0));
	assert_true(lm_http_is_origin_allowed("http://[::1]:8080", 8080, NULL, 0));
	assert_true(lm_http_is_origin_allowed("http://127.0.0.1:18081", 18081, NULL, 0));
}

static void test_http_refuses_foreign_origins(void **state)
{
	static const char *const bad[] = {
		"null",
		"http://127.0.0.1.evil.example",
		"http://127.0.0.1.evil.example:8080",
		"http://localhost.evil.example:8080",
		"http://evil.example",
		"https://127.0.0.1:8080",
		"http://127.0.0.1:8081",
		"http://127.0.0.1:80800",
		"http://127.0.0.1:8080/",
		"http://127.0.0.1",
		"http://LOCALHOST:8080x",
		"http://127.0.0.1:8080@evil.example",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(lm_http_is_origin_allowed(bad[i], 8080, NULL, 0));
}

static void test_http_query_param_decodes(void **state)
{
	char out[16];

	(void)state;
	assert_int_equal(lm_http_query_param("a=1&token=ab%2Bc+d&z", "token", out, sizeof(out)), 6);
	assert_string_equal(out, "ab+c d");
	assert_int_equal(lm_http_query_param("xtoken=1&token=", "token", out, sizeof(out)), 0);
	assert_int_equal(lm_http_query_param("tok=1", "token", out, sizeof(out)), -ENOENT);
	assert_int_equal(lm_http_query_param("token=%zz", "token", out, sizeof(out)), -EINVAL);
	assert_int_equal(lm_http_query_param("token=%00", "token", out, sizeof(out)), -EINVAL);
	assert_int_equal(lm_http_query_param("token=%4", "token", out, sizeof(out)), -EINVAL);
	assert_int_equal(lm_http_query_param("token=0123456789abcdef", "token", out, sizeof(out)),
			 -ENOSPC);
}

static void test_http_token_checks(void **state)
{
	static const char want[] = "abcdefghijklmnop+/=";
	size_t n = sizeof(want) - 1;

	(void)state;
	assert_true(lm_http_is_token_ok("", 0, NULL, NULL));
	assert_true(lm_http_is_token_ok(want, n, "Bearer abcdefghijklmnop+/=", NULL));
	assert_false(lm_http_is_token_ok(want, n, "Bearer abcdefghijklmnop+/", NULL));
	assert_false(lm_http_is_token_ok(want, n, "Bearer abcdefghijklmnop+/=x", NULL));
	assert_false(lm_http_is_token_ok(want, n, "Basic abcdefghijklmnop+/=", NULL));
	assert_true(lm_http_is_token_ok(want, n, NULL, "x=1&token=abcdefghijklmnop%2B%2F%3D"));
	assert_false(lm_http_is_token_ok(want, n, NULL, "token=abcdefghijklmnop+/="));
	assert_false(lm_http_is_token_ok(want, n, NULL, NULL));
	assert_true(lm_http_is_token_equal(want, n, "abcdefghijklmnop+/=", n));
	assert_false(lm_http_is_token_equal(want, n, "abcdefghijklmnop+/!", n));
	assert_false(lm_http_is_token_equal(want, n, "abcdefghijklmnop+/", n - 1));
	assert_false(lm_http_is_token_equal("", 0, "", 0));
}

static void test_http_allows_extra_origins(void **state)
{
	static const char *const extra[] = { "https://dash.example" };

	(void)state;
	assert_true(lm_http_is_origin_allowed("https://dash.example", 8080, extra, 1));
	assert_false(lm_http_is_origin_allowed("https://dash.example.evil", 8080, extra, 1));
	assert_false(lm_http_is_origin_allowed("http://dash.example", 8080, extra, 1));
}

static void test_http_origin_default_ports(void **state)
{
	static const char *const extra[] = { "http://dash.example:80", "https://secure.example",
					     "https://[fe80::1]:443" };

	(void)state;
	/* lifemon's own page on port 80: browsers omit the default port in Origin */
	assert_true(lm_http_is_origin_allowed("http://localhost", 80, NULL, 0));
	assert_true(lm_http_is_origin_allowed("http://localhost:80", 80, NULL, 0));
	assert_true(lm_http_is_origin_allowed("http://127.0.0.1", 80, NULL, 0));
	assert_true(lm_http_is_origin_allowed("http://[::1]", 80, NULL, 0));
	assert_false(lm_http_is_origin_allowed("https://localhost", 80, NULL, 0));
	assert_false(lm_http_is_origin_allowed("http://localhost", 443, NULL, 0));
	assert_false(lm_http_is_origin_allowed("http://localhost:080", 80, NULL, 0));
	assert_false(lm_http_is_origin_allowed("http://localhost:", 80, NULL, 0));
	assert_false(lm_http_is_origin_allowed("http://localhost:80/", 80, NULL, 0));
	/* the same for --allow-origin values, both ways round */
	assert_true(lm_http_is_origin_allowed("http://dash.example", 8080, extra, 3));
	assert_true(lm_http_is_origin_allowed("http://dash.example:80", 8080, extra, 3));
	assert_false(lm_http_is_origin_allowed("http://dash.example:8080", 8080, extra, 3));
	assert_false(lm_http_is_origin_allowed("https://dash.example", 8080, extra, 3));
	assert_true(lm_http_is_origin_allowed("https://secure.example:443", 8080, extra, 3));
	assert_true(lm_http_is_origin_allowed("https://secure.example", 8080, extra, 3));
	assert_false(lm_http_is_origin_allowed("https://secure.example:80", 8080, extra, 3));
	assert_false(lm_http_is_origin_allowed("http://secure.example", 8080, extra, 3));
	assert_true(lm_http_is_origin_allowed("https://[FE80::1]", 8080, extra, 3));
	/* scheme and host compare case-insensitively (RFC 6454 lowers them anyway) */
	assert_true(lm_http_is_origin_allowed("HTTP://LocalHost:8080", 8080, NULL, 0));
	assert_true(lm_http_is_origin_allowed("http://DASH.example", 8080, extra, 3));
	assert_false(lm_http_is_origin_allowed("http://dash.example.:80", 8080, extra, 3));
	assert_false(lm_http_is_origin_allowed("http://dash.example:80@evil", 8080, extra, 3));
}

static void test_http_host_allow_list(void **state)
{
	static const char *const ok[] = {
		"localhost",	   "localhost:8080", "127.0.0.1", "127.0.0.1:8080", "[::1]",
		"[::1]:8080",	   "LOCALHOST",	     "LocalHost:8080",
	};
	static const char *const bad[] = {
		"",
		"evil.example",
		"evil.example:8080",
		"localhost:8081",
		"localhost:80",
		"localhost:08080",
		"localhost:",
		"localhost.",
		"localhost.evil.example",
		"127.0.0.1.evil.example",
		"127.0.0.2",
		"::1",
		"[::1",
		"[::1]x",
		"[::1]:80800",
		"localhost:8080@evil",
		"localhost 8080",
		"localhost,evil.example",
		"localhost:8080,localhost:8080",
		"0.0.0.0",
		"0.0.0.0:8080",
		"192.168.1.5:8080",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_true(lm_http_is_host_allowed(ok[i], "127.0.0.1", 8080, NULL, 0));
		assert_true(lm_http_is_host_allowed(ok[i], "0.0.0.0", 8080, NULL, 0));
		assert_true(lm_http_is_host_allowed(ok[i], "::", 8080, NULL, 0));
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(lm_http_is_host_allowed(bad[i], "127.0.0.1", 8080, NULL, 0));
		assert_false(lm_http_is_host_allowed(bad[i], "0.0.0.0", 8080, NULL, 0));
	}
	assert_false(lm_http_is_host_allowed(NULL, "127.0.0.1", 8080, NULL, 0));
	/* the listen address itself, unless it is a wildcard */
	assert_true(lm_http_is_host_allowed("192.168.1.5:8080", "192.168.1.5", 8080, NULL, 0));
	assert_true(lm_http_is_host_allowed("192.168.1.5", "192.168.1.5", 8080, NULL, 0));
	assert_false(lm_http_is_host_allowed("192.168.1.5:80", "192.168.1.5", 8080, NULL, 0));
	assert_true(lm_http_is_host_allowed("[fe80::1]:8080", "fe80::1", 8080, NULL, 0));
	assert_true(lm_http_is_host_allowed("[FE80::1]", "fe80::1", 8080, NULL, 0));
	assert_false(lm_http_is_host_allowed("fe80::1", "fe80::1", 8080, NULL, 0));
	assert_false(lm_http_is_host_allowed("[::]:8080", "::", 8080, NULL, 0));
}

static void test_http_host_allow_list_extra(void **state)
{
	static const char *const extra[] = { "dash.example", "proxy.example:8443", "[fe80::2]" };

	(void)state;
	assert_true(lm_http_is_host_allowed("dash.example", "127.0.0.1", 8080, extra, 3));
	assert_true(lm_http_is_host_allowed("Dash.Example:8080", "127.0.0.1", 8080, extra, 3));
	assert_false(lm_http_is_host_allowed("dash.example:9090", "127.0.0.1", 8080, extra, 3));
	assert_false(lm_http_is_host_allowed("dash.example.evil", "127.0.0.1", 8080, extra, 3));
	assert_false(lm_http_is_host_allowed("xdash.example", "127.0.0.1", 8080, extra, 3));
	assert_true(lm_http_is_host_allowed("proxy.example:8443", "127.0.0.1", 8080, extra, 3));
	assert_false(lm_http_is_host_allowed("proxy.example", "127.0.0.1", 8080, extra, 3));
	assert_false(lm_http_is_host_allowed("proxy.example:8080", "127.0.0.1", 8080, extra, 3));
	assert_true(lm_http_is_host_allowed("[fe80::2]:8080", "127.0.0.1", 8080, extra, 3));
	assert_false(lm_http_is_host_allowed("evil.example", "127.0.0.1", 8080, extra, 3));
	/* the loopback names still work beside the extras */
	assert_true(lm_http_is_host_allowed("localhost:8080", "127.0.0.1", 8080, extra, 3));
}

static void test_http_header_tokens(void **state)
{
	(void)state;
	assert_true(lm_http_has_token("Upgrade", "upgrade", true));
	assert_true(lm_http_has_token("upgrade", "upgrade", true));
	assert_true(lm_http_has_token("UPGRADE", "upgrade", true));
	assert_true(lm_http_has_token("keep-alive, Upgrade", "upgrade", true));
	assert_true(lm_http_has_token("keep-alive,upgrade ,close", "upgrade", true));
	assert_true(lm_http_has_token(" \tUpgrade\t", "upgrade", true));
	assert_false(lm_http_has_token("Upgrades", "upgrade", true));
	assert_false(lm_http_has_token("upgrad", "upgrade", true));
	assert_false(lm_http_has_token("u", "upgrade", true));
	assert_false(lm_http_has_token("keep-alive", "upgrade", true));
	assert_false(lm_http_has_token("", "upgrade", true));
	assert_false(lm_http_has_token(NULL, "upgrade", true));
	assert_true(lm_http_has_token("chat, lifemon", "lifemon", false));
	assert_false(lm_http_has_token("LIFEMON", "lifemon", false));

	assert_true(lm_http_is_token_list("keep-alive, Upgrade"));
	assert_true(lm_http_is_token_list("lifemon"));
	assert_true(lm_http_is_token_list("a ,b,\tc"));
	assert_false(lm_http_is_token_list(""));
	assert_false(lm_http_is_token_list("a,,b"));
	assert_false(lm_http_is_token_list("a,"));
	assert_false(lm_http_is_token_list("a b"));
	assert_false(lm_http_is_token_list("garbage!#$(")); /* '(' is no tchar */
	assert_false(lm_http_is_token_list("foo=1, upgrade"));
	assert_false(lm_http_is_token_list(NULL));
}

static void test_http_ws_key(void **state)
{
	(void)state;
	assert_true(lm_http_is_ws_key_valid("dGhlIHNhbXBsZSBub25jZQ==")); /* RFC 6455 1.3 */
	assert_true(lm_http_is_ws_key_valid("AAAAAAAAAAAAAAAAAAAAAA=="));
	assert_true(lm_http_is_ws_key_valid("+/+/+/+/+/+/+/+/+/+/+w=="));
	assert_false(lm_http_is_ws_key_valid("dGhlIHNhbXBsZSBub25jZR==")); /* bits past 16 bytes */
	assert_false(lm_http_is_ws_key_valid("dGhlIHNhbXBsZSBub25jZQ="));
	assert_false(lm_http_is_ws_key_valid("dGhlIHNhbXBsZSBub25jZQ==="));
	assert_false(lm_http_is_ws_key_valid("dGhlIHNhbXBsZSBub25j!Q=="));
	assert_false(lm_http_is_ws_key_valid("x"));
	assert_false(lm_http_is_ws_key_valid(""));
	assert_false(lm_http_is_ws_key_valid(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_routes_known_paths),
		cmocka_unit_test(test_http_refuses_lookalike_paths),
		cmocka_unit_test(test_http_allows_own_origins),
		cmocka_unit_test(test_http_refuses_foreign_origins),
		cmocka_unit_test(test_http_query_param_decodes),
		cmocka_unit_test(test_http_token_checks),
		cmocka_unit_test(test_http_allows_extra_origins),
		cmocka_unit_test(test_http_origin_default_ports),
		cmocka_unit_test(test_http_host_allow_list),
		cmocka_unit_test(test_http_host_allow_list_extra),
		cmocka_unit_test(test_http_header_tokens),
		cmocka_unit_test(test_http_ws_key),
	};

	return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
