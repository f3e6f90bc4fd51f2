// SPDX-License-Identifier: GPL-2.0
/*
 * forkbomb-lite: a bounded fork/exec load generator for the storm benchmark (bench/storm.sh).
 * Single-threaded; every bound (live children, total children, seconds, tree depth) is checked
 * before each fork, also inside tree children, through counters in one shared mapping that
 * this process owns. It only ever signals its own direct children, by pid.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#define FB_MAX_LIVE_HARD 256
#define FB_TOTAL_HARD 100000
#define FB_SECONDS_HARD 300
#define FB_DEPTH_HARD 4
#define FB_FANOUT_HARD 8
/* After the time limit, children get this long to end before SIGKILL. */
#define FB_GRACE_NS (5ULL * 1000000000ULL)

enum fb_mode { FB_MODE_EXEC, FB_MODE_FORK, FB_MODE_EXITCODES, FB_MODE_TREE };

static const char *const fb_mode_names[] = { "exec", "fork", "exitcodes", "tree" };

/*
 * State shared by the whole process tree (MAP_SHARED | MAP_ANONYMOUS, mapped before the first
 * fork). live counts forked-but-not-yet-reaped processes: a forker adds 1 before fork (and
 * forks only if the old value was below max_live), the reaper subtracts 1 after waitpid.
 * next hands out indexes into pids[]; a value >= total means the total is used up.
 */
struct fb_shared {
	atomic_uint live;
	atomic_uint next;
	atomic_uint peak_live;
	atomic_uint fork_failed;
	pid_t pids[]; /* [total], 0 where a fork failed */
};

struct fb_opts {
	unsigned int max_live, total, seconds, depth, fanout;
	enum fb_mode mode;
	const char *exec_path, *pids_path;
	bool json;
};

static struct fb_opts fb_o = { .depth = 2, .fanout = 2, .exec_path = "/bin/true" };
static struct fb_shared *fb_sh;
static uint64_t fb_deadline_ns;
static sigset_t fb_orig_mask;
static int fb_devnull = -1;

static volatile sig_atomic_t fb_stop_sig;

static void fb_on_signal(int sig)
{
	fb_stop_sig = sig;
}

static uint64_t fb_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Bad usage: one line on stderr, exit status 2, nothing started. */
static void fb_usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "forkbomb-lite: %s%s%s (see --help)\n", what, arg ? ": " : "",
		arg ? arg : "");
	exit(2);
}

static void fb_help(void)
{
	printf("usage: forkbomb-lite --max-live N --total N --seconds S [--mode M] [--exec PATH]\n"
	       "                     [--depth D] [--fanout F] [--pids FILE] [--json]\n"
	       "  --max-live N   live children at most, 1..%d (tree: every descendant counts)\n"
	       "  --total N      children in all, 1..%d (tree: every descendant counts)\n"
	       "  --seconds S    time limit, 1..%d; then no more forks, and children still alive\n"
	       "                 after %llu s more are killed by pid\n"
	       "  --mode M       exec: fork + exec PATH (default); fork: child _exit(0);\n"
	       "                 exitcodes: child _exit(1..255 in turn); tree: children fork\n"
	       "                 children, --fanout each (default 2, max %d), --depth levels\n"
	       "                 (default 2, max %d), node exits with its depth\n"
	       "  --exec PATH    program for exec mode, run without arguments (/bin/true)\n"
	       "  --pids FILE    write the pid of every process started, one per line\n"
	       "  --json         print the summary as one JSON object\n",
	       FB_MAX_LIVE_HARD, FB_TOTAL_HARD, FB_SECONDS_HARD, FB_GRACE_NS / 1000000000ULL,
	       FB_FANOUT_HARD, FB_DEPTH_HARD);
	exit(0);
}

static unsigned int fb_parse_bounded(const char *opt, const char *arg, unsigned int hard_max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = arg ? strtoul(arg, &end, 10) : 0;
	if (!arg || errno || end == arg || *end || arg[0] == '-' || v < 1 || v > hard_max) {
		fprintf(stderr, "forkbomb-lite: %s needs an integer from 1 to %u, got '%s'\n", opt,
			hard_max, arg ? arg : "");
		exit(2);
	}
	return (unsigned int)v;
}

static void fb_parse_args(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fb_help();
		} else if (!strcmp(a, "--json")) {
			fb_o.json = true;
			continue;
		} else if (!v) {
			fb_usage_error("unknown option or missing value", a);
		} else if (!strcmp(a, "--max-live")) {
			fb_o.max_live = fb_parse_bounded(a, v, FB_MAX_LIVE_HARD);
		} else if (!strcmp(a, "--total")) {
			fb_o.total = fb_parse_bounded(a, v, FB_TOTAL_HARD);
		} else if (!strcmp(a, "--seconds")) {
			fb_o.seconds = fb_parse_bounded(a, v, FB_SECONDS_HARD);
		} else if (!strcmp(a, "--depth")) {
			fb_o.depth = fb_parse_bounded(a, v, FB_DEPTH_HARD);
		} else if (!strcmp(a, "--fanout")) {
			fb_o.fanout = fb_parse_bounded(a, v, FB_FANOUT_HARD);
		} else if (!strcmp(a, "--exec")) {
			fb_o.exec_path = v;
		} else if (!strcmp(a, "--pids")) {
			fb_o.pids_path = v;
		} else if (!strcmp(a, "--mode")) {
			unsigned int m;

			for (m = 0; m < sizeof(fb_mode_names) / sizeof(fb_mode_names[0]); m++)
				if (!strcmp(v, fb_mode_names[m]))
					break;
			if (m == sizeof(fb_mode_names) / sizeof(fb_mode_names[0]))
				fb_usage_error("--mode must be exec, fork, exitcodes or tree", v);
			fb_o.mode = (enum fb_mode)m;
		} else {
			fb_usage_error("unknown option", a);
		}
		i++;
	}
	if (!fb_o.max_live)
		fb_usage_error("--max-live N (1..256) is required", NULL);
	if (!fb_o.total)
		fb_usage_error("--total N (1..100000) is required", NULL);
	if (!fb_o.seconds)
		fb_usage_error("--seconds S (1..300) is required", NULL);
	if (fb_o.mode == FB_MODE_EXEC && access(fb_o.exec_path, X_OK))
		fb_usage_error("--exec is not an executable file", fb_o.exec_path);
}

/*
 * Reserves one process: a live slot and an index into pids[]. Returns false, with nothing
 * reserved, when max_live processes are live, the total is used up or time is over.
 */
static bool fb_reserve(unsigned int *idx)
{
	unsigned int old, peak;

	if (fb_stop_sig || fb_now_ns() >= fb_deadline_ns)
		return false;
	/* relaxed: a counter only; fork and waitpid order the process lifetimes themselves */
	old = atomic_fetch_add_explicit(&fb_sh->live, 1, memory_order_relaxed);
	if (old >= fb_o.max_live) {
		atomic_fetch_sub_explicit(&fb_sh->live, 1, memory_order_relaxed);
		return false;
	}
	*idx = atomic_fetch_add_explicit(&fb_sh->next, 1, memory_order_relaxed);
	if (*idx >= fb_o.total) {
		atomic_fetch_sub_explicit(&fb_sh->live, 1, memory_order_relaxed);
		return false;
	}
	peak = atomic_load_explicit(&fb_sh->peak_live, memory_order_relaxed);
	while (old + 1 > peak &&
	       !atomic_compare_exchange_weak_explicit(&fb_sh->peak_live, &peak, old + 1,
						      memory_order_relaxed, memory_order_relaxed))
		;
	return true;
}

static void fb_release(void)
{
	atomic_fetch_sub_explicit(&fb_sh->live, 1, memory_order_relaxed);
}

/* First thing in every child: die with the parent, restore the signal mask, quiet stdio. */
static void fb_child_setup(pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(99);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	sigprocmask(SIG_SETMASK, &fb_orig_mask, NULL);
	if (fb_devnull >= 0) {
		dup2(fb_devnull, STDIN_FILENO);
		dup2(fb_devnull, STDOUT_FILENO);
	}
}

static pid_t fb_fork_reserved(unsigned int idx, unsigned int depth);

/* A tree node at @depth: start up to fanout children one level down, reap them, exit. */
static void fb_tree_node(unsigned int depth)
{
	unsigned int i, idx, kids = 0;
	int st;

	if (depth < fb_o.depth) {
		for (i = 0; i < fb_o.fanout; i++) {
			/* never wait for a slot here: nodes holding slots while waiting deadlock */
			if (!fb_reserve(&idx))
				break;
			if (fb_fork_reserved(idx, depth + 1) > 0)
				kids++;
		}
	}
	while (kids) {
		if (waitpid(-1, &st, 0) > 0) {
			fb_release();
			kids--;
		} else if (errno == ECHILD) {
			break;
		}
	}
	_exit((int)depth);
}

/*
 * Forks the process reserved at @idx (fb_reserve() succeeded) and records its pid. Returns
 * the pid, or -errno with the reservation released when fork fails.
 */
static pid_t fb_fork_reserved(unsigned int idx, unsigned int depth)
{
	pid_t self = getpid();
	pid_t pid = fork();
	int err;

	if (pid < 0) {
		err = -errno;
		fb_sh->pids[idx] = 0;
		atomic_fetch_add_explicit(&fb_sh->fork_failed, 1, memory_order_relaxed);
		fb_release();
		return err;
	}
	if (pid > 0) {
		fb_sh->pids[idx] = pid;
		return pid;
	}
	fb_child_setup(self);
	switch (fb_o.mode) {
	case FB_MODE_EXEC: {
		char *const args[] = { (char *)fb_o.exec_path, NULL };

		execv(fb_o.exec_path, args);
		_exit(127);
	}
	case FB_MODE_FORK:
		_exit(0);
	case FB_MODE_EXITCODES:
		_exit((int)(idx % 255) + 1);
	case FB_MODE_TREE:
		fb_tree_node(depth);
	}
	_exit(0);
}

/* Direct children still alive, by pid, so the time limit can kill exactly them. */
static pid_t fb_kids[FB_MAX_LIVE_HARD];
/* Direct children that exited 127 in exec mode: the exec failed. */
static unsigned int fb_exec_failed;

static void fb_kid_add(pid_t pid)
{
	unsigned int i;

	for (i = 0; i < FB_MAX_LIVE_HARD; i++)
		if (!fb_kids[i]) {
			fb_kids[i] = pid;
			return;
		}
}

static bool fb_kid_del(pid_t pid, int status)
{
	unsigned int i;

	for (i = 0; i < FB_MAX_LIVE_HARD; i++)
		if (fb_kids[i] == pid) {
			if (fb_o.mode == FB_MODE_EXEC && WIFEXITED(status) &&
			    WEXITSTATUS(status) == 127)
				fb_exec_failed++;
			fb_kids[i] = 0;
			return true;
		}
	return false;
}

static unsigned int fb_kids_alive(void)
{
	unsigned int i, n = 0;

	for (i = 0; i < FB_MAX_LIVE_HARD; i++)
		n += fb_kids[i] != 0;
	return n;
}

/* Reaps every direct child that has ended; returns how many. */
static unsigned int fb_reap_ready(void)
{
	unsigned int n = 0;
	int st;
	pid_t pid;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		if (fb_kid_del(pid, st))
			fb_release();
		n++;
	}
	return n;
}

/* Sleeps until SIGCHLD, a stop signal or @until_ns (blocked signals, see main). */
static void fb_wait_event(uint64_t until_ns)
{
	uint64_t now = fb_now_ns(), left = until_ns > now ? until_ns - now : 0;
	struct timespec ts = { .tv_sec = (time_t)(left / 1000000000ULL),
			       .tv_nsec = (long)(left % 1000000000ULL) };
	sigset_t set;
	int sig;

	if (!left)
		return;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sig = sigtimedwait(&set, NULL, &ts);
	if (sig == SIGINT || sig == SIGTERM)
		fb_stop_sig = sig;
}

static int fb_write_pids(unsigned int used)
{
	FILE *f = fopen(fb_o.pids_path, "w");
	unsigned int i;
	int err = 0;

	if (!f) {
		err = -errno;
		fprintf(stderr, "forkbomb-lite: open %s: %s\n", fb_o.pids_path, strerror(-err));
		return err;
	}
	for (i = 0; i < used; i++)
		if (fb_sh->pids[i])
			fprintf(f, "%d\n", fb_sh->pids[i]);
	if (fclose(f)) {
		err = -errno;
		fprintf(stderr, "forkbomb-lite: write %s: %s\n", fb_o.pids_path, strerror(-err));
	}
	return err;
}

int main(int argc, char **argv)
{
	size_t map_bytes;
	sigset_t block;
	uint64_t start_ns, end_ns, kill_at_ns;
	unsigned int idx, used, spawned = 0, killed = 0, i;
	const char *stop_why = "total";
	double secs, rate;
	int err = 0;

	fb_parse_args(argc, argv);

	map_bytes = sizeof(*fb_sh) + (size_t)fb_o.total * sizeof(pid_t);
	fb_sh = mmap(NULL, map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (fb_sh == MAP_FAILED) {
		fprintf(stderr, "forkbomb-lite: mmap %zu bytes: %s\n", map_bytes, strerror(errno));
		return 1;
	}
	fb_devnull = open("/dev/null", O_RDWR | O_CLOEXEC);

	/* SIGCHLD, SIGINT and SIGTERM are taken only through sigtimedwait in fb_wait_event */
	sigemptyset(&block);
	sigaddset(&block, SIGCHLD);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &fb_orig_mask);
	signal(SIGINT, fb_on_signal);
	signal(SIGTERM, fb_on_signal);

	start_ns = fb_now_ns();
	fb_deadline_ns = start_ns + (uint64_t)fb_o.seconds * 1000000000ULL;

	for (;;) {
		while (fb_reserve(&idx)) {
			pid_t pid = fb_fork_reserved(idx, 1);

			if (pid > 0) {
				fb_kid_add(pid);
			} else {
				/* e.g. EAGAIN from the pid limit: let children end, then retry */
				fb_reap_ready();
				fb_wait_event(fb_now_ns() + 1000000ULL);
			}
		}
		if (fb_stop_sig) {
			stop_why = "signal";
			break;
		}
		if (fb_now_ns() >= fb_deadline_ns) {
			stop_why = "time";
			break;
		}
		if (atomic_load_explicit(&fb_sh->next, memory_order_relaxed) >= fb_o.total)
			break;
		/*
		 * Sleep only when nothing could be reaped: a SIGCHLD consumed by the last wait may
		 * stand for children that ended since, and their slots must be refilled first.
		 */
		if (!fb_reap_ready())
			fb_wait_event(fb_deadline_ns);
	}

	/* no more forks; give the rest a grace period, then kill our own children by pid */
	kill_at_ns = fb_now_ns() + FB_GRACE_NS;
	while (fb_kids_alive()) {
		if (fb_now_ns() >= kill_at_ns || fb_stop_sig) {
			for (i = 0; i < FB_MAX_LIVE_HARD; i++)
				if (fb_kids[i] > 0 && !kill(fb_kids[i], SIGKILL))
					killed++;
			while (fb_kids_alive()) {
				int st;
				pid_t pid = waitpid(-1, &st, 0);

				if (pid > 0 && fb_kid_del(pid, st))
					fb_release();
				else if (pid < 0 && errno == ECHILD)
					break;
			}
			break;
		}
		if (!fb_reap_ready())
			fb_wait_event(kill_at_ns);
	}
	end_ns = fb_now_ns();

	used = atomic_load_explicit(&fb_sh->next, memory_order_relaxed);
	if (used > fb_o.total)
		used = fb_o.total;
	for (i = 0; i < used; i++)
		spawned += fb_sh->pids[i] != 0;
	if (fb_o.pids_path)
		err = fb_write_pids(used);

	secs = (double)(end_ns - start_ns) / 1e9;
	rate = secs > 0 ? spawned / secs : 0;
	if (fb_o.json)
		printf("{\"mode\":\"%s\",\"spawned\":%u,\"fork_failed\":%u,\"exec_failed\":%u,"
		       "\"killed\":%u,"
		       "\"peak_live\":%u,\"max_live\":%u,\"total\":%u,\"seconds\":%.3f,"
		       "\"rate\":%.1f,\"stop\":\"%s\"}\n",
		       fb_mode_names[fb_o.mode], spawned,
		       atomic_load_explicit(&fb_sh->fork_failed, memory_order_relaxed),
		       fb_exec_failed, killed,
		       atomic_load_explicit(&fb_sh->peak_live, memory_order_relaxed), fb_o.max_live,
		       fb_o.total, secs, rate, stop_why);
	else
		printf("spawned=%u seconds=%.3f rate=%.1f/s mode=%s peak_live=%u fork_failed=%u "
		       "exec_failed=%u killed=%u stop=%s\n",
		       spawned, secs, rate, fb_mode_names[fb_o.mode],
		       atomic_load_explicit(&fb_sh->peak_live, memory_order_relaxed),
		       atomic_load_explicit(&fb_sh->fork_failed, memory_order_relaxed),
		       fb_exec_failed, killed, stop_why);
	return err ? 1 : 0;
}
