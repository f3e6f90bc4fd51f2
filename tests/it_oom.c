// SPDX-License-Identifier: GPL-2.0
/*
 * Integration test: a real OOM kill, confined to a dedicated 32 MiB memory cgroup (v1 or
 * v2) so the host is never at risk, must reach /ws as OOM_KILL for the victim followed by its
 * EXIT with signal 9. The victim allocates at most 512 MiB. Root only.
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

#define IT_PORT 18082
#define IT_LIMIT_BYTES (32LL << 20)
#define IT_STEP_BYTES ((size_t)1 << 20)
#define IT_CAP_STEPS 512 /* hard cap: the victim never touches more than 512 MiB */
#define IT_VICTIM_COMM "lm-oom-victim"
#define IT_EXIT_NO_CGROUP 90 /* victim could not join the cgroup */
#define IT_EXIT_NO_NAME 91

static char cg_dir[PATH_MAX]; /* our cgroup, "" until created */
static pid_t victim = -1;     /* -1 once reaped */
static struct lm_it_coll *coll;
static char *victim_mem[IT_CAP_STEPS]; /* victim only: keeps its allocations reachable */

static int write_file(const char *dir, const char *file, const char *val)
{
	char path[PATH_MAX + 64];
	size_t len = strlen(val);
	ssize_t n;
	int fd, err = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
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

static bool file_exists(const char *dir, const char *file)
{
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return access(path, F_OK) == 0;
}

static bool file_has_word(const char *path, const char *word)
{
	char buf[1024], *tok, *save = NULL;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	for (tok = strtok_r(buf, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save))
		if (!strcmp(tok, word))
			return true;
	return false;
}

/* Finds the cgroup2 mount point in /proc/self/mounts. */
static int cgroup2_mount(char *out, size_t cap)
{
	char line[1024], dev[256], mnt[1024], type[64];
	FILE *f = fopen("/proc/self/mounts", "re");
	int err = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%255s %1023s %63s", dev, mnt, type) == 3 &&
		    !strcmp(type, "cgroup2")) {
			if (strlen(mnt) < cap) {
				memcpy(out, mnt, strlen(mnt) + 1);
				err = 0;
			}
			break;
		}
	}
	fclose(f);
	return err;
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
	while (rmdir(cg_dir) < 0) {
		if (errno == ENOENT)
			break;
		if (errno != EBUSY || lm_it_now_ms() >= deadline) {
			lm_it_note("rmdir %s: %s (left behind)", cg_dir, strerror(errno));
			break;
		}
		usleep(5000);
	}
	cg_dir[0] = '\0';
}

/* Creates and limits the cgroup, or skips the test. Leaves cg_dir set for cleanup. */
static void cgroup_setup(void)
{
	char mnt[1024], path[PATH_MAX + 64], val[64];
	const char *v1 = "/sys/fs/cgroup/memory";
	int err;

	if (file_exists(v1, "memory.limit_in_bytes")) {
		snprintf(cg_dir, sizeof(cg_dir), "%s/lifemon-it-%d", v1, getpid());
		if (mkdir(cg_dir, 0755) < 0) {
			err = errno;
			cg_dir[0] = '\0';
			lm_it_skip("mkdir cgroup v1 %s/lifemon-it-%d: %s", v1, getpid(),
				   strerror(err));
		}
		lm_it_on_cleanup(cgroup_cleanup, NULL);
		snprintf(val, sizeof(val), "%lld", IT_LIMIT_BYTES);
		/* The plain limit first: memsw may never be below it. */
		err = write_file(cg_dir, "memory.limit_in_bytes", val);
		if (err)
			lm_it_skip("%s/memory.limit_in_bytes: %s", cg_dir, strerror(-err));
		if (file_exists(cg_dir, "memory.memsw.limit_in_bytes")) {
			err = write_file(cg_dir, "memory.memsw.limit_in_bytes", val);
			if (err)
				lm_it_skip("%s/memory.memsw.limit_in_bytes: %s", cg_dir,
					   strerror(-err));
		}
		if (file_exists(cg_dir, "memory.swappiness"))
			write_file(cg_dir, "memory.swappiness", "0");
		lm_it_note("cgroup v1 %s limited to %lld bytes", cg_dir, IT_LIMIT_BYTES);
		return;
	}

	err = cgroup2_mount(mnt, sizeof(mnt));
	if (err)
		lm_it_skip("no cgroup v1 memory controller and no cgroup2 mount");
	snprintf(path, sizeof(path), "%s/cgroup.controllers", mnt);
	if (!file_has_word(path, "memory"))
		lm_it_skip("cgroup2 at %s has no memory controller", mnt);
	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", mnt);
	if (!file_has_word(path, "memory")) {
		err = write_file(mnt, "cgroup.subtree_control", "+memory");
		if (err)
			lm_it_skip("enabling +memory in %s: %s", path, strerror(-err));
	}
	snprintf(cg_dir, sizeof(cg_dir), "%s/lifemon-it-%d", mnt, getpid());
	if (mkdir(cg_dir, 0755) < 0) {
		err = errno;
		cg_dir[0] = '\0';
		lm_it_skip("mkdir cgroup v2 %s/lifemon-it-%d: %s", mnt, getpid(), strerror(err));
	}
	lm_it_on_cleanup(cgroup_cleanup, NULL);
	err = write_file(cg_dir, "memory.max", "32M");
	if (err)
		lm_it_skip("%s/memory.max: %s", cg_dir, strerror(-err));
	if (file_exists(cg_dir, "memory.swap.max")) {
		err = write_file(cg_dir, "memory.swap.max", "0");
		if (err)
			lm_it_skip("%s/memory.swap.max: %s", cg_dir, strerror(-err));
	}
	lm_it_note("cgroup v2 %s limited to 32M", cg_dir);
}

/* The victim: joins the cgroup itself, then touches memory 1 MiB at a time up to the cap. */
static int victim_fn(void *arg)
{
	char pid_s[32];
	size_t i, j;
	char *p;

	(void)arg;
	snprintf(pid_s, sizeof(pid_s), "%d", getpid());
	if (write_file(cg_dir, "cgroup.procs", pid_s))
		return IT_EXIT_NO_CGROUP;
	if (prctl(PR_SET_NAME, IT_VICTIM_COMM) < 0)
		return IT_EXIT_NO_NAME;
	for (i = 0; i < IT_CAP_STEPS; i++) {
		p = malloc(IT_STEP_BYTES);
		if (!p)
			break;
		/*
		 * Touch every page so the memory is resident and charged to the cgroup. The
		 * volatile stores and the kept pointers stop the compiler from eliding them.
		 */
		for (j = 0; j < IT_STEP_BYTES; j += 4096)
			((volatile char *)p)[j] = (char)(i + j + 1);
		victim_mem[i] = p;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const json_t *oom, *ex;
	struct lm_it_proc *lm = NULL;
	size_t oi = 0, xi = 0;
	int64_t ms = 0;
	char buf[64];
	int err, status = 0, st = 0;
	pid_t vpid;

	lm_it_init("it_oom", argc, argv, 100);
	lm_it_require_env();
	cgroup_setup();

	err = lm_it_lifemon_start(IT_PORT, NULL, false, &lm);
	LM_IT_ASSERT(!err, "lifemon did not become healthy: %s", strerror(-err));
	err = lm_it_coll_open(IT_PORT, &coll);
	LM_IT_ASSERT(!err, "ws connect: %s", strerror(-err));
	err = lm_it_coll_sync(coll, LM_IT_EVENT_MS);
	LM_IT_ASSERT(!err, "no EXIT of a /bin/true marker reached /ws within %d ms",
		     LM_IT_EVENT_MS);

	err = lm_it_fork_fn(victim_fn, NULL, &victim);
	LM_IT_ASSERT(!err, "fork victim: %s", strerror(-err));
	vpid = victim;
	err = lm_it_reap(vpid, 30000, &status);
	LM_IT_ASSERT(!err, "victim %d still running after 30 s", vpid);
	/* Reaped: the pid may be reused, so cleanup must never signal it again. */
	victim = -1;
	lm_it_note("victim pid %d ended with %s", vpid,
		   lm_it_wstatus_str(status, buf, sizeof(buf)));
	LM_IT_ASSERT(!(WIFEXITED(status) && WEXITSTATUS(status) == IT_EXIT_NO_CGROUP),
		     "test setup: victim could not join %s", cg_dir);
	LM_IT_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		     "test setup: victim was not OOM-killed (%s): the cgroup limit did not bite",
		     lm_it_wstatus_str(status, buf, sizeof(buf)));

	oom = lm_it_coll_wait_event(coll, "OOM_KILL", vpid, LM_IT_EVENT_MS, &oi);
	ex = lm_it_coll_wait_event(coll, "EXIT", vpid, LM_IT_EVENT_MS, &xi);
	LM_IT_EXPECT(oom, "no OOM_KILL with pid %d within %d ms", vpid, LM_IT_EVENT_MS);
	LM_IT_EXPECT(ex, "no EXIT for the OOM victim %d within %d ms", vpid, LM_IT_EVENT_MS);
	if (oom) {
		lm_it_note("OOM_KILL: %s", lm_it_jdump(oom));
		LM_IT_EXPECT(lm_it_jint(oom, "target_pid", -1) == vpid,
			     "OOM_KILL target_pid should be %d: %s", vpid, lm_it_jdump(oom));
		LM_IT_EXPECT(
		    lm_it_jstr(oom, "comm") && !strcmp(lm_it_jstr(oom, "comm"), IT_VICTIM_COMM),
		    "OOM_KILL comm should be \"" IT_VICTIM_COMM "\": %s", lm_it_jdump(oom));
		LM_IT_EXPECT(
		    lm_it_jint(oom, "anon_rss_kb", 0) > 16000,
		    "OOM_KILL anon_rss_kb should be > 16000 (about 32 MiB were touched): %s",
		    lm_it_jdump(oom));
		LM_IT_EXPECT(lm_it_jint(oom, "total_vm_kb", 0) >= lm_it_jint(oom, "anon_rss_kb", 0),
			     "OOM_KILL total_vm_kb below anon_rss_kb: %s", lm_it_jdump(oom));
		LM_IT_EXPECT(lm_it_jint(oom, "uid", -1) == 0, "OOM_KILL uid should be 0: %s",
			     lm_it_jdump(oom));
	}
	if (ex) {
		lm_it_note("EXIT: %s", lm_it_jdump(ex));
		LM_IT_EXPECT(lm_it_jint(ex, "signal", -1) == 9,
			     "victim EXIT signal should be 9: %s", lm_it_jdump(ex));
		LM_IT_EXPECT(lm_it_jint(ex, "exit_code", -1) == 137,
			     "victim EXIT exit_code should be 137: %s", lm_it_jdump(ex));
		LM_IT_EXPECT(
		    lm_it_jstr(ex, "comm") && !strcmp(lm_it_jstr(ex, "comm"), IT_VICTIM_COMM),
		    "victim EXIT comm should be \"" IT_VICTIM_COMM "\": %s", lm_it_jdump(ex));
	}
	if (oom && ex)
		LM_IT_EXPECT(oi < xi, "the victim's EXIT arrived before its OOM_KILL");
	lm_it_coll_check(coll);
	lm_it_coll_close(coll);
	coll = NULL;

	err = lm_it_proc_stop(lm, SIGTERM, LM_IT_STOP_MS, &st, &ms);
	LM_IT_EXPECT(!err && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		     "lifemon ended with %s (%s) after SIGTERM, want exit 0 within %d ms",
		     lm_it_wstatus_str(st, buf, sizeof(buf)), err ? "timed out" : "in time",
		     LM_IT_STOP_MS);
	if (lm_it_failures())
		lm_it_proc_dump_stderr(lm, "it_oom");
	lm_it_proc_free(lm);
	return lm_it_finish();
}
