/* SPDX-License-Identifier: GPL-2.0 */
/*
 * JSON Lines sinks (stdout, file) written with liburing. The serializer thread owns a sink:
 * it copies each published text slot into the sink's own buffers and io_uring writes them
 * in order, one write in flight, so a slow terminal or disk never blocks the pipeline.
 * When every buffer is busy it waits while writes keep completing; after 100 ms without a
 * completion the slot's events (and those of the next 100 ms) are dropped, counted, and
 * announced in-band by a LOST line before the next text.
 */
#ifndef LM_SINK_H
#define LM_SINK_H

#include <stdbool.h>
#include <stdint.h>

#include "core/ring.h"
#include "core/stats.h"

struct lm_sink;

struct lm_sink_opts {
	int fd;			/* stdout: borrowed fd; ignored when path is set */
	const char *path;	/* file sink: opened (O_APPEND), rotated and reopened by the sink */
	uint64_t max_bytes;	/* file sink: rotate before a write would pass this; 0 = never */
	uint32_t keep;		/* file sink: rotated files kept, path.1 .. path.keep */
	enum lm_stats_sink_id id;
	uint32_t buf_bytes;	/* per buffer; must exceed the largest text slot */
	uint32_t buf_cnt;	/* buffers; >= 2 */
	int notify_fd;		/* eventfd io_uring signals on completion, or -1 */
};

/*
 * Returns 0 and *out, -EINVAL for bad options, or -errno from open(2) of the path or from
 * io_uring setup.
 */
int lm_sink_open(const struct lm_sink_opts *opts, struct lm_stats *stats, struct lm_sink **out);

/*
 * Copies the slot's text into the sink. Returns 0, or -ENOSPC when the device made no
 * progress for 100 ms (or did not within the last 100 ms): the slot's events are counted as
 * dropped and a LOST line will follow. Blocks while the device makes progress. The caller
 * keeps the slot.
 */
int lm_sink_put(struct lm_sink *s, const struct lm_txt_slot *slot);

/* Starts writing buffered text if no write is in flight. Returns 0 or -errno. */
int lm_sink_flush(struct lm_sink *s);

/* Handles finished writes without blocking, then flushes. Returns 0 or -errno. */
int lm_sink_reap(struct lm_sink *s);

/*
 * Asks a file sink to reopen its path before its next write (SIGHUP, after logrotate moved
 * the file). Any thread; the serializer acts on it.
 */
void lm_sink_request_reopen(struct lm_sink *s);

/* True when nothing is buffered or in flight and no loss is left to announce. */
bool lm_sink_is_idle(const struct lm_sink *s);

/*
 * Shutdown: writes out everything, the LOST line for the last drops included, waiting up
 * to timeout_ms. Returns 0 or -ETIMEDOUT.
 */
int lm_sink_drain(struct lm_sink *s, int timeout_ms);

/* Waits for any in-flight write, then frees; accepts NULL. */
void lm_sink_close(struct lm_sink *s);

#endif /* LM_SINK_H */
