// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for core/cgroup.c: the path parser over the container runtimes' layouts and the
 * near misses, the id table (learn, forget's grace, LRU eviction, a random model check), and
 * open's mount discovery and tree scan against a fake mountinfo, a fake /proc/cgroups and a
 * temporary directory tree (inode numbers from stat, so no root is needed).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/cgroup.h"

#define ID_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define ID_B "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define UID_D "7e44ee88-1e65-4a16-8cdf-9a90c819180e"
#define UID_U "7e44ee88_1e65_4a16_8cdf_9a90c819180e"

struct parsed {
	char cid[65], pod[37], unit[256];
};

static struct parsed lm_t_parse(const char *path)
{
	struct parsed p;

	memset(&p, 0x5a, sizeof(p));
	lm_cgroup_parse(path, strlen(path), p.cid, p.pod, p.unit);
	return p;
}

static void lm_t_expect(const char *path, const char *cid, const char *pod, const char *unit)
{
	struct parsed p = lm_t_parse(path);

	if (strcmp(p.cid, cid) || strcmp(p.pod, pod) || strcmp(p.unit, unit))
		fail_msg("%s: got cid '%s' pod '%s' unit '%s', want '%s' '%s' '%s'", path, p.cid,
			 p.pod, p.unit, cid, pod, unit);
}

static void test_cgroup_parse_docker(void **state)
{
	(void)state;
	lm_t_expect("/system.slice/docker-" ID_A ".scope", ID_A, "", "docker-" ID_A ".scope");
	lm_t_expect("/docker/" ID_A, ID_A, "", "");
	lm_t_expect("/system.slice/docker-" ID_A, ID_A, "", "system.slice");
	/* a sub-cgroup of the container (systemd inside it) keeps the container's id */
	lm_t_expect("/system.slice/docker-" ID_A ".scope/init.scope", ID_A, "", "init.scope");
	/* nested engines: the innermost id */
	lm_t_expect("/docker/" ID_A "/docker/" ID_B, ID_B, "", "");
	lm_t_expect("/system.slice/docker-" ID_A ".scope/docker/" ID_B, ID_B, "",
		    "docker-" ID_A ".scope");
	lm_t_expect("/actions_job/" ID_A, ID_A, "", "");
}

static void test_cgroup_parse_kubepods(void **state)
{
	(void)state;
	lm_t_expect("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_U
		    ".slice/cri-containerd-" ID_A ".scope",
		    ID_A, UID_D, "cri-containerd-" ID_A ".scope");
	lm_t_expect("/kubepods.slice/kubepods-pod" UID_U ".slice/cri-containerd-" ID_A ".scope",
		    ID_A, UID_D, "cri-containerd-" ID_A ".scope");
	lm_t_expect("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_U
		    ".slice/crio-" ID_B ".scope",
		    ID_B, UID_D, "crio-" ID_B ".scope");
	lm_t_expect("/kubepods/burstable/pod" UID_D "/" ID_A, ID_A, UID_D, "");
	lm_t_expect("/kubepods/pod" UID_D "/" ID_A, ID_A, UID_D, "");
	lm_t_expect("/kubepods/besteffort/pod" UID_D, "", UID_D, "");
	/* containerd's systemd-style cgroupsPath taken verbatim as a directory name */
	lm_t_expect("/kubepods-besteffort-pod" UID_U ".slice:cri-containerd:" ID_A, ID_A, UID_D,
		    "");
	/* a bare id whose only engine ancestor is its pod */
	lm_t_expect("/pod" UID_D "/" ID_A, ID_A, UID_D, "");
}

static void test_cgroup_parse_podman(void **state)
{
	(void)state;
	lm_t_expect("/machine.slice/libpod-" ID_A ".scope", ID_A, "", "libpod-" ID_A ".scope");
	lm_t_expect("/machine.slice/libpod-" ID_A ".scope/container", ID_A, "",
		    "libpod-" ID_A ".scope");
	lm_t_expect("/libpod_parent/libpod-" ID_A, ID_A, "", "");
	lm_t_expect("/libpod_parent/" ID_A, ID_A, "", "");
	lm_t_expect("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" ID_B
		    ".scope/container",
		    ID_B, "", "libpod-" ID_B ".scope");
}

/* The monitors beside the container are not the container. */
static void test_cgroup_parse_conmon(void **state)
{
	(void)state;
	lm_t_expect("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_U
		    ".slice/crio-conmon-" ID_A ".scope",
		    "", UID_D, "crio-conmon-" ID_A ".scope");
	lm_t_expect("/machine.slice/libpod-conmon-" ID_A ".scope", "", "",
		    "libpod-conmon-" ID_A ".scope");
}

static void test_cgroup_parse_not_an_id(void **state)
{
	char up[] = "/docker/" ID_A;

	(void)state;
	/* 63 and 65 hex */
	lm_t_expect("/system.slice/docker-" ID_A "0.scope", "", "", "docker-" ID_A "0.scope");
	lm_t_expect("/docker/" ID_A "0", "", "", "");
	lm_t_expect("/docker/123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "",
		    "", "");
	lm_t_expect("/system.slice/docker-123456789abcdef0123456789abcdef0123456789abcdef01234567"
		    "89abcdef.scope",
		    "", "",
		    "docker-123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope");
	/* uppercase and non-hex */
	up[8 + 10] = 'A';
	lm_t_expect(up, "", "", "");
	lm_t_expect(
		"/system.slice/docker-0123456789abcdeF0123456789abcdef0123456789abcdef01234567"
		"89abcdef.scope",
		"", "",
		"docker-0123456789abcdeF0123456789abcdef0123456789abcdef0123456789abcdef.scope");
	lm_t_expect("/docker/0123456789abcdeg0123456789abcdef0123456789abcdef0123456789abcdef", "",
		    "", "");
	/* a bare id without an engine ancestor, or with a look-alike one */
	lm_t_expect("/" ID_A, "", "", "");
	lm_t_expect("/user.slice/" ID_A, "", "", "user.slice");
	lm_t_expect("/dockers/" ID_A, "", "", "");
	/* other prefixes, suffixes and framings */
	lm_t_expect("/system.slice/podman-" ID_A ".scope", "", "", "podman-" ID_A ".scope");
	lm_t_expect("/system.slice/docker-" ID_A ".service", "", "", "docker-" ID_A ".service");
	lm_t_expect("/system.slice/xdocker-" ID_A ".scope", "", "", "xdocker-" ID_A ".scope");
	lm_t_expect("/docker/" ID_A "x", "", "", "");
	lm_t_expect("", "", "", "");
	lm_t_expect("/", "", "", "");
	lm_t_expect("//", "", "", "");
	lm_t_expect("docker-", "", "", "");
}

static void test_cgroup_parse_pod_uid(void **state)
{
	(void)state;
	/* underscores of the systemd driver become dashes */
	lm_t_expect("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_U
		    ".slice",
		    "", UID_D, "kubepods-burstable-pod" UID_U ".slice");
	lm_t_expect("/kubepods.slice/kubepods-pod" UID_U ".slice", "", UID_D,
		    "kubepods-pod" UID_U ".slice");
	lm_t_expect("/kubepods/pod" UID_D, "", UID_D, "");
	/* near misses: mixed separators, uppercase, wrong grouping, wrong tail, not at a start */
	lm_t_expect("/kubepods/pod7e44ee88-1e65_4a16-8cdf-9a90c819180e", "", "", "");
	lm_t_expect("/kubepods/pod7E44EE88-1e65-4a16-8cdf-9a90c819180e", "", "", "");
	lm_t_expect("/kubepods/pod7e44ee881-e65-4a16-8cdf-9a90c819180e", "", "", "");
	lm_t_expect("/kubepods/pod7e44ee88-1e65-4a16-8cdf-9a90c819180", "", "", "");
	lm_t_expect("/kubepods/pod" UID_D "0", "", "", "");
	lm_t_expect("/kubepods/pod" UID_D ".slicex", "", "", "");
	lm_t_expect("/kubepods/xpod" UID_D, "", "", "");
	lm_t_expect("/kubepods/kubepods-burstable_pod" UID_U ".slice", "", "",
		    "kubepods-burstable_pod" UID_U ".slice");
	/* the innermost pod wins */
	lm_t_expect("/kubepods/pod" UID_D "/pod11111111-2222-3333-4444-555555555555", "",
		    "11111111-2222-3333-4444-555555555555", "");
}

static void test_cgroup_parse_unit(void **state)
{
	static const char *const units[] = { "a.service", "a.scope",  "a.slice",    "a.socket",
					     "a.mount",	  "a.swap",   "a.target",   "a.timer",
					     "a.path",	  "a.device", "a.automount" };
	char path[600], name[300];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		snprintf(path, sizeof(path), "/x.slice/%s/leaf", units[i]);
		lm_t_expect(path, "", "", units[i]);
	}
	lm_t_expect("/system.slice/ssh.service", "", "", "ssh.service");
	lm_t_expect("/system.slice/system-getty.slice/getty@tty1.service", "", "",
		    "getty@tty1.service");
	lm_t_expect("/system.slice/sys-kernel-debug.mount", "", "", "sys-kernel-debug.mount");
	lm_t_expect("/system.slice/dev-disk-by\\x2duuid-1.swap", "", "",
		    "dev-disk-by\\x2duuid-1.swap");
	/* no name before the suffix, a bad character, not a suffix: the outer unit shows */
	lm_t_expect("/system.slice/.service", "", "", "system.slice");
	lm_t_expect("/system.slice/my app.service", "", "", "system.slice");
	lm_t_expect("/system.slice/a.services", "", "", "system.slice");
	lm_t_expect("/system.slice/a.service/", "", "", "a.service");
	lm_t_expect("/noslice/x", "", "", "");
	/* 255 bytes is a unit name, 256 is not */
	memset(name, 'u', sizeof(name));
	memcpy(name + 255 - 8, ".service", 9);
	snprintf(path, sizeof(path), "/o.slice/%s", name);
	lm_t_expect(path, "", "", name);
	memset(name, 'u', sizeof(name));
	memcpy(name + 256 - 8, ".service", 9);
	snprintf(path, sizeof(path), "/o.slice/%s", name);
	lm_t_expect(path, "", "", "o.slice");
}

/* Any bytes, NULs included, and never a byte past len (a PROT_NONE page follows the path). */
static void test_cgroup_parse_bounded(void **state)
{
	static const char path[] =
		"/kubepods.slice/kubepods-pod" UID_U ".slice/cri-containerd-" ID_A ".scope";
	size_t page = (size_t)sysconf(_SC_PAGESIZE), n = sizeof(path) - 1, l;
	char cid[65], pod[37], unit[256], *map, *p;
	const char nul[] = "/system.slice/a\0b.service";
	struct parsed q;
	int b;

	(void)state;
	map = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(map != MAP_FAILED);
	assert_int_equal(mprotect(map + page, page, PROT_NONE), 0);
	/* every prefix and every suffix of the path, each ending right at the guard page */
	for (l = 0; l <= n; l++) {
		p = map + page - l;
		memcpy(p, path, l);
		lm_cgroup_parse(p, l, cid, pod, unit);
		memcpy(p, path + n - l, l);
		lm_cgroup_parse(p, l, cid, pod, unit);
	}
	p = map + page - n;
	memcpy(p, path, n);
	lm_cgroup_parse(p, n, cid, pod, unit);
	assert_string_equal(cid, ID_A);
	assert_string_equal(pod, UID_D);
	/* cut before ".scope": the id stands without it, the unit is the pod's slice */
	lm_cgroup_parse(p, n - 6, cid, pod, unit);
	assert_string_equal(cid, ID_A);
	assert_string_equal(unit, "kubepods-pod" UID_U ".slice");
	/* every byte value, alone and as a component */
	for (b = 0; b < 256; b++) {
		p = map + page - 3;
		p[0] = '/';
		p[1] = (char)b;
		p[2] = (char)b;
		lm_cgroup_parse(p, 3, cid, pod, unit);
		assert_string_equal(cid, "");
		assert_string_equal(unit, "");
	}
	memset(&q, 0, sizeof(q));
	lm_cgroup_parse(nul, sizeof(nul) - 1, q.cid, q.pod, q.unit);
	assert_string_equal(q.unit, "system.slice");
	munmap(map, 2 * page);
}

/* ---- table ---- */

struct tmpfiles {
	char dir[64];
	char mountinfo[128];
	char cgroups[128];
};

static void lm_t_write(const char *file, const char *text)
{
	FILE *f = fopen(file, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* A scratch directory with a mountinfo of no cgroup mount and /proc/cgroups text `cg`. */
static void lm_t_files(struct tmpfiles *t, const char *cg)
{
	snprintf(t->dir, sizeof(t->dir), "%s/lm-cgroup-XXXXXX", "/tmp");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->mountinfo, sizeof(t->mountinfo), "%s/mountinfo", t->dir);
	snprintf(t->cgroups, sizeof(t->cgroups), "%s/cgroups", t->dir);
	lm_t_write(t->mountinfo, "22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
				 "23 1 0:22 / /sys rw - sysfs sysfs rw\n");
	if (cg)
		lm_t_write(t->cgroups, cg);
}

static void lm_t_files_rm(struct tmpfiles *t)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	assert_int_equal(system(cmd), 0);
}

static const char lm_t_cgroups[] = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n"
				   "cpuset\t3\t1\t1\ncpu\t1\t1\t1\nmemory\t4\t27\t1\n"
				   "pids\t8\t1\t1\n";

static struct lm_cgroup *lm_t_open(struct tmpfiles *t, uint32_t max, uint32_t grace)
{
	struct lm_cgroup_opts o = { .mountinfo = t->mountinfo,
				    .proc_cgroups = t->cgroups,
				    .max_entries = max,
				    .grace_cnt = grace };
	struct lm_cgroup *c = NULL;

	assert_int_equal(lm_cgroup_open(&o, &c), 0);
	assert_non_null(c);
	return c;
}

static bool lm_t_has(struct lm_cgroup *c, uint32_t hier, uint64_t id, const char *path)
{
	struct lm_cgroup_view v;

	if (lm_cgroup_lookup(c, hier, id, &v) != 0)
		return false;
	assert_int_equal(v.path_len, strlen(path));
	assert_memory_equal(v.path, path, v.path_len);
	assert_int_equal(v.path[v.path_len], '\0');
	return true;
}

static void lm_t_learn(struct lm_cgroup *c, uint32_t hier, uint64_t id, const char *path)
{
	lm_cgroup_learn(c, hier, id, path, strlen(path));
}

static void test_cgroup_memory_hier(void **state)
{
	struct lm_cgroup_opts o = { 0 };
	struct lm_cgroup *c = NULL;
	struct tmpfiles t;

	(void)state;
	lm_t_files(&t, lm_t_cgroups);
	c = lm_t_open(&t, 0, 0);
	assert_int_equal(lm_cgroup_memory_hier(c), 4);
	lm_cgroup_close(c);
	lm_t_write(t.cgroups, "#subsys_name\thierarchy\tnum_cgroups\tenabled\nmemory\t0\t88\t1\n");
	c = lm_t_open(&t, 0, 0);
	assert_int_equal(lm_cgroup_memory_hier(c), 0);
	lm_cgroup_close(c);
	lm_t_write(t.cgroups, "memory\t4\t1\t0\n");
	c = lm_t_open(&t, 0, 0);
	assert_int_equal(lm_cgroup_memory_hier(c), -1);
	lm_cgroup_close(c);
	lm_t_write(t.cgroups, "cpu\t1\t1\t1\nmemoryx\t4\t1\t1\n");
	c = lm_t_open(&t, 0, 0);
	assert_int_equal(lm_cgroup_memory_hier(c), -1);
	lm_cgroup_close(c);
	assert_int_equal(unlink(t.cgroups), 0);
	c = lm_t_open(&t, 0, 0);
	assert_int_equal(lm_cgroup_memory_hier(c), -1);
	lm_cgroup_close(c);
	/* no mountinfo is an error; bad sizes are refused */
	o.mountinfo = "/nonexistent/mountinfo";
	assert_int_equal(lm_cgroup_open(&o, &c), -ENOENT);
	assert_null(c);
	o.mountinfo = t.mountinfo;
	o.max_entries = 1;
	assert_int_equal(lm_cgroup_open(&o, &c), -EINVAL);
	o.max_entries = 8;
	o.grace_cnt = 5;
	assert_int_equal(lm_cgroup_open(&o, &c), -EINVAL);
	assert_null(c);
	lm_t_files_rm(&t);
}

static void test_cgroup_learn_lookup(void **state)
{
	char buf[64], longp[5000];
	struct lm_cgroup_stats st;
	struct lm_cgroup_view v;
	struct lm_cgroup *c;
	struct tmpfiles t;

	(void)state;
	lm_t_files(&t, lm_t_cgroups);
	c = lm_t_open(&t, 64, 0);
	lm_t_learn(c, 0, 100, "/system.slice/docker-" ID_A ".scope");
	assert_int_equal(lm_cgroup_lookup(c, 0, 100, &v), 0);
	assert_string_equal(v.path, "/system.slice/docker-" ID_A ".scope");
	assert_string_equal(v.container_id, ID_A);
	assert_null(v.pod_uid);
	assert_string_equal(v.unit, "docker-" ID_A ".scope");
	/* hierarchies are separate tables; untracked ones are ignored */
	assert_int_equal(lm_cgroup_lookup(c, 4, 100, &v), -ENOENT);
	lm_t_learn(c, 4, 100, "/kubepods/pod" UID_D "/" ID_B);
	assert_int_equal(lm_cgroup_lookup(c, 4, 100, &v), 0);
	assert_string_equal(v.container_id, ID_B);
	assert_string_equal(v.pod_uid, UID_D);
	assert_null(v.unit);
	lm_t_learn(c, 7, 200, "/x");
	assert_int_equal(lm_cgroup_lookup(c, 7, 200, &v), -ENOENT);
	assert_true(lm_t_has(c, 0, 100, "/system.slice/docker-" ID_A ".scope"));
	/* a new path for a known id replaces the old one and its names */
	lm_t_learn(c, 0, 100, "/system.slice/ssh.service");
	assert_int_equal(lm_cgroup_lookup(c, 0, 100, &v), 0);
	assert_string_equal(v.path, "/system.slice/ssh.service");
	assert_null(v.container_id);
	assert_string_equal(v.unit, "ssh.service");
	/* bytes bounded by len, no NUL needed; an empty path is the root */
	memset(buf, 'Z', sizeof(buf));
	memcpy(buf, "/user.slice", 11);
	lm_cgroup_learn(c, 0, 101, buf, 11);
	assert_true(lm_t_has(c, 0, 101, "/user.slice"));
	lm_cgroup_learn(c, 0, 1, buf, 0);
	assert_true(lm_t_has(c, 0, 1, "/"));
	/* a path over the cap is stored cut; its names come from the whole path */
	memset(longp, 'd', sizeof(longp));
	longp[0] = '/';
	memcpy(longp + sizeof(longp) - 72, "/docker/" ID_A, 72);
	lm_cgroup_learn(c, 0, 102, longp, sizeof(longp));
	assert_int_equal(lm_cgroup_lookup(c, 0, 102, &v), 0);
	assert_int_equal(v.path_len, LM_CGROUP_PATH_MAX);
	assert_memory_equal(v.path, longp, LM_CGROUP_PATH_MAX);
	assert_int_equal(v.path[LM_CGROUP_PATH_MAX], '\0');
	assert_string_equal(v.container_id, ID_A);
	lm_cgroup_get_stats(c, &st);
	assert_int_equal(st.cut_paths, 1);
	assert_int_equal(st.entries, 5);
	assert_int_equal(st.misses, 2);
	assert_int_equal(st.scans, 0);
	lm_cgroup_close(c);
	lm_t_files_rm(&t);
}

/* A removed cgroup stays resolvable for the next grace_cnt removals. */
static void test_cgroup_forget_grace(void **state)
{
	struct lm_cgroup_stats st;
	struct lm_cgroup *c;
	struct tmpfiles t;

	(void)state;
	lm_t_files(&t, lm_t_cgroups);
	c = lm_t_open(&t, 16, 2);
	lm_t_learn(c, 0, 1, "/a");
	lm_t_learn(c, 0, 2, "/b");
	lm_t_learn(c, 0, 3, "/c");
	lm_t_learn(c, 0, 4, "/d");
	lm_cgroup_forget(c, 0, 1);
	assert_true(lm_t_has(c, 0, 1, "/a"));
	lm_cgroup_forget(c, 0, 2);
	/* removing a removed or unknown id is no removal */
	lm_cgroup_forget(c, 0, 2);
	lm_cgroup_forget(c, 0, 99);
	lm_cgroup_forget(c, 4, 3);
	assert_true(lm_t_has(c, 0, 1, "/a"));
	assert_true(lm_t_has(c, 0, 2, "/b"));
	lm_cgroup_forget(c, 0, 3);
	assert_false(lm_t_has(c, 0, 1, "/a"));
	assert_true(lm_t_has(c, 0, 2, "/b"));
	assert_true(lm_t_has(c, 0, 3, "/c"));
	/* learnt again (id reuse): alive, out of the grace queue */
	lm_t_learn(c, 0, 2, "/b2");
	lm_cgroup_forget(c, 0, 4);
	assert_true(lm_t_has(c, 0, 2, "/b2"));
	assert_true(lm_t_has(c, 0, 3, "/c"));
	assert_true(lm_t_has(c, 0, 4, "/d"));
	lm_cgroup_get_stats(c, &st);
	assert_int_equal(st.entries, 3);
	assert_int_equal(st.evictions, 0);
	lm_cgroup_close(c);
	lm_t_files_rm(&t);
}

/* At max_entries the least recently used live entry goes; removed ones in grace stay. */
static void test_cgroup_evicts_lru(void **state)
{
	struct lm_cgroup_stats st;
	struct lm_cgroup *c;
	struct tmpfiles t;

	(void)state;
	lm_t_files(&t, lm_t_cgroups);
	c = lm_t_open(&t, 4, 0); /* grace defaults to max/2 = 2 */
	lm_t_learn(c, 0, 1, "/a");
	lm_t_learn(c, 0, 2, "/b");
	lm_t_learn(c, 0, 3, "/c");
	lm_t_learn(c, 0, 4, "/d");
	assert_true(lm_t_has(c, 0, 1, "/a"));
	lm_t_learn(c, 0, 5, "/e");
	assert_false(lm_t_has(c, 0, 2, "/b"));
	assert_true(lm_t_has(c, 0, 1, "/a"));
	assert_true(lm_t_has(c, 0, 3, "/c"));
	assert_true(lm_t_has(c, 0, 4, "/d"));
	assert_true(lm_t_has(c, 0, 5, "/e"));
	/* 3 and 4 removed: the live 1 goes first, then 5; the removed ones stay */
	lm_cgroup_forget(c, 0, 3);
	lm_cgroup_forget(c, 0, 4);
	lm_t_learn(c, 0, 6, "/f");
	assert_false(lm_t_has(c, 0, 1, "/a"));
	lm_t_learn(c, 0, 7, "/g");
	assert_false(lm_t_has(c, 0, 5, "/e"));
	assert_true(lm_t_has(c, 0, 3, "/c"));
	assert_true(lm_t_has(c, 0, 4, "/d"));
	lm_cgroup_get_stats(c, &st);
	assert_int_equal(st.evictions, 3);
	assert_int_equal(st.entries, 4);
	lm_cgroup_close(c);
	lm_t_files_rm(&t);
}

/*
 * The table against a model over random learn/forget/lookup, ids drawn from a pool larger
 * than the table (eviction, probe chains, backward-shift deletion, id reuse).
 */
#define M_IDS 96
#define M_MAX 32
#define M_GRACE 7

struct model {
	uint64_t id[M_IDS];
	int state[M_IDS]; /* 0 absent, 1 live, 2 removed */
	uint64_t used[M_IDS], removed[M_IDS];
	unsigned int gen[M_IDS];
	uint64_t clock;
};

static uint64_t lm_t_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int lm_t_model_cnt(const struct model *m, int st)
{
	int i, n = 0;

	for (i = 0; i < M_IDS; i++)
		n += m->state[i] == st;
	return n;
}

/* The entry with the least stamp in state st, or -1. */
static int lm_t_model_oldest(const struct model *m, int st)
{
	int i, best = -1;

	for (i = 0; i < M_IDS; i++) {
		if (m->state[i] != st)
			continue;
		if (best < 0 ||
		    (st == 1 ? m->used[i] < m->used[best] : m->removed[i] < m->removed[best]))
			best = i;
	}
	return best;
}

static void test_cgroup_model(void **state)
{
	struct lm_cgroup_view v;
	struct model m;
	struct lm_cgroup *c;
	struct tmpfiles t;
	uint64_t seed = 0x9e3779b97f4a7c15ULL, r;
	char path[32];
	int i, k, op, got;

	(void)state;
	memset(&m, 0, sizeof(m));
	/* distinct ids, half of them small (kernfs ids of one boot are) */
	for (i = 0; i < M_IDS; i++) {
		do {
			m.id[i] = lm_t_rand(&seed) & (i % 2 ? 0xffffffffffffffffULL : 0xfffULL);
			for (k = 0; k < i && m.id[k] != m.id[i]; k++)
				;
		} while (k < i);
	}
	lm_t_files(&t, lm_t_cgroups);
	c = lm_t_open(&t, M_MAX, M_GRACE);
	for (k = 0; k < 300000; k++) {
		r = lm_t_rand(&seed);
		i = (int)(r % M_IDS);
		op = (int)((r >> 32) % 4);
		m.clock++;
		if (op == 0) {
			m.gen[i]++;
			snprintf(path, sizeof(path), "/%d.%u", i, m.gen[i]);
			lm_t_learn(c, 0, m.id[i], path);
			if (m.state[i] == 0 &&
			    lm_t_model_cnt(&m, 1) + lm_t_model_cnt(&m, 2) == M_MAX) {
				int o = lm_t_model_oldest(&m, 1);

				if (o < 0)
					o = lm_t_model_oldest(&m, 2);
				m.state[o] = 0;
			}
			m.state[i] = 1;
			m.used[i] = m.clock;
		} else if (op == 1) {
			lm_cgroup_forget(c, 0, m.id[i]);
			if (m.state[i] == 1) {
				m.state[i] = 2;
				m.removed[i] = m.clock;
				if (lm_t_model_cnt(&m, 2) > M_GRACE)
					m.state[lm_t_model_oldest(&m, 2)] = 0;
			}
		} else {
			got = lm_cgroup_lookup(c, 0, m.id[i], &v);
			if (m.state[i] == 0) {
				assert_int_equal(got, -ENOENT);
				continue;
			}
			assert_int_equal(got, 0);
			snprintf(path, sizeof(path), "/%d.%u", i, m.gen[i]);
			assert_string_equal(v.path, path);
			if (m.state[i] == 1)
				m.used[i] = m.clock;
		}
	}
	lm_cgroup_close(c);
	lm_t_files_rm(&t);
}

/* ---- open: mount discovery and the scan ---- */

static ino_t lm_t_ino(const char *dir, const char *rel)
{
	char p[8192];
	struct stat sb;

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	assert_int_equal(stat(p, &sb), 0);
	return sb.st_ino;
}

static void lm_t_mkdir(const char *dir, const char *rel)
{
	char p[8192];

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	if (mkdir(p, 0755) != 0)
		fail_msg("mkdir %s: %s", p, strerror(errno));
}

struct trees {
	struct tmpfiles t;
	char v2[128];  /* cgroup2 mount point: its name holds a space (\040 in mountinfo) */
	char mem[128]; /* v1 memory mount point, root "/outer" */
};

static void lm_t_trees(struct trees *tr)
{
	char mi[2048], p[256];

	lm_t_files(&tr->t, lm_t_cgroups);
	snprintf(tr->v2, sizeof(tr->v2), "%s/uni fied", tr->t.dir);
	snprintf(tr->mem, sizeof(tr->mem), "%s/memory", tr->t.dir);
	lm_t_mkdir(tr->v2, "");
	lm_t_mkdir(tr->v2, "system.slice");
	lm_t_mkdir(tr->v2, "system.slice/docker-" ID_A ".scope");
	lm_t_mkdir(tr->v2, "system.slice/docker-" ID_A ".scope/init.scope");
	lm_t_mkdir(tr->v2, "kubepods");
	lm_t_mkdir(tr->v2, "kubepods/burstable");
	lm_t_mkdir(tr->v2, "kubepods/burstable/pod" UID_D);
	lm_t_mkdir(tr->v2, "kubepods/burstable/pod" UID_D "/" ID_B);
	lm_t_mkdir(tr->mem, "");
	lm_t_mkdir(tr->mem, "kubepods");
	lm_t_mkdir(tr->mem, "kubepods/pod" UID_D);
	lm_t_mkdir(tr->mem, "kubepods/pod" UID_D "/" ID_B);
	/* a file and a symlink to another tree are not cgroups */
	snprintf(p, sizeof(p), "%s/cgroup.procs", tr->v2);
	lm_t_write(p, "1\n");
	snprintf(p, sizeof(p), "%s/link", tr->v2);
	assert_int_equal(symlink(tr->mem, p), 0);
	/* the wrong mounts come first: outside the namespace, a subtree, memory-like names */
	snprintf(
		mi, sizeof(mi),
		"22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
		"30 1 0:26 /.. /ns rw - cgroup2 cgroup2 rw\n"
		"31 1 0:26 /sub /elsewhere rw - cgroup2 cgroup2 rw\n"
		"32 1 0:27 / /bogus rw shared:3 - cgroup cgroup rw,name=memoryx\n"
		"33 1 0:28 / /cpu rw - cgroup cgroup rw,cpu,cpuacct\n"
		"41 1 0:26 / %s/uni\\040fied rw,relatime shared:6 - cgroup2 cgroup2 rw,nsdelegate\n"
		"43 1 0:29 /outer %s rw,relatime shared:8 master:1 - cgroup cgroup rw,memory\n"
		"44 1 0:26 /sub2 /elsewhere2 rw - cgroup2 cgroup2 rw\n",
		tr->t.dir, tr->mem);
	lm_t_write(tr->t.mountinfo, mi);
}

static void test_cgroup_open_scans(void **state)
{
	struct lm_cgroup_stats st;
	struct lm_cgroup_view v;
	struct lm_cgroup *c;
	struct trees tr;

	(void)state;
	lm_t_trees(&tr);
	c = lm_t_open(&tr.t, 64, 0);
	assert_int_equal(lm_cgroup_memory_hier(c), 4);
	assert_true(lm_t_has(c, 0, lm_t_ino(tr.v2, ""), "/"));
	assert_true(lm_t_has(c, 0, lm_t_ino(tr.v2, "system.slice"), "/system.slice"));
	assert_int_equal(
		lm_cgroup_lookup(
			c, 0, lm_t_ino(tr.v2, "system.slice/docker-" ID_A ".scope/init.scope"), &v),
		0);
	assert_string_equal(v.path, "/system.slice/docker-" ID_A ".scope/init.scope");
	assert_string_equal(v.container_id, ID_A);
	assert_string_equal(v.unit, "init.scope");
	assert_int_equal(lm_cgroup_lookup(c, 0,
					  lm_t_ino(tr.v2, "kubepods/burstable/pod" UID_D "/" ID_B),
					  &v),
			 0);
	assert_string_equal(v.container_id, ID_B);
	assert_string_equal(v.pod_uid, UID_D);
	/* the memory hierarchy's mount is of /outer: its paths start there */
	assert_true(lm_t_has(c, 4, lm_t_ino(tr.mem, ""), "/outer"));
	assert_int_equal(
		lm_cgroup_lookup(c, 4, lm_t_ino(tr.mem, "kubepods/pod" UID_D "/" ID_B), &v), 0);
	assert_string_equal(v.path, "/outer/kubepods/pod" UID_D "/" ID_B);
	assert_string_equal(v.container_id, ID_B);
	assert_string_equal(v.pod_uid, UID_D);
	/* neither the file, nor the symlink's target, nor the other hierarchy's dirs */
	assert_int_equal(lm_cgroup_lookup(c, 0, lm_t_ino(tr.v2, "cgroup.procs"), &v), -ENOENT);
	assert_int_equal(lm_cgroup_lookup(c, 0, lm_t_ino(tr.mem, "kubepods"), &v), -ENOENT);
	assert_int_equal(lm_cgroup_lookup(c, 4, lm_t_ino(tr.v2, "kubepods"), &v), -ENOENT);
	lm_cgroup_get_stats(c, &st);
	assert_int_equal(st.scans, 2);
	assert_int_equal(st.scan_errors, 0);
	assert_int_equal(st.entries, 8 + 4);
	lm_cgroup_close(c);
	lm_t_files_rm(&tr.t);
}

/* Only a mount of a subtree: its root prefixes every path; one from outside: no scan. */
static void test_cgroup_open_subtree_mount(void **state)
{
	struct lm_cgroup_stats st;
	struct lm_cgroup *c;
	struct trees tr;
	char mi[512];

	(void)state;
	lm_t_trees(&tr);
	snprintf(mi, sizeof(mi), "41 1 0:26 /lm/sub/ %s/uni\\040fied rw - cgroup2 cgroup2 rw\n",
		 tr.t.dir);
	lm_t_write(tr.t.mountinfo, mi);
	c = lm_t_open(&tr.t, 64, 0);
	assert_true(lm_t_has(c, 0, lm_t_ino(tr.v2, ""), "/lm/sub"));
	assert_true(lm_t_has(c, 0, lm_t_ino(tr.v2, "system.slice"), "/lm/sub/system.slice"));
	/* no memory mount: learnt records still resolve */
	assert_int_equal(lm_cgroup_memory_hier(c), 4);
	lm_t_learn(c, 4, 77, "/m");
	assert_true(lm_t_has(c, 4, 77, "/m"));
	lm_cgroup_close(c);
	/* a mount whose root lies outside this cgroup namespace is not scanned */
	snprintf(mi, sizeof(mi), "41 1 0:26 /../.. %s/uni\\040fied rw - cgroup2 cgroup2 rw\n",
		 tr.t.dir);
	lm_t_write(tr.t.mountinfo, mi);
	c = lm_t_open(&tr.t, 64, 0);
	lm_cgroup_get_stats(c, &st);
	assert_int_equal(st.scans, 0);
	assert_int_equal(st.entries, 0);
	lm_cgroup_close(c);
	lm_t_files_rm(&tr.t);
}

/* A path deeper than the cap is stored cut; the walk goes on below it. */
static void test_cgroup_scan_deep(void **state)
{
	struct lm_cgroup_stats st;
	struct lm_cgroup_view v;
	char rel[8192], name[201];
	struct lm_cgroup *c;
	struct trees tr;
	struct stat sb;
	int i, fd, sub;
	size_t n = 0;

	(void)state;
	lm_t_trees(&tr);
	memset(name, 'n', 200);
	name[200] = '\0';
	/* beyond PATH_MAX for the syscalls too: walk down with *at() */
	fd = open(tr.v2, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	for (i = 0; i < 25; i++) {
		n += (size_t)snprintf(rel + n, sizeof(rel) - n, "%s%s", i ? "/" : "", name);
		assert_int_equal(mkdirat(fd, name, 0755), 0);
		sub = openat(fd, name, O_RDONLY | O_DIRECTORY);
		assert_true(sub >= 0);
		close(fd);
		fd = sub;
	}
	assert_int_equal(fstat(fd, &sb), 0);
	close(fd);
	c = lm_t_open(&tr.t, 256, 0);
	assert_int_equal(lm_cgroup_lookup(c, 0, sb.st_ino, &v), 0);
	assert_int_equal(v.path_len, LM_CGROUP_PATH_MAX);
	assert_int_equal(v.path[0], '/');
	assert_memory_equal(v.path + 1, rel, LM_CGROUP_PATH_MAX - 1);
	lm_cgroup_get_stats(c, &st);
	assert_int_equal(st.cut_paths, 5); /* levels 21..25 reach past 4096 bytes */
	assert_int_equal(st.scan_errors, 0);
	lm_cgroup_close(c);
	lm_t_files_rm(&tr.t);
}

static uint64_t lm_t_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* A miss rescans, at most once per interval, however many misses come. */
static void test_cgroup_rescan_rate_limited(void **state)
{
	struct lm_cgroup_opts o = { 0 };
	struct lm_cgroup_stats st;
	struct lm_cgroup *c = NULL;
	uint64_t t0, el, i, deadline;
	struct trees tr;
	ino_t ino;

	(void)state;
	lm_t_trees(&tr);
	o.mountinfo = tr.t.mountinfo;
	o.proc_cgroups = tr.t.cgroups;
	o.rescan_interval_ns = 3600ULL * 1000000000ULL;
	assert_int_equal(lm_cgroup_open(&o, &c), 0);
	lm_t_mkdir(tr.v2, "late.scope");
	ino = lm_t_ino(tr.v2, "late.scope");
	for (i = 0; i < 10000; i++)
		assert_false(lm_t_has(c, 0, ino, "/late.scope"));
	lm_cgroup_get_stats(c, &st);
	assert_int_equal(st.scans, 2);
	assert_int_equal(st.misses, 10000);
	lm_cgroup_close(c);

	o.rescan_interval_ns = 50ULL * 1000000ULL;
	assert_int_equal(lm_cgroup_open(&o, &c), 0);
	lm_t_mkdir(tr.v2, "later.scope");
	ino = lm_t_ino(tr.v2, "later.scope");
	t0 = lm_t_now_ns();
	deadline = t0 + 5000000000ULL;
	while (!lm_t_has(c, 0, ino, "/later.scope"))
		assert_true(lm_t_now_ns() < deadline);
	/* a storm of misses for ids that exist nowhere */
	for (i = 0; i < 200000; i++)
		assert_int_equal(
			lm_cgroup_lookup(c, 0, (1ULL << 62) + i, &(struct lm_cgroup_view){ 0 }),
			-ENOENT);
	el = lm_t_now_ns() - t0;
	lm_cgroup_get_stats(c, &st);
	/* open's two scans, then at most one v2 rescan per 50 ms started */
	assert_true(st.scans >= 3);
	if (st.scans > 2 + 1 + el / o.rescan_interval_ns)
		fail_msg("%llu scans in %llu ns", (unsigned long long)st.scans,
			 (unsigned long long)el);
	lm_cgroup_close(c);
	lm_t_files_rm(&tr.t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cgroup_parse_docker),
		cmocka_unit_test(test_cgroup_parse_kubepods),
		cmocka_unit_test(test_cgroup_parse_podman),
		cmocka_unit_test(test_cgroup_parse_conmon),
		cmocka_unit_test(test_cgroup_parse_not_an_id),
		cmocka_unit_test(test_cgroup_parse_pod_uid),
		cmocka_unit_test(test_cgroup_parse_unit),
		cmocka_unit_test(test_cgroup_parse_bounded),
		cmocka_unit_test(test_cgroup_memory_hier),
		cmocka_unit_test(test_cgroup_learn_lookup),
		cmocka_unit_test(test_cgroup_forget_grace),
		cmocka_unit_test(test_cgroup_evicts_lru),
		cmocka_unit_test(test_cgroup_model),
		cmocka_unit_test(test_cgroup_open_scans),
		cmocka_unit_test(test_cgroup_open_subtree_mount),
		cmocka_unit_test(test_cgroup_scan_deep),
		cmocka_unit_test(test_cgroup_rescan_rate_limited),
	};

	return cmocka_run_group_tests_name("cgroup", tests, NULL, NULL);
}
