// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for net/www.c: the embedded page files are all there, under their paths and
 * Content-Types, whole, and nothing else is reachable through the lookup.
 */
#include "net/www.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static const struct lm_www_asset *find_ok(const char *path, const char *type)
{
	const struct lm_www_asset *a = lm_www_find(path);

	assert_non_null(a);
	assert_string_equal(a->content_type, type);
	assert_true(a->len > 0);
	assert_int_equal(a->data[a->len], 0); /* NUL after the bytes, not counted */
	assert_int_equal(strlen((const char *)a->data), a->len); /* text without NULs */
	return a;
}

static void test_www_serves_each_file(void **state)
{
	const struct lm_www_asset *a;

	(void)state;
	a = find_ok("/", "text/html; charset=utf-8");
	assert_memory_equal(a->data, "<!doctype html>", 15);
	assert_non_null(strstr((const char *)a->data, "src=\"app.js\""));
	assert_ptr_equal(lm_www_find("/?token=x"), a);
	a = find_ok("/app.js", "text/javascript; charset=utf-8");
	assert_non_null(strstr((const char *)a->data, "/ws"));
	find_ok("/model.js", "text/javascript; charset=utf-8");
	find_ok("/chart.js", "text/javascript; charset=utf-8");
	find_ok("/style.css", "text/css; charset=utf-8");
	assert_ptr_equal(lm_www_find("/style.css?v=1"), lm_www_find("/style.css"));
	assert_int_equal(lm_www_asset_cnt, 5);
}

static void test_www_refuses_other_paths(void **state)
{
	static const char *const bad[] = {
		"",	     "/index.html",  "app.js",	 "/app.js/", "/APP.JS",	  "//app.js",
		"/./app.js", "/x/../app.js", "/app.j",	 "/app.jsx", "/%61pp.js", "/net/www/app.js",
		"/ws",	     "/metrics",     "/healthz", "?",	     "/app.js\n",
	};
	size_t i;

	(void)state;
	assert_null(lm_www_find(NULL));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (lm_www_find(bad[i]))
			fail_msg("lm_www_find(\"%s\") found an asset", bad[i]);
}

static void test_www_headers_lock_the_page_down(void **state)
{
	size_t i;
	bool csp = false, nosniff = false;

	(void)state;
	for (i = 0; i < lm_www_header_cnt; i++) {
		const char *n = lm_www_headers[i].name, *v = lm_www_headers[i].value;

		assert_int_equal(n[strlen(n) - 1], ':');
		assert_null(strpbrk(v, "\r\n"));
		if (!strcmp(n, "content-security-policy:")) {
			csp = true;
			assert_non_null(strstr(v, "script-src 'self'"));
			assert_non_null(strstr(v, "frame-ancestors 'none'"));
			assert_null(strstr(v, "unsafe"));
		}
		nosniff |= !strcmp(n, "x-content-type-options:") && !strcmp(v, "nosniff");
	}
	assert_true(csp);
	assert_true(nosniff);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_www_serves_each_file),
		cmocka_unit_test(test_www_refuses_other_paths),
		cmocka_unit_test(test_www_headers_lock_the_page_down),
	};

	return cmocka_run_group_tests_name("www", tests, NULL, NULL);
}
