// SPDX-License-Identifier: GPL-2.0
/*
 * Kernel matrix (tests/vm): the guest's workloads, run by tests/vm/init.sh inside a qemu
 * guest while lifemon watches. `exit CODE` exits with CODE; `hang` sleeps until killed;
 * `oom CGROUP` joins CGROUP (its memory.max set by the caller) and allocates until the
 * kernel's memcg OOM killer takes it; `storm N T PIDFILE` starts N processes of T threads
 * each and has each whole group exit (exit_group) while all its threads are alive, writing
 * the N pids to PIDFILE. Single-threaded except inside the storm's processes.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define VM_STORM_CODE 42	   /* every storm process exits with this code */
#define VM_STACK_BYTES (64 * 1024) /* storm threads only block: small stacks */
#define VM_OOM_STEP_BYTES ((size_t)1 << 20)
#define VM_OOM_CAP_STEPS 512 /* never touches more than 512 MiB */
#define VM_STORM_MAX_PROCS 4096
#define VM_STORM_MAX_THREADS 256

static int go_rd = -1;		    /* storm child: read end of the parent's "go" pipe */
static pthread_barrier_t all_alive; /* storm child: every thread has started */
static unsigned int storm_index;    /* storm child: which of the N children this is */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void die(const char *what)
{
	fprintf(stderr, "vm_work: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* Blocks until the parent closes the "go" pipe (read returns 0), then ends the group. */
static void wait_go_and_exit(void)
{
	char c;

	while (read(go_rd, &c, 1) < 0 && errno == EINTR)
		;
	exit(VM_STORM_CODE); /* exit_group: every other thread is still alive */
}

static void *storm_thread(void *arg)
{
	unsigned long idx = (unsigned long)arg;

	pthread_barrier_wait(&all_alive);
	/* odd children end the group from their last worker, even ones from main */
	if ((storm_index & 1) && idx == 1)
		wait_go_and_exit();
	for (;;)
		pause();
	return NULL;
}

static void storm_child(unsigned int threads, int ready_wr)
{
	pthread_attr_t attr;
	unsigned long i;
	pthread_t t;
	char c = 'r';

	if (pthread_barrier_init(&all_alive, NULL, threads))
		_exit(3);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, VM_STACK_BYTES);
	for (i = 1; i < threads; i++)
		if (pthread_create(&t, &attr, storm_thread, (void *)i))
			_exit(4);
	pthread_barrier_wait(&all_alive);
	if (write(ready_wr, &c, 1) != 1)
		_exit(5);
	close(ready_wr);
	if (!(storm_index & 1))
		wait_go_and_exit();
	for (;;)
		pause();
}

static int storm(unsigned int procs, unsigned int threads, const char *pidfile)
{
	int ready[2], go[2], status, bad = 0;
	long long t0 = now_ms(), t_ready, t_done;
	unsigned int i, got = 0;
	pid_t *pids;
	FILE *f;
	char c;

	if (procs < 1 || procs > VM_STORM_MAX_PROCS || threads < 2 ||
	    threads > VM_STORM_MAX_THREADS) {
		fprintf(stderr, "vm_work: storm: 1..%d procs of 2..%d threads\n",
			VM_STORM_MAX_PROCS, VM_STORM_MAX_THREADS);
		return 2;
	}
	pids = calloc(procs, sizeof(*pids));
	if (!pids || pipe2(ready, O_CLOEXEC) || pipe2(go, O_CLOEXEC))
		die("storm setup");
	for (i = 0; i < procs; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			die("fork");
		if (pids[i] == 0) {
			close(ready[0]);
			close(go[1]);
			go_rd = go[0];
			storm_index = i;
			storm_child(threads, ready[1]);
		}
	}
	close(ready[1]);
	close(go[0]);
	/* every child writes one byte once all its threads passed the barrier */
	while (got < procs) {
		ssize_t n = read(ready[0], &c, 1);

		if (n == 1)
			got++;
		else if (n == 0 || errno != EINTR)
			break;
	}
	t_ready = now_ms();
	if (got != procs) {
		fprintf(stderr, "vm_work: storm: only %u of %u processes got ready\n", got, procs);
		bad++;
	}
	f = fopen(pidfile, "w");
	if (!f)
		die(pidfile);
	for (i = 0; i < procs; i++)
		fprintf(f, "%d\n", (int)pids[i]);
	if (fclose(f))
		die(pidfile);
	close(go[1]); /* go: every child's exiting thread reads EOF */
	for (i = 0; i < procs; i++) {
		if (waitpid(pids[i], &status, 0) < 0)
			die("waitpid");
		if (!WIFEXITED(status) || WEXITSTATUS(status) != VM_STORM_CODE) {
			fprintf(stderr, "vm_work: storm: pid %d status 0x%x\n", (int)pids[i],
				status);
			bad++;
		}
	}
	t_done = now_ms();
	printf("vm_work: storm: %u processes x %u threads: ready in %lld ms, all reaped %lld ms "
	       "later\n",
	       procs, threads, t_ready - t0, t_done - t_ready);
	free(pids);
	return bad ? 1 : 0;
}

static int oom(const char *cgroup)
{
	static char *mem[VM_OOM_CAP_STEPS]; /* keeps the allocations reachable */
	char path[4096], buf[32];
	int fd, len, i;

	snprintf(path, sizeof(path), "%s/cgroup.procs", cgroup);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		die(path);
	len = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (write(fd, buf, len) != len)
		die(path);
	close(fd);
	for (i = 0; i < VM_OOM_CAP_STEPS; i++) {
		mem[i] = mmap(NULL, VM_OOM_STEP_BYTES, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mem[i] == MAP_FAILED)
			die("mmap");
		memset(mem[i], 0x5a, VM_OOM_STEP_BYTES);
	}
	fprintf(stderr, "vm_work: oom: survived 512 MiB in %s\n", cgroup);
	return 3;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "exit"))
		return atoi(argv[2]);
	if (argc == 2 && !strcmp(argv[1], "hang")) {
		for (;;)
			pause();
	}
	if (argc == 3 && !strcmp(argv[1], "oom"))
		return oom(argv[2]);
	if (argc == 5 && !strcmp(argv[1], "storm"))
		return storm(strtoul(argv[2], NULL, 10), strtoul(argv[3], NULL, 10), argv[4]);
	fprintf(stderr, "usage: vm_work exit CODE | hang | oom CGROUP | storm N T PIDFILE\n");
	return 2;
}
