/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Serializer: the lm-ser thread. Pops events from ev_ring, writes them as JSON lines into
 * text slots (many events per slot when they arrive together), copies each slot into the
 * sinks and hands it to the ws thread through txt_ring. Free slots come back on free_ring.
 * Borrows every ring, the pool and the sinks; owns only its thread.
 */
#ifndef LM_SER_H
#define LM_SER_H

#include "core/cgroup.h"
#include "core/ring.h"
#include "core/sink.h"
#include "core/stats.h"

#define LM_SER_MAX_SINKS 2
/* A slot is published once its text passes this: slots are sized for a batch and a line */
#define LM_SER_BATCH_BYTES (16 * 1024)

struct lm_ser;

/* Called on the lm-ser thread after slots were pushed to txt_ring (wakes the ws thread). */
typedef void (*lm_ser_publish_fn)(void *ctx);

/*
 * Called once on the lm-ser thread when it ends on an error, before it returns: the stage
 * before it may be waiting for it. Must not block (main aborts the reader's waits).
 */
typedef void (*lm_ser_fail_fn)(void *ctx);

/*
 * Called on the lm-ser thread with each slot after the sinks took it and before it is
 * published (the NATS sink copies its lines). May wait only as a sink's put may.
 */
typedef void (*lm_ser_tap_fn)(void *ctx, const struct lm_txt_slot *slot);

struct lm_ser_opts {
	struct lm_ev_ring *ev_ring;	/* consumed by this thread */
	struct lm_idx_ring *txt_ring;	/* produced by this thread */
	struct lm_idx_ring *free_ring;	/* consumed by this thread */
	struct lm_txt_pool *pool;
	struct lm_sink *sinks[LM_SER_MAX_SINKS];
	int sink_cnt;
	struct lm_stats *stats;
	int wake_fd;			/* eventfd: the reader and the sinks' io_uring signal it */
	lm_ser_publish_fn publish;
	void *publish_ctx;
	lm_ser_fail_fn on_fail;		/* may be NULL */
	void *fail_ctx;
	struct lm_cgroup *cgroup;	/* path cache, used by this thread only; may be NULL */
	int memcg_hier;			/* v1 hierarchy of the memory controller; <= 0: v2 */
	const char *instance;		/* this run's id, in every event line; may be NULL */
	lm_ser_tap_fn tap;		/* may be NULL */
	void *tap_ctx;
};

/* Validates options (main thread). Returns 0, -EINVAL or -ENOMEM. */
int lm_ser_open(const struct lm_ser_opts *opts, struct lm_ser **out);

/* Starts the lm-ser thread. Returns 0 or -errno. */
int lm_ser_start(struct lm_ser *s);

/*
 * Asks the thread to finish: it serializes everything left in ev_ring, publishes it,
 * drains the sinks (up to 2 s), then exits; joins it. Call after lm_reader_stop: events
 * still in ev_ring after the join (the thread failed or was aborted) are counted in
 * stats->abandoned[LM_STATS_STAGE_SER]. Returns the thread's error (0 or -errno; an abort
 * is not an error of this stage).
 */
int lm_ser_stop(struct lm_ser *s);

/*
 * The ws thread died and will return no text slot: stop waiting for one, drop the record
 * in hand (counted as abandoned), drain the sinks and end the thread. Any thread; never
 * blocks.
 */
void lm_ser_abort(struct lm_ser *s);

/* True once the thread ended on an error; main polls it. */
bool lm_ser_has_failed(struct lm_ser *s);

void lm_ser_close(struct lm_ser *s);

#endif /* LM_SER_H */
