// SPDX-License-Identifier: GPL-2.0
/*
 * Integration test: SIGTERM and SIGINT make lifemon exit 0 within 2 s and leave no BPF
 * program or link behind. lifemon's BPF objects are found from /proc/<pid>/fdinfo and from
 * bpftool's "pids" (when bpftool has them); existence is checked with bpftool -j. Every
 * thread runs without capabilities (CapEff, CapBnd, NoNewPrivs). SIGTERM in the middle of a
 * burst delivers every event the kernel had queued: the --output file's seqs run from 1 to
 * at least what /metrics counted just before the signal, in whole lines. Root only.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/it_util.h"

#define IT_PORT_TERM 18083
#define IT_PORT_INT 18086
#define IT_MAX_IDS 256
#define IT_GONE_MS 2000
#define IT_RENAMES 1000000   /* the burst SIGTERM interrupts: several seconds of events */
#define IT_DEEP_RENAMES 1200000 /* > 64 passes x 4096 records on some CPU */
#define IT_DEEP_STOP_MS 120000 /* the whole backlog is serialized on the way out */
#define IT_BURST_MS 300	     /* into the burst when the signal comes */
#define IT_CAP_BPF (1ULL << 39)

struct bpf_ids {
	uint32_t progs[IT_MAX_IDS];
	uint32_t links[IT_MAX_IDS];
	size_t nprog;
	size_t nlink;
};

static void add_id(uint32_t *ids, size_t *n, uint32_t id)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if (ids[i] == id)
			return;
	if (*n < IT_MAX_IDS)
		ids[(*n)++] = id;
}

static json_t *bpftool_show(const char *what)
{
	json_t *arr = NULL;
	int err;

	err = lm_it_bpftool_show(what, &arr);
	LM_IT_ASSERT(!err, "bpftool -j %s show: %s", what, strerror(-err));
	return arr;
}

/* Union of lifemon's fds (fdinfo) and bpftool's pids attribution. */
static void collect_ids(pid_t pid, const json_t *progs, const json_t *links, struct bpf_ids *ids)
{
	size_t i;
	int err;

	err =
	    lm_it_bpf_ids_of_pid(pid, ids->progs, &ids->nprog, ids->links, &ids->nlink, IT_MAX_IDS);
	LM_IT_ASSERT(!err, "reading /proc/%d/fdinfo: %s", pid, strerror(-err));
	for (i = 0; i < json_array_size(progs); i++) {
		const json_t *e = json_array_get(progs, i);

		if (lm_it_bpf_entry_has_pid(e, pid))
			add_id(ids->progs, &ids->nprog, (uint32_t)lm_it_jint(e, "id", 0));
	}
	for (i = 0; i < json_array_size(links); i++) {
		const json_t *e = json_array_get(links, i);

		if (lm_it_bpf_entry_has_pid(e, pid))
			add_id(ids->links, &ids->nlink, (uint32_t)lm_it_jint(e, "id", 0));
	}
}

/* Number of ids still listed by bpftool; names them when `report`. */
static size_t count_present(const struct bpf_ids *ids, bool report)
{
	json_t *progs = bpftool_show("prog"), *links = bpftool_show("link");
	size_t i, left = 0;

	for (i = 0; i < ids->nprog; i++) {
		const json_t *e = lm_it_bpf_find_id(progs, ids->progs[i]);

		if (!e)
			continue;
		left++;
		if (report)
			lm_it_fail(
			    "BPF prog %u (%s) still loaded after lifemon exited: %s", ids->progs[i],
			    lm_it_jstr(e, "name") ? lm_it_jstr(e, "name") : "?", lm_it_jdump(e));
	}
	for (i = 0; i < ids->nlink; i++) {
		const json_t *e = lm_it_bpf_find_id(links, ids->links[i]);

		if (!e)
			continue;
		left++;
		if (report)
			lm_it_fail("BPF link %u still exists after lifemon exited: %s",
				   ids->links[i], lm_it_jdump(e));
	}
	json_decref(progs);
	json_decref(links);
	return left;
}

/* Hex value of `key` ("CapEff:") in a status file's text, or -1 if absent. */
static long long status_field(const char *text, const char *key, int base)
{
	const char *p = strstr(text, key);

	return p ? strtoll(p + strlen(key), NULL, base) : -1;
}

/*
 * After the privilege drop every thread of lifemon has no effective capability (CAP_BPF only
 * on kernels before 6.5, which need it for map lookups), an empty bounding set and
 * no_new_privs.
 */
static void check_caps(pid_t pid, const char *who)
{
	unsigned long long allowed = 0;
	char path[96], *text = NULL;
	struct dirent *de;
	struct utsname u;
	int major = 0, minor = 0, threads = 0;
	DIR *d;

	if (!uname(&u) && sscanf(u.release, "%d.%d", &major, &minor) == 2 &&
	    (major < 6 || (major == 6 && minor < 5)))
		allowed = IT_CAP_BPF;
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	LM_IT_ASSERT(d, "%s: opendir %s: %s", who, path, strerror(errno));
	while ((de = readdir(d))) {
		long long eff, bnd, nnp;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/status", pid, de->d_name);
		if (lm_it_read_file(path, &text, NULL))
			continue; /* the thread ended */
		eff = status_field(text, "\nCapEff:", 16);
		bnd = status_field(text, "\nCapBnd:", 16);
		nnp = status_field(text, "\nNoNewPrivs:", 10);
		LM_IT_EXPECT(eff >= 0 && !((unsigned long long)eff & ~allowed),
			     "%s: thread %s has CapEff %llx, want none%s", who, de->d_name, eff,
			     allowed ? " but cap_bpf" : "");
		LM_IT_EXPECT(bnd >= 0 && !((unsigned long long)bnd & ~allowed),
			     "%s: thread %s has CapBnd %llx, want an empty bounding set", who,
			     de->d_name, bnd);
		LM_IT_EXPECT(nnp == 1, "%s: thread %s has NoNewPrivs %lld, want 1", who, de->d_name,
			     nnp);
		free(text);
		text = NULL;
		threads++;
	}
	closedir(d);
	/* main (the task whose id is the pid), lm-reader, lm-ser, lm-ws */
	LM_IT_EXPECT(threads >= 4, "%s: %d threads in /proc/%d/task, want at least 4", who, threads,
		     pid);
	lm_it_note("%s: %d threads: no capabilities%s, empty bounding set, no_new_privs", who,
		   threads, allowed ? " but cap_bpf" : "");
}

static void run_round(int sig, uint16_t port)
{
	const char *sig_name = sig == SIGTERM ? "SIGTERM" : "SIGINT";
	struct lm_it_proc *lm = NULL;
	struct bpf_ids ids = {0};
	bool has_exec = false, has_exit = false;
	json_t *progs, *links;
	int64_t ms = 0, deadline;
	char buf[64];
	size_t i;
	int err, st = 0;
	pid_t pid;

	err = lm_it_lifemon_start(port, NULL, false, &lm);
	LM_IT_ASSERT(!err, "%s round: lifemon did not become healthy: %s", sig_name,
		     strerror(-err));
	pid = lm_it_proc_pid(lm);
	check_caps(pid, sig_name);

	progs = bpftool_show("prog");
	links = bpftool_show("link");
	collect_ids(pid, progs, links, &ids);
	for (i = 0; i < ids.nprog; i++) {
		const json_t *e = lm_it_bpf_find_id(progs, ids.progs[i]);
		const char *name = e ? lm_it_jstr(e, "name") : NULL;

		LM_IT_EXPECT(e, "%s round: prog id %u held by lifemon is not in bpftool's list",
			     sig_name, ids.progs[i]);
		if (!name)
			continue;
		lm_it_note("%s round: lifemon pid %d holds prog %u %s", sig_name, pid, ids.progs[i],
			   name);
		if (!strcmp(name, "lm_exec"))
			has_exec = true;
		if (!strncmp(name, "lm_exit", 7))
			has_exit = true;
	}
	for (i = 0; i < ids.nlink; i++) {
		const json_t *e = lm_it_bpf_find_id(links, ids.links[i]);

		LM_IT_EXPECT(e, "%s round: link id %u held by lifemon is not in bpftool's list",
			     sig_name, ids.links[i]);
		lm_it_note("%s round: lifemon pid %d holds link %u (prog %lld)", sig_name, pid,
			   ids.links[i], e ? lm_it_jint(e, "prog_id", -1) : -1LL);
	}
	json_decref(progs);
	json_decref(links);
	LM_IT_EXPECT(has_exec, "%s round: no BPF prog named lm_exec held by lifemon pid %d",
		     sig_name, pid);
	LM_IT_EXPECT(has_exit, "%s round: no BPF prog named lm_exit* held by lifemon pid %d",
		     sig_name, pid);
	LM_IT_EXPECT(ids.nlink >= 2, "%s round: lifemon pid %d holds %zu BPF links, want >= 2",
		     sig_name, pid, ids.nlink);

	err = lm_it_proc_stop(lm, sig, LM_IT_STOP_MS, &st, &ms);
	LM_IT_EXPECT(!err, "%s round: lifemon did not exit within %d ms (SIGKILLed)", sig_name,
		     LM_IT_STOP_MS);
	LM_IT_EXPECT(!err && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		     "%s round: lifemon ended with %s, want exit 0", sig_name,
		     lm_it_wstatus_str(st, buf, sizeof(buf)));
	lm_it_note("%s round: %s after %lld ms", sig_name, lm_it_wstatus_str(st, buf, sizeof(buf)),
		   (long long)ms);

	/* The kernel frees a prog or link once its last reference goes; allow for that. */
	deadline = lm_it_now_ms() + IT_GONE_MS;
	while (count_present(&ids, false) && lm_it_now_ms() < deadline)
		usleep(10000);
	count_present(&ids, true);
	if (lm_it_failures())
		lm_it_proc_dump_stderr(lm, sig_name);
	lm_it_proc_free(lm);
}

struct bench_arg {
	int go_rd, go_wr;
	long renames;
};

/* Renames itself a->renames times once it reads a byte: each rename is an event. */
static int bench_child(void *arg)
{
	const struct bench_arg *a = arg;
	long i;
	char c;

	close(a->go_wr);
	if (read(a->go_rd, &c, 1) != 1)
		return 3;
	for (i = 0; i < a->renames; i++)
		if (prctl(PR_SET_NAME, (i & 1) ? "xdrain" : "edrain") < 0)
			return 4;
	return 0;
}

/*
 * Forks a renamer of `renames` renames that waits for a byte on *go_fd; its pid goes into
 * pidstr for --bench-tgid. The caller writes the byte (and closes *go_fd) to start it.
 */
static pid_t renamer_fork(long renames, int *go_fd, char *pidstr, size_t cap)
{
	struct bench_arg ba;
	int fds[2], err;
	pid_t child;

	LM_IT_ASSERT(pipe2(fds, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
	ba.go_rd = fds[0];
	ba.go_wr = fds[1];
	ba.renames = renames;
	err = lm_it_fork_fn(bench_child, &ba, &child);
	LM_IT_ASSERT(!err, "fork: %s", strerror(-err));
	close(fds[0]);
	snprintf(pidstr, cap, "%d", child);
	*go_fd = fds[1];
	return child;
}

/* Sum over types of `name{type="..."}` in a /metrics body. */
static double sum_types(const char *body, const char *name)
{
	static const char *const types[] = {"exec", "exit", "oom_kill"};
	char series[96];
	double v, sum = 0;
	size_t i;

	for (i = 0; i < 3; i++) {
		snprintf(series, sizeof(series), "%s{type=\"%s\"}", name, types[i]);
		LM_IT_ASSERT(lm_it_metric(body, series, &v), "/metrics has no %s", series);
		sum += v;
	}
	return sum;
}

/*
 * SIGTERM in the middle of a burst: the reader's final drain and the serializer's must
 * deliver everything the kernel had queued, so the file holds seq 1..N without a gap with
 * N >= what /metrics counted (read, and kernel-queued = seen - dropped) just before the
 * signal, and every line is a whole JSON object.
 */
static void run_drain(uint16_t port)
{
	char pidstr[16], path[] = "/tmp/it_shutdown.XXXXXX", file[64], buf[64];
	const char *extra[] = {"--bench-tgid", pidstr, "--output", file, NULL};
	double read = 0, queued = 0;
	struct lm_it_proc *lm = NULL;
	long long want = 1, bad = 0;
	size_t len = 0, lines = 0;
	char *body = NULL, *text = NULL, *line, *nl;
	int64_t ms = 0;
	int go_fd, err, st = 0;
	pid_t child;

	LM_IT_ASSERT(mkdtemp(path), "mkdtemp: %s", strerror(errno));
	snprintf(file, sizeof(file), "%s/out.jsonl", path);
	child = renamer_fork(IT_RENAMES, &go_fd, pidstr, sizeof(pidstr));
	err = lm_it_lifemon_start(port, extra, false, &lm);
	LM_IT_ASSERT(!err, "drain round: lifemon did not become healthy: %s", strerror(-err));

	LM_IT_ASSERT(write(go_fd, "g", 1) == 1, "pipe write: %s", strerror(errno));
	close(go_fd);
	usleep(IT_BURST_MS * 1000);
	err = lm_it_metrics_fetch(port, 5000, &body);
	LM_IT_ASSERT(!err, "drain round: GET /metrics: %s", strerror(-err));
	read = sum_types(body, "lifemon_read_total");
	queued = sum_types(body, "lifemon_events_total") -
		 sum_types(body, "lifemon_kernel_dropped_total");
	free(body);
	/*
	 * Under emulation (the kernel matrix sets LM_IT_EMULATED), stop the renamer first: at
	 * detach the kernel live-patches the task_rename tracepoint with int3 (text_poke_bp),
	 * and qemu's TCG oopses or locks up when another vCPU runs that code meanwhile. The
	 * kernel rings still hold the burst, so the drain is tested all the same.
	 */
	if (getenv("LM_IT_EMULATED"))
		kill(child, SIGSTOP);
	/* the burst must still be going when the signal comes (a sanitized lifemon drains
	 * slowly afterwards, while the renames, no longer traced, finish fast) */
	err = lm_it_reap(child, 0, &st);
	LM_IT_EXPECT(err == -ETIMEDOUT, "drain round: the burst ended before the signal; raise "
		     "IT_RENAMES");
	err = lm_it_proc_stop(lm, SIGTERM, LM_IT_STOP_MS, &st, &ms);
	LM_IT_EXPECT(!err && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		     "drain round: lifemon ended with %s %lld ms after SIGTERM, want exit 0 "
		     "within %d ms", lm_it_wstatus_str(st, buf, sizeof(buf)), (long long)ms,
		     LM_IT_STOP_MS);
	if (lm_it_reap(child, 0, &st) == -ETIMEDOUT)
		lm_it_kill_reap(child);

	LM_IT_ASSERT(!lm_it_read_file(file, &text, &len), "drain round: reading %s", file);
	LM_IT_EXPECT(len && text[len - 1] == '\n', "drain round: %s ends inside a line", file);
	for (line = text; *line; line = nl + 1) {
		json_error_t jerr;
		json_t *ev;

		nl = strchr(line, '\n');
		if (!nl)
			break;
		*nl = '\0';
		lines++;
		ev = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
		if (!ev) {
			if (!bad++)
				lm_it_fail("drain round: line %zu is not whole JSON (%s): %.120s",
					   lines, jerr.text, line);
			continue;
		}
		if (lm_it_jstr(ev, "type") && !strcmp(lm_it_jstr(ev, "type"), "LOST") &&
		    lm_it_jint(ev, "before_seq", 0)) {
			json_decref(ev); /* a kernel_ring_full notice: those events had no seq */
			continue;
		}
		if (lm_it_jint(ev, "seq", -1) != want && !bad++)
			lm_it_fail("drain round: line %zu has seq %lld, want %lld: %.120s", lines,
				   lm_it_jint(ev, "seq", -1), want, line);
		want = lm_it_jint(ev, "seq", -1) + 1;
		json_decref(ev);
	}
	lm_it_note("drain round: SIGTERM after %d ms of the burst: /metrics read %.0f, "
		   "kernel-queued %.0f; the file has seq 1..%lld in %zu lines; exit after %lld ms",
		   IT_BURST_MS, read, queued, want - 1, lines, (long long)ms);
	LM_IT_EXPECT(read > 0, "drain round: nothing read before the signal");
	LM_IT_EXPECT(want - 1 >= (long long)read,
		     "drain round: the file ends at seq %lld, but %.0f events were read before "
		     "SIGTERM", want - 1, read);
	LM_IT_EXPECT(want - 1 >= (long long)queued,
		     "drain round: the file ends at seq %lld, but the kernel had queued %.0f "
		     "events before SIGTERM (the final drain lost them)", want - 1, queued);
	free(text);
	if (lm_it_failures())
		lm_it_proc_dump_stderr(lm, "drain round");
	lm_it_proc_free(lm);
	unlink(file);
	rmdir(path);
}

/*
 * A backlog deeper than the reader takes in one wakeup (it stages 4096 records per CPU and
 * pass) when the signal comes: lifemon is stopped while IT_DEEP_RENAMES events queue in
 * 256 MiB rings (room for all of them on one CPU), then gets SIGTERM and SIGCONT. The final
 * drain must take them all: every rename is in the file (or announced as lost in the
 * kernel), seqs without a gap.
 */
static void run_deep_drain(uint16_t port)
{
	char pidstr[16], path[] = "/tmp/it_shutdown.XXXXXX", file[64], buf[64];
	const char *extra[] = {"--bench-tgid", pidstr, "--output", file, "--ring-size", "256M",
			       NULL};
	long long want = 1, klost = 0, events = 0;
	struct lm_it_proc *lm = NULL;
	char *text = NULL, *line, *nl;
	size_t len = 0;
	int go_fd, err, st = 0;
	pid_t child;

	LM_IT_ASSERT(mkdtemp(path), "mkdtemp: %s", strerror(errno));
	snprintf(file, sizeof(file), "%s/out.jsonl", path);
	child = renamer_fork(IT_DEEP_RENAMES, &go_fd, pidstr, sizeof(pidstr));
	err = lm_it_lifemon_start(port, extra, false, &lm);
	LM_IT_ASSERT(!err, "deep drain: lifemon did not become healthy: %s", strerror(-err));
	LM_IT_ASSERT(kill(lm_it_proc_pid(lm), SIGSTOP) == 0, "SIGSTOP: %s", strerror(errno));
	LM_IT_ASSERT(write(go_fd, "g", 1) == 1, "pipe write: %s", strerror(errno));
	close(go_fd);
	err = lm_it_reap(child, 60000, &st);
	LM_IT_EXPECT(!err && WIFEXITED(st) && !WEXITSTATUS(st), "deep drain: renamer: %s, %s",
		     strerror(-err), lm_it_wstatus_str(st, buf, sizeof(buf)));
	if (err)
		lm_it_kill_reap(child);
	/* the signal waits while lifemon is stopped; SIGCONT lets the handler run at once */
	kill(lm_it_proc_pid(lm), SIGTERM);
	kill(lm_it_proc_pid(lm), SIGCONT);
	err = lm_it_proc_wait(lm, IT_DEEP_STOP_MS, &st);
	LM_IT_EXPECT(!err && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		     "deep drain: lifemon: %s, %s", strerror(-err),
		     lm_it_wstatus_str(st, buf, sizeof(buf)));

	LM_IT_ASSERT(!lm_it_read_file(file, &text, &len), "deep drain: reading %s", file);
	for (line = text; line < text + len; line = nl + 1) {
		long long seq = -1, n = 0;

		nl = memchr(line, '\n', (size_t)(text + len - line));
		if (!nl)
			break;
		/* prefixes and strtoll, not sscanf: that measures the whole rest of the text */
		if (!strncmp(line, "{\"type\":\"LOST\",\"count\":", 23)) {
			n = strtoll(line + 23, NULL, 10);
			klost += n; /* kernel_ring_full: these never got a seq */
			continue;
		}
		if (!strncmp(line, "{\"seq\":", 7))
			seq = strtoll(line + 7, NULL, 10);
		if (seq != want) {
			lm_it_fail("deep drain: line has seq %lld, want %lld: %.100s", seq, want,
				   line);
			break;
		}
		want++;
		events++;
	}
	lm_it_note("deep drain: %lld events in the file and %lld lost in the kernel after %d "
		   "renames queued behind a stopped lifemon", events, klost, IT_DEEP_RENAMES);
	LM_IT_EXPECT(events + klost >= IT_DEEP_RENAMES,
		     "deep drain: %lld events and %lld announced lost, but %d renames were queued: "
		     "the final drain stopped early", events, klost, IT_DEEP_RENAMES);
	if (lm_it_failures())
		lm_it_proc_dump_stderr(lm, "deep drain");
	free(text);
	unlink(file);
	rmdir(path);
	lm_it_proc_free(lm);
}

int main(int argc, char **argv)
{
	lm_it_init("it_shutdown", argc, argv, 300);
	lm_it_require_env();
	lm_it_require_bpftool();

	run_round(SIGTERM, IT_PORT_TERM);
	run_round(SIGINT, IT_PORT_INT);
	run_drain(IT_PORT_TERM);
	/* 512 MiB of rings in the kernel matrix's 1 GiB guests, and minutes of TCG: the
	 * drain logic does not depend on the kernel, so the host's run covers it */
	if (getenv("LM_IT_EMULATED"))
		lm_it_note("deep drain round: not run under emulation (LM_IT_EMULATED)");
	else
		run_deep_drain(IT_PORT_INT);
	return lm_it_finish();
}
