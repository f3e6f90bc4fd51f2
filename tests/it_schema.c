// SPDX-License-Identifier: GPL-2.0
/*
 * Integration test: lifemon's real output validates against docs/event.schema.json. Starts
 * lifemon with --output FILE, --stdout and a /ws collector, runs a workload (exits 0, 3 and by
 * SIGTERM, a #! script, fexecve, an exec with an empty, a newline and invalid UTF-8 arguments
 * from a directory whose name is invalid UTF-8, and a real OOM kill in a dedicated 32 MiB
 * memory cgroup), stops lifemon with SIGTERM and runs tests/schema_check.py over all three
 * streams. Root only; port 18109; removes its temp directory and cgroup.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/it_util.h"

#define IT_PORT 18109
#define IT_LIMIT "33554432" /* 32 MiB, the cgroup's memory limit */
#define IT_STEP_BYTES ((size_t)1 << 20)
#define IT_CAP_STEPS 512 /* the victim never touches more than 512 MiB */
#define IT_VICTIM_COMM "lm-schema-oom"
#define IT_EXIT_SETUP 90 /* a child's own set-up failed */

/* The odd exec: a symlink to /bin/true and a cwd, both named with invalid UTF-8. */
#define IT_ODD_NAME "t\xffx"
#define IT_ODD_DIR "d\xc3\xc3"
static char *const odd_argv[] = { IT_ODD_NAME,	 "",  "a\nb", "q\"uote", "\xff\xfe",
				  "caf\xc3\xa9", NULL };

static const char *python3, *checker, *schema;
static char tmp_dir[PATH_MAX]; /* "" until created */
static char cg_dir[PATH_MAX];  /* "" until created */
static char cg_name[PATH_MAX]; /* cg_dir, kept after cleanup for the checks */
static pid_t victim = -1;      /* -1 once reaped */
static char *victim_mem[IT_CAP_STEPS];

static void path_in(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", tmp_dir, name);
}

static int write_file(const char *path, const char *val)
{
	size_t len = strlen(val);
	int fd, err = 0;
	ssize_t n;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	n = write(fd, val, len);
	if (n < 0)
		err = -errno;
	else if ((size_t)n != len)
		err = -EIO;
	close(fd);
	return err;
}

static void tmp_cleanup(void *arg)
{
	static const char *const names[] = { "out.jsonl", "stdout.jsonl", "ws.jsonl", "script.sh",
					     IT_ODD_NAME };
	char path[PATH_MAX + 32];
	size_t i;

	(void)arg;
	if (!tmp_dir[0])
		return;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		path_in(path, sizeof(path), names[i]);
		unlink(path);
	}
	path_in(path, sizeof(path), IT_ODD_DIR);
	rmdir(path);
	if (rmdir(tmp_dir) < 0)
		lm_it_note("rmdir %s: %s (left behind)", tmp_dir, strerror(errno));
	tmp_dir[0] = '\0';
}

static void cgroup_cleanup(void *arg)
{
	int64_t deadline = lm_it_now_ms() + 5000;

	(void)arg;
	if (victim > 0) {
		lm_it_kill_reap(victim);
		victim = -1;
	}
	if (!cg_dir[0])
		return;
	/* rmdir fails with EBUSY until the last task has left (the victim's exit is async). */
	while (rmdir(cg_dir) < 0 && errno != ENOENT) {
		if (errno != EBUSY || lm_it_now_ms() >= deadline) {
			lm_it_note("rmdir %s: %s (left behind)", cg_dir, strerror(errno));
			break;
		}
		usleep(5000);
	}
	cg_dir[0] = '\0';
}

/*
 * A memory cgroup limited to 32 MiB without swap: v1's memory controller (this host's hybrid
 * layout), else a cgroup2 mount at /sys/fs/cgroup with memory. Skips the test without one.
 */
static void cgroup_setup(void)
{
	static const char *const v1 = "/sys/fs/cgroup/memory", *const v2 = "/sys/fs/cgroup";
	char path[PATH_MAX + 64];
	bool is_v1;
	int err;

	snprintf(path, sizeof(path), "%s/memory.limit_in_bytes", v1);
	is_v1 = access(path, F_OK) == 0;
	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", v2);
	if (!is_v1 && access(path, F_OK) < 0)
		lm_it_skip("no cgroup v1 memory controller at %s and no cgroup2 at %s", v1, v2);
	snprintf(cg_dir, sizeof(cg_dir), "%s/lifemon-it-schema-%d", is_v1 ? v1 : v2, getpid());
	if (mkdir(cg_dir, 0755) < 0) {
		err = errno;
		snprintf(path, sizeof(path), "%s", cg_dir);
		cg_dir[0] = '\0';
		lm_it_skip("mkdir %s: %s", path, strerror(err));
	}
	lm_it_on_cleanup(cgroup_cleanup, NULL);
	snprintf(cg_name, sizeof(cg_name), "%s", cg_dir);
	/* v1: the plain limit first, memsw may never be below it. */
	snprintf(path, sizeof(path), "%s/%s", cg_dir,
		 is_v1 ? "memory.limit_in_bytes" : "memory.max");
	err = write_file(path, IT_LIMIT);
	if (err)
		lm_it_skip("%s: %s", path, strerror(-err));
	snprintf(path, sizeof(path), "%s/%s", cg_dir,
		 is_v1 ? "memory.memsw.limit_in_bytes" : "memory.swap.max");
	if (access(path, F_OK) == 0) {
		err = write_file(path, is_v1 ? IT_LIMIT : "0");
		if (err)
			lm_it_skip("%s: %s", path, strerror(-err));
	}
	lm_it_note("memory cgroup %s limited to %s bytes", cg_dir, IT_LIMIT);
}

/* The victim joins the cgroup, then touches memory 1 MiB at a time up to the cap. */
static int victim_fn(void *arg)
{
	char path[PATH_MAX + 32], pid_s[32];
	size_t i, j;
	char *p;

	(void)arg;
	snprintf(path, sizeof(path), "%s/cgroup.procs", cg_dir);
	snprintf(pid_s, sizeof(pid_s), "%d", getpid());
	if (write_file(path, pid_s) || prctl(PR_SET_NAME, IT_VICTIM_COMM) < 0)
		return IT_EXIT_SETUP;
	for (i = 0; i < IT_CAP_STEPS; i++) {
		p = malloc(IT_STEP_BYTES);
		if (!p)
			break;
		/* volatile stores on every page: resident, charged, not elided */
		for (j = 0; j < IT_STEP_BYTES; j += 4096)
			((volatile char *)p)[j] = (char)(i + j + 1);
		victim_mem[i] = p;
	}
	return 0;
}

/* From the directory with the invalid UTF-8 name, exec the symlink with odd arguments. */
static int odd_fn(void *arg)
{
	char path[PATH_MAX + 32];

	(void)arg;
	path_in(path, sizeof(path), IT_ODD_DIR);
	if (chdir(path) < 0)
		return IT_EXIT_SETUP;
	path_in(path, sizeof(path), IT_ODD_NAME);
	execv(path, odd_argv);
	return IT_EXIT_SETUP;
}

/* fexecve of an open /bin/true: the kernel's filename is /dev/fd/N. */
static int fexecve_fn(void *arg)
{
	char *const argv[] = { "fexecve-true", NULL };
	char *const envp[] = { NULL };
	int fd;

	(void)arg;
	fd = open("/bin/true", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return IT_EXIT_SETUP;
	fexecve(fd, argv, envp);
	return IT_EXIT_SETUP;
}

/* Runs a child to its end; returns its wait status (fatal if it does not end in 10 s). */
static int run_wait(pid_t pid, const char *what)
{
	char buf[64];
	int err, st = 0;

	err = lm_it_reap(pid, 10000, &st);
	LM_IT_ASSERT(!err, "%s (pid %d) still running after 10 s", what, pid);
	lm_it_note("%s: pid %d, %s", what, pid, lm_it_wstatus_str(st, buf, sizeof(buf)));
	return st;
}

static pid_t spawn_wait(char *const argv[], const char *what, int *status)
{
	pid_t pid;
	int err;

	err = lm_it_spawn(argv, -1, 2, &pid);
	LM_IT_ASSERT(!err, "spawn %s: %s", what, strerror(-err));
	*status = run_wait(pid, what);
	return pid;
}

static pid_t fork_wait(lm_it_child_fn fn, const char *what, int *status)
{
	pid_t pid;
	int err;

	err = lm_it_fork_fn(fn, NULL, &pid);
	LM_IT_ASSERT(!err, "fork %s: %s", what, strerror(-err));
	*status = run_wait(pid, what);
	return pid;
}

/* The workload's pids, to find their lines afterwards. */
struct it_work {
	pid_t ok, fail3, term, script, odd, fexec, oom;
};

static void workload(struct it_work *w)
{
	char script[PATH_MAX + 32], link[PATH_MAX + 32], dir[PATH_MAX + 32];
	char *const true_argv[] = { "/bin/true", NULL };
	char *const fail_argv[] = { "/bin/sh", "-c", "exit 3", NULL };
	char *const sleep_argv[] = { "/bin/sleep", "30", NULL };
	char *const script_argv[] = { script, "arg 1", NULL };
	int st, err;
	pid_t pid;

	w->ok = spawn_wait(true_argv, "/bin/true", &st);
	LM_IT_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0, "/bin/true did not exit 0");
	w->fail3 = spawn_wait(fail_argv, "sh -c 'exit 3'", &st);
	LM_IT_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 3, "sh -c 'exit 3' did not exit 3");

	err = lm_it_spawn(sleep_argv, -1, 2, &pid);
	LM_IT_ASSERT(!err, "spawn sleep: %s", strerror(-err));
	usleep(100 * 1000); /* lets it exec; its EXIT is checked either way */
	LM_IT_ASSERT(kill(pid, SIGTERM) == 0, "kill %d: %s", pid, strerror(errno));
	w->term = pid;
	st = run_wait(pid, "sleep 30 + SIGTERM");
	LM_IT_ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "sleep did not die of SIGTERM");

	path_in(script, sizeof(script), "script.sh");
	err = write_file(script, "#!/bin/sh\nexit 5\n");
	LM_IT_ASSERT(!err && chmod(script, 0755) == 0, "script %s: %s", script, strerror(-err));
	w->script = spawn_wait(script_argv, "#! script", &st);
	LM_IT_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 5, "the script did not exit 5");

	path_in(link, sizeof(link), IT_ODD_NAME);
	path_in(dir, sizeof(dir), IT_ODD_DIR);
	LM_IT_ASSERT(symlink("/bin/true", link) == 0 && mkdir(dir, 0755) == 0,
		     "odd names in %s: %s", tmp_dir, strerror(errno));
	w->odd = fork_wait(odd_fn, "exec with odd arguments", &st);
	LM_IT_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the odd exec failed");
	w->fexec = fork_wait(fexecve_fn, "fexecve /bin/true", &st);
	LM_IT_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fexecve failed");

	err = lm_it_fork_fn(victim_fn, NULL, &victim);
	LM_IT_ASSERT(!err, "fork victim: %s", strerror(-err));
	w->oom = victim;
	err = lm_it_reap(victim, 30000, &st);
	LM_IT_ASSERT(!err, "victim %d still running after 30 s", victim);
	victim = -1; /* reaped: its pid may be reused, never signal it again */
	LM_IT_ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
		     "test setup: the victim was not OOM-killed: the cgroup limit did not bite");
}

/* Runs schema_check.py over `file`, requiring EXEC, EXIT and OOM_KILL lines. */
static void check_file(const char *file, const char *what)
{
	char *const argv[] = { (char *)python3, (char *)checker, "--schema",   (char *)schema,
			       "--require",	"EXEC",		 "--require",  "EXIT",
			       "--require",	"OOM_KILL",	 (char *)file, NULL };
	char buf[64];
	pid_t pid;
	int err, st = 0;

	err = lm_it_spawn(argv, 2, 2, &pid);
	LM_IT_ASSERT(!err, "spawn %s: %s", checker, strerror(-err));
	err = lm_it_reap(pid, 60000, &st);
	LM_IT_ASSERT(!err, "schema_check.py still running after 60 s");
	LM_IT_EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		     "%s does not validate against %s (schema_check.py: %s)", what, schema,
		     lm_it_wstatus_str(st, buf, sizeof(buf)));
}

/* The event lines of a JSONL text, parsed (invalid lines are schema_check.py's to report). */
static json_t *parse_lines(const char *text)
{
	json_t *arr = json_array(), *ev;
	const char *p = text, *nl;

	LM_IT_ASSERT(arr, "out of memory");
	while (*p) {
		nl = strchr(p, '\n');
		if (!nl)
			nl = p + strlen(p);
		ev = json_loadb(p, (size_t)(nl - p), 0, NULL);
		if (ev)
			json_array_append_new(arr, ev);
		p = *nl ? nl + 1 : nl;
	}
	return arr;
}

static const json_t *find(const json_t *arr, const char *type, pid_t pid)
{
	const json_t *ev;
	size_t i;

	json_array_foreach(arr, i, ev)
	{
		const char *t = lm_it_jstr(ev, "type");

		if (t && !strcmp(t, type) && lm_it_jint(ev, "pid", -1) == pid)
			return ev;
	}
	return NULL;
}

/* The workload's lines are in the file (so the validation covered them) and say what ran. */
static void check_workload(const json_t *arr, const struct it_work *w)
{
	const struct {
		pid_t pid;
		const char *what;
		bool exec;
		int exit_code, signal;
	} want[] = {
		{ w->ok, "/bin/true", true, 0, 0 },
		{ w->fail3, "sh -c 'exit 3'", true, 3, 0 },
		{ w->term, "sleep + SIGTERM", false, 128 + SIGTERM, SIGTERM },
		{ w->script, "#! script", true, 5, 0 },
		{ w->odd, "odd exec", true, 0, 0 },
		{ w->fexec, "fexecve", true, 0, 0 },
		{ w->oom, "OOM victim", false, 128 + SIGKILL, SIGKILL },
	};
	const json_t *ex, *en, *args, *hex, *oom;
	size_t i, n = sizeof(odd_argv) / sizeof(odd_argv[0]) - 1;

	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		ex = find(arr, "EXIT", want[i].pid);
		en = find(arr, "EXEC", want[i].pid);
		LM_IT_EXPECT(ex, "no EXIT line for %s (pid %d)", want[i].what, want[i].pid);
		LM_IT_EXPECT(!want[i].exec || en, "no EXEC line for %s (pid %d)", want[i].what,
			     want[i].pid);
		if (ex)
			LM_IT_EXPECT(lm_it_jint(ex, "exit_code", -1) == want[i].exit_code &&
					     lm_it_jint(ex, "signal", -1) == want[i].signal,
				     "%s: want exit_code %d signal %d: %s", want[i].what,
				     want[i].exit_code, want[i].signal, lm_it_jdump(ex));
		if (ex && en && lm_it_jstr(en, "key"))
			LM_IT_EXPECT(lm_it_jstr(ex, "key") &&
					     !strcmp(lm_it_jstr(en, "key"), lm_it_jstr(ex, "key")),
				     "%s: EXEC and EXIT keys differ", want[i].what);
	}
	/* The odd exec went through the schema with its arguments and hex twins. */
	en = find(arr, "EXEC", w->odd);
	if (en) {
		args = json_object_get(en, "args");
		hex = json_object_get(en, "args_hex");
		LM_IT_EXPECT(json_is_array(args) && json_array_size(args) == n &&
				     lm_it_jint(en, "argc", -1) == (long long)n,
			     "odd exec: want %zu args and argc: %s", n, lm_it_jdump(en));
		LM_IT_EXPECT(json_is_array(args) && json_is_string(json_array_get(args, 1)) &&
				     !strcmp(json_string_value(json_array_get(args, 1)), "") &&
				     !strcmp(json_string_value(json_array_get(args, 2)), "a\nb"),
			     "odd exec: the empty and the newline argument: %s", lm_it_jdump(en));
		LM_IT_EXPECT(json_is_object(hex) && json_object_size(hex) == 2 &&
				     !strcmp(lm_it_jstr(hex, "0") ?: "", "74ff78") &&
				     !strcmp(lm_it_jstr(hex, "4") ?: "", "fffe"),
			     "odd exec: want args_hex {\"0\":\"74ff78\",\"4\":\"fffe\"}: %s",
			     lm_it_jdump(en));
		LM_IT_EXPECT(lm_it_jstr(en, "cwd_hex") && lm_it_jstr(en, "filename_hex") &&
				     lm_it_jstr(en, "comm_hex"),
			     "odd exec: want cwd_hex, filename_hex and comm_hex: %s",
			     lm_it_jdump(en));
	}
	en = find(arr, "EXEC", w->fexec);
	if (en)
		LM_IT_EXPECT(!strncmp(lm_it_jstr(en, "filename") ?: "", "/dev/fd/", 8),
			     "fexecve: want filename /dev/fd/N: %s", lm_it_jdump(en));
	oom = find(arr, "OOM_KILL", w->oom);
	ex = find(arr, "EXIT", w->oom);
	LM_IT_EXPECT(oom, "no OOM_KILL line for the victim (pid %d)", w->oom);
	if (oom) {
		const char *memcg = lm_it_jstr(oom, "memcg"), *name = strrchr(cg_name, '/');

		LM_IT_EXPECT(memcg && name && strlen(memcg) >= strlen(name) &&
				     !strcmp(memcg + strlen(memcg) - strlen(name), name),
			     "OOM_KILL memcg should end with %s: %s", name ?: "?",
			     lm_it_jdump(oom));
	}
	if (ex)
		LM_IT_EXPECT(json_is_true(json_object_get(ex, "oom_killed")),
			     "the OOM victim's EXIT wants oom_killed true: %s", lm_it_jdump(ex));
}

/* Writes the events the /ws collector kept, one compact JSON object per line. */
static void dump_ws(struct lm_it_coll *coll, const char *path)
{
	FILE *f = fopen(path, "we");
	size_t i;

	LM_IT_ASSERT(f, "%s: %s", path, strerror(errno));
	for (i = 0; i < lm_it_coll_count(coll); i++) {
		char *s = json_dumps(lm_it_coll_get(coll, i), JSON_COMPACT);

		LM_IT_ASSERT(s, "json_dumps failed");
		fprintf(f, "%s\n", s);
		free(s);
	}
	LM_IT_ASSERT(fclose(f) == 0, "%s: %s", path, strerror(errno));
}

/* python3 with jsonschema is a precondition, like root and BTF. */
static void require_python(void)
{
	char *const argv[] = { (char *)python3, "-c", "import jsonschema", NULL };
	pid_t pid;
	int st = 0;

	if (lm_it_spawn(argv, -1, 2, &pid) || lm_it_reap(pid, 30000, &st) || !WIFEXITED(st) ||
	    WEXITSTATUS(st))
		lm_it_skip("%s cannot import jsonschema (scripts/install-deps.sh installs "
			   "python3-jsonschema)",
			   python3);
}

int main(int argc, char **argv)
{
	const char *extra[] = { "--stdout", "--output", NULL, NULL };
	char out[PATH_MAX + 32], sout[PATH_MAX + 32], wout[PATH_MAX + 32], buf[64];
	struct lm_it_coll *coll = NULL;
	struct lm_it_proc *lm = NULL;
	struct it_work w = { 0 };
	char *text = NULL;
	int64_t ms = 0;
	size_t len = 0;
	json_t *arr;
	int err, st = 0;

	lm_it_init("it_schema", argc, argv, 110);
	if (argc != 5)
		lm_it_fatal("usage: %s LIFEMON PYTHON3 SCHEMA_CHECK SCHEMA", argv[0]);
	python3 = argv[2];
	checker = argv[3];
	schema = argv[4];
	lm_it_require_env();
	require_python();
	snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/lm-it-schema-XXXXXX");
	if (!mkdtemp(tmp_dir)) {
		tmp_dir[0] = '\0';
		lm_it_fatal("mkdtemp: %s", strerror(errno));
	}
	lm_it_on_cleanup(tmp_cleanup, NULL);
	cgroup_setup();
	path_in(out, sizeof(out), "out.jsonl");
	path_in(sout, sizeof(sout), "stdout.jsonl");
	path_in(wout, sizeof(wout), "ws.jsonl");

	extra[2] = out;
	err = lm_it_lifemon_start(IT_PORT, extra, true, &lm);
	LM_IT_ASSERT(!err, "lifemon did not become healthy: %s", strerror(-err));
	err = lm_it_coll_open(IT_PORT, &coll);
	LM_IT_ASSERT(!err, "ws connect: %s", strerror(-err));
	err = lm_it_coll_sync(coll, LM_IT_EVENT_MS);
	LM_IT_ASSERT(!err, "no EXIT of a /bin/true marker reached /ws within %d ms",
		     LM_IT_EVENT_MS);

	workload(&w);
	LM_IT_EXPECT(lm_it_coll_wait_event(coll, "EXIT", w.oom, LM_IT_EVENT_MS, NULL),
		     "no EXIT of the OOM victim %d on /ws within %d ms", w.oom, LM_IT_EVENT_MS);
	lm_it_coll_check(coll);
	dump_ws(coll, wout);
	lm_it_coll_close(coll);

	err = lm_it_proc_stop(lm, SIGTERM, LM_IT_STOP_MS, &st, &ms);
	LM_IT_EXPECT(!err && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		     "lifemon ended with %s after SIGTERM, want exit 0 within %d ms",
		     lm_it_wstatus_str(st, buf, sizeof(buf)), LM_IT_STOP_MS);
	err = lm_it_proc_stdout(lm, &text, &len);
	LM_IT_ASSERT(!err, "lifemon's stdout: %s", strerror(-err));
	err = write_file(sout, text);
	LM_IT_ASSERT(!err, "%s: %s", sout, strerror(-err));
	free(text);
	text = NULL;

	check_file(out, "the --output file");
	check_file(sout, "stdout");
	check_file(wout, "the /ws stream (as re-encoded by jansson)");

	err = lm_it_read_file(out, &text, &len);
	LM_IT_ASSERT(!err, "%s: %s", out, strerror(-err));
	arr = parse_lines(text);
	free(text);
	lm_it_note("%zu lines in %s", json_array_size(arr), out);
	check_workload(arr, &w);
	json_decref(arr);

	if (lm_it_failures())
		lm_it_proc_dump_stderr(lm, "it_schema");
	lm_it_proc_free(lm);
	return lm_it_finish();
}
