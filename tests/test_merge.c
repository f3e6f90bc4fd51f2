// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for core/merge.c: the release rule of the kernel-time order, driven by made-up
 * per-CPU streams, including the backlog the reader meets after lifemon was stopped and the
 * ring-order inversions of a program preempted between its reserve and its clock read.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/merge.h"

/* A made-up kernel record: what the merge sees of it, and the id the test checks. */
struct lm_t_ev {
	uint64_t ts_ns;
	uint64_t t0_ns;
	uint32_t pid;
};

static struct lm_t_ev lm_t_ev(uint64_t ts_ns, uint64_t t0_ns, uint32_t pid)
{
	struct lm_t_ev e = { .ts_ns = ts_ns, .t0_ns = t0_ns, .pid = pid };

	return e;
}

/* Stages e as the reader does; the record's id travels in pend. */
static int lm_t_push(struct lm_merge *m, int cpu, const struct lm_t_ev *e, uint64_t lost)
{
	struct lm_merge_rec rec = { .ts_ns = e->ts_ns, .kernel_lost = lost, .pend = e->pid };

	return lm_merge_push(m, cpu, &rec);
}

static void test_merge_rejects_bad_sizes(void **state)
{
	struct lm_merge *m = NULL;

	(void)state;
	assert_int_equal(lm_merge_open(0, 16, &m), -EINVAL);
	assert_int_equal(lm_merge_open(2, 12, &m), -EINVAL);
	assert_int_equal(lm_merge_open(2, 1, &m), -EINVAL);
	assert_null(m);
}

/* A record waits while another CPU might still hold an older one unread. */
static void test_merge_waits_for_every_floor(void **state)
{
	struct lm_merge *m = NULL;
	struct lm_merge_rec out;
	struct lm_t_ev e = lm_t_ev(100, 90, 1);

	(void)state;
	assert_int_equal(lm_merge_open(2, 16, &m), 0);
	assert_int_equal(lm_t_push(m, 0, &e, 3), 0);
	lm_merge_raise_floor(m, 0, 90);
	/* cpu 1 never read and never seen empty: its floor is 0 */
	assert_false(lm_merge_pop(m, false, &out));
	lm_merge_raise_floor(m, 1, 99);
	assert_false(lm_merge_pop(m, false, &out));
	/* cpu 0's own floor (90) is below its staged record too: records behind it are unread */
	lm_merge_raise_floor(m, 1, 100);
	assert_false(lm_merge_pop(m, false, &out));
	lm_merge_raise_floor(m, 0, 100);
	assert_true(lm_merge_pop(m, false, &out));
	assert_int_equal(out.pend, 1);
	assert_int_equal(out.kernel_lost, 3);
	assert_int_equal(lm_merge_staged(m), 0);
	assert_false(lm_merge_pop(m, true, &out));
	lm_merge_close(m);
}

/* Floors only rise. */
static void test_merge_floor_never_falls(void **state)
{
	struct lm_merge *m = NULL;
	struct lm_merge_rec out;
	struct lm_t_ev e = lm_t_ev(50, 40, 1);

	(void)state;
	assert_int_equal(lm_merge_open(1, 4, &m), 0);
	assert_int_equal(lm_t_push(m, 0, &e, 0), 0);
	lm_merge_raise_floor(m, 0, 60);
	lm_merge_raise_floor(m, 0, 10);
	assert_true(lm_merge_pop(m, false, &out));
	lm_merge_close(m);
}

static void test_merge_full_refuses(void **state)
{
	struct lm_merge *m = NULL;
	struct lm_merge_rec out;
	struct lm_t_ev e;
	uint64_t i;

	(void)state;
	assert_int_equal(lm_merge_open(2, 4, &m), 0);
	for (i = 0; i < 4; i++) {
		e = lm_t_ev(10 + i, 9 + i, (uint32_t)i);
		assert_false(lm_merge_is_full(m, 0));
		assert_int_equal(lm_t_push(m, 0, &e, 0), 0);
	}
	assert_true(lm_merge_is_full(m, 0));
	assert_false(lm_merge_is_full(m, 1));
	assert_int_equal(lm_t_push(m, 0, &e, 0), -ENOSPC);
	assert_int_equal(lm_merge_staged(m), 4);
	/* `all` releases in order whatever the floors */
	for (i = 0; i < 4; i++) {
		assert_true(lm_merge_pop(m, true, &out));
		assert_int_equal(out.pend, i);
	}
	lm_merge_close(m);
}

/* A program preempted between reserve and clock read: its record sits before newer ones. */
static void test_merge_sorts_preempted_records(void **state)
{
	struct lm_merge *m = NULL;
	struct lm_merge_rec out;
	struct lm_t_ev a = lm_t_ev(100, 50, 1), b = lm_t_ev(60, 55, 2), c = lm_t_ev(70, 65, 3);

	(void)state;
	assert_int_equal(lm_merge_open(1, 8, &m), 0);
	/* ring order a, b, c; a read its clock last */
	assert_int_equal(lm_t_push(m, 0, &a, 0), 0);
	lm_merge_raise_floor(m, 0, a.t0_ns);
	assert_int_equal(lm_t_push(m, 0, &b, 0), 0);
	lm_merge_raise_floor(m, 0, b.t0_ns);
	/* b (60) may not go yet: an unread record may be as old as the floor, 55 */
	assert_false(lm_merge_pop(m, false, &out));
	assert_int_equal(lm_t_push(m, 0, &c, 0), 0);
	lm_merge_raise_floor(m, 0, c.t0_ns);
	assert_true(lm_merge_pop(m, false, &out));
	assert_int_equal(out.pend, 2);
	/* c (70) waits for the floor to pass it */
	assert_false(lm_merge_pop(m, false, &out));
	lm_merge_raise_floor(m, 0, 1000);
	assert_true(lm_merge_pop(m, false, &out));
	assert_int_equal(out.pend, 3);
	assert_true(lm_merge_pop(m, false, &out));
	assert_int_equal(out.pend, 1);
	lm_merge_close(m);
}

/* Simulated kernel ring: records in reserve order, each with t0 < reserve < ts. */
struct lm_t_ring {
	struct lm_t_ev *ev;
	size_t cnt;  /* records written */
	size_t next; /* records read so far */
};

/* xorshift64: deterministic pseudo-random numbers */
static uint64_t lm_t_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/*
 * Drives the merge the way the reader does over `ncpus` rings holding ncpus * per_cpu
 * records in all, already written (a backlog), with staging far smaller than the backlog.
 * Preempted programs (1 in `preempt_every`) read their clock late. Every record must come
 * out exactly once, in ts order.
 */
static void lm_t_run_backlog(int ncpus, size_t per_cpu, uint32_t stage, uint32_t preempt_every,
			     uint64_t seed)
{
	struct lm_t_ring *rings = calloc(ncpus, sizeof(*rings));
	struct lm_merge *m = NULL;
	struct lm_merge_rec out;
	uint64_t last_ts = 0, clock_ns = 1000, released = 0;
	uint8_t *seen;
	size_t total = (size_t)ncpus * per_cpu, cap = total;
	int c;

	assert_non_null(rings);
	seen = calloc(total, 1);
	assert_non_null(seen);
	for (c = 0; c < ncpus; c++) {
		rings[c].ev = calloc(cap, sizeof(*rings[c].ev));
		assert_non_null(rings[c].ev);
	}
	/*
	 * All CPUs write interleaved in time, CPU 0 three times as often as each other one,
	 * so a merge that released whatever it staged would interleave wrongly.
	 */
	for (size_t i = 0; i < total; i++) {
		uint64_t t0, rsv, ts, pick = lm_t_rand(&seed) % (uint64_t)(ncpus + 2);
		struct lm_t_ring *r;

		c = pick < 3 ? 0 : (int)(pick - 2);
		r = &rings[c];
		if (r->cnt == cap) /* this CPU's ring is full: take the next one */
			for (c = 0; rings[c].cnt == cap; c++)
				;
		r = &rings[c];
		clock_ns += 1 + lm_t_rand(&seed) % 50;
		t0 = clock_ns;
		rsv = t0 + 1 + lm_t_rand(&seed) % 5;
		ts = rsv + 1;
		if (preempt_every && lm_t_rand(&seed) % preempt_every == 0)
			ts += 1 + lm_t_rand(&seed) % 3000; /* preempted after its reserve */
		r->ev[r->cnt] = lm_t_ev(ts, t0, (uint32_t)i);
		r->cnt++;
		clock_ns = rsv;
	}
	assert_int_equal(lm_merge_open(ncpus, stage, &m), 0);
	for (;;) {
		size_t read = 0, popped = 0;

		for (c = 0; c < ncpus; c++) {
			struct lm_t_ring *r = &rings[c];

			while (!lm_merge_is_full(m, c)) {
				if (r->next == r->cnt) {
					/* seen empty after everything was written */
					lm_merge_raise_floor(m, c, UINT64_MAX - 1);
					break;
				}
				assert_int_equal(lm_t_push(m, c, &r->ev[r->next], 0), 0);
				/* every record behind it was reserved after its t0 */
				lm_merge_raise_floor(m, c, r->ev[r->next].t0_ns);
				r->next++;
				read++;
			}
		}
		while (lm_merge_pop(m, false, &out)) {
			assert_true(out.ts_ns >= last_ts);
			last_ts = out.ts_ns;
			assert_int_equal(seen[out.pend], 0);
			seen[out.pend] = 1;
			released++;
			popped++;
		}
		if (!read && !lm_merge_staged(m))
			break;
		/* with honest floors the merge never stalls: each round reads or releases */
		assert_true(read || popped);
	}
	assert_int_equal(released, total);
	for (c = 0; c < ncpus; c++)
		free(rings[c].ev);
	free(rings);
	free(seen);
	lm_merge_close(m);
}

static void test_merge_backlog_in_order(void **state)
{
	(void)state;
	lm_t_run_backlog(2, 100000, 4096, 0, 88172645463325252ULL);
	lm_t_run_backlog(8, 20000, 64, 0, 7);
}

static void test_merge_backlog_with_preemption(void **state)
{
	(void)state;
	lm_t_run_backlog(2, 100000, 4096, 50, 12345);
	lm_t_run_backlog(4, 50000, 256, 7, 99);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge_rejects_bad_sizes),
		cmocka_unit_test(test_merge_waits_for_every_floor),
		cmocka_unit_test(test_merge_floor_never_falls),
		cmocka_unit_test(test_merge_full_refuses),
		cmocka_unit_test(test_merge_sorts_preempted_records),
		cmocka_unit_test(test_merge_backlog_in_order),
		cmocka_unit_test(test_merge_backlog_with_preemption),
	};

	return cmocka_run_group_tests_name("merge", tests, NULL, NULL);
}
