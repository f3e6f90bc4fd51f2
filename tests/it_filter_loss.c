// SPDX-License-Identifier: GPL-2.0
/*
 * Integration test, filtered vs lost (issue 10): in a bounded storm, a /ws client with a filter
 * (type=exit) falls behind and events are dropped for it. Every seq gap it sees must then be
 * either covered exactly by a slow_client LOST notice (first_seq..last_seq, count, and
 * "matched" equal to the events in that range the filter selects, counted in the --output
 * file, which has every event) or made of events the filter does not select. lifemon keeps
 * --replay-bytes 1M of history for clients that are behind; two ways to fall behind further,
 * each kept up until lifemon has dropped events for the client: (1) it stops reading (lifemon
 * waits about 1 s for a consumer that makes no progress), then reads again; (2) with
 * --ring-size 64K it reads, but slowly, so the kernel rings pass lifemon's high-water mark.
 * An unfiltered client reading at full speed beside it is checked the same way, and in (1)
 * must lose nothing and never wait for more than about a second. Uses 127.0.0.1:18114-18115;
 * starts lifemon and bench/forkbomb-lite (argv[2]) and stops only those, by PID. Root only.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/it_proto.h"
#include "tests/it_util.h"

#define PORT_STUCK 18114
#define PORT_RING 18115
#define SYNC_MS 30000
#define STUCK_AT_MS 1000 /* the filtered client reads this long into the storm ... */
/*
 * ... then (1) not at all, or (2) slowly, until lifemon has dropped events for it (once its
 * socket buffers, up to 4 MiB on loopback, are full: some seconds of the storm's EXITs, more
 * on a slow host or a sanitized lifemon), and DROPPING_MS more; then it reads at full speed
 * and the storm is stopped AFTER_MS later. The storm is bounded by STORM_S in any case.
 */
#define DROPPING_MS 1000
#define AFTER_MS 1500
#define STORM_S 40
#define SLOW_EVERY_MS 50 /* (2): one read per this ... */
#define SLOW_READ 2048	 /* ... of at most this: 40 KB/s, a twentieth of the storm's EXITs */
#define CLIENT_RCVBUF 8192

static const char *fb;
static char tdir[64], out_path[96];
static struct lm_it_proc *lm;
static pid_t storm = -1;

static void cleanup(void *arg)
{
	(void)arg;
	if (storm > 0)
		lm_it_kill_reap(storm);
	storm = -1;
	if (out_path[0])
		unlink(out_path);
	if (tdir[0])
		rmdir(tdir);
	tdir[0] = '\0';
}

struct loss {
	long long notices, lost, matched, filtered, kernel_notices;
};

/*
 * Walks a client's lines against the file: every seq from its HELLO's next_seq to `end` is
 * received, filtered (does not match; no notice) or lost (inside exactly one slow_client
 * notice whose "matched" is right). Fills *l.
 */
static void check_gaps(const char *who, struct lm_it_proto *s, const char *query, long long end,
		       const struct lm_it_proto_rec *frecs, const long *fidx, long long flo,
		       long long fhi, struct loss *l)
{
	const struct lm_it_proto_hello *h = lm_it_proto_hello(s);
	struct lm_it_proto_filter *f = NULL;
	const struct lm_it_proto_rec *r;
	long long nx = h->next_seq, seq, from = h->next_seq;
	unsigned int bad = 0;
	bool *sel;
	size_t n, k;

	memset(l, 0, sizeof(*l));
	LM_IT_ASSERT(!lm_it_proto_filter_parse(query, &f), "model: %s", query);
	/* what lifemon decides for this client, each of the file's events judged once in order */
	sel = calloc((size_t)(fhi >= from ? fhi - from + 1 : 1), sizeof(*sel));
	LM_IT_ASSERT(sel, "out of memory");
	for (seq = from; seq <= fhi; seq++) {
		long j = seq >= flo ? fidx[seq - flo] : -1;

		if (j >= 0)
			sel[seq - from] = lm_it_proto_filter_judge(f, &frecs[j]);
	}
	r = lm_it_proto_recs(s, &n);
	for (k = 0; k < n && nx <= end; k++) {
		long long upto;

		if (r[k].kind == 'L' && r[k].reason == 'k') {
			l->kernel_notices++;
			continue;
		}
		if (r[k].kind == 'L' && r[k].reason != 's') {
			if (bad++ < 5)
				lm_it_fail("%s: LOST notice with reason %c in a live stream", who,
					   r[k].reason);
			continue;
		}
		upto = r[k].kind == 'E' ? r[k].seq : r[k].first_seq;
		if (upto < nx) {
			if (bad++ < 5)
				lm_it_fail(
					"%s: %s at seq %lld, but seq %lld was next (a duplicate or "
					"overlap)",
					who, r[k].kind == 'E' ? "event" : "LOST notice", upto, nx);
			continue;
		}
		/* the gap before it: events the filter does not select */
		for (seq = nx; seq < upto; seq++) {
			long j = seq >= flo && seq <= fhi ? fidx[seq - flo] : -1;

			if (j < 0) {
				if (bad++ < 5)
					lm_it_fail("%s: seq %lld is not in the file", who, seq);
				continue;
			}
			if (sel[seq - from]) {
				if (bad++ < 5)
					lm_it_fail(
						"%s: seq %lld (%c pid %d) matches the filter but "
						"was "
						"neither sent nor announced lost (gap %lld..%lld "
						"before %s %lld)",
						who, seq, frecs[j].type, frecs[j].pid, nx, upto - 1,
						r[k].kind == 'E' ? "seq" : "LOST from", upto);
			} else {
				l->filtered++;
			}
		}
		if (r[k].kind == 'E') {
			long j = r[k].seq <= fhi ? fidx[r[k].seq - flo] : -1;

			if (j >= 0 &&
			    (frecs[j].type != r[k].type || frecs[j].pid != r[k].pid ||
			     !sel[r[k].seq - from]) &&
			    bad++ < 5)
				lm_it_fail(
					"%s: seq %lld (%c pid %d) is not the file's event or does "
					"not match the filter",
					who, r[k].seq, r[k].type, r[k].pid);
			nx = r[k].seq + 1;
			continue;
		}
		/* a slow_client notice: exactly these seqs, and how many of them matched */
		{
			long long m = 0;

			for (seq = r[k].first_seq; seq <= r[k].last_seq && seq <= fhi; seq++) {
				long j = seq >= flo ? fidx[seq - flo] : -1;

				if (j >= 0 && seq >= from && sel[seq - from])
					m++;
			}
			if (r[k].matched != m && bad++ < 5)
				lm_it_fail("%s: LOST slow_client %lld..%lld (count %lld): matched "
					   "%lld, "
					   "the file has %lld events the filter selects there",
					   who, r[k].first_seq, r[k].last_seq, r[k].count,
					   r[k].matched, m);
			l->notices++;
			l->lost += r[k].count;
			l->matched += m;
			nx = r[k].last_seq + 1;
		}
	}
	LM_IT_EXPECT(nx > end, "%s: accounted for seqs up to %lld only, want %lld", who, nx - 1,
		     end);
	free(sel);
	lm_it_proto_filter_free(f);
}

static struct lm_it_proto *open_q(uint16_t port, const char *query, int rcvbuf, size_t max_read,
				  const char *who)
{
	struct lm_it_proto_opts o = {
		.port = port, .query = query, .rcvbuf = rcvbuf, .max_read = max_read
	};
	int64_t deadline = lm_it_now_ms() + 5000;
	struct lm_it_proto *s = NULL;
	int err, status = 0;

	err = lm_it_proto_open(&o, &s, &status);
	LM_IT_ASSERT(!err, "%s: %s (status %d)", who, strerror(-err), status);
	while (!lm_it_proto_hello(s)->seen && lm_it_now_ms() < deadline)
		if (lm_it_proto_pump(s, 100) < 0)
			break;
	LM_IT_ASSERT(lm_it_proto_hello(s)->seen, "%s: no HELLO within 5 s", who);
	return s;
}

/* Pumps until seq `end` arrived (the stream's last seq may be a later filtered-out one). */
static void drain_to(struct lm_it_proto *s, long long end, const char *who)
{
	int64_t deadline = lm_it_now_ms() + SYNC_MS;
	const struct lm_it_proto_rec *r;
	size_t n;

	for (;;) {
		r = lm_it_proto_recs(s, &n);
		if (n && ((r[n - 1].kind == 'E' && r[n - 1].seq >= end) ||
			  (r[n - 1].kind == 'L' && r[n - 1].last_seq >= end)))
			return;
		if (lm_it_now_ms() >= deadline || lm_it_proto_pump(s, 100) < 0)
			break;
	}
	lm_it_fail("%s: did not get as far as seq %lld", who, end);
}

static double metric(uint16_t port, const char *series)
{
	char *body = NULL;
	double v = -1;

	if (!lm_it_metrics_fetch(port, 5000, &body)) {
		if (!lm_it_metric(body, series, &v))
			v = -1;
		free(body);
	}
	return v;
}

static void run(bool stuck)
{
	/* 1M of history: a client behind by more is no longer served from it */
	const char *extra_stuck[] = { "--output", out_path,	    "--ws-slow-ms",
				      "30000",	  "--replay-bytes", "1M",
				      NULL };
	const char *extra_ring[] = { "--output",       out_path,      "--ws-slow-ms",
				     "30000",	       "--ring-size", "64K",
				     "--replay-bytes", "1M",	      NULL };
	const char *name = stuck ? "stuck client" : "slow client, 64K rings";
	uint16_t port = stuck ? PORT_STUCK : PORT_RING;
	struct lm_it_proto *x, *y;
	struct lm_it_proto_rec *frecs = NULL;
	struct loss lx, ly;
	long long end, flo, fhi, seq;
	int64_t t0, next_read = 0, y_last, y_silence = 0, next_metric = 0, t_dropped = 0;
	int64_t t_normal = 0;
	bool stopped = false;
	char buf[64], who_x[96], who_y[96];
	size_t nf;
	long *fidx;
	int err, status = 0;
	double wsd;

	snprintf(who_x, sizeof(who_x), "%s: ?type=exit", name);
	snprintf(who_y, sizeof(who_y), "%s: unfiltered", name);
	unlink(out_path);
	err = lm_it_lifemon_start(port, stuck ? extra_stuck : extra_ring, false, &lm);
	LM_IT_ASSERT(!err, "%s: lifemon did not become healthy: %s", name, strerror(-err));
	x = open_q(port, "type=exit", CLIENT_RCVBUF, stuck ? 0 : SLOW_READ, who_x);
	y = open_q(port, NULL, 0, 0, who_y);
	err = lm_it_proto_storm(fb, STORM_S, 16, 100000, &storm);
	LM_IT_ASSERT(!err, "forkbomb-lite: %s", strerror(-err));
	t0 = lm_it_now_ms();
	y_last = t0;
	for (;;) {
		int64_t now = lm_it_now_ms();
		bool x_reads;

		err = lm_it_reap(storm, 0, &status);
		if (err != -ETIMEDOUT)
			break;
		LM_IT_ASSERT(now < t0 + (STORM_S + 20) * 1000, "%s: the storm did not end", name);
		/* behind until lifemon drops for x, a little longer, then back to full speed */
		if (now >= next_metric && !t_normal) {
			if (!t_dropped && metric(port, "lifemon_ws_dropped_total") > 0)
				t_dropped = now;
			if (t_dropped && now >= t_dropped + DROPPING_MS) {
				t_normal = now;
				lm_it_proto_set_max_read(x, 0);
			}
			next_metric = now + 200;
		}
		if (t_normal && now >= t_normal + AFTER_MS && !stopped) {
			kill(storm, SIGTERM); /* forkbomb-lite stops forking, reaps, exits 0 */
			stopped = true;
		}
		if (t_normal || now < t0 + STUCK_AT_MS)
			x_reads = true;
		else
			x_reads = !stuck && now >= next_read;
		if (x_reads) {
			LM_IT_ASSERT(lm_it_proto_pump(x, 5) >= 0, "%s: the stream ended", who_x);
			if (!stuck && !t_normal)
				next_read = now + SLOW_EVERY_MS;
		}
		err = lm_it_proto_pump(y, 5);
		LM_IT_ASSERT(err >= 0, "%s: the stream ended", who_y);
		/* the longest time y got nothing in the storm: what the stuck client cost it */
		now = lm_it_now_ms();
		if (err > 0)
			y_last = now;
		if (now - y_last > y_silence)
			y_silence = now - y_last;
	}
	LM_IT_EXPECT(stopped, "%s: no event was dropped for the %s client in %d s of storm", name,
		     stuck ? "stuck" : "slow", STORM_S);
	if (t_dropped)
		lm_it_note("%s: the first drop %lld ms into the storm, full speed again %lld ms "
			   "later",
			   who_x, (long long)(t_dropped - t0), (long long)(t_normal - t_dropped));
	storm = -1;
	LM_IT_EXPECT(!err && WIFEXITED(status) && !WEXITSTATUS(status),
		     "%s: forkbomb-lite ended with %s", name,
		     lm_it_wstatus_str(status, buf, sizeof(buf)));
	end = lm_it_proto_sync(y, SYNC_MS);
	LM_IT_ASSERT(end > 0, "%s: no end marker: %s", who_y, strerror((int)-end));
	lm_it_proto_set_max_read(x, 0); /* the rest at full speed */
	drain_to(x, end, who_x);
	lm_it_proto_report(x, who_x);
	lm_it_proto_report(y, who_y);
	wsd = metric(port, "lifemon_ws_dropped_total");

	/* the file: every event, no loss of any kind */
	{
		int64_t deadline = lm_it_now_ms() + SYNC_MS;

		for (;;) {
			err = lm_it_proto_load_file(out_path, false, &frecs, &nf);
			LM_IT_ASSERT(!err, "%s: %s", out_path, strerror(-err));
			fidx = lm_it_proto_seq_index(frecs, nf, &flo, &fhi);
			LM_IT_ASSERT(fidx, "out of memory");
			if (fhi >= end || lm_it_now_ms() >= deadline)
				break;
			free(fidx);
			lm_it_proto_recs_free(frecs, nf);
			usleep(50000);
		}
	}
	LM_IT_ASSERT(fhi >= end, "%s: the file ends at seq %lld, want %lld", name, fhi, end);
	LM_IT_EXPECT(flo == 1, "%s: the file starts at seq %lld", name, flo);
	for (seq = flo; seq <= fhi; seq++)
		if (fidx[seq - flo] < 0) {
			lm_it_fail("%s: the file lacks seq %lld", name, seq);
			break;
		}
	for (size_t i = 0; i < nf; i++)
		if (frecs[i].kind == 'L' && frecs[i].reason != 'k') {
			lm_it_fail("%s: the file has a LOST notice (reason %c, %lld..%lld)", name,
				   frecs[i].reason, frecs[i].first_seq, frecs[i].last_seq);
			break;
		}

	check_gaps(who_x, x, "type=exit", end, frecs, fidx, flo, fhi, &lx);
	check_gaps(who_y, y, "", end, frecs, fidx, flo, fhi, &ly);
	lm_it_note("%s: seqs %lld..%lld: %lld filtered out, %lld notice(s) for %lld lost of which "
		   "%lld matched; %lld kernel notice(s); lifemon_ws_dropped_total %.0f",
		   who_x, lm_it_proto_hello(x)->next_seq, end, lx.filtered, lx.notices, lx.lost,
		   lx.matched, lx.kernel_notices, wsd);
	lm_it_note("%s: seqs %lld..%lld: %zu events, %lld notice(s) for %lld lost", who_y,
		   lm_it_proto_hello(y)->next_seq, end, lm_it_proto_events(y), ly.notices, ly.lost);
	LM_IT_EXPECT(lx.notices > 0 && lx.matched > 0 && lx.lost > lx.matched,
		     "%s: %lld slow_client notice(s), %lld lost, %lld matched: it %s, so events "
		     "must have been dropped for it, among them ones the filter selects and ones "
		     "it does not",
		     who_x, lx.notices, lx.lost, lx.matched,
		     stuck ? "stopped reading in the storm until lifemon dropped for it"
			   : "read slowly with 64K kernel rings until lifemon dropped for it");
	LM_IT_EXPECT(lx.filtered > 0, "%s: no filtered-out event outside the losses", who_x);
	LM_IT_EXPECT(wsd >= (double)lx.lost, "%s: lifemon_ws_dropped_total %.0f < %lld lost", who_x,
		     wsd, lx.lost);
	if (stuck) {
		LM_IT_EXPECT(!ly.notices,
			     "%s: lost %lld events beside a stuck client (it read "
			     "all the time)",
			     who_y, ly.lost);
		LM_IT_EXPECT(y_silence < 2000,
			     "%s: got nothing for %lld ms in the storm while "
			     "the other client was stuck: held back for more than about 1 s",
			     who_y, (long long)y_silence);
	}
	lm_it_note("%s: the longest wait for a message in the storm: %lld ms", who_y,
		   (long long)y_silence);
	free(fidx);
	lm_it_proto_recs_free(frecs, nf);
	lm_it_proto_close(x);
	lm_it_proto_close(y);
	{
		int64_t ms;

		err = lm_it_proc_stop(lm, SIGTERM, LM_IT_STOP_MS, &status, &ms);
		LM_IT_EXPECT(!err && WIFEXITED(status) && WEXITSTATUS(status) == 0,
			     "%s: lifemon did not exit 0 within %d ms of SIGTERM: %s", name,
			     LM_IT_STOP_MS, lm_it_wstatus_str(status, buf, sizeof(buf)));
	}
	if (lm_it_failures())
		lm_it_proc_dump_stderr(lm, name);
	lm_it_proc_free(lm);
	lm = NULL;
}

int main(int argc, char **argv)
{
	fb = lm_it_proto_fb(argc, argv);
	lm_it_init("it_filter_loss", argc, argv, 110);
	lm_it_require_env();
	snprintf(tdir, sizeof(tdir), "/tmp/lm-it-floss.XXXXXX");
	LM_IT_ASSERT(mkdtemp(tdir), "mkdtemp: %s", strerror(errno));
	snprintf(out_path, sizeof(out_path), "%s/events.jsonl", tdir);
	lm_it_on_cleanup(cleanup, NULL);
	run(true);
	run(false);
	return lm_it_finish();
}
