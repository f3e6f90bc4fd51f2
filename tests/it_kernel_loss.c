// SPDX-License-Identifier: GPL-2.0
/*
 * Integration test (root, real kernel): events the kernel cannot queue are announced in-band.
 * A process pinned to CPU 0 renames itself in a burst (lm_bench) while lifemon is stopped and
 * its 16 KiB rings are full; after SIGCONT, kernel_ring_full notices must announce exactly
 * what lifemon_kernel_cpu_dropped_total counts for CPU 0 (bracketed by two snapshots, so
 * other processes' drops on a busy host cannot make the check flaky).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/it_util.h"

#define IT_PORT 18097
#define BURST 20000

struct child_arg {
	int go_rd, go_wr;	/* the child reads '1' (burst) then '2' (carrier) */
	int done_rd, done_wr;	/* it writes 'd' after the burst */
};

static int child_main(void *arg)
{
	const struct child_arg *a = arg;
	cpu_set_t set;
	char c;
	long i;

	close(a->go_wr);
	close(a->done_rd);
	CPU_ZERO(&set);
	CPU_SET(0, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		return 2;
	if (read(a->go_rd, &c, 1) != 1 || c != '1')
		return 3;
	for (i = 0; i < BURST; i++)
		if (prctl(PR_SET_NAME, (i & 1) ? "xburst" : "eburst") < 0)
			return 4;
	if (write(a->done_wr, "d", 1) != 1)
		return 5;
	/* carriers, resent on request: a full ring may drop one too */
	while (read(a->go_rd, &c, 1) == 1)
		if (prctl(PR_SET_NAME, c == '2' ? "ecarrier" : "ecarrier2") < 0)
			return 6;
	return 0;
}

static bool carrier_seen(struct lm_it_acct *a, pid_t pid, const char *name)
{
	const struct lm_it_acct_rec *r;
	size_t n, i;

	r = lm_it_acct_recs(a, &n);
	for (i = 0; i < n; i++)
		if (r[i].pid == pid && !strcmp(r[i].comm, name))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	static const char *const types[] = { "exec", "exit", "oom_kill" };
	struct child_arg ca;
	struct lm_it_proc *lm = NULL;
	struct lm_it_acct *acct = NULL;
	struct lm_it_acct_stats st;
	char pidstr[16], series[96], why[160] = "", *body = NULL, c;
	bool balanced;
	const char *extra[] = { "--ring-size", "16K", "--bench-tgid", pidstr, NULL };
	double cpu0 = 0, cpu0_after, seen, dropped, read_, v;
	int go[2], done[2], err, status, t;
	int64_t deadline, stop_ms;
	pid_t child;

	lm_it_init("it_kernel_loss", argc, argv, 100);
	lm_it_require_env();
	LM_IT_ASSERT(!pipe2(go, O_CLOEXEC) && !pipe2(done, O_CLOEXEC), "pipe: %s", strerror(errno));
	ca = (struct child_arg){ go[0], go[1], done[0], done[1] };
	err = lm_it_fork_fn(child_main, &ca, &child);
	LM_IT_ASSERT(!err, "fork: %s", strerror(-err));
	close(go[0]);
	close(done[1]);
	snprintf(pidstr, sizeof(pidstr), "%d", child);

	err = lm_it_lifemon_start(IT_PORT, extra, false, &lm);
	LM_IT_ASSERT(!err, "lifemon did not become healthy: %s", strerror(-err));
	err = lm_it_acct_open(IT_PORT, true, &acct);
	LM_IT_ASSERT(!err, "ws connect: %s", strerror(-err));

	/* fill the rings while nobody drains them */
	LM_IT_ASSERT(!kill(lm_it_proc_pid(lm), SIGSTOP), "SIGSTOP: %s", strerror(errno));
	LM_IT_ASSERT(write(go[1], "1", 1) == 1, "pipe: %s", strerror(errno));
	LM_IT_ASSERT(read(done[0], &c, 1) == 1, "the burst child died");
	LM_IT_ASSERT(!kill(lm_it_proc_pid(lm), SIGCONT), "SIGCONT: %s", strerror(errno));
	/* the next record from CPU 0 carries the count of what it lost */
	LM_IT_ASSERT(write(go[1], "2", 1) == 1, "pipe: %s", strerror(errno));
	deadline = lm_it_now_ms() + 15000;
	while (!carrier_seen(acct, child, "ecarrier") && lm_it_now_ms() < deadline) {
		if (lm_it_acct_pump(acct, 200) < 0)
			break;
		if (!carrier_seen(acct, child, "ecarrier") && write(go[1], "2", 1) != 1)
			break;
	}
	LM_IT_ASSERT(carrier_seen(acct, child, "ecarrier"), "the carrier rename of %d never arrived",
		     child);

	/* the books balance once nothing is in flight: retry until they do, or fail */
	deadline = lm_it_now_ms() + 20000;
	do {
		balanced = true;
		cpu0 = 0;
		free(body);
		body = NULL;
		LM_IT_ASSERT(!lm_it_metrics_fetch(IT_PORT, 5000, &body), "GET /metrics failed");
		for (t = 0; t < 3; t++) {
			snprintf(series, sizeof(series),
				 "lifemon_kernel_cpu_dropped_total{cpu=\"0\",type=\"%s\"}", types[t]);
			LM_IT_ASSERT(lm_it_metric(body, series, &v), "no %s", series);
			cpu0 += v;
			snprintf(series, sizeof(series), "lifemon_events_total{type=\"%s\"}",
				 types[t]);
			LM_IT_ASSERT(lm_it_metric(body, series, &seen), "no %s", series);
			snprintf(series, sizeof(series), "lifemon_kernel_dropped_total{type=\"%s\"}",
				 types[t]);
			LM_IT_ASSERT(lm_it_metric(body, series, &dropped), "no %s", series);
			snprintf(series, sizeof(series), "lifemon_read_total{type=\"%s\"}", types[t]);
			LM_IT_ASSERT(lm_it_metric(body, series, &read_), "no %s", series);
			if (seen != dropped + read_) {
				balanced = false;
				snprintf(why, sizeof(why), "%s: seen %.0f != dropped %.0f + read %.0f",
					 types[t], seen, dropped, read_);
			}
		}
		if (!balanced)
			usleep(50000);
	} while (!balanced && lm_it_now_ms() < deadline);
	LM_IT_EXPECT(balanced, "books never balanced in 20 s: %s", why);
	free(body);
	body = NULL;
	/* a second carrier from CPU 0 carries every CPU-0 drop counted in that snapshot */
	LM_IT_ASSERT(write(go[1], "3", 1) == 1, "pipe: %s", strerror(errno));
	deadline = lm_it_now_ms() + 15000;
	while (!carrier_seen(acct, child, "ecarrier2") && lm_it_now_ms() < deadline) {
		if (lm_it_acct_pump(acct, 200) < 0)
			break;
		if (!carrier_seen(acct, child, "ecarrier2") && write(go[1], "3", 1) != 1)
			break;
	}
	LM_IT_ASSERT(carrier_seen(acct, child, "ecarrier2"), "the second carrier never arrived");
	close(go[1]);
	LM_IT_ASSERT(!lm_it_reap(child, 5000, &status) && WIFEXITED(status) && !WEXITSTATUS(status),
		     "burst child failed");
	LM_IT_ASSERT(!lm_it_metrics_fetch(IT_PORT, 5000, &body), "GET /metrics failed");
	cpu0_after = 0;
	for (t = 0; t < 3; t++) {
		snprintf(series, sizeof(series),
			 "lifemon_kernel_cpu_dropped_total{cpu=\"0\",type=\"%s\"}", types[t]);
		LM_IT_ASSERT(lm_it_metric(body, series, &v), "no %s", series);
		cpu0_after += v;
	}
	free(body);
	lm_it_acct_get_stats(acct, &st);
	lm_it_note("kernel dropped on cpu 0: %.0f (%.0f after); announced in-band: %llu in %llu "
		   "notices; stream dead: %d", cpu0, cpu0_after, (unsigned long long)st.kernel_lost[0],
		   (unsigned long long)st.kernel_notices, st.dead);
	LM_IT_EXPECT(cpu0 > 0, "a %d-rename burst into stopped 16 KiB rings lost nothing?", BURST);
	LM_IT_EXPECT((double)st.kernel_lost[0] >= cpu0 && (double)st.kernel_lost[0] <= cpu0_after,
		     "in-band kernel_ring_full notices for cpu 0 sum to %llu; /metrics said %.0f "
		     "before the second carrier and %.0f after (this client also missed %llu events "
		     "as slow_client, whose notices went with them)",
		     (unsigned long long)st.kernel_lost[0], cpu0, cpu0_after,
		     (unsigned long long)st.lost_slow);
	lm_it_acct_report(acct, "ws");
	lm_it_acct_close(acct);
	LM_IT_EXPECT(!lm_it_proc_stop(lm, SIGTERM, 2000, &status, &stop_ms) && WIFEXITED(status) &&
			     !WEXITSTATUS(status),
		     "lifemon did not exit 0 within 2 s of SIGTERM");
	lm_it_proc_free(lm);
	return lm_it_finish();
}
