// SPDX-License-Identifier: GPL-2.0
/*
 * Integration test, order through a backlog: lifemon with 32 MiB rings and --output is
 * SIGSTOPped during a bounded fork+exec storm (LM_IT_ORDER_STOP_S, default 8 s), then
 * SIGCONT. Every line of the file must then be strict JSON, seqs continuous, timestamps never
 * going back, and each storm child's EXEC before its EXIT. Root only; it starts lifemon and a
 * storm driver process and stops only those, by PID.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/it_util.h"

#define IT_PORT 18106
#define STORM_LIVE_MAX 32
#define STORM_TOTAL_MAX 2000000 /* never reached in practice: the storm is sized by time */
#define STORM_PRE_MS 2000	/* storm before the stop */
#define STORM_POST_MS 2000	/* storm after the resume */
#define BOOKS_MS 60000		/* the backlog is delivered within this after the resume */

static const char *const ev_types[3] = { "exec", "exit", "oom_kill" };

/* The storm driver, a child process: /bin/true at most STORM_LIVE_MAX at once, for ms. */
static int storm_main(void *arg)
{
	int64_t stop_at = lm_it_now_ms() + *(const int *)arg;
	unsigned long started = 0, live = 0;
	int st;

	while (lm_it_now_ms() < stop_at && started < STORM_TOTAL_MAX) {
		pid_t pid;

		while (live >= STORM_LIVE_MAX) {
			if (waitpid(-1, &st, 0) > 0)
				live--;
		}
		pid = fork();
		if (pid == 0) {
			execl("/bin/true", "true", (char *)NULL);
			_exit(127);
		}
		if (pid < 0) {
			if (waitpid(-1, &st, 0) > 0)
				live--;
			continue;
		}
		started++;
		live++;
	}
	while (live && waitpid(-1, &st, 0) > 0)
		live--;
	return 0;
}

/* Kernel-side counters and what lifemon did with them; false if /metrics lacks one. */
struct books {
	double seen, kdrop, read, ser, file_del, file_drop, forced;
};

static bool books_fetch(struct books *b)
{
	char series[96], *body = NULL;
	bool ok = true;
	double v;
	int i, err;

	memset(b, 0, sizeof(*b));
	err = lm_it_metrics_fetch(IT_PORT, 5000, &body);
	if (err)
		return false;
	for (i = 0; i < 3; i++) {
		snprintf(series, sizeof(series), "lifemon_events_total{type=\"%s\"}", ev_types[i]);
		ok &= lm_it_metric(body, series, &v);
		b->seen += v;
		snprintf(series, sizeof(series), "lifemon_kernel_dropped_total{type=\"%s\"}",
			 ev_types[i]);
		ok &= lm_it_metric(body, series, &v);
		b->kdrop += v;
		snprintf(series, sizeof(series), "lifemon_read_total{type=\"%s\"}", ev_types[i]);
		ok &= lm_it_metric(body, series, &v);
		b->read += v;
	}
	ok &= lm_it_metric(body, "lifemon_serialized_total", &b->ser);
	ok &= lm_it_metric(body, "lifemon_sink_delivered_total{sink=\"file\"}", &b->file_del);
	ok &= lm_it_metric(body, "lifemon_sink_dropped_total{sink=\"file\"}", &b->file_drop);
	ok &= lm_it_metric(body, "lifemon_reader_order_forced_total", &b->forced);
	free(body);
	return ok;
}

/* Per storm-child pid: 0 none or done, 1 EXEC seen (pids may be reused: states cycle). */
struct pid_state {
	unsigned char *st;
	size_t cap;
};

static unsigned char *pid_slot(struct pid_state *ps, long long pid)
{
	if (pid < 0 || pid >= 1 << 23)
		return NULL;
	if ((size_t)pid >= ps->cap) {
		size_t cap = ps->cap ? ps->cap : 65536;
		unsigned char *n;

		while (cap <= (size_t)pid)
			cap *= 2;
		n = realloc(ps->st, cap);
		LM_IT_ASSERT(n, "out of memory");
		memset(n + ps->cap, 0, cap - ps->cap);
		ps->st = n;
		ps->cap = cap;
	}
	return &ps->st[pid];
}

/* Checks every line of the file; returns the number of events. */
static size_t check_file(const char *path, pid_t driver, bool kernel_loss_ok)
{
	char *text = NULL, *p, *nl, why[160];
	size_t len = 0, lines = 0, events = 0, back = 0, early_exit = 0, open_children = 0;
	size_t children = 0, kernel_lost = 0, behind = 0;
	long long prev_seq = 0, prev_ts = 0, max_back = 0, max_ts = 0;
	struct pid_state ps = { 0 };
	json_error_t jerr;
	size_t i;
	int err;

	err = lm_it_read_file(path, &text, &len);
	LM_IT_ASSERT(!err, "reading %s: %s", path, strerror(-err));
	LM_IT_ASSERT(len > 0 && text[len - 1] == '\n', "%s is empty or ends without a newline",
		     path);
	for (p = text; p < text + len; p = nl + 1) {
		const char *type;
		long long seq, ts, pid;
		json_t *ev;

		nl = memchr(p, '\n', (size_t)(text + len - p));
		lines++;
		ev = json_loadb(p, (size_t)(nl - p), JSON_REJECT_DUPLICATES, &jerr);
		if (!ev || !json_is_object(ev)) {
			lm_it_fail("%s line %zu is not a strict JSON object: %s", path, lines,
				   ev ? "not an object" : jerr.text);
			json_decref(ev);
			continue;
		}
		type = lm_it_jstr(ev, "type");
		if (type && !strcmp(type, "LOST")) {
			const char *reason = lm_it_jstr(ev, "reason");

			if (!kernel_loss_ok || !reason || strcmp(reason, "kernel_ring_full"))
				lm_it_fail("%s line %zu: unexpected loss: %s", path, lines,
					   lm_it_jdump(ev));
			kernel_lost += (size_t)lm_it_jint(ev, "count", 0);
			json_decref(ev);
			continue;
		}
		if (!lm_it_event_is_valid(ev, why, sizeof(why))) {
			lm_it_fail("%s line %zu: %s: %s", path, lines, why, lm_it_jdump(ev));
			json_decref(ev);
			continue;
		}
		events++;
		seq = lm_it_jint(ev, "seq", 0);
		ts = lm_it_jint(ev, "timestamp", 0);
		LM_IT_EXPECT(seq == prev_seq + 1, "%s line %zu: seq %lld after %lld", path, lines,
			     seq, prev_seq);
		prev_seq = seq;
		if (ts < prev_ts) {
			if (!back)
				lm_it_fail("%s line %zu (seq %lld): timestamp went back by %lld ns",
					   path, lines, seq, prev_ts - ts);
			back++;
			if (prev_ts - ts > max_back)
				max_back = prev_ts - ts;
		}
		prev_ts = ts;
		if (ts < max_ts)
			behind++; /* older than an event already delivered */
		else
			max_ts = ts;
		pid = lm_it_jint(ev, "pid", -1);
		if (lm_it_jint(ev, "ppid", -1) == driver && type) {
			unsigned char *s = pid_slot(&ps, pid);

			if (s && !strcmp(type, "EXEC")) {
				if (*s)
					open_children++; /* the previous child of this pid lost its
							    EXIT */
				*s = 1;
				children++;
			} else if (s && !strcmp(type, "EXIT")) {
				if (!*s && !early_exit++)
					lm_it_fail(
						"%s line %zu: EXIT of storm child %lld before its "
						"EXEC: %s",
						path, lines, pid, lm_it_jdump(ev));
				*s = 0;
			}
		}
		json_decref(ev);
	}
	for (i = 0; i < ps.cap; i++)
		open_children += ps.st[i];
	lm_it_note("%s: %zu lines, %zu events, %zu storm children, %zu timestamps going back "
		   "(at most %lld ns), %zu events older than one delivered before them, %zu EXIT "
		   "before EXEC, %zu lost in the kernel",
		   path, lines, events, children, back, max_back, behind, early_exit, kernel_lost);
	LM_IT_EXPECT(!back, "the timestamp went back %zu times", back);
	LM_IT_EXPECT(!early_exit, "%zu storm children had their EXIT before their EXEC",
		     early_exit);
	LM_IT_EXPECT(kernel_lost || !open_children, "%zu storm children lack their EXIT",
		     open_children);
	LM_IT_EXPECT(children > 0, "no storm child in %s", path);
	free(ps.st);
	free(text);
	return events;
}

static char out_dir[64];
static char out_path[96];

static void out_cleanup(void *arg)
{
	(void)arg;
	unlink(out_path);
	rmdir(out_dir);
}

int main(int argc, char **argv)
{
	const char *env = getenv("LM_IT_ORDER_STOP_S");
	int stop_s = env ? atoi(env) : 8, storm_ms, status = 0, err;
	const char *extra[] = { "--ring-size", "32M", "--output", out_path, NULL };
	struct books before = { 0 }, after = { 0 }, b = { 0 };
	struct lm_it_proc *lm = NULL;
	int64_t deadline, stop_ms = 0;
	pid_t driver = 0;
	bool idle = false;
	size_t events;

	if (stop_s < 1 || stop_s > 120)
		stop_s = 8;
	lm_it_init("it_order", argc, argv, (unsigned int)stop_s + 150);
	lm_it_require_env();
	snprintf(out_dir, sizeof(out_dir), "/tmp/lifemon-it-order-XXXXXX");
	LM_IT_ASSERT(mkdtemp(out_dir), "mkdtemp: %s", strerror(errno));
	snprintf(out_path, sizeof(out_path), "%s/events.jsonl", out_dir);
	lm_it_on_cleanup(out_cleanup, NULL);

	err = lm_it_lifemon_start(IT_PORT, extra, false, &lm);
	LM_IT_ASSERT(!err, "lifemon did not become healthy: %s", strerror(-err));
	storm_ms = STORM_PRE_MS + stop_s * 1000 + STORM_POST_MS;
	err = lm_it_fork_fn(storm_main, &storm_ms, &driver);
	LM_IT_ASSERT(!err, "fork storm driver: %s", strerror(-err));
	usleep(STORM_PRE_MS * 1000);
	LM_IT_EXPECT(books_fetch(&before), "/metrics before the stop");
	LM_IT_ASSERT(kill(lm_it_proc_pid(lm), SIGSTOP) == 0, "SIGSTOP lifemon: %s",
		     strerror(errno));
	lm_it_note("lifemon stopped for %d s during the storm (%.0f events read so far)", stop_s,
		   before.read);
	usleep((useconds_t)stop_s * 1000000);
	LM_IT_ASSERT(kill(lm_it_proc_pid(lm), SIGCONT) == 0, "SIGCONT lifemon: %s",
		     strerror(errno));
	LM_IT_EXPECT(books_fetch(&after), "/metrics after the resume");
	lm_it_note("backlog at the resume: about %.0f events waited in the kernel rings",
		   after.seen - after.kdrop - before.read);
	err = lm_it_reap(driver, storm_ms + 30000, &status);
	LM_IT_EXPECT(!err && WIFEXITED(status) && !WEXITSTATUS(status),
		     "storm driver: %s, status %#x", strerror(-err), status);

	/* the pipeline is idle once everything the kernel kept is in the file */
	deadline = lm_it_now_ms() + BOOKS_MS;
	while (lm_it_now_ms() < deadline) {
		if (books_fetch(&b) && b.seen == b.kdrop + b.read && b.ser == b.read &&
		    b.file_del + b.file_drop == b.ser) {
			idle = true;
			break;
		}
		usleep(100 * 1000);
	}
	LM_IT_EXPECT(idle,
		     "books did not balance within %d ms: seen %.0f kernel_dropped %.0f "
		     "read %.0f serialized %.0f file %.0f+%.0f",
		     BOOKS_MS, b.seen, b.kdrop, b.read, b.ser, b.file_del, b.file_drop);
	LM_IT_EXPECT(b.file_drop == 0, "the file sink dropped %.0f events", b.file_drop);
	LM_IT_EXPECT(b.forced == 0, "%.0f events were released before their order was certain",
		     b.forced);
	err = lm_it_proc_stop(lm, SIGTERM, 5000, &status, &stop_ms);
	LM_IT_EXPECT(!err && WIFEXITED(status) && !WEXITSTATUS(status),
		     "lifemon after SIGTERM: %s, status %#x", strerror(-err), status);

	events = check_file(out_path, driver, b.kdrop > 0);
	LM_IT_EXPECT(events >= (size_t)b.read, "the file has %zu events, lifemon read %.0f", events,
		     b.read);
	lm_it_proc_free(lm);
	return lm_it_finish();
}
