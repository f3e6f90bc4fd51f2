// SPDX-License-Identifier: GPL-2.0
/*
 * Integration test, the file sink at its limits. Part 1: --output on a 512 KiB tmpfs filled
 * by a bounded fork+exec storm: every line of the file is strict JSON and whole, seqs are
 * contiguous with LOST lines bridging exactly the gaps, the /metrics books balance for the
 * file sink (serialized = delivered + dropped, delivered = the file's event lines), and
 * writing resumes once space is freed. Part 2: --user nobody --output: SIGHUP after the file
 * was renamed away makes nobody's lifemon write a fresh FILE (and a plain SIGHUP reopens the
 * FILE root created at start), with nothing dropped.
 * Root only; the main thread forks, reaps and kills only its own children, by PID; the
 * tmpfs is unmounted at the end.
 */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/it_util.h"

#define IT_PORT_FULL 18101
#define IT_PORT_USER 18102
#define STORM_LIVE_MAX 16
#define STORM_MS 2000
#define TMPFS_BYTES (512 * 1024)
#define FILLER_BYTES (256 * 1024) /* freed after the storm: room for ~800 events */
#define BOOKS_MS 20000
#define MARKER_MS 10000

static char dir[64];	  /* temp dir; part 1 mounts the tmpfs on dir/mnt */
static char mnt[96];
static bool mounted;
static char out_path[128];
static char filler_path[128];
static char user_dir[64]; /* part 2: owned by nobody */

static void cleanup(void *arg)
{
	char cmd[160];

	(void)arg;
	if (mounted && !umount2(mnt, MNT_DETACH))
		mounted = false;
	if (dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", dir);
		if (system(cmd))
			lm_it_note("cleanup: could not remove %s", dir);
	}
	if (user_dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", user_dir);
		if (system(cmd))
			lm_it_note("cleanup: could not remove %s", user_dir);
	}
}

/* fork+exec /bin/true for STORM_MS with at most STORM_LIVE_MAX alive; returns children run. */
static size_t run_storm(void)
{
	char *argv[] = {"/bin/true", NULL};
	pid_t live[STORM_LIVE_MAX];
	int64_t stop_at = lm_it_now_ms() + STORM_MS;
	size_t nlive = 0, n = 0, i;
	int st, err;

	while (nlive || lm_it_now_ms() < stop_at) {
		while (nlive < STORM_LIVE_MAX && lm_it_now_ms() < stop_at) {
			err = lm_it_spawn(argv, -1, -1, &live[nlive]);
			if (err == -EAGAIN)
				break;
			LM_IT_ASSERT(!err, "storm: fork: %s", strerror(-err));
			nlive++;
			n++;
		}
		for (i = 0; i < nlive;) {
			err = lm_it_reap(live[i], 0, &st);
			if (err == -ETIMEDOUT) {
				i++;
				continue;
			}
			LM_IT_ASSERT(!err, "storm: reap %d: %s", live[i], strerror(-err));
			live[i] = live[--nlive];
		}
		usleep(500);
	}
	return n;
}

/* Runs /bin/true once; returns its pid (reaped). */
static pid_t run_marker(void)
{
	char *argv[] = {"/bin/true", NULL};
	pid_t pid;
	int st, err;

	err = lm_it_spawn(argv, -1, -1, &pid);
	LM_IT_ASSERT(!err, "marker: fork: %s", strerror(-err));
	err = lm_it_reap(pid, 5000, &st);
	LM_IT_ASSERT(!err, "marker %d: reap: %s", pid, strerror(-err));
	return pid;
}

struct file_check {
	size_t lines;
	size_t events;		/* event lines */
	size_t sink_notices;	/* LOST lines with reason sink_full */
	long long announced;	/* their counts summed */
	long long last_seq;	/* last seq accounted for */
	bool has_marker;	/* the marker's EXIT is in the file */
	size_t problems;
};

/*
 * Reads FILE and checks every line: strict JSON (jansson), an object, and the file ends with
 * a newline (its last line is whole). Events must carry the seq after the last one accounted
 * for; a sink LOST line must start right there and cover count == last - first + 1.
 * Kernel-ring LOST lines carry no seqs and are skipped. Reports up to 5 problems.
 */
static void check_file(const char *path, pid_t marker, struct file_check *c)
{
	char *text = NULL, *p, *nl;
	size_t len = 0;
	int err;

	memset(c, 0, sizeof(*c));
	err = lm_it_read_file(path, &text, &len);
	LM_IT_ASSERT(!err, "read %s: %s", path, strerror(-err));
	if (len && text[len - 1] != '\n') {
		c->problems++;
		lm_it_fail("%s: the last line is not whole (no newline at the end): \"%.120s\"",
			   path, strrchr(text, '\n') ? strrchr(text, '\n') + 1 : text);
	}
	for (p = text; p < text + len; p = nl + 1) {
		json_error_t jerr;
		const char *type;
		json_t *ev;

		nl = memchr(p, '\n', (size_t)(text + len - p));
		if (!nl)
			break; /* reported above */
		c->lines++;
		ev = json_loadb(p, (size_t)(nl - p), JSON_REJECT_DUPLICATES, &jerr);
		if (!ev || !json_is_object(ev)) {
			if (c->problems++ < 5)
				lm_it_fail("%s line %zu is not a JSON object (%s): \"%.*s\"", path,
					   c->lines, jerr.text, (int)(nl - p > 160 ? 160 : nl - p), p);
			json_decref(ev);
			continue;
		}
		type = lm_it_jstr(ev, "type");
		if (type && !strcmp(type, "LOST")) {
			const char *reason = lm_it_jstr(ev, "reason");
			long long f = lm_it_jint(ev, "first_seq", -1);
			long long l = lm_it_jint(ev, "last_seq", -1);
			long long n = lm_it_jint(ev, "count", -1);

			if (reason && !strcmp(reason, "sink_full")) {
				if ((c->last_seq && f != c->last_seq + 1) || n != l - f + 1 || n <= 0) {
					if (c->problems++ < 5)
						lm_it_fail("%s line %zu: LOST does not bridge the gap after "
							   "seq %lld: %s", path, c->lines, c->last_seq,
							   lm_it_jdump(ev));
				}
				c->sink_notices++;
				c->announced += n;
				c->last_seq = l;
			}
		} else {
			long long seq = lm_it_jint(ev, "seq", -1);

			if (c->last_seq && seq != c->last_seq + 1 && c->problems++ < 5)
				lm_it_fail("%s line %zu: seq %lld after %lld with no LOST line between",
					   path, c->lines, seq, c->last_seq);
			c->last_seq = seq;
			c->events++;
			if (marker && type && !strcmp(type, "EXIT") &&
			    lm_it_jint(ev, "pid", 0) == marker && lm_it_jint(ev, "ppid", 0) == getpid())
				c->has_marker = true;
		}
		json_decref(ev);
	}
	free(text);
}

struct books {
	double ser, del, drop, errors;
};

static bool books_fetch(uint16_t port, struct books *b)
{
	char *body = NULL;
	bool ok;

	if (lm_it_metrics_fetch(port, 2000, &body))
		return false;
	ok = lm_it_metric(body, "lifemon_serialized_total", &b->ser) &&
	     lm_it_metric(body, "lifemon_sink_delivered_total{sink=\"file\"}", &b->del) &&
	     lm_it_metric(body, "lifemon_sink_dropped_total{sink=\"file\"}", &b->drop) &&
	     lm_it_metric(body, "lifemon_sink_errors_total{sink=\"file\"}", &b->errors);
	free(body);
	return ok;
}

/*
 * Waits until the books balance and stay still around a read of FILE: then the file holds
 * exactly the delivered events. Returns true with *b and *c from that instant.
 */
static bool settle(uint16_t port, const char *path, pid_t marker, struct books *b,
		   struct file_check *c)
{
	int64_t deadline = lm_it_now_ms() + BOOKS_MS;
	struct books after;

	while (lm_it_now_ms() < deadline) {
		if (books_fetch(port, b) && b->ser == b->del + b->drop) {
			check_file(path, marker, c);
			if (c->problems)
				return false;
			if (books_fetch(port, &after) && after.ser == b->ser && after.del == b->del &&
			    after.drop == b->drop)
				return true;
		}
		usleep(20000);
	}
	return false;
}

static void part_full_disk(void)
{
	const char *extra[] = {"--output", out_path, NULL};
	static char zeros[FILLER_BYTES];
	struct lm_it_proc *lm = NULL;
	struct file_check c;
	struct books b = {0};
	char opts[64], buf[64];
	int64_t deadline, ms = 0;
	int err, status = 0;
	pid_t marker;
	size_t n;
	FILE *f;

	snprintf(mnt, sizeof(mnt), "%s/mnt", dir);
	LM_IT_ASSERT(!mkdir(mnt, 0700), "mkdir %s: %s", mnt, strerror(errno));
	snprintf(opts, sizeof(opts), "size=%d,mode=0700", TMPFS_BYTES);
	if (mount("tmpfs", mnt, "tmpfs", 0, opts))
		lm_it_skip("cannot mount a tmpfs on %s: %s", mnt, strerror(errno));
	mounted = true;
	snprintf(out_path, sizeof(out_path), "%s/events.jsonl", mnt);
	snprintf(filler_path, sizeof(filler_path), "%s/filler", mnt);
	f = fopen(filler_path, "w");
	LM_IT_ASSERT(f && fwrite(zeros, 1, sizeof(zeros), f) == sizeof(zeros) && !fclose(f),
		     "write %s: %s", filler_path, strerror(errno));

	err = lm_it_lifemon_start(IT_PORT_FULL, extra, false, &lm);
	LM_IT_ASSERT(!err, "full disk: lifemon did not become healthy: %s", strerror(-err));
	n = run_storm();
	lm_it_note("full disk: storm of %zu children in %d ms", n, STORM_MS);

	LM_IT_EXPECT(settle(IT_PORT_FULL, out_path, 0, &b, &c),
		     "full disk: books did not balance and hold still within %d ms "
		     "(serialized %.0f, file delivered %.0f dropped %.0f)",
		     BOOKS_MS, b.ser, b.del, b.drop);
	lm_it_note("full disk: %zu lines (%zu events, %zu LOST), serialized %.0f, file delivered "
		   "%.0f dropped %.0f errors %.0f", c.lines, c.events, c.sink_notices, b.ser,
		   b.del, b.drop, b.errors);
	LM_IT_ASSERT(b.drop > 0 && b.errors > 0,
		     "full disk: the storm did not fill the %d KiB tmpfs: nothing dropped",
		     TMPFS_BYTES / 1024);
	LM_IT_EXPECT((double)c.events == b.del,
		     "full disk: the file holds %zu events but %.0f were counted delivered",
		     c.events, b.del);

	/* space returns: the next events must reach the file, after a LOST line */
	LM_IT_ASSERT(!unlink(filler_path), "unlink %s: %s", filler_path, strerror(errno));
	marker = run_marker();
	deadline = lm_it_now_ms() + MARKER_MS;
	do {
		usleep(50000);
		check_file(out_path, marker, &c);
	} while (!c.has_marker && !c.problems && lm_it_now_ms() < deadline);
	LM_IT_EXPECT(c.has_marker, "full disk: writing did not resume within %d ms of freeing "
		     "%d KiB: the EXIT of marker %d is not in the file", MARKER_MS,
		     FILLER_BYTES / 1024, marker);
	LM_IT_EXPECT(c.sink_notices > 0, "full disk: no LOST line in the file for %.0f drops",
		     b.drop);
	LM_IT_EXPECT(settle(IT_PORT_FULL, out_path, marker, &b, &c),
		     "after freeing space: books did not balance within %d ms", BOOKS_MS);
	LM_IT_EXPECT((double)c.events == b.del,
		     "after freeing space: the file holds %zu events, %.0f counted delivered",
		     c.events, b.del);
	LM_IT_EXPECT((double)c.announced == b.drop,
		     "after freeing space: LOST lines announce %lld events, %.0f counted dropped",
		     c.announced, b.drop);
	lm_it_note("after freeing space: %zu events, %zu LOST lines announcing %lld, "
		   "delivered %.0f dropped %.0f", c.events, c.sink_notices, c.announced, b.del,
		   b.drop);

	err = lm_it_proc_stop(lm, SIGTERM, LM_IT_STOP_MS, &status, &ms);
	LM_IT_EXPECT(!err && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		     "full disk: SIGTERM: %s after %lld ms",
		     lm_it_wstatus_str(status, buf, sizeof(buf)), (long long)ms);
	lm_it_proc_free(lm);
	check_file(out_path, 0, &c);
	LM_IT_ASSERT(!umount2(mnt, 0), "umount %s: %s", mnt, strerror(errno));
	mounted = false;
}

/* Waits for marker's EXIT in path. */
static bool wait_marker(const char *path, pid_t marker)
{
	int64_t deadline = lm_it_now_ms() + MARKER_MS;
	struct file_check c = {0};
	struct stat st;

	do {
		if (!stat(path, &st))
			check_file(path, marker, &c);
		if (c.has_marker || c.problems)
			break;
		usleep(50000);
	} while (lm_it_now_ms() < deadline);
	return c.has_marker;
}

static void part_user_hup(void)
{
	const char *extra[] = {"--user", "nobody", "--output", out_path, NULL};
	struct lm_it_proc *lm = NULL;
	struct passwd *pw = getpwnam("nobody");
	char moved[160], buf[64], *err_text = NULL;
	struct books b = {0};
	int64_t ms = 0;
	int err, status = 0;
	struct stat st;
	pid_t marker;

	if (!pw) {
		lm_it_note("--user case not run: no user nobody");
		return;
	}
	snprintf(user_dir, sizeof(user_dir), "/tmp/lifemon-it-sinkuser-XXXXXX");
	LM_IT_ASSERT(mkdtemp(user_dir), "mkdtemp: %s", strerror(errno));
	LM_IT_ASSERT(!chown(user_dir, pw->pw_uid, pw->pw_gid) && !chmod(user_dir, 0755),
		     "chown %s to nobody: %s", user_dir, strerror(errno));
	snprintf(out_path, sizeof(out_path), "%s/events.jsonl", user_dir);
	snprintf(moved, sizeof(moved), "%s.moved", out_path);

	err = lm_it_lifemon_start(IT_PORT_USER, extra, false, &lm);
	LM_IT_ASSERT(!err, "--user: lifemon did not become healthy: %s", strerror(-err));
	marker = run_marker();
	LM_IT_ASSERT(wait_marker(out_path, marker), "--user: marker %d never reached %s",
		     marker, out_path);
	LM_IT_EXPECT(!stat(out_path, &st) && st.st_uid == pw->pw_uid,
		     "--user: %s is owned by uid %u, not nobody", out_path, (unsigned)st.st_uid);

	/* SIGHUP alone: nobody reopens the file root created at start */
	LM_IT_ASSERT(!kill(lm_it_proc_pid(lm), SIGHUP), "SIGHUP: %s", strerror(errno));
	usleep(300000); /* main turns the signal into a request within 100 ms */
	marker = run_marker();
	LM_IT_EXPECT(wait_marker(out_path, marker),
		     "--user: after a plain SIGHUP, marker %d never reached %s", marker, out_path);
	LM_IT_EXPECT(books_fetch(IT_PORT_USER, &b) && b.drop == 0 && b.errors == 0,
		     "--user: after a plain SIGHUP the file sink dropped %.0f events, %.0f errors",
		     b.drop, b.errors);

	/* logrotate's create method: move the file away, then SIGHUP */
	LM_IT_ASSERT(!rename(out_path, moved), "rename %s: %s", out_path, strerror(errno));
	LM_IT_ASSERT(!kill(lm_it_proc_pid(lm), SIGHUP), "SIGHUP: %s", strerror(errno));
	marker = run_marker();
	LM_IT_EXPECT(wait_marker(out_path, marker),
		     "--user: after SIGHUP, marker %d never reached a new %s", marker, out_path);
	LM_IT_EXPECT(!stat(out_path, &st) && st.st_uid == pw->pw_uid,
		     "--user: the reopened %s is owned by uid %u, not nobody", out_path,
		     (unsigned)st.st_uid);
	LM_IT_EXPECT(books_fetch(IT_PORT_USER, &b) && b.drop == 0 && b.errors == 0,
		     "--user: after SIGHUP the file sink dropped %.0f events, %.0f errors", b.drop,
		     b.errors);
	LM_IT_EXPECT(lm_it_proc_is_running(lm), "--user: lifemon exited after SIGHUP");
	if (!lm_it_proc_stderr(lm, &err_text, NULL)) {
		LM_IT_EXPECT(!strstr(err_text, "cannot reopen"),
			     "--user: lifemon could not reopen: %s", err_text);
		free(err_text);
	}
	lm_it_note("--user nobody: SIGHUP reopened %s as nobody; file dropped %.0f, errors %.0f",
		   out_path, b.drop, b.errors);

	err = lm_it_proc_stop(lm, SIGTERM, LM_IT_STOP_MS, &status, &ms);
	LM_IT_EXPECT(!err && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		     "--user: SIGTERM: %s after %lld ms",
		     lm_it_wstatus_str(status, buf, sizeof(buf)), (long long)ms);
	lm_it_proc_free(lm);
}

int main(int argc, char **argv)
{
	lm_it_init("it_sink_full", argc, argv, 110);
	lm_it_require_env();

	snprintf(dir, sizeof(dir), "/tmp/lifemon-it-sinkfull-XXXXXX");
	LM_IT_ASSERT(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
	lm_it_on_cleanup(cleanup, NULL);
	part_full_disk();
	part_user_hup();
	return lm_it_finish();
}
