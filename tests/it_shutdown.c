// SPDX-License-Identifier: GPL-2.0
/*
 * Integration test: SIGTERM and SIGINT make lifemon exit 0 within 2 s and leave no BPF
 * program or link behind. lifemon's BPF objects are found from /proc/<pid>/fdinfo and from
 * bpftool's "pids" (when bpftool has them); existence is checked with bpftool -j. Root only.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/it_util.h"

#define IT_PORT_TERM 18083
#define IT_PORT_INT 18086
#define IT_MAX_IDS 256
#define IT_GONE_MS 2000

struct bpf_ids {
	uint32_t progs[IT_MAX_IDS];
	uint32_t links[IT_MAX_IDS];
	size_t nprog;
	size_t nlink;
};

static void add_id(uint32_t *ids, size_t *n, uint32_t id)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if (ids[i] == id)
			return;
	if (*n < IT_MAX_IDS)
		ids[(*n)++] = id;
}

static json_t *bpftool_show(const char *what)
{
	json_t *arr = NULL;
	int err;

	err = lm_it_bpftool_show(what, &arr);
	LM_IT_ASSERT(!err, "bpftool -j %s show: %s", what, strerror(-err));
	return arr;
}

/* Union of lifemon's fds (fdinfo) and bpftool's pids attribution. */
static void collect_ids(pid_t pid, const json_t *progs, const json_t *links, struct bpf_ids *ids)
{
	size_t i;
	int err;

	err =
	    lm_it_bpf_ids_of_pid(pid, ids->progs, &ids->nprog, ids->links, &ids->nlink, IT_MAX_IDS);
	LM_IT_ASSERT(!err, "reading /proc/%d/fdinfo: %s", pid, strerror(-err));
	for (i = 0; i < json_array_size(progs); i++) {
		const json_t *e = json_array_get(progs, i);

		if (lm_it_bpf_entry_has_pid(e, pid))
			add_id(ids->progs, &ids->nprog, (uint32_t)lm_it_jint(e, "id", 0));
	}
	for (i = 0; i < json_array_size(links); i++) {
		const json_t *e = json_array_get(links, i);

		if (lm_it_bpf_entry_has_pid(e, pid))
			add_id(ids->links, &ids->nlink, (uint32_t)lm_it_jint(e, "id", 0));
	}
}

/* Number of ids still listed by bpftool; names them when `report`. */
static size_t count_present(const struct bpf_ids *ids, bool report)
{
	json_t *progs = bpftool_show("prog"), *links = bpftool_show("link");
	size_t i, left = 0;

	for (i = 0; i < ids->nprog; i++) {
		const json_t *e = lm_it_bpf_find_id(progs, ids->progs[i]);

		if (!e)
			continue;
		left++;
		if (report)
			lm_it_fail(
			    "BPF prog %u (%s) still loaded after lifemon exited: %s", ids->progs[i],
			    lm_it_jstr(e, "name") ? lm_it_jstr(e, "name") : "?", lm_it_jdump(e));
	}
	for (i = 0; i < ids->nlink; i++) {
		const json_t *e = lm_it_bpf_find_id(links, ids->links[i]);

		if (!e)
			continue;
		left++;
		if (report)
			lm_it_fail("BPF link %u still exists after lifemon exited: %s",
				   ids->links[i], lm_it_jdump(e));
	}
	json_decref(progs);
	json_decref(links);
	return left;
}

static void run_round(int sig, uint16_t port)
{
	const char *sig_name = sig == SIGTERM ? "SIGTERM" : "SIGINT";
	struct lm_it_proc *lm = NULL;
	struct bpf_ids ids = {0};
	bool has_exec = false, has_exit = false;
	json_t *progs, *links;
	int64_t ms = 0, deadline;
	char buf[64];
	size_t i;
	int err, st = 0;
	pid_t pid;

	err = lm_it_lifemon_start(port, NULL, false, &lm);
	LM_IT_ASSERT(!err, "%s round: lifemon did not become healthy: %s", sig_name,
		     strerror(-err));
	pid = lm_it_proc_pid(lm);

	progs = bpftool_show("prog");
	links = bpftool_show("link");
	collect_ids(pid, progs, links, &ids);
	for (i = 0; i < ids.nprog; i++) {
		const json_t *e = lm_it_bpf_find_id(progs, ids.progs[i]);
		const char *name = e ? lm_it_jstr(e, "name") : NULL;

		LM_IT_EXPECT(e, "%s round: prog id %u held by lifemon is not in bpftool's list",
			     sig_name, ids.progs[i]);
		if (!name)
			continue;
		lm_it_note("%s round: lifemon pid %d holds prog %u %s", sig_name, pid, ids.progs[i],
			   name);
		if (!strcmp(name, "lm_exec"))
			has_exec = true;
		if (!strncmp(name, "lm_exit", 7))
			has_exit = true;
	}
	for (i = 0; i < ids.nlink; i++) {
		const json_t *e = lm_it_bpf_find_id(links, ids.links[i]);

		LM_IT_EXPECT(e, "%s round: link id %u held by lifemon is not in bpftool's list",
			     sig_name, ids.links[i]);
		lm_it_note("%s round: lifemon pid %d holds link %u (prog %lld)", sig_name, pid,
			   ids.links[i], e ? lm_it_jint(e, "prog_id", -1) : -1LL);
	}
	json_decref(progs);
	json_decref(links);
	LM_IT_EXPECT(has_exec, "%s round: no BPF prog named lm_exec held by lifemon pid %d",
		     sig_name, pid);
	LM_IT_EXPECT(has_exit, "%s round: no BPF prog named lm_exit* held by lifemon pid %d",
		     sig_name, pid);
	LM_IT_EXPECT(ids.nlink >= 2, "%s round: lifemon pid %d holds %zu BPF links, want >= 2",
		     sig_name, pid, ids.nlink);

	err = lm_it_proc_stop(lm, sig, LM_IT_STOP_MS, &st, &ms);
	LM_IT_EXPECT(!err, "%s round: lifemon did not exit within %d ms (SIGKILLed)", sig_name,
		     LM_IT_STOP_MS);
	LM_IT_EXPECT(!err && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		     "%s round: lifemon ended with %s, want exit 0", sig_name,
		     lm_it_wstatus_str(st, buf, sizeof(buf)));
	lm_it_note("%s round: %s after %lld ms", sig_name, lm_it_wstatus_str(st, buf, sizeof(buf)),
		   (long long)ms);

	/* The kernel frees a prog or link once its last reference goes; allow for that. */
	deadline = lm_it_now_ms() + IT_GONE_MS;
	while (count_present(&ids, false) && lm_it_now_ms() < deadline)
		usleep(10000);
	count_present(&ids, true);
	if (lm_it_failures())
		lm_it_proc_dump_stderr(lm, sig_name);
	lm_it_proc_free(lm);
}

int main(int argc, char **argv)
{
	lm_it_init("it_shutdown", argc, argv, 100);
	lm_it_require_env();
	lm_it_require_bpftool();

	run_round(SIGTERM, IT_PORT_TERM);
	run_round(SIGINT, IT_PORT_INT);
	return lm_it_finish();
}
