// SPDX-License-Identifier: GPL-2.0
/*
 * Serializer: runs the lm-ser thread. Owns a text slot from the moment it pops the index
 * from free_ring until it pushes it to txt_ring. Sleeps on one eventfd that both the reader
 * (new events) and the sinks' io_uring (write finished) signal.
 */
#include "core/ser.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/fault.h"
#include "core/json.h"
#include "core/rec.h"

#define LM_SER_NO_SLOT UINT32_MAX
/* A wall-clock change smaller than this keeps the old offset (keeps timestamps ordered). */
#define LM_SER_CLOCK_STEP_NS (1000 * 1000LL)

struct lm_ser {
	struct lm_ser_opts o;
	uint32_t cur;		/* slot being filled, or LM_SER_NO_SLOT */
	int64_t boot_to_unix_ns; /* CLOCK_REALTIME - CLOCK_BOOTTIME; follows clock steps */
	pthread_t thread;
	bool started;
	atomic_bool stop;	/* main -> ser: finish what is queued and exit */
	atomic_bool abort;	/* any thread -> ser: the ws thread died; stop waiting for slots */
	atomic_bool failed;	/* ser -> main */
	int err;		/* written by the thread before it ends; read after join */
	/* exe and cwd in order, for the JSON writer */
	char exe_buf[LM_PATH_MAX], cwd_buf[LM_PATH_MAX];
};

static int64_t lm_ser_clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/*
 * Measures CLOCK_REALTIME - CLOCK_BOOTTIME between two BOOTTIME reads, so the error is at most
 * half their gap. Returns false if every try was stretched (a preempted thread, a slow
 * clocksource such as an emulated HPET) past LM_SER_CLOCK_STEP_NS / 4.
 */
static bool lm_ser_measure_offset(int64_t *off)
{
	int64_t best_gap = INT64_MAX;
	int i;

	for (i = 0; i < 4; i++) {
		int64_t b1 = lm_ser_clock_ns(CLOCK_BOOTTIME);
		int64_t rt = lm_ser_clock_ns(CLOCK_REALTIME);
		int64_t b2 = lm_ser_clock_ns(CLOCK_BOOTTIME);

		if (b2 - b1 < best_gap) {
			best_gap = b2 - b1;
			*off = rt - (b1 + (b2 - b1) / 2);
		}
		if (best_gap < 20000)
			break;
	}
	return best_gap <= LM_SER_CLOCK_STEP_NS / 4;
}

static void lm_ser_refresh_clock(struct lm_ser *s)
{
	/*
	 * Adopt a new offset only for a real clock step: measurement jitter would otherwise
	 * move timestamps back across batches. Two unbracketed reads were off by up to 2 ms
	 * on an emulated guest, and its timestamps went back by that much.
	 */
	int64_t off = 0, delta;

	if (!lm_ser_measure_offset(&off) && s->boot_to_unix_ns)
		return;
	delta = off - s->boot_to_unix_ns;
	if (!s->boot_to_unix_ns || delta > LM_SER_CLOCK_STEP_NS || delta < -LM_SER_CLOCK_STEP_NS)
		s->boot_to_unix_ns = off;
}

static bool lm_ser_is_aborted(struct lm_ser *s)
{
	/* acquire: pairs with lm_ser_abort's release; it publishes nothing else */
	return atomic_load_explicit(&s->abort, memory_order_acquire);
}

/*
 * Takes a free slot, waiting while the ws thread holds them all (backpressure). Returns
 * false without a slot once lm_ser_abort was called (the ws thread will return none).
 */
static bool lm_ser_take_slot(struct lm_ser *s)
{
	long backoff_ns = 20000;
	bool waited = false;
	uint32_t idx;

	while (!lm_ring_idx_pop(s->o.free_ring, &idx)) {
		struct timespec ts = { 0, backoff_ns };

		if (lm_ser_is_aborted(s))
			return false;
		if (!waited) {
			lm_stats_add(&s->o.stats->ser_slot_waits, 1);
			waited = true;
		}
		nanosleep(&ts, NULL);
		if (backoff_ns < 1000000)
			backoff_ns *= 2;
	}
	s->cur = idx;
	lm_ring_pool_slot(s->o.pool, idx)->len = 0;
	lm_ring_pool_slot(s->o.pool, idx)->ev_cnt = 0;
	lm_ring_pool_slot(s->o.pool, idx)->line_cnt = 0;
	lm_ring_pool_slot(s->o.pool, idx)->str_len = 0;
	return true;
}

static void lm_ser_publish_slot(struct lm_ser *s)
{
	struct lm_txt_slot *slot = lm_ring_pool_slot(s->o.pool, s->cur);
	int i;

	for (i = 0; i < s->o.sink_cnt; i++) {
		/* finished writes free sink buffers; peeking the CQ costs no syscall */
		lm_sink_reap(s->o.sinks[i]);
		lm_sink_put(s->o.sinks[i], slot);
	}
	if (s->o.tap)
		s->o.tap(s->o.tap_ctx, slot);
	/* txt_ring holds every pool index, so the push cannot fail */
	lm_ring_idx_push(s->o.txt_ring, s->cur);
	s->cur = LM_SER_NO_SLOT;
	/* wake ws per slot, not per batch: a batch can outlast the free slots, and ws returns
	 * slots only when it runs */
	s->o.publish(s->o.publish_ctx);
}

/*
 * Resolves what the line needs beyond the record: exe and cwd in order, the cgroup path and
 * the container, pod and unit it names (from the v2 path, else the v1 memory cgroup's).
 */
static void lm_ser_resolve(struct lm_ser *s, const struct lm_rec_view *v, struct lm_json_ev *ev)
{
	struct lm_cgroup_view cg, mem;
	bool have_cg = false, have_mem = false;
	uint8_t f = v->c->flags;

	if (v->exec) {
		ev->exe_len = lm_rec_path(&v->exe, f & LM_F_TRUNC_EXE, s->exe_buf, LM_PATH_MAX);
		ev->exe = s->exe_buf;
		ev->cwd_len = lm_rec_path(&v->cwd, f & LM_F_TRUNC_CWD, s->cwd_buf, LM_PATH_MAX);
		ev->cwd = s->cwd_buf;
	}
	if (!s->o.cgroup)
		return;
	if (!lm_cgroup_lookup(s->o.cgroup, 0, v->c->cgroup_id, &cg)) {
		have_cg = true;
		ev->cgroup = cg.path;
		ev->cgroup_len = cg.path_len;
		ev->container_id = cg.container_id;
		ev->pod_uid = cg.pod_uid;
		ev->unit = cg.unit;
	}
	/* the v2 view survives the lookup in the memory controller's v1 hierarchy */
	if (s->o.memcg_hier > 0 && v->c->memcg_id &&
	    !lm_cgroup_lookup(s->o.cgroup, (uint32_t)s->o.memcg_hier, v->c->memcg_id, &mem))
		have_mem = true;
	if (have_mem) {
		if (!ev->container_id)
			ev->container_id = mem.container_id;
		if (!ev->pod_uid)
			ev->pod_uid = mem.pod_uid;
	}
	if (v->oom) {
		/* the memory controller's hierarchy: v1 where it is mounted, else cgroup v2 */
		if (have_mem) {
			ev->memcg = mem.path;
			ev->memcg_len = mem.path_len;
		} else if (s->o.memcg_hier <= 0 && have_cg) {
			ev->memcg = ev->cgroup;
			ev->memcg_len = ev->cgroup_len;
		}
	}
}

/* Appends `len` bytes of `src` and a NUL to the slot's strings; the caller checked room. */
static uint32_t lm_ser_put_str(struct lm_txt_slot *slot, const char *src, size_t len)
{
	if (len)
		memcpy(slot->str + slot->str_len, src, len);
	slot->str[slot->str_len + len] = '\0';
	slot->str_len += (uint32_t)len + 1;
	return (uint32_t)len;
}

/* Bytes before the first NUL, at most `len`: what fnmatch(3) would see anyway. */
static size_t lm_ser_strnlen(const char *p, size_t len)
{
	const char *nul = p ? memchr(p, '\0', len) : NULL;

	return nul ? (size_t)(nul - p) : (p ? len : 0);
}

/*
 * Indexes the line just written at `off` (not yet counted in slot->len): what the /ws
 * filters test, so the ws thread never parses JSON. Returns 0, or -ENOSPC when the slot's
 * index or string area is full (nothing was committed).
 */
static int lm_ser_index(struct lm_txt_slot *slot, uint32_t off, uint32_t len, uint64_t seq,
			const struct lm_rec_view *v, const struct lm_json_ev *ev)
{
	struct lm_line *l;
	size_t comm = 0, exe = 0, cg = 0, ctr = 0, args = 0;
	uint32_t i;

	if (slot->line_cnt >= LM_RING_SLOT_LINES)
		return -ENOSPC;
	l = &slot->lines[slot->line_cnt];
	memset(l, 0, sizeof(*l));
	l->seq = seq;
	l->off = off;
	l->len = len;
	l->str_off = slot->str_len;
	if (!v) /* a notice: never filtered, no strings */
		goto out;
	comm = lm_ser_strnlen(v->comm.p, v->comm.len);
	if (ev->exe)
		exe = lm_ser_strnlen(ev->exe, ev->exe_len);
	if (ev->cgroup)
		cg = lm_ser_strnlen(ev->cgroup, ev->cgroup_len);
	if (ev->container_id)
		ctr = strnlen(ev->container_id, 255);
	if (v->exec)
		args = v->args.len;
	if (slot->str_cap - slot->str_len < comm + exe + cg + ctr + args + 5)
		return -ENOSPC;
	l->type = v->c->type;
	l->start_ns = v->c->start_ns;
	l->pid = v->c->pid;
	l->ppid = v->c->ppid;
	l->uid = v->c->uid;
	if (v->exit && v->c->aux) /* the raw wait status is 0 only for exit code 0 */
		l->flags |= LM_LINE_NONZERO_EXIT;
	l->comm_len = (uint8_t)lm_ser_put_str(slot, v->comm.p, comm);
	l->exe_len = (uint16_t)lm_ser_put_str(slot, ev->exe, exe);
	l->cgroup_len = (uint16_t)lm_ser_put_str(slot, ev->cgroup, cg);
	l->container_len = (uint8_t)lm_ser_put_str(slot, ev->container_id, ctr);
	l->flags |= (ev->exe ? LM_LINE_HAS_EXE : 0) | (ev->cgroup ? LM_LINE_HAS_CGROUP : 0) |
		    (ev->container_id ? LM_LINE_HAS_CONTAINER : 0) |
		    (v->exec ? LM_LINE_HAS_ARGS : 0);
	/* the arguments joined by single spaces, as a user types them; no trailing NUL */
	if (args && v->args.p[args - 1] == '\0')
		args--;
	l->args_len = lm_ser_put_str(slot, v->args.p, args);
	for (i = 0; i < l->args_len; i++) {
		char *c = slot->str + slot->str_len - 1 - l->args_len + i;

		if (*c == '\0')
			*c = ' ';
	}
out:
	slot->line_cnt++;
	return 0;
}

/*
 * Writes one record into the slot: a kernel loss notice first when the kernel dropped events
 * just before it, then the event (a CGROUP record only updates the path cache), and indexes
 * each line. Returns bytes, or -ENOSPC with the slot unchanged.
 */
static int lm_ser_write(struct lm_ser *s, struct lm_txt_slot *slot, const struct lm_rec *rec,
			const struct lm_rec_view *v, uint64_t unix_ns)
{
	char *p = slot->text + slot->len;
	size_t room = slot->cap - slot->len;
	struct lm_json_ev ev = { .v = v, .seq = rec->seq, .unix_ns = unix_ns,
				 .instance = s->o.instance };
	uint32_t lines = slot->line_cnt, strs = slot->str_len;
	int n = 0, m;

	if (rec->kernel_lost) {
		n = lm_json_kernel_lost(p, room, rec->kernel_lost, rec->cpu, rec->seq);
		if (n < 0 || lm_ser_index(slot, slot->len, (uint32_t)n, rec->seq, NULL, NULL))
			return -ENOSPC;
	}
	if (v->cg)
		return n;
	lm_ser_resolve(s, v, &ev);
	m = lm_json_event(p + n, room - (size_t)n, &ev);
	if (m < 0 ||
	    lm_ser_index(slot, slot->len + (uint32_t)n, (uint32_t)m, rec->seq, v, &ev)) {
		/* take back the notice's index entry: the record goes to a fresh slot whole */
		slot->line_cnt = lines;
		slot->str_len = strs;
		return -ENOSPC;
	}
	return n + m;
}

/* Applies a CGROUP record to the path cache. */
static void lm_ser_cgroup(struct lm_ser *s, const struct lm_rec_view *v)
{
	if (!s->o.cgroup)
		return;
	if (v->c->flags & LM_F_CG_RMDIR)
		lm_cgroup_forget(s->o.cgroup, v->c->aux, v->c->cgroup_id);
	else
		lm_cgroup_learn(s->o.cgroup, v->c->aux, v->c->cgroup_id, v->cg_path.p,
				v->cg_path.len);
}

/* Serializes what ev_ring holds now. Returns the number of records taken. */
static uint64_t lm_ser_batch(struct lm_ser *s)
{
	struct lm_txt_slot *slot = NULL;
	uint64_t taken = 0, events = 0;
	const struct lm_rec *rec;

	lm_ser_refresh_clock(s);
	/* a batch lasts as long as the reader keeps up with a burst: test the fault per event */
	while (!lm_fault_is_due(LM_FAULT_SER, lm_stats_get(&s->o.stats->serialized) + events) &&
	       (rec = lm_ring_ev_peek(s->o.ev_ring))) {
		struct lm_rec_view v;
		uint64_t unix_ns;
		int n;

		/* checked by the reader; a failure here would be a bug, and loses one record */
		if (lm_rec_decode(lm_rec_data(rec), rec->size, &v, NULL)) {
			lm_ring_ev_release(s->o.ev_ring);
			continue;
		}
		unix_ns = v.c->ts_ns + (uint64_t)s->boot_to_unix_ns;
		for (;;) {
			if (s->cur == LM_SER_NO_SLOT && !lm_ser_take_slot(s)) {
				/* aborted: the record in hand goes nowhere; lm_ser_stop counts
				 * what is left in ev_ring once the reader is gone */
				goto out;
			}
			slot = lm_ring_pool_slot(s->o.pool, s->cur);
			n = lm_ser_write(s, slot, rec, &v, unix_ns);
			if (n >= 0)
				break;
			/* slot full: publish it and continue in a fresh one */
			lm_ser_publish_slot(s);
		}
		slot->len += (uint32_t)n;
		taken++;
		if (v.cg) {
			lm_ser_cgroup(s, &v);
		} else {
			if (!slot->ev_cnt)
				slot->first_seq = rec->seq;
			slot->last_seq = rec->seq;
			slot->ev_cnt++;
			events++;
		}
		lm_ring_ev_release(s->o.ev_ring);
		/* a batch's text goes out in slots of about LM_SER_BATCH_BYTES */
		if (slot->len >= LM_SER_BATCH_BYTES && slot->ev_cnt)
			lm_ser_publish_slot(s);
	}
out:
	if (s->cur != LM_SER_NO_SLOT && lm_ring_pool_slot(s->o.pool, s->cur)->ev_cnt)
		lm_ser_publish_slot(s);
	if (events)
		lm_stats_add(&s->o.stats->serialized, events);
	return taken;
}

static void lm_ser_wait(struct lm_ser *s)
{
	struct pollfd pfd = { .fd = s->o.wake_fd, .events = POLLIN };
	uint64_t cnt;

	if (poll(&pfd, 1, 100) > 0 && read(s->o.wake_fd, &cnt, sizeof(cnt)) < 0)
		return; /* EAGAIN: another wake was consumed first */
}

static void *lm_ser_main(void *arg)
{
	struct lm_ser *s = arg;
	int i, err;

	pthread_setname_np(pthread_self(), "lm-ser");
	for (;;) {
		/* acquire: pairs with lm_ser_stop's release, issued after the reader was joined,
		 * so every event the reader pushed is visible to the batch below */
		bool stopping = atomic_load_explicit(&s->stop, memory_order_acquire);
		uint64_t taken = lm_ser_batch(s);

		for (i = 0; i < s->o.sink_cnt; i++) {
			err = lm_sink_reap(s->o.sinks[i]);
			if (err) {
				s->err = err;
				goto out;
			}
		}
		if (lm_fault_is_due(LM_FAULT_SER, lm_stats_get(&s->o.stats->serialized))) {
			s->err = -EIO;
			goto out;
		}
		if ((stopping && !taken) || lm_ser_is_aborted(s))
			break;
		if (!taken)
			lm_ser_wait(s);
	}
	for (i = 0; i < s->o.sink_cnt; i++) {
		err = lm_sink_drain(s->o.sinks[i], 2000);
		if (err && !s->err)
			s->err = err;
	}
out:
	if (s->err) {
		atomic_store_explicit(&s->failed, true, memory_order_release);
		/* the reader may be waiting for ev_ring space that will never come */
		if (s->o.on_fail)
			s->o.on_fail(s->o.fail_ctx);
	}
	return NULL;
}

int lm_ser_open(const struct lm_ser_opts *opts, struct lm_ser **out)
{
	struct lm_ser *s;

	*out = NULL;
	if (!opts->ev_ring || !opts->txt_ring || !opts->free_ring || !opts->pool ||
	    !opts->publish || opts->sink_cnt < 0 || opts->sink_cnt > LM_SER_MAX_SINKS ||
	    opts->wake_fd < 0)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->o = *opts;
	s->cur = LM_SER_NO_SLOT;
	*out = s;
	return 0;
}

int lm_ser_start(struct lm_ser *s)
{
	int err = pthread_create(&s->thread, NULL, lm_ser_main, s);

	if (err)
		return -err;
	s->started = true;
	return 0;
}

int lm_ser_stop(struct lm_ser *s)
{
	uint64_t one = 1, left = 0;
	const struct lm_rec *rec;

	if (!s->started)
		return 0;
	atomic_store_explicit(&s->stop, true, memory_order_release);
	if (write(s->o.wake_fd, &one, sizeof(one)) < 0) {
		/* the thread polls with a 100 ms timeout anyway */
	}
	pthread_join(s->thread, NULL);
	s->started = false;
	/* the thread is gone (joined) and so is the reader: we are ev_ring's consumer now.
	 * Empty after a clean stop; after a failure or an abort, what it never serialized. */
	while ((rec = lm_ring_ev_peek(s->o.ev_ring))) {
		const struct lm_common *c = lm_rec_data(rec);

		if (rec->size < sizeof(*c) || c->type != LM_EV_CGROUP)
			left++;
		lm_ring_ev_release(s->o.ev_ring);
	}
	if (left)
		lm_stats_add(&s->o.stats->abandoned[LM_STATS_STAGE_SER], left);
	return s->err;
}

void lm_ser_abort(struct lm_ser *s)
{
	/* release: pairs with lm_ser_is_aborted's acquire */
	atomic_store_explicit(&s->abort, true, memory_order_release);
}

bool lm_ser_has_failed(struct lm_ser *s)
{
	return atomic_load_explicit(&s->failed, memory_order_acquire);
}

void lm_ser_close(struct lm_ser *s)
{
	free(s);
}
