// SPDX-License-Identifier: GPL-2.0
/*
 * Reader: runs the lm-reader thread. ring_buffer__poll() epolls all per-CPU rings; the
 * callback stages each record per CPU, and a merge releases them into ev_ring in kernel
 * time order, numbering them. libbpf advances the consumer position whatever the callback
 * returns, so "wait, don't drop" happens in the callback (staging never refuses).
 */
#include "core/reader.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "core/fault.h"
#include "core/log.h"

/* Staged records per CPU: bounds memory; a full queue forces a release. */
#define LM_READER_STAGE_CNT 4096
/*
 * How long a record may wait for an earlier one from another CPU. A record's reserve and
 * submit happen within one short program run, so 10 ms is ample; an idle host sees its
 * events up to this much later.
 */
#define LM_READER_WINDOW_NS (10 * 1000 * 1000ULL)
/* Every ring is drained at least this often; see lm_reader_main. */
#define LM_READER_POLL_MS 5

/*
 * Records drained from one CPU's ring wait here, in ring order, until the merge releases
 * them. Ring order is time order on one CPU, so each queue is sorted by ts_ns.
 */
struct lm_reader_staged {
	struct lm_event ev;
	uint64_t kernel_lost;	/* this CPU's failed reserves since its previous record */
};

struct lm_reader_cpu {
	struct lm_reader *r;
	struct lm_reader_staged *q;	/* LM_READER_STAGE_CNT records */
	uint64_t drops_seen;	/* cpu_drops of this CPU's newest record */
	uint32_t head, tail;	/* free-running; tail - head records queued */
	uint64_t newest_ns;	/* ts of the newest record drained from this CPU */
};

struct lm_reader {
	struct ring_buffer *rb;
	struct lm_reader_cpu *cpus;
	int ncpus;
	uint32_t staged;	/* records in all queues */
	struct lm_ev_ring *ev;
	struct lm_stats *stats;
	int wake_fd;
	uint64_t next_seq;	/* reader-owned: seq of the next event */
	uint64_t batch;		/* events pushed since the last wake */
	pthread_t thread;
	bool started;
	atomic_bool stop;	/* main -> reader: drain once more and exit */
	atomic_bool abort;	/* main -> reader: stop waiting for ev_ring space */
	atomic_bool failed;	/* reader -> main: the thread ended on an error */
	int err;		/* written by the thread before it ends; read after join */
};

static void lm_reader_wake(struct lm_reader *r)
{
	uint64_t one = 1;

	r->batch = 0;
	/* a full eventfd counter (EAGAIN) still means "readable", which is all we need */
	if (write(r->wake_fd, &one, sizeof(one)) < 0)
		return;
}

/* Copies one record into ev_ring with the next seq, waiting while the ring is full. */
static void lm_reader_emit(struct lm_reader *r, const struct lm_reader_staged *st)
{
	const struct lm_event *e = &st->ev;
	struct lm_rec *slot;
	long backoff_ns = 20000;
	bool waited = false;

	while (!(slot = lm_ring_ev_reserve(r->ev))) {
		struct timespec ts = { 0, backoff_ns };

		if (!waited) {
			lm_stats_add(&r->stats->reader_full_waits, 1);
			waited = true;
		}
		lm_reader_wake(r);
		/* acquire: pairs with main's release store after the serializer died */
		if (atomic_load_explicit(&r->abort, memory_order_acquire)) {
			lm_stats_add(&r->stats->abandoned[LM_STATS_STAGE_READER], 1);
			return;
		}
		nanosleep(&ts, NULL);
		if (backoff_ns < 1000000)
			backoff_ns *= 2;
	}
	slot->seq = r->next_seq++;
	slot->kernel_lost = st->kernel_lost;
	memcpy(&slot->ev, e, sizeof(*e));
	lm_ring_ev_commit(r->ev);
	lm_stats_add(&r->stats->read[e->type], 1);
	/* wake the serializer now and then inside a long batch, so both stages run at once */
	if (++r->batch >= 256)
		lm_reader_wake(r);
}

/* The CPU whose oldest staged record is the oldest of all, or NULL if nothing is staged. */
static struct lm_reader_cpu *lm_reader_oldest(struct lm_reader *r)
{
	struct lm_reader_cpu *best = NULL;
	int i;

	for (i = 0; i < r->ncpus; i++) {
		struct lm_reader_cpu *c = &r->cpus[i];

		if (c->head == c->tail)
			continue;
		if (!best || c->q[c->head % LM_READER_STAGE_CNT].ev.ts_ns <
				     best->q[best->head % LM_READER_STAGE_CNT].ev.ts_ns)
			best = c;
	}
	return best;
}

static void lm_reader_release_one(struct lm_reader *r, struct lm_reader_cpu *c)
{
	lm_reader_emit(r, &c->q[c->head % LM_READER_STAGE_CNT]);
	c->head++;
	r->staged--;
}

/*
 * Releases, oldest first, every staged record no ring can still undercut: older than the
 * newest record of every CPU (a CPU's later records are newer still), or older than the
 * window. `all` releases everything (final drain).
 */
static void lm_reader_release(struct lm_reader *r, bool all)
{
	uint64_t mark = UINT64_MAX, now, floor;
	struct timespec ts;
	int i;

	if (!r->staged)
		return;
	for (i = 0; i < r->ncpus; i++)
		if (r->cpus[i].newest_ns < mark)
			mark = r->cpus[i].newest_ns;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	floor = now > LM_READER_WINDOW_NS ? now - LM_READER_WINDOW_NS : 0;
	if (floor > mark)
		mark = floor;
	for (;;) {
		struct lm_reader_cpu *c = lm_reader_oldest(r);

		if (!c || (!all && c->q[c->head % LM_READER_STAGE_CNT].ev.ts_ns > mark))
			return;
		lm_reader_release_one(r, c);
	}
}

static int lm_reader_on_sample(void *ctx, void *data, size_t size)
{
	struct lm_reader_cpu *c = ctx;
	struct lm_reader *r = c->r;
	const struct lm_event *e = data;
	struct lm_reader_staged *st;

	if (size < sizeof(*e) || e->version != LM_EVENT_VERSION || e->type == 0 ||
	    e->type >= LM_EV_TYPE_CNT) {
		lm_stats_add(&r->stats->reader_invalid, 1);
		return 0;
	}
	/* a full queue: release the oldest staged records (of any CPU) until this one fits */
	while (c->tail - c->head == LM_READER_STAGE_CNT)
		lm_reader_release_one(r, lm_reader_oldest(r));
	st = &c->q[c->tail % LM_READER_STAGE_CNT];
	memcpy(&st->ev, e, sizeof(*e));
	/* per-CPU counter, and one CPU's records arrive in order: a rise is a loss right here */
	st->kernel_lost = e->cpu_drops > c->drops_seen ? e->cpu_drops - c->drops_seen : 0;
	if (e->cpu_drops > c->drops_seen)
		c->drops_seen = e->cpu_drops;
	c->tail++;
	r->staged++;
	if (e->ts_ns > c->newest_ns)
		c->newest_ns = e->ts_ns;
	return 0;
}

int lm_reader_open(const struct lm_reader_opts *opts, struct lm_reader **out)
{
	struct lm_reader *r;
	int i, err = 0;

	*out = NULL;
	if (opts->ring_cnt <= 0 || !opts->ev_ring || opts->wake_fd < 0)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->ev = opts->ev_ring;
	r->stats = opts->stats;
	r->wake_fd = opts->wake_fd;
	r->next_seq = 1;
	r->ncpus = opts->ring_cnt;
	r->cpus = calloc(r->ncpus, sizeof(*r->cpus));
	if (!r->cpus) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < r->ncpus; i++) {
		r->cpus[i].r = r;
		r->cpus[i].q = calloc(LM_READER_STAGE_CNT, sizeof(*r->cpus[i].q));
		if (!r->cpus[i].q) {
			err = -ENOMEM;
			goto out;
		}
	}
	r->rb = ring_buffer__new(opts->ring_fds[0], lm_reader_on_sample, &r->cpus[0], NULL);
	if (!r->rb) {
		err = -errno;
		lm_err("reader", "cannot set up ring buffer of cpu 0: %s", strerror(-err));
		goto out;
	}
	for (i = 1; i < opts->ring_cnt; i++) {
		err = ring_buffer__add(r->rb, opts->ring_fds[i], lm_reader_on_sample, &r->cpus[i]);
		if (err) {
			lm_err("reader", "cannot add ring buffer of cpu %d: %s", i, strerror(-err));
			goto out;
		}
	}
	*out = r;
	r = NULL;
out:
	lm_reader_close(r);
	return err;
}

static void *lm_reader_main(void *arg)
{
	struct lm_reader *r = arg;
	int n;

	pthread_setname_np(pthread_self(), "lm-reader");
	/* acquire: pairs with lm_reader_stop's release; nothing else is published with it */
	while (!atomic_load_explicit(&r->stop, memory_order_acquire)) {
		/*
		 * The programs wake us only when a ring is a quarter full (a wakeup per event
		 * costs the traced task an irq_work); otherwise every ring is drained each
		 * LM_READER_POLL_MS, well inside the reorder window that holds events anyway.
		 */
		n = ring_buffer__poll(r->rb, LM_READER_POLL_MS);
		if (n >= 0 || n == -EINTR)
			n = ring_buffer__consume(r->rb);
		if (lm_fault_is_due(LM_FAULT_READER, r->next_seq - 1))
			n = -EIO; /* test builds: fail as a ring_buffer error would */
		if (n < 0 && n != -EINTR) {
			r->err = n;
			goto out;
		}
		lm_reader_release(r, false);
		if (r->batch)
			lm_reader_wake(r);
	}
	/* the programs are detached by now: take what is left in every ring */
	n = ring_buffer__consume(r->rb);
	if (n < 0)
		r->err = n;
	lm_reader_release(r, true);
	if (r->batch)
		lm_reader_wake(r);
out:
	if (r->err) {
		/* staged records never reach ev_ring */
		lm_stats_add(&r->stats->abandoned[LM_STATS_STAGE_READER], r->staged);
		atomic_store_explicit(&r->failed, true, memory_order_release);
	}
	return NULL;
}

int lm_reader_start(struct lm_reader *r)
{
	int err = pthread_create(&r->thread, NULL, lm_reader_main, r);

	if (err)
		return -err;
	r->started = true;
	return 0;
}

int lm_reader_stop(struct lm_reader *r)
{
	if (!r->started)
		return 0;
	atomic_store_explicit(&r->stop, true, memory_order_release);
	pthread_join(r->thread, NULL);
	r->started = false;
	return r->err;
}

void lm_reader_abort(struct lm_reader *r)
{
	atomic_store_explicit(&r->abort, true, memory_order_release);
}

bool lm_reader_has_failed(struct lm_reader *r)
{
	return atomic_load_explicit(&r->failed, memory_order_acquire);
}

void lm_reader_close(struct lm_reader *r)
{
	int i;

	if (!r)
		return;
	ring_buffer__free(r->rb);
	for (i = 0; r->cpus && i < r->ncpus; i++)
		free(r->cpus[i].q);
	free(r->cpus);
	free(r);
}
