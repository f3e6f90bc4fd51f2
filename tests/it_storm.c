// SPDX-License-Identifier: GPL-2.0
/*
 * Integration test, lifemon under load: a bounded fork+exec storm with --output and two /ws
 * reader threads (every EXEC/EXIT everywhere, no loss, books balance), then a --bench-tgid
 * full-speed load (loss announced in-band and booked exactly; SIGTERM still exits 0 in 2 s).
 * Root only; the main thread forks, reaps and kills only its own children, by PID.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/it_util.h"

#define IT_PORT_STORM 18091
#define IT_PORT_BENCH 18092
#define STORM_LIVE_MAX 16
#define STORM_TOTAL 2000
#define STORM_MS 20000
#define STORM_GRACE_MS 15000 /* after STORM_MS, live children must be gone by then */
#define BENCH_RENAMES 300000
#define BOOKS_MS 45000	/* the pipeline is idle (books balance) within this of no progress */
#define MARKER_MS 30000 /* a marker's EXIT reaches the clients within this of no progress */
#define BENCH_CHILD_MS 60000
/*
 * The bench client reads all the time but may fall behind the load, and lose events (allowed,
 * and booked exactly). A client still losing --ws-slow-ms after its first loss is too slow by
 * design (it_slow_client's client E), so with the default 10 s the outcome measured the
 * machine: natively the load takes about 4 s and the client loses nothing; under the kernel
 * matrix's TCG it takes 16-26 s, the client reads 3-4k events/s of 12-19k, loses from the
 * high-water mark on, and was closed with 1008 about 10 s later. The bench checks the books,
 * not that policy: its client is kept past any load it lets run (BENCH_CHILD_MS).
 */
#define BENCH_SLOW_MS (2 * BENCH_CHILD_MS)

static const char *const ev_types[3] = {"exec", "exit", "oom_kill"};

/* --- /ws clients on threads of their own --- */

struct reader {
	char name[16];
	struct lm_it_acct *acct; /* owned by the thread while it runs */
	pthread_t thr;
	bool running;
	atomic_bool stop;
	atomic_int marker;	/* pid of our child whose EXIT the main thread waits for */
	atomic_int marker_seen; /* == marker once that EXIT has arrived */
	atomic_bool dead;
	size_t scanned;	 /* records scanned for the marker; reader thread only */
	int scanned_for; /* the marker they were scanned for; reader thread only */
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	pid_t self = getpid();

	while (!atomic_load(&r->stop)) {
		const struct lm_it_acct_rec *recs;
		size_t n;
		int got = lm_it_acct_pump(r->acct, 50);

		if (got < 0) {
			atomic_store(&r->dead, true);
			break;
		}
		recs = lm_it_acct_recs(r->acct, &n);
		if (atomic_load(&r->marker) != r->scanned_for) {
			/* a new marker: its EXIT may have come in before the pid was posted */
			r->scanned_for = atomic_load(&r->marker);
			r->scanned = 0;
		}
		for (; r->scanned < n; r->scanned++) {
			const struct lm_it_acct_rec *e = &recs[r->scanned];
			int m = atomic_load(&r->marker);

			if (m && e->type == 'X' && e->pid == m && e->ppid == self)
				atomic_store(&r->marker_seen, m);
		}
	}
	return NULL;
}

static void reader_start(struct reader *r, const char *name, uint16_t port)
{
	int err;

	snprintf(r->name, sizeof(r->name), "%s", name);
	err = lm_it_acct_open(port, false, &r->acct);
	LM_IT_ASSERT(!err, "%s: ws connect: %s", name, strerror(-err));
	err = pthread_create(&r->thr, NULL, reader_main, r);
	LM_IT_ASSERT(!err, "%s: pthread_create: %s", name, strerror(err));
	r->running = true;
}

static void reader_join(struct reader *r)
{
	if (!r->running)
		return;
	atomic_store(&r->stop, true);
	pthread_join(r->thr, NULL);
	r->running = false;
}

static struct reader readers[2];

static void readers_cleanup(void *arg)
{
	size_t i;

	(void)arg;
	for (i = 0; i < 2; i++) {
		reader_join(&readers[i]);
		lm_it_acct_close(readers[i].acct);
		readers[i].acct = NULL;
	}
}

/* The markers' pids: also our children with an EXEC and an EXIT, should a pid be reused. */
#define MAX_MARKERS 8
static pid_t markers[MAX_MARKERS];
static size_t nmarkers;

/*
 * Runs /bin/true and waits until its EXIT reached every reader. Returns true if it did
 * within timeout_ms.
 */
static bool readers_marker(struct reader *rs, size_t nr, int timeout_ms)
{
	int64_t deadline = lm_it_now_ms() + timeout_ms;
	char *argv[] = {"/bin/true", NULL};
	size_t i, seen;
	int st, err;
	pid_t pid;

	err = lm_it_spawn(argv, -1, -1, &pid);
	LM_IT_ASSERT(!err, "spawn /bin/true: %s", strerror(-err));
	if (nmarkers < MAX_MARKERS)
		markers[nmarkers++] = pid;
	for (i = 0; i < nr; i++)
		atomic_store(&rs[i].marker, pid);
	err = lm_it_reap(pid, 10000, &st);
	LM_IT_ASSERT(!err, "marker /bin/true (pid %d) did not finish: %s", pid, strerror(-err));
	for (;;) {
		for (i = 0, seen = 0; i < nr; i++)
			seen += atomic_load(&rs[i].marker_seen) == pid;
		if (seen == nr)
			return true;
		if (lm_it_now_ms() >= deadline) {
			for (i = 0; i < nr; i++)
				if (atomic_load(&rs[i].marker_seen) != pid)
					lm_it_fail("%s: no EXIT of marker pid %d within %d ms%s",
						   rs[i].name, pid, timeout_ms,
						   atomic_load(&rs[i].dead) ? " (stream dead)"
									    : "");
			return false;
		}
		usleep(2000);
	}
}

/* --- /metrics books --- */

struct books {
	double ev[3], kd[3], rd[3];
	double ser, pub, file_del, file_drop, ws_del, ws_drop;
};
/* books_diff walks the fields as one array, in this order. */
_Static_assert(sizeof(struct books) == 15 * sizeof(double), "struct books: doubles only");

static bool books_fetch(uint16_t port, struct books *b, bool with_file)
{
	char series[96], *body = NULL;
	bool ok = true;
	int i, err;

	err = lm_it_metrics_fetch(port, 5000, &body);
	if (err) {
		lm_it_note("GET /metrics: %s", strerror(-err));
		return false;
	}
	for (i = 0; i < 3; i++) {
		snprintf(series, sizeof(series), "lifemon_events_total{type=\"%s\"}", ev_types[i]);
		ok &= lm_it_metric(body, series, &b->ev[i]);
		snprintf(series, sizeof(series), "lifemon_kernel_dropped_total{type=\"%s\"}",
			 ev_types[i]);
		ok &= lm_it_metric(body, series, &b->kd[i]);
		snprintf(series, sizeof(series), "lifemon_read_total{type=\"%s\"}", ev_types[i]);
		ok &= lm_it_metric(body, series, &b->rd[i]);
	}
	ok &= lm_it_metric(body, "lifemon_serialized_total", &b->ser);
	ok &= lm_it_metric(body, "lifemon_ws_published_total", &b->pub);
	ok &= lm_it_metric(body, "lifemon_ws_delivered_total", &b->ws_del);
	ok &= lm_it_metric(body, "lifemon_ws_dropped_total", &b->ws_drop);
	if (with_file) {
		ok &=
		    lm_it_metric(body, "lifemon_sink_delivered_total{sink=\"file\"}", &b->file_del);
		ok &=
		    lm_it_metric(body, "lifemon_sink_dropped_total{sink=\"file\"}", &b->file_drop);
	}
	if (!ok)
		lm_it_note("/metrics lacks a series the books need:\n%s", body);
	free(body);
	return ok;
}

/* Names the counters that differ between two reads. */
static void books_diff(const struct books *a, const struct books *b, char *why, size_t cap)
{
	static const char *const names[] = {
	    "events{exec}",	    "events{exit}",	    "events{oom_kill}",
	    "kernel_dropped{exec}", "kernel_dropped{exit}", "kernel_dropped{oom_kill}",
	    "read{exec}",	    "read{exit}",	    "read{oom_kill}",
	    "serialized",	    "ws_published",	    "file delivered",
	    "file dropped",	    "ws_delivered",	    "ws_dropped"};
	const double *x = &a->ev[0], *y = &b->ev[0];
	size_t i, o;

	o = (size_t)snprintf(why, cap, "counters still moving:");
	for (i = 0; i < sizeof(names) / sizeof(names[0]) && o < cap; i++)
		if (x[i] != y[i])
			o += (size_t)snprintf(why + o, cap - o, " %s %.0f -> %.0f", names[i], x[i],
					      y[i]);
}

/*
 * The kernel and pipeline books: per type seen = kernel dropped + read; read = serialized =
 * published; with a file sink, serialized = delivered and nothing dropped. Writes the first
 * equation that does not hold into why.
 */
static bool books_balance(const struct books *b, bool with_file, char *why, size_t cap)
{
	double rd = 0;
	int i;

	for (i = 0; i < 3; i++) {
		rd += b->rd[i];
		if (b->ev[i] != b->kd[i] + b->rd[i]) {
			snprintf(why, cap,
				 "events_total{%s} %.0f != kernel_dropped %.0f + read %.0f",
				 ev_types[i], b->ev[i], b->kd[i], b->rd[i]);
			return false;
		}
	}
	if (rd != b->ser || b->ser != b->pub) {
		snprintf(why, cap,
			 "sum(read_total) %.0f, serialized %.0f, ws_published %.0f differ", rd,
			 b->ser, b->pub);
		return false;
	}
	if (with_file && (b->file_del != b->ser || b->file_drop != 0)) {
		snprintf(
		    why, cap,
		    "file sink: delivered %.0f, dropped %.0f, want delivered == serialized %.0f "
		    "and dropped 0",
		    b->file_del, b->file_drop, b->ser);
		return false;
	}
	return true;
}

/* --- part 1: the storm --- */

struct storm {
	pid_t *pids; /* every child started, in order (a pid may repeat if pids wrapped) */
	size_t n;
	size_t bad_status;
	pid_t max_pid;
};

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static void storm_reap_one(struct storm *s, pid_t pid)
{
	char buf[64];
	int st = 0, err;

	err = lm_it_reap(pid, 5000, &st);
	if (err) {
		lm_it_fail("storm child %d: reap: %s", pid, strerror(-err));
		lm_it_kill_reap(pid);
		s->bad_status++;
		return;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		if (!s->bad_status)
			lm_it_fail("storm child %d (/bin/true) ended with %s", pid,
				   lm_it_wstatus_str(st, buf, sizeof(buf)));
		s->bad_status++;
	}
}

/* fork+exec /bin/true with at most STORM_LIVE_MAX alive, STORM_TOTAL or STORM_MS in all. */
static void run_storm(struct storm *s)
{
	char *argv[] = {"/bin/true", NULL};
	struct pollfd pfd[STORM_LIVE_MAX];
	pid_t live[STORM_LIVE_MAX];
	int64_t t0 = lm_it_now_ms(), stop_at = t0 + STORM_MS;
	size_t nlive = 0, i;
	int err;

	s->pids = calloc(STORM_TOTAL, sizeof(*s->pids));
	LM_IT_ASSERT(s->pids, "out of memory");
	for (;;) {
		int64_t now = lm_it_now_ms();

		while (nlive < STORM_LIVE_MAX && s->n < STORM_TOTAL && now < stop_at) {
			pid_t pid;
			int fd;

			err = lm_it_spawn(argv, -1, -1, &pid);
			if (err == -EAGAIN)
				break; /* fork limit: reap some first */
			LM_IT_ASSERT(!err, "storm: fork: %s", strerror(-err));
			fd = pidfd_open_(pid);
			LM_IT_ASSERT(fd >= 0, "pidfd_open(%d): %s", pid, strerror(errno));
			s->pids[s->n++] = pid;
			if (pid > s->max_pid)
				s->max_pid = pid;
			live[nlive] = pid;
			pfd[nlive].fd = fd;
			pfd[nlive].events = POLLIN;
			pfd[nlive].revents = 0;
			nlive++;
		}
		if (!nlive && (s->n == STORM_TOTAL || now >= stop_at))
			break;
		if (now >= stop_at + STORM_GRACE_MS) {
			lm_it_fail("storm: %zu children still alive %d ms after the storm ended",
				   nlive, STORM_GRACE_MS);
			for (i = 0; i < nlive; i++) {
				close(pfd[i].fd);
				lm_it_kill_reap(live[i]);
			}
			break;
		}
		if (poll(pfd, nlive, 200) < 0 && errno != EINTR)
			lm_it_fatal("storm: poll: %s", strerror(errno));
		for (i = 0; i < nlive;) {
			if (!pfd[i].revents) {
				i++;
				continue;
			}
			storm_reap_one(s, live[i]);
			close(pfd[i].fd);
			nlive--;
			live[i] = live[nlive];
			pfd[i] = pfd[nlive];
		}
	}
	lm_it_note("storm: %zu children in %lld ms (%zu ended badly)", s->n,
		   (long long)(lm_it_now_ms() - t0), s->bad_status);
}

/*
 * Checks one stream's events (a client's or the file's) against the storm: for each child
 * pid, as many EXEC and EXIT (with ppid = us) as children got that pid, the EXEC first.
 */
static void check_storm_events(const char *who, const struct storm *s,
			       const struct lm_it_acct_rec *recs, size_t n)
{
	size_t np = (size_t)s->max_pid + 1, i, missing = 0, shown = 0;
	uint16_t *want = calloc(np, sizeof(*want)), *nexec = calloc(np, sizeof(*nexec));
	uint16_t *nexit = calloc(np, sizeof(*nexit));
	pid_t self = getpid();

	LM_IT_ASSERT(want && nexec && nexit, "out of memory");
	for (i = 0; i < s->n; i++)
		want[s->pids[i]]++;
	for (i = 0; i < nmarkers; i++)
		if ((size_t)markers[i] < np && want[markers[i]])
			want[markers[i]]++; /* a marker reused a storm child's pid */
	for (i = 0; i < n; i++) {
		const struct lm_it_acct_rec *e = &recs[i];

		if (e->ppid != self || e->pid <= 0 || (size_t)e->pid >= np || !want[e->pid])
			continue;
		if (e->type == 'E') {
			nexec[e->pid]++;
		} else if (e->type == 'X') {
			nexit[e->pid]++;
			if (nexit[e->pid] > nexec[e->pid] && shown++ < 5)
				lm_it_fail("%s: EXIT of storm child %d (seq %lld) before its EXEC",
					   who, e->pid, e->seq);
		}
	}
	for (i = 0; i < np; i++) {
		if (!want[i] || (nexec[i] == want[i] && nexit[i] == want[i]))
			continue;
		missing++;
		if (shown++ < 10)
			lm_it_fail("%s: storm child %zu: %u EXEC and %u EXIT, want %u of each", who,
				   i, nexec[i], nexit[i], want[i]);
	}
	LM_IT_EXPECT(!missing, "%s: %zu of %zu storm children lack an EXEC or EXIT", who, missing,
		     s->n);
	lm_it_note("%s: %zu events, storm children complete: %zu/%zu", who, n, s->n - missing,
		   s->n);
	free(want);
	free(nexec);
	free(nexit);
}

/* Parses the JSON Lines file strictly into records; seq must run 1, 2, 3... with no LOST. */
static struct lm_it_acct_rec *read_file_events(const char *path, size_t *nout)
{
	char *text = NULL, *p, *nl, why[160];
	struct lm_it_acct_rec *recs = NULL;
	size_t len = 0, n = 0, cap = 0, lines = 0, back = 0;
	long long prev = 0, prev_ts = 0;
	json_error_t jerr;
	int err;

	err = lm_it_read_file(path, &text, &len);
	LM_IT_ASSERT(!err, "reading %s: %s", path, strerror(-err));
	LM_IT_EXPECT(len > 0 && text[len - 1] == '\n', "%s is empty or ends without a newline",
		     path);
	for (p = text; p < text + len; p = nl + 1) {
		struct lm_it_acct_rec *r;
		const char *type;
		json_t *ev;

		nl = memchr(p, '\n', (size_t)(text + len - p));
		if (!nl)
			nl = text + len;
		lines++;
		ev = json_loadb(p, (size_t)(nl - p), JSON_REJECT_DUPLICATES, &jerr);
		if (!ev || !json_is_object(ev)) {
			lm_it_fail("%s line %zu is not a strict JSON object: %s: %.*s", path, lines,
				   ev ? "not an object" : jerr.text,
				   (int)(nl - p > 200 ? 200 : nl - p), p);
			json_decref(ev);
			continue;
		}
		type = lm_it_jstr(ev, "type");
		if (type && !strcmp(type, "LOST")) {
			lm_it_fail("%s line %zu: LOST notice in a storm that must lose nothing: %s",
				   path, lines, lm_it_jdump(ev));
			prev = lm_it_jint(ev, "last_seq", prev);
			json_decref(ev);
			continue;
		}
		if (!lm_it_event_is_valid(ev, why, sizeof(why))) {
			lm_it_fail("%s line %zu: %s: %s", path, lines, why, lm_it_jdump(ev));
			json_decref(ev);
			continue;
		}
		LM_IT_EXPECT(lm_it_jint(ev, "seq", 0) == prev + 1,
			     "%s line %zu: seq %lld after %lld", path, lines,
			     lm_it_jint(ev, "seq", 0), prev);
		prev = lm_it_jint(ev, "seq", 0);
		if (lm_it_jint(ev, "timestamp", 0) < prev_ts) {
			if (!back++)
				lm_it_fail("%s line %zu: timestamp went back by %lld ns", path,
					   lines, prev_ts - lm_it_jint(ev, "timestamp", 0));
		}
		prev_ts = lm_it_jint(ev, "timestamp", 0);
		if (n == cap) {
			struct lm_it_acct_rec *nr;

			cap = cap ? 2 * cap : 4096;
			nr = realloc(recs, cap * sizeof(*nr));
			LM_IT_ASSERT(nr, "out of memory");
			recs = nr;
		}
		r = &recs[n++];
		memset(r, 0, sizeof(*r));
		r->seq = prev;
		r->pid = (pid_t)lm_it_jint(ev, "pid", -1);
		r->ppid = (pid_t)lm_it_jint(ev, "ppid", -1);
		r->type = !strcmp(type, "EXEC") ? 'E' : !strcmp(type, "EXIT") ? 'X' : 'O';
		json_decref(ev);
	}
	LM_IT_EXPECT(!back, "%s: the timestamp went back %zu times in %zu lines", path, back,
		     lines);
	free(text);
	*nout = n;
	return recs;
}

/* Events with the same seq must be the same event in every stream. */
static void check_same_events(const char *who, const struct lm_it_acct_rec *file, size_t nfile,
			      const struct lm_it_acct_rec *recs, size_t n)
{
	size_t i, bad = 0;

	for (i = 0; i < n; i++) {
		const struct lm_it_acct_rec *e = &recs[i], *f;

		if (e->seq < 1 || (size_t)e->seq > nfile)
			continue;
		f = &file[e->seq - 1];
		if (f->seq != e->seq || f->pid != e->pid || f->type != e->type) {
			if (bad++ < 5)
				lm_it_fail("%s: seq %lld is %c pid %d, the file has %c pid %d", who,
					   e->seq, e->type, e->pid, f->type, f->pid);
		}
	}
}

static char out_dir[64];
static char out_path[96];

static void out_cleanup(void *arg)
{
	(void)arg;
	if (out_path[0])
		unlink(out_path);
	if (out_dir[0])
		rmdir(out_dir);
}

static void part_storm(void)
{
	const char *extra[] = {"--output", out_path, NULL};
	const struct lm_it_acct_rec *recs;
	struct lm_it_acct_rec *frecs;
	struct lm_it_acct_stats st;
	struct lm_it_proc *lm = NULL;
	struct storm s = {0};
	struct books b = {0};
	char why[256] = "", buf[64];
	size_t i, n, nfile = 0;
	int64_t deadline, ms = 0;
	bool balanced = false;
	int err, status = 0;

	snprintf(out_dir, sizeof(out_dir), "/tmp/lifemon-it-storm-XXXXXX");
	LM_IT_ASSERT(mkdtemp(out_dir), "mkdtemp: %s", strerror(errno));
	snprintf(out_path, sizeof(out_path), "%s/events.jsonl", out_dir);
	lm_it_on_cleanup(out_cleanup, NULL);

	err = lm_it_lifemon_start(IT_PORT_STORM, extra, false, &lm);
	LM_IT_ASSERT(!err, "storm: lifemon did not become healthy: %s", strerror(-err));
	reader_start(&readers[0], "client A", IT_PORT_STORM);
	reader_start(&readers[1], "client B", IT_PORT_STORM);
	lm_it_on_cleanup(readers_cleanup, NULL);
	LM_IT_ASSERT(readers_marker(readers, 2, MARKER_MS), "the /ws streams are not live");

	run_storm(&s);
	LM_IT_ASSERT(s.n > 0, "the storm started no child");
	LM_IT_EXPECT(!s.bad_status, "%zu storm children did not exit 0", s.bad_status);

	/* Events leave lifemon in kernel-time order: after the marker's EXIT, all are in. */
	readers_marker(readers, 2, MARKER_MS);

	deadline = lm_it_now_ms() + BOOKS_MS;
	while (!balanced && lm_it_now_ms() < deadline) {
		if (books_fetch(IT_PORT_STORM, &b, true))
			balanced = books_balance(&b, true, why, sizeof(why));
		if (!balanced)
			usleep(1000); /* short: a busy host leaves idle instants brief */
	}
	LM_IT_EXPECT(balanced, "storm: the /metrics books did not balance within %d ms: %s",
		     BOOKS_MS, why);
	lm_it_note("storm books (idle after %lld ms): seen exec %.0f exit %.0f, kernel dropped "
		   "%.0f/%.0f, "
		   "serialized %.0f, file delivered %.0f dropped %.0f",
		   (long long)(lm_it_now_ms() - (deadline - BOOKS_MS)), b.ev[0], b.ev[1], b.kd[0],
		   b.kd[1], b.ser, b.file_del, b.file_drop);

	for (i = 0; i < 2; i++)
		reader_join(&readers[i]);

	err = lm_it_proc_stop(lm, SIGTERM, LM_IT_STOP_MS, &status, &ms);
	LM_IT_EXPECT(!err && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		     "storm: lifemon did not exit 0 within %d ms of SIGTERM: %s (%s)",
		     LM_IT_STOP_MS, err ? strerror(-err) : "exited",
		     lm_it_wstatus_str(status, buf, sizeof(buf)));

	frecs = read_file_events(out_path, &nfile);
	check_storm_events("--output file", &s, frecs, nfile);
	LM_IT_EXPECT(nfile >= b.ser, "--output file has %zu events, /metrics said %.0f serialized",
		     nfile, b.ser);

	for (i = 0; i < 2; i++) {
		struct reader *r = &readers[i];

		lm_it_acct_get_stats(r->acct, &st);
		lm_it_acct_report(r->acct, r->name);
		LM_IT_EXPECT(!st.lost_notices, "%s: %llu LOST notice(s) covering %llu events",
			     r->name, (unsigned long long)st.lost_notices,
			     (unsigned long long)st.lost_count);
		LM_IT_EXPECT(!st.dead, "%s: the stream ended early (%s, close code %u)", r->name,
			     strerror(-st.dead), st.close_code);
		recs = lm_it_acct_recs(r->acct, &n);
		check_storm_events(r->name, &s, recs, n);
		check_same_events(r->name, frecs, nfile, recs, n);
		lm_it_note("%s: seq %lld..%lld, %llu events in %llu messages", r->name,
			   st.first_seq, st.last_seq, (unsigned long long)st.events,
			   (unsigned long long)st.messages);
	}
	if (lm_it_failures())
		lm_it_proc_dump_stderr(lm, "storm");
	readers_cleanup(NULL);
	lm_it_proc_free(lm);
	free(frecs);
	free(s.pids);
}

/* --- part 2: synthetic load through --bench-tgid --- */

struct bench_arg {
	int go_rd, go_wr; /* the child waits for one byte on go_rd */
	long renames;
};

static int bench_child(void *arg)
{
	const struct bench_arg *a = arg;
	long i;
	char c;

	close(a->go_wr);
	if (read(a->go_rd, &c, 1) != 1)
		return 3; /* the test went away before starting us */
	for (i = 0; i < a->renames; i++)
		if (prctl(PR_SET_NAME, (i & 1) ? "xbench" : "ebench") < 0)
			return 4;
	return 0;
}

/* Pumps until the EXIT of a fresh /bin/true marker arrives, retrying if one is lost. */
/*
 * Runs /bin/true until the client sees its EXIT. Gives up after timeout_ms without progress:
 * a client behind a backlog (lifemon waits for a client that reads, and under emulation this
 * one reads slowly) gets its marker only once it has read what came before.
 */
static bool acct_marker(struct lm_it_acct *a, int timeout_ms)
{
	int64_t deadline = lm_it_now_ms() + timeout_ms;
	char *argv[] = {"/bin/true", NULL};
	pid_t self = getpid();
	struct lm_it_acct_stats progress;
	long long seen = -1;

	while (lm_it_now_ms() < deadline) {
		int64_t retry_at = lm_it_now_ms() + 3000;
		const struct lm_it_acct_rec *recs;
		size_t n, from;
		int st, err;
		pid_t pid;

		recs = lm_it_acct_recs(a, &from);
		err = lm_it_spawn(argv, -1, -1, &pid);
		LM_IT_ASSERT(!err, "spawn /bin/true: %s", strerror(-err));
		LM_IT_ASSERT(!lm_it_reap(pid, 10000, &st), "marker %d did not finish", pid);
		while (lm_it_now_ms() < retry_at && lm_it_now_ms() < deadline) {
			if (lm_it_acct_pump(a, 50) < 0)
				return false;
			recs = lm_it_acct_recs(a, &n);
			for (; from < n; from++)
				if (recs[from].type == 'X' && recs[from].pid == pid &&
				    recs[from].ppid == self)
					return true;
			lm_it_acct_get_stats(a, &progress);
			if (progress.last_seq != seen) {
				seen = progress.last_seq;
				deadline = lm_it_now_ms() + timeout_ms;
			}
		}
	}
	return false;
}

static struct lm_it_acct *bench_acct;

/*
 * Fails if lifemon closed the bench client's stream (a slow-client close, say), naming the
 * close: a closed stream makes no more progress, which the checks after it would otherwise
 * report as a stuck pipeline. Returns whether the stream is still open.
 */
static bool bench_stream_open(const char *when)
{
	struct lm_it_acct_stats st;

	lm_it_acct_get_stats(bench_acct, &st);
	if (st.close_code)
		LM_IT_EXPECT(!st.dead,
			     "bench: lifemon closed the /ws stream %s, after seq %lld: %u \"%s\"",
			     when, st.last_seq, st.close_code, st.close_reason);
	else
		LM_IT_EXPECT(!st.dead, "bench: the /ws stream ended %s, after seq %lld: %s", when,
			     st.last_seq, strerror(-st.dead));
	return !st.dead;
}

/* Notes lifemon's /ws, stage and kernel ring counters: what a failed bench ran into. */
static void bench_note_metrics(void)
{
	char *body = NULL, *line, *save = NULL;

	if (lm_it_metrics_fetch(IT_PORT_BENCH, 5000, &body))
		return;
	for (line = strtok_r(body, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (line[0] != '#' &&
		    (!strncmp(line, "lifemon_ws_", 11) || strstr(line, "ring_fill") ||
		     !strncmp(line, "lifemon_stage_waits", 19) ||
		     !strncmp(line, "lifemon_abandoned", 17)))
			lm_it_note("bench: /metrics %s", line);
	free(body);
}

static void bench_cleanup(void *arg)
{
	(void)arg;
	lm_it_acct_close(bench_acct);
	bench_acct = NULL;
}

static void part_bench(void)
{
	struct lm_it_acct_stats st;
	struct bench_arg ba = {.renames = BENCH_RENAMES};
	const struct lm_it_acct_rec *recs;
	struct lm_it_proc *lm = NULL;
	struct books b0 = {0}, b1 = {0}, b2 = {0};
	char pidstr[16], slowstr[16], why[320] = "", buf[64];
	const char *extra[] = {"--bench-tgid", pidstr, "--ws-slow-ms", slowstr, NULL};
	int64_t t0, deadline, ms = 0;
	size_t n, i, mine = 0;
	bool ok = false, alive;
	int fds[2], err, status = 0;
	pid_t child;

	LM_IT_ASSERT(pipe2(fds, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
	ba.go_rd = fds[0];
	ba.go_wr = fds[1];
	err = lm_it_fork_fn(bench_child, &ba, &child);
	LM_IT_ASSERT(!err, "fork: %s", strerror(-err));
	close(fds[0]);
	snprintf(pidstr, sizeof(pidstr), "%d", child);
	snprintf(slowstr, sizeof(slowstr), "%d", BENCH_SLOW_MS);

	err = lm_it_lifemon_start(IT_PORT_BENCH, extra, false, &lm);
	LM_IT_ASSERT(!err, "bench: lifemon did not become healthy: %s", strerror(-err));
	err = lm_it_acct_open(IT_PORT_BENCH, true, &bench_acct);
	LM_IT_ASSERT(!err, "bench: ws connect: %s", strerror(-err));
	lm_it_on_cleanup(bench_cleanup, NULL);
	LM_IT_ASSERT(acct_marker(bench_acct, MARKER_MS), "bench: the /ws stream is not live");
	LM_IT_ASSERT(books_fetch(IT_PORT_BENCH, &b0, false), "bench: /metrics before the load");

	t0 = lm_it_now_ms();
	LM_IT_ASSERT(write(fds[1], "g", 1) == 1, "pipe write: %s", strerror(errno));
	close(fds[1]);
	deadline = t0 + BENCH_CHILD_MS;
	err = -ETIMEDOUT;
	for (;;) {
		if (lm_it_acct_pump(bench_acct, 20) < 0)
			break;
		err = lm_it_reap(child, 0, &status);
		if (err != -ETIMEDOUT)
			break;
		if (lm_it_now_ms() >= deadline) {
			lm_it_kill_reap(child);
			lm_it_fatal("bench child %d did not finish %d renames within %d ms", child,
				    BENCH_RENAMES, BENCH_CHILD_MS);
		}
	}
	if (err == -ETIMEDOUT) { /* the stream died: the child still runs */
		err = lm_it_reap(child, BENCH_CHILD_MS, &status);
		if (err)
			lm_it_kill_reap(child);
	}
	LM_IT_ASSERT(!err && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		     "bench child %d ended with %s", child,
		     err ? strerror(-err) : lm_it_wstatus_str(status, buf, sizeof(buf)));
	lm_it_note("bench: %d renames in %lld ms", BENCH_RENAMES, (long long)(lm_it_now_ms() - t0));

	/* a stream lifemon closed makes no progress either: that failure names the close */
	alive = bench_stream_open("during the load");
	if (alive && !acct_marker(bench_acct, MARKER_MS)) {
		alive = bench_stream_open("after the load");
		LM_IT_EXPECT(!alive,
			     "bench: no marker EXIT, and no progress for %d ms after the load "
			     "(pipeline stuck?)",
			     MARKER_MS);
	}

	/*
	 * Idle books, read twice around draining the client so both reads see one state: the
	 * kernel, reader, serializer and /ws books, and this (only) client's own account.
	 */
	t0 = lm_it_now_ms(); /* from here: how long until the books were idle */
	deadline = t0 + BOOKS_MS;
	while (!ok && lm_it_now_ms() < deadline) {
		int64_t drain_until;
		long long before;

		lm_it_acct_get_stats(bench_acct, &st);
		if (st.dead)
			break; /* reported above; what lifemon counted is read below */
		if (!books_fetch(IT_PORT_BENCH, &b1, false))
			break;
		drain_until = lm_it_now_ms() + 1000;
		lm_it_acct_get_stats(bench_acct, &st);
		before = st.last_seq;
		while (st.last_seq < (long long)b1.pub && lm_it_now_ms() < drain_until &&
		       lm_it_acct_pump(bench_acct, 50) >= 0)
			lm_it_acct_get_stats(bench_acct, &st);
		/* a slow client still reading its backlog: BOOKS_MS counts from its progress */
		if (st.last_seq != before)
			deadline = lm_it_now_ms() + BOOKS_MS;
		if (!books_fetch(IT_PORT_BENCH, &b2, false))
			break;
		lm_it_acct_get_stats(bench_acct, &st);
		if (memcmp(&b1, &b2, sizeof(b1))) {
			books_diff(&b1, &b2, why, sizeof(why));
		} else if (!books_balance(&b2, false, why, sizeof(why))) {
			/* why says which */
		} else if (st.last_seq != (long long)b2.pub) {
			snprintf(why, sizeof(why),
				 "client accounted up to seq %lld, %.0f events published",
				 st.last_seq, b2.pub);
		} else if (b2.ws_del + b2.ws_drop != b2.pub - (double)st.first_seq + 1) {
			snprintf(why, sizeof(why),
				 "ws_delivered %.0f + ws_dropped %.0f != published %.0f - %lld "
				 "published before the client connected",
				 b2.ws_del, b2.ws_drop, b2.pub, st.first_seq - 1);
		} else if ((double)st.events != b2.ws_del || (double)st.lost_count != b2.ws_drop) {
			snprintf(why, sizeof(why),
				 "client got %llu events and LOST notices for %llu; /metrics says "
				 "delivered %.0f dropped %.0f",
				 (unsigned long long)st.events, (unsigned long long)st.lost_count,
				 b2.ws_del, b2.ws_drop);
		} else if (st.events + st.lost_count !=
			   (uint64_t)(st.last_seq - st.first_seq + 1)) {
			snprintf(why, sizeof(why),
				 "client: %llu events + %llu lost != seq %lld..%lld",
				 (unsigned long long)st.events, (unsigned long long)st.lost_count,
				 st.first_seq, st.last_seq);
		} else {
			ok = true;
		}
		if (!ok)
			usleep(1000); /* short: a busy host leaves idle instants brief */
	}
	if (st.dead) {
		if (alive)
			bench_stream_open("while the books settled");
		LM_IT_ASSERT(books_fetch(IT_PORT_BENCH, &b2, false),
			     "bench: /metrics after the load");
	} else {
		LM_IT_EXPECT(ok, "bench: books did not balance, and no progress for %d ms: %s",
			     BOOKS_MS, why);
	}
	if (!ok)
		bench_note_metrics();
	lm_it_note("bench: books idle after %lld ms", (long long)(lm_it_now_ms() - t0));
	LM_IT_EXPECT(b2.ev[0] - b0.ev[0] >= BENCH_RENAMES / 2 &&
			 b2.ev[1] - b0.ev[1] >= BENCH_RENAMES / 2,
		     "bench: the kernel saw %.0f EXEC and %.0f EXIT during the load, want at least "
		     "%d each from the renames",
		     b2.ev[0] - b0.ev[0], b2.ev[1] - b0.ev[1], BENCH_RENAMES / 2);

	recs = lm_it_acct_recs(bench_acct, &n);
	for (i = 0; i < n; i++)
		if (recs[i].pid == child &&
		    (!strcmp(recs[i].comm, "ebench") || !strcmp(recs[i].comm, "xbench")))
			mine++;
	LM_IT_EXPECT(mine > 0, "bench: the client got none of the %d rename events", BENCH_RENAMES);
	lm_it_acct_report(bench_acct, "bench client");
	lm_it_note("bench: client seq %lld..%lld: %llu events (%zu renames), %llu LOST notices "
		   "for %llu; kernel dropped exec %.0f exit %.0f; ws delivered %.0f dropped %.0f",
		   st.first_seq, st.last_seq, (unsigned long long)st.events, mine,
		   (unsigned long long)st.lost_notices, (unsigned long long)st.lost_count,
		   b2.kd[0] - b0.kd[0], b2.kd[1] - b0.kd[1], b2.ws_del, b2.ws_drop);

	/* The regression: after a full-speed load, SIGTERM must still end lifemon promptly. */
	err = lm_it_proc_stop(lm, SIGTERM, LM_IT_STOP_MS, &status, &ms);
	LM_IT_EXPECT(!err,
		     "bench: lifemon did not exit within %d ms of SIGTERM after the load "
		     "(killed; a pipeline deadlock?)",
		     LM_IT_STOP_MS);
	LM_IT_EXPECT(!err && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		     "bench: lifemon ended with %s after SIGTERM, want exit 0",
		     lm_it_wstatus_str(status, buf, sizeof(buf)));
	lm_it_note("bench: SIGTERM -> %s in %lld ms", lm_it_wstatus_str(status, buf, sizeof(buf)),
		   (long long)ms);
	if (lm_it_failures())
		lm_it_proc_dump_stderr(lm, "bench");
	bench_cleanup(NULL);
	lm_it_proc_free(lm);
}

int main(int argc, char **argv)
{
	lm_it_init("it_storm", argc, argv, 230);
	lm_it_require_env();
	part_storm();
	part_bench();
	return lm_it_finish();
}
