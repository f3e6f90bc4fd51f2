// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for core/wstatus.c, the decoder of raw wait(2) statuses for EXIT events:
 * exit codes, killing signals with and without a core, and every 16-bit status checked
 * against glibc's W* macros. Single-threaded, no resources.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "core/wstatus.h"

static void decode(uint32_t status, struct lm_wstatus *ws)
{
	/* Poison first so a field the decoder forgets to set cannot pass by luck. */
	ws->exit_code = 0xdeadbeef;
	ws->signal = 0xdeadbeef;
	ws->core_dumped = true;
	lm_wstatus_decode(status, ws);
}

static void test_wstatus_exited(void **state)
{
	struct lm_wstatus ws;
	uint32_t code;

	(void)state;
	for (code = 0; code <= 255; code++) {
		decode(code << 8, &ws);
		assert_int_equal(ws.exit_code, code);
		assert_int_equal(ws.signal, 0);
		assert_false(ws.core_dumped);
	}
}

static void test_wstatus_signaled(void **state)
{
	struct lm_wstatus ws;
	uint32_t sig;

	(void)state;
	for (sig = 1; sig <= 64; sig++) {
		decode(sig, &ws);
		assert_int_equal(ws.signal, sig);
		assert_int_equal(ws.exit_code, 128 + sig);
		assert_false(ws.core_dumped);

		decode(sig | 0x80, &ws);
		assert_int_equal(ws.signal, sig);
		assert_int_equal(ws.exit_code, 128 + sig);
		assert_true(ws.core_dumped);
	}
}

static void test_wstatus_seed_examples(void **state)
{
	struct lm_wstatus ws;

	(void)state;
	decode(7 << 8, &ws);
	assert_int_equal(ws.exit_code, 7);
	assert_int_equal(ws.signal, 0);
	assert_false(ws.core_dumped);

	decode(9, &ws); /* SIGKILL */
	assert_int_equal(ws.exit_code, 137);
	assert_int_equal(ws.signal, 9);
	assert_false(ws.core_dumped);

	decode(0x80 | 11, &ws); /* SIGSEGV, core dumped */
	assert_int_equal(ws.exit_code, 139);
	assert_int_equal(ws.signal, 11);
	assert_true(ws.core_dumped);
}

/* Every 16-bit status that is an exit or a kill, against glibc's macros. */
static void test_wstatus_matches_glibc(void **state)
{
	struct lm_wstatus ws;
	unsigned int checked = 0;
	uint32_t st;
	int s;

	(void)state;
	for (st = 0; st <= 0xffff; st++) {
		s = (int)st;
		if (WIFEXITED(s)) {
			decode(st, &ws);
			if (ws.exit_code != (uint32_t)WEXITSTATUS(s) || ws.signal != 0 ||
			    ws.core_dumped)
				fail_msg(
				    "status 0x%04x (exited %d): got exit_code %u signal %u core %d",
				    st, WEXITSTATUS(s), ws.exit_code, ws.signal, ws.core_dumped);
			checked++;
		} else if (WIFSIGNALED(s)) {
			decode(st, &ws);
			if (ws.signal != (uint32_t)WTERMSIG(s) ||
			    ws.exit_code != 128 + (uint32_t)WTERMSIG(s) ||
			    ws.core_dumped != !!WCOREDUMP(s))
				fail_msg(
				    "status 0x%04x (sig %d core %d): got code %u sig %u core %d",
				    st, WTERMSIG(s), !!WCOREDUMP(s), ws.exit_code, ws.signal,
				    ws.core_dumped);
			checked++;
		}
	}
	/* Low 7 bits 0 (exited, 512 statuses) or 1..126 (signaled, 126 * 512). */
	assert_int_equal(checked, 512 + 126 * 512);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wstatus_exited),
	    cmocka_unit_test(test_wstatus_signaled),
	    cmocka_unit_test(test_wstatus_seed_examples),
	    cmocka_unit_test(test_wstatus_matches_glibc),
	};

	return cmocka_run_group_tests_name("wstatus", tests, NULL, NULL);
}
