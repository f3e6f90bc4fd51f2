// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for core/pipeline.c: the pipeline built without a reader or ws server (as
 * bench/pipeline.c builds it) carries every event the test produces into ev_ring to the file
 * sink and to txt_ring; open names the part it could not build; text slots fit a line and a
 * batch. No root, BPF or network: the test thread plays lm-reader and lm-ws.
 */
#include "core/pipeline.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/json.h"
#include "tests/rec_build.h"

#define TP_EVENTS 20000

static _Atomic uint64_t tp_publishes;

static void tp_publish(void *ctx)
{
	(void)ctx;
	/* relaxed: a count only, read after lm_pipeline_stop joined the thread */
	atomic_fetch_add_explicit(&tp_publishes, 1, memory_order_relaxed);
}

static uint64_t tp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Plays lm-ws: returns every published slot; returns the newest seq seen. */
static uint64_t tp_drain(struct lm_pipeline *p, uint64_t last)
{
	uint32_t idx;

	while (lm_ring_idx_pop(lm_pipeline_txt_ring(p), &idx)) {
		last = lm_ring_pool_slot(lm_pipeline_pool(p), idx)->last_seq;
		lm_ring_idx_push(lm_pipeline_free_ring(p), idx);
	}
	return last;
}

static void tp_wake(struct lm_pipeline *p)
{
	uint64_t one = 1;

	assert_int_equal(write(lm_pipeline_wake(p), &one, sizeof(one)), sizeof(one));
}

static void test_pipeline_carries_events_without_reader_or_ws(void **state)
{
	char dir[] = "/tmp/test_pipeline.XXXXXX", path[64];
	struct lm_pipeline_opts o = {
		.max_args_bytes = LM_ARGS_DEFAULT,
		.publish = tp_publish,
	};
	enum lm_pipeline_part part;
	struct lm_pipeline *p = NULL;
	const struct lm_stats *st;
	uint64_t rec[64], seq, last = 0, deadline, lines = 0;
	struct rb_spec s;
	uint32_t size;
	char buf[4096];
	size_t n, i;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/out.jsonl", dir);
	o.output = path;
	assert_int_equal(lm_pipeline_open(&o, &p, &part), 0);
	assert_int_equal(part, LM_PIPELINE_PART_NONE);
	assert_int_equal(lm_pipeline_start(p), 0);
	rb_spec_init(&s, LM_EV_EXIT);
	for (seq = 1; seq <= TP_EVENTS; seq++) {
		struct lm_rec *e;

		s.pid = (uint32_t)(1000 + seq);
		s.tid = s.pid;
		s.ts_ns = seq * 1000;
		size = rb_build(&s, rec, sizeof(rec));
		deadline = tp_now_ns() + 5000000000ULL;
		while (!(e = lm_ring_ev_reserve(lm_pipeline_ev_ring(p), size))) {
			tp_wake(p);
			last = tp_drain(p, last);
			assert_true(tp_now_ns() < deadline);
			usleep(100);
		}
		e->seq = seq;
		e->kernel_lost = 0;
		e->cpu = 0;
		memcpy(lm_rec_data(e), rec, size);
		lm_ring_ev_commit(lm_pipeline_ev_ring(p));
		if (seq % 256 == 0)
			tp_wake(p);
	}
	tp_wake(p);
	deadline = tp_now_ns() + 10000000000ULL;
	while ((last = tp_drain(p, last)) < TP_EVENTS) {
		assert_true(tp_now_ns() < deadline);
		usleep(1000);
	}
	assert_int_equal(lm_pipeline_stop(p), 0);
	assert_false(lm_pipeline_has_failed(p));
	st = lm_pipeline_stats(p);
	assert_int_equal(lm_stats_get(&st->serialized), TP_EVENTS);
	assert_int_equal(lm_stats_get(&st->sink[LM_STATS_SINK_FILE].delivered), TP_EVENTS);
	assert_int_equal(lm_stats_get(&st->sink[LM_STATS_SINK_FILE].dropped), 0);
	assert_true(atomic_load_explicit(&tp_publishes, memory_order_relaxed) > 0);
	assert_int_equal(lm_pipeline_output_error(p), 0);
	lm_pipeline_close(p);

	f = fopen(path, "re");
	assert_non_null(f);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		for (i = 0; i < n; i++)
			lines += buf[i] == '\n';
	fclose(f);
	assert_int_equal(lines, TP_EVENTS);
	unlink(path);
	rmdir(dir);
}

static void test_pipeline_names_the_part_it_could_not_build(void **state)
{
	struct lm_pipeline_opts o = {
		.max_args_bytes = LM_ARGS_DEFAULT,
		.output = "/nonexistent-lifemon-test-dir/out.jsonl",
		.publish = tp_publish,
	};
	enum lm_pipeline_part part;
	struct lm_pipeline *p = (void *)&o;

	(void)state;
	assert_int_equal(lm_pipeline_open(&o, &p, &part), -ENOENT);
	assert_int_equal(part, LM_PIPELINE_PART_FILE);
	assert_null(p);
}

static void test_pipeline_slot_fits_a_line_and_a_batch(void **state)
{
	uint32_t a[] = { LM_ARGS_MIN, LM_ARGS_DEFAULT, LM_ARGS_MAX };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(a) / sizeof(a[0]); i++) {
		uint32_t b = lm_pipeline_slot_bytes(a[i]);

		assert_true(b >= lm_json_event_max(a[i]) + LM_SER_BATCH_BYTES);
		assert_int_equal(b % 4096, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipeline_carries_events_without_reader_or_ws),
		cmocka_unit_test(test_pipeline_names_the_part_it_could_not_build),
		cmocka_unit_test(test_pipeline_slot_fits_a_line_and_a_batch),
	};

	return cmocka_run_group_tests_name("pipeline", tests, NULL, NULL);
}
