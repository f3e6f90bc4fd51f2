// SPDX-License-Identifier: GPL-2.0
/*
 * Kernel matrix (tests/vm): the guest's verdict. Reads lifemon's JSON Lines file (and a
 * /metrics snapshot) after the smoke set of tests/vm/init.sh and prints one line per check,
 * "LMVM RESULT <check> PASS|FAIL <details>", for the host driver to read off the serial
 * console. Exit status 0 when every requested check passed, 1 otherwise, 2 on bad usage.
 * Single-threaded; python is not in the guest, jansson is.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <jansson.h>

#define VM_PID_LIMIT 4194304 /* PID_MAX_LIMIT on 64-bit, if pid_max cannot be read */
#define VM_MAX_EXPECT 16
#define VM_SHOW_MAX 5	/* duplicates and violations listed per check */
#define VM_POLL_MS 250	/* between /metrics snapshots */
#define VM_POLL_CNT 120 /* snapshots before the books are declared unbalanced */

enum vm_type { VM_EXEC = 1, VM_EXIT = 2, VM_OOM = 3, VM_TYPE_CNT };

static const char *const vm_type_metric[VM_TYPE_CNT] = { NULL, "exec", "exit", "oom_kill" };

/* What the file says about one pid, in file order. */
struct vm_pid {
	uint64_t exec_seq; /* seq of the first EXEC, 0 if none */
	uint64_t exit_seq; /* seq of the first EXIT, 0 if none */
	uint64_t oom_seq;  /* seq of the first OOM_KILL, 0 if none */
	uint32_t exit_cnt; /* EXIT events seen for this pid */
	int exit_code;	   /* of the first EXIT */
	int signal;	   /* of the first EXIT */
	int dup_tid[2];	   /* tids of the first two EXITs, for the report */
};

struct vm_expect {
	int pid;
	int val;
};

static struct vm_pid *pids; /* pid_max entries */
static long pid_max;
static uint64_t type_cnt[VM_TYPE_CNT];
static unsigned int failures;

static void result(const char *check, bool pass, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void result(const char *check, bool pass, const char *fmt, ...)
{
	va_list ap;

	printf("LMVM RESULT %s %s ", check, pass ? "PASS" : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!pass)
		failures++;
}

static enum vm_type type_of(const char *s)
{
	if (!strcmp(s, "EXEC"))
		return VM_EXEC;
	if (!strcmp(s, "EXIT"))
		return VM_EXIT;
	if (!strcmp(s, "OOM_KILL"))
		return VM_OOM;
	return 0;
}

static json_int_t int_of(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? json_integer_value(v) : -1;
}

/*
 * One pass over the file: seq runs 1, 2, 3... without gaps, timestamps never go back, no
 * LOST notices, every line is a JSON object, and no EXEC of a pid comes after its EXIT.
 */
static int scan_events(const char *path)
{
	uint64_t lines = 0, bad_json = 0, lost = 0, seq_gaps = 0, ts_back = 0, exec_after = 0;
	json_int_t want_seq = 1, last_ts = 0;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;

	f = fopen(path, "r");
	if (!f) {
		result("events", false, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	while ((n = getline(&line, &cap, f)) > 0) {
		json_error_t jerr;
		json_t *o = json_loadb(line, n, 0, &jerr);
		const char *ts_name;
		json_int_t seq, ts, pid;
		struct vm_pid *p;
		enum vm_type t;

		lines++;
		if (!json_is_object(o)) {
			if (bad_json++ < VM_SHOW_MAX)
				fprintf(stderr, "vm_check: line %" PRIu64 ": %s\n", lines,
					jerr.text);
			json_decref(o);
			continue;
		}
		ts_name = json_string_value(json_object_get(o, "type"));
		if (ts_name && !strcmp(ts_name, "LOST")) {
			lost++;
			fprintf(stderr, "vm_check: %.*s", (int)n, line);
			json_decref(o);
			continue;
		}
		t = ts_name ? type_of(ts_name) : 0;
		seq = int_of(o, "seq");
		ts = int_of(o, "timestamp");
		pid = int_of(o, "pid");
		if (!t || seq < 1 || ts < 0 || pid < 0 || pid >= pid_max) {
			if (bad_json++ < VM_SHOW_MAX)
				fprintf(stderr, "vm_check: line %" PRIu64 ": bad event\n", lines);
			json_decref(o);
			continue;
		}
		p = &pids[pid];
		type_cnt[t]++;
		if (seq != want_seq && seq_gaps++ < VM_SHOW_MAX)
			fprintf(stderr, "vm_check: seq %lld where %lld was due\n", (long long)seq,
				(long long)want_seq);
		want_seq = seq + 1;
		if (ts < last_ts && ts_back++ < VM_SHOW_MAX)
			fprintf(stderr, "vm_check: seq %lld: timestamp %lld before %lld\n",
				(long long)seq, (long long)ts, (long long)last_ts);
		if (ts > last_ts)
			last_ts = ts;
		switch (t) {
		case VM_EXEC:
			if (p->exit_seq && exec_after++ < VM_SHOW_MAX)
				fprintf(stderr,
					"vm_check: pid %lld: EXEC seq %lld after EXIT seq %" PRIu64
					"\n",
					(long long)pid, (long long)seq, p->exit_seq);
			if (!p->exec_seq)
				p->exec_seq = seq;
			break;
		case VM_EXIT:
			if (p->exit_cnt < 2)
				p->dup_tid[p->exit_cnt] = (int)int_of(o, "tid");
			if (!p->exit_cnt++) {
				p->exit_seq = seq;
				p->exit_code = (int)int_of(o, "exit_code");
				p->signal = (int)int_of(o, "signal");
			}
			break;
		case VM_OOM:
			if (!p->oom_seq)
				p->oom_seq = seq;
			break;
		default:
			break;
		}
		json_decref(o);
	}
	free(line);
	fclose(f);
	result("events", lines > 0 && !bad_json,
	       "lines=%" PRIu64 " exec=%" PRIu64 " exit=%" PRIu64 " oom_kill=%" PRIu64
	       " bad=%" PRIu64,
	       lines, type_cnt[VM_EXEC], type_cnt[VM_EXIT], type_cnt[VM_OOM], bad_json);
	result("seq", !seq_gaps && !lost, "last=%lld gaps=%" PRIu64 " lost_notices=%" PRIu64,
	       (long long)want_seq - 1, seq_gaps, lost);
	result("time_order", !ts_back, "backwards=%" PRIu64, ts_back);
	result("exec_before_exit", !exec_after, "exec_after_exit=%" PRIu64, exec_after);
	return 0;
}

/* A process that exited with `code`: its EXEC, then one EXIT with that code and no signal. */
static void check_exit(const struct vm_expect *e)
{
	const struct vm_pid *p = &pids[e->pid];

	result("exit_code",
	       p->exec_seq && p->exit_cnt == 1 && p->exec_seq < p->exit_seq &&
		       p->exit_code == e->val && p->signal == 0,
	       "pid=%d want=%d exec_seq=%" PRIu64 " exits=%u exit_code=%d signal=%d", e->pid,
	       e->val, p->exec_seq, p->exit_cnt, p->exit_code, p->signal);
}

/* A process killed by `sig`: its EXEC, then one EXIT with that signal and 128 + sig. */
static void check_signal(const struct vm_expect *e)
{
	const struct vm_pid *p = &pids[e->pid];

	result("exit_signal",
	       p->exec_seq && p->exit_cnt == 1 && p->exec_seq < p->exit_seq &&
		       p->signal == e->val && p->exit_code == 128 + e->val,
	       "pid=%d want=%d exec_seq=%" PRIu64 " exits=%u exit_code=%d signal=%d", e->pid,
	       e->val, p->exec_seq, p->exit_cnt, p->exit_code, p->signal);
}

/* A memcg OOM victim: OOM_KILL for it, then one EXIT with SIGKILL. */
static void check_oom(int pid)
{
	const struct vm_pid *p = &pids[pid];

	result("oom_kill",
	       p->oom_seq && p->exit_cnt == 1 && p->oom_seq < p->exit_seq && p->signal == 9,
	       "pid=%d oom_seq=%" PRIu64 " exit_seq=%" PRIu64 " exits=%u signal=%d", pid,
	       p->oom_seq, p->exit_seq, p->exit_cnt, p->signal);
}

/* The exit_group storm: exactly one EXIT per process, with the storm's exit code. */
static void check_storm(const char *name, const char *pidfile, int code)
{
	unsigned int procs = 0, dups = 0, dup_procs = 0, missing = 0, bad_code = 0, shown = 0;
	char buf[64];
	FILE *f;

	f = fopen(pidfile, "r");
	if (!f) {
		result(name, false, "cannot open %s: %s", pidfile, strerror(errno));
		return;
	}
	while (fgets(buf, sizeof(buf), f)) {
		long pid = strtol(buf, NULL, 10);
		const struct vm_pid *p;

		if (pid <= 0 || pid >= pid_max)
			continue;
		p = &pids[pid];
		procs++;
		if (!p->exit_cnt)
			missing++;
		if (p->exit_cnt > 1) {
			dups += p->exit_cnt - 1;
			dup_procs++;
			if (shown++ < VM_SHOW_MAX)
				fprintf(stderr, "vm_check: storm pid %ld: %u EXITs (tids %d, %d)\n",
					pid, p->exit_cnt, p->dup_tid[0], p->dup_tid[1]);
		}
		if (p->exit_cnt && (p->exit_code != code || p->signal != 0))
			bad_code++;
	}
	fclose(f);
	result(name, procs > 0 && !dups && !missing && !bad_code,
	       "procs=%u duplicates=%u dup_procs=%u missing=%u bad_code=%u", procs, dups, dup_procs,
	       missing, bad_code);
}

/* Value of `name{label}` (label may be "") in a Prometheus text file, or -1. */
static long long metric(const char *path, const char *name, const char *label)
{
	char line[512], want[256];
	long long v = -1;
	size_t len;
	FILE *f;

	f = fopen(path, "r");
	if (!f)
		return -1;
	len = (size_t)snprintf(want, sizeof(want), "%s%s ", name, label);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, want, len)) {
			v = strtoll(line + len, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/*
 * The books of a /metrics snapshot: kernel_seen = kernel_dropped + read for every type (the
 * per-CPU counters of the BPF programs against the reader's), nothing dropped, nothing
 * invalid. Returns true when they balance.
 */
static bool check_books(const char *path, bool report)
{
	long long seen[VM_TYPE_CNT], dropped[VM_TYPE_CNT], rd[VM_TYPE_CNT], invalid, sink_drop;
	bool ok = true;
	char label[64];
	int t;

	for (t = 1; t < VM_TYPE_CNT; t++) {
		snprintf(label, sizeof(label), "{type=\"%s\"}", vm_type_metric[t]);
		seen[t] = metric(path, "lifemon_events_total", label);
		dropped[t] = metric(path, "lifemon_kernel_dropped_total", label);
		rd[t] = metric(path, "lifemon_read_total", label);
		if (seen[t] < 0 || dropped[t] != 0 || rd[t] < 0 || seen[t] != dropped[t] + rd[t])
			ok = false;
	}
	invalid = metric(path, "lifemon_reader_invalid_total", "");
	sink_drop = metric(path, "lifemon_sink_dropped_total", "{sink=\"file\"}");
	if (invalid != 0 || sink_drop != 0)
		ok = false;
	if (report)
		result("books", ok,
		       "exec=%lld/%lld/%lld exit=%lld/%lld/%lld oom_kill=%lld/%lld/%lld "
		       "(seen/dropped/read) reader_invalid=%lld sink_dropped=%lld",
		       seen[1], dropped[1], rd[1], seen[2], dropped[2], rd[2], seen[3], dropped[3],
		       rd[3], invalid, sink_drop);
	return ok;
}

/* GET http://127.0.0.1:port/metrics into `path`. Returns 0 or -errno. */
static int fetch_metrics(int port, const char *path)
{
	static const char req[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	char buf[65536], *body;
	size_t len = 0;
	int fd, err = 0;
	ssize_t n;
	FILE *f;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    write(fd, req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1) {
		err = -errno;
		goto out;
	}
	while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	body = strstr(buf, "\r\n\r\n");
	if (strncmp(buf, "HTTP/1.", 7) || !strstr(buf, " 200 ") || !body) {
		err = -EPROTO;
		goto out;
	}
	f = fopen(path, "w");
	if (!f) {
		err = -errno;
		goto out;
	}
	fputs(body + 4, f);
	if (fclose(f))
		err = -errno;
out:
	close(fd);
	return err;
}

/*
 * Snapshots /metrics into `path` until the books balance, from one process that starts no
 * other, so that no event of the poll itself is in flight between kernel and reader while a
 * snapshot is taken. Returns 0 once balanced, 1 if they never did.
 */
static int poll_books(int port, const char *path)
{
	struct timespec pause = { 0, VM_POLL_MS * 1000000L };
	int i;

	for (i = 0; i < VM_POLL_CNT; i++) {
		nanosleep(&pause, NULL); /* first: lets the reader pass this process's EXEC */
		if (!fetch_metrics(port, path) && check_books(path, false)) {
			printf("LMVM STEP books balanced after %d snapshots\n", i + 1);
			return 0;
		}
	}
	printf("LMVM STEP books still unbalanced after %d snapshots\n", i);
	return 1;
}

static int parse_expect(const char *arg, struct vm_expect *e)
{
	char *end;
	long pid = strtol(arg, &end, 10);

	if (*end != ':' || pid <= 0 || pid >= pid_max)
		return -EINVAL;
	e->pid = (int)pid;
	e->val = (int)strtol(end + 1, NULL, 10);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: vm_check --poll-books PORT METRICS\n"
			"       vm_check EVENTS [--exit PID:CODE] [--signal PID:SIG] [--oom PID]\n"
			"                [--storm PIDFILE:CODE] [--metrics METRICS]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct vm_expect ex[VM_MAX_EXPECT], sg[VM_MAX_EXPECT], storm[VM_MAX_EXPECT];
	int nex = 0, nsg = 0, nstorm = 0, oom = 0, i;
	const char *metrics = NULL;
	char *storm_file[VM_MAX_EXPECT];
	FILE *f;

	if (argc == 4 && !strcmp(argv[1], "--poll-books"))
		return poll_books(atoi(argv[2]), argv[3]);
	if (argc < 2)
		usage();
	f = fopen("/proc/sys/kernel/pid_max", "r");
	if (!f || fscanf(f, "%ld", &pid_max) != 1 || pid_max <= 0 || pid_max > VM_PID_LIMIT)
		pid_max = VM_PID_LIMIT;
	if (f)
		fclose(f);
	for (i = 2; i < argc; i++) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!val)
			usage();
		i++;
		if (!strcmp(opt, "--exit") && nex < VM_MAX_EXPECT) {
			if (parse_expect(val, &ex[nex++]))
				usage();
		} else if (!strcmp(opt, "--signal") && nsg < VM_MAX_EXPECT) {
			if (parse_expect(val, &sg[nsg++]))
				usage();
		} else if (!strcmp(opt, "--oom")) {
			oom = atoi(val);
		} else if (!strcmp(opt, "--storm") && nstorm < VM_MAX_EXPECT) {
			char *colon = strrchr(val, ':');

			if (!colon)
				usage();
			storm_file[nstorm] = strndup(val, colon - val);
			storm[nstorm++].val = atoi(colon + 1);
		} else if (!strcmp(opt, "--metrics")) {
			metrics = val;
		} else {
			usage();
		}
	}
	pids = calloc(pid_max, sizeof(*pids));
	if (!pids) {
		fprintf(stderr, "vm_check: out of memory\n");
		return 2;
	}
	if (scan_events(argv[1]) == 0) {
		for (i = 0; i < nex; i++)
			check_exit(&ex[i]);
		for (i = 0; i < nsg; i++)
			check_signal(&sg[i]);
		if (oom > 0 && oom < pid_max)
			check_oom(oom);
		for (i = 0; i < nstorm; i++) {
			char name[32];

			snprintf(name, sizeof(name), "storm%d", i + 1);
			check_storm(name, storm_file[i], storm[i].val);
		}
	}
	if (metrics)
		check_books(metrics, true);
	for (i = 0; i < nstorm; i++)
		free(storm_file[i]);
	free(pids);
	return failures ? 1 : 0;
}
