// SPDX-License-Identifier: GPL-2.0
/*
 * Reader: runs the lm-reader thread. It epolls all per-CPU rings, reads each ring's memory
 * itself, stages records in the merge (core/merge.c) and releases them into ev_ring in
 * kernel-time order, numbering them. A record leaves its kernel ring only when staging has
 * room, so a backlog waits in the kernel rings, never in an unbounded queue here.
 */
#include "core/reader.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <sys/epoll.h>
#include <sys/mman.h>

#include "core/fault.h"
#include "core/log.h"
#include "core/merge.h"
#include "core/rec.h"

/* Staged records per CPU: bounds memory; a CPU whose staging is full is read no further. */
#define LM_READER_STAGE_CNT 4096
/* Every ring is drained at least this often; see lm_reader_main. */
#define LM_READER_POLL_MS 5
/*
 * An empty ring seen after reading the clock at T gets no record older than T, except by
 * the few ns a program's reserve may take to become visible to this CPU; 1 ms covers that
 * and any clock skew between CPUs, at the cost of that much latency on an idle host.
 */
#define LM_READER_CLOCK_SLACK_NS (1000 * 1000ULL)
/* Passes over the rings per wakeup before the stop flag is looked at again. */
#define LM_READER_MAX_PASSES 64

/*
 * One CPU's BPF ring buffer, mapped and read directly rather than through libbpf's
 * ring_buffer, whose consume() in libbpf 1.1 drains a ring whole: the merge must leave
 * records in the kernel ring until it can place them. Layout (kernel/bpf/ringbuf.c): a
 * writable page holding consumer_pos, then a read-only page holding producer_pos followed
 * by the data area mapped twice, so a record that wraps is contiguous.
 */
struct lm_reader_ring {
	void *cons_map;		/* one page: consumer_pos at offset 0 */
	void *prod_map;		/* page + 2 * size: producer_pos at 0, data at one page */
	size_t prod_len;
	uint64_t *consumer_pos;	/* written only by this thread */
	const uint64_t *producer_pos;
	const uint8_t *data;
	uint64_t mask;		/* data size - 1 */
	uint64_t read_pos;	/* records before this are staged, released or skipped */
	uint32_t drops_seen;	/* cpu_drops of this CPU's newest record */
	uint64_t lost_carry;	/* a loss found before a CGROUP record: told with the next event */
	/*
	 * Records read but not yet given back to the kernel, in ring order: a staged record
	 * stays in the kernel ring until the merge releases it (no copy, and the backlog stays
	 * in the kernel ring). consumer_pos moves over the released prefix.
	 */
	struct lm_reader_pend *pend;
	uint32_t pend_head, pend_tail; /* free-running */
};

struct lm_reader_pend {
	uint64_t end;	/* ring position after the record */
	bool done;	/* released or skipped */
};

struct lm_reader {
	struct lm_reader_ring *rings;
	int ncpus;
	int epfd;
	struct lm_merge *merge;
	struct lm_ev_ring *ev;
	struct lm_stats *stats;
	int wake_fd;
	uint64_t next_seq;	/* reader-owned: seq of the next event */
	uint32_t staged_cg;	/* CGROUP records staged: not events, never counted abandoned */
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

/* Marks pending slot `pend` of ring i done and gives the released prefix back to the kernel. */
static void lm_reader_done(struct lm_reader *r, int i, uint32_t pend)
{
	struct lm_reader_ring *ring = &r->rings[i];
	uint64_t cons = 0;
	bool moved = false;

	ring->pend[pend & (LM_READER_STAGE_CNT - 1)].done = true;
	while (ring->pend_head != ring->pend_tail &&
	       ring->pend[ring->pend_head & (LM_READER_STAGE_CNT - 1)].done) {
		cons = ring->pend[ring->pend_head & (LM_READER_STAGE_CNT - 1)].end;
		ring->pend_head++;
		moved = true;
	}
	/* release: the kernel may reuse the records' bytes once it sees this */
	if (moved)
		__atomic_store_n(ring->consumer_pos, cons, __ATOMIC_RELEASE);
}

/*
 * Publishes how full the fullest kernel ring is (released bytes are free again), for the
 * consumers' high-water rule (LM_STATS_HIGH_WATER_PERMILLE) and /metrics.
 */
static void lm_reader_update_fill(struct lm_reader *r)
{
	uint64_t max = 0, peak;
	int i;

	for (i = 0; i < r->ncpus; i++) {
		struct lm_reader_ring *ring = &r->rings[i];
		/* acquire: pairs with the kernel's release of producer_pos in its reserve */
		uint64_t prod = __atomic_load_n(ring->producer_pos, __ATOMIC_ACQUIRE);
		/* relaxed: only this thread writes consumer_pos */
		uint64_t cons = __atomic_load_n(ring->consumer_pos, __ATOMIC_RELAXED);
		uint64_t fill = (prod - cons) * 1000 / (ring->mask + 1);

		if (fill > max)
			max = fill;
	}
	lm_stats_set(&r->stats->kernel_ring_fill, max);
	peak = lm_stats_get(&r->stats->kernel_ring_fill_peak);
	if (max > peak)
		lm_stats_set(&r->stats->kernel_ring_fill_peak, max);
}

/*
 * Copies one record into ev_ring, numbering events, waiting while the ring is full.
 * Returns 0, or -ECANCELED when main gave up on the consumer (the record is abandoned).
 */
static int lm_reader_emit(struct lm_reader *r, int cpu, const struct lm_merge_rec *st)
{
	/* checked by lm_rec_decode when the record was taken: 1 .. LM_EV_TYPE_CNT - 1 */
	uint8_t type = ((const struct lm_common *)st->data)->type;
	long backoff_ns = 20000;
	struct lm_rec *slot;
	bool waited = false;

	while (!(slot = lm_ring_ev_reserve(r->ev, st->size))) {
		struct timespec ts = { 0, backoff_ns };

		if (!waited) {
			lm_stats_add(&r->stats->reader_full_waits, 1);
			waited = true;
		}
		lm_reader_wake(r);
		/* the backlog grows in the kernel rings while we wait: keep the gauge true */
		lm_reader_update_fill(r);
		/* acquire: pairs with main's release store after the serializer died */
		if (atomic_load_explicit(&r->abort, memory_order_acquire)) {
			if (type != LM_EV_CGROUP)
				lm_stats_add(&r->stats->abandoned[LM_STATS_STAGE_READER], 1);
			else
				r->staged_cg--;
			return -ECANCELED;
		}
		nanosleep(&ts, NULL);
		if (backoff_ns < 1000000)
			backoff_ns *= 2;
	}
	/* a CGROUP record is no event: it carries the seq the next event will get */
	slot->seq = type == LM_EV_CGROUP ? r->next_seq : r->next_seq++;
	slot->kernel_lost = st->kernel_lost;
	slot->cpu = (uint32_t)cpu;
	memcpy(lm_rec_data(slot), st->data, st->size);
	lm_ring_ev_commit(r->ev);
	/* the kernel may overwrite the record from here on: only `type`, read before, is used */
	lm_reader_done(r, cpu, st->pend);
	lm_stats_add(&r->stats->read[type], 1);
	if (type == LM_EV_CGROUP)
		r->staged_cg--;
	/* wake the serializer now and then inside a long batch, so both stages run at once */
	if (++r->batch >= 256)
		lm_reader_wake(r);
	return 0;
}

/*
 * Stages one committed record of ring i (its bytes stay in the ring until released), or
 * skips a malformed one, counted. `end`: the ring position after it.
 */
static void lm_reader_take(struct lm_reader *r, int i, const void *data, uint32_t size,
			   uint64_t end, bool discarded)
{
	struct lm_reader_ring *ring = &r->rings[i];
	uint32_t pend = ring->pend_tail++;
	struct lm_merge_rec rec = { 0 };
	struct lm_rec_view v;
	uint32_t rise;

	ring->pend[pend & (LM_READER_STAGE_CNT - 1)].end = end;
	ring->pend[pend & (LM_READER_STAGE_CNT - 1)].done = false;
	if (discarded) {
		lm_reader_done(r, i, pend);
		return;
	}
	if (lm_rec_decode(data, size, &v, NULL)) {
		lm_stats_add(&r->stats->reader_invalid, 1);
		lm_reader_done(r, i, pend);
		return;
	}
	/*
	 * Per-CPU counter, read in ring order: a rise is a loss right before this record. A
	 * fall (a preempted program read it before a later drop) is no loss; 32 bits wrap.
	 */
	rise = v.c->cpu_drops - ring->drops_seen;
	if (rise && rise < 0x80000000U) {
		ring->lost_carry += rise;
		ring->drops_seen = v.c->cpu_drops;
	}
	/*
	 * The notice goes with an event, which gets a seq and a line: a CGROUP record gets
	 * neither, so a loss just before one waits for this CPU's next event.
	 */
	if (v.c->type != LM_EV_CGROUP) {
		rec.kernel_lost = ring->lost_carry;
		ring->lost_carry = 0;
	} else {
		r->staged_cg++;
	}
	rec.ts_ns = v.c->ts_ns;
	rec.data = data;
	rec.size = size;
	rec.pend = pend;
	/* the caller checked for room */
	lm_merge_push(r->merge, i, &rec);
	/* every record behind this one in the ring was reserved after its t0 */
	if (v.c->t0_back_ns != UINT32_MAX && v.c->ts_ns > v.c->t0_back_ns)
		lm_merge_raise_floor(r->merge, i, v.c->ts_ns - v.c->t0_back_ns);
}

/*
 * Reads ring i until it is empty, its next record is still being written, or its staging is
 * full. floor_ns: a clock reading taken before this pass, less the slack. Returns the
 * records consumed.
 */
static uint32_t lm_reader_read_ring(struct lm_reader *r, int i, uint64_t floor_ns)
{
	struct lm_reader_ring *ring = &r->rings[i];
	uint64_t cons = ring->read_pos;
	uint32_t n = 0;

	while (!lm_merge_is_full(r->merge, i) &&
	       ring->pend_tail - ring->pend_head < LM_READER_STAGE_CNT) {
		/* acquire: pairs with the kernel's release of producer_pos in its reserve */
		uint64_t prod = __atomic_load_n(ring->producer_pos, __ATOMIC_ACQUIRE);
		const uint32_t *hdr;
		uint32_t len, size;

		if (cons == prod) {
			/* empty after the clock read: whatever comes next is newer */
			lm_merge_raise_floor(r->merge, i, floor_ns);
			break;
		}
		hdr = (const uint32_t *)(ring->data + (cons & ring->mask));
		/* acquire: pairs with the kernel's release of the header in submit/discard */
		len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);
		if (len & BPF_RINGBUF_BUSY_BIT)
			break;
		size = len & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
		cons += (size + BPF_RINGBUF_HDR_SZ + 7) & ~7ULL;
		lm_stats_add(&r->stats->reader_ring_bytes, (size + BPF_RINGBUF_HDR_SZ + 7) & ~7ULL);
		ring->read_pos = cons;
		lm_reader_take(r, i, (const uint8_t *)hdr + BPF_RINGBUF_HDR_SZ, size, cons,
			       len & BPF_RINGBUF_DISCARD_BIT);
		n++;
	}
	return n;
}

/*
 * Emits every staged record the merge allows (all of them if `all`). Returns the count,
 * or -ECANCELED if main abandoned the consumer.
 */
static int lm_reader_release(struct lm_reader *r, bool all)
{
	struct lm_merge_rec rec;
	int n = 0, err;

	while (lm_merge_pop(r->merge, all, &rec)) {
		err = lm_reader_emit(r, rec.cpu, &rec);
		if (err)
			return err;
		n++;
	}
	return n;
}

static uint64_t lm_reader_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * Reads every ring and releases what the merge allows, until the rings are empty or
 * LM_READER_MAX_PASSES. `final` (the programs are detached) releases everything and goes on
 * until the rings are empty, however deep the backlog (a pass takes 4096 records per CPU).
 * Returns 0 or -ECANCELED.
 */
static int lm_reader_drain(struct lm_reader *r, bool final)
{
	int pass, i, n;

	for (pass = 0; final || pass < LM_READER_MAX_PASSES; pass++) {
		uint64_t now = lm_reader_now_ns();

		/* test builds: fail as a poll error would, near the events the fault names */
		if (!final && lm_fault_is_due(LM_FAULT_READER, r->next_seq - 1)) {
			lm_err("reader", "cannot wait for the ring buffers: %s", strerror(EIO));
			return -EIO;
		}
		uint64_t floor_ns = now > LM_READER_CLOCK_SLACK_NS ? now - LM_READER_CLOCK_SLACK_NS : 0;
		uint32_t read = 0;
		bool full = false;

		lm_reader_update_fill(r);

		for (i = 0; i < r->ncpus; i++) {
			read += lm_reader_read_ring(r, i, floor_ns);
			full |= lm_merge_is_full(r->merge, i);
		}
		n = lm_reader_release(r, final);
		if (n < 0)
			return n;
		/*
		 * Staging full and nothing placeable: a CPU's floor lags behind every staged
		 * record (a program stalled between clock read and reserve). Release the
		 * oldest anyway rather than stop reading; order is then not guaranteed.
		 */
		if (!n && full && !read) {
			struct lm_merge_rec rec;

			if (lm_merge_pop(r->merge, true, &rec)) {
				lm_stats_add(&r->stats->reader_order_forced, 1);
				n = lm_reader_emit(r, rec.cpu, &rec);
				if (n < 0)
					return n;
			}
			continue;
		}
		if (!read)
			break;
	}
	return 0;
}

static void lm_reader_unmap(struct lm_reader_ring *ring)
{
	if (ring->cons_map && ring->cons_map != MAP_FAILED)
		munmap(ring->cons_map, (size_t)sysconf(_SC_PAGESIZE));
	if (ring->prod_map && ring->prod_map != MAP_FAILED)
		munmap(ring->prod_map, ring->prod_len);
	ring->cons_map = NULL;
	ring->prod_map = NULL;
}

static int lm_reader_map(struct lm_reader_ring *ring, int fd, int cpu)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct bpf_map_info info = {};
	__u32 info_len = sizeof(info);
	int err;

	if (bpf_obj_get_info_by_fd(fd, &info, &info_len) < 0) {
		err = -errno;
		lm_err("reader", "cannot query ring buffer of cpu %d (fd %d): %s", cpu, fd,
		       strerror(-err));
		return err;
	}
	if (info.type != BPF_MAP_TYPE_RINGBUF || info.max_entries < page ||
	    (info.max_entries & (info.max_entries - 1))) {
		lm_err("reader", "fd %d of cpu %d is not a ring buffer map: %s", fd, cpu,
		       strerror(EINVAL));
		return -EINVAL;
	}
	ring->cons_map = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (ring->cons_map == MAP_FAILED) {
		err = -errno;
		lm_err("reader", "cannot map consumer page of ring buffer of cpu %d: %s", cpu,
		       strerror(-err));
		return err;
	}
	ring->prod_len = page + 2 * (size_t)info.max_entries;
	ring->prod_map = mmap(NULL, ring->prod_len, PROT_READ, MAP_SHARED, fd, (off_t)page);
	if (ring->prod_map == MAP_FAILED) {
		err = -errno;
		lm_err("reader", "cannot map data of ring buffer of cpu %d (%zu bytes): %s", cpu,
		       ring->prod_len, strerror(-err));
		return err;
	}
	ring->consumer_pos = ring->cons_map;
	/* relaxed: the kernel never writes consumer_pos */
	ring->read_pos = __atomic_load_n(ring->consumer_pos, __ATOMIC_RELAXED);
	ring->producer_pos = ring->prod_map;
	ring->data = (const uint8_t *)ring->prod_map + page;
	ring->mask = info.max_entries - 1;
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
	r->epfd = -1;
	r->ev = opts->ev_ring;
	r->stats = opts->stats;
	r->wake_fd = opts->wake_fd;
	r->next_seq = 1;
	r->ncpus = opts->ring_cnt;
	r->rings = calloc(r->ncpus, sizeof(*r->rings));
	if (!r->rings) {
		err = -ENOMEM;
		goto out;
	}
	err = lm_merge_open(r->ncpus, LM_READER_STAGE_CNT, &r->merge);
	if (err)
		goto out;
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epfd < 0) {
		err = -errno;
		lm_err("reader", "cannot create epoll set: %s", strerror(-err));
		goto out;
	}
	for (i = 0; i < r->ncpus; i++) {
		struct epoll_event ee = { .events = EPOLLIN, .data.u32 = (uint32_t)i };

		err = lm_reader_map(&r->rings[i], opts->ring_fds[i], i);
		if (err)
			goto out;
		r->rings[i].pend = calloc(LM_READER_STAGE_CNT, sizeof(*r->rings[i].pend));
		if (!r->rings[i].pend) {
			err = -ENOMEM;
			goto out;
		}
		if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, opts->ring_fds[i], &ee) < 0) {
			err = -errno;
			lm_err("reader", "cannot poll ring buffer of cpu %d: %s", i, strerror(-err));
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
	struct epoll_event evs[8];
	int n;

	pthread_setname_np(pthread_self(), "lm-reader");
	/* acquire: pairs with lm_reader_stop's release; nothing else is published with it */
	while (!atomic_load_explicit(&r->stop, memory_order_acquire)) {
		/*
		 * The programs wake us only when a ring is a quarter full (a wakeup per event
		 * costs the traced task an irq_work); otherwise every ring is drained each
		 * LM_READER_POLL_MS. Which ring woke us does not matter: all are read.
		 */
		n = epoll_wait(r->epfd, evs, 8, LM_READER_POLL_MS);
		if (n >= 0 && lm_fault_is_due(LM_FAULT_READER, r->next_seq - 1)) {
			n = -1; /* test builds: fail as a poll error would */
			errno = EIO;
		}
		if (n < 0 && errno != EINTR) {
			r->err = -errno;
			lm_err("reader", "cannot wait for the ring buffers: %s", strerror(-r->err));
			goto out;
		}
		r->err = lm_reader_drain(r, false);
		if (r->err)
			goto out;
		if (r->batch)
			lm_reader_wake(r);
	}
	/* the programs are detached by now: take what is left in every ring */
	r->err = lm_reader_drain(r, true);
	if (r->batch)
		lm_reader_wake(r);
out:
	if (r->err) {
		/* staged records never reach ev_ring */
		lm_stats_add(&r->stats->abandoned[LM_STATS_STAGE_READER],
			     lm_merge_staged(r->merge) - r->staged_cg);
		/* main gave up on a failed consumer: that stage failed, not this one */
		if (r->err == -ECANCELED)
			r->err = 0;
		else
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
	for (i = 0; r->rings && i < r->ncpus; i++) {
		lm_reader_unmap(&r->rings[i]);
		free(r->rings[i].pend);
	}
	free(r->rings);
	lm_merge_close(r->merge);
	if (r->epfd >= 0)
		close(r->epfd);
	free(r);
}
