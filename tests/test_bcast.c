// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for net/bcast.c, the ws thread's broadcast ring: FIFO eviction when full,
 * cursors that keep up, fall behind and are told exactly which seqs they lost, and a long
 * randomized run where every seq is delivered or reported lost exactly once per cursor.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/bcast.h"

/* Deterministic entries: entry i is slot 1000 + i and covers seqs 10 i + 1 .. 10 i + 10. */
static struct lm_bcast_entry ent(uint64_t i)
{
	struct lm_bcast_entry e = {
	    .slot = (uint32_t)(1000 + i),
	    .ev_cnt = 10,
	    .first_seq = 10 * i + 1,
	    .last_seq = 10 * i + 10,
	};

	return e;
}

static int push_ent(struct lm_bcast *b, uint64_t i, uint32_t *evicted)
{
	struct lm_bcast_entry e = ent(i);

	return lm_bcast_push(b, &e, evicted);
}

static void expect_entry(const struct lm_bcast_entry *got, uint64_t i)
{
	struct lm_bcast_entry want = ent(i);

	if (!got)
		fail_msg("got no entry, want entry %llu", (unsigned long long)i);
	if (got->slot != want.slot || got->ev_cnt != want.ev_cnt ||
	    got->first_seq != want.first_seq || got->last_seq != want.last_seq)
		fail_msg("got slot %u seqs %llu..%llu, want entry %llu (slot %u seqs %llu..%llu)",
			 got->slot, (unsigned long long)got->first_seq,
			 (unsigned long long)got->last_seq, (unsigned long long)i, want.slot,
			 (unsigned long long)want.first_seq, (unsigned long long)want.last_seq);
}

/* lm_bcast_next with *loss poisoned, so an unset loss cannot look like "nothing missed". */
static const struct lm_bcast_entry *next(const struct lm_bcast *b, struct lm_bcast_cursor *c,
					 struct lm_bcast_loss *loss)
{
	memset(loss, 0xa5, sizeof(*loss));
	return lm_bcast_next(b, c, loss);
}

static void test_bcast_open_rejects_bad_cap(void **state)
{
	static const uint32_t bad[] = {0, 1, 3, 5, 6, 12, 1000, 0x80000001u, UINT32_MAX};
	struct lm_bcast *b;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		b = NULL;
		if (lm_bcast_open(bad[i], &b) != -EINVAL)
			fail_msg("cap %u: want -EINVAL", bad[i]);
		assert_null(b);
	}
	lm_bcast_close(NULL);
}

static void test_bcast_push_evicts_fifo_when_full(void **state)
{
	struct lm_bcast *b;
	uint32_t ev, i;

	(void)state;
	assert_int_equal(lm_bcast_open(4, &b), 0);
	assert_int_equal(lm_bcast_len(b), 0);
	for (i = 0; i < 4; i++) {
		ev = 0xdeadbeef;
		assert_int_equal(push_ent(b, i, &ev), 0);
		assert_int_equal(lm_bcast_len(b), i + 1);
	}
	/* Full: each push now hands back the oldest slot, in push order. */
	for (i = 4; i < 40; i++) {
		ev = 0xdeadbeef;
		assert_int_equal(push_ent(b, i, &ev), 1);
		assert_int_equal(ev, ent(i - 4).slot);
		assert_int_equal(lm_bcast_len(b), 4);
	}
	lm_bcast_close(b);
}

static void test_bcast_pop_oldest_drains(void **state)
{
	struct lm_bcast *b;
	uint32_t slot, ev, i;

	(void)state;
	assert_int_equal(lm_bcast_open(4, &b), 0);
	assert_false(lm_bcast_pop_oldest(b, &slot));
	for (i = 0; i < 2; i++)
		assert_int_equal(push_ent(b, i, &ev), 0);
	for (i = 0; i < 2; i++) {
		assert_true(lm_bcast_pop_oldest(b, &slot));
		assert_int_equal(slot, ent(i).slot);
		assert_int_equal(lm_bcast_len(b), 1 - i);
	}
	assert_false(lm_bcast_pop_oldest(b, &slot));

	/* After a wrap: the kept four come out oldest first, then nothing. */
	for (i = 10; i < 17; i++)
		push_ent(b, i, &ev);
	assert_int_equal(lm_bcast_len(b), 4);
	for (i = 13; i < 17; i++) {
		assert_true(lm_bcast_pop_oldest(b, &slot));
		assert_int_equal(slot, ent(i).slot);
	}
	assert_int_equal(lm_bcast_len(b), 0);
	assert_false(lm_bcast_pop_oldest(b, &slot));

	/* A drained ring fills to cap again before it evicts. */
	for (i = 20; i < 24; i++)
		assert_int_equal(push_ent(b, i, &ev), 0);
	assert_int_equal(push_ent(b, 24, &ev), 1);
	assert_int_equal(ev, ent(20).slot);
	lm_bcast_close(b);
}

static void test_bcast_cursor_init_sees_only_new(void **state)
{
	struct lm_bcast_cursor c;
	struct lm_bcast_loss loss;
	struct lm_bcast *b;
	uint32_t ev, i;

	(void)state;
	assert_int_equal(lm_bcast_open(4, &b), 0);
	lm_bcast_cursor_init(b, &c);
	assert_null(next(b, &c, &loss));
	assert_true(lm_bcast_behind(b, &c) == 0);

	for (i = 0; i < 3; i++)
		push_ent(b, i, &ev);
	lm_bcast_cursor_init(b, &c);
	assert_true(lm_bcast_behind(b, &c) == 0);
	assert_null(next(b, &c, &loss));

	push_ent(b, 3, &ev);
	assert_true(lm_bcast_behind(b, &c) == 1);
	expect_entry(next(b, &c, &loss), 3);
	assert_true(loss.cnt == 0);
	assert_true(lm_bcast_behind(b, &c) == 0);
	assert_null(next(b, &c, &loss));

	/* Also after the ring has wrapped. */
	for (i = 4; i < 11; i++)
		push_ent(b, i, &ev);
	lm_bcast_cursor_init(b, &c);
	assert_null(next(b, &c, &loss));
	push_ent(b, 11, &ev);
	expect_entry(next(b, &c, &loss), 11);
	assert_true(loss.cnt == 0);
	lm_bcast_close(b);
}

static void test_bcast_cursor_keeps_up(void **state)
{
	struct lm_bcast_cursor c;
	struct lm_bcast_loss loss;
	struct lm_bcast *b;
	uint32_t ev, i, k;
	uint64_t n = 0;

	(void)state;
	assert_int_equal(lm_bcast_open(4, &b), 0);
	lm_bcast_cursor_init(b, &c);
	for (i = 0; i < 100; i++) {
		/* Bursts of up to cap entries, read before the next burst. */
		for (k = 0; k <= i % 4; k++)
			push_ent(b, n + k, &ev);
		assert_true(lm_bcast_behind(b, &c) == k);
		for (k = 0; k <= i % 4; k++) {
			expect_entry(next(b, &c, &loss), n + k);
			if (loss.cnt != 0)
				fail_msg("entry %llu: loss cnt %llu on a cursor that kept up",
					 (unsigned long long)(n + k), (unsigned long long)loss.cnt);
			assert_true(c.next_seq == ent(n + k).last_seq + 1);
		}
		n += k;
		assert_null(next(b, &c, &loss));
		assert_true(lm_bcast_behind(b, &c) == 0);
	}
	lm_bcast_close(b);
}

/*
 * A cursor that has read entries 0..r-1 and then stays k entries behind: with k <= cap it
 * loses nothing; with k > cap it skips to the oldest kept entry and is told the exact seqs
 * of the k - cap evicted entries it never read.
 */
static void test_bcast_cursor_falls_behind(void **state)
{
	const uint32_t cap = 4;
	struct lm_bcast_cursor c;
	struct lm_bcast_loss loss;
	struct lm_bcast *b;
	uint64_t r, k, i, oldest;
	uint32_t ev;

	(void)state;
	for (r = 1; r <= 6; r++) {
		for (k = 1; k <= 3 * cap + 1; k++) {
			assert_int_equal(lm_bcast_open(cap, &b), 0);
			lm_bcast_cursor_init(b, &c);
			for (i = 0; i < r; i++) {
				push_ent(b, i, &ev);
				expect_entry(next(b, &c, &loss), i);
				assert_true(loss.cnt == 0);
			}
			for (i = r; i < r + k; i++)
				push_ent(b, i, &ev);
			assert_true(lm_bcast_behind(b, &c) == k);

			oldest = k > cap ? r + k - cap : r;
			expect_entry(next(b, &c, &loss), oldest);
			if (k <= cap) {
				if (loss.cnt != 0)
					fail_msg("r %llu k %llu: loss cnt %llu, want 0",
						 (unsigned long long)r, (unsigned long long)k,
						 (unsigned long long)loss.cnt);
			} else if (loss.first_seq != 10 * r + 1 || loss.last_seq != 10 * oldest ||
				   loss.cnt != 10 * (oldest - r)) {
				fail_msg(
				    "r %llu k %llu: lost %llu..%llu (%llu), want %llu..%llu (%llu)",
				    (unsigned long long)r, (unsigned long long)k,
				    (unsigned long long)loss.first_seq,
				    (unsigned long long)loss.last_seq, (unsigned long long)loss.cnt,
				    (unsigned long long)(10 * r + 1),
				    (unsigned long long)(10 * oldest),
				    (unsigned long long)(10 * (oldest - r)));
			}
			/* The rest follows in order with no further loss. */
			for (i = oldest + 1; i < r + k; i++) {
				expect_entry(next(b, &c, &loss), i);
				assert_true(loss.cnt == 0);
			}
			assert_null(next(b, &c, &loss));
			assert_true(lm_bcast_behind(b, &c) == 0);
			lm_bcast_close(b);
		}
	}
}

/* Cursors at different points each get their own loss; one cursor's reads never move another. */
static void test_bcast_cursors_independent(void **state)
{
	struct lm_bcast_cursor fast, slow;
	struct lm_bcast_loss loss;
	struct lm_bcast *b;
	uint32_t ev;
	uint64_t i;

	(void)state;
	assert_int_equal(lm_bcast_open(8, &b), 0);
	lm_bcast_cursor_init(b, &fast);
	lm_bcast_cursor_init(b, &slow);
	push_ent(b, 0, &ev);
	expect_entry(next(b, &slow, &loss), 0);
	for (i = 0; i < 20; i++) {
		if (i)
			push_ent(b, i, &ev);
		expect_entry(next(b, &fast, &loss), i);
		assert_true(loss.cnt == 0);
	}
	assert_true(lm_bcast_behind(b, &slow) == 19);
	expect_entry(next(b, &slow, &loss), 12);
	assert_true(loss.first_seq == 11 && loss.last_seq == 120 && loss.cnt == 110);
	assert_null(next(b, &fast, &loss));
	lm_bcast_close(b);
}

/* splitmix64: fixed seed, reproducible. */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

#define RND_PUSHES 1000000u
#define RND_CURSORS 6
#define RND_CAP 8u

struct rnd_reader {
	struct lm_bcast_cursor c;
	uint32_t read_per_mille; /* chance per push that this reader reads now */
	uint32_t max_burst;	 /* most entries it reads when it does */
	uint64_t want_seq;	 /* next seq it must get or be told it lost */
	uint64_t pos;		 /* model of its ring position (entries pushed before) */
	uint64_t delivered;	 /* events delivered */
	uint64_t lost;		 /* events reported lost */
	uint64_t loss_reports;
};

/*
 * One reader's read: every seq must come as delivered or lost, in order, exactly once.
 * Entries have 1..5 events each, contiguous seqs; entry i is slot i.
 */
static void rnd_read(const struct lm_bcast *b, struct rnd_reader *rd, const uint64_t *first_seq,
		     uint64_t pushed, uint32_t n, int who)
{
	const struct lm_bcast_entry *e;
	struct lm_bcast_loss loss;
	uint64_t behind;

	while (n--) {
		behind = lm_bcast_behind(b, &rd->c);
		if (behind != pushed - rd->pos)
			fail_msg("reader %d: behind %llu, want %llu", who,
				 (unsigned long long)behind,
				 (unsigned long long)(pushed - rd->pos));
		e = next(b, &rd->c, &loss);
		if (!e) {
			if (rd->pos != pushed)
				fail_msg("reader %d: no entry at pos %llu of %llu", who,
					 (unsigned long long)rd->pos, (unsigned long long)pushed);
			return;
		}
		if (e->slot >= pushed || e->first_seq != first_seq[e->slot] ||
		    e->last_seq != first_seq[e->slot + 1] - 1 ||
		    e->ev_cnt != e->last_seq - e->first_seq + 1)
			fail_msg("reader %d: corrupt entry slot %u seqs %llu..%llu", who, e->slot,
				 (unsigned long long)e->first_seq, (unsigned long long)e->last_seq);
		if (e->slot < rd->pos)
			fail_msg("reader %d: entry %u again (pos %llu)", who, e->slot,
				 (unsigned long long)rd->pos);
		if (e->slot > rd->pos && pushed - rd->pos <= RND_CAP)
			fail_msg(
			    "reader %d: skipped to %u from pos %llu though nothing was evicted",
			    who, e->slot, (unsigned long long)rd->pos);
		if (pushed - rd->pos > RND_CAP && e->slot != pushed - RND_CAP)
			fail_msg(
			    "reader %d: fell behind to pos %llu, got %u, want the oldest kept %llu",
			    who, (unsigned long long)rd->pos, e->slot,
			    (unsigned long long)(pushed - RND_CAP));
		if (e->first_seq != rd->want_seq) {
			if (loss.cnt == 0 || loss.first_seq != rd->want_seq ||
			    loss.last_seq != e->first_seq - 1 ||
			    loss.cnt != loss.last_seq - loss.first_seq + 1)
				fail_msg("reader %d: at %llu got %llu.., lost %llu..%llu (%llu)",
					 who, (unsigned long long)rd->want_seq,
					 (unsigned long long)e->first_seq,
					 (unsigned long long)loss.first_seq,
					 (unsigned long long)loss.last_seq,
					 (unsigned long long)loss.cnt);
			rd->lost += loss.cnt;
			rd->loss_reports++;
		} else if (loss.cnt != 0) {
			fail_msg("reader %d: loss cnt %llu with no gap at seq %llu", who,
				 (unsigned long long)loss.cnt, (unsigned long long)rd->want_seq);
		}
		rd->delivered += e->ev_cnt;
		rd->want_seq = e->last_seq + 1;
		rd->pos = e->slot + 1ULL;
		if (rd->c.next_seq != rd->want_seq)
			fail_msg("reader %d: cursor next_seq %llu, want %llu", who,
				 (unsigned long long)rd->c.next_seq,
				 (unsigned long long)rd->want_seq);
	}
}

static void test_bcast_randomized_exactly_once(void **state)
{
	static const uint32_t per_mille[RND_CURSORS] = {1000, 900, 400, 130, 30, 2};
	static const uint32_t burst[RND_CURSORS] = {64, 2, 3, 8, 40, 200};
	struct rnd_reader rd[RND_CURSORS];
	struct lm_bcast_entry e;
	struct lm_bcast *b;
	uint64_t *first_seq, seq = 1, oldest = 0;
	uint32_t ev, i;
	int j, ret;

	(void)state;
	rng_state = 0x6263617374000001ULL;
	first_seq = calloc(RND_PUSHES + 1, sizeof(*first_seq));
	assert_non_null(first_seq);
	assert_int_equal(lm_bcast_open(RND_CAP, &b), 0);
	memset(rd, 0, sizeof(rd));

	for (i = 0; i < RND_PUSHES; i++) {
		e.slot = i;
		e.ev_cnt = 1 + rng_next() % 5;
		e.first_seq = seq;
		e.last_seq = seq + e.ev_cnt - 1;
		first_seq[i] = seq;
		first_seq[i + 1] = e.last_seq + 1;
		seq = e.last_seq + 1;
		if (i == 0) {
			for (j = 0; j < RND_CURSORS; j++) {
				lm_bcast_cursor_init(b, &rd[j].c);
				rd[j].read_per_mille = per_mille[j];
				rd[j].max_burst = burst[j];
				rd[j].want_seq = 1;
			}
		}
		ev = 0xdeadbeef;
		ret = lm_bcast_push(b, &e, &ev);
		if (i < RND_CAP) {
			assert_int_equal(ret, 0);
		} else {
			if (ret != 1 || ev != oldest)
				fail_msg("push %u: returned %d evicted %u, want 1 and %llu", i, ret,
					 ev, (unsigned long long)oldest);
			oldest++;
		}
		/* Every reader reads its first entry, so its loss accounting starts at seq 1. */
		for (j = 0; j < RND_CURSORS; j++)
			if (i == 0 || rng_next() % 1000 < rd[j].read_per_mille)
				rnd_read(b, &rd[j], first_seq, i + 1ULL,
					 1 + rng_next() % rd[j].max_burst, j);
	}
	for (j = 0; j < RND_CURSORS; j++) {
		rnd_read(b, &rd[j], first_seq, RND_PUSHES, UINT32_MAX, j);
		assert_null(next(b, &rd[j].c, &(struct lm_bcast_loss){0}));
		if (rd[j].want_seq != seq || rd[j].delivered + rd[j].lost != seq - 1)
			fail_msg("reader %d: up to seq %llu, %llu delivered + %llu lost, want %llu",
				 j, (unsigned long long)rd[j].want_seq,
				 (unsigned long long)rd[j].delivered,
				 (unsigned long long)rd[j].lost, (unsigned long long)(seq - 1));
		print_message("reader %d: %llu delivered, %llu lost in %llu reports\n", j,
			      (unsigned long long)rd[j].delivered, (unsigned long long)rd[j].lost,
			      (unsigned long long)rd[j].loss_reports);
	}
	/* The fast reader never lost; the slowest did, or the test proves nothing. */
	assert_true(rd[0].lost == 0);
	assert_true(rd[RND_CURSORS - 1].lost > 0);
	lm_bcast_close(b);
	free(first_seq);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bcast_open_rejects_bad_cap),
	    cmocka_unit_test(test_bcast_push_evicts_fifo_when_full),
	    cmocka_unit_test(test_bcast_pop_oldest_drains),
	    cmocka_unit_test(test_bcast_cursor_init_sees_only_new),
	    cmocka_unit_test(test_bcast_cursor_keeps_up),
	    cmocka_unit_test(test_bcast_cursor_falls_behind),
	    cmocka_unit_test(test_bcast_cursors_independent),
	    cmocka_unit_test(test_bcast_randomized_exactly_once),
	};

	return cmocka_run_group_tests_name("bcast", tests, NULL, NULL);
}
