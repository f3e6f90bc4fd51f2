// SPDX-License-Identifier: GPL-2.0
/*
 * Integration test: real EXEC and EXIT events end to end (kernel -> /ws and --stdout).
 * Runs workloads with known pids, exit codes, signals and odd comm bytes, then checks the
 * event fields, seq continuity, strict JSON, the Origin policy and /metrics. Root only.
 */
#include <errno.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/it_util.h"
#include "tests/ws_client.h"

#define IT_PORT 18081
#define IT_TS_SLACK_NS (10LL * 1000000000LL)

static struct lm_it_coll *coll;

static void coll_cleanup(void *arg)
{
	(void)arg;
	lm_it_coll_close(coll);
	coll = NULL;
}

static void hex_of(const char *b, size_t len, char *out)
{
	size_t i;

	for (i = 0; i < len; i++)
		sprintf(out + 2 * i, "%02x", (unsigned char)b[i]);
	out[2 * len] = '\0';
}

/* Fields every event of a process we started must carry. */
static void check_common(const json_t *ev, pid_t pid, const char *what)
{
	long long ts = lm_it_jint(ev, "timestamp", 0), now = lm_it_realtime_ns();

	LM_IT_EXPECT(lm_it_jint(ev, "pid", -1) == pid, "%s: pid: %s", what, lm_it_jdump(ev));
	LM_IT_EXPECT(lm_it_jint(ev, "tid", -1) == pid, "%s: tid should equal pid: %s", what,
		     lm_it_jdump(ev));
	LM_IT_EXPECT(lm_it_jint(ev, "ppid", -1) == getpid(),
		     "%s: ppid should be the test's pid %d: %s", what, getpid(), lm_it_jdump(ev));
	LM_IT_EXPECT(lm_it_jint(ev, "uid", -1) == 0, "%s: uid should be 0: %s", what,
		     lm_it_jdump(ev));
	LM_IT_EXPECT(ts > now - IT_TS_SLACK_NS && ts < now + IT_TS_SLACK_NS,
		     "%s: timestamp %lld ns is not within 10 s of now (%lld ns): %s", what, ts, now,
		     lm_it_jdump(ev));
	LM_IT_EXPECT(lm_it_jint(ev, "target_pid", -1) == 0, "%s: target_pid should be 0: %s", what,
		     lm_it_jdump(ev));
}

static void check_exit_fields(const json_t *ev, int code, int sig, const char *what)
{
	LM_IT_EXPECT(lm_it_jint(ev, "exit_code", -1) == code, "%s: exit_code should be %d: %s",
		     what, code, lm_it_jdump(ev));
	LM_IT_EXPECT(lm_it_jint(ev, "signal", -1) == sig, "%s: signal should be %d: %s", what, sig,
		     lm_it_jdump(ev));
	LM_IT_EXPECT(json_is_false(json_object_get(ev, "core_dumped")),
		     "%s: core_dumped should be false: %s", what, lm_it_jdump(ev));
}

/* Runs sh -c `script`, checks the wait status, returns the pid. */
static pid_t run_sh(const char *script, int want_exit, int want_sig)
{
	char *argv[] = {"/bin/sh", "-c", (char *)script, NULL};
	char buf[64];
	int status, err;
	pid_t pid;

	err = lm_it_spawn(argv, -1, -1, &pid);
	LM_IT_ASSERT(!err, "spawn /bin/sh: %s", strerror(-err));
	err = lm_it_reap(pid, 10000, &status);
	LM_IT_ASSERT(!err, "sh -c '%s' (pid %d) did not finish: %s", script, pid, strerror(-err));
	if (want_sig)
		LM_IT_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == want_sig,
			     "test setup: sh -c '%s' ended with %s", script,
			     lm_it_wstatus_str(status, buf, sizeof(buf)));
	else
		LM_IT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == want_exit,
			     "test setup: sh -c '%s' ended with %s", script,
			     lm_it_wstatus_str(status, buf, sizeof(buf)));
	return pid;
}

/* sh -c 'exit 7': EXEC then EXIT with the right fields. Returns a copy of the EXIT. */
static json_t *check_exit_code(pid_t *pid_out)
{
	const json_t *exec, *ex;
	size_t ei = 0, xi = 0;
	pid_t pid;

	pid = run_sh("exit 7", 7, 0);
	*pid_out = pid;
	exec = lm_it_coll_wait_event(coll, "EXEC", pid, LM_IT_EVENT_MS, &ei);
	ex = lm_it_coll_wait_event(coll, "EXIT", pid, LM_IT_EVENT_MS, &xi);
	LM_IT_EXPECT(exec, "no EXEC event for sh -c 'exit 7' (pid %d) within %d ms", pid,
		     LM_IT_EVENT_MS);
	LM_IT_EXPECT(ex, "no EXIT event for sh -c 'exit 7' (pid %d) within %d ms", pid,
		     LM_IT_EVENT_MS);
	if (exec) {
		check_common(exec, pid, "EXEC of sh -c 'exit 7'");
		LM_IT_EXPECT(lm_it_jstr(exec, "comm") && !strcmp(lm_it_jstr(exec, "comm"), "sh"),
			     "EXEC comm should be \"sh\": %s", lm_it_jdump(exec));
	}
	if (ex) {
		check_common(ex, pid, "EXIT of sh -c 'exit 7'");
		check_exit_fields(ex, 7, 0, "EXIT of sh -c 'exit 7'");
		LM_IT_EXPECT(lm_it_jstr(ex, "comm") && !strcmp(lm_it_jstr(ex, "comm"), "sh"),
			     "EXIT comm should be \"sh\": %s", lm_it_jdump(ex));
	}
	if (exec && ex) {
		LM_IT_EXPECT(ei < xi, "EXIT (index %zu) arrived before EXEC (index %zu) of pid %d",
			     xi, ei, pid);
		LM_IT_EXPECT(lm_it_jint(exec, "timestamp", 0) <= lm_it_jint(ex, "timestamp", 0),
			     "EXEC timestamp after EXIT timestamp: %s", lm_it_jdump(ex));
	}
	lm_it_note("exit 7: pid %d EXEC %s, EXIT %s", pid, exec ? "ok" : "missing",
		   ex ? "ok" : "missing");
	return ex ? json_deep_copy(ex) : NULL;
}

static pthread_t mt_leader;

/*
 * Outlives the leader, so it is the process's last thread. The join returns once the
 * leader's tid is cleared, before the leader's own exit tracepoint: wait a moment, or both
 * threads may see the group dead and either one may report the exit.
 */
static void *mt_last_thread(void *arg)
{
	(void)arg;
	pthread_join(mt_leader, NULL);
	usleep(100 * 1000);
	_exit(5);
}

static int mt_child_fn(void *arg)
{
	pthread_t t;

	(void)arg;
	mt_leader = pthread_self();
	if (pthread_create(&t, NULL, mt_last_thread, NULL))
		return 92;
	pthread_exit(NULL);
}

/* EXIT comes once per process, when its last thread (here not the leader) exits. */
static void check_threaded_exit(void)
{
	const json_t *ex;
	size_t i, n = 0;
	char buf[64];
	int status, err;
	pid_t pid;

	err = lm_it_fork_fn(mt_child_fn, NULL, &pid);
	LM_IT_ASSERT(!err, "fork: %s", strerror(-err));
	err = lm_it_reap(pid, 10000, &status);
	LM_IT_ASSERT(!err && WIFEXITED(status) && WEXITSTATUS(status) == 5,
		     "test setup: threaded child %d ended with %s", pid,
		     err ? strerror(-err) : lm_it_wstatus_str(status, buf, sizeof(buf)));
	ex = lm_it_coll_wait_event(coll, "EXIT", pid, LM_IT_EVENT_MS, NULL);
	LM_IT_EXPECT(ex, "no EXIT for the threaded child %d", pid);
	if (!ex)
		return;
	check_exit_fields(ex, 5, 0, "EXIT of a threaded child");
	LM_IT_EXPECT(
	    lm_it_jint(ex, "tid", -1) > 0 && lm_it_jint(ex, "tid", -1) != pid,
	    "EXIT of a threaded child: tid should be the last thread, not the leader %d: %s", pid,
	    lm_it_jdump(ex));
	/* A duplicate (say from the leader's exit) would come before a later marker's EXIT. */
	LM_IT_ASSERT(!lm_it_coll_sync(coll, LM_IT_EVENT_MS), "marker EXIT did not arrive");
	for (i = 0; i < lm_it_coll_count(coll); i++) {
		const json_t *ev = lm_it_coll_get(coll, i);

		if (!strcmp(lm_it_jstr(ev, "type"), "EXIT") && lm_it_jint(ev, "pid", -1) == pid)
			n++;
	}
	LM_IT_EXPECT(n == 1, "threaded child %d got %zu EXIT events, want exactly 1", pid, n);
}

/* The exec'ing thread (not the leader) writes its tid to the pipe, then execs /bin/true. */
static int exec_thread_fd = -1;

static void *exec_thread(void *arg)
{
	pid_t tid = gettid();

	(void)arg;
	if (write(exec_thread_fd, &tid, sizeof(tid)) != sizeof(tid))
		_exit(93);
	execl("/bin/true", "true", (char *)NULL);
	_exit(94);
}

static int exec_thread_child_fn(void *arg)
{
	pthread_t t;

	exec_thread_fd = *(int *)arg;
	if (pthread_create(&t, NULL, exec_thread, NULL))
		return 92;
	for (;;)
		pause(); /* the exec replaces the whole process */
}

/* EXEC from a non-leader thread: tid is the exec'ing thread, pid the process. */
static void check_exec_tid(void)
{
	const json_t *ev = NULL;
	pid_t pid, tid = 0;
	int fds[2], status, err;
	size_t idx = 0;

	LM_IT_ASSERT(pipe(fds) == 0, "pipe: %s", strerror(errno));
	err = lm_it_fork_fn(exec_thread_child_fn, &fds[1], &pid);
	LM_IT_ASSERT(!err, "fork: %s", strerror(-err));
	close(fds[1]);
	LM_IT_ASSERT(read(fds[0], &tid, sizeof(tid)) == sizeof(tid), "test setup: no tid");
	close(fds[0]);
	err = lm_it_reap(pid, 10000, &status);
	LM_IT_ASSERT(!err && WIFEXITED(status) && !WEXITSTATUS(status),
		     "test setup: exec-from-thread child %d: %s, status %#x", pid, strerror(-err),
		     status);
	LM_IT_ASSERT(tid != pid, "test setup: the thread has the leader's id");
	while ((ev = lm_it_coll_wait_event(coll, "EXEC", pid, LM_IT_EVENT_MS, &idx))) {
		if (lm_it_jstr(ev, "comm") && !strcmp(lm_it_jstr(ev, "comm"), "true"))
			break;
		idx++;
	}
	LM_IT_EXPECT(ev, "no EXEC of /bin/true for pid %d", pid);
	if (!ev)
		return;
	LM_IT_EXPECT(lm_it_jint(ev, "tid", -1) == tid,
		     "EXEC from thread %d of process %d: want tid %d: %s", tid, pid, tid,
		     lm_it_jdump(ev));
}

/* The exec'd child of check_cross_cpu_order: moves to CPU 0, execs /bin/true there. */
#define IT_CROSS_CPU_ARG "--cross-cpu-child"

static int cross_cpu_child(void)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(0, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		return 97;
	execl("/bin/true", "true", (char *)NULL);
	return 98;
}

/*
 * An EXEC on CPU 1 and the same process's EXIT on CPU 0 a moment later, read in one pass of
 * the reader, which visits CPU 0's ring first: without the merge, the EXIT would overtake
 * the EXEC (the collector checks that timestamps never go back). 20 rounds.
 */
static void check_cross_cpu_order(void)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int round, status, err;

	if (ncpu < 2) {
		lm_it_note("cross-CPU order: one CPU online, nothing to merge");
		return;
	}
	for (round = 0; round < 20; round++) {
		const json_t *exec_ev, *exit_ev;
		size_t i_exec = 0, i_exit = 0;
		cpu_set_t set;
		pid_t pid;

		pid = fork();
		LM_IT_ASSERT(pid >= 0, "fork: %s", strerror(errno));
		if (pid == 0) {
			CPU_ZERO(&set);
			CPU_SET(1, &set);
			if (sched_setaffinity(0, sizeof(set), &set))
				_exit(95);
			/* EXEC of this binary on CPU 1; it moves itself to CPU 0 (cross_cpu_child) */
			execl("/proc/self/exe", "it_events", IT_CROSS_CPU_ARG, (char *)NULL);
			_exit(96);
		}
		err = lm_it_reap(pid, 10000, &status);
		LM_IT_ASSERT(!err && WIFEXITED(status) && !WEXITSTATUS(status),
			     "test setup: cross-CPU child %d: %s, status %#x", pid, strerror(-err),
			     status);
		exec_ev = lm_it_coll_wait_event(coll, "EXEC", pid, LM_IT_EVENT_MS, &i_exec);
		exit_ev = lm_it_coll_wait_event(coll, "EXIT", pid, LM_IT_EVENT_MS, &i_exit);
		LM_IT_EXPECT(exec_ev && exit_ev && i_exec < i_exit,
			     "cross-CPU round %d: EXEC (#%zu) must come before EXIT (#%zu) of %d",
			     round, i_exec, i_exit, pid);
	}
}

static void check_kill9(void)
{
	const json_t *ex;
	pid_t pid;

	pid = run_sh("kill -9 $$", 0, SIGKILL);
	ex = lm_it_coll_wait_event(coll, "EXIT", pid, LM_IT_EVENT_MS, NULL);
	LM_IT_EXPECT(ex, "no EXIT event for sh -c 'kill -9 $$' (pid %d)", pid);
	if (!ex)
		return;
	check_common(ex, pid, "EXIT of sh -c 'kill -9 $$'");
	check_exit_fields(ex, 137, 9, "EXIT of sh -c 'kill -9 $$'");
}

struct comm_child {
	char name[16];
	int code;
};

static int comm_child_fn(void *arg)
{
	const struct comm_child *cc = arg;

	if (prctl(PR_SET_NAME, cc->name) < 0)
		return 90;
	return cc->code;
}

/*
 * The comm lm_json_str (core/json.h) must produce: valid UTF-8 kept byte for byte, every byte
 * of an invalid sequence as U+FFFD. Only for inputs where each byte >= 0x80 is invalid on its
 * own (true for the names used here: no byte >= 0x80 is followed by a continuation byte
 * that would complete it).
 */
static size_t expected_comm(const char *b, size_t len, char *out)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		if ((unsigned char)b[i] < 0x80) {
			out[o++] = b[i];
		} else {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
		}
	}
	return o;
}

/* Forks a child with comm `name` (len bytes) that exits with `code`; checks its EXIT. */
static void check_comm_bytes(const char *name, size_t len, int code, bool need_exact)
{
	struct comm_child cc = {.code = code};
	char hex[40], want[64], buf[64], what[96];
	const char *got_hex;
	const json_t *ex, *comm;
	json_t *probe;
	size_t want_len;
	bool valid_utf8;
	int status, err;
	pid_t pid;

	memcpy(cc.name, name, len);
	hex_of(name, len, hex);
	snprintf(what, sizeof(what), "EXIT of child with comm bytes %s", hex);
	err = lm_it_fork_fn(comm_child_fn, &cc, &pid);
	LM_IT_ASSERT(!err, "fork: %s", strerror(-err));
	err = lm_it_reap(pid, 10000, &status);
	LM_IT_ASSERT(!err && WIFEXITED(status) && WEXITSTATUS(status) == code,
		     "test setup: comm child %d ended with %s", pid,
		     err ? strerror(-err) : lm_it_wstatus_str(status, buf, sizeof(buf)));
	ex = lm_it_coll_wait_event(coll, "EXIT", pid, LM_IT_EVENT_MS, NULL);
	LM_IT_EXPECT(ex, "no EXIT (or no strictly valid one) for pid %d with comm bytes %s", pid,
		     hex);
	if (!ex)
		return;
	check_common(ex, pid, what);
	check_exit_fields(ex, code, 0, what);

	probe = json_stringn(name, len);
	valid_utf8 = probe != NULL;
	json_decref(probe);
	got_hex = lm_it_jstr(ex, "comm_hex");
	if (!valid_utf8)
		LM_IT_EXPECT(got_hex, "%s: comm is not UTF-8 but \"comm_hex\" is missing: %s", what,
			     lm_it_jdump(ex));
	if (got_hex)
		LM_IT_EXPECT(!strcasecmp(got_hex, hex), "%s: comm_hex should be \"%s\": %s", what,
			     hex, lm_it_jdump(ex));
	comm = json_object_get(ex, "comm");
	if (valid_utf8 || need_exact) {
		want_len = expected_comm(name, len, want);
		LM_IT_EXPECT(json_string_length(comm) == want_len &&
				 !memcmp(json_string_value(comm), want, want_len),
			     "%s: decoded comm differs from the bytes (invalid ones as U+FFFD): %s",
			     what, lm_it_jdump(ex));
	}
}

static void check_odd_comms(void)
{
	static const char odd[] = "\xff\xfe\"\\\n";
	char name[16];
	int k, b, n;

	/* The brief's case: invalid UTF-8, a quote, a backslash and a newline. */
	check_comm_bytes(odd, sizeof(odd) - 1, 3, true);

	/* Every byte value 0x01-0xff, 15 per comm (0x00 cannot be in a comm). */
	for (k = 0; k < 17; k++) {
		n = 0;
		for (b = 1 + 15 * k; b <= 15 * (k + 1) && b <= 255; b++)
			name[n++] = (char)b;
		check_comm_bytes(name, (size_t)n, 10 + k, true);
	}
	lm_it_note("odd comm bytes checked (0x01-0xff in 17 processes)");
}

/* docs/ARCHITECTURE.md (section 6): cross-origin upgrades are refused; the same origin works. */
static void check_origin(void)
{
	struct lm_wsc_opts o = {.port = IT_PORT, .path = "/ws", .timeout_ms = 5000};
	struct lm_wsc *c = NULL;
	char same[64];
	int err, st = 0;

	o.origin = "http://evil.example";
	err = lm_wsc_connect(&o, &c, &st);
	LM_IT_EXPECT(err == -EACCES || err == -ECONNRESET,
		     "upgrade with Origin %s: expected refusal, got %s (http status %d)", o.origin,
		     err ? strerror(-err) : "101 accepted", st);
	lm_wsc_close(c);
	c = NULL;

	snprintf(same, sizeof(same), "http://127.0.0.1:%u", IT_PORT);
	o.origin = same;
	err = lm_wsc_connect(&o, &c, &st);
	LM_IT_EXPECT(!err, "upgrade with same Origin %s refused: %s (http status %d)", same,
		     strerror(-err), st);
	if (!err)
		lm_wsc_send_close(c, 1000);
	lm_wsc_close(c);
}

static void check_metrics(void)
{
	char *body = NULL;
	int err, st = 0;

	err = lm_wsc_http_get(IT_PORT, "/metrics", 5000, &st, &body, NULL);
	LM_IT_EXPECT(!err && st == 200, "GET /metrics: %s, status %d", err ? strerror(-err) : "ok",
		     st);
	if (!err)
		LM_IT_EXPECT(strstr(body, "lifemon_"), "/metrics has no lifemon_* metric: %.200s",
			     body);
	free(body);
}

/* Every stdout line is a strict JSON event, seq runs 1, 2, 3..., and the known EXIT is there. */
static void check_stdout(struct lm_it_proc *lm, const json_t *want, pid_t pid)
{
	char *text = NULL, *p, *nl, why[160];
	long long prev = 0;
	bool found = false;
	size_t len, lines = 0;
	json_error_t jerr;
	int err;

	err = lm_it_proc_stdout(lm, &text, &len);
	LM_IT_ASSERT(!err, "reading lifemon's stdout capture: %s", strerror(-err));
	LM_IT_EXPECT(len > 0 && text[len - 1] == '\n',
		     "--stdout output is empty or does not end with a newline (%zu bytes)", len);
	for (p = text; p < text + len; p = nl + 1) {
		json_t *ev;

		nl = memchr(p, '\n', (size_t)(text + len - p));
		if (!nl)
			nl = text + len;
		lines++;
		ev = json_loadb(p, (size_t)(nl - p), JSON_REJECT_DUPLICATES, &jerr);
		if (!ev) {
			lm_it_fail("--stdout line %zu is not strict JSON: %s: %.*s", lines,
				   jerr.text, (int)(nl - p > 200 ? 200 : nl - p), p);
			continue;
		}
		if (!lm_it_event_is_valid(ev, why, sizeof(why))) {
			lm_it_fail("--stdout line %zu: %s: %s", lines, why, lm_it_jdump(ev));
		} else {
			long long seq = lm_it_jint(ev, "seq", 0);

			LM_IT_EXPECT(seq == prev + 1, "--stdout line %zu: seq %lld after %lld",
				     lines, seq, prev);
			prev = seq;
		}
		if (want && json_equal(ev, (json_t *)want))
			found = true;
		else if (!strcmp(lm_it_jstr(ev, "type") ? lm_it_jstr(ev, "type") : "", "EXIT") &&
			 lm_it_jint(ev, "pid", -1) == pid && want)
			lm_it_fail("--stdout EXIT for pid %d differs from /ws: %s", pid,
				   lm_it_jdump(ev));
		json_decref(ev);
	}
	LM_IT_EXPECT(!want || found,
		     "--stdout has no EXIT equal to the /ws one for pid %d (%zu lines)", pid,
		     lines);
	lm_it_note("--stdout: %zu lines, last seq %lld", lines, prev);
	free(text);
}

int main(int argc, char **argv)
{
	static const char *const extra[] = {"--stdout", NULL};
	struct lm_it_proc *lm = NULL;
	json_t *exit7 = NULL;
	int64_t ms = 0;
	pid_t pid7 = 0;
	char buf[64];
	int err, st = 0;

	if (argc == 2 && !strcmp(argv[1], IT_CROSS_CPU_ARG))
		return cross_cpu_child();
	lm_it_init("it_events", argc, argv, 100);
	lm_it_require_env();

	err = lm_it_lifemon_start(IT_PORT, extra, true, &lm);
	LM_IT_ASSERT(!err, "lifemon did not become healthy: %s", strerror(-err));
	check_origin();
	err = lm_it_coll_open(IT_PORT, &coll);
	LM_IT_ASSERT(!err, "ws connect: %s", strerror(-err));
	lm_it_on_cleanup(coll_cleanup, NULL);
	err = lm_it_coll_sync(coll, LM_IT_EVENT_MS);
	LM_IT_ASSERT(!err, "no EXIT of a /bin/true marker reached /ws within %d ms",
		     LM_IT_EVENT_MS);

	exit7 = check_exit_code(&pid7);
	check_kill9();
	check_threaded_exit();
	check_exec_tid();
	check_cross_cpu_order();
	check_odd_comms();
	check_metrics();

	lm_it_note("%zu events received on /ws", lm_it_coll_count(coll));
	lm_it_coll_check(coll);

	err = lm_it_proc_stop(lm, SIGTERM, LM_IT_STOP_MS, &st, &ms);
	LM_IT_EXPECT(!err, "lifemon did not exit within %d ms of SIGTERM (killed)", LM_IT_STOP_MS);
	LM_IT_EXPECT(!err && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		     "lifemon ended with %s after SIGTERM, want exit 0",
		     lm_it_wstatus_str(st, buf, sizeof(buf)));
	lm_it_note("SIGTERM -> %s in %lld ms", lm_it_wstatus_str(st, buf, sizeof(buf)),
		   (long long)ms);
	check_stdout(lm, exit7, pid7);
	if (lm_it_failures())
		lm_it_proc_dump_stderr(lm, "it_events");
	json_decref(exit7);
	lm_it_proc_free(lm);
	return lm_it_finish();
}
