// SPDX-License-Identifier: GPL-2.0
/*
 * Integration-test harness (see it_util.h): runs on the test's main thread and owns the
 * children it forks (tracked by PID for cleanup and the SIGALRM watchdog), their capture
 * files, and the collector's parsed events.
 */
#include "tests/it_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/ws_client.h"

#define IT_MAX_TRACKED 64
#define IT_MAX_CLEANUPS 16
#define IT_MAX_PROCS 16
#define IT_MAX_NOTES 12
#define IT_FILE_MAX ((size_t)1 << 30) /* a deep drain writes ~400 MiB of rich events */
#define IT_POLL_STEP_MS 2

struct lm_it_proc {
	pid_t pid;
	bool reaped;
	int status; /* wait status, valid once reaped */
	bool has_out;
	char err_path[64]; /* stderr capture file, removed by lm_it_proc_free */
	char out_path[64]; /* stdout capture file when has_out */
};

struct lm_it_coll {
	struct lm_wsc *ws;
	json_t *events; /* every valid event object, in arrival order */
	bool have_seq;
	long long last_seq;
	long long last_ts; /* timestamp of the previous event: the stream is in kernel-time order */
	int dead; /* 0 while the stream works, else the error that ended it */
	unsigned int problems;
	unsigned int nnotes;
	char notes[IT_MAX_NOTES][384]; /* the first problems, reported by lm_it_coll_check */
};

static const char *it_test = "it";
static const char *it_binary;
static unsigned int it_fail_cnt;

static struct {
	lm_it_cleanup_fn fn;
	void *arg;
} it_cleanups[IT_MAX_CLEANUPS];
static int it_ncleanups;

/* Children we started and have not reaped; read by the watchdog handler. */
static volatile pid_t it_tracked[IT_MAX_TRACKED];
static struct lm_it_proc *it_procs[IT_MAX_PROCS];

static void it_track(pid_t pid)
{
	int i;

	for (i = 0; i < IT_MAX_TRACKED; i++) {
		if (!it_tracked[i]) {
			it_tracked[i] = pid;
			return;
		}
	}
	lm_it_note("more than %d live children; pid %d not tracked", IT_MAX_TRACKED, pid);
}

static void it_untrack(pid_t pid)
{
	int i;

	for (i = 0; i < IT_MAX_TRACKED; i++)
		if (it_tracked[i] == pid)
			it_tracked[i] = 0;
}

static void it_watchdog(int sig)
{
	static const char msg[] = "FAIL: watchdog expired, killing children\n";
	int i;

	(void)sig;
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(1);
	for (i = 0; i < IT_MAX_TRACKED; i++)
		if (it_tracked[i] > 0)
			kill(it_tracked[i], SIGKILL);
	_exit(1);
}

int64_t lm_it_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t lm_it_realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void it_sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void it_vprint(const char *tag, const char *fmt, va_list ap)
{
	char line[2048];
	int n;

	n = snprintf(line, sizeof(line), "%s: %s: ", tag, it_test);
	if (n < 0)
		return;
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	fprintf(stderr, "%s\n", line);
	fflush(stderr);
}

void lm_it_note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	it_vprint("INFO", fmt, ap);
	va_end(ap);
}

void lm_it_fail(const char *fmt, ...)
{
	va_list ap;

	it_fail_cnt++;
	va_start(ap, fmt);
	it_vprint("FAIL", fmt, ap);
	va_end(ap);
}

unsigned int lm_it_failures(void)
{
	return it_fail_cnt;
}

void lm_it_on_cleanup(lm_it_cleanup_fn fn, void *arg)
{
	if (it_ncleanups == IT_MAX_CLEANUPS) {
		lm_it_fatal("more than %d cleanups registered", IT_MAX_CLEANUPS);
	}
	it_cleanups[it_ncleanups].fn = fn;
	it_cleanups[it_ncleanups].arg = arg;
	it_ncleanups++;
}

/* Cleanups first (they may reap their own children), then any child still tracked. */
static void it_cleanup_all(bool dump)
{
	int i;

	while (it_ncleanups > 0) {
		it_ncleanups--;
		it_cleanups[it_ncleanups].fn(it_cleanups[it_ncleanups].arg);
	}
	for (i = 0; i < IT_MAX_PROCS; i++) {
		struct lm_it_proc *p = it_procs[i];

		if (!p)
			continue;
		if (!p->reaped) {
			lm_it_kill_reap(p->pid);
			p->reaped = true;
		}
		if (dump)
			lm_it_proc_dump_stderr(p, "at failure");
		lm_it_proc_free(p);
	}
	for (i = 0; i < IT_MAX_TRACKED; i++)
		if (it_tracked[i] > 0)
			lm_it_kill_reap(it_tracked[i]);
}

void lm_it_fatal(const char *fmt, ...)
{
	va_list ap;

	it_fail_cnt++;
	va_start(ap, fmt);
	it_vprint("FAIL", fmt, ap);
	va_end(ap);
	it_cleanup_all(true);
	fprintf(stderr, "FAIL: %s: aborted after %u failure(s)\n", it_test, it_fail_cnt);
	exit(1);
}

void lm_it_skip(const char *fmt, ...)
{
	const char *ci = getenv("CI");
	bool strict = ci && strcmp(ci, "true") == 0;
	va_list ap;

	va_start(ap, fmt);
	it_vprint(strict ? "FAIL" : "SKIP", fmt, ap);
	va_end(ap);
	it_cleanup_all(false);
	exit(strict ? 1 : LM_IT_EXIT_SKIP);
}

int lm_it_finish(void)
{
	it_cleanup_all(it_fail_cnt > 0);
	if (it_fail_cnt) {
		fprintf(stderr, "FAIL: %s: %u failure(s)\n", it_test, it_fail_cnt);
		return 1;
	}
	fprintf(stderr, "PASS: %s\n", it_test);
	return 0;
}

void lm_it_init(const char *test, int argc, char **argv, unsigned int watchdog_s)
{
	struct sigaction sa = {.sa_handler = it_watchdog};

	it_test = test;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2 || !argv[1][0]) {
		fprintf(stderr, "FAIL: %s: usage: %s /path/to/lifemon\n", test, argv[0]);
		exit(1);
	}
	it_binary = argv[1];
	if (access(it_binary, X_OK) < 0) {
		fprintf(stderr, "FAIL: %s: lifemon binary %s: %s\n", test, it_binary,
			strerror(errno));
		exit(1);
	}
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	alarm(watchdog_s);
}

const char *lm_it_bin(void)
{
	return it_binary;
}

/* Loads "r0 = 0; exit" as a socket filter: proves the kernel lets us load BPF at all. */
static int it_bpf_probe(void)
{
	struct bpf_insn insns[2] = {
	    {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0},
	    {.code = BPF_JMP | BPF_EXIT},
	};
	static const char license[] = "GPL";
	union bpf_attr attr;
	long fd;

	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
	attr.insns = (__u64)(unsigned long)insns;
	attr.insn_cnt = 2;
	attr.license = (__u64)(unsigned long)license;
	fd = syscall(__NR_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
	if (fd < 0)
		return -errno;
	close((int)fd);
	return 0;
}

void lm_it_require_env(void)
{
	char b;
	int fd, err;

	if (geteuid() != 0)
		lm_it_skip("needs root (euid is %u)", (unsigned int)geteuid());
	fd = open("/sys/kernel/btf/vmlinux", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		lm_it_skip("/sys/kernel/btf/vmlinux: %s (kernel without BTF)", strerror(errno));
	if (read(fd, &b, 1) != 1) {
		close(fd);
		lm_it_skip("/sys/kernel/btf/vmlinux is not readable");
	}
	close(fd);
	err = it_bpf_probe();
	if (err)
		lm_it_skip("kernel refuses BPF_PROG_LOAD: %s", strerror(-err));
}

const char *lm_it_require_bpftool(void)
{
	static const char *const paths[] = {"/usr/sbin/bpftool", "/usr/local/sbin/bpftool",
					    "/usr/bin/bpftool", "/usr/local/bin/bpftool"};
	size_t i;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (access(paths[i], X_OK) == 0)
			return paths[i];
	lm_it_skip("bpftool not found (looked in /usr/sbin and friends)");
}

const char *lm_it_wstatus_str(int status, char *buf, size_t cap)
{
	if (WIFEXITED(status))
		snprintf(buf, cap, "exit %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, cap, "signal %d%s", WTERMSIG(status),
			 WCOREDUMP(status) ? " (core dumped)" : "");
	else
		snprintf(buf, cap, "wait status 0x%x", status);
	return buf;
}

/* Child side of every fork: die with the test, so nothing we start outlives it. */
static void it_child_setup(pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGALRM, SIG_DFL);
}

int lm_it_spawn(char *const argv[], int out_fd, int err_fd, pid_t *pid)
{
	pid_t parent = getpid(), child;
	int null_fd;

	fflush(stdout);
	fflush(stderr);
	child = fork();
	if (child < 0)
		return -errno;
	if (child == 0) {
		it_child_setup(parent);
		null_fd = open("/dev/null", O_RDWR);
		if (null_fd < 0)
			_exit(127);
		dup2(null_fd, STDIN_FILENO);
		dup2(out_fd >= 0 ? out_fd : null_fd, STDOUT_FILENO);
		dup2(err_fd >= 0 ? err_fd : null_fd, STDERR_FILENO);
		close_range(3, ~0U, 0);
		execv(argv[0], argv);
		dprintf(STDERR_FILENO, "it: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	it_track(child);
	*pid = child;
	return 0;
}

int lm_it_fork_fn(lm_it_child_fn fn, void *arg, pid_t *pid)
{
	pid_t parent = getpid(), child;

	fflush(stdout);
	fflush(stderr);
	child = fork();
	if (child < 0)
		return -errno;
	if (child == 0) {
		it_child_setup(parent);
		_exit(fn(arg));
	}
	it_track(child);
	*pid = child;
	return 0;
}

int lm_it_reap(pid_t pid, int timeout_ms, int *status)
{
	int64_t deadline = lm_it_now_ms() + timeout_ms;
	pid_t r;

	for (;;) {
		r = waitpid(pid, status, WNOHANG);
		if (r == pid) {
			it_untrack(pid);
			return 0;
		}
		if (r < 0 && errno != EINTR) {
			int err = -errno;

			it_untrack(pid);
			return err;
		}
		if (lm_it_now_ms() >= deadline)
			return -ETIMEDOUT;
		it_sleep_ms(IT_POLL_STEP_MS);
	}
}

void lm_it_kill_reap(pid_t pid)
{
	int status;

	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	if (lm_it_reap(pid, 10000, &status))
		lm_it_note("pid %d did not die within 10 s of SIGKILL", pid);
}

static void it_proc_register(struct lm_it_proc *p)
{
	int i;

	for (i = 0; i < IT_MAX_PROCS; i++) {
		if (!it_procs[i]) {
			it_procs[i] = p;
			return;
		}
	}
}

static void it_proc_unregister(struct lm_it_proc *p)
{
	int i;

	for (i = 0; i < IT_MAX_PROCS; i++)
		if (it_procs[i] == p)
			it_procs[i] = NULL;
}

int lm_it_proc_spawn(char *const argv[], bool capture_stdout, struct lm_it_proc **out)
{
	struct lm_it_proc *p = NULL;
	int err_fd = -1, out_fd = -1, err = 0;

	p = calloc(1, sizeof(*p));
	if (!p) {
		err = -ENOMEM;
		goto out;
	}
	p->pid = -1;
	snprintf(p->err_path, sizeof(p->err_path), "/tmp/lifemon-it-err-XXXXXX");
	err_fd = mkostemp(p->err_path, O_CLOEXEC);
	if (err_fd < 0) {
		err = -errno;
		p->err_path[0] = '\0';
		goto out;
	}
	if (capture_stdout) {
		snprintf(p->out_path, sizeof(p->out_path), "/tmp/lifemon-it-out-XXXXXX");
		out_fd = mkostemp(p->out_path, O_CLOEXEC);
		if (out_fd < 0) {
			err = -errno;
			p->out_path[0] = '\0';
			goto out;
		}
		p->has_out = true;
	}
	err = lm_it_spawn(argv, out_fd, err_fd, &p->pid);
	if (err)
		goto out;
	it_proc_register(p);
	*out = p;
	p = NULL;
out:
	if (err_fd >= 0)
		close(err_fd);
	if (out_fd >= 0)
		close(out_fd);
	lm_it_proc_free(p);
	return err;
}

/* Records the exit if the process has ended. Returns true if it has been reaped. */
static bool it_proc_poll(struct lm_it_proc *p)
{
	if (!p->reaped && lm_it_reap(p->pid, 0, &p->status) == 0)
		p->reaped = true;
	return p->reaped;
}

int lm_it_wait_healthy(struct lm_it_proc *p, uint16_t port, int timeout_ms)
{
	return lm_it_wait_healthy_path(p, port, "/healthz", timeout_ms);
}

int lm_it_wait_healthy_path(struct lm_it_proc *p, uint16_t port, const char *path, int timeout_ms)
{
	int64_t deadline = lm_it_now_ms() + timeout_ms;
	int status = 0, err = 0;
	char *body = NULL;
	char ws[32];

	for (;;) {
		if (it_proc_poll(p)) {
			lm_it_note("lifemon pid %d exited before /healthz was 200 (%s)", p->pid,
				   lm_it_wstatus_str(p->status, ws, sizeof(ws)));
			return -ECHILD;
		}
		status = 0;
		err = lm_wsc_http_get(port, path, 1000, &status, &body, NULL);
		free(body);
		body = NULL;
		if (!err && status == 200)
			return 0;
		if (lm_it_now_ms() >= deadline) {
			lm_it_note("/healthz on port %u not 200 within %d ms (last: %s, status %d)",
				   port, timeout_ms, err ? strerror(-err) : "ok", status);
			return -ETIMEDOUT;
		}
		it_sleep_ms(10);
	}
}

int lm_it_lifemon_start(uint16_t port, const char *const extra[], bool capture_stdout,
			struct lm_it_proc **out)
{
	return lm_it_lifemon_start_path(port, extra, capture_stdout, "/healthz", out);
}

int lm_it_lifemon_start_path(uint16_t port, const char *const extra[], bool capture_stdout,
			     const char *health_path, struct lm_it_proc **out)
{
	const char *argv[32];
	char listen[32];
	struct lm_it_proc *p = NULL;
	size_t n = 0, i;
	int err;

	snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
	argv[n++] = lm_it_bin();
	argv[n++] = "--listen";
	argv[n++] = listen;
	for (i = 0; extra && extra[i] && n < 31; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	err = lm_it_proc_spawn((char *const *)argv, capture_stdout, &p);
	if (err)
		return err;
	err = lm_it_wait_healthy_path(p, port, health_path, LM_IT_HEALTHY_MS);
	if (err) {
		if (!p->reaped) {
			lm_it_kill_reap(p->pid);
			p->reaped = true;
		}
		lm_it_proc_dump_stderr(p, "failed start");
		lm_it_proc_free(p);
		return err;
	}
	lm_it_note("lifemon pid %d healthy on 127.0.0.1:%u", p->pid, port);
	*out = p;
	return 0;
}

int lm_it_proc_wait(struct lm_it_proc *p, int timeout_ms, int *status)
{
	int err;

	if (!p->reaped) {
		err = lm_it_reap(p->pid, timeout_ms, &p->status);
		if (err)
			return err;
		p->reaped = true;
	}
	*status = p->status;
	return 0;
}

int lm_it_proc_stop(struct lm_it_proc *p, int sig, int timeout_ms, int *status, int64_t *elapsed_ms)
{
	int64_t t0 = lm_it_now_ms();
	int err;

	if (p->reaped) {
		*status = p->status;
		*elapsed_ms = 0;
		return 0;
	}
	if (kill(p->pid, sig) < 0)
		return -errno;
	err = lm_it_reap(p->pid, timeout_ms, &p->status);
	*elapsed_ms = lm_it_now_ms() - t0;
	if (err == -ETIMEDOUT) {
		kill(p->pid, SIGKILL);
		if (lm_it_reap(p->pid, 10000, &p->status) == 0)
			p->reaped = true;
		*status = p->status;
		return -ETIMEDOUT;
	}
	if (err)
		return err;
	p->reaped = true;
	*status = p->status;
	return 0;
}

pid_t lm_it_proc_pid(const struct lm_it_proc *p)
{
	return p->pid;
}

bool lm_it_proc_is_running(const struct lm_it_proc *p)
{
	return !p->reaped;
}

static int it_read_file(const char *path, char **text, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = NULL, *nb;
	int fd, err = 0;
	ssize_t r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf = malloc(cap + 1);
	if (!buf) {
		err = -ENOMEM;
		goto out;
	}
	for (;;) {
		if (n == cap) {
			if (cap >= IT_FILE_MAX) {
				err = -EFBIG;
				goto out;
			}
			cap *= 2;
			nb = realloc(buf, cap + 1);
			if (!nb) {
				err = -ENOMEM;
				goto out;
			}
			buf = nb;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = -errno;
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	*text = buf;
	if (len)
		*len = n;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return err;
}

int lm_it_proc_stderr(const struct lm_it_proc *p, char **text, size_t *len)
{
	return it_read_file(p->err_path, text, len);
}

int lm_it_proc_stdout(const struct lm_it_proc *p, char **text, size_t *len)
{
	if (!p->has_out)
		return -ENOENT;
	return it_read_file(p->out_path, text, len);
}

void lm_it_proc_dump_stderr(const struct lm_it_proc *p, const char *why)
{
	char *text = NULL, *line, *save = NULL;

	if (lm_it_proc_stderr(p, &text, NULL))
		return;
	fprintf(stderr, "---- stderr of pid %d (%s) ----\n", p->pid, why);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		fprintf(stderr, "  | %s\n", line);
	fprintf(stderr, "---- end of stderr of pid %d ----\n", p->pid);
	free(text);
}

void lm_it_proc_free(struct lm_it_proc *p)
{
	if (!p)
		return;
	if (p->pid > 0 && !p->reaped) {
		lm_it_kill_reap(p->pid);
		p->reaped = true;
	}
	if (p->err_path[0])
		unlink(p->err_path);
	if (p->out_path[0])
		unlink(p->out_path);
	it_proc_unregister(p);
	free(p);
}

/* --- JSON helpers --- */

long long lm_it_jint(const json_t *ev, const char *key, long long dflt)
{
	json_t *v = json_object_get(ev, key);

	return json_is_integer(v) ? json_integer_value(v) : dflt;
}

const char *lm_it_jstr(const json_t *ev, const char *key)
{
	return json_string_value(json_object_get(ev, key));
}

const char *lm_it_jdump(const json_t *ev)
{
	static char buf[1024];
	char *s = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS);

	snprintf(buf, sizeof(buf), "%s", s ? s : "(unprintable)");
	free(s);
	return buf;
}

static bool it_need_int(const json_t *ev, const char *key, long long min, char *why, size_t cap)
{
	json_t *v = json_object_get(ev, key);

	if (!json_is_integer(v)) {
		snprintf(why, cap, "\"%s\" missing or not an integer", key);
		return false;
	}
	if (json_integer_value(v) < min) {
		snprintf(why, cap, "\"%s\" is %lld, below %lld", key, json_integer_value(v), min);
		return false;
	}
	return true;
}

bool lm_it_event_is_valid(const json_t *ev, char *why, size_t cap)
{
	static const char *const ints[] = {"pid",	"tid",	  "ppid",      "uid",
					   "exit_code", "signal", "target_pid"};
	static const char *const oom_ints[] = {"total_vm_kb", "anon_rss_kb", "file_rss_kb",
					       "shmem_rss_kb", "pgtables_kb"};
	const char *type = lm_it_jstr(ev, "type"), *hex;
	size_t i;

	if (!json_is_object(ev)) {
		snprintf(why, cap, "not a JSON object");
		return false;
	}
	if (!type || (strcmp(type, "EXEC") && strcmp(type, "EXIT") && strcmp(type, "OOM_KILL"))) {
		snprintf(why, cap, "\"type\" missing or not EXEC/EXIT/OOM_KILL");
		return false;
	}
	if (!it_need_int(ev, "seq", 1, why, cap) || !it_need_int(ev, "timestamp", 1, why, cap))
		return false;
	for (i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
		if (!it_need_int(ev, ints[i], 0, why, cap))
			return false;
	if (!json_is_string(json_object_get(ev, "comm"))) {
		snprintf(why, cap, "\"comm\" missing or not a string");
		return false;
	}
	if (!json_is_boolean(json_object_get(ev, "core_dumped"))) {
		snprintf(why, cap, "\"core_dumped\" missing or not a boolean");
		return false;
	}
	if (!strcmp(type, "OOM_KILL")) {
		for (i = 0; i < sizeof(oom_ints) / sizeof(oom_ints[0]); i++)
			if (!it_need_int(ev, oom_ints[i], 0, why, cap))
				return false;
	}
	if (json_object_get(ev, "comm_hex")) {
		hex = lm_it_jstr(ev, "comm_hex");
		if (!hex || strlen(hex) % 2 || strlen(hex) > 32 ||
		    strspn(hex, "0123456789abcdefABCDEF") != strlen(hex)) {
			snprintf(why, cap, "\"comm_hex\" is not a hex string of at most 16 bytes");
			return false;
		}
	}
	return true;
}

/* --- collector --- */

static void it_coll_problem(struct lm_it_coll *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void it_coll_problem(struct lm_it_coll *c, const char *fmt, ...)
{
	va_list ap;

	c->problems++;
	if (c->nnotes == IT_MAX_NOTES)
		return;
	va_start(ap, fmt);
	vsnprintf(c->notes[c->nnotes], sizeof(c->notes[0]), fmt, ap);
	va_end(ap);
	c->nnotes++;
}

/* Escapes a raw line for a message: printable ASCII kept, the rest as \xNN, at most 160. */
static const char *it_escape(const char *s, size_t len)
{
	static char buf[700];
	size_t i, o = 0;

	for (i = 0; i < len && i < 160 && o + 5 < sizeof(buf); i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch >= 0x20 && ch < 0x7f && ch != '\\')
			buf[o++] = (char)ch;
		else
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\\x%02x", ch);
	}
	if (i < len && o + 4 < sizeof(buf))
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "...");
	buf[o] = '\0';
	return buf;
}

static void it_coll_line(struct lm_it_coll *c, const char *s, size_t len, int *added)
{
	json_error_t jerr;
	const char *type;
	json_t *ev;
	char why[160];
	long long seq;

	ev = json_loadb(s, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!ev) {
		it_coll_problem(c, "line is not strict JSON (%s at column %d): %s", jerr.text,
				jerr.column, it_escape(s, len));
		return;
	}
	if (!json_is_object(ev)) {
		it_coll_problem(c, "line is JSON but not an object: %s", it_escape(s, len));
		json_decref(ev);
		return;
	}
	type = lm_it_jstr(ev, "type");
	if (type && !strcmp(type, "LOST")) {
		it_coll_problem(c, "LOST notice although no loss is expected: %s", lm_it_jdump(ev));
		if (json_is_integer(json_object_get(ev, "last_seq"))) {
			c->last_seq = lm_it_jint(ev, "last_seq", 0);
			c->have_seq = true;
		}
		json_decref(ev);
		return;
	}
	if (!lm_it_event_is_valid(ev, why, sizeof(why))) {
		it_coll_problem(c, "schema: %s: %s", why, lm_it_jdump(ev));
		json_decref(ev);
		return;
	}
	seq = lm_it_jint(ev, "seq", 0);
	if (c->have_seq && seq != c->last_seq + 1)
		it_coll_problem(c, "seq went from %lld to %lld (expected +1): %s", c->last_seq, seq,
				lm_it_jdump(ev));
	c->last_seq = seq;
	c->have_seq = true;
	if (lm_it_jint(ev, "timestamp", 0) < c->last_ts)
		it_coll_problem(c, "timestamp went back by %lld ns: %s",
				c->last_ts - lm_it_jint(ev, "timestamp", 0), lm_it_jdump(ev));
	else
		c->last_ts = lm_it_jint(ev, "timestamp", 0);
	json_array_append_new(c->events, ev);
	(*added)++;
}

static int it_coll_message(struct lm_it_coll *c, const char *msg, size_t len)
{
	const char *p = msg, *end = msg + len, *nl;
	int added = 0;

	if (len == 0) {
		it_coll_problem(c, "empty text message");
		return 0;
	}
	if (msg[len - 1] != '\n')
		it_coll_problem(c, "text message does not end with \\n: %s",
				it_escape(msg, len > 160 ? 160 : len));
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		if (nl == p)
			it_coll_problem(c, "empty line inside a message");
		else
			it_coll_line(c, p, (size_t)(nl - p), &added);
		p = nl + 1;
	}
	return added;
}

int lm_it_coll_open(uint16_t port, struct lm_it_coll **out)
{
	struct lm_wsc_opts o = {.port = port, .path = "/ws", .timeout_ms = 5000};

	return lm_it_coll_open_opts(&o, out);
}

int lm_it_coll_open_opts(const struct lm_wsc_opts *o, struct lm_it_coll **out)
{
	struct lm_it_coll *c = NULL;
	int err, st = 0;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->events = json_array();
	if (!c->events) {
		free(c);
		return -ENOMEM;
	}
	err = lm_wsc_connect(o, &c->ws, &st);
	if (err) {
		lm_it_note("ws connect to port %u: %s (http status %d)", o->port, strerror(-err),
			   st);
		json_decref(c->events);
		free(c);
		return err;
	}
	*out = c;
	return 0;
}

int lm_it_coll_pump(struct lm_it_coll *c, int timeout_ms)
{
	int64_t deadline = lm_it_now_ms() + timeout_ms;
	const char *msg;
	size_t len;
	int r, added;

	if (c->dead)
		return c->dead;
	for (;;) {
		int left = (int)(deadline - lm_it_now_ms());

		if (left < 0)
			left = 0;
		r = lm_wsc_recv(c->ws, left, &msg, &len);
		if (r == -ETIMEDOUT)
			return 0;
		if (r == LM_WSC_OP_TEXT) {
			added = it_coll_message(c, msg, len);
			if (added)
				return added;
			continue;
		}
		if (r == LM_WSC_OP_BINARY) {
			it_coll_problem(c, "binary message of %zu bytes (events are text)", len);
			continue;
		}
		if (r == LM_WSC_OP_CLOSE) {
			it_coll_problem(c, "server closed the ws stream (code %u)",
					lm_wsc_close_code(c->ws));
			c->dead = -ECONNRESET;
			return c->dead;
		}
		it_coll_problem(c, "ws receive failed: %s (%s)", strerror(-r),
				lm_wsc_errmsg(c->ws));
		c->dead = r;
		return r;
	}
}

const json_t *lm_it_coll_wait(struct lm_it_coll *c, lm_it_pred_fn pred, const void *arg,
			      int timeout_ms, size_t *idx)
{
	int64_t deadline = lm_it_now_ms() + timeout_ms;
	size_t i = idx ? *idx : 0;

	for (;;) {
		for (; i < json_array_size(c->events); i++) {
			const json_t *ev = json_array_get(c->events, i);

			if (pred(ev, arg)) {
				if (idx)
					*idx = i;
				return ev;
			}
		}
		if (c->dead || lm_it_now_ms() >= deadline)
			return NULL;
		lm_it_coll_pump(c, (int)(deadline - lm_it_now_ms()));
	}
}

struct it_match {
	const char *type;
	pid_t pid;
};

static bool it_match_type_pid(const json_t *ev, const void *arg)
{
	const struct it_match *m = arg;
	const char *type = lm_it_jstr(ev, "type");

	return type && !strcmp(type, m->type) && lm_it_jint(ev, "pid", -1) == m->pid;
}

const json_t *lm_it_coll_wait_event(struct lm_it_coll *c, const char *type, pid_t pid,
				    int timeout_ms, size_t *idx)
{
	struct it_match m = {.type = type, .pid = pid};

	return lm_it_coll_wait(c, it_match_type_pid, &m, timeout_ms, idx);
}

int lm_it_coll_sync(struct lm_it_coll *c, int timeout_ms)
{
	int64_t deadline = lm_it_now_ms() + timeout_ms;
	char *argv[] = {"/bin/true", NULL};
	int status, err;
	pid_t pid;

	while (lm_it_now_ms() < deadline && !c->dead) {
		const json_t *ev;

		err = lm_it_spawn(argv, -1, -1, &pid);
		if (err)
			return err;
		ev = lm_it_coll_wait_event(c, "EXIT", pid, 2000, NULL);
		lm_it_reap(pid, 5000, &status);
		if (ev)
			return 0;
	}
	return -ETIMEDOUT;
}

size_t lm_it_coll_count(const struct lm_it_coll *c)
{
	return json_array_size(c->events);
}

const json_t *lm_it_coll_get(const struct lm_it_coll *c, size_t i)
{
	return json_array_get(c->events, i);
}

unsigned int lm_it_coll_check(struct lm_it_coll *c)
{
	unsigned int i;

	for (i = 0; i < c->nnotes; i++)
		lm_it_fail("stream: %s", c->notes[i]);
	if (c->problems > c->nnotes)
		lm_it_fail("stream: %u more problem(s) not shown", c->problems - c->nnotes);
	c->nnotes = 0;
	i = c->problems;
	c->problems = 0;
	return i;
}

void lm_it_coll_close(struct lm_it_coll *c)
{
	if (!c)
		return;
	if (!c->dead)
		lm_wsc_send_close(c->ws, 1000);
	lm_wsc_close(c->ws);
	json_decref(c->events);
	free(c);
}

/* --- BPF objects --- */

static void it_add_id(uint32_t *ids, size_t *n, size_t cap, uint32_t id)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if (ids[i] == id)
			return;
	if (*n < cap)
		ids[(*n)++] = id;
}

int lm_it_bpf_ids_of_pid(pid_t pid, uint32_t *progs, size_t *nprog, uint32_t *links, size_t *nlink,
			 size_t cap)
{
	char dir[64], path[320];
	struct dirent *de;
	DIR *d;

	*nprog = 0;
	*nlink = 0;
	snprintf(dir, sizeof(dir), "/proc/%d/fdinfo", pid);
	d = opendir(dir);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char *text = NULL, *line, *save = NULL;
		unsigned int id;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (it_read_file(path, &text, NULL))
			continue;
		for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			if (sscanf(line, "prog_id: %u", &id) == 1)
				it_add_id(progs, nprog, cap, id);
			else if (sscanf(line, "link_id: %u", &id) == 1)
				it_add_id(links, nlink, cap, id);
		}
		free(text);
	}
	closedir(d);
	return 0;
}

bool lm_it_bpf_prog_is_held(uint32_t id, pid_t except)
{
	uint32_t progs[256], links[256];
	size_t np, nl, i;
	struct dirent *de;
	bool held = false;
	DIR *d;

	d = opendir("/proc");
	if (!d)
		return false;
	while (!held && (de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0 || pid == except)
			continue;
		if (lm_it_bpf_ids_of_pid((pid_t)pid, progs, &np, links, &nl, 256))
			continue;
		for (i = 0; i < np; i++)
			if (progs[i] == id)
				held = true;
	}
	closedir(d);
	return held;
}

int lm_it_bpftool_show(const char *what, json_t **arr)
{
	char *argv[] = {(char *)lm_it_require_bpftool(), "-j", (char *)what, "show", NULL};
	int64_t deadline = lm_it_now_ms() + 10000;
	size_t cap = 1 << 16, len = 0;
	char *buf = NULL, *nb;
	json_error_t jerr;
	int pfd[2] = {-1, -1}, err = 0, status = 0;
	pid_t pid = -1;
	json_t *j;

	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		err = -errno;
		goto out;
	}
	err = lm_it_spawn(argv, pfd[1], -1, &pid);
	close(pfd[1]);
	pfd[1] = -1;
	if (err)
		goto out;
	for (;;) {
		struct pollfd p = {.fd = pfd[0], .events = POLLIN};
		int left = (int)(deadline - lm_it_now_ms());
		ssize_t r;

		if (left <= 0) {
			err = -ETIMEDOUT;
			goto out;
		}
		if (poll(&p, 1, left) < 0 && errno != EINTR) {
			err = -errno;
			goto out;
		}
		if (len == cap) {
			if (cap >= IT_FILE_MAX) {
				err = -EFBIG;
				goto out;
			}
			cap *= 2;
			nb = realloc(buf, cap);
			if (!nb) {
				err = -ENOMEM;
				goto out;
			}
			buf = nb;
		}
		r = read(pfd[0], buf + len, cap - len);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r < 0) {
			err = -errno;
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	err = lm_it_reap(pid, 10000, &status);
	pid = -1;
	if (err)
		goto out;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		err = -EPROTO;
		goto out;
	}
	j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j || !json_is_array(j)) {
		json_decref(j);
		err = -EPROTO;
		goto out;
	}
	*arr = j;
out:
	if (pid > 0)
		lm_it_kill_reap(pid);
	if (pfd[0] >= 0)
		close(pfd[0]);
	free(buf);
	return err;
}

const json_t *lm_it_bpf_find_id(const json_t *arr, uint32_t id)
{
	size_t i;

	for (i = 0; i < json_array_size(arr); i++) {
		const json_t *e = json_array_get(arr, i);

		if (lm_it_jint(e, "id", -1) == (long long)id)
			return e;
	}
	return NULL;
}

bool lm_it_bpf_entry_has_pid(const json_t *entry, pid_t pid)
{
	const json_t *pids = json_object_get(entry, "pids");
	size_t i;

	for (i = 0; i < json_array_size(pids); i++)
		if (lm_it_jint(json_array_get(pids, i), "pid", -1) == pid)
			return true;
	return false;
}

/* --- /metrics samples --- */

int lm_it_metrics_fetch(uint16_t port, int timeout_ms, char **body)
{
	return lm_it_metrics_fetch_path(port, "/metrics", timeout_ms, body);
}

int lm_it_metrics_fetch_path(uint16_t port, const char *path, int timeout_ms, char **body)
{
	char *b = NULL;
	int err, st = 0;

	err = lm_wsc_http_get(port, path, timeout_ms, &st, &b, NULL);
	if (err)
		return err;
	if (st != 200) {
		free(b);
		return -EPROTO;
	}
	*body = b;
	return 0;
}

bool lm_it_metric(const char *body, const char *series, double *v)
{
	size_t n = strlen(series);
	const char *p = body;

	while (p && *p) {
		if (!strncmp(p, series, n) && p[n] == ' ') {
			char *end;
			double d;

			errno = 0;
			d = strtod(p + n + 1, &end);
			if (end == p + n + 1 || errno || (*end != '\n' && *end != ' ' && *end))
				return false;
			*v = d;
			return true;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return false;
}

/* --- accounting /ws reader --- */

struct lm_it_acct {
	struct lm_wsc *ws;
	bool allow_lost;
	bool have_seq;
	long long last_ts; /* timestamp of the previous event: the stream is in kernel-time order */
	struct lm_it_acct_stats st;
	struct lm_it_acct_rec *recs; /* every valid event, in arrival order */
	size_t nrecs, caprecs;
	unsigned int nnotes;
	char notes[IT_MAX_NOTES][384]; /* the first problems, reported by lm_it_acct_report */
};

static void it_acct_problem(struct lm_it_acct *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void it_acct_problem(struct lm_it_acct *a, const char *fmt, ...)
{
	va_list ap;

	a->st.problems++;
	if (a->nnotes == IT_MAX_NOTES)
		return;
	va_start(ap, fmt);
	vsnprintf(a->notes[a->nnotes], sizeof(a->notes[0]), fmt, ap);
	va_end(ap);
	a->nnotes++;
}

const char *lm_it_escape_buf(const char *s, size_t len, char *buf, size_t cap)
{
	size_t i, o = 0;

	for (i = 0; i < len && i < 240 && o + 5 < cap; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch >= 0x20 && ch < 0x7f && ch != '\\')
			buf[o++] = (char)ch;
		else
			o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", ch);
	}
	buf[o] = '\0';
	return buf;
}

static void it_acct_lost(struct lm_it_acct *a, const json_t *ev, const char *line, size_t len)
{
	json_t *jf = json_object_get(ev, "first_seq"), *jl = json_object_get(ev, "last_seq");
	json_t *jc = json_object_get(ev, "count");
	const char *reason = lm_it_jstr(ev, "reason");
	long long f, l, c;
	char esc[1024];

	lm_it_escape_buf(line, len, esc, sizeof(esc));
	if (!a->allow_lost)
		it_acct_problem(a, "LOST notice although no loss is expected: %s", esc);
	if (reason && !strcmp(reason, "kernel_ring_full")) {
		json_t *jcpu = json_object_get(ev, "cpu"), *jb = json_object_get(ev, "before_seq");

		if (!json_is_integer(jc) || json_integer_value(jc) < 1 || !json_is_integer(jcpu) ||
		    !json_is_integer(jb) || json_object_size(ev) != 5) {
			it_acct_problem(a, "kernel LOST notice: want type, count >= 1, reason, cpu, "
					   "before_seq: %s", esc);
			return;
		}
		if (a->have_seq && json_integer_value(jb) != a->st.last_seq + 1)
			it_acct_problem(a, "kernel LOST notice before seq %lld, but the next seq is "
					   "%lld: %s", (long long)json_integer_value(jb),
					a->st.last_seq + 1, esc);
		a->st.kernel_notices++;
		a->st.kernel_lost[json_integer_value(jcpu) == 0 ? 0 : 1] +=
			(uint64_t)json_integer_value(jc);
		return;
	}
	if (!json_is_integer(jf) || !json_is_integer(jl) || !json_is_integer(jc)) {
		it_acct_problem(a, "LOST notice without integer first_seq/last_seq/count: %s", esc);
		return;
	}
	f = json_integer_value(jf);
	l = json_integer_value(jl);
	c = json_integer_value(jc);
	if (f < 1 || l < f || c != l - f + 1)
		it_acct_problem(a, "LOST notice: count must be last_seq - first_seq + 1 >= 1: %s",
				esc);
	if (!reason || (strcmp(reason, "slow_client") && strcmp(reason, "sink_full")))
		it_acct_problem(a, "LOST notice: reason must be slow_client or sink_full: %s", esc);
	/*
	 * a client's loss also says how many of the lost events its filter wanted: all of
	 * them for the unfiltered streams these readers take
	 */
	if (reason && !strcmp(reason, "slow_client")) {
		json_t *jm = json_object_get(ev, "matched");

		if (json_object_size(ev) != 6 || !json_is_integer(jm) ||
		    json_integer_value(jm) != c)
			it_acct_problem(a,
					"LOST notice: want exactly type, first_seq, last_seq, count, "
					"matched (= count), reason: %s",
					esc);
	} else if (json_object_size(ev) != 5) {
		it_acct_problem(a,
				"LOST notice: want exactly type, first_seq, last_seq, count, "
				"reason: %s",
				esc);
	}
	if (a->have_seq && f != a->st.last_seq + 1)
		it_acct_problem(a,
				"LOST notice starts at %lld, but the last seq accounted for is "
				"%lld: %s",
				f, a->st.last_seq, esc);
	if (!a->have_seq)
		a->st.first_seq = f;
	a->have_seq = true;
	if (l > a->st.last_seq)
		a->st.last_seq = l;
	a->st.lost_notices++;
	if (c > 0) {
		a->st.lost_count += (uint64_t)c;
		if (reason && !strcmp(reason, "slow_client"))
			a->st.lost_slow += (uint64_t)c;
	}
}

static void it_acct_line(struct lm_it_acct *a, const char *s, size_t len)
{
	struct lm_it_acct_rec *r;
	json_error_t jerr;
	const char *type, *comm;
	char why[160], esc[1024];
	long long seq;
	json_t *ev;

	ev = json_loadb(s, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!ev || !json_is_object(ev)) {
		it_acct_problem(a, "line is not a strict JSON object (%s): %s",
				ev ? "not an object" : jerr.text,
				lm_it_escape_buf(s, len, esc, sizeof(esc)));
		json_decref(ev);
		return;
	}
	type = lm_it_jstr(ev, "type");
	if (type && !strcmp(type, "LOST")) {
		it_acct_lost(a, ev, s, len);
		json_decref(ev);
		return;
	}
	if (!lm_it_event_is_valid(ev, why, sizeof(why))) {
		it_acct_problem(a, "schema: %s: %s", why,
				lm_it_escape_buf(s, len, esc, sizeof(esc)));
		json_decref(ev);
		return;
	}
	seq = lm_it_jint(ev, "seq", 0);
	if (a->have_seq && seq != a->st.last_seq + 1)
		it_acct_problem(a, "seq %lld after %lld without a LOST notice covering the gap: %s",
				seq, a->st.last_seq, lm_it_escape_buf(s, len, esc, sizeof(esc)));
	if (!a->have_seq)
		a->st.first_seq = seq;
	a->have_seq = true;
	if (lm_it_jint(ev, "timestamp", 0) < a->last_ts)
		it_acct_problem(a, "timestamp went back by %lld ns: %s",
				a->last_ts - lm_it_jint(ev, "timestamp", 0),
				lm_it_escape_buf(s, len, esc, sizeof(esc)));
	else
		a->last_ts = lm_it_jint(ev, "timestamp", 0);
	if (seq > a->st.last_seq)
		a->st.last_seq = seq;
	a->st.events++;
	if (a->nrecs == a->caprecs) {
		size_t cap = a->caprecs ? a->caprecs * 2 : 4096;
		struct lm_it_acct_rec *nr = realloc(a->recs, cap * sizeof(*nr));

		if (!nr) {
			it_acct_problem(a, "out of memory keeping %zu events", a->nrecs);
			json_decref(ev);
			return;
		}
		a->recs = nr;
		a->caprecs = cap;
	}
	r = &a->recs[a->nrecs++];
	memset(r, 0, sizeof(*r));
	r->seq = seq;
	r->pid = (pid_t)lm_it_jint(ev, "pid", -1);
	r->ppid = (pid_t)lm_it_jint(ev, "ppid", -1);
	r->type = !strcmp(type, "EXEC") ? 'E' : !strcmp(type, "EXIT") ? 'X' : 'O';
	comm = lm_it_jstr(ev, "comm");
	snprintf(r->comm, sizeof(r->comm), "%s", comm ? comm : "");
	json_decref(ev);
}

int lm_it_acct_open(uint16_t port, bool allow_lost, struct lm_it_acct **out)
{
	struct lm_wsc_opts o = {.port = port, .path = "/ws", .timeout_ms = 5000};
	struct lm_it_acct *a;
	int err, st = 0;

	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->allow_lost = allow_lost;
	err = lm_wsc_connect(&o, &a->ws, &st);
	if (err) {
		free(a);
		return err;
	}
	*out = a;
	return 0;
}

int lm_it_acct_pump(struct lm_it_acct *a, int timeout_ms)
{
	const char *msg, *p, *end, *nl;
	char esc[1024];
	size_t len;
	int r, lines = 0;

	if (a->st.dead)
		return a->st.dead;
	r = lm_wsc_recv(a->ws, timeout_ms, &msg, &len);
	if (r == -ETIMEDOUT)
		return 0;
	if (r == LM_WSC_OP_CLOSE) {
		a->st.close_code = lm_wsc_close_code(a->ws);
		snprintf(
		    a->st.close_reason, sizeof(a->st.close_reason), "%.*s",
		    (int)(len < sizeof(a->st.close_reason) ? len : sizeof(a->st.close_reason) - 1),
		    msg ? msg : "");
		a->st.dead = -ECONNRESET;
		return a->st.dead;
	}
	if (r < 0) {
		it_acct_problem(a, "ws receive failed: %s (%s)", strerror(-r),
				lm_wsc_errmsg(a->ws));
		a->st.dead = r;
		return r;
	}
	if (r != LM_WSC_OP_TEXT) {
		it_acct_problem(a, "non-text message (opcode %d, %zu bytes)", r, len);
		return 0;
	}
	a->st.messages++;
	if (len == 0 || msg[len - 1] != '\n')
		it_acct_problem(a, "text message does not end with \\n: %s",
				lm_it_escape_buf(msg, len, esc, sizeof(esc)));
	for (p = msg, end = msg + len; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		if (nl == p) {
			it_acct_problem(a, "empty line inside a message");
			continue;
		}
		it_acct_line(a, p, (size_t)(nl - p));
		lines++;
	}
	return lines;
}

void lm_it_acct_get_stats(const struct lm_it_acct *a, struct lm_it_acct_stats *st)
{
	*st = a->st;
}

const struct lm_it_acct_rec *lm_it_acct_recs(const struct lm_it_acct *a, size_t *n)
{
	*n = a->nrecs;
	return a->recs;
}

unsigned int lm_it_acct_report(struct lm_it_acct *a, const char *who)
{
	unsigned int i, n = (unsigned int)a->st.problems;

	for (i = 0; i < a->nnotes; i++)
		lm_it_fail("%s: %s", who, a->notes[i]);
	if (a->st.problems > a->nnotes)
		lm_it_fail("%s: %llu more problem(s) not shown", who,
			   (unsigned long long)(a->st.problems - a->nnotes));
	a->nnotes = 0;
	a->st.problems = 0;
	return n;
}

void lm_it_acct_close(struct lm_it_acct *a)
{
	if (!a)
		return;
	if (!a->st.dead)
		lm_wsc_send_close(a->ws, 1000);
	lm_wsc_close(a->ws);
	free(a->recs);
	free(a);
}

int lm_it_read_file(const char *path, char **text, size_t *len)
{
	return it_read_file(path, text, len);
}

/* --- process memory --- */

long lm_it_proc_rss_kb(pid_t pid)
{
	char path[64], buf[4096];
	const char *line;
	ssize_t n, got = 0;
	long kb;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (got < (ssize_t)sizeof(buf) - 1) {
		n = read(fd, buf + got, sizeof(buf) - 1 - (size_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += n;
	}
	close(fd);
	buf[got] = '\0';
	line = strstr(buf, "\nVmRSS:");
	if (!line)
		return -ENOENT; /* a zombie has no memory lines */
	if (sscanf(line + 1, "VmRSS: %ld kB", &kb) != 1)
		return -EPROTO;
	return kb;
}
