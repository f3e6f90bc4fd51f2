// SPDX-License-Identifier: GPL-2.0
/*
 * Integration test, resuming the /ws stream with ?since= (issue 10). Across a disconnect in a
 * bounded storm, the two connections together hold every seq once (no gap, no duplicate at the
 * seam) and the --output file the same events with the same instance. With --replay-bytes 1M
 * and more events than that, since=1 gets one "evicted" LOST notice for exactly the seqs no
 * longer retained and then the retained history (with and without a filter). A since= for
 * another instance, made up or that of a lifemon that was restarted, gets a "restarted" notice
 * and the retained history from first_seq. Uses 127.0.0.1:18111-18113; starts lifemon and
 * bench/forkbomb-lite (argv[2]) and stops only those, by PID. Root only.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/it_proto.h"
#include "tests/it_util.h"

#define PORT_SEAM 18111
#define PORT_EVICT 18112
#define PORT_RESTART 18113
#define SYNC_MS 20000
#define REPLAY_BYTES (1 << 20)

static const char *fb;
static char tdir[64];
static char path_a[96], path_b[96];
static struct lm_it_proc *lm;
static pid_t storm = -1;

static void cleanup(void *arg)
{
	(void)arg;
	if (storm > 0)
		lm_it_kill_reap(storm);
	storm = -1;
	if (path_a[0])
		unlink(path_a);
	if (path_b[0])
		unlink(path_b);
	if (tdir[0])
		rmdir(tdir);
	tdir[0] = '\0';
}

/* Waits for the storm to end, reading s (may be NULL) meanwhile so that it keeps up. */
static void storm_wait(const char *what, struct lm_it_proto *s)
{
	int64_t deadline = lm_it_now_ms() + 60000;
	char buf[64];
	int status, err;

	for (;;) {
		err = lm_it_reap(storm, 0, &status);
		if (err != -ETIMEDOUT || lm_it_now_ms() >= deadline)
			break;
		if (s)
			LM_IT_ASSERT(lm_it_proto_pump(s, 50) >= 0, "%s: the stream ended", what);
		else
			usleep(50000);
	}
	LM_IT_ASSERT(!err, "%s: the storm did not end", what);
	LM_IT_EXPECT(WIFEXITED(status) && !WEXITSTATUS(status), "%s: forkbomb-lite ended with %s",
		     what, lm_it_wstatus_str(status, buf, sizeof(buf)));
	storm = -1;
}

static struct lm_it_proto *open_q(uint16_t port, const char *query, const char *who)
{
	struct lm_it_proto_opts o = { .port = port, .query = query, .keep_fields = true };
	struct lm_it_proto *s = NULL;
	int64_t deadline = lm_it_now_ms() + 5000;
	int err, status = 0;

	err = lm_it_proto_open(&o, &s, &status);
	LM_IT_ASSERT(!err, "%s: /ws?%s: %s (status %d)", who, query ? query : "", strerror(-err),
		     status);
	while (!lm_it_proto_hello(s)->seen && lm_it_now_ms() < deadline)
		if (lm_it_proto_pump(s, 100) < 0)
			break;
	LM_IT_ASSERT(lm_it_proto_hello(s)->seen, "%s: no HELLO within 5 s", who);
	return s;
}

/* Pumps until the stream has an event with seq >= seq. */
static bool pump_to(struct lm_it_proto *s, long long seq, int timeout_ms)
{
	int64_t deadline = lm_it_now_ms() + timeout_ms;

	while (lm_it_proto_last_seq(s) < seq && lm_it_now_ms() < deadline)
		if (lm_it_proto_pump(s, 100) < 0)
			break;
	return lm_it_proto_last_seq(s) >= seq;
}

static void load(const char *path, struct lm_it_proto_rec **recs, size_t *n, long **idx,
		 long long *lo, long long *hi)
{
	int err = lm_it_proto_load_file(path, false, recs, n);

	LM_IT_ASSERT(!err, "%s: %s", path, strerror(-err));
	*idx = lm_it_proto_seq_index(*recs, *n, lo, hi);
	LM_IT_ASSERT(*idx, "out of memory");
}

/* Loads the file once it holds seq `upto` (the file is written before /ws is). */
static void load_upto(const char *path, long long upto, struct lm_it_proto_rec **recs, size_t *n,
		      long **idx, long long *lo, long long *hi)
{
	int64_t deadline = lm_it_now_ms() + SYNC_MS;

	for (;;) {
		load(path, recs, n, idx, lo, hi);
		if (*hi >= upto || lm_it_now_ms() >= deadline)
			break;
		free(*idx);
		lm_it_proto_recs_free(*recs, *n);
		usleep(50000);
	}
	LM_IT_ASSERT(*hi >= upto, "%s ends at seq %lld, want %lld", path, *hi, upto);
}

/*
 * Checks that the events of s from position `from` on are exactly seqs first..last of the file,
 * each once and the same event; returns the number compared.
 */
static size_t same_as_file(const char *who, const struct lm_it_proto_rec *recs, size_t n,
			   size_t from, long long first, long long last,
			   const struct lm_it_proto_rec *frecs, const long *fidx, long long flo,
			   long long fhi, const char *instance)
{
	long long want = first;
	unsigned int bad = 0;
	size_t k, cmp = 0;

	for (k = from; k < n && want <= last; k++) {
		const struct lm_it_proto_rec *r = &recs[k];
		long j;

		if (r->kind != 'E') {
			if (bad++ < 5)
				lm_it_fail(
					"%s: a LOST notice (reason %c, %lld..%lld) where seq %lld "
					"was due",
					who, r->reason, r->first_seq, r->last_seq, want);
			continue;
		}
		if (r->seq != want) {
			if (bad++ < 5)
				lm_it_fail("%s: seq %lld where %lld was due (%s)", who, r->seq,
					   want,
					   r->seq < want ? "a duplicate or going back" : "a gap");
			if (r->seq > want)
				want = r->seq;
			else
				continue;
		}
		j = r->seq >= flo && r->seq <= fhi ? fidx[r->seq - flo] : -1;
		if (j < 0) {
			if (bad++ < 5)
				lm_it_fail("%s: seq %lld is not in the file", who, r->seq);
		} else if (frecs[j].type != r->type || frecs[j].pid != r->pid ||
			   strcmp(frecs[j].instance, r->instance) ||
			   strcmp(r->instance, instance)) {
			if (bad++ < 5)
				lm_it_fail(
					"%s: seq %lld: %c pid %d instance %s, the file has %c pid "
					"%d instance %s, HELLO %s",
					who, r->seq, r->type, r->pid, r->instance, frecs[j].type,
					frecs[j].pid, frecs[j].instance, instance);
		}
		want++;
		cmp++;
	}
	LM_IT_EXPECT(want > last, "%s: ends at seq %lld, want up to %lld", who, want - 1, last);
	return cmp;
}

static void file_contiguous(const char *path, const long *fidx, long long flo, long long fhi)
{
	long long seq, miss = 0;

	LM_IT_EXPECT(flo == 1, "%s: the first seq is %lld, want 1", path, flo);
	for (seq = flo; seq <= fhi; seq++)
		if (fidx[seq - flo] < 0 && miss++ < 5)
			lm_it_fail("%s: seq %lld missing", path, seq);
}

static void lm_start(uint16_t port, const char *const extra[])
{
	int err = lm_it_lifemon_start(port, extra, false, &lm);

	LM_IT_ASSERT(!err, "lifemon on port %u did not become healthy: %s", port, strerror(-err));
}

static void lm_stop(const char *who)
{
	char buf[64];
	int64_t ms;
	int err, status = 0;

	err = lm_it_proc_stop(lm, SIGTERM, LM_IT_STOP_MS, &status, &ms);
	LM_IT_EXPECT(!err && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		     "%s did not exit 0 within %d ms of SIGTERM: %s", who, LM_IT_STOP_MS,
		     lm_it_wstatus_str(status, buf, sizeof(buf)));
	if (lm_it_failures())
		lm_it_proc_dump_stderr(lm, who);
	lm_it_proc_free(lm);
	lm = NULL;
}

/* --- 1. a disconnect in the middle of a storm --- */

static void part_seam(void)
{
	const char *extra[] = { "--output", path_a, NULL };
	struct lm_it_proto *c1, *c2;
	const struct lm_it_proto_rec *r1, *r2;
	struct lm_it_proto_rec *frecs = NULL, *keep;
	struct lm_it_proto_hello h1, h2;
	long long l1, end, flo, fhi;
	char q[128], *body = NULL;
	size_t n1, n2, nf, cmp;
	double replayed = -1;
	int64_t t;
	long *fidx;
	int err;

	lm_start(PORT_SEAM, extra);
	err = lm_it_proto_storm(fb, 6, 16, 100000, &storm);
	LM_IT_ASSERT(!err, "forkbomb-lite: %s", strerror(-err));
	usleep(500000); /* the storm is under way */
	c1 = open_q(PORT_SEAM, NULL, "first connection");
	h1 = *lm_it_proto_hello(c1);
	for (t = lm_it_now_ms() + 1500; lm_it_now_ms() < t;)
		LM_IT_ASSERT(lm_it_proto_pump(c1, 100) >= 0, "first connection: the stream ended");
	l1 = lm_it_proto_last_seq(c1);
	LM_IT_ASSERT(l1 >= h1.next_seq, "first connection: no event in 1.5 s of a storm");
	lm_it_proto_report(c1, "first connection");
	r1 = lm_it_proto_recs(c1, &n1);
	/* the disconnect, then 1 s of storm that the second connection must get by replay */
	keep = malloc(n1 * sizeof(*keep));
	LM_IT_ASSERT(keep, "out of memory");
	memcpy(keep, r1, n1 * sizeof(*keep));
	for (size_t k = 0; k < n1; k++) /* the strings stay with c1 */
		keep[k].comm = keep[k].exe = keep[k].cgroup = keep[k].container = keep[k].key =
			keep[k].args = NULL;
	lm_it_proto_close(c1);
	usleep(1000000);
	snprintf(q, sizeof(q), "since=%lld&instance=%s", l1 + 1, h1.instance);
	c2 = open_q(PORT_SEAM, q, "second connection");
	h2 = *lm_it_proto_hello(c2);
	lm_it_note("first connection: HELLO next_seq %lld, read up to seq %lld; second: HELLO "
		   "first_seq %lld next_seq %lld",
		   h1.next_seq, l1, h2.first_seq, h2.next_seq);
	LM_IT_EXPECT(!strcmp(h2.instance, h1.instance), "second HELLO instance %s, first %s",
		     h2.instance, h1.instance);
	LM_IT_EXPECT(h2.first_seq <= l1 + 1 && h2.next_seq > l1 + 1,
		     "second HELLO first_seq %lld next_seq %lld: want seq %lld retained and events "
		     "after it (the storm ran on)",
		     h2.first_seq, h2.next_seq, l1 + 1);
	storm_wait("seam", c2);
	end = lm_it_proto_sync(c2, SYNC_MS);
	LM_IT_ASSERT(end > 0, "second connection: no end marker: %s", strerror((int)-end));
	lm_it_proto_report(c2, "second connection");
	r2 = lm_it_proto_recs(c2, &n2);

	load_upto(path_a, end, &frecs, &nf, &fidx, &flo, &fhi);
	file_contiguous(path_a, fidx, flo, fhi);
	cmp = same_as_file("first connection", keep, n1, 0, h1.next_seq, l1, frecs, fidx, flo, fhi,
			   h1.instance);
	cmp += same_as_file("second connection", r2, n2, 0, l1 + 1, end, frecs, fidx, flo, fhi,
			    h1.instance);
	LM_IT_EXPECT(cmp == (size_t)(end - h1.next_seq + 1),
		     "the two connections hold %zu events, seqs %lld..%lld are %lld", cmp,
		     h1.next_seq, end, end - h1.next_seq + 1);
	if (!lm_it_metrics_fetch(PORT_SEAM, 5000, &body)) {
		lm_it_metric(body, "lifemon_ws_replayed_total", &replayed);
		free(body);
	}
	LM_IT_EXPECT(replayed >= (double)(h2.next_seq - l1 - 1),
		     "lifemon_ws_replayed_total %.0f, want at least the %lld events replayed",
		     replayed, h2.next_seq - l1 - 1);
	lm_it_note("seam: %lld events before the disconnect, %lld replayed after 1 s away, %lld "
		   "live; seqs %lld..%lld once each, as in the file (lifemon_ws_replayed_total "
		   "%.0f)",
		   l1 - h1.next_seq + 1, h2.next_seq - l1 - 1, end - h2.next_seq + 1, h1.next_seq,
		   end, replayed);
	free(keep);
	free(fidx);
	lm_it_proto_recs_free(frecs, nf);
	lm_it_proto_close(c2);
	lm_stop("lifemon (seam)");
}

/* --- 2. evicted and restarted on one lifemon with --replay-bytes 1M --- */

static void check_evicted(struct lm_it_proto *s, const char *who, long long since, bool exits,
			  long long end, const struct lm_it_proto_rec *frecs, const long *fidx,
			  long long flo, long long fhi)
{
	const struct lm_it_proto_hello *h = lm_it_proto_hello(s);
	const struct lm_it_proto_rec *r;
	long long seq, bytes = 0, want = 0;
	size_t n, k, evs = 0;
	unsigned int bad = 0;

	LM_IT_ASSERT(pump_to(s, end, SYNC_MS), "%s: did not reach seq %lld", who, end);
	lm_it_proto_report(s, who);
	r = lm_it_proto_recs(s, &n);
	LM_IT_ASSERT(n > 0, "%s: nothing after the HELLO", who);
	LM_IT_EXPECT(h->first_seq > since,
		     "%s: HELLO first_seq %lld: the 1 MiB history must have "
		     "evicted seq %lld",
		     who, h->first_seq, since);
	LM_IT_EXPECT(r[0].kind == 'L' && r[0].reason == 'e' && r[0].first_seq == since &&
			     r[0].last_seq == h->first_seq - 1 &&
			     r[0].count == h->first_seq - since,
		     "%s: first line after the HELLO: kind %c reason %c first_seq %lld last_seq "
		     "%lld count %lld; want LOST evicted %lld..%lld count %lld",
		     who, r[0].kind, r[0].reason, r[0].first_seq, r[0].last_seq, r[0].count, since,
		     h->first_seq - 1, h->first_seq - since);
	/* then the retained events (the file's, filtered), in order, and nothing else */
	k = 1;
	for (seq = h->first_seq; seq <= end; seq++) {
		long j = seq >= flo && seq <= fhi ? fidx[seq - flo] : -1;

		if (j < 0 || (exits && frecs[j].type != 'X'))
			continue;
		if (seq < h->next_seq)
			bytes += frecs[j].line_bytes + 1;
		while (k < n && r[k].kind == 'L' && r[k].reason == 'k')
			k++; /* a kernel loss names no seq */
		if (k >= n || r[k].kind != 'E' || r[k].seq != seq) {
			lm_it_fail("%s: want seq %lld next, got %s %lld", who, seq,
				   k >= n	      ? "the end after seq"
				   : r[k].kind == 'E' ? "seq"
						      : "a LOST notice to",
				   k >= n	      ? lm_it_proto_last_seq(s)
				   : r[k].kind == 'E' ? r[k].seq
						      : r[k].last_seq);
			bad++;
			break;
		}
		if (frecs[j].pid != r[k].pid || frecs[j].type != r[k].type)
			lm_it_fail("%s: seq %lld differs from the file", who, seq);
		k++;
		evs++;
		want++;
	}
	if (!exits) {
		LM_IT_EXPECT(bytes <= REPLAY_BYTES,
			     "%s: seqs %lld..%lld retained are %lld bytes of JSON, more than "
			     "--replay-bytes %d",
			     who, h->first_seq, h->next_seq - 1, bytes, REPLAY_BYTES);
		LM_IT_EXPECT(bytes >= REPLAY_BYTES / 2,
			     "%s: seqs %lld..%lld retained are only %lld bytes of JSON, want at "
			     "least half of --replay-bytes %d",
			     who, h->first_seq, h->next_seq - 1, bytes, REPLAY_BYTES);
	}
	lm_it_note("%s: LOST evicted %lld..%lld, then %zu events from seq %lld (%lld bytes of "
		   "JSON retained up to next_seq %lld)",
		   who, since, h->first_seq - 1, evs, h->first_seq, bytes, h->next_seq);
}

static void check_restarted(struct lm_it_proto *s, const char *who, const char *prev,
			    long long since, long long end, const struct lm_it_proto_rec *frecs,
			    const long *fidx, long long flo, long long fhi)
{
	const struct lm_it_proto_hello *h = lm_it_proto_hello(s);
	const struct lm_it_proto_rec *r;
	size_t n, cmp;

	LM_IT_ASSERT(pump_to(s, end, SYNC_MS), "%s: did not reach seq %lld", who, end);
	lm_it_proto_report(s, who);
	r = lm_it_proto_recs(s, &n);
	LM_IT_ASSERT(n > 0, "%s: nothing after the HELLO", who);
	LM_IT_EXPECT(strcmp(h->instance, prev), "%s: HELLO instance %s is the previous one", who,
		     h->instance);
	LM_IT_EXPECT(r[0].kind == 'L' && r[0].reason == 'r' && !strcmp(r[0].instance, prev) &&
			     r[0].first_seq == since,
		     "%s: first line after the HELLO: kind %c reason %c previous_instance %s since "
		     "%lld; want LOST restarted previous_instance %s since %lld",
		     who, r[0].kind, r[0].reason, r[0].instance, r[0].first_seq, prev, since);
	cmp = same_as_file(who, r, n, 1, h->first_seq, end, frecs, fidx, flo, fhi, h->instance);
	lm_it_note("%s: LOST restarted (previous %s since %lld), then seqs %lld..%lld (%zu)", who,
		   prev, since, h->first_seq, end, cmp);
}

static void part_evict(void)
{
	const char *extra[] = { "--output", path_b, "--replay-bytes", "1M", NULL };
	struct lm_it_proto *c0, *ce, *cx, *cr;
	struct lm_it_proto_rec *frecs = NULL;
	long long end, flo, fhi;
	char q[128], made_up[17] = "0123456789abcdef";
	size_t nf;
	long *fidx;
	int err;

	lm_start(PORT_EVICT, extra);
	c0 = open_q(PORT_EVICT, NULL, "evict: unfiltered");
	/* some 8000 events of 300 to 900 bytes: several MiB of JSON */
	err = lm_it_proto_storm(fb, 10, 16, 4000, &storm);
	LM_IT_ASSERT(!err, "forkbomb-lite: %s", strerror(-err));
	storm_wait("evict", c0);
	end = lm_it_proto_sync(c0, SYNC_MS);
	LM_IT_ASSERT(end > 0, "evict: no end marker: %s", strerror((int)-end));
	lm_it_proto_report(c0, "evict: unfiltered");
	if (!strcmp(made_up, lm_it_proto_hello(c0)->instance))
		made_up[0] = '1';
	load_upto(path_b, end, &frecs, &nf, &fidx, &flo, &fhi);
	file_contiguous(path_b, fidx, flo, fhi);

	snprintf(q, sizeof(q), "since=1&instance=%s", lm_it_proto_hello(c0)->instance);
	ce = open_q(PORT_EVICT, q, "since=1");
	check_evicted(ce, "since=1", 1, false, end, frecs, fidx, flo, fhi);
	snprintf(q, sizeof(q), "since=2&type=exit");
	cx = open_q(PORT_EVICT, q, "since=2&type=exit");
	check_evicted(cx, "since=2&type=exit", 2, true, end, frecs, fidx, flo, fhi);
	snprintf(q, sizeof(q), "since=5&instance=%s", made_up);
	cr = open_q(PORT_EVICT, q, "made-up instance");
	check_restarted(cr, "since=5&instance=<made up>", made_up, 5, end, frecs, fidx, flo, fhi);
	free(fidx);
	lm_it_proto_recs_free(frecs, nf);
	lm_it_proto_close(c0);
	lm_it_proto_close(ce);
	lm_it_proto_close(cx);
	lm_it_proto_close(cr);
	lm_stop("lifemon (evict)");
}

/* --- 3. since= from before a restart --- */

static void part_restart(void)
{
	const char *extra[] = { "--output", path_a, NULL };
	struct lm_it_proto_rec *frecs = NULL;
	struct lm_it_proto *c;
	char q[128], prev[17];
	long long last, end, flo, fhi;
	size_t nf;
	long *fidx;

	unlink(path_a);
	lm_start(PORT_RESTART, extra);
	c = open_q(PORT_RESTART, NULL, "before the restart");
	snprintf(prev, sizeof(prev), "%s", lm_it_proto_hello(c)->instance);
	last = lm_it_proto_sync(c, SYNC_MS);
	LM_IT_ASSERT(last > 0, "before the restart: no marker");
	lm_it_proto_report(c, "before the restart");
	lm_it_proto_close(c);
	lm_stop("lifemon (before the restart)");

	unlink(path_a);
	lm_start(PORT_RESTART, extra);
	snprintf(q, sizeof(q), "since=%lld&instance=%s", last + 1, prev);
	c = open_q(PORT_RESTART, q, "after the restart");
	end = lm_it_proto_sync(c, SYNC_MS);
	LM_IT_ASSERT(end > 0, "after the restart: no marker");
	LM_IT_EXPECT(lm_it_proto_hello(c)->first_seq == 1,
		     "after the restart: HELLO first_seq %lld, want 1 (nothing evicted yet)",
		     lm_it_proto_hello(c)->first_seq);
	load_upto(path_a, end, &frecs, &nf, &fidx, &flo, &fhi);
	file_contiguous(path_a, fidx, flo, fhi);
	check_restarted(c, "since= after a restart", prev, last + 1, end, frecs, fidx, flo, fhi);
	free(fidx);
	lm_it_proto_recs_free(frecs, nf);
	lm_it_proto_close(c);
	lm_stop("lifemon (after the restart)");
}

int main(int argc, char **argv)
{
	fb = lm_it_proto_fb(argc, argv);
	lm_it_init("it_resume", argc, argv, 110);
	lm_it_require_env();
	snprintf(tdir, sizeof(tdir), "/tmp/lm-it-resume.XXXXXX");
	LM_IT_ASSERT(mkdtemp(tdir), "mkdtemp: %s", strerror(errno));
	snprintf(path_a, sizeof(path_a), "%s/a.jsonl", tdir);
	snprintf(path_b, sizeof(path_b), "%s/b.jsonl", tdir);
	lm_it_on_cleanup(cleanup, NULL);

	part_seam();
	part_evict();
	part_restart();
	return lm_it_finish();
}
