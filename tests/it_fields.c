// SPDX-License-Identifier: GPL-2.0
/*
 * Integration test: the fields of issue 9 (key, parent_key, cgroup, container, args, exe, cwd,
 * ids, pcomm, duration, CPU, peak RSS, OOM details) on real processes against the real kernel,
 * read back from lifemon's --output JSON Lines file. Every process is found by a unique marker
 * (an argument or a program path holding this test's pid). Uses 127.0.0.1:18107 and 18108;
 * creates cgroups under "lm-it-fields" in the v2 and v1 memory hierarchies and removes them.
 * Root only.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/it_util.h"

#define IT_PORT 18107
#define IT_PORT2 18108
#define IT_CG_BASE "lm-it-fields"
#define IT_NOBODY 65534
#define IT_BIG_ARG_BYTES (100 * 1024)
#define IT_MANY_ARGS 5000 /* after argv[0]: argc is 5001 */
#define IT_BURN_CPU_NS (320LL * 1000000)
#define IT_BURN_BYTES ((size_t)200 << 20)
#define IT_OOM_LIMIT "33554432" /* 32 MiB */
#define IT_OOM_STEP ((size_t)1 << 20)
#define IT_OOM_CAP_STEPS 512 /* the victim never touches more than 512 MiB */
#define IT_OOM_ADJ 500
#define IT_OOM_COMM "lm-fields-oom"
#define IT_MS 1000000LL

extern char **environ;

static char self_exe[PATH_MAX]; /* realpath of this binary, exec'd in the helper modes */
static char tdir[PATH_MAX];	/* our temp dir, "" until made */
static char base[64];		/* marker prefix, "lmf-<pid>" */
static char my_comm[32];
static long long my_ticks;    /* this test's start time in clock ticks (/proc/self/stat 22) */
static long long tick_ns;     /* ns per clock tick */
static struct lm_it_proc *lm; /* the lifemon instance running */
static bool lm_stopped;	      /* lm is SIGSTOPped */

/* --- small utilities --- */

static void hex_of(const char *b, size_t len, char *out)
{
	size_t i;

	for (i = 0; i < len; i++)
		sprintf(out + 2 * i, "%02x", (unsigned char)b[i]);
	out[2 * len] = '\0';
}

static void rand_hex(char *out, size_t n)
{
	unsigned char b[64];
	size_t i;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	LM_IT_ASSERT(fd >= 0 && read(fd, b, n) == (ssize_t)n, "/dev/urandom: %s", strerror(errno));
	close(fd);
	for (i = 0; i < n; i++)
		out[i] = "0123456789abcdef"[b[i] & 15];
	out[n] = '\0';
}

static int write_file(const char *path, const char *val)
{
	size_t len = strlen(val);
	ssize_t n;
	int fd, err = 0;

	fd = open(path, O_WRONLY | O_CLOEXEC);
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

static int copy_file(const char *from, const char *to, mode_t mode)
{
	char buf[65536];
	int in = -1, out = -1, err = 0;
	ssize_t n;

	in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
	if (out < 0) {
		err = -errno;
		goto out;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		if (write(out, buf, (size_t)n) != n) {
			err = -EIO;
			goto out;
		}
	}
	if (n < 0)
		err = -errno;
	else if (fchmod(out, mode) < 0) /* after chown-free creation: root owns it */
		err = -errno;
out:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return err;
}

/* Field 22 (starttime, clock ticks since boot) of /proc/<pid>/stat, or -1. */
static long long stat_start_ticks(pid_t pid)
{
	char path[64], buf[2048], *p, *save = NULL, *tok;
	ssize_t n;
	int fd, field;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p)
		return -1;
	for (field = 3, tok = strtok_r(p + 1, " ", &save); tok;
	     field++, tok = strtok_r(NULL, " ", &save))
		if (field == 22)
			return strtoll(tok, NULL, 10);
	return -1;
}

/* "PID:START_NS", strictly. */
static bool parse_key(const char *s, long long *pid, long long *start)
{
	char *end;

	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	*pid = strtoll(s, &end, 10);
	if (errno || *end != ':' || end[1] < '0' || end[1] > '9')
		return false;
	*start = strtoll(end + 1, &end, 10);
	return !errno && !*end;
}

/* --- expectations: each failure names the event, the field, what we want and what we got --- */

/* Compact JSON of member `field` of ev ("absent" if missing), at most 300 bytes; 4 buffers. */
static const char *got(const json_t *ev, const char *field)
{
	static char bufs[4][400];
	static unsigned int k;
	char *b = bufs[k++ % 4], *s;
	const json_t *v = json_object_get(ev, field);

	if (!v)
		return "absent";
	s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (s && strlen(s) > 300)
		snprintf(b, sizeof(bufs[0]), "%.300s... (%zu bytes)", s, strlen(s));
	else
		snprintf(b, sizeof(bufs[0]), "%s", s ? s : "(unprintable)");
	free(s);
	return b;
}

/* JSON text of a want string (valid UTF-8), at most 300 bytes. */
static const char *wantq(const char *s)
{
	static char bufs[2][400];
	static unsigned int k;
	char *b = bufs[k++ % 2], *d;
	json_t *j = json_string(s);

	d = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
	snprintf(b, sizeof(bufs[0]), "%.300s", d ? d : "(invalid utf-8)");
	free(d);
	json_decref(j);
	return b;
}

static bool jstr_is(const json_t *v, const char *want, size_t len)
{
	return json_is_string(v) && json_string_length(v) == len &&
	       !memcmp(json_string_value(v), want, len);
}

static void want_str(const json_t *ev, const char *what, const char *field, const char *want)
{
	if (!jstr_is(json_object_get(ev, field), want, strlen(want)))
		lm_it_fail("%s: \"%s\": want %s, got %s", what, field, wantq(want), got(ev, field));
}

static void want_int(const json_t *ev, const char *what, const char *field, long long want)
{
	const json_t *v = json_object_get(ev, field);

	if (!json_is_integer(v) || json_integer_value(v) != want)
		lm_it_fail("%s: \"%s\": want %lld, got %s", what, field, want, got(ev, field));
}

static void want_range(const json_t *ev, const char *what, const char *field, long long lo,
		       long long hi)
{
	const json_t *v = json_object_get(ev, field);

	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
		lm_it_fail("%s: \"%s\": want an integer in [%lld, %lld], got %s", what, field, lo,
			   hi, got(ev, field));
}

static void want_bool(const json_t *ev, const char *what, const char *field, bool want)
{
	const json_t *v = json_object_get(ev, field);

	if (!json_is_boolean(v) || json_is_true(v) != want)
		lm_it_fail("%s: \"%s\": want %s, got %s", what, field, want ? "true" : "false",
			   got(ev, field));
}

static void want_absent(const json_t *ev, const char *what, const char *field)
{
	if (json_object_get(ev, field))
		lm_it_fail("%s: \"%s\": want absent, got %s", what, field, got(ev, field));
}

/* The string `field` equals `want`, or is absent when want is NULL. */
static void want_str_or_absent(const json_t *ev, const char *what, const char *field,
			       const char *want)
{
	if (want)
		want_str(ev, what, field, want);
	else
		want_absent(ev, what, field);
}

/* `field` is a key "PID:START_NS" with PID == pid and START_NS / tick_ns == ticks. */
static void want_key(const json_t *ev, const char *what, const char *field, pid_t pid,
		     long long ticks)
{
	long long kp, ks;

	if (!parse_key(lm_it_jstr(ev, field), &kp, &ks)) {
		lm_it_fail("%s: \"%s\": want \"%d:<start ns>\" (start ns / %lld == %lld), got %s",
			   what, field, pid, tick_ns, ticks, got(ev, field));
		return;
	}
	if (kp != pid || ks / tick_ns != ticks)
		lm_it_fail("%s: \"%s\": want pid %d and start ns / %lld == %lld (field 22 of "
			   "/proc/%d/stat), got %s (pid %lld, start ns / %lld == %lld)",
			   what, field, pid, tick_ns, ticks, pid, got(ev, field), kp, tick_ns,
			   ks / tick_ns);
}

/* Two events' string fields are equal (both present). */
static void want_same(const json_t *a, const char *fa, const json_t *b, const char *fb,
		      const char *what)
{
	const char *x = lm_it_jstr(a, fa), *y = lm_it_jstr(b, fb);

	if (!x || !y || strcmp(x, y))
		lm_it_fail("%s: \"%s\" %s should equal \"%s\" %s", what, fa, got(a, fa), fb,
			   got(b, fb));
}

/* Every EXEC carries these; `truncated` is absent unless the case expects a cut. */
static void check_exec_shape(const json_t *ev, const char *what, bool cut_ok)
{
	static const char *const strs[] = { "key", "parent_key", "cgroup", "filename",
					    "exe", "cwd",	 "pcomm" };
	static const char *const ints[] = { "cgroup_id", "argc", "gid", "euid" };
	long long p, s;
	size_t i;

	for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		if (!json_is_string(json_object_get(ev, strs[i])))
			lm_it_fail("%s: \"%s\": want a string, got %s", what, strs[i],
				   got(ev, strs[i]));
	for (i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
		if (!json_is_integer(json_object_get(ev, ints[i])))
			lm_it_fail("%s: \"%s\": want an integer, got %s", what, ints[i],
				   got(ev, ints[i]));
	if (!json_is_array(json_object_get(ev, "args")))
		lm_it_fail("%s: \"args\": want an array, got %s", what, got(ev, "args"));
	if (json_array_size(json_object_get(ev, "args")) > (size_t)lm_it_jint(ev, "argc", 0))
		lm_it_fail("%s: \"args\" has %zu entries, more than \"argc\" %s", what,
			   json_array_size(json_object_get(ev, "args")), got(ev, "argc"));
	if (!parse_key(lm_it_jstr(ev, "key"), &p, &s) || p != lm_it_jint(ev, "pid", -1))
		lm_it_fail("%s: \"key\": want \"<pid %lld>:<start ns>\", got %s", what,
			   lm_it_jint(ev, "pid", -1), got(ev, "key"));
	if (!parse_key(lm_it_jstr(ev, "parent_key"), &p, &s) || p != lm_it_jint(ev, "ppid", -1))
		lm_it_fail("%s: \"parent_key\": want \"<ppid %lld>:<start ns>\", got %s", what,
			   lm_it_jint(ev, "ppid", -1), got(ev, "parent_key"));
	if (!cut_ok)
		want_absent(ev, what, "truncated");
}

/* Every EXIT carries these; oom_killed is false unless `oom`. */
static void check_exit_shape(const json_t *ev, const char *what, bool oom)
{
	static const char *const ints[] = { "duration_ns", "cpu_user_ns", "cpu_sys_ns",
					    "max_rss_kb", "cgroup_id" };
	long long p, s;
	size_t i;

	for (i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
		want_range(ev, what, ints[i], 0, LLONG_MAX);
	if (!parse_key(lm_it_jstr(ev, "key"), &p, &s) || p != lm_it_jint(ev, "pid", -1))
		lm_it_fail("%s: \"key\": want \"<pid %lld>:<start ns>\", got %s", what,
			   lm_it_jint(ev, "pid", -1), got(ev, "key"));
	if (!parse_key(lm_it_jstr(ev, "parent_key"), &p, &s))
		lm_it_fail("%s: \"parent_key\": want \"<pid>:<start ns>\", got %s", what,
			   got(ev, "parent_key"));
	if (!json_is_string(json_object_get(ev, "cgroup")))
		lm_it_fail("%s: \"cgroup\": want a string, got %s", what, got(ev, "cgroup"));
	want_bool(ev, what, "oom_killed", oom);
}

/* --- lifemon's --output file, read as it grows --- */

struct tail {
	int fd;
	char *buf; /* bytes read but not yet parsed (an unfinished line) */
	size_t len, cap;
	json_t *events; /* every event line, in file order */
	long long last_seq;
	unsigned int lines;
};

static struct tail tl = { .fd = -1 };

static void tail_reset(void)
{
	if (tl.fd >= 0)
		close(tl.fd);
	free(tl.buf);
	json_decref(tl.events);
	memset(&tl, 0, sizeof(tl));
	tl.fd = -1;
}

static void tail_line(const char *s, size_t len)
{
	json_error_t jerr;
	char why[160];
	json_t *ev;

	tl.lines++;
	ev = json_loadb(s, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!ev || !json_is_object(ev)) {
		lm_it_fail("--output line %u is not a strict JSON object (%s): %.200s", tl.lines,
			   ev ? "not an object" : jerr.text, s);
		json_decref(ev);
		return;
	}
	if (lm_it_jstr(ev, "type") && !strcmp(lm_it_jstr(ev, "type"), "LOST")) {
		lm_it_fail("--output line %u: loss notice, no loss expected: %s", tl.lines,
			   lm_it_jdump(ev));
		json_decref(ev);
		return;
	}
	if (!lm_it_event_is_valid(ev, why, sizeof(why)))
		lm_it_fail("--output line %u: %s: %s", tl.lines, why, lm_it_jdump(ev));
	if (tl.last_seq && lm_it_jint(ev, "seq", 0) != tl.last_seq + 1)
		lm_it_fail("--output line %u: seq %lld after %lld", tl.lines,
			   lm_it_jint(ev, "seq", 0), tl.last_seq);
	tl.last_seq = lm_it_jint(ev, "seq", 0);
	json_array_append_new(tl.events, ev);
}

/* Reads what lifemon has written so far and parses the whole lines. */
static void tail_pump(void)
{
	char *nl, *p;
	ssize_t n;

	for (;;) {
		if (tl.cap - tl.len < 65536) {
			tl.cap = tl.cap ? tl.cap * 2 : 1 << 20;
			tl.buf = realloc(tl.buf, tl.cap);
			LM_IT_ASSERT(tl.buf, "out of memory reading --output");
		}
		n = read(tl.fd, tl.buf + tl.len, tl.cap - tl.len);
		if (n < 0 && errno == EINTR)
			continue;
		LM_IT_ASSERT(n >= 0, "reading --output: %s", strerror(errno));
		if (n == 0)
			break;
		tl.len += (size_t)n;
	}
	p = tl.buf;
	while ((nl = memchr(p, '\n', tl.len - (size_t)(p - tl.buf)))) {
		tail_line(p, (size_t)(nl - p));
		p = nl + 1;
	}
	tl.len -= (size_t)(p - tl.buf);
	memmove(tl.buf, p, tl.len);
}

static void tail_open(const char *path)
{
	tail_reset();
	tl.events = json_array();
	tl.fd = open(path, O_RDONLY | O_CLOEXEC);
	LM_IT_ASSERT(tl.fd >= 0, "open --output %s: %s", path, strerror(errno));
}

/* First event matching pred, reading more until timeout_ms. Owned by the tail. */
static const json_t *tail_wait(lm_it_pred_fn pred, const void *arg, int timeout_ms)
{
	int64_t deadline = lm_it_now_ms() + timeout_ms;
	size_t i = 0;

	for (;;) {
		tail_pump();
		for (; i < json_array_size(tl.events); i++)
			if (pred(json_array_get(tl.events, i), arg))
				return json_array_get(tl.events, i);
		if (lm_it_now_ms() >= deadline)
			return NULL;
		usleep(10 * 1000);
	}
}

static bool is_type(const json_t *ev, const char *type)
{
	const char *t = lm_it_jstr(ev, "type");

	return t && !strcmp(t, type);
}

/* An EXEC whose args hold `arg` (a marker) as one whole argument. */
static bool pred_exec_arg(const json_t *ev, const void *arg)
{
	const json_t *args = json_object_get(ev, "args");
	size_t i;

	if (!is_type(ev, "EXEC"))
		return false;
	for (i = 0; i < json_array_size(args); i++)
		if (jstr_is(json_array_get(args, i), arg, strlen(arg)))
			return true;
	return false;
}

static bool pred_exec_filename(const json_t *ev, const void *arg)
{
	return is_type(ev, "EXEC") && jstr_is(json_object_get(ev, "filename"), arg, strlen(arg));
}

struct pid_since {
	const char *type;
	pid_t pid;
	long long since_ns; /* event timestamp at or after this (pid reuse before it) */
};

static bool pred_pid_since(const json_t *ev, const void *arg)
{
	const struct pid_since *m = arg;

	return is_type(ev, m->type) && lm_it_jint(ev, "pid", -1) == m->pid &&
	       lm_it_jint(ev, "timestamp", 0) >= m->since_ns;
}

static const json_t *wait_exec_arg(const char *marker, const char *what)
{
	const json_t *ev = tail_wait(pred_exec_arg, marker, LM_IT_EVENT_MS);

	LM_IT_EXPECT(ev, "%s: no EXEC with the argument \"%s\" in --output within %d ms", what,
		     marker, LM_IT_EVENT_MS);
	return ev;
}

/* The EXIT of the process of `exec` (same pid, not before it). */
static const json_t *wait_exit_of(const json_t *exec, const char *what)
{
	struct pid_since m = { .type = "EXIT",
			       .pid = (pid_t)lm_it_jint(exec, "pid", -1),
			       .since_ns = lm_it_jint(exec, "timestamp", 0) };
	const json_t *ev = tail_wait(pred_pid_since, &m, LM_IT_EVENT_MS);

	LM_IT_EXPECT(ev, "%s: no EXIT for pid %d in --output within %d ms", what, m.pid,
		     LM_IT_EVENT_MS);
	return ev;
}

/* Prints the whole event once after a case that failed on it. */
static void dump_if_failed(unsigned int before, const json_t *ev, const char *what)
{
	char *s;

	if (lm_it_failures() == before || !ev)
		return;
	s = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS);
	lm_it_note("%s was: %.1500s%s", what, s ? s : "?", s && strlen(s) > 1500 ? "..." : "");
	free(s);
}

/* --- cgroups: ours live under IT_CG_BASE in each hierarchy and are removed right after use --- */

static char cg2_mnt[PATH_MAX];	 /* cgroup2 mount, "" if none */
static char v1mem_mnt[PATH_MAX]; /* v1 memory controller mount, "" if none */
static char my_cg2[PATH_MAX];	 /* this test's cgroup v2 path ("/" ...), "" if unknown */
static char my_v1mem[PATH_MAX];	 /* this test's v1 memory path, "" if none */
static pid_t case_pid = -1;	 /* a child that may sit in one of our cgroups */

static void find_cgroup_mounts(void)
{
	char line[2048], dev[256], mnt[1024], type[64], opts[1024], *tok, *save;
	FILE *f = fopen("/proc/self/mounts", "re");

	LM_IT_ASSERT(f, "/proc/self/mounts: %s", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%255s %1023s %63s %1023s", dev, mnt, type, opts) != 4)
			continue;
		if (!strcmp(type, "cgroup2") && !cg2_mnt[0])
			snprintf(cg2_mnt, sizeof(cg2_mnt), "%s", mnt);
		if (strcmp(type, "cgroup") || v1mem_mnt[0])
			continue;
		save = NULL;
		for (tok = strtok_r(opts, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
			if (!strcmp(tok, "memory"))
				snprintf(v1mem_mnt, sizeof(v1mem_mnt), "%s", mnt);
	}
	fclose(f);
	f = fopen("/proc/self/cgroup", "re");
	LM_IT_ASSERT(f, "/proc/self/cgroup: %s", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

		if (!c2)
			continue;
		c2[strcspn(c2, "\n")] = '\0';
		*c2 = '\0';
		if (!strcmp(line, "0:") && c2 == c1 + 1) /* "0::PATH": the unified hierarchy */
			snprintf(my_cg2, sizeof(my_cg2), "%s", c2 + 1);
		save = NULL;
		for (tok = strtok_r(c1 + 1, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
			if (!strcmp(tok, "memory"))
				snprintf(my_v1mem, sizeof(my_v1mem), "%s", c2 + 1);
	}
	fclose(f);
}

/* Removes dir and every directory below it (cgroupfs: no files to unlink). */
static void rmdir_tree(const char *dir, int64_t deadline)
{
	char sub[PATH_MAX];
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (de->d_type != DT_DIR || !strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
		rmdir_tree(sub, deadline);
	}
	closedir(d);
	/* EBUSY until the last task has left (an exit is asynchronous to the reap). */
	while (rmdir(dir) < 0 && errno == EBUSY && lm_it_now_ms() < deadline)
		usleep(5000);
	if (access(dir, F_OK) == 0)
		lm_it_note("could not remove cgroup %s: %s (left behind)", dir, strerror(errno));
}

/* Removes every cgroup this test makes (and any a killed earlier run left). */
static void cg_sweep(void)
{
	char path[PATH_MAX + 64];

	if (cg2_mnt[0]) {
		snprintf(path, sizeof(path), "%s/%s", cg2_mnt, IT_CG_BASE);
		rmdir_tree(path, lm_it_now_ms() + 3000);
	}
	if (v1mem_mnt[0]) {
		snprintf(path, sizeof(path), "%s/%s", v1mem_mnt, IT_CG_BASE);
		rmdir_tree(path, lm_it_now_ms() + 3000);
	}
}

/* mkdir -p of `rel` below `mnt`. */
static void cg_mkdir(const char *mnt, const char *rel)
{
	char path[PATH_MAX + 64];
	size_t i, n;

	n = (size_t)snprintf(path, sizeof(path), "%s/%s", mnt, rel);
	for (i = strlen(mnt) + 1; i <= n; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		LM_IT_ASSERT(mkdir(path, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", path,
			     strerror(errno));
		if (i < n)
			path[i] = '/';
	}
}

static void cg_join(const char *mnt, const char *rel, pid_t pid)
{
	char path[PATH_MAX + 64], val[32];
	int err;

	snprintf(path, sizeof(path), "%s/%s/cgroup.procs", mnt, rel);
	snprintf(val, sizeof(val), "%d", pid);
	err = write_file(path, val);
	LM_IT_ASSERT(!err, "moving pid %d into %s: %s", pid, path, strerror(-err));
}

static unsigned long long cg_ino(const char *mnt, const char *rel)
{
	char path[PATH_MAX + 64];
	struct stat st;

	snprintf(path, sizeof(path), "%s%s%s", mnt, rel[0] == '/' ? "" : "/", rel);
	LM_IT_ASSERT(stat(path, &st) == 0, "stat %s: %s", path, strerror(errno));
	return (unsigned long long)st.st_ino;
}

static void rm_tdir(void)
{
	char cmd[PATH_MAX + 32];
	char *argv[] = { "/bin/rm", "-rf", "--", tdir, NULL };
	int status;
	pid_t pid;

	(void)cmd;
	if (!tdir[0] || strncmp(tdir, "/tmp/lm-it-fields.", 18))
		return;
	if (!lm_it_spawn(argv, -1, -1, &pid))
		lm_it_reap(pid, 10000, &status);
	tdir[0] = '\0';
}

static void cleanup(void *arg)
{
	(void)arg;
	if (lm && lm_stopped && lm_it_proc_is_running(lm))
		kill(lm_it_proc_pid(lm), SIGCONT);
	lm_stopped = false;
	if (case_pid > 0)
		lm_it_kill_reap(case_pid);
	case_pid = -1;
	cg_sweep();
	tail_reset();
	rm_tdir();
}

/* True if some component of path holds 64 hex digits in a row (names a container). */
static bool names_container(const char *path)
{
	size_t run = 0;

	for (; *path; path++) {
		run = strchr("0123456789abcdef", *path) ? run + 1 : 0;
		if (run >= 64)
			return true;
	}
	return false;
}

/* The innermost systemd unit of a v2 path into out, or false. */
static bool innermost_unit(const char *path, char *out, size_t cap)
{
	static const char *const sfx[] = { ".service", ".scope",  ".slice",    ".socket",
					   ".mount",   ".swap",	  ".target",   ".timer",
					   ".path",    ".device", ".automount" };
	char buf[PATH_MAX], *tok, *save = NULL;
	bool found = false;
	size_t i, l;

	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		l = strlen(tok);
		for (i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
			if (l > strlen(sfx[i]) && !strcmp(tok + l - strlen(sfx[i]), sfx[i])) {
				snprintf(out, cap, "%s", tok);
				found = true;
			}
		}
	}
	return found;
}

/* The cgroup fields of a process that stayed in this test's cgroups. */
static void want_host_cgroup_of(const json_t *ev, const char *what, bool container)
{
	char unit[256];

	if (!cg2_mnt[0] || !my_cg2[0])
		return;
	want_str(ev, what, "cgroup", my_cg2);
	want_int(ev, what, "cgroup_id", (long long)cg_ino(cg2_mnt, my_cg2));
	if (container && !names_container(my_cg2) && !names_container(my_v1mem))
		want_absent(ev, what, "container_id");
	if (!strstr(my_cg2, "kubepods") && !strstr(my_v1mem, "kubepods"))
		want_absent(ev, what, "pod_uid");
	want_str_or_absent(ev, what, "unit",
			   innermost_unit(my_cg2, unit, sizeof(unit)) ? unit : NULL);
}

static void want_host_cgroup(const json_t *ev, const char *what)
{
	want_host_cgroup_of(ev, what, true);
}

/* parent_key of a process the test forked itself. */
static void want_test_parent(const json_t *ev, const char *what)
{
	want_key(ev, what, "parent_key", getpid(), my_ticks);
	want_int(ev, what, "ppid", getpid());
}

/* --- children that exec --- */

struct exec_spec {
	const char *path; /* execve path (unused with fexec_fd) */
	char *const *argv;
	const char *cwd; /* chdir here first, or NULL */
	int fexec_fd;	 /* >= 0: fexecve this fd */
	int gate_fd;	 /* >= 0: wait for EOF on it before exec'ing */
	int gate_wfd;	 /* with gate_fd: the pipe's write end, closed in the child */
	bool as_nobody;	 /* drop to uid/gid 65534 first */
};

static int exec_child(void *arg)
{
	const struct exec_spec *s = arg;
	int null_fd = open("/dev/null", O_RDWR);
	char c;

	if (null_fd < 0 || dup2(null_fd, STDOUT_FILENO) < 0)
		return 120;
	if (s->gate_fd >= 0) {
		close(s->gate_wfd);
		while (read(s->gate_fd, &c, 1) > 0)
			;
	}
	if (s->cwd && chdir(s->cwd) < 0)
		return 121;
	if (s->as_nobody && (setgroups(0, NULL) < 0 || setresgid(IT_NOBODY, IT_NOBODY, IT_NOBODY) ||
			     setresuid(IT_NOBODY, IT_NOBODY, IT_NOBODY)))
		return 122;
	if (s->fexec_fd >= 0)
		fexecve(s->fexec_fd, s->argv, environ);
	else
		execve(s->path, s->argv, environ);
	dprintf(STDERR_FILENO, "it_fields: exec %s: %s\n", s->path ? s->path : "(fd)",
		strerror(errno));
	return 127;
}

/* Runs the spec in a forked child, waits for it and wants exit 0. Returns its pid. */
static pid_t run_exec(struct exec_spec *s, const char *what)
{
	char buf[64];
	int status, err;
	pid_t pid;

	err = lm_it_fork_fn(exec_child, s, &pid);
	LM_IT_ASSERT(!err, "%s: fork: %s", what, strerror(-err));
	err = lm_it_reap(pid, 20000, &status);
	LM_IT_ASSERT(!err, "%s: child %d did not finish: %s", what, pid, strerror(-err));
	LM_IT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		     "test setup: %s: child %d ended with %s", what, pid,
		     lm_it_wstatus_str(status, buf, sizeof(buf)));
	return pid;
}

/* args[i] of ev equals want (len bytes, already decoded). */
static void want_arg(const json_t *ev, const char *what, size_t i, const char *want, size_t len)
{
	const json_t *v = json_array_get(json_object_get(ev, "args"), i);
	char *s;

	if (jstr_is(v, want, len))
		return;
	s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	lm_it_fail("%s: \"args\"[%zu]: want %s (%zu bytes), got %.300s", what, i, wantq(want), len,
		   s ? s : "absent");
	free(s);
}

/* The whole args array equals argv (valid UTF-8 strings). */
static void want_args(const json_t *ev, const char *what, char *const *argv, size_t argc)
{
	size_t i;

	want_int(ev, what, "argc", (long long)argc);
	if (json_array_size(json_object_get(ev, "args")) != argc)
		lm_it_fail("%s: \"args\": want %zu entries, got %zu", what, argc,
			   json_array_size(json_object_get(ev, "args")));
	for (i = 0; i < argc && i < json_array_size(json_object_get(ev, "args")); i++)
		want_arg(ev, what, i, argv[i], strlen(argv[i]));
}

/* --- the cases --- */

/*
 * Odd arguments (empty, quotes, newline, controls, valid and invalid UTF-8) from a cwd several
 * directories deep: args and args_hex byte-exact, argc, filename as given, exe resolved.
 */
static void case_args(void)
{
	static const struct {
		const char *raw, *want, *hex; /* hex: only for invalid UTF-8 */
	} odd[] = {
		{ "", "", NULL },
		{ "say \"hi\" 'there'", "say \"hi\" 'there'", NULL },
		{ "line1\nline2", "line1\nline2", NULL },
		{ "\xff\xfe", "\xef\xbf\xbd\xef\xbf\xbd", "fffe" },
		{ "a\xffz", "a\xef\xbf\xbdz", "61ff7a" },
		{ "caf\xc3\xa9 \xe2\x82\xac", "caf\xc3\xa9 \xe2\x82\xac", NULL },
		{ "tab\tbs\\ctl\x01\x1f", "tab\tbs\\ctl\x01\x1f", NULL },
		{ "", "", NULL },
	};
	enum { N = sizeof(odd) / sizeof(odd[0]) };
	char marker[96], cwd[PATH_MAX + 32], real_cwd[PATH_MAX], exe[PATH_MAX], idx[16];
	char *argv[N + 3] = { "/bin/true", marker };
	struct exec_spec s = { .path = "/bin/true", .argv = argv, .fexec_fd = -1, .gate_fd = -1 };
	const char *what = "EXEC of /bin/true with odd args";
	const json_t *ex, *xt, *hex;
	unsigned int before = lm_it_failures();
	size_t i, nhex = 0;

	snprintf(marker, sizeof(marker), "%s-args", base);
	for (i = 0; i < N; i++)
		argv[2 + i] = (char *)odd[i].raw;
	snprintf(cwd, sizeof(cwd), "%s/cwd/one/two/three", tdir);
	cg_mkdir("", cwd + 1); /* mkdir -p, not a cgroup */
	LM_IT_ASSERT(realpath(cwd, real_cwd) && realpath("/bin/true", exe), "realpath: %s",
		     strerror(errno));
	s.cwd = cwd;
	run_exec(&s, what);

	ex = wait_exec_arg(marker, what);
	if (!ex)
		return;
	check_exec_shape(ex, what, false);
	want_int(ex, what, "argc", N + 2);
	if (json_array_size(json_object_get(ex, "args")) != N + 2)
		lm_it_fail("%s: \"args\": want %d entries, got %zu", what, N + 2,
			   json_array_size(json_object_get(ex, "args")));
	want_arg(ex, what, 0, "/bin/true", 9);
	want_arg(ex, what, 1, marker, strlen(marker));
	for (i = 0; i < N; i++)
		want_arg(ex, what, 2 + i, odd[i].want, strlen(odd[i].want));
	hex = json_object_get(ex, "args_hex");
	if (!json_is_object(hex))
		lm_it_fail("%s: \"args_hex\": want an object, got %s", what, got(ex, "args_hex"));
	for (i = 0; i < N; i++) {
		if (!odd[i].hex)
			continue;
		nhex++;
		snprintf(idx, sizeof(idx), "%zu", 2 + i);
		if (!jstr_is(json_object_get(hex, idx), odd[i].hex, strlen(odd[i].hex)))
			lm_it_fail("%s: \"args_hex\"[\"%s\"]: want \"%s\", got %s", what, idx,
				   odd[i].hex, got(hex, idx));
	}
	if (json_is_object(hex) && json_object_size(hex) != nhex)
		lm_it_fail(
			"%s: \"args_hex\": want exactly %zu keys (the invalid UTF-8 args), got %s",
			what, nhex, got(ex, "args_hex"));
	want_str(ex, what, "filename", "/bin/true");
	want_str(ex, what, "exe", exe);
	want_str(ex, what, "cwd", real_cwd);
	want_str(ex, what, "comm", "true");
	want_str(ex, what, "pcomm", my_comm);
	want_int(ex, what, "uid", 0);
	want_int(ex, what, "euid", 0);
	want_int(ex, what, "gid", 0);
	want_absent(ex, what, "filename_hex");
	want_absent(ex, what, "exe_hex");
	want_absent(ex, what, "cwd_hex");
	want_absent(ex, what, "pcomm_hex");
	want_test_parent(ex, what);
	want_host_cgroup(ex, what);
	dump_if_failed(before, ex, what);

	xt = wait_exit_of(ex, "EXIT of /bin/true with odd args");
	if (!xt)
		return;
	check_exit_shape(xt, "EXIT of /bin/true with odd args", false);
	want_same(xt, "key", ex, "key", "EXIT vs EXEC of /bin/true with odd args");
	want_same(xt, "parent_key", ex, "parent_key", "EXIT vs EXEC of /bin/true with odd args");
	want_host_cgroup(xt, "EXIT of /bin/true with odd args");
	lm_it_note("odd args: checked (pid %lld)", lm_it_jint(ex, "pid", -1));
}

/*
 * A relative path through a symlink, from a cwd whose name is not UTF-8: filename as given,
 * exe the link's resolved target, cwd with U+FFFD and its raw cwd_hex.
 */
static void case_relative_link(void)
{
	char marker[96], dir[PATH_MAX + 32], link[PATH_MAX + 48], real_dir[PATH_MAX], exe[PATH_MAX];
	char want_cwd[PATH_MAX * 3], hex[PATH_MAX * 2 + 1];
	char *argv[] = { "lm-link", marker, NULL };
	struct exec_spec s = { .path = "./lm-link", .argv = argv, .fexec_fd = -1, .gate_fd = -1 };
	const char *what = "EXEC of ./lm-link (symlink to /bin/true) in a non-UTF-8 cwd";
	unsigned int before = lm_it_failures();
	const json_t *ex;
	size_t i, o = 0;

	snprintf(marker, sizeof(marker), "%s-link", base);
	snprintf(dir, sizeof(dir), "%s/cwd/one/odd\xfe\xff-dir", tdir);
	LM_IT_ASSERT(mkdir(dir, 0755) == 0, "mkdir %s: %s", dir, strerror(errno));
	snprintf(link, sizeof(link), "%s/lm-link", dir);
	LM_IT_ASSERT(symlink("/bin/true", link) == 0, "symlink %s: %s", link, strerror(errno));
	LM_IT_ASSERT(realpath(dir, real_dir) && realpath("/bin/true", exe), "realpath: %s",
		     strerror(errno));
	for (i = 0; real_dir[i]; i++) {
		if ((unsigned char)real_dir[i] >= 0x80) { /* both bytes are invalid alone */
			memcpy(want_cwd + o, "\xef\xbf\xbd", 3);
			o += 3;
		} else {
			want_cwd[o++] = real_dir[i];
		}
	}
	want_cwd[o] = '\0';
	hex_of(real_dir, strlen(real_dir), hex);
	s.cwd = dir;
	run_exec(&s, what);

	ex = wait_exec_arg(marker, what);
	if (!ex)
		return;
	check_exec_shape(ex, what, false);
	want_args(ex, what, argv, 2);
	want_str(ex, what, "filename", "./lm-link");
	want_str(ex, what, "exe", exe);
	want_str(ex, what, "cwd", want_cwd);
	want_str(ex, what, "cwd_hex", hex);
	want_absent(ex, what, "filename_hex");
	want_absent(ex, what, "exe_hex");
	dump_if_failed(before, ex, what);
}

/* fexecve of an open copy of /bin/true: filename "/dev/fd/N", exe the copy's real path. */
static void case_fexecve(void)
{
	char marker[96], copy[PATH_MAX + 32], exe[PATH_MAX], fdpath[32];
	char *argv[] = { "lm-fexec-true", marker, NULL };
	struct exec_spec s = { .argv = argv, .gate_fd = -1 };
	const char *what = "EXEC by fexecve of a copy of /bin/true";
	unsigned int before = lm_it_failures();
	const json_t *ex, *xt;
	int err, fd;

	snprintf(marker, sizeof(marker), "%s-fexecve", base);
	snprintf(copy, sizeof(copy), "%s/lm-fexec-true", tdir);
	err = copy_file("/bin/true", copy, 0755);
	LM_IT_ASSERT(!err, "copy /bin/true to %s: %s", copy, strerror(-err));
	LM_IT_ASSERT(realpath(copy, exe), "realpath %s: %s", copy, strerror(errno));
	fd = open(copy, O_RDONLY | O_CLOEXEC);
	LM_IT_ASSERT(fd >= 0, "open %s: %s", copy, strerror(errno));
	snprintf(fdpath, sizeof(fdpath), "/dev/fd/%d", fd);
	s.fexec_fd = fd;
	run_exec(&s, what);
	close(fd);

	ex = wait_exec_arg(marker, what);
	if (!ex)
		return;
	check_exec_shape(ex, what, false);
	want_args(ex, what, argv, 2);
	want_str(ex, what, "filename", fdpath);
	want_str(ex, what, "exe", exe);
	want_test_parent(ex, what);
	dump_if_failed(before, ex, what);
	xt = wait_exit_of(ex, "EXIT after fexecve");
	if (xt) {
		check_exit_shape(xt, "EXIT after fexecve", false);
		want_same(xt, "key", ex, "key", "EXIT vs EXEC after fexecve");
	}
}

/*
 * A #! script: filename the script's path, exe the interpreter's real path, args as the kernel
 * rewrites them (interpreter, its optional argument, script path, the caller's args).
 */
static void case_script(const char *interp_arg)
{
	char marker[96], script[PATH_MAX + 32], exe[PATH_MAX], body[64], what[128];
	char *argv[] = { script, marker, "x y", NULL };
	char *want[6];
	struct exec_spec s = { .path = script, .argv = argv, .fexec_fd = -1, .gate_fd = -1 };
	unsigned int before = lm_it_failures();
	const json_t *ex;
	size_t n = 0;
	int fd;

	snprintf(marker, sizeof(marker), "%s-script%s", base, interp_arg ? interp_arg : "");
	snprintf(script, sizeof(script), "%s/lm-script%s.sh", tdir, interp_arg ? interp_arg : "");
	snprintf(what, sizeof(what), "EXEC of a #!/bin/sh%s%s script", interp_arg ? " " : "",
		 interp_arg ? interp_arg : "");
	snprintf(body, sizeof(body), "#!/bin/sh%s%s\nexit 0\n", interp_arg ? " " : "",
		 interp_arg ? interp_arg : "");
	fd = open(script, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
	LM_IT_ASSERT(fd >= 0 && write(fd, body, strlen(body)) == (ssize_t)strlen(body),
		     "writing %s: %s", script, strerror(errno));
	close(fd);
	LM_IT_ASSERT(realpath("/bin/sh", exe), "realpath /bin/sh: %s", strerror(errno));
	want[n++] = "/bin/sh";
	if (interp_arg)
		want[n++] = (char *)interp_arg;
	want[n++] = script;
	want[n++] = marker;
	want[n++] = "x y";
	run_exec(&s, what);

	ex = wait_exec_arg(marker, what);
	if (!ex)
		return;
	check_exec_shape(ex, what, false);
	want_args(ex, what, want, n);
	want_str(ex, what, "filename", script);
	want_str(ex, what, "exe", exe);
	dump_if_failed(before, ex, what);
}

/* A setuid-root copy of id run by uid/gid 65534: uid 65534, euid 0, gid 65534. */
static void case_setuid(void)
{
	char copy[PATH_MAX + 32], exe[PATH_MAX];
	char *argv[] = { "lm-suid-id", "-u", NULL };
	struct exec_spec s = { .path = copy,
			       .argv = argv,
			       .fexec_fd = -1,
			       .gate_fd = -1,
			       .cwd = "/",
			       .as_nobody = true };
	const char *what = "EXEC of a setuid-root copy of id by uid 65534";
	unsigned int before = lm_it_failures();
	const json_t *ex;
	struct statvfs sv;
	int err;

	LM_IT_ASSERT(statvfs(tdir, &sv) == 0, "statvfs %s: %s", tdir, strerror(errno));
	if (sv.f_flag & ST_NOSUID) {
		if (getenv("CI") && !strcmp(getenv("CI"), "true"))
			lm_it_fail("setuid case: %s is on a nosuid mount", tdir);
		else
			lm_it_note("setuid case NOT RUN: %s is on a nosuid mount", tdir);
		return;
	}
	snprintf(copy, sizeof(copy), "%s/lm-suid-id", tdir);
	err = copy_file("/usr/bin/id", copy, 0755);
	LM_IT_ASSERT(!err, "copy /usr/bin/id to %s: %s", copy, strerror(-err));
	/* chmod after the copy: the setuid bit on a root-owned file, readable by all */
	LM_IT_ASSERT(chown(copy, 0, 0) == 0 && chmod(copy, 04755) == 0, "chmod 4755 %s: %s", copy,
		     strerror(errno));
	LM_IT_ASSERT(realpath(copy, exe), "realpath %s: %s", copy, strerror(errno));
	run_exec(&s, what);

	ex = tail_wait(pred_exec_filename, copy, LM_IT_EVENT_MS);
	LM_IT_EXPECT(ex, "%s: no EXEC with filename \"%s\" within %d ms", what, copy,
		     LM_IT_EVENT_MS);
	if (!ex)
		return;
	check_exec_shape(ex, what, false);
	want_int(ex, what, "uid", IT_NOBODY);
	want_int(ex, what, "euid", 0);
	want_int(ex, what, "gid", IT_NOBODY);
	want_str(ex, what, "exe", exe);
	want_args(ex, what, argv, 2);
	want_str(ex, what, "pcomm", my_comm);
	want_test_parent(ex, what);
	dump_if_failed(before, ex, what);
}

/* The parent of case_hex_names: renames itself (invalid UTF-8), then forks the exec'ing child. */
struct hex_parent {
	const char *comm; /* the name it takes */
	struct exec_spec *spec;
};

static int hex_parent_fn(void *arg)
{
	const struct hex_parent *hp = arg;
	int status;
	pid_t pid;

	if (prctl(PR_SET_NAME, hp->comm) < 0)
		return 110;
	pid = fork();
	if (pid < 0)
		return 111;
	if (pid == 0)
		_exit(exec_child(hp->spec));
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return 112;
	return WEXITSTATUS(status);
}

/*
 * A program whose name is not UTF-8, run by its absolute path from a parent whose comm is
 * not UTF-8: filename, exe, comm and pcomm with U+FFFD and their raw hex twins.
 */
static void case_hex_names(void)
{
	static const char pname[] = "lm-par\xfe";
	char marker[96], path[PATH_MAX + 32], real[PATH_MAX], want_path[PATH_MAX * 3];
	char want_real[PATH_MAX * 3], hex_path[PATH_MAX * 2 + 1], hex_real[PATH_MAX * 2 + 1];
	char hex_p[32];
	char *argv[] = { "lm-bad-name", marker, NULL };
	struct exec_spec s = { .path = path, .argv = argv, .fexec_fd = -1, .gate_fd = -1 };
	struct hex_parent hp = { .comm = pname, .spec = &s };
	const char *what = "EXEC of a program named with invalid UTF-8 by a parent so named";
	unsigned int before = lm_it_failures();
	const json_t *ex;
	char buf[64];
	int err, status;
	pid_t pid;
	size_t i, o;

	snprintf(marker, sizeof(marker), "%s-hexnames", base);
	snprintf(path, sizeof(path), "%s/lm-bad\xff-name", tdir);
	err = copy_file("/bin/true", path, 0755);
	LM_IT_ASSERT(!err, "copy /bin/true to %s: %s", path, strerror(-err));
	LM_IT_ASSERT(realpath(path, real), "realpath %s: %s", path, strerror(errno));
	for (i = 0, o = 0; path[i]; i++) { /* 0xff and 0xfe are invalid alone */
		if ((unsigned char)path[i] >= 0x80) {
			memcpy(want_path + o, "\xef\xbf\xbd", 3);
			o += 3;
		} else {
			want_path[o++] = path[i];
		}
	}
	want_path[o] = '\0';
	for (i = 0, o = 0; real[i]; i++) {
		if ((unsigned char)real[i] >= 0x80) {
			memcpy(want_real + o, "\xef\xbf\xbd", 3);
			o += 3;
		} else {
			want_real[o++] = real[i];
		}
	}
	want_real[o] = '\0';
	hex_of(path, strlen(path), hex_path);
	hex_of(real, strlen(real), hex_real);
	hex_of(pname, strlen(pname), hex_p);

	err = lm_it_fork_fn(hex_parent_fn, &hp, &pid);
	LM_IT_ASSERT(!err, "fork: %s", strerror(-err));
	err = lm_it_reap(pid, 10000, &status);
	LM_IT_ASSERT(!err && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		     "test setup: %s: parent %d ended with %s", what, pid,
		     err ? strerror(-err) : lm_it_wstatus_str(status, buf, sizeof(buf)));

	ex = wait_exec_arg(marker, what);
	if (!ex)
		return;
	check_exec_shape(ex, what, false);
	want_str(ex, what, "filename", want_path);
	want_str(ex, what, "filename_hex", hex_path);
	want_str(ex, what, "exe", want_real);
	want_str(ex, what, "exe_hex", hex_real);
	want_str(ex, what, "pcomm", "lm-par\xef\xbf\xbd");
	want_str(ex, what, "pcomm_hex", hex_p);
	want_str(ex, what, "comm", "lm-bad\xef\xbf\xbd-name");
	want_absent(ex, what, "args_hex");
	dump_if_failed(before, ex, what);
}

/*
 * A working directory deeper than PATH_MAX (100 components, about 4.7 KB): either cwd is
 * exact, or "truncated" names "cwd". A cut path must never pass for a whole one.
 */
#define IT_DEEP_N 100

static char deep_comp[48];
static char deep_start[PATH_MAX + 32];

static int deep_child(void *arg)
{
	struct exec_spec *s = arg;
	int i;

	if (chdir(deep_start) < 0)
		return 123;
	for (i = 0; i < IT_DEEP_N; i++)
		if (chdir(deep_comp) < 0)
			return 123;
	return exec_child(s);
}

static bool is_prefix_or_suffix(const char *part, const char *whole)
{
	size_t p = strlen(part), w = strlen(whole);

	return p <= w && (!memcmp(part, whole, p) || !memcmp(part, whole + w - p, p));
}

static void case_deep_cwd(void)
{
	char marker[96], *start = deep_start, real[PATH_MAX];
	char *want = malloc(PATH_MAX + IT_DEEP_N * sizeof(deep_comp));
	char *argv[] = { "/bin/true", marker, NULL };
	struct exec_spec s = { .path = "/bin/true", .argv = argv, .fexec_fd = -1, .gate_fd = -1 };
	const char *what = "EXEC in a cwd deeper than PATH_MAX";
	unsigned int before = lm_it_failures();
	const json_t *ex, *tr;
	char buf[64];
	bool cut = false;
	int fd, nfd, i, err, status;
	size_t k;
	pid_t pid;

	LM_IT_ASSERT(want, "out of memory");
	snprintf(marker, sizeof(marker), "%s-deepcwd", base);
	snprintf(deep_comp, sizeof(deep_comp), "%s",
		 "deep-component-0123456789abcdefghijklmnopqrst");
	snprintf(deep_start, sizeof(deep_start), "%s/deep", tdir);
	LM_IT_ASSERT(mkdir(start, 0755) == 0 && realpath(start, real), "mkdir %s: %s", start,
		     strerror(errno));
	fd = open(start, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	LM_IT_ASSERT(fd >= 0, "open %s: %s", start, strerror(errno));
	k = (size_t)sprintf(want, "%s", real);
	for (i = 0; i < IT_DEEP_N; i++) {
		LM_IT_ASSERT(mkdirat(fd, deep_comp, 0755) == 0, "mkdirat level %d: %s", i,
			     strerror(errno));
		nfd = openat(fd, deep_comp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		LM_IT_ASSERT(nfd >= 0, "openat level %d: %s", i, strerror(errno));
		close(fd);
		fd = nfd;
		k += (size_t)sprintf(want + k, "/%s", deep_comp);
	}
	close(fd);
	/* deep_child descends from the test's cwd; start is absolute, the rest relative */
	err = lm_it_fork_fn(deep_child, &s, &pid);
	LM_IT_ASSERT(!err, "fork: %s", strerror(-err));
	err = lm_it_reap(pid, 10000, &status);
	LM_IT_ASSERT(!err && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		     "test setup: %s: child %d ended with %s", what, pid,
		     err ? strerror(-err) : lm_it_wstatus_str(status, buf, sizeof(buf)));

	ex = wait_exec_arg(marker, what);
	if (ex) {
		check_exec_shape(ex, what, true);
		tr = json_object_get(ex, "truncated");
		for (k = 0; k < json_array_size(tr); k++)
			cut |= jstr_is(json_array_get(tr, k), "cwd", 3);
		for (k = 0; k < json_array_size(tr); k++)
			if (!jstr_is(json_array_get(tr, k), "cwd", 3))
				lm_it_fail("%s: \"truncated\": want at most [\"cwd\"], got %s",
					   what, got(ex, "truncated"));
		if (!cut)
			want_str(ex, what, "cwd", want);
		else if (jstr_is(json_object_get(ex, "cwd"), want, strlen(want)))
			lm_it_fail("%s: \"truncated\" names \"cwd\" but cwd is whole (%zu bytes)",
				   what, strlen(want));
		else if (lm_it_jstr(ex, "cwd") && !is_prefix_or_suffix(lm_it_jstr(ex, "cwd"), want))
			lm_it_fail("%s: \"cwd\" is cut but neither a prefix nor a suffix of the "
				   "real %zu-byte path: %s",
				   what, strlen(want), got(ex, "cwd"));
		lm_it_note("deep cwd (%zu bytes): %s, cwd %zu bytes: %.80s...%s", strlen(want),
			   cut ? "truncated names cwd" : "exact",
			   json_string_length(json_object_get(ex, "cwd")),
			   lm_it_jstr(ex, "cwd") ? lm_it_jstr(ex, "cwd") : "(absent)",
			   lm_it_jstr(ex, "cwd") &&
					   json_string_length(json_object_get(ex, "cwd")) > 60
				   ? lm_it_jstr(ex, "cwd") +
					     json_string_length(json_object_get(ex, "cwd")) - 60
				   : "");
		dump_if_failed(before, ex, what);
	}
	free(want);
}

/* Helper mode: touches IT_BURN_BYTES, burns IT_BURN_CPU_NS of user CPU, exits 0. */
static int burn_main(void)
{
	struct rusage ru;
	volatile unsigned long spin = 0;
	char *p = malloc(IT_BURN_BYTES);
	size_t i;

	if (!p)
		return 1;
	for (i = 0; i < IT_BURN_BYTES; i += 4096)
		((volatile char *)p)[i] = (char)(i >> 12 | 1);
	for (;;) {
		for (i = 0; i < 1000000; i++)
			spin += i;
		getrusage(RUSAGE_SELF, &ru);
		if (ru.ru_utime.tv_sec * 1000000000LL + ru.ru_utime.tv_usec * 1000LL >=
		    IT_BURN_CPU_NS)
			break;
	}
	return p[4096] ? 0 : 2;
}

static long long tv_ns(struct timeval tv)
{
	return tv.tv_sec * 1000000000LL + tv.tv_usec * 1000LL;
}

/*
 * A program that burns about 300 ms of user CPU and touches 200 MiB: duration, CPU times and
 * peak RSS in bounds, and max_rss_kb as getrusage(RUSAGE_CHILDREN) reports it.
 */
static void case_burn(void)
{
	char marker[96];
	char *argv[] = { self_exe, "--lmf-burn", marker, NULL };
	struct exec_spec s = { .path = self_exe, .argv = argv, .fexec_fd = -1, .gate_fd = -1 };
	const char *what = "EXIT of the 300 ms / 200 MiB burner";
	unsigned int before = lm_it_failures();
	struct rusage r0, r1;
	const json_t *ex, *xt;
	int64_t t0, t1;
	long long cpu, ev_cpu, rss;

	snprintf(marker, sizeof(marker), "%s-burn", base);
	getrusage(RUSAGE_CHILDREN, &r0);
	LM_IT_ASSERT(r0.ru_maxrss < 100 * 1024,
		     "test setup: a reaped child already peaked at %ld KiB; the RSS comparison "
		     "needs the burner to be the largest",
		     r0.ru_maxrss);
	t0 = lm_it_now_ms();
	run_exec(&s, "burner");
	t1 = lm_it_now_ms();
	getrusage(RUSAGE_CHILDREN, &r1);

	ex = wait_exec_arg(marker, "EXEC of the burner");
	if (!ex)
		return;
	check_exec_shape(ex, "EXEC of the burner", false);
	xt = wait_exit_of(ex, what);
	if (!xt)
		return;
	check_exit_shape(xt, what, false);
	want_same(xt, "key", ex, "key", "EXIT vs EXEC of the burner");
	want_range(xt, what, "duration_ns", 300 * IT_MS, 30000 * IT_MS);
	want_range(xt, what, "duration_ns", 0, (t1 - t0 + 50) * IT_MS);
	want_range(xt, what, "cpu_user_ns", 200 * IT_MS, 10000 * IT_MS);
	want_range(xt, what, "cpu_sys_ns", 0, 5000 * IT_MS);
	want_range(xt, what, "max_rss_kb", 190 * 1024, 400 * 1024);
	rss = r1.ru_maxrss;
	if (llabs(lm_it_jint(xt, "max_rss_kb", 0) - rss) > rss / 10)
		lm_it_fail(
			"%s: \"max_rss_kb\": want %lld (getrusage RUSAGE_CHILDREN ru_maxrss after "
			"the reap) within 10%%, got %s",
			what, rss, got(xt, "max_rss_kb"));
	cpu = tv_ns(r1.ru_utime) + tv_ns(r1.ru_stime) - tv_ns(r0.ru_utime) - tv_ns(r0.ru_stime);
	ev_cpu = lm_it_jint(xt, "cpu_user_ns", 0) + lm_it_jint(xt, "cpu_sys_ns", 0);
	if (llabs(ev_cpu - cpu) > cpu / 5 + 20 * IT_MS)
		lm_it_fail("%s: \"cpu_user_ns\" + \"cpu_sys_ns\" = %lld, want the getrusage "
			   "RUSAGE_CHILDREN delta %lld ns within 20%% + 20 ms",
			   what, ev_cpu, cpu);
	lm_it_note("burner: duration %lld ms (wall %lld ms), user %lld ms, sys %lld ms (rusage "
		   "user+sys %lld ms), max_rss %lld KiB (rusage %ld KiB)",
		   lm_it_jint(xt, "duration_ns", 0) / IT_MS, (long long)(t1 - t0),
		   lm_it_jint(xt, "cpu_user_ns", 0) / IT_MS,
		   lm_it_jint(xt, "cpu_sys_ns", 0) / IT_MS, cpu / IT_MS,
		   lm_it_jint(xt, "max_rss_kb", 0), r1.ru_maxrss);
	dump_if_failed(before, xt, what);
}

/*
 * Helper mode for the generations: argv = self --lmf-gen LEVEL FD BASE MARKER. Reports
 * "LEVEL PID TICKS" (field 22 of its own /proc stat, read while alive) on FD. Levels a and b
 * rename themselves lm-gen-<level> and fork+exec the next level; level c execs /bin/true with
 * the marker BASE-gen-c2 (its second exec).
 */
static int gen_main(char **argv)
{
	char level = argv[2][0], next[2] = { (char)(level + 1), '\0' }, name[16], marker[96];
	char self[PATH_MAX];
	int fd = atoi(argv[3]), status;
	pid_t pid;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (!realpath("/proc/self/exe", self))
		return 6;
	if (dprintf(fd, "%c %d %lld\n", level, getpid(), stat_start_ticks(getpid())) < 0)
		return 1;
	if (level == 'c') {
		snprintf(marker, sizeof(marker), "%s-gen-c2", argv[4]);
		close(fd);
		execl("/bin/true", "true", marker, (char *)NULL);
		return 2;
	}
	snprintf(name, sizeof(name), "lm-gen-%c", level);
	prctl(PR_SET_NAME, name);
	snprintf(marker, sizeof(marker), "%s-gen-%s", argv[4], next);
	pid = fork();
	if (pid < 0)
		return 3;
	if (pid == 0) {
		execl(self, self, "--lmf-gen", next, argv[3], argv[4], marker, (char *)NULL);
		_exit(4);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		return 5;
	return 0;
}

/*
 * Three generations: the test forks A (exec'd), A forks B (exec'd), B forks C which execs
 * twice. Keys match /proc while alive, each parent_key is the parent's key, EXIT keys equal
 * EXEC keys, both of C's EXECs carry the same key, pcomm is the parent's comm.
 */
static void case_generations(void)
{
	char marker[3][96], c2[96], fdstr[16], rep[512], what[96];
	char *argv[] = { self_exe, "--lmf-gen", "a", fdstr, base, marker[0], NULL };
	struct exec_spec s = { .path = self_exe, .argv = argv, .fexec_fd = -1, .gate_fd = -1 };
	static const char *const pcomm[3] = { NULL, "lm-gen-a", "lm-gen-b" };
	const json_t *ex[3] = { NULL }, *xt[3] = { NULL }, *exc2;
	long long ticks[3] = { -1, -1, -1 }, pid[3] = { 0 };
	unsigned int before = lm_it_failures();
	int fds[2], i, n;
	ssize_t r;
	size_t len = 0;
	char *line, *save = NULL;

	for (i = 0; i < 3; i++)
		snprintf(marker[i], sizeof(marker[i]), "%s-gen-%c", base, 'a' + i);
	snprintf(c2, sizeof(c2), "%s-gen-c2", base);
	LM_IT_ASSERT(pipe(fds) == 0, "pipe: %s", strerror(errno));
	snprintf(fdstr, sizeof(fdstr), "%d", fds[1]);
	run_exec(&s, "generation A");
	close(fds[1]);
	while (len < sizeof(rep) - 1 && (r = read(fds[0], rep + len, sizeof(rep) - 1 - len)) > 0)
		len += (size_t)r;
	close(fds[0]);
	rep[len] = '\0';
	for (line = strtok_r(rep, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char lv;
		long long p, t;

		if (sscanf(line, "%c %lld %lld", &lv, &p, &t) == 3 && lv >= 'a' && lv <= 'c') {
			pid[lv - 'a'] = p;
			ticks[lv - 'a'] = t;
		}
	}
	for (i = 0; i < 3; i++)
		LM_IT_ASSERT(pid[i] > 0 && ticks[i] >= 0,
			     "test setup: generation %c did not report its pid and start", 'a' + i);

	for (i = 0; i < 3; i++) {
		snprintf(what, sizeof(what), "EXEC of generation %c (pid %lld)", 'A' + i, pid[i]);
		ex[i] = wait_exec_arg(marker[i], what);
		if (!ex[i])
			continue;
		check_exec_shape(ex[i], what, false);
		want_int(ex[i], what, "pid", pid[i]);
		want_key(ex[i], what, "key", (pid_t)pid[i], ticks[i]);
		want_str(ex[i], what, "pcomm", i ? pcomm[i] : my_comm);
		want_str(ex[i], what, "exe", self_exe);
		if (i == 0)
			want_test_parent(ex[i], what);
		else if (ex[i - 1])
			want_same(ex[i], "parent_key", ex[i - 1], "key", what);
		if (i)
			want_key(ex[i], what, "parent_key", (pid_t)pid[i - 1], ticks[i - 1]);
		dump_if_failed(before, ex[i], what);
	}
	snprintf(what, sizeof(what), "second EXEC of generation C (pid %lld)", pid[2]);
	exc2 = wait_exec_arg(c2, what);
	if (exc2) {
		check_exec_shape(exc2, what, false);
		want_key(exc2, what, "key", (pid_t)pid[2], ticks[2]);
		if (ex[2])
			want_same(exc2, "key", ex[2], "key", what);
		if (ex[1])
			want_same(exc2, "parent_key", ex[1], "key", what);
		want_str(exc2, what, "pcomm", "lm-gen-b");
		want_str(exc2, what, "filename", "/bin/true");
	}
	for (i = 0; i < 3; i++) {
		snprintf(what, sizeof(what), "EXIT of generation %c (pid %lld)", 'A' + i, pid[i]);
		if (!ex[i])
			continue;
		xt[i] = wait_exit_of(ex[i], what);
		if (!xt[i])
			continue;
		check_exit_shape(xt[i], what, false);
		want_same(xt[i], "key", ex[i], "key", what);
		want_same(xt[i], "parent_key", ex[i], "parent_key", what);
	}
	n = 0;
	for (i = 0; i < 3; i++)
		n += ex[i] && xt[i];
	lm_it_note("generations: pids %lld -> %lld -> %lld, %d of 3 EXEC+EXIT pairs found", pid[0],
		   pid[1], pid[2], n);
}

/* A process started before lifemon: its EXIT still has key, duration and CPU times. */
static pid_t early_pid = -1;
static long long early_ticks = -1;
static long long early_t0; /* CLOCK_MONOTONIC ns, right after the fork returned */

static long long mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void case_early_start(void)
{
	char *argv[] = { "/bin/sleep", "60", NULL };
	int err;

	err = lm_it_spawn(argv, -1, -1, &early_pid);
	LM_IT_ASSERT(!err, "spawn sleep: %s", strerror(-err));
	early_t0 = mono_ns();
	early_ticks = stat_start_ticks(early_pid);
	LM_IT_ASSERT(early_ticks >= 0, "/proc/%d/stat: no start time", early_pid);
}

static void case_early_check(void)
{
	struct pid_since m = { .type = "EXIT", .pid = early_pid };
	const char *what = "EXIT of sleep started before lifemon";
	unsigned int before = lm_it_failures();
	const json_t *xt;
	long long t1;
	int status, err;

	t1 = mono_ns();
	kill(early_pid, SIGTERM);
	err = lm_it_reap(early_pid, 5000, &status);
	LM_IT_ASSERT(!err, "sleep %d did not end on SIGTERM", early_pid);
	xt = tail_wait(pred_pid_since, &m, LM_IT_EVENT_MS);
	LM_IT_EXPECT(xt, "%s: no EXIT for pid %d within %d ms", what, early_pid, LM_IT_EVENT_MS);
	if (!xt)
		return;
	check_exit_shape(xt, what, false);
	want_key(xt, what, "key", early_pid, early_ticks);
	want_test_parent(xt, what);
	want_range(xt, what, "duration_ns", t1 - early_t0, 600000 * IT_MS);
	want_range(xt, what, "cpu_user_ns", 0, 5000 * IT_MS);
	want_range(xt, what, "cpu_sys_ns", 0, 5000 * IT_MS);
	want_int(xt, what, "signal", SIGTERM);
	lm_it_note("early process %d lived >= %lld ns; EXIT duration_ns %s", early_pid,
		   t1 - early_t0, got(xt, "duration_ns"));
	dump_if_failed(before, xt, what);
}

/* --- cgroups named like containers, removed before lifemon reads the events --- */

struct cg_case {
	const char *name;
	char v2[512];	/* relative to the cgroup2 mount; "" : stay in the test's */
	char v1[512];	/* relative to the v1 memory mount; "" : stay */
	char cid[65];	/* want container_id, "" : absent */
	char pod[40];	/* want pod_uid, "" : absent */
	char unit[256]; /* want unit, "" : absent */
	char marker[96];
	unsigned long long ino; /* st_ino of the v2 dir, taken before rmdir */
};

/* Runs /bin/true <marker> in the case's cgroups (joined before the exec), then rmdirs them. */
static void cg_run(struct cg_case *c)
{
	char *argv[] = { "/bin/true", c->marker, NULL };
	struct exec_spec s = { .path = "/bin/true", .argv = argv, .fexec_fd = -1 };
	char buf[64];
	int gate[2], status, err;

	if (c->v2[0])
		cg_mkdir(cg2_mnt, c->v2);
	if (c->v1[0])
		cg_mkdir(v1mem_mnt, c->v1);
	c->ino = cg_ino(cg2_mnt, c->v2[0] ? c->v2 : my_cg2);
	LM_IT_ASSERT(pipe2(gate, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
	s.gate_fd = gate[0];
	s.gate_wfd = gate[1];
	err = lm_it_fork_fn(exec_child, &s, &case_pid);
	LM_IT_ASSERT(!err, "fork: %s", strerror(-err));
	close(gate[0]);
	if (c->v2[0])
		cg_join(cg2_mnt, c->v2, case_pid);
	if (c->v1[0])
		cg_join(v1mem_mnt, c->v1, case_pid);
	close(gate[1]); /* EOF: the child execs now */
	err = lm_it_reap(case_pid, 10000, &status);
	LM_IT_ASSERT(!err, "cgroup case %s: child did not finish", c->name);
	case_pid = -1;
	cg_sweep();
	LM_IT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		     "test setup: cgroup case %s: child ended with %s", c->name,
		     lm_it_wstatus_str(status, buf, sizeof(buf)));
}

static void cg_check(const struct cg_case *c)
{
	char what[128], want_cg[600];
	const json_t *ev[2];
	unsigned int before = lm_it_failures();
	int i;

	snprintf(want_cg, sizeof(want_cg), "/%s", c->v2);
	snprintf(what, sizeof(what), "EXEC in a %s cgroup (removed)", c->name);
	ev[0] = wait_exec_arg(c->marker, what);
	if (!ev[0])
		return;
	check_exec_shape(ev[0], what, false);
	ev[1] = wait_exit_of(ev[0], what);
	for (i = 0; i < 2; i++) {
		if (!ev[i])
			continue;
		snprintf(what, sizeof(what), "%s in a %s cgroup (removed)", i ? "EXIT" : "EXEC",
			 c->name);
		if (i)
			check_exit_shape(ev[i], what, false);
		if (c->v2[0])
			want_str(ev[i], what, "cgroup", want_cg);
		else
			want_str(ev[i], what, "cgroup", my_cg2);
		want_int(ev[i], what, "cgroup_id", (long long)c->ino);
		want_str_or_absent(ev[i], what, "container_id", c->cid[0] ? c->cid : NULL);
		want_str_or_absent(ev[i], what, "pod_uid", c->pod[0] ? c->pod : NULL);
		want_str_or_absent(ev[i], what, "unit", c->unit[0] ? c->unit : NULL);
		dump_if_failed(before, ev[i], what);
	}
}

/*
 * A docker systemd scope (v2), a cgroupfs kubepods container (v1 memory) and a kubepods
 * cri-containerd systemd scope (v2). lifemon is stopped (SIGSTOP) while they run and are
 * removed, so it reads every one of these events after its cgroup is gone.
 */
static void case_cgroups(void)
{
	struct cg_case c[3] = { { .name = "docker v2 scope" },
				{ .name = "kubepods v1 memory" },
				{ .name = "kubepods cri-containerd v2 scope" } };
	char uuid[37], uuid_us[37], hex[3][65], h[40];
	int i, n = 0;

	if (!cg2_mnt[0] || !my_cg2[0]) {
		lm_it_note("cgroup cases NOT RUN: no cgroup2 mount");
		if (getenv("CI") && !strcmp(getenv("CI"), "true"))
			lm_it_fail("cgroup cases need a cgroup2 mount");
		return;
	}
	for (i = 0; i < 3; i++)
		rand_hex(hex[i], 64);
	rand_hex(h, 32);
	snprintf(uuid, sizeof(uuid), "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
	snprintf(uuid_us, sizeof(uuid_us), "%.8s_%.4s_%.4s_%.4s_%.12s", h, h + 8, h + 12, h + 16,
		 h + 20);

	snprintf(c[0].v2, sizeof(c[0].v2), IT_CG_BASE "/docker-%s.scope", hex[0]);
	snprintf(c[0].cid, sizeof(c[0].cid), "%s", hex[0]);
	snprintf(c[0].unit, sizeof(c[0].unit), "docker-%s.scope", hex[0]);

	snprintf(c[1].v2, sizeof(c[1].v2), IT_CG_BASE "/lm-plain");
	snprintf(c[1].v1, sizeof(c[1].v1), IT_CG_BASE "/kubepods/burstable/pod%s/%s", uuid, hex[1]);
	snprintf(c[1].cid, sizeof(c[1].cid), "%s", hex[1]);
	snprintf(c[1].pod, sizeof(c[1].pod), "%s", uuid);

	snprintf(c[2].v2, sizeof(c[2].v2),
		 IT_CG_BASE "/kubepods.slice/kubepods-burstable.slice/"
			    "kubepods-burstable-pod%s.slice/cri-containerd-%s.scope",
		 uuid_us, hex[2]);
	snprintf(c[2].cid, sizeof(c[2].cid), "%s", hex[2]);
	snprintf(c[2].pod, sizeof(c[2].pod), "%s", uuid);
	snprintf(c[2].unit, sizeof(c[2].unit), "cri-containerd-%s.scope", hex[2]);

	for (i = 0; i < 3; i++)
		snprintf(c[i].marker, sizeof(c[i].marker), "%s-cg%d", base, i);

	LM_IT_ASSERT(kill(lm_it_proc_pid(lm), SIGSTOP) == 0, "SIGSTOP lifemon: %s",
		     strerror(errno));
	lm_stopped = true;
	for (i = 0; i < 3; i++) {
		if (c[i].v1[0] && !v1mem_mnt[0]) {
			lm_it_note("cgroup case %s NOT RUN: no v1 memory hierarchy", c[i].name);
			continue;
		}
		cg_run(&c[i]);
		n++;
	}
	kill(lm_it_proc_pid(lm), SIGCONT);
	lm_stopped = false;
	for (i = 0; i < 3; i++)
		if (c[i].ino)
			cg_check(&c[i]);
	lm_it_note("cgroup cases: %d run, all cgroups removed before lifemon read the events", n);
}

/* --- OOM in a dedicated memory cgroup named like a docker container --- */

static char oom_procs[PATH_MAX + 320]; /* cgroup.procs the victim joins */
static int oom_rep_fd = -1;
static char *oom_mem[IT_OOM_CAP_STEPS];

static int oom_victim(void *arg)
{
	char pid_s[32];
	size_t i, j;

	(void)arg;
	snprintf(pid_s, sizeof(pid_s), "%d", getpid());
	if (write_file(oom_procs, pid_s))
		return 90;
	if (write_file("/proc/self/oom_score_adj", "500"))
		return 91;
	if (prctl(PR_SET_NAME, IT_OOM_COMM) < 0)
		return 92;
	if (dprintf(oom_rep_fd, "%lld\n", stat_start_ticks(getpid())) < 0)
		return 93;
	close(oom_rep_fd);
	for (i = 0; i < IT_OOM_CAP_STEPS; i++) {
		oom_mem[i] = malloc(IT_OOM_STEP);
		if (!oom_mem[i])
			break;
		for (j = 0; j < IT_OOM_STEP; j += 4096)
			((volatile char *)oom_mem[i])[j] = (char)(i + j + 1);
	}
	return 0;
}

static void case_oom(void)
{
	char hex[65], rel[256], want_memcg[300], dir[PATH_MAX + 300], path[PATH_MAX + 400];
	char buf[64], rep[64] = "";
	const char *what_o = "OOM_KILL of the victim", *what_x = "EXIT of the OOM victim";
	unsigned int before = lm_it_failures();
	struct pid_since m = { .pid = -1 };
	const json_t *oom, *xt;
	bool v1 = v1mem_mnt[0] != '\0';
	long long ticks = -1;
	int fds[2], status, err;
	ssize_t r;

	rand_hex(hex, 64);
	if (v1) {
		snprintf(rel, sizeof(rel), IT_CG_BASE "/docker/%s", hex);
		cg_mkdir(v1mem_mnt, rel);
		snprintf(dir, sizeof(dir), "%s/%s", v1mem_mnt, rel);
		snprintf(path, sizeof(path), "%s/memory.limit_in_bytes", dir);
		err = write_file(path, IT_OOM_LIMIT);
		LM_IT_ASSERT(!err, "%s: %s", path, strerror(-err));
		snprintf(path, sizeof(path), "%s/memory.memsw.limit_in_bytes", dir);
		if (access(path, F_OK) == 0) {
			err = write_file(path, IT_OOM_LIMIT);
			LM_IT_ASSERT(!err, "%s: %s", path, strerror(-err));
		}
		snprintf(path, sizeof(path), "%s/memory.swappiness", dir);
		write_file(path, "0");
	} else {
		LM_IT_ASSERT(cg2_mnt[0], "no memory cgroup hierarchy for the OOM case");
		snprintf(rel, sizeof(rel), IT_CG_BASE "/docker-%s.scope", hex);
		snprintf(path, sizeof(path), "%s/cgroup.subtree_control", cg2_mnt);
		write_file(path, "+memory");
		cg_mkdir(cg2_mnt, IT_CG_BASE);
		snprintf(path, sizeof(path), "%s/" IT_CG_BASE "/cgroup.subtree_control", cg2_mnt);
		err = write_file(path, "+memory");
		LM_IT_ASSERT(!err, "%s: %s", path, strerror(-err));
		cg_mkdir(cg2_mnt, rel);
		snprintf(dir, sizeof(dir), "%s/%s", cg2_mnt, rel);
		snprintf(path, sizeof(path), "%s/memory.max", dir);
		err = write_file(path, IT_OOM_LIMIT);
		LM_IT_ASSERT(!err, "%s: %s", path, strerror(-err));
		snprintf(path, sizeof(path), "%s/memory.swap.max", dir);
		if (access(path, F_OK) == 0)
			write_file(path, "0");
	}
	snprintf(want_memcg, sizeof(want_memcg), "/%s", rel);
	snprintf(oom_procs, sizeof(oom_procs), "%s/cgroup.procs", dir);
	LM_IT_ASSERT(pipe(fds) == 0, "pipe: %s", strerror(errno));
	oom_rep_fd = fds[1];
	m.since_ns = lm_it_realtime_ns() - 1000 * IT_MS;
	err = lm_it_fork_fn(oom_victim, NULL, &case_pid);
	LM_IT_ASSERT(!err, "fork the OOM victim: %s", strerror(-err));
	m.pid = case_pid;
	close(fds[1]);
	r = read(fds[0], rep, sizeof(rep) - 1);
	close(fds[0]);
	if (r > 0)
		ticks = strtoll(rep, NULL, 10);
	err = lm_it_reap(case_pid, 30000, &status);
	LM_IT_ASSERT(!err, "OOM victim %d still running after 30 s", m.pid);
	case_pid = -1;
	cg_sweep();
	LM_IT_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		     "test setup: the victim was not OOM-killed (%s)",
		     lm_it_wstatus_str(status, buf, sizeof(buf)));
	LM_IT_ASSERT(ticks >= 0, "test setup: the victim did not report its start time");

	m.type = "OOM_KILL";
	oom = tail_wait(pred_pid_since, &m, LM_IT_EVENT_MS);
	LM_IT_EXPECT(oom, "no OOM_KILL for the victim %d within %d ms", m.pid, LM_IT_EVENT_MS);
	m.type = "EXIT";
	xt = tail_wait(pred_pid_since, &m, LM_IT_EVENT_MS);
	LM_IT_EXPECT(xt, "no EXIT for the OOM victim %d within %d ms", m.pid, LM_IT_EVENT_MS);
	if (oom) {
		want_key(oom, what_o, "key", m.pid, ticks);
		want_key(oom, what_o, "parent_key", getpid(), my_ticks);
		want_str(oom, what_o, "memcg", want_memcg);
		want_int(oom, what_o, "oom_score_adj", IT_OOM_ADJ);
		want_str(oom, what_o, "constraint", "memcg");
		want_str(oom, what_o, "container_id", hex);
		want_str(oom, what_o, "comm", IT_OOM_COMM);
		if (v1) /* its v2 cgroup is the test's; the container shows in the v1 memcg */
			want_host_cgroup_of(oom, what_o, false);
		dump_if_failed(before, oom, what_o);
	}
	if (xt) {
		check_exit_shape(xt, what_x, true);
		want_key(xt, what_x, "key", m.pid, ticks);
		want_int(xt, what_x, "signal", SIGKILL);
		want_str(xt, what_x, "container_id", hex);
		dump_if_failed(before, xt, what_x);
	}
	if (oom && xt) {
		want_same(oom, "key", xt, "key", "OOM_KILL vs the victim's EXIT");
		want_same(oom, "parent_key", xt, "parent_key", "OOM_KILL vs the victim's EXIT");
	}
	lm_it_note("OOM: victim %d in %s cgroup %s: OOM_KILL %s, EXIT %s", m.pid, v1 ? "v1" : "v2",
		   want_memcg, oom ? "found" : "missing", xt ? "found" : "missing");
}

/* --- the argument cap --- */

/* Whole arguments exact, then at most one cut piece; argc true; kept bytes cut at `cap`. */
static void want_capped(const json_t *ev, const char *what, char *const *argv, size_t argc,
			long cap)
{
	const json_t *args = json_object_get(ev, "args"), *tr = json_object_get(ev, "truncated");
	size_t i, n = json_array_size(args), full = 0, kept = 0;
	bool cut;

	for (i = 0; i < argc; i++)
		full += strlen(argv[i]) + 1;
	cut = full > (size_t)cap;
	want_int(ev, what, "argc", (long long)argc);
	if (!cut) {
		want_args(ev, what, argv, argc);
		want_absent(ev, what, "truncated");
		return;
	}
	if (!json_is_array(tr) || json_array_size(tr) != 1 ||
	    !jstr_is(json_array_get(tr, 0), "args", 4))
		lm_it_fail("%s: \"truncated\": want [\"args\"], got %s", what,
			   got(ev, "truncated"));
	if (n == 0 || n > argc) {
		lm_it_fail("%s: \"args\": want 1..%zu entries, got %zu", what, argc, n);
		return;
	}
	for (i = 0; i < n; i++) {
		const json_t *v = json_array_get(args, i);
		size_t l = json_string_length(v);

		if (!json_is_string(v) || l > strlen(argv[i]) ||
		    memcmp(json_string_value(v), argv[i], l)) {
			lm_it_fail(
				"%s: \"args\"[%zu] is not (a prefix of) the argument (%zu bytes): "
				"got %.80s",
				what, i, strlen(argv[i]), json_string_value(v));
			return;
		}
		if (i + 1 < n && l != strlen(argv[i])) {
			lm_it_fail(
				"%s: \"args\"[%zu] is cut to %zu of %zu bytes but is not the last",
				what, i, l, strlen(argv[i]));
			return;
		}
		kept += l + (i + 1 < n ? 1 : 0);
	}
	/*
	 * kept: the bytes of the area the args stand for, without the last one's NUL. Cut at
	 * exactly `cap` bytes it is cap (a piece, or a whole arg whose NUL fell past the cut) or
	 * cap - 1 (a whole arg ending at the cut); one less if the piece keeps room for a NUL.
	 */
	if (kept > (size_t)cap || kept + 2 < (size_t)cap)
		lm_it_fail("%s: \"args\" stand for %zu bytes of the argument area (NULs between "
			   "them included), want %ld to %ld (cut at the cap) of %zu",
			   what, kept, cap - 2, cap, full);
	lm_it_note("%s: cap %ld: %zu of %zu args, %zu of %zu bytes kept", what, cap, n, argc, kept,
		   full);
}

/* A 100 KiB argument and 5,000 arguments under --max-args-bytes `cap`. */
static void case_cap(long cap)
{
	char mbig[96], mmany[96], what[128];
	char *big = malloc(IT_BIG_ARG_BYTES + 1);
	char **many = calloc(IT_MANY_ARGS + 2, sizeof(*many));
	char *bargv[] = { "/bin/true", mbig, big, NULL };
	struct exec_spec s = { .path = "/bin/true", .fexec_fd = -1, .gate_fd = -1 };
	unsigned int before = lm_it_failures();
	const json_t *ev;
	size_t i;

	LM_IT_ASSERT(big && many, "out of memory");
	snprintf(mbig, sizeof(mbig), "%s-big-%ld", base, cap);
	snprintf(mmany, sizeof(mmany), "%s-many-%ld", base, cap);
	for (i = 0; i < IT_BIG_ARG_BYTES; i++)
		big[i] = (char)('a' + (i * 7 + i / 26) % 26);
	big[IT_BIG_ARG_BYTES] = '\0';
	many[0] = "/bin/true";
	many[1] = mmany;
	for (i = 2; i <= IT_MANY_ARGS; i++) {
		many[i] = malloc(16);
		LM_IT_ASSERT(many[i], "out of memory");
		snprintf(many[i], 16, "%zu", i);
	}

	s.argv = bargv;
	run_exec(&s, "100 KiB argument");
	s.argv = many;
	run_exec(&s, "5000 arguments");

	snprintf(what, sizeof(what), "EXEC with a 100 KiB argument (--max-args-bytes %ld)", cap);
	ev = wait_exec_arg(mbig, what);
	if (ev) {
		check_exec_shape(ev, what, true);
		want_capped(ev, what, bargv, 3, cap);
		dump_if_failed(before, ev, what);
	}
	before = lm_it_failures();
	snprintf(what, sizeof(what), "EXEC with 5000 arguments (--max-args-bytes %ld)", cap);
	ev = wait_exec_arg(mmany, what);
	if (ev) {
		check_exec_shape(ev, what, true);
		want_capped(ev, what, many, IT_MANY_ARGS + 1, cap);
		dump_if_failed(before, ev, what);
	}
	for (i = 2; i <= IT_MANY_ARGS; i++)
		free(many[i]);
	free(many);
	free(big);
}

/* --max-args-bytes outside 64..65536 is a usage error: exit 2, one line on stderr. */
static void case_bad_cap(const char *val)
{
	char *argv[] = { (char *)lm_it_bin(), "--listen",  "127.0.0.1:18107",
			 "--max-args-bytes",  (char *)val, NULL };
	struct lm_it_proc *p = NULL;
	char *err_text = NULL, buf[64];
	size_t len = 0, i, lines = 0;
	int status = 0, err;

	err = lm_it_proc_spawn(argv, false, &p);
	LM_IT_ASSERT(!err, "spawn lifemon: %s", strerror(-err));
	err = lm_it_proc_wait(p, 5000, &status);
	LM_IT_EXPECT(!err, "--max-args-bytes %s: lifemon still running after 5 s", val);
	if (!err) {
		LM_IT_EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 2,
			     "--max-args-bytes %s: want exit 2, got %s", val,
			     lm_it_wstatus_str(status, buf, sizeof(buf)));
		lm_it_proc_stderr(p, &err_text, &len);
		for (i = 0; i < len; i++)
			lines += err_text[i] == '\n';
		LM_IT_EXPECT(lines == 1 && len && err_text[len - 1] == '\n' &&
				     !strncmp(err_text, "lifemon:", 8) &&
				     !strstr(err_text, "unknown option"),
			     "--max-args-bytes %s: want one \"lifemon:\" line on stderr (a range "
			     "error, not an unknown option), got %zu: %s",
			     val, lines, err_text ? err_text : "");
		lm_it_note("--max-args-bytes %s: %s: %.*s", val,
			   lm_it_wstatus_str(status, buf, sizeof(buf)),
			   (int)strcspn(err_text ? err_text : "", "\n"), err_text ? err_text : "");
	}
	free(err_text);
	lm_it_proc_free(p);
}

/* --- lifemon --- */

static void lm_start(uint16_t port, const char *out_name, const char *cap)
{
	char out[PATH_MAX + 64], marker[96];
	const char *extra[5] = { "--output", out, NULL };
	char *argv[] = { "/bin/true", marker, NULL };
	struct exec_spec s = { .path = "/bin/true", .argv = argv, .fexec_fd = -1, .gate_fd = -1 };
	const json_t *ev;
	int err;

	snprintf(out, sizeof(out), "%s/%s", tdir, out_name);
	if (cap) {
		extra[2] = "--max-args-bytes";
		extra[3] = cap;
	}
	err = lm_it_lifemon_start(port, extra, false, &lm);
	LM_IT_ASSERT(!err, "lifemon %s%s did not become healthy: %s",
		     cap ? "--max-args-bytes " : "", cap ? cap : "", strerror(-err));
	tail_open(out);
	snprintf(marker, sizeof(marker), "%s-sync-%u", base, port);
	run_exec(&s, "sync");
	ev = tail_wait(pred_exec_arg, marker, LM_IT_EVENT_MS);
	if (!ev) {
		tail_wait(pred_exec_filename, "/bin/true", 1);
		lm_it_proc_dump_stderr(lm, "lifemon");
		lm_it_fatal("no EXEC of /bin/true %s in --output within %d ms (%u lines read): the "
			    "stream has no args?",
			    marker, LM_IT_EVENT_MS, tl.lines);
	}
}

static void lm_stop(const char *name)
{
	char buf[64];
	int64_t ms = 0;
	int st = 0, err;

	err = lm_it_proc_stop(lm, SIGTERM, LM_IT_STOP_MS, &st, &ms);
	LM_IT_EXPECT(!err && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		     "%s ended with %s (%s) after SIGTERM, want exit 0", name,
		     lm_it_wstatus_str(st, buf, sizeof(buf)), err ? "timed out" : "in time");
	tail_pump();
	lm_it_note("%s: %u lines in --output, last seq %lld", name, tl.lines, tl.last_seq);
	if (lm_it_failures())
		lm_it_proc_dump_stderr(lm, name);
	lm_it_proc_free(lm);
	lm = NULL;
}

static void read_self(void)
{
	char path[64];
	int fd;
	ssize_t n;

	LM_IT_ASSERT(realpath("/proc/self/exe", self_exe), "realpath /proc/self/exe: %s",
		     strerror(errno));
	snprintf(base, sizeof(base), "lmf-%d", getpid());
	snprintf(path, sizeof(path), "/proc/self/comm");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, my_comm, sizeof(my_comm) - 1) : -1;
	if (fd >= 0)
		close(fd);
	LM_IT_ASSERT(n > 0, "/proc/self/comm: %s", strerror(errno));
	my_comm[strcspn(my_comm, "\n")] = '\0';
	my_ticks = stat_start_ticks(getpid());
	LM_IT_ASSERT(my_ticks >= 0, "/proc/self/stat: no start time");
	tick_ns = 1000000000LL / sysconf(_SC_CLK_TCK);
}

int main(int argc, char **argv)
{
	if (argc >= 6 && !strcmp(argv[1], "--lmf-gen"))
		return gen_main(argv);
	if (argc == 3 && !strcmp(argv[1], "--lmf-burn"))
		return burn_main();
	lm_it_init("it_fields", argc, argv, 110);
	lm_it_require_env();
	read_self();
	find_cgroup_mounts();
	snprintf(tdir, sizeof(tdir), "/tmp/lm-it-fields.XXXXXX");
	LM_IT_ASSERT(mkdtemp(tdir), "mkdtemp: %s", strerror(errno));
	LM_IT_ASSERT(chmod(tdir, 0755) == 0, "chmod %s: %s", tdir, strerror(errno));
	lm_it_on_cleanup(cleanup, NULL);
	cg_sweep(); /* what a run killed by its watchdog left */

	case_bad_cap("10");
	case_bad_cap("63");
	case_bad_cap("65537");
	case_bad_cap("70000");

	case_early_start();
	lm_start(IT_PORT, "events.jsonl", NULL);
	case_early_check();
	case_burn();
	case_args();
	case_relative_link();
	case_hex_names();
	case_deep_cwd();
	case_fexecve();
	case_script(NULL);
	case_script("-e");
	case_setuid();
	case_generations();
	case_cgroups();
	case_oom();
	case_cap(4096);
	lm_stop("lifemon (default cap)");

	lm_start(IT_PORT2, "events-64k.jsonl", "65536");
	case_cap(65536);
	lm_stop("lifemon --max-args-bytes 65536");
	return lm_it_finish();
}
