// SPDX-License-Identifier: GPL-2.0
/*
 * Integration test: lifemon's command line and startup errors. Bad flags, bad listen
 * addresses, bad --allow-host names, a taken port, a non-root user, an --output that cannot
 * be opened, rotation options without --output, an unknown --user and an output directory
 * --user cannot write must each give exit 2 and exactly one "lifemon:" line on stderr, and leave no BPF program
 * behind (run with -v, libbpf would have printed its loading); --help and --version exit 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/it_util.h"

#define IT_PORT 18084
#define IT_PORT_TAKEN 18085
#define IT_EXIT_MS 5000
#define IT_MAX_IDS 1024

struct run {
	int status;
	bool timed_out;
	pid_t pid;
	char *out; /* captured stdout, malloc'ed */
	char *err; /* captured stderr, malloc'ed */
};

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
	r->out = NULL;
	r->err = NULL;
}

/* Runs argv to completion (at most IT_EXIT_MS), capturing stdout and stderr. */
static void run_argv(char *const argv[], struct run *r)
{
	struct lm_it_proc *p = NULL;
	int err;

	memset(r, 0, sizeof(*r));
	err = lm_it_proc_spawn(argv, true, &p);
	LM_IT_ASSERT(!err, "spawn %s: %s", argv[0], strerror(-err));
	r->pid = lm_it_proc_pid(p);
	err = lm_it_proc_wait(p, IT_EXIT_MS, &r->status);
	if (err) {
		int64_t ms;

		r->timed_out = true;
		lm_it_proc_stop(p, SIGKILL, 10000, &r->status, &ms);
	}
	if (lm_it_proc_stdout(p, &r->out, NULL))
		r->out = strdup("");
	if (lm_it_proc_stderr(p, &r->err, NULL))
		r->err = strdup("");
	lm_it_proc_free(p);
	LM_IT_ASSERT(r->out && r->err, "out of memory");
}

/* Runs lifemon with up to two arguments (NULL ends them early). */
static void run_lifemon(struct run *r, const char *a1, const char *a2)
{
	char *argv[4] = {(char *)lm_it_bin(), (char *)a1, (char *)a2, NULL};

	run_argv(argv, r);
}

/*
 * Runs lifemon -v --listen 127.0.0.1:IT_PORT `args` (NULL-terminated, at most 8). With -v,
 * libbpf logs its loading, so an error that comes after the load shows as extra lines.
 */
static void run_lifemon_v(struct run *r, const char *const args[])
{
	char listen_arg[32];
	char *argv[16];
	size_t n = 0, i;

	snprintf(listen_arg, sizeof(listen_arg), "127.0.0.1:%d", IT_PORT);
	argv[n++] = (char *)lm_it_bin();
	argv[n++] = "-v";
	argv[n++] = "--listen";
	argv[n++] = listen_arg;
	for (i = 0; args[i] && i < 8; i++)
		argv[n++] = (char *)args[i];
	argv[n] = NULL;
	run_argv(argv, r);
}

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (*s == '\n')
			n++;
	return n;
}

/*
 * The error contract: exit 2 within IT_EXIT_MS, nothing on stdout, and exactly one line on
 * stderr starting "lifemon:", containing one of `words` (NULL-terminated; NULL: any line).
 */
static void expect_one_line_error(const struct run *r, const char *what, const char *const words[])
{
	char buf[64];
	bool word = !words;
	size_t i;

	LM_IT_EXPECT(!r->timed_out, "%s: lifemon still running after %d ms (killed)", what,
		     IT_EXIT_MS);
	LM_IT_EXPECT(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 2,
		     "%s: ended with %s, want exit 2; stderr: %s", what,
		     lm_it_wstatus_str(r->status, buf, sizeof(buf)), r->err);
	LM_IT_EXPECT(count_lines(r->err) == 1 && r->err[strlen(r->err) - 1] == '\n',
		     "%s: want exactly one line on stderr, got %zu line(s): \"%s\"", what,
		     count_lines(r->err), r->err);
	LM_IT_EXPECT(!strncmp(r->err, "lifemon:", 8),
		     "%s: stderr line should start with \"lifemon:\": \"%s\"", what, r->err);
	LM_IT_EXPECT(!r->out[0], "%s: stdout should be empty (errors go to stderr): \"%s\"", what,
		     r->out);
	for (i = 0; words && words[i]; i++)
		if (strcasestr(r->err, words[i]))
			word = true;
	LM_IT_EXPECT(word, "%s: stderr line should mention %s%s: \"%s\"", what,
		     words ? words[0] : "", words && words[1] ? " (or similar)" : "", r->err);
	lm_it_note("%s: %s, stderr: %.*s", what, lm_it_wstatus_str(r->status, buf, sizeof(buf)),
		   (int)strcspn(r->err, "\n"), r->err);
}

static void check_bad_flag(void)
{
	struct run r;

	run_lifemon(&r, "--bogus", NULL);
	expect_one_line_error(&r, "--bogus", NULL);
	run_free(&r);
}

static void check_bad_listen(void)
{
	static const char *const bad[] = {"1.2.3:80", "127.0.0.1:99999", "nonsense"};
	char what[64];
	struct run r;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(what, sizeof(what), "--listen %s", bad[i]);
		run_lifemon(&r, "--listen", bad[i]);
		expect_one_line_error(&r, what, NULL);
		run_free(&r);
	}
}

/* --allow-host: a malformed name, and one more than the cap, are usage errors. */
static void check_bad_allow_host(void)
{
	static const char *const bad[] = {"", "evil example", "x:0", "x:08080", "x:65536",
					  "[nope]", "[::1", "http://x", "a/b"};
	static const char *const words[] = {"--allow-host", NULL};
	char what[64], *argv[2 * 17 + 2];
	struct run r;
	size_t i;
	int n = 0;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(what, sizeof(what), "--allow-host '%s'", bad[i]);
		run_lifemon(&r, "--allow-host", bad[i]);
		expect_one_line_error(&r, what, words);
		run_free(&r);
	}
	argv[n++] = (char *)lm_it_bin();
	for (i = 0; i < 17; i++) {
		argv[n++] = "--allow-host";
		argv[n++] = "lifemon.example";
	}
	argv[n] = NULL;
	run_argv(argv, &r);
	expect_one_line_error(&r, "17 x --allow-host", words);
	run_free(&r);
}

/* Ids of BPF programs whose name starts with "lm_". */
static size_t lm_prog_ids(uint32_t *ids, size_t cap, pid_t pid, bool *pid_listed)
{
	json_t *arr = NULL;
	size_t i, n = 0;
	int err;

	err = lm_it_bpftool_show("prog", &arr);
	LM_IT_ASSERT(!err, "bpftool -j prog show: %s", strerror(-err));
	for (i = 0; i < json_array_size(arr); i++) {
		const json_t *e = json_array_get(arr, i);
		const char *name = lm_it_jstr(e, "name");

		if (pid_listed && lm_it_bpf_entry_has_pid(e, pid))
			*pid_listed = true;
		if (name && !strncmp(name, "lm_", 3) && n < cap)
			ids[n++] = (uint32_t)lm_it_jint(e, "id", 0);
	}
	json_decref(arr);
	return n;
}

static bool id_in(const uint32_t *ids, size_t n, uint32_t id)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/*
 * lm_* programs that appeared since `before` and that no live process holds: what a lifemon
 * that exited would have leaked. Programs another running lifemon holds are not ours.
 */
static size_t leaked_progs(const uint32_t *before, size_t nbefore, pid_t pid, bool report)
{
	static uint32_t now[IT_MAX_IDS];
	bool pid_listed = false;
	size_t n, i, leaked = 0;

	n = lm_prog_ids(now, IT_MAX_IDS, pid, &pid_listed);
	if (pid_listed) {
		leaked++;
		if (report)
			lm_it_fail("bpftool still lists a prog with pids entry %d", pid);
	}
	for (i = 0; i < n; i++) {
		if (id_in(before, nbefore, now[i]) || lm_it_bpf_prog_is_held(now[i], -1))
			continue;
		leaked++;
		if (report)
			lm_it_fail("BPF prog %u (lm_*) has no holder after lifemon pid %d exited",
				   now[i], pid);
	}
	return leaked;
}

static void check_port_taken(void)
{
	static const char *const words[] = {"18085", "127.0.0.1", NULL};
	static uint32_t before[IT_MAX_IDS];
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(IT_PORT_TAKEN)};
	char listen_arg[32];
	int64_t deadline;
	struct run r;
	size_t nbefore;
	int fd;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	LM_IT_ASSERT(fd >= 0, "socket: %s", strerror(errno));
	LM_IT_ASSERT(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 4) == 0,
		     "test setup: cannot take 127.0.0.1:%d: %s", IT_PORT_TAKEN, strerror(errno));

	nbefore = lm_prog_ids(before, IT_MAX_IDS, 0, NULL);
	snprintf(listen_arg, sizeof(listen_arg), "127.0.0.1:%d", IT_PORT_TAKEN);
	run_lifemon(&r, "--listen", listen_arg);
	close(fd);
	expect_one_line_error(&r, "port taken", words);

	/* Freeing a prog after its last fd closes can lag a little; poll before judging. */
	deadline = lm_it_now_ms() + 2000;
	while (leaked_progs(before, nbefore, r.pid, false) && lm_it_now_ms() < deadline)
		usleep(10000);
	leaked_progs(before, nbefore, r.pid, true);
	run_free(&r);
}

static void check_help_version(void)
{
	char buf[64];
	struct run r;

	run_lifemon(&r, "--help", NULL);
	LM_IT_EXPECT(!r.timed_out && WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0,
		     "--help: ended with %s, want exit 0",
		     lm_it_wstatus_str(r.status, buf, sizeof(buf)));
	LM_IT_EXPECT(strstr(r.out, "--listen") || strstr(r.err, "--listen"),
		     "--help output does not mention --listen: stdout \"%.300s\" stderr \"%.300s\"",
		     r.out, r.err);
	run_free(&r);

	run_lifemon(&r, "--version", NULL);
	LM_IT_EXPECT(!r.timed_out && WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0,
		     "--version: ended with %s, want exit 0",
		     lm_it_wstatus_str(r.status, buf, sizeof(buf)));
	LM_IT_EXPECT(r.out[0] || r.err[0], "--version printed nothing");
	lm_it_note("--version: %.*s", (int)strcspn(r.out[0] ? r.out : r.err, "\n"),
		   r.out[0] ? r.out : r.err);
	run_free(&r);
}

/* Runs as nobody through setpriv (or runuser): lifemon must refuse, naming root. */
static void check_not_root(void)
{
	static const char *const words[] = {"root", NULL};
	char listen_arg[32];
	char *argv[12];
	const char *setpriv = "/usr/bin/setpriv", *runuser = "/usr/sbin/runuser";
	struct run r;
	size_t n = 0, pre;

	if (access(setpriv, X_OK) == 0) {
		argv[n++] = (char *)setpriv;
		argv[n++] = "--reuid=65534";
		argv[n++] = "--regid=65534";
		argv[n++] = "--clear-groups";
		argv[n++] = "--";
	} else if (access(runuser, X_OK) == 0) {
		argv[n++] = (char *)runuser;
		argv[n++] = "-u";
		argv[n++] = "nobody";
		argv[n++] = "--";
	} else {
		lm_it_note("non-root case not run: neither setpriv nor runuser is installed");
		return;
	}
	pre = n;

	/* The build tree must be reachable by nobody, else there is nothing to test. */
	argv[n++] = "/bin/sh";
	argv[n++] = "-c";
	argv[n++] = "test -x \"$1\"";
	argv[n++] = "sh";
	argv[n++] = (char *)lm_it_bin();
	argv[n] = NULL;
	run_argv(argv, &r);
	if (r.timed_out || !WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0) {
		lm_it_note("non-root case not run: %s is not executable by uid 65534", lm_it_bin());
		run_free(&r);
		return;
	}
	run_free(&r);

	n = pre;
	snprintf(listen_arg, sizeof(listen_arg), "127.0.0.1:%d", IT_PORT);
	argv[n++] = (char *)lm_it_bin();
	argv[n++] = "--listen";
	argv[n++] = listen_arg;
	argv[n] = NULL;
	run_argv(argv, &r);
	expect_one_line_error(&r, "as uid 65534", words);
	run_free(&r);
}

static char out_dir[64];

static void out_dir_cleanup(void *arg)
{
	char path[96];

	(void)arg;
	if (!out_dir[0])
		return;
	snprintf(path, sizeof(path), "%s/events.jsonl", out_dir);
	unlink(path); /* only there if the test failed */
	rmdir(out_dir);
}

/*
 * Bad --output, --output-max-bytes/--output-keep without --output, an unknown --user, and
 * --user with an output directory it cannot write (SIGHUP reopen and rotation would fail
 * later): usage errors before anything is attached, and no file is created.
 */
static void check_output_user(void)
{
	static const char *const w_output[] = {"--output", NULL};
	static const char *const w_user[] = {"nosuchuser", NULL};
	static const char *const w_nobody[] = {"nobody", NULL};
	const char *const bad_dir[] = {"--output", "/nonexistent/dir/x", NULL};
	const char *const max_alone[] = {"--output-max-bytes", "1M", NULL};
	const char *const keep_alone[] = {"--output-keep", "3", NULL};
	const char *const no_user[] = {"--user", "nosuchuser", NULL};
	char path[96];
	const char *const nobody_dir[] = {"--user", "nobody", "--output", path, NULL};
	struct stat st;
	struct run r;

	run_lifemon_v(&r, bad_dir);
	expect_one_line_error(&r, "--output /nonexistent/dir/x", w_output);
	run_free(&r);
	run_lifemon_v(&r, max_alone);
	expect_one_line_error(&r, "--output-max-bytes without --output", w_output);
	run_free(&r);
	run_lifemon_v(&r, keep_alone);
	expect_one_line_error(&r, "--output-keep without --output", w_output);
	run_free(&r);
	run_lifemon_v(&r, no_user);
	expect_one_line_error(&r, "--user nosuchuser", w_user);
	run_free(&r);

	if (!getpwnam("nobody")) {
		lm_it_note("--user nobody case not run: no user nobody");
		return;
	}
	/* root's 0755 directory: nobody cannot create files in it */
	snprintf(out_dir, sizeof(out_dir), "/tmp/lifemon-it-cli-XXXXXX");
	LM_IT_ASSERT(mkdtemp(out_dir), "mkdtemp: %s", strerror(errno));
	lm_it_on_cleanup(out_dir_cleanup, NULL);
	LM_IT_ASSERT(!chmod(out_dir, 0755), "chmod %s: %s", out_dir, strerror(errno));
	snprintf(path, sizeof(path), "%s/events.jsonl", out_dir);
	run_lifemon_v(&r, nobody_dir);
	expect_one_line_error(&r, "--user nobody, output dir not writable by nobody", w_nobody);
	run_free(&r);
	LM_IT_EXPECT(stat(path, &st) != 0, "%s was created although lifemon refused to start",
		     path);
}

/*
 * The NATS options: each bad value, a --nats-* option without --nats, a --tail-* option
 * without --nats-tail, an unreadable creds or token file: exit 2, one line naming the
 * option, nothing attached. --nats-tail with no server answering: exit 1, one line.
 */
static void check_nats_options(void)
{
	static const char *const w_nats[] = {"--nats", NULL};
	static const char *const w_subject[] = {"--nats-subject", NULL};
	static const char *const w_replicas[] = {"--nats-replicas", NULL};
	static const char *const w_backlog[] = {"--nats-backlog-bytes", NULL};
	static const char *const w_creds[] = {"--nats-creds", NULL};
	static const char *const w_token[] = {"--nats-token-file", NULL};
	static const char *const w_tail[] = {"--nats-tail", NULL};
	static const char *const w_stream[] = {"--nats-stream", NULL};
	static const char *const w_connect[] = {"cannot connect", NULL};
	const char *const no_nats[] = {"--nats-subject", "a.b", NULL};
	const char *const bad_subject[] = {"--nats", "nats://127.0.0.1:1", "--nats-subject",
					   "lifemon.*", NULL};
	const char *const bad_replicas[] = {"--nats", "nats://127.0.0.1:1", "--nats-replicas",
					    "9", NULL};
	const char *const bad_backlog[] = {"--nats", "nats://127.0.0.1:1",
					   "--nats-backlog-bytes", "1K", NULL};
	const char *const bad_stream[] = {"--nats", "nats://127.0.0.1:1", "--nats-stream",
					  "a.b", NULL};
	const char *const bad_creds[] = {"--nats", "nats://127.0.0.1:1", "--nats-creds",
					 "/nonexistent/lifemon.creds", NULL};
	const char *const bad_token[] = {"--nats", "nats://127.0.0.1:1", "--nats-token-file",
					 "/nonexistent/lifemon.token", NULL};
	const char *const tail_alone[] = {"--tail-follow", NULL};
	const char *const tail_no_url[] = {"--nats-tail", NULL};
	const char *const tail_nobody[] = {"--nats-tail", "--nats", "nats://127.0.0.1:1", NULL};
	char buf[64];
	struct run r;

	run_lifemon_v(&r, no_nats);
	expect_one_line_error(&r, "--nats-subject without --nats", w_nats);
	run_free(&r);
	run_lifemon_v(&r, bad_subject);
	expect_one_line_error(&r, "--nats-subject lifemon.*", w_subject);
	run_free(&r);
	run_lifemon_v(&r, bad_replicas);
	expect_one_line_error(&r, "--nats-replicas 9", w_replicas);
	run_free(&r);
	run_lifemon_v(&r, bad_backlog);
	expect_one_line_error(&r, "--nats-backlog-bytes 1K", w_backlog);
	run_free(&r);
	run_lifemon_v(&r, bad_stream);
	expect_one_line_error(&r, "--nats-stream a.b", w_stream);
	run_free(&r);
	run_lifemon_v(&r, bad_creds);
	expect_one_line_error(&r, "--nats-creds /nonexistent", w_creds);
	run_free(&r);
	run_lifemon_v(&r, bad_token);
	expect_one_line_error(&r, "--nats-token-file /nonexistent", w_token);
	run_free(&r);
	run_lifemon_v(&r, tail_alone);
	expect_one_line_error(&r, "--tail-follow without --nats-tail", w_tail);
	run_free(&r);
	run_lifemon_v(&r, tail_no_url);
	expect_one_line_error(&r, "--nats-tail without --nats", w_nats);
	run_free(&r);
	run_lifemon_v(&r, tail_nobody);
	LM_IT_EXPECT(!r.timed_out && WIFEXITED(r.status) && WEXITSTATUS(r.status) == 1,
		     "--nats-tail, no server: ended with %s, want exit 1; stderr: %s",
		     lm_it_wstatus_str(r.status, buf, sizeof(buf)), r.err);
	LM_IT_EXPECT(count_lines(r.err) == 1 && strstr(r.err, w_connect[0]),
		     "--nats-tail, no server: want one line saying cannot connect: \"%s\"", r.err);
	run_free(&r);
}

int main(int argc, char **argv)
{
	lm_it_init("it_cli", argc, argv, 100);
	lm_it_require_env();
	lm_it_require_bpftool();

	check_bad_flag();
	check_bad_listen();
	check_bad_allow_host();
	check_port_taken();
	check_help_version();
	check_not_root();
	check_output_user();
	check_nats_options();
	return lm_it_finish();
}
