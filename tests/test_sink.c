// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for core/sink.c with real io_uring writes to temp files and pipes: order and
 * completeness, size rotation, reopen after the file was moved, and loss accounting with an
 * in-band LOST line when the reader of a pipe stalls or the file cannot grow (RLIMIT_FSIZE,
 * and a full tmpfs when run as root). Single test thread plus a drainer.
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
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define SLOT_CAP (16 * 1024)

static char dir[] = "/tmp/lm-test-sink-XXXXXX";
static char text_mem[SLOT_CAP];
static struct rlimit fsize_limit; /* as the test started; restored even after a failure */

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
	if (getrlimit(RLIMIT_FSIZE, &fsize_limit))
		return -1;
	return mkdtemp(dir) ? 0 : -1;
}

/* After each test that limits the file size or mounts: undone even when it failed. */
static int undo_limits(void **state)
{
	char mnt[64];

	(void)state;
	snprintf(mnt, sizeof(mnt), "%s/tmpfs", dir);
	umount2(mnt, MNT_DETACH); /* EINVAL when not mounted: fine */
	return setrlimit(RLIMIT_FSIZE, &fsize_limit);
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

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

struct stream_check {
	uint64_t next;		/* seq the next event line must carry */
	uint64_t events;	/* event lines */
	uint64_t notices;	/* LOST lines */
	uint64_t announced;	/* sum of their counts */
};

/*
 * Checks that data is whole lines, each either an event line exactly as make_slot writes
 * it, with the seq after the last one accounted for, or a sink LOST line that starts right
 * there and covers count == last - first + 1 seqs.
 */
static void check_stream(const char *data, size_t len, struct stream_check *c)
{
	const char *p = data, *end = data + len;

	assert_true(len == 0 || data[len - 1] == '\n');
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		uint64_t f, l, n, seq;
		const char *q;
		int used = 0;

		assert_non_null(nl);
		for (q = p + 1; q < nl; q++)
			assert_true(*q != '{' && *q != '\n'); /* no line glued to a torn one */
		if (sscanf(p,
			   "{\"type\":\"LOST\",\"first_seq\":%" SCNu64 ",\"last_seq\":%" SCNu64
			   ",\"count\":%" SCNu64 ",\"reason\":\"sink_full\"}%n",
			   &f, &l, &n, &used) == 3 && p + used == nl) {
			assert_int_equal(f, c->next);
			assert_int_equal(n, l - f + 1);
			c->next = l + 1;
			c->notices++;
			c->announced += n;
		} else {
			assert_int_equal(sscanf(p, "{\"seq\":%" SCNu64 ",\"pad\":\"%n", &seq, &used), 1);
			assert_true(used > 0);
			for (q = p + used; q < nl - 2 && *q == ' '; q++)
				;
			assert_ptr_equal(q, nl - 2);
			assert_memory_equal(q, "\"}", 2);
			assert_int_equal(seq, c->next);
			c->next++;
			c->events++;
		}
		p = nl + 1;
	}
}

typedef void (*space_fn)(void *arg);

/*
 * Writes to a file that stops growing part way (the caller arranged it), then gives it room
 * again with `make_room`. While full: the file holds only whole lines, every event line in it
 * is counted delivered and every other event dropped. After: writing resumes with a LOST
 * line for exactly the events dropped, and the books balance.
 */
static void fill_then_resume(const char *path, size_t cap_bytes, space_fn make_room, void *arg)
{
	struct lm_stats stats = { 0 };
	struct lm_sink_opts o = { .fd = -1, .id = LM_STATS_SINK_FILE, .buf_bytes = 32768,
				  .buf_cnt = 2, .notify_fd = -1, .path = path };
	struct lm_stats_sink *st = &stats.sink[LM_STATS_SINK_FILE];
	struct stream_check c = { .next = 1 };
	struct lm_txt_slot slot;
	uint64_t seq = 1, lost = 0;
	struct lm_sink *s;
	size_t len;
	char *data;
	int i, err;

	assert_int_equal(lm_sink_open(&o, &stats, &s), 0);
	for (i = 0; i < 200; i++) {
		make_slot(&slot, seq, 10, 100);
		if (lm_sink_put(s, &slot) == -ENOSPC)
			lost += 10;
		seq += 10;
		assert_int_equal(lm_sink_reap(s), 0);
	}
	/*
	 * The owed LOST line usually cannot be written while the file is full, but the last
	 * rollback may have left room for it (1 run in 3): either way the checks below hold.
	 */
	err = lm_sink_drain(s, 300);
	assert_true(err == -ETIMEDOUT || err == 0);
	data = slurp(path, &len);
	assert_non_null(data);
	assert_true(len > cap_bytes / 2 && len <= cap_bytes);
	check_stream(data, len, &c);
	free(data);
	assert_true(c.events > 0);
	assert_true(lm_stats_get(&st->errors) > 0);
	/* per line: what is in the file is delivered, everything else dropped */
	assert_int_equal(lm_stats_get(&st->delivered), c.events);
	assert_int_equal(lm_stats_get(&st->delivered) + lm_stats_get(&st->dropped), seq - 1);
	assert_int_equal(lm_stats_get(&st->bytes), len);
	assert_true(lm_stats_get(&st->dropped) >= lost);

	make_room(arg);
	for (i = 0; i < 5; i++) {
		make_slot(&slot, seq, 10, 100);
		assert_int_equal(lm_sink_put(s, &slot), 0);
		seq += 10;
		assert_int_equal(lm_sink_reap(s), 0);
	}
	assert_int_equal(lm_sink_drain(s, 5000), 0);
	lm_sink_close(s);
	data = slurp(path, &len);
	assert_non_null(data);
	memset(&c, 0, sizeof(c));
	c.next = 1;
	check_stream(data, len, &c);
	free(data);
	assert_int_equal(c.next, seq);
	assert_true(c.notices > 0);
	assert_int_equal(c.announced, lm_stats_get(&st->dropped));
	assert_int_equal(lm_stats_get(&st->delivered), c.events);
	assert_int_equal(lm_stats_get(&st->delivered) + lm_stats_get(&st->dropped), seq - 1);
	assert_int_equal(lm_stats_get(&st->bytes), len);
}

static void raise_fsize(void *arg)
{
	assert_int_equal(setrlimit(RLIMIT_FSIZE, arg), 0);
}

/* RLIMIT_FSIZE cuts a write short and fails the next one (EFBIG), as a full disk does. */
static void test_sink_keeps_lines_whole_when_the_file_cannot_grow(void **state)
{
	struct rlimit lim = fsize_limit;
	char path[64];

	(void)state;
	snprintf(path, sizeof(path), "%s/fsize.jsonl", dir);
	signal(SIGXFSZ, SIG_IGN);
	lim.rlim_cur = 40000;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	fill_then_resume(path, 40000, raise_fsize, &fsize_limit);
}

static void unlink_file(void *arg)
{
	assert_int_equal(unlink(arg), 0);
}

/* A real ENOSPC: a 64 KiB tmpfs (root only), room made by deleting a filler file. */
static void test_sink_keeps_lines_whole_on_a_full_tmpfs(void **state)
{
	char mnt[64], path[80], filler[80];
	static char zeros[16384];
	FILE *f;

	(void)state;
	snprintf(mnt, sizeof(mnt), "%s/tmpfs", dir);
	assert_int_equal(mkdir(mnt, 0700), 0);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=64k,mode=0700")) {
		fprintf(stderr, "tmpfs case not run: mount: %s\n", strerror(errno));
		skip();
	}
	snprintf(path, sizeof(path), "%s/full.jsonl", mnt);
	snprintf(filler, sizeof(filler), "%s/filler", mnt);
	f = fopen(filler, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(zeros, 1, sizeof(zeros), f), sizeof(zeros));
	assert_int_equal(fclose(f), 0);
	fill_then_resume(path, 65536 - sizeof(zeros), unlink_file, filler);
	assert_int_equal(umount2(mnt, MNT_DETACH), 0);
}

/*
 * FILE moved away without SIGHUP: the next size rotation must not shift FILE.1 -> FILE.2
 * (pushing out the oldest) for a FILE that is not there; it starts a fresh FILE.
 */
static void test_sink_rotation_spares_old_files_when_moved_away(void **state)
{
	struct lm_stats stats = { 0 };
	struct lm_sink_opts o = { .fd = -1, .id = LM_STATS_SINK_FILE, .buf_bytes = 262144,
				  .buf_cnt = 4, .notify_fd = -1, .max_bytes = 65536, .keep = 2 };
	struct lm_stats_sink *st = &stats.sink[LM_STATS_SINK_FILE];
	char path[64], moved[80], old1[80], old2[80];
	struct stream_check c = { .next = 1 };
	struct lm_txt_slot slot;
	struct lm_sink *s;
	uint64_t seq = 1;
	size_t len;
	char *data;
	int i;

	(void)state;
	snprintf(path, sizeof(path), "%s/away.jsonl", dir);
	snprintf(moved, sizeof(moved), "%s.moved", path);
	snprintf(old1, sizeof(old1), "%s.1", path);
	snprintf(old2, sizeof(old2), "%s.2", path);
	write_text(old1, "old1\n");
	write_text(old2, "old2\n");
	o.path = path;
	assert_int_equal(lm_sink_open(&o, &stats, &s), 0);
	/* ~600 bytes a slot: 30 before the move, then 140 more, ~100 KB in all */
	for (i = 0; i < 170; i++) {
		if (i == 30)
			assert_int_equal(rename(path, moved), 0);
		make_slot(&slot, seq, 10, 40);
		assert_int_equal(lm_sink_put(s, &slot), 0);
		seq += 10;
		assert_int_equal(lm_sink_drain(s, 5000), 0);
	}
	lm_sink_close(s);
	data = slurp(old1, &len);
	assert_non_null(data);
	assert_string_equal(data, "old1\n");
	free(data);
	data = slurp(old2, &len);
	assert_non_null(data);
	assert_string_equal(data, "old2\n");
	free(data);
	/* the moved file took what came until it was full, the fresh FILE the rest */
	data = slurp(moved, &len);
	assert_non_null(data);
	assert_true(len > 32768 && len <= 65536);
	check_stream(data, len, &c);
	free(data);
	data = slurp(path, &len);
	assert_non_null(data);
	assert_true(len > 0);
	check_stream(data, len, &c);
	free(data);
	assert_int_equal(c.next, seq);
	assert_int_equal(lm_stats_get(&st->dropped), 0);
	assert_int_equal(lm_stats_get(&st->errors), 0);
}

/*
 * A reopen that fails (FILE is now a directory) keeps the old file in use: nothing is
 * dropped, the failure is counted once and reported, and the reopen is retried.
 */
static void test_sink_keeps_old_file_while_reopen_fails(void **state)
{
	struct lm_stats stats = { 0 };
	struct lm_sink_opts o = { .fd = -1, .id = LM_STATS_SINK_FILE, .buf_bytes = 65536,
				  .buf_cnt = 2, .notify_fd = -1 };
	struct lm_stats_sink *st = &stats.sink[LM_STATS_SINK_FILE];
	struct stream_check c = { .next = 1 };
	struct lm_txt_slot slot;
	char path[64], moved[80];
	struct lm_sink *s;
	size_t len;
	char *data;
	int i;

	(void)state;
	snprintf(path, sizeof(path), "%s/dirhup.jsonl", dir);
	snprintf(moved, sizeof(moved), "%s.moved", path);
	o.path = path;
	assert_int_equal(lm_sink_open(&o, &stats, &s), 0);
	make_slot(&slot, 1, 5, 0);
	assert_int_equal(lm_sink_put(s, &slot), 0);
	assert_int_equal(lm_sink_drain(s, 5000), 0);
	assert_int_equal(rename(path, moved), 0);
	assert_int_equal(mkdir(path, 0700), 0);
	for (i = 0; i < 2; i++) {
		lm_sink_request_reopen(s);
		make_slot(&slot, 6 + 5 * (uint64_t)i, 5, 0);
		assert_int_equal(lm_sink_put(s, &slot), 0);
		assert_int_equal(lm_sink_drain(s, 5000), 0);
		assert_int_equal(lm_stats_get(&st->dropped), 0);
		assert_int_equal(lm_sink_file_error(s), -EISDIR);
	}
	assert_int_equal(lm_stats_get(&st->errors), 1);
	assert_int_equal(rmdir(path), 0);
	/* retried a second after the last failure, at the next write */
	usleep(1100 * 1000);
	make_slot(&slot, 16, 5, 0);
	assert_int_equal(lm_sink_put(s, &slot), 0);
	assert_int_equal(lm_sink_drain(s, 5000), 0);
	assert_int_equal(lm_sink_file_error(s), 0);
	lm_sink_close(s);
	data = slurp(moved, &len);
	assert_non_null(data);
	check_stream(data, len, &c);
	free(data);
	assert_int_equal(c.next, 16);
	data = slurp(path, &len);
	assert_non_null(data);
	check_stream(data, len, &c);
	free(data);
	assert_int_equal(c.next, 21);
	assert_int_equal(lm_stats_get(&st->dropped), 0);
	assert_int_equal(lm_stats_get(&st->delivered), 20);
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
		cmocka_unit_test_teardown(test_sink_keeps_lines_whole_when_the_file_cannot_grow,
					  undo_limits),
		cmocka_unit_test_teardown(test_sink_keeps_lines_whole_on_a_full_tmpfs, undo_limits),
		cmocka_unit_test(test_sink_rotation_spares_old_files_when_moved_away),
		cmocka_unit_test(test_sink_keeps_old_file_while_reopen_fails),
		cmocka_unit_test(test_sink_counts_and_announces_loss),
		cmocka_unit_test(test_sink_waits_for_a_slow_device),
		cmocka_unit_test(test_sink_announces_last_loss_on_drain),
		cmocka_unit_test(test_sink_rejects_bad_options),
	};

	return cmocka_run_group_tests_name("sink", tests, setup, teardown);
}
