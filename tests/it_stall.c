// SPDX-License-Identifier: GPL-2.0
/*
 * Integration test, issue 10's measurement: lifemon with --ring-size 32M and --output is
 * SIGSTOPped for 30 s in a full-rate bounded fork+exec storm, then SIGCONTed. A /ws client that
 * reads at about 3x the storm's event rate (measured first, 3 s of the same storm) and the
 * file must both get every seq (0 lost anywhere: kernel_dropped and sink_dropped 0); a client
 * beside them that never reads is dropped for and counted, and costs them nothing. Prints the
 * catch-up time (SIGCONT until the file holds as many events as the kernel had seen at the
 * resume) and lifemon_kernel_ring_fill_peak_ratio. Bounded: two forkbomb-lite of 8 live
 * children each, 100,000 children each at most, 40 s. Uses 127.0.0.1:18116; starts lifemon
 * and bench/forkbomb-lite (argv[2]) and stops only those, by PID. Root only; the 3x client
 * reads on its own thread.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/it_proto.h"
#include "tests/it_util.h"

#define IT_PORT 18116
#define STALL_S 30
#define MEASURE_S 3
#define PRE_MS 3000	   /* storm before the stop */
#define STORM_S 40	   /* each storm driver's time bound (the stall is inside it) */
#define STORM_LIVE 8	   /* per driver, two drivers */
#define STORM_TOTAL 100000 /* per driver (forkbomb-lite's hard cap) */
#define RATE_FACTOR 3
#define BURST_S 0.05 /* the 3x reader may read this many seconds' worth at once */
#define IDLE_MS 60000
#define NEVER_RCVBUF 4096

static const char *fb;
static char tdir[64], out_path[96];
static struct lm_it_proc *lm;
static bool lm_stopped;
static pid_t storm[2] = { -1, -1 };

/* --- the 3x reader --- */

struct reader {
	struct lm_it_proto *s; /* owned by the thread while it runs */
	pthread_t thr;
	bool running;
	double rate; /* events/s it may read */
	atomic_bool stop;
	atomic_llong last_seq; /* the thread publishes its last seq; main polls it */
	atomic_int dead;
};

static struct reader rd;

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	int64_t last = lm_it_now_ms();
	double tokens = 0, cap = r->rate * BURST_S;
	size_t seen = 0;

	while (!atomic_load(&r->stop)) {
		int64_t now = lm_it_now_ms();
		size_t n;
		int got;

		tokens += r->rate * (double)(now - last) / 1000.0;
		if (tokens > cap)
			tokens = cap;
		last = now;
		if (tokens <= 0) {
			usleep(1000);
			continue;
		}
		got = lm_it_proto_pump(r->s, 50);
		if (got < 0) {
			atomic_store(&r->dead, got);
			break;
		}
		lm_it_proto_recs(r->s, &n);
		tokens -= (double)(n - seen);
		seen = n;
		atomic_store(&r->last_seq, lm_it_proto_last_seq(r->s));
	}
	return NULL;
}

static void reader_join(void)
{
	if (!rd.running)
		return;
	atomic_store(&rd.stop, true);
	pthread_join(rd.thr, NULL);
	rd.running = false;
}

static struct lm_it_proto *never;

static void cleanup(void *arg)
{
	int i;

	(void)arg;
	if (lm && lm_stopped && lm_it_proc_is_running(lm))
		kill(lm_it_proc_pid(lm), SIGCONT);
	lm_stopped = false;
	for (i = 0; i < 2; i++)
		if (storm[i] > 0)
			lm_it_kill_reap(storm[i]);
	storm[0] = storm[1] = -1;
	reader_join();
	lm_it_proto_close(rd.s);
	rd.s = NULL;
	lm_it_proto_drop(never);
	never = NULL;
	if (out_path[0])
		unlink(out_path);
	if (tdir[0])
		rmdir(tdir);
	tdir[0] = '\0';
}

/* --- /metrics --- */

struct books {
	double seen, kdrop, read, ser, file_del, file_drop, ws_pub, ws_del, ws_drop, slow, peak,
		replayed;
};

static bool books_fetch(struct books *b)
{
	static const char *const types[3] = { "exec", "exit", "oom_kill" };
	char series[96], *body = NULL;
	bool ok = true;
	double v;
	int i;

	memset(b, 0, sizeof(*b));
	if (lm_it_metrics_fetch(IT_PORT, 5000, &body))
		return false;
	for (i = 0; i < 3; i++) {
		snprintf(series, sizeof(series), "lifemon_events_total{type=\"%s\"}", types[i]);
		ok &= lm_it_metric(body, series, &v);
		b->seen += v;
		snprintf(series, sizeof(series), "lifemon_kernel_dropped_total{type=\"%s\"}",
			 types[i]);
		ok &= lm_it_metric(body, series, &v);
		b->kdrop += v;
		snprintf(series, sizeof(series), "lifemon_read_total{type=\"%s\"}", types[i]);
		ok &= lm_it_metric(body, series, &v);
		b->read += v;
	}
	ok &= lm_it_metric(body, "lifemon_serialized_total", &b->ser);
	ok &= lm_it_metric(body, "lifemon_sink_delivered_total{sink=\"file\"}", &b->file_del);
	ok &= lm_it_metric(body, "lifemon_sink_dropped_total{sink=\"file\"}", &b->file_drop);
	ok &= lm_it_metric(body, "lifemon_ws_published_total", &b->ws_pub);
	ok &= lm_it_metric(body, "lifemon_ws_delivered_total", &b->ws_del);
	ok &= lm_it_metric(body, "lifemon_ws_dropped_total", &b->ws_drop);
	ok &= lm_it_metric(body, "lifemon_ws_slow_disconnects_total", &b->slow);
	ok &= lm_it_metric(body, "lifemon_kernel_ring_fill_peak_ratio", &b->peak);
	if (!lm_it_metric(body, "lifemon_ws_replayed_total", &b->replayed))
		b->replayed = -1;
	free(body);
	return ok;
}

static void storms_start(int seconds, int total)
{
	int i, err;

	for (i = 0; i < 2; i++) {
		err = lm_it_proto_storm(fb, seconds, STORM_LIVE, total, &storm[i]);
		LM_IT_ASSERT(!err, "forkbomb-lite: %s", strerror(-err));
	}
}

/* True once both drivers ended (each must exit 0). */
static bool storms_done(void)
{
	char buf[64];
	int i, status, err;
	bool done = true;

	for (i = 0; i < 2; i++) {
		if (storm[i] < 0)
			continue;
		err = lm_it_reap(storm[i], 0, &status);
		if (err == -ETIMEDOUT) {
			done = false;
			continue;
		}
		LM_IT_EXPECT(!err && WIFEXITED(status) && !WEXITSTATUS(status),
			     "forkbomb-lite %d ended with %s", storm[i],
			     lm_it_wstatus_str(status, buf, sizeof(buf)));
		storm[i] = -1;
	}
	return done;
}

int main(int argc, char **argv)
{
	const char *extra[] = { "--ring-size",	"32M",	"--output", out_path,
				"--ws-slow-ms", "5000", NULL };
	struct lm_it_proto_opts o = { .port = IT_PORT };
	struct lm_it_proto_rec *frecs = NULL;
	const struct lm_it_proto_rec *recs;
	struct books b0, b1, b = { 0 }, at_cont = { 0 };
	int64_t t, t_cont, t_file = 0, t_client = 0, t_storm_end = 0, t_idle = 0;
	long long flo, fhi, seq, final, want_from;
	double rate;
	bool idle = false, have_cont = false;
	size_t nf, n, k, i;
	long *fidx;
	char buf[64];
	int err, status = 0;
	int64_t ms;

	fb = lm_it_proto_fb(argc, argv);
	lm_it_init("it_stall", argc, argv, 140);
	lm_it_require_env();
	snprintf(tdir, sizeof(tdir), "/tmp/lm-it-stall.XXXXXX");
	LM_IT_ASSERT(mkdtemp(tdir), "mkdtemp: %s", strerror(errno));
	snprintf(out_path, sizeof(out_path), "%s/events.jsonl", tdir);
	lm_it_on_cleanup(cleanup, NULL);

	err = lm_it_lifemon_start(IT_PORT, extra, false, &lm);
	LM_IT_ASSERT(!err, "lifemon did not become healthy: %s", strerror(-err));

	/* the storm's event rate, lifemon running and unstalled */
	LM_IT_ASSERT(books_fetch(&b0), "/metrics: a series is missing");
	t = lm_it_now_ms();
	storms_start(MEASURE_S, STORM_TOTAL);
	while (!storms_done())
		usleep(20000);
	LM_IT_ASSERT(books_fetch(&b1), "/metrics: a series is missing");
	rate = (b1.seen - b0.seen) * 1000.0 / (double)(lm_it_now_ms() - t);
	LM_IT_ASSERT(rate > 100, "the storm made only %.0f events/s", rate);
	lm_it_note("storm rate: %.0f events/s over %lld ms (%.0f events)", rate,
		   (long long)(lm_it_now_ms() - t), b1.seen - b0.seen);

	/* the clients: one reading at 3x that rate, one never reading */
	o.rcvbuf = NEVER_RCVBUF;
	err = lm_it_proto_open(&o, &never, &status);
	LM_IT_ASSERT(!err, "never-reading client: %s (status %d)", strerror(-err), status);
	o.rcvbuf = 0;
	err = lm_it_proto_open(&o, &rd.s, &status);
	LM_IT_ASSERT(!err, "3x client: %s (status %d)", strerror(-err), status);
	rd.rate = rate * RATE_FACTOR;
	err = pthread_create(&rd.thr, NULL, reader_main, &rd);
	LM_IT_ASSERT(!err, "pthread_create: %s", strerror(err));
	rd.running = true;

	/* the storm, the stall inside it */
	storms_start(STORM_S, STORM_TOTAL);
	t = lm_it_now_ms();
	usleep(PRE_MS * 1000);
	LM_IT_ASSERT(kill(lm_it_proc_pid(lm), SIGSTOP) == 0, "SIGSTOP: %s", strerror(errno));
	lm_stopped = true;
	lm_it_note("lifemon stopped at +%lld ms of the storm for %d s",
		   (long long)(lm_it_now_ms() - t), STALL_S);
	usleep(STALL_S * 1000000);
	LM_IT_EXPECT(!storms_done(), "the storm ended during the stall (its bounds are too tight)");
	LM_IT_ASSERT(kill(lm_it_proc_pid(lm), SIGCONT) == 0, "SIGCONT: %s", strerror(errno));
	lm_stopped = false;
	t_cont = lm_it_now_ms();

	/* catch-up: the first /metrics after the resume says what the kernel had seen */
	for (;;) {
		int64_t now = lm_it_now_ms();

		LM_IT_ASSERT(now < t_cont + IDLE_MS,
			     "no idle pipeline %d s after the resume: seen %.0f read %.0f "
			     "serialized %.0f file %.0f+%.0f",
			     IDLE_MS / 1000, b.seen, b.read, b.ser, b.file_del, b.file_drop);
		if (!t_storm_end && storms_done())
			t_storm_end = now;
		if (books_fetch(&b)) {
			if (!have_cont) {
				at_cont = b;
				have_cont = true;
				lm_it_note(
					"first /metrics %lld ms after SIGCONT: %.0f seen, %.0f in "
					"the file: a backlog of %.0f events",
					(long long)(now - t_cont), b.seen, b.file_del,
					b.seen - b.file_del);
			}
			if (!t_file && b.file_del >= at_cont.seen - at_cont.kdrop)
				t_file = now;
			if (!t_client && atomic_load(&rd.last_seq) >= at_cont.seen - at_cont.kdrop)
				t_client = now;
			if (t_storm_end && b.seen == b.kdrop + b.read && b.ser == b.read &&
			    b.file_del + b.file_drop == b.ser &&
			    atomic_load(&rd.last_seq) >= (long long)b.ser) {
				idle = true;
				t_idle = now;
				break;
			}
		}
		if (atomic_load(&rd.dead))
			break;
		usleep(100000);
	}
	final = (long long)b.ser;
	reader_join();
	LM_IT_EXPECT(idle, "the 3x client's stream ended (%s) at seq %lld of %lld",
		     strerror(-atomic_load(&rd.dead)), (long long)atomic_load(&rd.last_seq), final);

	lm_it_note("catch-up: the file had the %.0f events seen at the resume %lld ms after "
		   "SIGCONT, the 3x client %lld ms after; storm over at +%lld ms, all idle at "
		   "+%lld ms",
		   at_cont.seen - at_cont.kdrop, (long long)(t_file ? t_file - t_cont : -1),
		   (long long)(t_client ? t_client - t_cont : -1),
		   (long long)(t_storm_end - t_cont), (long long)(t_idle - t_cont));
	lm_it_note("lifemon_kernel_ring_fill_peak_ratio %.3f; events %.0f, kernel dropped %.0f, "
		   "file delivered %.0f dropped %.0f; ws published %.0f delivered %.0f dropped "
		   "%.0f, slow disconnects %.0f",
		   b.peak, b.seen, b.kdrop, b.file_del, b.file_drop, b.ws_pub, b.ws_del, b.ws_drop,
		   b.slow);
	LM_IT_EXPECT(t_file, "the file never caught up with the %.0f events seen at the resume",
		     at_cont.seen);
	LM_IT_EXPECT(b.kdrop == 0, "the kernel dropped %.0f events (32M rings, %d s stall)",
		     b.kdrop, STALL_S);
	LM_IT_EXPECT(b.file_drop == 0, "the file sink dropped %.0f events", b.file_drop);
	LM_IT_EXPECT(b.ws_drop > 0, "lifemon_ws_dropped_total 0: nothing was dropped for the "
				    "client that never reads");
	LM_IT_EXPECT(b.peak > 0 && b.peak < 0.75,
		     "lifemon_kernel_ring_fill_peak_ratio %.3f: want above 0 and below the 0.75 "
		     "high-water mark (no event was to be dropped)",
		     b.peak);
	/* the never-reading client is dropped (closed) after --ws-slow-ms, the others go on */
	{
		int64_t deadline = lm_it_now_ms() + 10000;

		while (b.slow < 1 && lm_it_now_ms() < deadline) {
			usleep(200000);
			books_fetch(&b);
		}
		LM_IT_EXPECT(b.slow >= 1,
			     "the never-reading client was not disconnected "
			     "(lifemon_ws_slow_disconnects_total %.0f)",
			     b.slow);
	}

	/* the 3x client: every seq from its HELLO on, no notice */
	{
		const struct lm_it_proto_hello *h = lm_it_proto_hello(rd.s);
		long long nx = h->next_seq;
		unsigned int bad = 0;

		lm_it_proto_report(rd.s, "3x client");
		LM_IT_EXPECT(h->seen, "3x client: no HELLO");
		recs = lm_it_proto_recs(rd.s, &n);
		want_from = h->next_seq;
		for (k = 0; k < n; k++) {
			if (recs[k].kind != 'E') {
				if (bad++ < 5)
					lm_it_fail("3x client: LOST notice (reason %c, %lld..%lld, "
						   "count %lld) where seq %lld was due",
						   recs[k].reason, recs[k].first_seq,
						   recs[k].last_seq, recs[k].count, nx);
				continue;
			}
			if (recs[k].seq != nx && bad++ < 5)
				lm_it_fail("3x client: seq %lld where %lld was due", recs[k].seq,
					   nx);
			nx = recs[k].seq + 1;
		}
		LM_IT_EXPECT(nx > final, "3x client: up to seq %lld, want %lld", nx - 1, final);
		lm_it_note("3x client (%.0f events/s): seqs %lld..%lld, %zu events, no gap",
			   rd.rate, want_from, nx - 1, lm_it_proto_events(rd.s));
	}

	/* the file: seqs 1..final, nothing lost */
	err = lm_it_proto_load_file(out_path, false, &frecs, &nf);
	LM_IT_ASSERT(!err, "%s: %s", out_path, strerror(-err));
	fidx = lm_it_proto_seq_index(frecs, nf, &flo, &fhi);
	LM_IT_ASSERT(fidx, "out of memory");
	LM_IT_EXPECT(flo == 1 && fhi >= final, "the file holds seqs %lld..%lld, want 1..%lld", flo,
		     fhi, final);
	for (seq = flo; seq <= fhi; seq++)
		if (fidx[seq - flo] < 0) {
			lm_it_fail("the file lacks seq %lld", seq);
			break;
		}
	for (i = 0; i < nf; i++)
		if (frecs[i].kind == 'L') {
			lm_it_fail("the file has a LOST notice (reason %c)", frecs[i].reason);
			break;
		}
	lm_it_note("file: %zu lines, seqs %lld..%lld", nf, flo, fhi);
	free(fidx);
	lm_it_proto_recs_free(frecs, nf);

	err = lm_it_proc_stop(lm, SIGTERM, LM_IT_STOP_MS, &status, &ms);
	LM_IT_EXPECT(!err && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		     "lifemon did not exit 0 within %d ms of SIGTERM: %s", LM_IT_STOP_MS,
		     lm_it_wstatus_str(status, buf, sizeof(buf)));
	if (lm_it_failures())
		lm_it_proc_dump_stderr(lm, "it_stall");
	lm_it_proc_free(lm);
	lm = NULL;
	return lm_it_finish();
}
