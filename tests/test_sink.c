// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for core/sink.c with real io_uring writes to temp files and pipes: order and
 * completeness, size rotation, reopen after the file was moved, and loss accounting with an
 * in-band LOST line when the reader of a pipe stalls. Single test thread plus a drainer.
 */
#include "core/sink.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define SLOT_CAP (16 * 1024)

static char dir[] = "/tmp/lm-test-sink-XXXXXX";
static char text_mem[SLOT_CAP];

/* A slot with `n` events seq first.. as lines {"seq":N,"pad":"xx..."}. */
static void make_slot(struct lm_txt_slot *slot, uint64_t first, uint32_t n, uint32_t pad)
{
	uint32_t i, len = 0;

	slot->text = text_mem;
	slot->cap = SLOT_CAP;
	for (i = 0; i < n; i++) {
		int w = snprintf(text_mem + len, SLOT_CAP - len, "{\"seq\":%" PRIu64 ",\"pad\":\"%*s\"}\n",
				 first + i, (int)pad, "");

		assert_true(w > 0 && (uint32_t)w < SLOT_CAP - len);
		len += (uint32_t)w;
	}
	slot->len = len;
	slot->ev_cnt = n;
	slot->first_seq = first;
	slot->last_seq = first + n - 1;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *data;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	data = calloc(1, (size_t)n + 1);
	assert_non_null(data);
	assert_int_equal(fread(data, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return data;
}

/* Checks the lines of `data` carry seqs next, next+1, ...; returns the next expected. */
static uint64_t check_seqs(const char *data, uint64_t next)
{
	const char *p = data;
	uint64_t seq;

	while (*p) {
		assert_int_equal(sscanf(p, "{\"seq\":%" SCNu64, &seq), 1);
		assert_true(seq == next);
		next++;
		p = strchr(p, '\n');
		assert_non_null(p);
		p++;
	}
	return next;
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static void test_sink_writes_every_line_in_order(void **state)
{
	struct lm_stats stats = { 0 };
	struct lm_sink_opts o = { .fd = -1, .id = LM_STATS_SINK_FILE, .buf_bytes = 65536,
				  .buf_cnt = 4, .notify_fd = -1 };
	struct lm_txt_slot slot;
	struct lm_sink *s;
	char path[64];
	uint64_t seq = 1;
	size_t len;
	char *data;
	int i;

	(void)state;
	snprintf(path, sizeof(path), "%s/order.jsonl", dir);
	o.path = path;
	assert_int_equal(lm_sink_open(&o, &stats, &s), 0);
	for (i = 0; i < 2000; i++) {
		make_slot(&slot, seq, 1 + i % 50, i % 7);
		assert_int_equal(lm_sink_put(s, &slot), 0);
		seq += slot.ev_cnt;
		assert_int_equal(lm_sink_reap(s), 0);
	}
	assert_int_equal(lm_sink_drain(s, 5000), 0);
	assert_true(lm_sink_is_idle(s));
	lm_sink_close(s);
	data = slurp(path, &len);
	assert_non_null(data);
	assert_int_equal(check_seqs(data, 1), seq);
	assert_int_equal(lm_stats_get(&stats.sink[LM_STATS_SINK_FILE].delivered), seq - 1);
	assert_int_equal(lm_stats_get(&stats.sink[LM_STATS_SINK_FILE].dropped), 0);
	assert_int_equal(lm_stats_get(&stats.sink[LM_STATS_SINK_FILE].bytes), len);
	free(data);
}

static void test_sink_rotates_by_size(void **state)
{
	struct lm_stats stats = { 0 };
	struct lm_sink_opts o = { .fd = -1, .id = LM_STATS_SINK_FILE, .buf_bytes = 262144,
				  .buf_cnt = 4, .notify_fd = -1, .max_bytes = 65536, .keep = 2 };
	const char *suffix[] = { ".2", ".1", "" };
	struct lm_txt_slot slot;
	struct lm_sink *s;
	char path[64], name[80];
	uint64_t seq = 1, next = 0;
	struct stat st;
	int i;

	(void)state;
	snprintf(path, sizeof(path), "%s/rot.jsonl", dir);
	o.path = path;
	assert_int_equal(lm_sink_open(&o, &stats, &s), 0);
	for (i = 0; i < 400; i++) {
		make_slot(&slot, seq, 10, 40);
		assert_int_equal(lm_sink_put(s, &slot), 0);
		seq += 10;
		assert_int_equal(lm_sink_reap(s), 0);
	}
	assert_int_equal(lm_sink_drain(s, 5000), 0);
	lm_sink_close(s);
	snprintf(name, sizeof(name), "%s.3", path);
	assert_int_not_equal(stat(name, &st), 0);
	/* oldest kept to newest: sizes within the limit, seqs contiguous across files */
	for (i = 0; i < 3; i++) {
		size_t len;
		char *data;

		snprintf(name, sizeof(name), "%s%s", path, suffix[i]);
		data = slurp(name, &len);
		assert_non_null(data);
		assert_true(len > 0 && len <= 65536);
		if (!next)
			assert_int_equal(sscanf(data, "{\"seq\":%" SCNu64, &next), 1);
		next = check_seqs(data, next);
		free(data);
	}
	assert_int_equal(next, seq);
}

static void test_sink_reopens_moved_file(void **state)
{
	struct lm_stats stats = { 0 };
	struct lm_sink_opts o = { .fd = -1, .id = LM_STATS_SINK_FILE, .buf_bytes = 65536,
				  .buf_cnt = 2, .notify_fd = -1 };
	struct lm_txt_slot slot;
	struct lm_sink *s;
	char path[64], moved[80];
	size_t len;
	char *data;

	(void)state;
	snprintf(path, sizeof(path), "%s/hup.jsonl", dir);
	snprintf(moved, sizeof(moved), "%s.moved", path);
	o.path = path;
	assert_int_equal(lm_sink_open(&o, &stats, &s), 0);
	make_slot(&slot, 1, 5, 0);
	assert_int_equal(lm_sink_put(s, &slot), 0);
	assert_int_equal(lm_sink_drain(s, 5000), 0);
	assert_int_equal(rename(path, moved), 0);
	lm_sink_request_reopen(s);
	make_slot(&slot, 6, 5, 0);
	assert_int_equal(lm_sink_put(s, &slot), 0);
	assert_int_equal(lm_sink_drain(s, 5000), 0);
	lm_sink_close(s);
	data = slurp(moved, &len);
	assert_int_equal(check_seqs(data, 1), 6);
	free(data);
	data = slurp(path, &len);
	assert_non_null(data);
	assert_int_equal(check_seqs(data, 6), 11);
	free(data);
}

struct drainer {
	int fd;
	char *out;
	size_t len, cap;
};

static void *drain_pipe(void *arg)
{
	struct drainer *d = arg;
	ssize_t n;

	while ((n = read(d->fd, d->out + d->len, d->cap - d->len - 1)) > 0)
		d->len += (size_t)n;
	return NULL;
}

/* A stalled reader: puts fail with -ENOSPC, drops are counted, and a LOST line names them. */
static void test_sink_counts_and_announces_loss(void **state)
{
	struct lm_stats stats = { 0 };
	struct lm_sink_opts o = { .id = LM_STATS_SINK_STDOUT, .buf_bytes = 32768, .buf_cnt = 2,
				  .notify_fd = -1 };
	struct drainer d = { 0 };
	struct lm_txt_slot slot;
	uint64_t seq = 1, lost = 0, announced = 0, next = 1;
	struct lm_sink *s;
	int p[2], i, notices = 0;
	pthread_t th;
	char *line;

	(void)state;
	assert_int_equal(pipe(p), 0);
	fcntl(p[1], F_SETPIPE_SZ, 4096);
	o.fd = p[1];
	assert_int_equal(lm_sink_open(&o, &stats, &s), 0);
	for (i = 0; i < 64; i++) {
		make_slot(&slot, seq, 40, 100);
		if (lm_sink_put(s, &slot) == -ENOSPC)
			lost += 40;
		seq += 40;
		lm_sink_reap(s);
	}
	assert_true(lost > 0);
	assert_int_equal(lm_stats_get(&stats.sink[LM_STATS_SINK_STDOUT].dropped), lost);
	d.fd = p[0];
	d.cap = 8 << 20;
	d.out = calloc(1, d.cap);
	assert_int_equal(pthread_create(&th, NULL, drain_pipe, &d), 0);
	/* the reader is back: what was buffered goes out, then the next slot fits */
	assert_int_equal(lm_sink_drain(s, 5000), 0);
	make_slot(&slot, seq, 1, 0);
	assert_int_equal(lm_sink_put(s, &slot), 0);
	assert_int_equal(lm_sink_drain(s, 5000), 0);
	lm_sink_close(s);
	close(p[1]);
	pthread_join(th, NULL);
	close(p[0]);
	/* every line in order: events continue exactly where the LOST line before them ends */
	for (line = d.out; *line; line = strchr(line, '\n') + 1) {
		uint64_t f, l, c, ev;

		assert_non_null(strchr(line, '\n'));
		if (sscanf(line,
			   "{\"type\":\"LOST\",\"first_seq\":%" SCNu64 ",\"last_seq\":%" SCNu64
			   ",\"count\":%" SCNu64 ",\"reason\":\"sink_full\"}",
			   &f, &l, &c) == 3) {
			assert_int_equal(f, next);
			assert_int_equal(c, l - f + 1);
			announced += c;
			notices++;
			next = l + 1;
			continue;
		}
		assert_int_equal(sscanf(line, "{\"seq\":%" SCNu64, &ev), 1);
		assert_int_equal(ev, next);
		next++;
	}
	assert_true(notices > 0);
	assert_int_equal(next, seq + 1);
	assert_int_equal(announced, lost);
	assert_int_equal(lm_stats_get(&stats.sink[LM_STATS_SINK_STDOUT].delivered) + lost, seq);
	free(d.out);
}

/* Drops after the last successful write are announced when the sink is drained. */
static void test_sink_announces_last_loss_on_drain(void **state)
{
	struct lm_stats stats = { 0 };
	struct lm_sink_opts o = { .id = LM_STATS_SINK_STDOUT, .buf_bytes = 32768, .buf_cnt = 2,
				  .notify_fd = -1 };
	struct drainer d = { 0 };
	struct lm_txt_slot slot;
	uint64_t seq = 1, lost = 0, f = 0, l = 0, c = 0;
	struct lm_sink *s;
	const char *notice;
	pthread_t th;
	int p[2], i;

	(void)state;
	assert_int_equal(pipe(p), 0);
	fcntl(p[1], F_SETPIPE_SZ, 4096);
	o.fd = p[1];
	assert_int_equal(lm_sink_open(&o, &stats, &s), 0);
	for (i = 0; i < 64; i++) {
		make_slot(&slot, seq, 40, 100);
		if (lm_sink_put(s, &slot) == -ENOSPC)
			lost += 40;
		seq += 40;
	}
	assert_true(lost > 0);
	/* no further put: only the drain can announce the tail of the loss */
	d.fd = p[0];
	d.cap = 8 << 20;
	d.out = calloc(1, d.cap);
	assert_int_equal(pthread_create(&th, NULL, drain_pipe, &d), 0);
	assert_int_equal(lm_sink_drain(s, 5000), 0);
	lm_sink_close(s);
	close(p[1]);
	pthread_join(th, NULL);
	close(p[0]);
	notice = strrchr(d.out, '{');
	assert_non_null(notice);
	assert_int_equal(sscanf(notice,
				"{\"type\":\"LOST\",\"first_seq\":%" SCNu64 ",\"last_seq\":%" SCNu64
				",\"count\":%" SCNu64,
				&f, &l, &c),
			 3);
	assert_int_equal(l, seq - 1);
	assert_true(c > 0 && c <= lost);
	free(d.out);
}

static void *drain_pipe_slowly(void *arg)
{
	struct drainer *d = arg;
	ssize_t n;

	for (;;) {
		usleep(40000);
		n = read(d->fd, d->out + d->len, 65536 < d->cap - d->len - 1 ? 65536 : d->cap - d->len - 1);
		if (n <= 0)
			break;
		d->len += (size_t)n;
	}
	return NULL;
}

/* A device that is slow but keeps completing gets backpressure, not drops. */
static void test_sink_waits_for_a_slow_device(void **state)
{
	struct lm_stats stats = { 0 };
	struct lm_sink_opts o = { .id = LM_STATS_SINK_STDOUT, .buf_bytes = 32768, .buf_cnt = 2,
				  .notify_fd = -1 };
	struct drainer d = { 0 };
	struct lm_txt_slot slot;
	struct lm_sink *s;
	uint64_t seq = 1;
	pthread_t th;
	int p[2], i;

	(void)state;
	assert_int_equal(pipe(p), 0);
	fcntl(p[1], F_SETPIPE_SZ, 65536);
	o.fd = p[1];
	d.fd = p[0];
	d.cap = 8 << 20;
	d.out = calloc(1, d.cap);
	assert_int_equal(pthread_create(&th, NULL, drain_pipe_slowly, &d), 0);
	assert_int_equal(lm_sink_open(&o, &stats, &s), 0);
	for (i = 0; i < 60; i++) {
		make_slot(&slot, seq, 40, 100);
		assert_int_equal(lm_sink_put(s, &slot), 0);
		seq += 40;
		lm_sink_reap(s);
	}
	assert_int_equal(lm_sink_drain(s, 10000), 0);
	lm_sink_close(s);
	close(p[1]);
	pthread_join(th, NULL);
	close(p[0]);
	assert_int_equal(lm_stats_get(&stats.sink[LM_STATS_SINK_STDOUT].dropped), 0);
	assert_int_equal(check_seqs(d.out, 1), seq);
	free(d.out);
}

static void test_sink_rejects_bad_options(void **state)
{
	struct lm_stats stats = { 0 };
	struct lm_sink_opts o = { .fd = -1, .buf_bytes = 65536, .buf_cnt = 4, .notify_fd = -1 };
	struct lm_sink *s = (struct lm_sink *)&o;

	(void)state;
	assert_int_equal(lm_sink_open(&o, &stats, &s), -EINVAL);
	assert_null(s);
	o.path = "/nonexistent-dir/x";
	assert_int_equal(lm_sink_open(&o, &stats, &s), -ENOENT);
	o.path = "/tmp/x";
	o.max_bytes = 1000;
	o.keep = 2;
	assert_int_equal(lm_sink_open(&o, &stats, &s), -EINVAL);
	lm_sink_close(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sink_writes_every_line_in_order),
		cmocka_unit_test(test_sink_rotates_by_size),
		cmocka_unit_test(test_sink_reopens_moved_file),
		cmocka_unit_test(test_sink_counts_and_announces_loss),
		cmocka_unit_test(test_sink_waits_for_a_slow_device),
		cmocka_unit_test(test_sink_announces_last_loss_on_drain),
		cmocka_unit_test(test_sink_rejects_bad_options),
	};

	return cmocka_run_group_tests_name("sink", tests, setup, teardown);
}
