// SPDX-License-Identifier: GPL-2.0
/*
 * Integration test, per-client /ws filters (issue 10): one lifemon with --output, one /ws
 * client per filter form (each key alone, two keys ANDed, commas and a repeated key ORed) and
 * one without a filter, then real processes with unique arguments that each filter selects.
 * Every client must start with a HELLO naming the file's instance, receive exactly the events
 * of the file that its filter matches from its HELLO's next_seq on (all of the host's, checked
 * with the model in tests/it_proto.c, where exe= and args= also pass the EXIT of a process
 * whose EXEC they passed) and, of this test's processes, exactly the ones listed for it here. Every
 * bad query form must get HTTP 400 with its reason before any upgrade. Uses 127.0.0.1:18110;
 * creates cgroups under lm-it-filter-<pid> in the cgroup2 hierarchy (one named like a docker scope)
 * and removes them. Root only.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/it_proto.h"
#include "tests/it_util.h"

#define IT_PORT 18110
#define IT_NOBODY 65534
#define SYNC_MS 15000

extern char **environ;

static char tdir[128];	   /* our temp dir */
static char out_path[160]; /* lifemon --output */
static char base[48];	   /* marker prefix, "lmfl-<pid>" */
static char cg2_mnt[1024]; /* cgroup2 mount, "" if none */
static char cg_top[1100];  /* <cg2_mnt>/lm-it-filter-<pid>, "" until made */
static char cg_docker[1300], cg_plain[1300];
static char docker_hex[65];
static struct lm_it_proc *lm;

/* --- workload processes --- */

enum {
	W_PLAIN,
	W_COMM,
	W_EXE,
	W_PID,
	W_PPID_PARENT,
	W_PPID_C1,
	W_PPID_C2,
	W_UID,
	W_CONTAINER,
	W_CGROUP,
	W_FALSE,
	W_SIGNAL,
	W_ARGS,
	W_ARGS_NEG1,
	W_ARGS_NEG2,
	W_OR1,
	W_OR2,
	W_OR3,
	W_REP1,
	W_REP2,
	W_REP3,
	W_N
};

struct wproc {
	const char *name;
	char path[256]; /* exec'd program; "" for a child that only forks or raises */
	char arg1[160], arg2[160];
	char marker[160]; /* an argument only this process has ("" : none) */
	pid_t pid;
	bool execs;	  /* has an EXEC */
	bool nobody;	  /* drops to uid 65534 first */
	bool ppid_parent; /* forks W_PPID_C1 and W_PPID_C2 after its gate */
	int raise_sig;	  /* > 0: raise it instead of exec'ing */
	const char *cg;	  /* cgroup dir to join before exec'ing */
	int gate[2];	  /* EOF on gate[0] lets the child go on */
	bool live;	  /* forked and not reaped: cleanup kills it */
};

static struct wproc W[W_N];

static int child_main(void *arg)
{
	struct wproc *w = arg;
	char *argv[4];
	int null_fd = open("/dev/null", O_RDWR), i, st;
	char c;

	if (null_fd < 0 || dup2(null_fd, STDOUT_FILENO) < 0)
		return 120;
	/* the other children's gates too: each must see EOF when the test closes its end */
	for (i = 0; i < W_N; i++)
		if (W[i].gate[1] >= 0)
			close(W[i].gate[1]);
	while (read(w->gate[0], &c, 1) > 0)
		;
	if (w->raise_sig) {
		signal(w->raise_sig, SIG_DFL);
		raise(w->raise_sig);
		return 121;
	}
	if (w->ppid_parent) {
		for (i = W_PPID_C1; i <= W_PPID_C2; i++) {
			pid_t p = fork();

			if (p == 0) {
				char *av[] = { W[i].path, W[i].arg1, NULL };

				execve(W[i].path, av, environ);
				_exit(127);
			}
			if (p < 0 || waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st))
				return 123;
		}
		return 0;
	}
	if (w->nobody && (setgroups(0, NULL) < 0 || setresgid(IT_NOBODY, IT_NOBODY, IT_NOBODY) ||
			  setresuid(IT_NOBODY, IT_NOBODY, IT_NOBODY)))
		return 122;
	argv[0] = w->path;
	argv[1] = w->arg1[0] ? w->arg1 : NULL;
	argv[2] = w->arg2[0] ? w->arg2 : NULL;
	argv[3] = NULL;
	execve(w->path, argv, environ);
	return 127;
}

/* Forks the child, held at its gate (so its pid is known before it runs). */
static void w_fork(struct wproc *w)
{
	int err;

	LM_IT_ASSERT(pipe2(w->gate, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
	err = lm_it_fork_fn(child_main, w, &w->pid);
	LM_IT_ASSERT(!err, "%s: fork: %s", w->name, strerror(-err));
	w->live = true;
	close(w->gate[0]);
}

static int write_str(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) != (ssize_t)strlen(val))
		err = errno ? -errno : -EIO;
	close(fd);
	return err;
}

/* Lets the child go (after moving it into its cgroup) and wants its exit status. */
static void w_run(struct wproc *w)
{
	char buf[64], path[1400], val[32];
	int status, err;

	if (w->cg) {
		snprintf(path, sizeof(path), "%s/cgroup.procs", w->cg);
		snprintf(val, sizeof(val), "%d", w->pid);
		err = write_str(path, val);
		LM_IT_ASSERT(!err, "moving %d into %s: %s", w->pid, path, strerror(-err));
	}
	close(w->gate[1]);
	w->gate[1] = -1;
	err = lm_it_reap(w->pid, 10000, &status);
	LM_IT_ASSERT(!err, "%s: child %d did not finish", w->name, w->pid);
	w->live = false;
	if (w->raise_sig)
		LM_IT_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == w->raise_sig,
			     "test setup: %s ended with %s", w->name,
			     lm_it_wstatus_str(status, buf, sizeof(buf)));
	else if (w - W == W_FALSE)
		LM_IT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 1,
			     "test setup: %s ended with %s", w->name,
			     lm_it_wstatus_str(status, buf, sizeof(buf)));
	else
		LM_IT_ASSERT(WIFEXITED(status) && !WEXITSTATUS(status),
			     "test setup: %s ended with %s", w->name,
			     lm_it_wstatus_str(status, buf, sizeof(buf)));
}

static void w_set(int id, const char *name, const char *path, const char *arg1, const char *arg2)
{
	struct wproc *w = &W[id];

	w->gate[0] = w->gate[1] = -1;
	w->name = name;
	snprintf(w->path, sizeof(w->path), "%s", path);
	snprintf(w->arg1, sizeof(w->arg1), "%s", arg1 ? arg1 : "");
	snprintf(w->arg2, sizeof(w->arg2), "%s", arg2 ? arg2 : "");
	w->execs = path[0] != '\0';
	if (arg1 && strstr(arg1, base) == arg1)
		snprintf(w->marker, sizeof(w->marker), "%s", arg1);
}

/* --- clients --- */

#define EX 1 /* the EXEC */
#define XT 2 /* the EXIT */

struct want {
	int w;
	int mask;
};

struct client {
	char query[1024];
	struct want want[W_N]; /* this test's processes the filter selects; the rest must not */
	int nwant;
	struct lm_it_proto *s;
	struct lm_it_proto_filter *f;
	bool needs_cgroup;
};

#define MAX_CLIENTS 20
static struct client C[MAX_CLIENTS];
static int nclients;
static struct lm_it_proto *all; /* the unfiltered client */

static struct client *c_add(const char *query)
{
	struct client *c = &C[nclients++];

	LM_IT_ASSERT(nclients <= MAX_CLIENTS, "too many clients");
	snprintf(c->query, sizeof(c->query), "%s", query);
	return c;
}

static void c_want(struct client *c, int w, int mask)
{
	c->want[c->nwant].w = w;
	c->want[c->nwant].mask = mask;
	c->nwant++;
}

/* --- cgroups and files, removed at the end --- */

static void find_cg2(void)
{
	char line[2048], dev[256], mnt[1024], type[64];
	FILE *f = fopen("/proc/self/mounts", "re");

	LM_IT_ASSERT(f, "/proc/self/mounts: %s", strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%255s %1023s %63s", dev, mnt, type) == 3 &&
		    !strcmp(type, "cgroup2") && !cg2_mnt[0])
			snprintf(cg2_mnt, sizeof(cg2_mnt), "%s", mnt);
	fclose(f);
}

static void rmdir_wait(const char *dir)
{
	int64_t deadline = lm_it_now_ms() + 3000;

	if (!dir[0])
		return;
	/* EBUSY until the last task has left (an exit is asynchronous to the reap) */
	while (rmdir(dir) < 0 && errno == EBUSY && lm_it_now_ms() < deadline)
		usleep(5000);
	if (access(dir, F_OK) == 0)
		lm_it_note("could not remove %s: %s (left behind)", dir, strerror(errno));
}

static void cleanup(void *arg)
{
	char path[512];
	DIR *d;
	struct dirent *de;
	int i;

	(void)arg;
	for (i = 0; i < W_N; i++)
		if (W[i].live)
			lm_it_kill_reap(W[i].pid);
	rmdir_wait(cg_docker);
	rmdir_wait(cg_plain);
	rmdir_wait(cg_top);
	cg_docker[0] = cg_plain[0] = cg_top[0] = '\0';
	if (!tdir[0])
		return;
	d = opendir(tdir);
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", tdir, de->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(tdir);
	tdir[0] = '\0';
}

static void copy_exe(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY | O_CLOEXEC), out;
	ssize_t n;

	LM_IT_ASSERT(in >= 0, "%s: %s", from, strerror(errno));
	out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
	LM_IT_ASSERT(out >= 0, "%s: %s", to, strerror(errno));
	while ((n = read(in, buf, sizeof(buf))) > 0)
		LM_IT_ASSERT(write(out, buf, (size_t)n) == n, "write %s: %s", to, strerror(errno));
	close(in);
	close(out);
}

static void rand_hex(char *out, size_t n)
{
	unsigned char b[64];
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	size_t i;

	LM_IT_ASSERT(fd >= 0 && read(fd, b, n) == (ssize_t)n, "/dev/urandom: %s", strerror(errno));
	close(fd);
	for (i = 0; i < n; i++)
		out[i] = "0123456789abcdef"[b[i] & 15];
	out[n] = '\0';
}

/* --- bad queries --- */

struct bad {
	const char *query;
	const char *reason; /* the whole body, or with `prefix` its start */
	bool prefix;
};

static void check_bad(const char *query, const char *want, bool prefix)
{
	char target[8192], body[2048];
	int status = 0, err;
	size_t l;

	snprintf(target, sizeof(target), "/ws?%s", query);
	err = lm_it_proto_raw_upgrade(IT_PORT, target, 5000, &status, body, sizeof(body));
	l = strlen(body);
	while (l && (body[l - 1] == '\n' || body[l - 1] == '\r'))
		body[--l] = '\0';
	if (err || status != 400 ||
	    (prefix ? strncmp(body, want, strlen(want)) : strcmp(body, want))) {
		lm_it_fail("query \"%.120s%s\": %s, status %d, body \"%.200s\"; want 400 with %s "
			   "\"%s\" before any upgrade",
			   query, strlen(query) > 120 ? "..." : "",
			   err ? strerror(-err) : "answered", status, body,
			   prefix ? "a body starting" : "the body", want);
		return;
	}
}

static void bad_queries(const struct lm_it_proto_hello *h)
{
	static const struct bad cases[] = {
		{ "foo=1", "bad filter: unknown key 'foo'", false },
		{ "type=exec&foo=1", "bad filter: unknown key 'foo'", false },
		{ "pid=12x", "bad filter: pid: '12x' is not a number", false },
		{ "type=fork", "bad filter: type: 'fork' is not exec, exit or oom_kill", false },
		{ "exit=zero", "bad filter: exit: only exit=nonzero", false },
		{ "container=xyz", "bad filter: container: 'xyz' is not hex", false },
		{ "comm=", "bad filter: comm: empty value", false },
		{ "comm=a,,b", "bad filter: comm: empty value", false },
		{ "comm=a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", "bad filter: comm: more than 16 values",
		  false },
		{ "comm=a&comm=b&comm=c&comm=d&comm=e&comm=f&comm=g&comm=h&comm=i&comm=j&comm=k&"
		  "comm=l&comm=m&comm=n&comm=o&comm=p&comm=q",
		  "bad filter: comm: more than 16 values", false },
		{ "since=0", "bad since: '0' is not a seq (1 or more)", false },
		{ "instance=xyz", "bad instance: must be 16 hex digits", false },
		{ "instance=0123456789ABCDEG", "bad instance: must be 16 hex digits", false },
		{ "pid=4294967296", "bad filter: pid: ", true },
		{ "uid=-1", "bad filter: uid: ", true },
		{ "ppid=", "bad filter: ppid: empty value", false },
		{ "since=5x", "bad since: ", true },
		{ "type=exec&bogus", "bad filter", true },
	};
	char q[8192], want[128];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_bad(cases[i].query, cases[i].reason, cases[i].prefix);
	/* a value of 257 bytes, and one of 256 that is fine */
	snprintf(q, sizeof(q), "args=");
	memset(q + 5, 'a', 257);
	q[5 + 257] = '\0';
	check_bad(q, "bad filter: args: value longer than 256 bytes", false);
	/* 65 hex digits are more than a container id has */
	snprintf(q, sizeof(q), "container=%s0", docker_hex);
	check_bad(q, "bad filter: container: ", true);
	/*
	 * A query over 4096 bytes: the request is then over --max-header-bytes (4096) too, which
	 * libwebsockets refuses by closing the connection before lifemon sees it (as it_hostile
	 * accepts for oversized headers). Never an upgrade.
	 */
	snprintf(q, sizeof(q), "args=");
	for (i = 0; i < 16; i++) {
		memset(q + strlen(q), 'b', 255);
		q[5 + i * 256 + 255] = '\0';
		strcat(q, i < 15 ? "," : "");
	}
	strcat(q, "&comm=x");
	{
		int status = 0;
		char body[512];
		char target[8300];

		snprintf(target, sizeof(target), "/ws?%s", q);
		lm_it_proto_raw_upgrade(IT_PORT, target, 5000, &status, body, sizeof(body));
		LM_IT_EXPECT(
			status == 0 || (status >= 400 && status < 500),
			"a query of %zu bytes (over 4096): status %d \"%.100s\", want a 4xx or "
			"a closed connection, never an upgrade",
			strlen(q), status, body);
		lm_it_note("a query of %zu bytes: %s%d", strlen(q), status ? "status " : "closed, ",
			   status);
	}
	/*
	 * A malformed percent-escape: libwebsockets refuses it with 403 while it parses the
	 * request line, before lifemon sees the request (README, Filters on /ws). Never an
	 * upgrade. (filter.c has its own reason for it, for queries it decodes itself.)
	 */
	{
		int status = 0;
		char body[512];

		lm_it_proto_raw_upgrade(IT_PORT, "/ws?exe=%", 5000, &status, body, sizeof(body));
		LM_IT_EXPECT(status == 403, "query \"exe=%%\": status %d, want libwebsockets' 403",
			     status);
	}
	/* since ahead of next_seq, same instance */
	snprintf(q, sizeof(q), "since=%lld&instance=%s", h->next_seq + 1000000, h->instance);
	{
		char target[8300], body[512];
		long long n = -1;
		int status = 0;

		snprintf(target, sizeof(target), "/ws?%s", q);
		lm_it_proto_raw_upgrade(IT_PORT, target, 5000, &status, body, sizeof(body));
		body[strcspn(body, "\r\n")] = '\0';
		snprintf(want, sizeof(want), "bad since: ahead of next_seq ");
		LM_IT_EXPECT(status == 400 && !strncmp(body, want, strlen(want)) &&
				     sscanf(body + strlen(want), "%lld", &n) == 1 &&
				     n >= h->next_seq && n < h->next_seq + 1000000,
			     "%s: status %d \"%s\", want 400 \"bad since: ahead of next_seq N\" "
			     "with N from %lld on",
			     q, status, body, h->next_seq);
	}
	/* accepted: upper-case type, a 256-byte value, 16 values, an encoded glob */
	{
		static const char *const good[] = { "type=EXEC,Exit,OOM_KILL", "exit=nonzero",
						    "comm=%2A", "since=1", "container=ABCdef" };
		char target[8300];
		int status;

		for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
			char body[256];

			snprintf(target, sizeof(target), "/ws?%s", good[i]);
			lm_it_proto_raw_upgrade(IT_PORT, target, 5000, &status, body, sizeof(body));
			LM_IT_EXPECT(status == 101, "query \"%s\": status %d \"%.100s\", want 101",
				     good[i], status, body);
		}
		snprintf(q, sizeof(q), "args=");
		memset(q + 5, 'a', 256);
		q[5 + 256] = '\0';
		snprintf(target, sizeof(target), "/ws?%s", q);
		lm_it_proto_raw_upgrade(IT_PORT, target, 5000, &status, want, sizeof(want));
		LM_IT_EXPECT(status == 101, "a 256-byte args value: status %d, want 101", status);
		snprintf(q, sizeof(q), "pid=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16");
		snprintf(target, sizeof(target), "/ws?%s", q);
		lm_it_proto_raw_upgrade(IT_PORT, target, 5000, &status, want, sizeof(want));
		LM_IT_EXPECT(status == 101, "16 pid values: status %d, want 101", status);
	}
}

/* --- the check of one client against the file --- */

static const char *rec_str(const struct lm_it_proto_rec *r)
{
	static char buf[400];

	snprintf(buf, sizeof(buf),
		 "seq %lld %s pid %d ppid %d uid %lld comm %s exe %s args \"%.80s\"", r->seq,
		 r->type == 'E'	  ? "EXEC"
		 : r->type == 'X' ? "EXIT"
				  : "OOM_KILL",
		 r->pid, r->ppid, r->uid, r->comm ? r->comm : "-", r->exe ? r->exe : "-",
		 r->args ? r->args : "-");
	return buf;
}

static int w_of_pid(pid_t pid)
{
	int i;

	for (i = 0; i < W_N; i++)
		if (W[i].pid == pid)
			return i;
	return -1;
}

/*
 * What lifemon sends a client that starts at seq `from` with `query`: sel[seq - from] for the
 * file's seqs from..fhi (the model judges each event once, in order). Caller frees.
 */
static bool *judge_range(const char *query, long long from, const struct lm_it_proto_rec *frecs,
			 const long *fidx, long long flo, long long fhi)
{
	struct lm_it_proto_filter *f = NULL;
	long long seq;
	bool *sel;

	if (lm_it_proto_filter_parse(query, &f))
		return NULL;
	sel = calloc((size_t)(fhi >= from ? fhi - from + 1 : 1), sizeof(*sel));
	LM_IT_ASSERT(sel, "out of memory");
	for (seq = from; seq <= fhi; seq++) {
		long j = seq >= flo ? fidx[seq - flo] : -1;

		if (j >= 0)
			sel[seq - from] = lm_it_proto_filter_judge(f, &frecs[j]);
	}
	lm_it_proto_filter_free(f);
	return sel;
}

static void check_client(struct client *c, const struct lm_it_proto_rec *frecs, const long *fidx,
			 long long flo, long long fhi, const char *instance)
{
	const struct lm_it_proto_hello *h = lm_it_proto_hello(c->s);
	const struct lm_it_proto_rec *recs;
	int64_t deadline = lm_it_now_ms() + SYNC_MS;
	long long hi = 0, seq, prev = 0;
	unsigned int before = lm_it_failures(), bad = 0;
	int got[W_N] = { 0 }, i;
	bool *sel;
	size_t n, k;
	char who[1100];

	snprintf(who, sizeof(who), "client ?%s", c->query);
	if (!h->seen) {
		lm_it_fail("%s: no HELLO", who);
		return;
	}
	LM_IT_EXPECT(!strcmp(h->instance, instance), "%s: HELLO instance %s, the file's %s", who,
		     h->instance, instance);
	/*
	 * "filter": lifemon's canonical form of the query; it must select what the query
	 * selects, over every event of the file
	 */
	{
		bool *qa = judge_range(c->query, flo, frecs, fidx, flo, fhi);
		bool *qb = judge_range(h->filter, flo, frecs, fidx, flo, fhi);
		long long diff = 0;

		LM_IT_ASSERT(qa, "model: %s", c->query);
		if (!qb) {
			lm_it_fail("%s: HELLO filter \"%s\" does not parse", who, h->filter);
		} else {
			for (seq = flo; seq <= fhi; seq++)
				diff += qa[seq - flo] != qb[seq - flo];
			LM_IT_EXPECT(!diff && (c->query[0] || !h->filter[0]),
				     "%s: HELLO filter \"%s\" selects other events than the query "
				     "(%lld of the file's differ)",
				     who, h->filter, diff);
		}
		free(qa);
		free(qb);
	}
	sel = judge_range(c->query, h->next_seq, frecs, fidx, flo, fhi);
	LM_IT_ASSERT(sel, "model: %s", c->query);
	/* the last event of the file this filter selects, from the HELLO on */
	for (seq = h->next_seq; seq <= fhi; seq++)
		if (sel[seq - h->next_seq])
			hi = seq;
	LM_IT_ASSERT(hi, "%s: the file has no event this filter selects after seq %lld (test bug)",
		     who, h->next_seq);
	while (lm_it_proto_last_seq(c->s) < hi && lm_it_now_ms() < deadline)
		if (lm_it_proto_pump(c->s, 200) < 0)
			break;
	lm_it_proto_report(c->s, who);
	recs = lm_it_proto_recs(c->s, &n);
	for (k = 0; k < n; k++) {
		const struct lm_it_proto_rec *r = &recs[k];
		long j;

		if (r->kind != 'E') {
			lm_it_fail("%s: a LOST notice although nothing may be lost (reason %c, "
				   "seqs %lld..%lld)",
				   who, r->reason, r->first_seq, r->last_seq);
			continue;
		}
		if (r->seq <= prev) {
			lm_it_fail("%s: seq %lld after %lld", who, r->seq, prev);
			continue;
		}
		/* the seqs skipped since the previous event: none of them match */
		for (seq = prev ? prev + 1 : h->next_seq; seq < r->seq && seq <= fhi; seq++) {
			j = seq >= flo ? fidx[seq - flo] : -1;
			if (j >= 0 && sel[seq - h->next_seq] && bad++ < 5)
				lm_it_fail("%s: did not get %s, which the filter matches", who,
					   rec_str(&frecs[j]));
		}
		prev = r->seq;
		if (r->seq < h->next_seq) {
			lm_it_fail("%s: seq %lld from before HELLO's next_seq %lld", who, r->seq,
				   h->next_seq);
			continue;
		}
		j = r->seq >= flo && r->seq <= fhi ? fidx[r->seq - flo] : -1;
		if (j < 0) {
			if (r->seq <= fhi)
				lm_it_fail("%s: seq %lld is not in the file", who, r->seq);
			continue; /* after the file's snapshot */
		}
		if (frecs[j].type != r->type || frecs[j].pid != r->pid ||
		    strcmp(frecs[j].instance, r->instance))
			lm_it_fail("%s: seq %lld differs from the file's %s", who, r->seq,
				   rec_str(&frecs[j]));
		if (!sel[r->seq - h->next_seq] && bad++ < 5)
			lm_it_fail("%s: got %s, which the filter does not match", who,
				   rec_str(&frecs[j]));
		i = w_of_pid(r->pid);
		if (i >= 0 && frecs[j].ppid != getpid() && i != W_PPID_C1 && i != W_PPID_C2)
			i = -1; /* a reused pid, not ours */
		if (i >= 0)
			got[i] |= r->type == 'E' ? EX : r->type == 'X' ? XT : 4;
	}
	LM_IT_EXPECT(prev >= hi, "%s: the last event received is seq %lld, want up to %lld", who,
		     prev, hi);
	/* this test's processes: exactly the listed events */
	for (i = 0; i < W_N; i++) {
		int want = 0, k2;

		for (k2 = 0; k2 < c->nwant; k2++)
			if (c->want[k2].w == i)
				want = c->want[k2].mask;
		LM_IT_EXPECT(got[i] == want, "%s: %s (pid %d): got %s%s%s, want %s%s%s", who,
			     W[i].name, W[i].pid, got[i] & EX ? "EXEC " : "",
			     got[i] & XT ? "EXIT" : "", got[i] ? "" : "nothing",
			     want & EX ? "EXEC " : "", want & XT ? "EXIT" : "",
			     want ? "" : "nothing");
	}
	if (lm_it_failures() == before)
		lm_it_note("%s: HELLO next_seq %lld, %zu events up to seq %lld, as the file says",
			   who, h->next_seq, lm_it_proto_events(c->s), prev);
	free(sel);
}

/* --- main --- */

static void setup_workload(void)
{
	char p[300], a[160], b[160];
	int i;

	snprintf(p, sizeof(p), "%s/lmc%dq", tdir, getpid() % 10000000);
	LM_IT_ASSERT(symlink("/bin/true", p) == 0, "symlink %s: %s", p, strerror(errno));
	snprintf(a, sizeof(a), "%s-plain", base);
	w_set(W_PLAIN, "/bin/true (plain)", "/bin/true", a, NULL);
	snprintf(a, sizeof(a), "%s-comm", base);
	w_set(W_COMM, "a /bin/true symlink (comm)", p, a, NULL);
	snprintf(p, sizeof(p), "%s/lme-true", tdir);
	copy_exe("/bin/true", p);
	snprintf(a, sizeof(a), "%s-exe", base);
	w_set(W_EXE, "a copy of /bin/true (exe)", p, a, NULL);
	snprintf(a, sizeof(a), "%s-pid", base);
	w_set(W_PID, "/bin/true (pid)", "/bin/true", a, NULL);
	w_set(W_PPID_PARENT, "the ppid parent (no exec)", "", NULL, NULL);
	W[W_PPID_PARENT].ppid_parent = true;
	snprintf(a, sizeof(a), "%s-ppid1", base);
	w_set(W_PPID_C1, "ppid child 1", "/bin/true", a, NULL);
	snprintf(a, sizeof(a), "%s-ppid2", base);
	w_set(W_PPID_C2, "ppid child 2", "/bin/true", a, NULL);
	snprintf(a, sizeof(a), "%s-uid", base);
	w_set(W_UID, "/bin/true as uid 65534", "/bin/true", a, NULL);
	W[W_UID].nobody = true;
	snprintf(a, sizeof(a), "%s-container", base);
	w_set(W_CONTAINER, "/bin/true in a docker scope", "/bin/true", a, NULL);
	W[W_CONTAINER].cg = cg_docker[0] ? cg_docker : NULL;
	snprintf(a, sizeof(a), "%s-cgroup", base);
	w_set(W_CGROUP, "/bin/true in a plain cgroup", "/bin/true", a, NULL);
	W[W_CGROUP].cg = cg_plain[0] ? cg_plain : NULL;
	snprintf(a, sizeof(a), "%s-false", base);
	w_set(W_FALSE, "/bin/false", "/bin/false", a, NULL);
	w_set(W_SIGNAL, "a child killed by SIGTERM (no exec)", "", NULL, NULL);
	W[W_SIGNAL].raise_sig = SIGTERM;
	snprintf(a, sizeof(a), "%s-a1", base);
	snprintf(b, sizeof(b), "b2-%s", base);
	w_set(W_ARGS, "/bin/true A B (args)", "/bin/true", a, b);
	w_set(W_ARGS_NEG1, "/bin/true A", "/bin/true", a, NULL);
	W[W_ARGS_NEG1].marker[0] = '\0';
	w_set(W_ARGS_NEG2, "/bin/true B", "/bin/true", b, NULL);
	for (i = 0; i < 3; i++) {
		snprintf(a, sizeof(a), "%s-or%d", base, i + 1);
		w_set(W_OR1 + i,
		      i == 0   ? "or child 1"
		      : i == 1 ? "or child 2"
			       : "or child 3",
		      "/bin/true", a, NULL);
		snprintf(a, sizeof(a), "%s-rep%d", base, i + 1);
		w_set(W_REP1 + i,
		      i == 0   ? "rep child 1"
		      : i == 1 ? "rep child 2"
			       : "rep child 3",
		      "/bin/true", a, NULL);
	}
	for (i = 0; i < W_N; i++)
		if (i != W_PPID_C1 && i != W_PPID_C2)
			w_fork(&W[i]);
}

static void setup_clients(void)
{
	char q[1024], e1[300], e2[300];
	struct client *c;
	int i;

	c = c_add("type=exec");
	for (i = 0; i < W_N; i++)
		if (W[i].execs)
			c_want(c, i, EX);
	c = c_add("type=exit,oom_kill");
	for (i = 0; i < W_N; i++)
		c_want(c, i, XT);
	snprintf(q, sizeof(q), "comm=lm%%3F%dq", getpid() % 10000000);
	c = c_add(q);
	c_want(c, W_COMM, EX | XT);
	snprintf(q, sizeof(q), "exe=%s", lm_it_proto_qenc(tdir, e1, sizeof(e1)));
	snprintf(q + strlen(q), sizeof(q) - strlen(q), "/lme-%%2A");
	c = c_add(q);
	c_want(c, W_EXE, EX | XT); /* exe= follows the process to its EXIT */
	/* the other keys still apply to the EXIT that exe= lets through */
	snprintf(q, sizeof(q), "type=exit&exe=%s", lm_it_proto_qenc(tdir, e1, sizeof(e1)));
	snprintf(q + strlen(q), sizeof(q) - strlen(q), "/lme-%%2A");
	c = c_add(q);
	c_want(c, W_EXE, XT);
	snprintf(q, sizeof(q), "pid=%d", W[W_PID].pid);
	c = c_add(q);
	c_want(c, W_PID, EX | XT);
	snprintf(q, sizeof(q), "ppid=%d", W[W_PPID_PARENT].pid);
	c = c_add(q);
	c_want(c, W_PPID_C1, EX | XT);
	c_want(c, W_PPID_C2, EX | XT);
	c = c_add("uid=65534");
	c_want(c, W_UID, EX | XT);
	if (cg_docker[0]) {
		char pre[13];

		for (i = 0; i < 12; i++)
			pre[i] = (char)(docker_hex[i] >= 'a' ? docker_hex[i] - 32 : docker_hex[i]);
		pre[12] = '\0';
		snprintf(q, sizeof(q), "container=%s", pre);
		c = c_add(q);
		c_want(c, W_CONTAINER, EX | XT);
		c->needs_cgroup = true;
		snprintf(q, sizeof(q), "cgroup=/lm-it-filter-%d/plain-%%3F*", getpid());
		c = c_add(q);
		c_want(c, W_CGROUP, EX | XT);
		c->needs_cgroup = true;
	}
	c = c_add("exit=nonzero");
	c_want(c, W_FALSE, XT);
	c_want(c, W_SIGNAL, XT);
	snprintf(e1, sizeof(e1), "%s-a1 b2-%s", base, base);
	snprintf(q, sizeof(q), "args=%s", lm_it_proto_qenc(e1, e2, sizeof(e2)));
	c = c_add(q);
	c_want(c, W_ARGS, EX | XT);
	snprintf(q, sizeof(q), "type=exit&comm=lm%%3F%dq", getpid() % 10000000);
	c = c_add(q);
	c_want(c, W_COMM, XT);
	snprintf(q, sizeof(q), "pid=%d,%d", W[W_OR1].pid, W[W_OR2].pid);
	c = c_add(q);
	c_want(c, W_OR1, EX | XT);
	c_want(c, W_OR2, EX | XT);
	snprintf(q, sizeof(q), "args=%s-rep1&args=%s-rep2", base, base);
	c = c_add(q);
	c_want(c, W_REP1, EX | XT);
	c_want(c, W_REP2, EX | XT);
	c = c_add("type=EXEC&uid=65534");
	c_want(c, W_UID, EX);

	for (i = 0; i < nclients; i++) {
		struct lm_it_proto_opts o = { .port = IT_PORT,
					      .query = C[i].query,
					      .keep_fields = true };
		int status = 0, err;

		err = lm_it_proto_filter_parse(C[i].query, &C[i].f);
		LM_IT_ASSERT(!err, "model: cannot parse %s", C[i].query);
		err = lm_it_proto_open(&o, &C[i].s, &status);
		LM_IT_ASSERT(!err, "client ?%s: %s (status %d)", C[i].query, strerror(-err),
			     status);
	}
	/* each has its HELLO before the workload runs */
	for (i = 0; i < nclients; i++) {
		int64_t deadline = lm_it_now_ms() + 5000;

		while (!lm_it_proto_hello(C[i].s)->seen && lm_it_now_ms() < deadline)
			if (lm_it_proto_pump(C[i].s, 100) < 0)
				break;
		LM_IT_ASSERT(lm_it_proto_hello(C[i].s)->seen, "client ?%s: no HELLO within 5 s",
			     C[i].query);
	}
}

static void clients_cleanup(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < nclients; i++) {
		lm_it_proto_close(C[i].s);
		lm_it_proto_filter_free(C[i].f);
		C[i].s = NULL;
		C[i].f = NULL;
	}
	lm_it_proto_close(all);
	all = NULL;
}

/* Runs /bin/true <base>-end; returns once `all` has its EXIT. */
static void sync_end(void)
{
	char a[160], *argv[] = { "/bin/true", a, NULL };
	int64_t deadline = lm_it_now_ms() + SYNC_MS;
	const struct lm_it_proto_rec *recs;
	size_t n, k = 0;
	int status, err;
	pid_t pid;

	snprintf(a, sizeof(a), "%s-end", base);
	err = lm_it_spawn(argv, -1, -1, &pid);
	LM_IT_ASSERT(!err, "spawn: %s", strerror(-err));
	LM_IT_ASSERT(!lm_it_reap(pid, 10000, &status), "end marker did not finish");
	while (lm_it_now_ms() < deadline) {
		recs = lm_it_proto_recs(all, &n);
		for (; k < n; k++)
			if (recs[k].kind == 'E' && recs[k].type == 'X' && recs[k].pid == pid)
				return;
		if (lm_it_proto_pump(all, 200) < 0)
			break;
	}
	lm_it_fatal("the unfiltered client did not get the end marker's EXIT within %d ms",
		    SYNC_MS);
}

int main(int argc, char **argv)
{
	const char *extra[] = { "--output", out_path, NULL };
	struct lm_it_proto_opts o = { .port = IT_PORT, .keep_fields = true };
	struct lm_it_proto_rec *frecs = NULL;
	const struct lm_it_proto_hello *h;
	char buf[64], instance[17] = "";
	long long flo, fhi, seq;
	size_t nf = 0, i;
	long *fidx;
	int err, status = 0, k;
	int64_t ms;

	lm_it_init("it_filter", argc, argv, 100);
	lm_it_require_env();
	snprintf(base, sizeof(base), "lmfl-%d", getpid());
	snprintf(tdir, sizeof(tdir), "/tmp/lm-it-filter.XXXXXX");
	LM_IT_ASSERT(mkdtemp(tdir), "mkdtemp: %s", strerror(errno));
	LM_IT_ASSERT(chmod(tdir, 0755) == 0, "chmod %s: %s", tdir, strerror(errno));
	snprintf(out_path, sizeof(out_path), "%s/events.jsonl", tdir);
	lm_it_on_cleanup(cleanup, NULL);
	find_cg2();
	if (cg2_mnt[0]) {
		rand_hex(docker_hex, 64);
		snprintf(cg_top, sizeof(cg_top), "%s/lm-it-filter-%d", cg2_mnt, getpid());
		snprintf(cg_docker, sizeof(cg_docker), "%s/docker-%s.scope", cg_top, docker_hex);
		snprintf(cg_plain, sizeof(cg_plain), "%s/plain-%d", cg_top, getpid());
		LM_IT_ASSERT(mkdir(cg_top, 0755) == 0, "mkdir %s: %s", cg_top, strerror(errno));
		LM_IT_ASSERT(mkdir(cg_docker, 0755) == 0, "mkdir %s: %s", cg_docker,
			     strerror(errno));
		LM_IT_ASSERT(mkdir(cg_plain, 0755) == 0, "mkdir %s: %s", cg_plain, strerror(errno));
	} else {
		if (getenv("CI") && !strcmp(getenv("CI"), "true"))
			lm_it_fail("the container and cgroup filters need a cgroup2 mount");
		lm_it_note("container= and cgroup= NOT RUN: no cgroup2 mount");
	}

	err = lm_it_lifemon_start(IT_PORT, extra, false, &lm);
	LM_IT_ASSERT(!err, "lifemon did not become healthy: %s", strerror(-err));
	err = lm_it_proto_open(&o, &all, &status);
	LM_IT_ASSERT(!err, "unfiltered client: %s (status %d)", strerror(-err), status);
	lm_it_on_cleanup(clients_cleanup, NULL);
	while (!lm_it_proto_hello(all)->seen)
		LM_IT_ASSERT(lm_it_proto_pump(all, 5000) > 0, "unfiltered client: no HELLO");
	h = lm_it_proto_hello(all);
	lm_it_note("HELLO: instance %s version %s first_seq %lld next_seq %lld filter \"%s\"",
		   h->instance, h->version, h->first_seq, h->next_seq, h->filter);
	LM_IT_EXPECT(!strcmp(h->filter, ""), "unfiltered client: HELLO filter \"%s\", want \"\"",
		     h->filter);

	bad_queries(h);

	setup_workload();
	setup_clients();
	for (k = 0; k < W_N; k++)
		if (k != W_PPID_C1 && k != W_PPID_C2)
			w_run(&W[k]);
	sync_end();

	/* the file now holds every event up to the end marker (the file is written first) */
	{
		int64_t deadline = lm_it_now_ms() + SYNC_MS;
		long long last = lm_it_proto_last_seq(all);

		for (;;) {
			err = lm_it_proto_load_file(out_path, true, &frecs, &nf);
			LM_IT_ASSERT(!err, "%s: %s", out_path, strerror(-err));
			fidx = lm_it_proto_seq_index(frecs, nf, &flo, &fhi);
			LM_IT_ASSERT(fidx, "out of memory");
			if (fhi >= last || lm_it_now_ms() >= deadline)
				break;
			free(fidx);
			lm_it_proto_recs_free(frecs, nf);
			usleep(50000);
		}
		LM_IT_ASSERT(fhi >= last, "the file ends at seq %lld, the stream is at %lld", fhi,
			     last);
	}
	for (i = 0; i < nf; i++)
		if (frecs[i].kind == 'E') {
			snprintf(instance, sizeof(instance), "%s", frecs[i].instance);
			break;
		}
	for (i = 0; i < nf; i++)
		if (frecs[i].kind == 'E' && strcmp(frecs[i].instance, instance))
			lm_it_fail("file: seq %lld has instance %s, the first event %s",
				   frecs[i].seq, frecs[i].instance, instance);
	for (seq = flo; seq <= fhi; seq++)
		if (fidx[seq - flo] < 0)
			lm_it_fail("file: seq %lld missing", seq);
	LM_IT_EXPECT(flo == 1, "file: the first seq is %lld, want 1", flo);
	/* the ppid parent's children, found by their marker */
	for (i = 0; i < nf; i++)
		for (k = W_PPID_C1; k <= W_PPID_C2; k++)
			if (frecs[i].kind == 'E' && frecs[i].type == 'E' && frecs[i].args &&
			    strstr(frecs[i].args, W[k].arg1) &&
			    frecs[i].ppid == W[W_PPID_PARENT].pid)
				W[k].pid = frecs[i].pid;
	LM_IT_EXPECT(W[W_PPID_C1].pid > 0 && W[W_PPID_C2].pid > 0,
		     "file: the ppid parent's children are missing");

	/* the unfiltered client: every seq of the file from its HELLO on */
	{
		struct client c0 = { .s = all };

		snprintf(c0.query, sizeof(c0.query), "%s", "");
		err = lm_it_proto_filter_parse("", &c0.f);
		LM_IT_ASSERT(!err, "model: empty filter");
		for (k = 0; k < W_N; k++)
			c_want(&c0, k, (W[k].execs ? EX : 0) | XT);
		check_client(&c0, frecs, fidx, flo, fhi, instance);
		lm_it_proto_filter_free(c0.f);
	}
	for (k = 0; k < nclients; k++)
		check_client(&C[k], frecs, fidx, flo, fhi, instance);

	free(fidx);
	lm_it_proto_recs_free(frecs, nf);
	clients_cleanup(NULL);
	err = lm_it_proc_stop(lm, SIGTERM, LM_IT_STOP_MS, &status, &ms);
	LM_IT_EXPECT(!err && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		     "lifemon did not exit 0 within %d ms of SIGTERM: %s", LM_IT_STOP_MS,
		     lm_it_wstatus_str(status, buf, sizeof(buf)));
	if (lm_it_failures())
		lm_it_proc_dump_stderr(lm, "it_filter");
	lm_it_proc_free(lm);
	return lm_it_finish();
}
