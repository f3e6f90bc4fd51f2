// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for net/pset.c, the processes a /ws client's exe=/args= filter matched: add,
 * find, delete with backward shift under collisions, and forgetting the oldest when full,
 * checked against a plain model over a million random operations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/pset.h"

static void test_pset_add_has_del(void **state)
{
	struct lm_pset *s;

	(void)state;
	assert_int_equal(lm_pset_open(&s), 0);
	assert_false(lm_pset_has(s, 1, 100));
	lm_pset_add(s, 1, 100);
	lm_pset_add(s, 1, 100); /* again: no change */
	lm_pset_add(s, 1, 101); /* same pid, another process */
	assert_int_equal(lm_pset_len(s), 2);
	assert_true(lm_pset_has(s, 1, 100));
	assert_true(lm_pset_has(s, 1, 101));
	assert_false(lm_pset_has(s, 2, 100));
	assert_true(lm_pset_del(s, 1, 100));
	assert_false(lm_pset_del(s, 1, 100));
	assert_false(lm_pset_has(s, 1, 100));
	assert_true(lm_pset_has(s, 1, 101));
	assert_int_equal(lm_pset_len(s), 1);
	lm_pset_close(s);
	lm_pset_close(NULL);
}

/* Full: the process added longest ago goes first, whatever deletions came between. */
static void test_pset_forgets_oldest_when_full(void **state)
{
	struct lm_pset *s;
	uint32_t i;

	(void)state;
	assert_int_equal(lm_pset_open(&s), 0);
	for (i = 0; i < LM_PSET_MAX; i++)
		lm_pset_add(s, i, 7);
	assert_int_equal(lm_pset_len(s), LM_PSET_MAX);
	lm_pset_add(s, LM_PSET_MAX, 7);
	assert_int_equal(lm_pset_len(s), LM_PSET_MAX);
	assert_false(lm_pset_has(s, 0, 7));
	assert_true(lm_pset_has(s, 1, 7));
	assert_true(lm_pset_has(s, LM_PSET_MAX, 7));
	/* an exited process's turn to be forgotten costs nothing */
	assert_true(lm_pset_del(s, 1, 7));
	lm_pset_add(s, LM_PSET_MAX + 1, 7);
	assert_true(lm_pset_has(s, 2, 7));
	assert_int_equal(lm_pset_len(s), LM_PSET_MAX);
	lm_pset_close(s);
}

/* Random adds and deletes over few keys (many collisions) against a model. */
static void test_pset_matches_model(void **state)
{
	enum { KEYS = 6000, OPS = 1000000 };
	static uint8_t model[KEYS];
	static uint32_t order[KEYS * 200];
	uint32_t head = 0, tail = 0, live = 0, i;
	struct lm_pset *s;

	(void)state;
	memset(model, 0, sizeof(model));
	srand(42);
	assert_int_equal(lm_pset_open(&s), 0);
	for (i = 0; i < OPS; i++) {
		uint32_t k = (uint32_t)rand() % KEYS;
		uint64_t start = (uint64_t)(k % 7) << 40; /* keys that share hash bits */

		if (rand() % 3) {
			if (model[k])
				continue;
			/* full: the model forgets its oldest addition too */
			if (tail - head == LM_PSET_MAX) {
				uint32_t old = order[head++ % (KEYS * 200)];

				if (model[old]) {
					model[old] = 0;
					live--;
				}
			}
			lm_pset_add(s, k, start);
			model[k] = 1;
			live++;
			order[tail++ % (KEYS * 200)] = k;
		} else {
			assert_int_equal(lm_pset_del(s, k, start), model[k]);
			if (model[k])
				live--;
			model[k] = 0;
		}
		if (i % 1000 == 0) {
			uint32_t j;

			for (j = 0; j < KEYS; j++)
				assert_int_equal(lm_pset_has(s, j, (uint64_t)(j % 7) << 40), model[j]);
			assert_int_equal(lm_pset_len(s), live);
		}
	}
	lm_pset_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pset_add_has_del),
		cmocka_unit_test(test_pset_forgets_oldest_when_full),
		cmocka_unit_test(test_pset_matches_model),
	};

	return cmocka_run_group_tests_name("pset", tests, NULL, NULL);
}
