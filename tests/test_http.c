// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for net/http.c: request routing and the WebSocket Origin rule that keeps
 * foreign web pages away from the event stream. Pure; single-threaded.
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

static void test_http_index_page_uses_ws(void **state)
{
	(void)state;
	assert_int_equal(strlen(lm_http_index_html), lm_http_index_html_len);
	assert_non_null(strstr(lm_http_index_html, "'/ws'"));
	assert_non_null(strstr(lm_http_index_html, "<!doctype html>"));
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
		cmocka_unit_test(test_http_index_page_uses_ws),
	};

	return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
