// SPDX-License-Identifier: GPL-2.0
/*
 * Integration test: a pipeline stage that fails ends lifemon, it does not hang it. For each
 * stage (serializer, ws, reader) lifemon runs with LIFEMON_FAULT=<stage>_fail_after:N (test
 * builds only) during a --bench-tgid burst far larger than ev_ring, and must exit 1 within
 * 3 s of the burst's start, log one line naming the stage and its error, leave no BPF
 * program or link behind, and account for every event it abandoned. Root only.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/it_util.h"

#define IT_PORT_SER 18103
#define IT_PORT_WS 18104
#define IT_PORT_READER 18105
#define IT_MAX_IDS 256
#define IT_EXIT_MS 3000	   /* burst start (before the fault) until lifemon has exited */
#define IT_GONE_MS 2000	   /* the kernel frees progs and links once the last fd is gone */
#define IT_FAIL_AFTER 5000 /* events the failing stage handles first */
#define IT_RENAMES 400000  /* ~50x ev_ring: the reader must end up waiting for space */

struct stage {
	const char *fault;    /* LIFEMON_FAULT value */
	const char *log_name; /* as lifemon's log names the stage */
	uint16_t port;
};

struct bpf_ids {
	uint32_t progs[IT_MAX_IDS];
	uint32_t links[IT_MAX_IDS];
	size_t nprog;
	size_t nlink;
};

struct bench_arg {
	int go_rd, go_wr;
};

/* Renames itself IT_RENAMES times once it reads a byte: each rename is an event. */
static int bench_child(void *arg)
{
	const struct bench_arg *a = arg;
	long i;
	char c;

	close(a->go_wr);
	if (read(a->go_rd, &c, 1) != 1)
		return 3;
	for (i = 0; i < IT_RENAMES; i++)
		if (prctl(PR_SET_NAME, (i & 1) ? "xfail" : "efail") < 0)
			return 4;
	return 0;
}

/* Number of the ids still listed by bpftool; names them when `report`. */
static size_t count_present(const struct bpf_ids *ids, bool report, const char *who)
{
	json_t *progs = NULL, *links = NULL;
	size_t i, left = 0;
	int err;

	err = lm_it_bpftool_show("prog", &progs);
	if (!err)
		err = lm_it_bpftool_show("link", &links);
	LM_IT_ASSERT(!err, "bpftool -j show: %s", strerror(-err));
	for (i = 0; i < ids->nprog; i++) {
		const json_t *e = lm_it_bpf_find_id(progs, ids->progs[i]);

		if (!e)
			continue;
		left++;
		if (report)
			lm_it_fail("%s: BPF prog %u (%s) still loaded after lifemon exited", who,
				   ids->progs[i], lm_it_jstr(e, "name") ? lm_it_jstr(e, "name") : "?");
	}
	for (i = 0; i < ids->nlink; i++) {
		if (!lm_it_bpf_find_id(links, ids->links[i]))
			continue;
		left++;
		if (report)
			lm_it_fail("%s: BPF link %u still exists after lifemon exited", who,
				   ids->links[i]);
	}
	json_decref(progs);
	json_decref(links);
	return left;
}

/* Every lm_* prog loaded on the host, by id (lifemon's and any other instance's). */
static size_t lm_progs(uint32_t *ids, size_t cap)
{
	json_t *progs = NULL;
	size_t i, n = 0;
	int err;

	err = lm_it_bpftool_show("prog", &progs);
	LM_IT_ASSERT(!err, "bpftool -j prog show: %s", strerror(-err));
	for (i = 0; i < json_array_size(progs) && n < cap; i++) {
		const json_t *e = json_array_get(progs, i);
		const char *name = lm_it_jstr(e, "name");

		if (name && !strncmp(name, "lm_", 3))
			ids[n++] = (uint32_t)lm_it_jint(e, "id", 0);
	}
	json_decref(progs);
	return n;
}

static void run_stage(const struct stage *sg)
{
	char pidstr[16], fault[64], buf[64], *text = NULL, *line;
	const char *extra[] = {"--bench-tgid", pidstr, NULL};
	unsigned long long ab_reader, ab_ser, ab_ws, read, ser, pub;
	uint32_t before[IT_MAX_IDS], after[IT_MAX_IDS];
	struct lm_it_proc *lm = NULL;
	struct bpf_ids ids = {0};
	struct bench_arg ba;
	size_t nbefore, nafter, i, j, len, failed_lines = 0;
	int64_t t_go, t_exit, deadline;
	double v;
	char *body = NULL;
	int fds[2], err, st = 0;
	pid_t child;

	LM_IT_ASSERT(pipe2(fds, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
	ba.go_rd = fds[0];
	ba.go_wr = fds[1];
	err = lm_it_fork_fn(bench_child, &ba, &child);
	LM_IT_ASSERT(!err, "fork: %s", strerror(-err));
	close(fds[0]);
	snprintf(pidstr, sizeof(pidstr), "%d", child);

	snprintf(fault, sizeof(fault), "%s:%d", sg->fault, IT_FAIL_AFTER);
	setenv("LIFEMON_FAULT", fault, 1);
	err = lm_it_lifemon_start(sg->port, extra, false, &lm);
	unsetenv("LIFEMON_FAULT");
	LM_IT_ASSERT(!err, "%s: lifemon did not become healthy: %s", sg->fault, strerror(-err));
	LM_IT_ASSERT(!lm_it_proc_stderr(lm, &text, &len), "reading lifemon's stderr");
	if (!strstr(text, "fault injection armed")) {
		free(text);
		lm_it_proc_free(lm);
		lm_it_kill_reap(child);
		lm_it_skip("lifemon was built without LM_FAULT_INJECT (a release build)");
	}
	free(text);
	text = NULL;

	err = lm_it_bpf_ids_of_pid(lm_it_proc_pid(lm), ids.progs, &ids.nprog, ids.links, &ids.nlink,
				   IT_MAX_IDS);
	LM_IT_ASSERT(!err, "reading lifemon's fdinfo: %s", strerror(-err));
	LM_IT_EXPECT(ids.nprog >= 2 && ids.nlink >= 2, "%s: lifemon holds %zu progs, %zu links",
		     sg->fault, ids.nprog, ids.nlink);
	nbefore = lm_progs(before, IT_MAX_IDS);

	/* the abandoned series exist, and nothing was abandoned while healthy */
	err = lm_it_metrics_fetch(sg->port, 5000, &body);
	LM_IT_ASSERT(!err, "%s: GET /metrics: %s", sg->fault, strerror(-err));
	for (i = 0; i < 3; i++) {
		static const char *const series[] = {"lifemon_abandoned_total{stage=\"reader\"}",
						     "lifemon_abandoned_total{stage=\"serializer\"}",
						     "lifemon_abandoned_total{stage=\"ws\"}"};

		LM_IT_EXPECT(lm_it_metric(body, series[i], &v) && v == 0,
			     "%s: /metrics before the fault: %s missing or not 0", sg->fault,
			     series[i]);
	}
	free(body);

	t_go = lm_it_now_ms();
	LM_IT_ASSERT(write(fds[1], "g", 1) == 1, "pipe write: %s", strerror(errno));
	close(fds[1]);
	err = lm_it_proc_wait(lm, IT_EXIT_MS, &st);
	t_exit = lm_it_now_ms();
	if (err) {
		lm_it_fail("%s: lifemon still running %d ms after the burst began: it hangs on "
			   "the failed stage", sg->fault, IT_EXIT_MS);
		lm_it_proc_dump_stderr(lm, sg->fault);
		lm_it_proc_free(lm); /* SIGKILL */
		lm_it_kill_reap(child);
		return;
	}
	lm_it_kill_reap(child);
	LM_IT_EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 1, "%s: lifemon ended with %s, want exit 1",
		     sg->fault, lm_it_wstatus_str(st, buf, sizeof(buf)));
	lm_it_note("%s: lifemon %s %lld ms after the burst began", sg->fault,
		   lm_it_wstatus_str(st, buf, sizeof(buf)), (long long)(t_exit - t_go));

	/* one line names the stage and its error */
	LM_IT_ASSERT(!lm_it_proc_stderr(lm, &text, &len), "reading lifemon's stderr");
	for (line = strstr(text, " failed: "); line; line = strstr(line + 1, " failed: "))
		failed_lines++;
	snprintf(buf, sizeof(buf), "stage %s failed: %s", sg->log_name, strerror(EIO));
	LM_IT_EXPECT(strstr(text, buf), "%s: no log line \"%s\"", sg->fault, buf);
	LM_IT_EXPECT(failed_lines == 1, "%s: %zu lines say \"failed\", want exactly one", sg->fault,
		     failed_lines);

	/* the books balance at exit */
	line = strstr(text, "events abandoned at exit: ");
	LM_IT_EXPECT(line, "%s: no \"events abandoned at exit\" line", sg->fault);
	if (line && sscanf(line, "events abandoned at exit: reader %llu, serializer %llu, ws %llu "
				 "(read %llu, serialized %llu, published %llu)",
			   &ab_reader, &ab_ser, &ab_ws, &read, &ser, &pub) == 6) {
		lm_it_note("%s: abandoned reader %llu, serializer %llu, ws %llu; read %llu, "
			   "serialized %llu, published %llu", sg->fault, ab_reader, ab_ser, ab_ws,
			   read, ser, pub);
		LM_IT_EXPECT(read == ser + ab_ser, "%s: read %llu != serialized %llu + abandoned "
			     "%llu", sg->fault, read, ser, ab_ser);
		LM_IT_EXPECT(ser == pub + ab_ws, "%s: serialized %llu != published %llu + abandoned "
			     "%llu", sg->fault, ser, pub, ab_ws);
		/* the failing stage stopped where the fault said */
		if (!strcmp(sg->log_name, "serializer (lm-ser)")) {
			LM_IT_EXPECT(ser >= IT_FAIL_AFTER && ser < IT_FAIL_AFTER + 8192,
				     "%s: serialized %llu", sg->fault, ser);
			/* the burst outran the dead serializer: ev_ring was full when it died */
			LM_IT_EXPECT(ab_ser > 0 && ab_reader > 0,
				     "%s: the burst left nothing behind (serializer %llu, reader "
				     "%llu): the test did not fill ev_ring", sg->fault, ab_ser,
				     ab_reader);
		} else if (!strcmp(sg->log_name, "ws (lm-ws)")) {
			LM_IT_EXPECT(pub >= IT_FAIL_AFTER, "%s: published %llu", sg->fault, pub);
			LM_IT_EXPECT(ab_ser + ab_ws > 0, "%s: nothing abandoned after the ws thread "
				     "died mid-burst", sg->fault);
		} else {
			LM_IT_EXPECT(read >= IT_FAIL_AFTER && ab_ser == 0 && ab_ws == 0,
				     "%s: read %llu, abandoned serializer %llu ws %llu", sg->fault,
				     read, ab_ser, ab_ws);
		}
	} else if (line) {
		lm_it_fail("%s: cannot parse \"%.160s\"", sg->fault, line);
	}
	free(text);

	/* every program and link is gone, and no lm_ program appeared or stayed */
	deadline = lm_it_now_ms() + IT_GONE_MS;
	while (count_present(&ids, false, sg->fault) && lm_it_now_ms() < deadline)
		usleep(10000);
	count_present(&ids, true, sg->fault);
	nafter = lm_progs(after, IT_MAX_IDS);
	for (i = 0; i < nafter; i++) {
		bool old = false;

		for (j = 0; j < nbefore; j++)
			old |= after[i] == before[j];
		for (j = 0; j < ids.nprog; j++)
			LM_IT_EXPECT(after[i] != ids.progs[j], "%s: lifemon's prog %u still loaded",
				     sg->fault, after[i]);
		LM_IT_EXPECT(old, "%s: lm_ prog %u appeared", sg->fault, after[i]);
	}
	if (lm_it_failures())
		lm_it_proc_dump_stderr(lm, sg->fault);
	lm_it_proc_free(lm);
}

int main(int argc, char **argv)
{
	static const struct stage stages[] = {
		{"ser_fail_after", "serializer (lm-ser)", IT_PORT_SER},
		{"ws_fail_after", "ws (lm-ws)", IT_PORT_WS},
		{"reader_fail_after", "reader (lm-reader)", IT_PORT_READER},
	};
	size_t i;

	lm_it_init("it_stage_fail", argc, argv, 100);
	lm_it_require_env();
	lm_it_require_bpftool();
	for (i = 0; i < sizeof(stages) / sizeof(stages[0]); i++)
		run_stage(&stages[i]);
	return lm_it_finish();
}
