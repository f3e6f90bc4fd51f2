// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for core/ring.c: ev_ring (variable-size entries) and idx rings driven by a real
 * producer thread and a real consumer thread over millions of items (order, count, payload,
 * alignment, wrapping), sizes and capacity,
 * and the text slot pool's layout. Each threaded case owns its ring and both threads.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <linux/types.h>

#include "bpf/lm_event.h"
#include "core/ring.h"

#define THREADED_ITEMS 2000000ULL

/* Record bytes of item i: a size from 0 to 299 bytes, so entries of every length wrap. */
static uint32_t rec_size(uint64_t i)
{
	return (uint32_t)((i * 37 + (i >> 5)) % 300);
}

static uint8_t rec_byte(uint64_t i, uint32_t k)
{
	return (uint8_t)(i * 131 + k * 7 + (i >> 8) + 1);
}

/* Reserves and fills item i's entry; false when the ring is full. */
static bool put_rec(struct lm_ev_ring *r, uint64_t i)
{
	uint32_t n = rec_size(i), k;
	struct lm_rec *e = lm_ring_ev_reserve(r, n);
	uint8_t *d;

	if (!e)
		return false;
	if (e->size != n)
		fail_msg("reserve of %u bytes: size says %u", n, e->size);
	e->seq = i;
	e->kernel_lost = ~i;
	e->cpu = (uint32_t)(i >> 3);
	d = lm_rec_data(e);
	for (k = 0; k < n; k++)
		d[k] = rec_byte(i, k);
	lm_ring_ev_commit(r);
	return true;
}

/* Checks entry e is item i; returns a reason or NULL. */
static const char *bad_rec(const struct lm_rec *e, uint64_t i)
{
	const uint8_t *d = lm_rec_data(e);
	uint32_t k;

	if (e->seq != i)
		return "seq";
	if (e->size != rec_size(i))
		return "size";
	if (e->kernel_lost != ~i || e->cpu != (uint32_t)(i >> 3))
		return "header";
	if ((uintptr_t)d % 8)
		return "record not 8-byte aligned";
	for (k = 0; k < e->size; k++)
		if (d[k] != rec_byte(i, k))
			return "record bytes";
	return NULL;
}

/* Takes the oldest entry, which must be item i. */
static void take_rec(struct lm_ev_ring *r, uint64_t i)
{
	const struct lm_rec *e = lm_ring_ev_peek(r);
	const char *why;

	if (!e)
		fail_msg("item %llu: ring empty", (unsigned long long)i);
	/* peeking again gives the same entry until it is released */
	assert_ptr_equal(lm_ring_ev_peek(r), e);
	why = bad_rec(e, i);
	if (why)
		fail_msg("item %llu: wrong %s (seq %llu)", (unsigned long long)i, why,
			 (unsigned long long)e->seq);
	lm_ring_ev_release(r);
}

static uint32_t idx_val(uint64_t i)
{
	/* Odd multiplier: a bijection on u32, so every value differs from its neighbours. */
	return (uint32_t)i * 2654435761u;
}

static void test_ring_ev_open_rejects_bad_size(void **state)
{
	static const uint32_t bad[] = {0, 1, 2048, 4095, 4097, 12288, 0x80000001u, UINT32_MAX};
	struct lm_ev_ring *r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = NULL;
		if (lm_ring_ev_open(bad[i], &r) != -EINVAL)
			fail_msg("ev ring of %u bytes: want -EINVAL", bad[i]);
		assert_null(r);
	}
}

static void test_ring_idx_open_rejects_bad_size(void **state)
{
	static const uint32_t bad[] = {0, 1, 3, 5, 6, 7, 12, 1000, 0x80000001u, UINT32_MAX};
	struct lm_idx_ring *r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = NULL;
		if (lm_ring_idx_open(bad[i], &r) != -EINVAL)
			fail_msg("idx ring of %u slots: want -EINVAL", bad[i]);
		assert_null(r);
	}
}

static void test_ring_close_accepts_null(void **state)
{
	(void)state;
	lm_ring_ev_close(NULL);
	lm_ring_idx_close(NULL);
	lm_ring_pool_close(NULL);
}

/*
 * A ring of N bytes holds entries until the next one would not fit, and says so with NULL,
 * nothing lost; releasing one makes room again; an entry over half the ring never fits.
 */
static void test_ring_ev_capacity(void **state)
{
	static const uint32_t sizes[] = {4096, 8192, 65536};
	struct lm_ev_ring *r;
	uint32_t s, ent = (uint32_t)sizeof(struct lm_rec) + 96;
	uint64_t i, n;

	(void)state;
	for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		assert_int_equal(lm_ring_ev_open(sizes[s], &r), 0);
		assert_non_null(r);
		assert_int_equal(lm_ring_ev_capacity(r), sizes[s]);
		assert_int_equal(lm_ring_ev_fill(r), 0);
		assert_null(lm_ring_ev_peek(r));
		assert_null(lm_ring_ev_reserve(r, sizes[s] / 2));
		/* 96-byte records: exactly N / ent of them fit */
		for (i = 0;; i++) {
			struct lm_rec *e = lm_ring_ev_reserve(r, 96);

			if (!e)
				break;
			e->seq = i;
			lm_ring_ev_commit(r);
			assert_int_equal(lm_ring_ev_fill(r), (i + 1) * ent);
		}
		n = i;
		assert_int_equal(n, sizes[s] / ent);
		assert_null(lm_ring_ev_reserve(r, 96));
		/* one release makes room for one more, which wraps to offset 0 */
		assert_int_equal(lm_ring_ev_peek(r)->seq, 0);
		lm_ring_ev_release(r);
		assert_non_null(lm_ring_ev_reserve(r, 96));
		lm_ring_ev_commit(r);
		for (i = 1; i <= n; i++) {
			const struct lm_rec *e = lm_ring_ev_peek(r);

			assert_non_null(e);
			lm_ring_ev_release(r);
		}
		assert_null(lm_ring_ev_peek(r));
		assert_int_equal(lm_ring_ev_fill(r), 0);
		lm_ring_ev_close(r);
	}
}

static void test_ring_idx_capacity(void **state)
{
	static const uint32_t sizes[] = {2, 4, 8, 1024};
	struct lm_idx_ring *r;
	uint32_t s, i, v;

	(void)state;
	for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		assert_int_equal(lm_ring_idx_open(sizes[s], &r), 0);
		assert_non_null(r);
		assert_int_equal(lm_ring_idx_fill(r), 0);
		assert_false(lm_ring_idx_pop(r, &v));
		for (i = 0; i < sizes[s] - 1; i++) {
			if (!lm_ring_idx_push(r, idx_val(i)))
				fail_msg("%u slots: push %u failed", sizes[s], i);
			assert_int_equal(lm_ring_idx_fill(r), i + 1);
		}
		assert_false(lm_ring_idx_push(r, 12345));
		assert_int_equal(lm_ring_idx_fill(r), sizes[s] - 1);
		for (i = 0; i < sizes[s] - 1; i++) {
			assert_true(lm_ring_idx_pop(r, &v));
			assert_int_equal(v, idx_val(i));
		}
		assert_false(lm_ring_idx_pop(r, &v));
		assert_int_equal(lm_ring_idx_fill(r), 0);
		lm_ring_idx_close(r);
	}
}

/* Single thread, many laps at varying fill levels: the indices wrap correctly. */
static void test_ring_wraparound(void **state)
{
	struct lm_ev_ring *er;
	struct lm_idx_ring *ir;
	uint64_t in = 0, out = 0;
	uint32_t k, burst, v;

	(void)state;
	assert_int_equal(lm_ring_ev_open(4096, &er), 0);
	assert_int_equal(lm_ring_idx_open(8, &ir), 0);
	for (k = 0; k < 10000; k++) {
		burst = (k * 7) % 8;
		while (burst-- && lm_ring_idx_fill(ir) < 7 && put_rec(er, in)) {
			assert_true(lm_ring_idx_push(ir, idx_val(in)));
			in++;
		}
		burst = (k * 5) % 8;
		while (burst-- && out < in) {
			take_rec(er, out);
			assert_true(lm_ring_idx_pop(ir, &v));
			assert_int_equal(v, idx_val(out));
			out++;
		}
		if (in == out)
			assert_int_equal(lm_ring_ev_fill(er), 0);
		assert_int_equal(lm_ring_idx_fill(ir), in - out);
	}
	assert_true(in > 10000);
	lm_ring_ev_close(er);
	lm_ring_idx_close(ir);
}

/*
 * Shared by a producer and a consumer thread. cmocka asserts must not run off the main
 * thread, so the consumer records the first mismatch and the main thread asserts after join.
 */
struct xfer {
	struct lm_ev_ring *er;
	struct lm_idx_ring *ir;
	uint64_t items;
	atomic_bool stop;  /* set by the consumer on a mismatch so the producer gives up */
	uint64_t produced; /* producer-only until join */
	uint64_t consumed; /* consumer-only until join */
	uint64_t bad_at;   /* first mismatching item; valid if bad */
	bool bad;
	char why[128];
	uint64_t full_waits;  /* producer found the ring full */
	uint64_t empty_waits; /* consumer found the ring empty */
};

static void *ev_producer(void *arg)
{
	struct xfer *x = arg;
	uint64_t i;

	pthread_setname_np(pthread_self(), "t-ev-prod");
	for (i = 0; i < x->items; i++) {
		while (!put_rec(x->er, i)) {
			if (atomic_load_explicit(&x->stop, memory_order_relaxed))
				return NULL;
			x->full_waits++;
			sched_yield();
		}
		x->produced++;
	}
	return NULL;
}

static void *ev_consumer(void *arg)
{
	struct xfer *x = arg;
	uint32_t cap = lm_ring_ev_capacity(x->er), fill;
	const struct lm_rec *e;
	const char *why;

	pthread_setname_np(pthread_self(), "t-ev-cons");
	while (x->consumed < x->items) {
		e = lm_ring_ev_peek(x->er);
		if (!e) {
			x->empty_waits++;
			sched_yield();
			continue;
		}
		why = bad_rec(e, x->consumed);
		if (why) {
			x->bad = true;
			x->bad_at = x->consumed;
			snprintf(x->why, sizeof(x->why), "wrong %s: got seq %llu", why,
				 (unsigned long long)e->seq);
			atomic_store_explicit(&x->stop, true, memory_order_relaxed);
			return NULL;
		}
		lm_ring_ev_release(x->er);
		x->consumed++;
		if (!(x->consumed & 0xfff)) {
			fill = lm_ring_ev_fill(x->er);
			if (fill > cap) {
				x->bad = true;
				x->bad_at = x->consumed;
				snprintf(x->why, sizeof(x->why), "fill %u above capacity %u", fill,
					 cap);
				atomic_store_explicit(&x->stop, true, memory_order_relaxed);
				return NULL;
			}
		}
	}
	return NULL;
}

static void *idx_producer(void *arg)
{
	struct xfer *x = arg;
	uint64_t i;

	pthread_setname_np(pthread_self(), "t-idx-prod");
	for (i = 0; i < x->items; i++) {
		while (!lm_ring_idx_push(x->ir, idx_val(i))) {
			if (atomic_load_explicit(&x->stop, memory_order_relaxed))
				return NULL;
			x->full_waits++;
			sched_yield();
		}
		x->produced++;
	}
	return NULL;
}

static void *idx_consumer(void *arg)
{
	struct xfer *x = arg;
	uint32_t v;

	pthread_setname_np(pthread_self(), "t-idx-cons");
	while (x->consumed < x->items) {
		if (!lm_ring_idx_pop(x->ir, &v)) {
			x->empty_waits++;
			sched_yield();
			continue;
		}
		if (v != idx_val(x->consumed)) {
			x->bad = true;
			x->bad_at = x->consumed;
			snprintf(x->why, sizeof(x->why), "got 0x%08x, want 0x%08x", v,
				 idx_val(x->consumed));
			atomic_store_explicit(&x->stop, true, memory_order_relaxed);
			return NULL;
		}
		x->consumed++;
	}
	return NULL;
}

static void run_pair(struct xfer *x, void *(*prod)(void *), void *(*cons)(void *))
{
	pthread_t tp, tc;

	atomic_init(&x->stop, false);
	assert_int_equal(pthread_create(&tc, NULL, cons, x), 0);
	assert_int_equal(pthread_create(&tp, NULL, prod, x), 0);
	assert_int_equal(pthread_join(tp, NULL), 0);
	assert_int_equal(pthread_join(tc, NULL), 0);
	if (x->bad)
		fail_msg("item %llu: %s", (unsigned long long)x->bad_at, x->why);
	assert_true(x->produced == x->items);
	assert_true(x->consumed == x->items);
	print_message("%llu items, producer waited %llu times, consumer %llu times\n",
		      (unsigned long long)x->items, (unsigned long long)x->full_waits,
		      (unsigned long long)x->empty_waits);
}

static void ev_threaded(uint32_t bytes, uint64_t items)
{
	struct xfer x = {.items = items};

	assert_int_equal(lm_ring_ev_open(bytes, &x.er), 0);
	run_pair(&x, ev_producer, ev_consumer);
	/* Exactly `items` went through: nothing is left over. */
	assert_null(lm_ring_ev_peek(x.er));
	assert_int_equal(lm_ring_ev_fill(x.er), 0);
	lm_ring_ev_close(x.er);
}

static void idx_threaded(uint32_t slots, uint64_t items)
{
	struct xfer x = {.items = items};
	uint32_t extra;

	assert_int_equal(lm_ring_idx_open(slots, &x.ir), 0);
	run_pair(&x, idx_producer, idx_consumer);
	assert_false(lm_ring_idx_pop(x.ir, &extra));
	assert_int_equal(lm_ring_idx_fill(x.ir), 0);
	lm_ring_idx_close(x.ir);
}

static void test_ring_ev_threaded_order(void **state)
{
	(void)state;
	ev_threaded(65536, THREADED_ITEMS);
}

static void test_ring_idx_threaded_order(void **state)
{
	(void)state;
	idx_threaded(64, THREADED_ITEMS);
}

/* The smallest rings: the threads hand over nearly every item, wrapping all the time. */
static void test_ring_threaded_two_slots(void **state)
{
	(void)state;
	ev_threaded(4096, 100000);
	idx_threaded(2, 100000);
}

static uint8_t pool_byte(uint32_t slot, size_t off)
{
	return (uint8_t)(slot * 131 + off * 7 + (off >> 8) + 1);
}

/* Every slot: `headroom` bytes before text and `cap` after, all writable, none shared. */
static void check_pool(uint32_t n, uint32_t cap, uint32_t headroom)
{
	struct lm_txt_pool *p = NULL;
	struct lm_txt_slot *s, *t;
	uintptr_t lo_s, hi_s, lo_t, hi_t;
	uint32_t i, j;
	size_t off;
	char *base;

	if (lm_ring_pool_open(n, cap, headroom, &p))
		fail_msg("pool n %u cap %u headroom %u: open failed", n, cap, headroom);
	assert_non_null(p);
	assert_int_equal(lm_ring_pool_cnt(p), n);
	for (i = 0; i < n; i++) {
		s = lm_ring_pool_slot(p, i);
		assert_non_null(s);
		assert_ptr_equal(s, lm_ring_pool_slot(p, i));
		assert_non_null(s->text);
		assert_int_equal(s->cap, cap);
		base = s->text - headroom;
		for (off = 0; off < (size_t)headroom + cap; off++)
			base[off] = (char)pool_byte(i, off);
	}
	for (i = 0; i < n; i++) {
		s = lm_ring_pool_slot(p, i);
		base = s->text - headroom;
		for (off = 0; off < (size_t)headroom + cap; off++)
			if ((uint8_t)base[off] != pool_byte(i, off))
				fail_msg(
				    "pool n %u cap %u headroom %u: slot %u byte %zu overwritten", n,
				    cap, headroom, i, off);
		lo_s = (uintptr_t)s->text - headroom;
		hi_s = (uintptr_t)s->text + cap;
		for (j = 0; j < n; j++) {
			if (j == i)
				continue;
			t = lm_ring_pool_slot(p, j);
			assert_true(t != s);
			lo_t = (uintptr_t)t->text - headroom;
			hi_t = (uintptr_t)t->text + cap;
			if (lo_s < hi_t && lo_t < hi_s)
				fail_msg("pool: slots %u and %u overlap", i, j);
		}
	}
	lm_ring_pool_close(p);
}

static void test_ring_pool_layout(void **state)
{
	(void)state;
	check_pool(8, 4096, 16);
	check_pool(4, 64, 13);
	check_pool(2, 256, 0);
	check_pool(1, 8, 64);
	check_pool(64, 1024, 16);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ring_ev_open_rejects_bad_size),
	    cmocka_unit_test(test_ring_idx_open_rejects_bad_size),
	    cmocka_unit_test(test_ring_close_accepts_null),
	    cmocka_unit_test(test_ring_ev_capacity),
	    cmocka_unit_test(test_ring_idx_capacity),
	    cmocka_unit_test(test_ring_wraparound),
	    cmocka_unit_test(test_ring_ev_threaded_order),
	    cmocka_unit_test(test_ring_idx_threaded_order),
	    cmocka_unit_test(test_ring_threaded_two_slots),
	    cmocka_unit_test(test_ring_pool_layout),
	};

	return cmocka_run_group_tests_name("ring", tests, NULL, NULL);
}
