/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared harness for the root-only integration tests (tests/it_*.c): preconditions and the
 * SKIP/FAIL protocol, starting and stopping lifemon and workload children by PID, an event
 * collector over the /ws stream, and BPF object listings. Single-threaded: call everything
 * from the test's main thread. Every wait is a deadline loop.
 */
#ifndef LM_IT_UTIL_H
#define LM_IT_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

/* Exit status that ctest's SKIP_RETURN_CODE turns into "Not Run". */
#define LM_IT_EXIT_SKIP 77

/* Deadlines shared by the tests, in ms. */
#define LM_IT_HEALTHY_MS 15000 /* lifemon start until /healthz says 200 */
#define LM_IT_EVENT_MS 10000   /* a workload's event reaches the collector */
#define LM_IT_STOP_MS 2000     /* SIGTERM/SIGINT until lifemon has exited (the contract) */

typedef void (*lm_it_cleanup_fn)(void *arg);
/* Runs in a forked child; its return value becomes the child's exit status. */
typedef int (*lm_it_child_fn)(void *arg);
/* Selects an event from the collector. */
typedef bool (*lm_it_pred_fn)(const json_t *ev, const void *arg);

/*
 * Names the test for SKIP/FAIL lines, takes the lifemon path from argv[1] (exits 1 without
 * it), ignores SIGPIPE and arms a watchdog that kills every tracked child and fails the test
 * after `watchdog_s` seconds (keep it below the ctest TIMEOUT).
 */
void lm_it_init(const char *test, int argc, char **argv, unsigned int watchdog_s);

/* The lifemon binary given on the command line. */
const char *lm_it_bin(void);

/*
 * Checks euid 0, a readable /sys/kernel/btf/vmlinux and that the kernel accepts a trivial
 * BPF program. If one is missing: "SKIP: <test>: <reason>" and exit 77, or with CI=true
 * "FAIL: <test>: <reason>" and exit 1. Does not return when a precondition is missing.
 */
void lm_it_require_env(void);

/* As lm_it_require_env for a test-specific precondition. Never returns. */
void lm_it_skip(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* Path of an executable bpftool (/usr/sbin/bpftool first), or skips the test. */
const char *lm_it_require_bpftool(void);

/* Records a failure ("FAIL: <test>: ...") and carries on. */
void lm_it_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Records a failure, runs the cleanups, kills tracked children and exits 1. */
void lm_it_fatal(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* Progress line on stderr ("INFO: <test>: ..."). */
void lm_it_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Number of failures recorded so far. */
unsigned int lm_it_failures(void);

/* Registers a cleanup run (last registered first) by lm_it_fatal and lm_it_finish. */
void lm_it_on_cleanup(lm_it_cleanup_fn fn, void *arg);

/* Runs the cleanups and prints PASS or the failure count. Returns the exit status (0 or 1). */
int lm_it_finish(void);

#define LM_IT_EXPECT(cond, fmt, ...)                                                  \
	do {                                                                          \
		if (!(cond))                                                          \
			lm_it_fail("%s:%d: " fmt, __FILE__, __LINE__, ##__VA_ARGS__); \
	} while (0)

#define LM_IT_ASSERT(cond, fmt, ...)                                                   \
	do {                                                                           \
		if (!(cond))                                                           \
			lm_it_fatal("%s:%d: " fmt, __FILE__, __LINE__, ##__VA_ARGS__); \
	} while (0)

/* Monotonic and wall clocks. */
int64_t lm_it_now_ms(void);
int64_t lm_it_realtime_ns(void);

/* --- children, tracked by PID so cleanup and the watchdog kill only what we started --- */

/*
 * fork+exec argv (argv[0] is the path) with stdin from /dev/null and PR_SET_PDEATHSIG
 * SIGKILL. `out_fd`/`err_fd` receive stdout/stderr (-1: /dev/null). Returns 0 and *pid, or
 * -errno from fork. An exec failure shows as exit status 127.
 */
int lm_it_spawn(char *const argv[], int out_fd, int err_fd, pid_t *pid);

/* Forks a child that runs fn(arg) and _exits with its result. Returns 0 and *pid or -errno. */
int lm_it_fork_fn(lm_it_child_fn fn, void *arg, pid_t *pid);

/*
 * Reaps `pid` (a child we started), polling every few ms up to timeout_ms. Returns 0 and
 * *status (wait status), or -ETIMEDOUT (the child keeps running), or -errno from waitpid.
 */
int lm_it_reap(pid_t pid, int timeout_ms, int *status);

/* SIGKILLs `pid` (a child we started, not yet reaped) and reaps it. */
void lm_it_kill_reap(pid_t pid);

/* Formats a wait status ("exit 2", "signal 9") into buf; returns buf. */
const char *lm_it_wstatus_str(int status, char *buf, size_t cap);

/*
 * The first 240 bytes of s, printable: other bytes and '\\' as \\xNN, into buf (cap bytes;
 * 5 per byte at most). Returns buf. Any thread.
 */
const char *lm_it_escape_buf(const char *s, size_t len, char *buf, size_t cap);

/* --- lifemon instances --- */

struct lm_it_proc;

/*
 * Starts argv (argv[0] the program) with stderr captured to a temp file and, if
 * `capture_stdout`, stdout to another (else /dev/null). Returns 0 and *out, or -errno.
 */
int lm_it_proc_spawn(char *const argv[], bool capture_stdout, struct lm_it_proc **out);

/*
 * Starts lifemon with "--listen 127.0.0.1:<port>" followed by `extra` (NULL-terminated, may
 * be NULL) and waits until GET /healthz returns 200. Returns 0 and *out; -ETIMEDOUT (lifemon
 * is killed), -ECHILD if lifemon exited first; either way its stderr has been printed.
 */
int lm_it_lifemon_start(uint16_t port, const char *const extra[], bool capture_stdout,
			struct lm_it_proc **out);

/* Polls /healthz until 200. Returns 0, -ECHILD if the process exited, -ETIMEDOUT. */
int lm_it_wait_healthy(struct lm_it_proc *p, uint16_t port, int timeout_ms);

/* Waits for the process to exit by itself. Returns 0 and *status or -ETIMEDOUT. */
int lm_it_proc_wait(struct lm_it_proc *p, int timeout_ms, int *status);

/*
 * Sends `sig` to the process by PID and waits up to timeout_ms for it to exit. Returns 0 with
 * *status and *elapsed_ms (signal to reap), or -ETIMEDOUT after which the process has been
 * SIGKILLed and reaped (*status then says so).
 */
int lm_it_proc_stop(struct lm_it_proc *p, int sig, int timeout_ms, int *status,
		    int64_t *elapsed_ms);

pid_t lm_it_proc_pid(const struct lm_it_proc *p);

/* True until the process has been reaped. */
bool lm_it_proc_is_running(const struct lm_it_proc *p);

/*
 * Reads the captured stderr (or stdout) so far. Returns 0 and *text (malloc'ed, NUL-terminated,
 * caller frees) or -errno; -ENOENT for stdout that was not captured.
 */
int lm_it_proc_stderr(const struct lm_it_proc *p, char **text, size_t *len);
int lm_it_proc_stdout(const struct lm_it_proc *p, char **text, size_t *len);

/* Prints the captured stderr, each line prefixed "  | ", under a heading. */
void lm_it_proc_dump_stderr(const struct lm_it_proc *p, const char *why);

/* Kills (SIGKILL by PID) if still running, reaps, removes temp files, frees. Accepts NULL. */
void lm_it_proc_free(struct lm_it_proc *p);

/* --- event collector over /ws --- */

struct lm_it_coll;

/*
 * Connects to ws://127.0.0.1:<port>/ws (no Origin). Returns 0 and *out, or the
 * lm_wsc_connect error. Every event received is parsed strictly (jansson), checked against
 * the schema and for seq continuity, and kept in arrival order.
 */
int lm_it_coll_open(uint16_t port, struct lm_it_coll **out);

/*
 * Reads messages for up to timeout_ms, returning after the first message that held events.
 * Returns the number of events added, 0 on timeout, or a negative error (the stream is dead:
 * lm_it_coll_check reports it).
 */
int lm_it_coll_pump(struct lm_it_coll *c, int timeout_ms);

/*
 * Returns the first event (from index *idx on, if idx is given) matching pred, reading more
 * until timeout_ms; stores its index in *idx. NULL on timeout or a dead stream. The event is
 * owned by the collector.
 */
const json_t *lm_it_coll_wait(struct lm_it_coll *c, lm_it_pred_fn pred, const void *arg,
			      int timeout_ms, size_t *idx);

/* lm_it_coll_wait for `type` ("EXEC", "EXIT", "OOM_KILL") with "pid" == pid. */
const json_t *lm_it_coll_wait_event(struct lm_it_coll *c, const char *type, pid_t pid,
				    int timeout_ms, size_t *idx);

/*
 * Makes sure the stream is live: runs /bin/true until its EXIT arrives. Returns 0 or
 * -ETIMEDOUT.
 */
int lm_it_coll_sync(struct lm_it_coll *c, int timeout_ms);

size_t lm_it_coll_count(const struct lm_it_coll *c);
const json_t *lm_it_coll_get(const struct lm_it_coll *c, size_t i);

/*
 * Reports (lm_it_fail) every stream problem seen: seq not +1, LOST notices, lines that are not
 * strict JSON objects, schema violations, WS errors. Returns the number of problems.
 */
unsigned int lm_it_coll_check(struct lm_it_coll *c);

/* Sends a close frame and frees; accepts NULL. */
void lm_it_coll_close(struct lm_it_coll *c);

/*
 * Validates one decoded event against the schema. Returns true if valid, else false with the
 * reason in why.
 */
bool lm_it_event_is_valid(const json_t *ev, char *why, size_t cap);

/* Integer member `key` of ev, or `dflt` if absent or not an integer. */
long long lm_it_jint(const json_t *ev, const char *key, long long dflt);

/* String member `key` of ev, or NULL. */
const char *lm_it_jstr(const json_t *ev, const char *key);

/* Compact JSON text of ev for messages; static buffer, valid until the next call. */
const char *lm_it_jdump(const json_t *ev);

/* --- BPF objects --- */

/*
 * Collects the prog ids and link ids that `pid` holds, from /proc/<pid>/fdinfo (prog fds
 * and the progs of link fds). Returns 0 with the counts (at most cap each) or -errno.
 */
int lm_it_bpf_ids_of_pid(pid_t pid, uint32_t *progs, size_t *nprog, uint32_t *links, size_t *nlink,
			 size_t cap);

/* True if any live process other than `except` holds BPF prog `id` (fdinfo scan). */
bool lm_it_bpf_prog_is_held(uint32_t id, pid_t except);

/*
 * Runs "bpftool -j <what> show" (what: "prog" or "link") and parses it strictly. Returns 0
 * and *arr (a JSON array; caller json_decref's) or -errno (-EPROTO for bad JSON or a bpftool
 * failure).
 */
int lm_it_bpftool_show(const char *what, json_t **arr);

/* The entry of arr whose "id" is id, or NULL. */
const json_t *lm_it_bpf_find_id(const json_t *arr, uint32_t id);

/* True if the entry's "pids" array (bpftool built with skeletons) names pid. */
bool lm_it_bpf_entry_has_pid(const json_t *entry, pid_t pid);

/*
 * Reads a whole file (at most 256 MiB). Returns 0 and *text (malloc'ed, NUL-terminated,
 * caller frees) with *len (may be NULL), or -errno (-EFBIG above the cap). Any thread.
 */
int lm_it_read_file(const char *path, char **text, size_t *len);

/* --- /metrics samples --- */

/*
 * GET /metrics from 127.0.0.1:<port>. Returns 0 and *body (malloc'ed, NUL-terminated, caller
 * frees); -EPROTO when the status is not 200; else the lm_wsc_http_get error (-ETIMEDOUT,
 * -ECONNREFUSED, ...). Any thread (each call has its own socket).
 */
int lm_it_metrics_fetch(uint16_t port, int timeout_ms, char **body);

/*
 * Value of the sample line whose text before the value is exactly `series`: a bare name or
 * a name with labels as lifemon prints them (lifemon_read_total{type="exec"}). Returns true
 * and *v, or false when no line matches or its value is not a number. Any thread.
 */
bool lm_it_metric(const char *body, const char *series, double *v);

/* --- accounting /ws reader: loss is allowed but must be announced in-band --- */

/* One event as the accounting reader keeps it. */
struct lm_it_acct_rec {
	long long seq;
	pid_t pid;
	pid_t ppid;
	char type;     /* 'E' EXEC, 'X' EXIT, 'O' OOM_KILL */
	char comm[31]; /* the decoded comm, NUL-terminated, truncated to 30 bytes */
};

struct lm_it_acct_stats {
	long long first_seq; /* first seq accounted for (an event's or a LOST first_seq); 0: none */
	long long last_seq;  /* last seq accounted for (same) */
	uint64_t events;     /* valid events received */
	uint64_t lost_notices; /* LOST lines */
	uint64_t lost_count;   /* sum of their "count" */
	uint64_t lost_slow;    /* of lost_count, notices with reason "slow_client" */
	uint64_t kernel_notices; /* LOST lines with reason "kernel_ring_full" (no seqs) */
	uint64_t kernel_lost[2]; /* sum of their "count", for cpu 0 and for all other CPUs */
	uint64_t messages;     /* text messages */
	uint64_t problems;     /* stream problems, see lm_it_acct_report */
	uint16_t close_code;   /* the server's close code; 0 while it has not closed */
	char close_reason[124];
	int dead; /* 0 while the stream works, else the error that ended it */
};

struct lm_it_acct;

/*
 * Connects to ws://127.0.0.1:<port>/ws (no Origin) for a reader that checks every line
 * strictly (jansson, event schema) and accounts for every seq: each event must carry the seq
 * after the last one accounted for, and a LOST notice must start right there and have
 * count == last_seq - first_seq + 1 and a known reason; a kernel_ring_full notice (events that
 * never got seqs) must name the next seq as before_seq. With `allow_lost` false any LOST
 * notice is a problem too. Every event is kept as a lm_it_acct_rec. An instance belongs to the thread
 * that uses it (one at a time) and never calls lm_it_fail: lm_it_acct_report does, on the main
 * thread. Returns 0 and *out, or the lm_wsc_connect error.
 */
int lm_it_acct_open(uint16_t port, bool allow_lost, struct lm_it_acct **out);

/*
 * Reads for up to timeout_ms, returning after the first text message. Returns the number of
 * lines it held (events and notices), 0 on timeout, or a negative error once the stream is
 * dead (a close from the server is recorded in the stats, not as a problem).
 */
int lm_it_acct_pump(struct lm_it_acct *a, int timeout_ms);

void lm_it_acct_get_stats(const struct lm_it_acct *a, struct lm_it_acct_stats *st);

/* The events kept so far, in arrival order; valid until the next pump. */
const struct lm_it_acct_rec *lm_it_acct_recs(const struct lm_it_acct *a, size_t *n);

/* Reports the problems seen (lm_it_fail, prefixed with `who`). Returns their number. */
unsigned int lm_it_acct_report(struct lm_it_acct *a, const char *who);

/* Sends a close frame (if the stream is alive), closes and frees; accepts NULL. */
void lm_it_acct_close(struct lm_it_acct *a);

/* --- variants for lifemon instances that need a token, and process memory --- */

struct lm_wsc_opts;

/* lm_it_wait_healthy polling `path` (e.g. "/healthz?token=...") instead of /healthz. */
int lm_it_wait_healthy_path(struct lm_it_proc *p, uint16_t port, const char *path, int timeout_ms);

/* lm_it_lifemon_start waiting for 200 on `health_path` instead of /healthz. */
int lm_it_lifemon_start_path(uint16_t port, const char *const extra[], bool capture_stdout,
			     const char *health_path, struct lm_it_proc **out);

/* lm_it_coll_open with the caller's connect options (path, headers, origin). */
int lm_it_coll_open_opts(const struct lm_wsc_opts *o, struct lm_it_coll **out);

/* lm_it_metrics_fetch of `path` (e.g. "/metrics?token=..."). */
int lm_it_metrics_fetch_path(uint16_t port, const char *path, int timeout_ms, char **body);

/*
 * VmRSS of `pid` in KiB from /proc/<pid>/status. Returns it, or -errno (-ENOENT when the
 * process has no memory left, e.g. a zombie). Async-signal-safe apart from sscanf; any thread.
 */
long lm_it_proc_rss_kb(pid_t pid);

#endif /* LM_IT_UTIL_H */
