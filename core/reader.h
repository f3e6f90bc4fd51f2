/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Reader: the lm-reader thread. Reads every per-CPU BPF ring buffer (mapped directly, one
 * epoll set), merges the per-CPU streams into kernel-time order (core/merge.h: a record is
 * released only when no unread record can be older) and pushes them into ev_ring, giving
 * each event its stream seq. It never drops: when ev_ring is full it waits and the kernel
 * rings absorb the burst. Owns the mappings and the merge; borrows the ring fds, ev_ring
 * and stats.
 */
#ifndef LM_READER_H
#define LM_READER_H

#include <stdatomic.h>
#include <stdbool.h>

#include "core/ring.h"
#include "core/stats.h"

struct lm_reader;

struct lm_reader_opts {
	const int *ring_fds;	/* one BPF ringbuf map fd per CPU; borrowed */
	int ring_cnt;
	struct lm_ev_ring *ev_ring;	/* produced by this thread only */
	struct lm_stats *stats;
	int wake_fd;		/* eventfd the serializer waits on; written after each batch */
};

/* Maps every ring and sets up the epoll set (main thread). Returns 0, -EINVAL or -errno. */
int lm_reader_open(const struct lm_reader_opts *opts, struct lm_reader **out);

/* Starts the lm-reader thread. Returns 0 or -errno from pthread_create. */
int lm_reader_start(struct lm_reader *r);

/*
 * Asks the thread to stop after one last drain of every ring, and joins it. Call after the
 * programs are detached so nothing is left behind. Returns the thread's error (0 or -errno).
 */
int lm_reader_stop(struct lm_reader *r);

/* Abandons waiting for ev_ring space (the consumer died); any thread. */
void lm_reader_abort(struct lm_reader *r);

/* True once the thread has failed or stopped by itself; main polls it. */
bool lm_reader_has_failed(struct lm_reader *r);

void lm_reader_close(struct lm_reader *r);

#endif /* LM_READER_H */
