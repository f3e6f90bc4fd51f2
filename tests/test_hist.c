// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for net/hist.c, the ws thread's replay history: chunks in order, eviction by
 * ring room and by text budget, skip markers at the ring's end, seek by seq.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/hist.h"

#define HEADROOM 16
#define LINES_MAX 8

/* A slot of `lines` events with seqs from `first`, each line "<seq>\n" padded to `len`. */
struct fake {
	struct lm_txt_slot s;
	char text[4096];
	struct lm_line l[LINES_MAX];
	char str[256];
};

static void fake_slot(struct fake *f, uint64_t first, uint32_t lines, uint32_t len)
{
	uint32_t i;

	memset(f, 0, sizeof(*f));
	f->s.text = f->text;
	f->s.lines = f->l;
	f->s.str = f->str;
	f->s.cap = sizeof(f->text);
	f->s.str_cap = sizeof(f->str);
	for (i = 0; i < lines; i++) {
		struct lm_line *l = &f->l[i];

		l->seq = first + i;
		l->off = f->s.len;
		l->len = len;
		l->type = 1;
		l->str_off = f->s.str_len;
		memset(f->text + f->s.len, 'x', len);
		snprintf(f->text + f->s.len, len, "%llu", (unsigned long long)(first + i));
		f->text[f->s.len + len - 1] = '\n';
		f->s.len += len;
		f->str[f->s.str_len++] = 'c';
		f->str[f->s.str_len++] = '\0';
	}
	f->s.line_cnt = lines;
	f->s.ev_cnt = lines;
	f->s.first_seq = first;
	f->s.last_seq = first + lines - 1;
}

static void test_hist_open_rejects_bad_sizes(void **state)
{
	struct lm_hist *h;

	(void)state;
	assert_int_equal(lm_hist_open(1024, 100, HEADROOM, &h), -EINVAL);
	assert_null(h);
	assert_int_equal(lm_hist_open(4096 + 8, 100, HEADROOM, &h), -EINVAL);
	assert_int_equal(lm_hist_open(4096, 0, HEADROOM, &h), -EINVAL);
	lm_hist_close(NULL);
}

static void test_hist_append_reads_back_in_order(void **state)
{
	struct lm_hist *h;
	struct fake f;
	uint64_t pos, seq = 1;
	int i;

	(void)state;
	assert_int_equal(lm_hist_open(64 * 1024, 1 << 20, HEADROOM, &h), 0);
	assert_int_equal(lm_hist_first_seq(h), 0);
	assert_int_equal(lm_hist_next_seq(h), 1);
	for (i = 0; i < 5; i++) {
		fake_slot(&f, 1 + (uint64_t)i * 3, 3, 40);
		assert_int_equal(lm_hist_append(h, &f.s), 0);
	}
	assert_int_equal(lm_hist_len(h), 5);
	assert_int_equal(lm_hist_first_seq(h), 1);
	assert_int_equal(lm_hist_next_seq(h), 16);
	assert_int_equal(lm_hist_text_bytes(h), 5 * 3 * 40);
	for (pos = lm_hist_tail(h); pos < lm_hist_head(h); pos = lm_hist_next(h, pos)) {
		const struct lm_hist_chunk *c = lm_hist_at(h, pos);
		const struct lm_line *l = lm_hist_lines(c);
		uint32_t j;

		assert_non_null(c);
		assert_int_equal(c->first_seq, seq);
		/* headroom in front of the text is inside the chunk */
		assert_true(lm_hist_text(c) - (const char *)c >= (ptrdiff_t)(sizeof(*c) + HEADROOM));
		for (j = 0; j < c->line_cnt; j++, seq++) {
			char want[16];

			assert_int_equal(l[j].seq, seq);
			snprintf(want, sizeof(want), "%llu", (unsigned long long)seq);
			assert_memory_equal(lm_hist_text(c) + l[j].off, want, strlen(want));
			assert_string_equal(lm_hist_str(c) + l[j].str_off, "c");
		}
	}
	assert_int_equal(seq, 16);
	assert_null(lm_hist_at(h, lm_hist_head(h)));
	lm_hist_close(h);
}

/* Appending into a full ring needs evictions; chunks wrap with skip markers, order holds. */
static void test_hist_wraps_with_skip_markers(void **state)
{
	struct lm_hist *h;
	struct fake f;
	uint64_t seq = 1, expect;
	int i;

	(void)state;
	assert_int_equal(lm_hist_open(16384, 1 << 20, HEADROOM, &h), 0);
	for (i = 0; i < 500; i++) {
		/* sizes vary so the room left at the end varies */
		uint32_t n = 1 + (uint32_t)(i % LINES_MAX), len = 20 + (uint32_t)(i * 7 % 200);

		fake_slot(&f, seq, n, len);
		while (!lm_hist_has_room(h, &f.s)) {
			assert_int_equal(lm_hist_append(h, &f.s), -ENOSPC);
			assert_true(lm_hist_evict(h));
		}
		assert_int_equal(lm_hist_append(h, &f.s), 0);
		seq += n;
		/* every kept chunk reads back, in seq order, up to the newest */
		expect = lm_hist_first_seq(h);
		for (uint64_t pos = lm_hist_tail(h); pos < lm_hist_head(h);
		     pos = lm_hist_next(h, pos)) {
			const struct lm_hist_chunk *c = lm_hist_at(h, pos);

			assert_int_equal(c->first_seq, expect);
			assert_int_equal(lm_hist_lines(c)[0].seq, expect);
			expect = c->last_seq + 1;
		}
		assert_int_equal(expect, seq);
		assert_true(lm_hist_head(h) - lm_hist_tail(h) <= 16384);
	}
	lm_hist_close(h);
}

/*
 * A reader at head before an append reads the new chunk at lm_hist_newest, which differs
 * from the old head when the chunk went to the ring's start after a skip marker.
 */
static void test_hist_newest_follows_a_skip_marker(void **state)
{
	struct lm_hist *h;
	struct fake f;
	uint64_t head, seq = 1;
	bool wrapped = false;
	int i;

	(void)state;
	assert_int_equal(lm_hist_open(16384, 1 << 20, HEADROOM, &h), 0);
	assert_int_equal(lm_hist_newest(h), lm_hist_head(h));
	for (i = 0; i < 200; i++) {
		fake_slot(&f, seq, 3, 300);
		while (!lm_hist_has_room(h, &f.s))
			assert_true(lm_hist_evict(h));
		head = lm_hist_head(h);
		assert_int_equal(lm_hist_append(h, &f.s), 0);
		assert_int_equal(lm_hist_at(h, lm_hist_newest(h))->first_seq, seq);
		if (lm_hist_newest(h) != head) {
			/* the old head holds the skip marker; the chunk is at the ring's start */
			wrapped = true;
			assert_int_equal(lm_hist_newest(h) % 16384, 0);
			assert_true(lm_hist_newest(h) > head);
		}
		seq += 3;
	}
	assert_true(wrapped);
	lm_hist_close(h);
}

static void test_hist_text_budget_limits_what_is_kept(void **state)
{
	struct lm_hist *h;
	struct fake f;

	(void)state;
	assert_int_equal(lm_hist_open(64 * 1024, 250, HEADROOM, &h), 0);
	fake_slot(&f, 1, 2, 100);
	assert_int_equal(lm_hist_append(h, &f.s), 0);
	fake_slot(&f, 3, 1, 50);
	assert_int_equal(lm_hist_append(h, &f.s), 0); /* 250 of 250 */
	fake_slot(&f, 4, 1, 10);
	assert_false(lm_hist_has_room(h, &f.s));
	assert_int_equal(lm_hist_append(h, &f.s), -ENOSPC);
	assert_true(lm_hist_evict(h));
	assert_int_equal(lm_hist_first_seq(h), 3);
	assert_int_equal(lm_hist_append(h, &f.s), 0);
	assert_int_equal(lm_hist_text_bytes(h), 60);
	/* alone, a chunk larger than the budget is still kept: the newest is always there */
	while (lm_hist_evict(h))
		;
	assert_int_equal(lm_hist_first_seq(h), 0);
	assert_int_equal(lm_hist_next_seq(h), 5);
	fake_slot(&f, 5, 4, 100);
	assert_int_equal(lm_hist_append(h, &f.s), 0);
	lm_hist_close(h);
}

static void test_hist_refuses_what_never_fits(void **state)
{
	struct lm_hist *h;
	struct fake f;

	(void)state;
	assert_int_equal(lm_hist_open(4096, 1 << 20, HEADROOM, &h), 0);
	fake_slot(&f, 1, 8, 200); /* more than a quarter of the ring */
	assert_int_equal(lm_hist_append(h, &f.s), -EINVAL);
	fake_slot(&f, 1, 1, 10);
	f.s.ev_cnt = 0;
	assert_int_equal(lm_hist_append(h, &f.s), -EINVAL);
	assert_int_equal(lm_hist_len(h), 0);
	lm_hist_close(h);
}

static void test_hist_seek_finds_first_line_at_or_after(void **state)
{
	struct lm_hist *h;
	struct fake f;
	uint64_t pos;
	uint32_t line;
	const struct lm_hist_chunk *c;

	(void)state;
	assert_int_equal(lm_hist_open(64 * 1024, 1 << 20, HEADROOM, &h), 0);
	fake_slot(&f, 10, 3, 30); /* 10 11 12 */
	/* a notice standing before event 11 carries 11: replayed with it */
	f.l[1].type = 0;
	f.l[1].seq = 11;
	f.l[2].seq = 11;
	f.s.last_seq = 11;
	assert_int_equal(lm_hist_append(h, &f.s), 0);
	fake_slot(&f, 12, 3, 30); /* 12 13 14 */
	assert_int_equal(lm_hist_append(h, &f.s), 0);

	lm_hist_seek(h, 1, &pos, &line); /* older than kept: the oldest line */
	assert_int_equal(pos, lm_hist_tail(h));
	assert_int_equal(line, 0);
	lm_hist_seek(h, 11, &pos, &line);
	assert_int_equal(pos, lm_hist_tail(h));
	assert_int_equal(line, 1); /* the notice first */
	lm_hist_seek(h, 13, &pos, &line);
	c = lm_hist_at(h, pos);
	assert_int_equal(c->first_seq, 12);
	assert_int_equal(line, 1);
	lm_hist_seek(h, 15, &pos, &line); /* the next event: live */
	assert_int_equal(pos, lm_hist_head(h));
	assert_int_equal(line, 0);
	lm_hist_close(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hist_open_rejects_bad_sizes),
		cmocka_unit_test(test_hist_append_reads_back_in_order),
		cmocka_unit_test(test_hist_wraps_with_skip_markers),
		cmocka_unit_test(test_hist_newest_follows_a_skip_marker),
		cmocka_unit_test(test_hist_text_budget_limits_what_is_kept),
		cmocka_unit_test(test_hist_refuses_what_never_fits),
		cmocka_unit_test(test_hist_seek_finds_first_line_at_or_after),
	};

	return cmocka_run_group_tests_name("hist", tests, NULL, NULL);
}
