// SPDX-License-Identifier: GPL-2.0
/*
 * synth-load: the synthetic event source for bench/synth.sh. lifemon --bench-tgid PID turns
 * every prctl(PR_SET_NAME) of process PID into an event (EXIT when the name starts with 'x',
 * else EXEC), so this process renames itself in a tight loop at a target rate.
 * Waits for a go line on stdin before each run; one result line per run. With --threads T,
 * T threads of this process rename themselves at once (each R/T per second): every thread
 * shares the tgid lifemon watches, and they spread the events over the CPUs' rings.
 *
 * usage: synth-load [--rate R] [--seconds S | --count N] [--batch B] [--threads T]
 *   stdin, one line per run: "go" (or an empty line) runs with the options above;
 *   "RATE SECONDS" or "RATE count=N" runs with those (RATE 0 = unlimited); "quit" or EOF ends.
 *   stdout, one line per run:
 *   "count=N seconds=S rate=R target=T cpu_s=C threads=T" (C: this process's CPU time)
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>

static uint64_t sl_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static double sl_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

struct sl_job {
	uint64_t rate;		/* renames per second for this thread; 0 = unlimited */
	double seconds;		/* stop after this long (if > 0) */
	uint64_t count;		/* or after this many renames (if > 0) */
	uint32_t batch;
	uint64_t start_ns;	/* common start, so threads pace against one clock */
	uint64_t done;		/* out: renames made */
	uint64_t end_ns;	/* out */
	int err;		/* out: 0 or -errno */
	pthread_t thread;
};

/*
 * Renames alternately to an EXEC-shaped and an EXIT-shaped name, `batch` renames between
 * clock checks; with a rate, sleeps until each batch is due (absolute deadlines, so pacing
 * errors do not accumulate). Stops after `count` renames or `seconds`, whichever is set.
 */
static void *sl_job_main(void *arg)
{
	static const char *const names[2] = { "cc1plus", "xcc1plus" };
	struct sl_job *j = arg;
	uint64_t now, end_ns = j->seconds > 0 ? j->start_ns + (uint64_t)(j->seconds * 1e9)
					      : UINT64_MAX;
	struct timespec due;
	uint32_t i;

	for (;;) {
		for (i = 0; i < j->batch && (!j->count || j->done < j->count); i++, j->done++) {
			if (prctl(PR_SET_NAME, names[j->done & 1], 0, 0, 0)) {
				j->err = -errno;
				goto out;
			}
		}
		if (j->count && j->done >= j->count)
			break;
		now = sl_now_ns();
		if (now >= end_ns)
			break;
		if (j->rate) {
			uint64_t t = j->start_ns + (uint64_t)((double)j->done * 1e9 / (double)j->rate);

			if (t > now) {
				due.tv_sec = (time_t)(t / 1000000000ULL);
				due.tv_nsec = (long)(t % 1000000000ULL);
				clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL);
			}
		}
	}
out:
	j->end_ns = sl_now_ns();
	return NULL;
}

static int sl_run(uint64_t rate, double seconds, uint64_t count, uint32_t batch, int threads)
{
	struct sl_job jobs[64];
	uint64_t done = 0, end = 0;
	double cpu0 = sl_cpu_s();
	int i, err = 0;

	if ((!count && seconds <= 0) || threads < 1 || threads > 64)
		return -EINVAL;
	memset(jobs, 0, sizeof(jobs));
	for (i = 0; i < threads; i++) {
		jobs[i].rate = rate / (uint64_t)threads;
		jobs[i].seconds = seconds;
		jobs[i].count = count / (uint64_t)threads;
		jobs[i].batch = batch;
	}
	jobs[0].start_ns = sl_now_ns();
	for (i = 0; i < threads; i++) {
		jobs[i].start_ns = jobs[0].start_ns;
		/* thread 0 is this thread, so a single-threaded run has no other thread */
		if (i && pthread_create(&jobs[i].thread, NULL, sl_job_main, &jobs[i]))
			return -EAGAIN;
	}
	sl_job_main(&jobs[0]);
	for (i = 0; i < threads; i++) {
		if (i)
			pthread_join(jobs[i].thread, NULL);
		done += jobs[i].done;
		end = jobs[i].end_ns > end ? jobs[i].end_ns : end;
		if (jobs[i].err)
			err = jobs[i].err;
	}
	if (err)
		return err;
	printf("count=%" PRIu64 " seconds=%.3f rate=%.0f target=%" PRIu64 " cpu_s=%.3f "
	       "threads=%d\n", done, (double)(end - jobs[0].start_ns) / 1e9,
	       (double)done * 1e9 / (double)(end - jobs[0].start_ns), rate, sl_cpu_s() - cpu0,
	       threads);
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rate", required_argument, NULL, 'r' },
		{ "seconds", required_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'n' },
		{ "batch", required_argument, NULL, 'b' },
		{ "threads", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	uint64_t rate = 0, count = 0;
	double seconds = 3;
	uint32_t batch = 64;
	int threads = 1;
	char line[128];
	int opt;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'r':
			rate = strtoull(optarg, NULL, 10);
			break;
		case 's':
			seconds = atof(optarg);
			break;
		case 'n':
			count = strtoull(optarg, NULL, 10);
			seconds = 0;
			break;
		case 'b':
			batch = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 't':
			threads = atoi(optarg);
			break;
		case 'h':
			printf("usage: synth-load [--rate R] [--seconds S | --count N] [--batch B] "
			       "[--threads T]\n"
			       "reads a go line on stdin per run: \"go\", \"RATE SECONDS\", "
			       "\"RATE count=N\"; \"quit\" or EOF ends\n");
			return 0;
		default:
			return 2;
		}
	}
	if (!batch)
		batch = 1;
	while (fgets(line, sizeof(line), stdin)) {
		uint64_t r = rate, n = count;
		double s = seconds;
		char arg[64];
		int err;

		if (!strncmp(line, "quit", 4))
			break;
		if (sscanf(line, "%" SCNu64 " %63s", &r, arg) == 2) {
			if (!strncmp(arg, "count=", 6)) {
				n = strtoull(arg + 6, NULL, 10);
				s = 0;
			} else {
				s = atof(arg);
				n = 0;
			}
		}
		err = sl_run(r, s, n, batch, threads);
		if (err) {
			fprintf(stderr, "synth-load: run failed: %s\n", strerror(-err));
			return 1;
		}
	}
	return 0;
}
