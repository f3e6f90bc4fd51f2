/* SPDX-License-Identifier: GPL-2.0 */
/*
 * JSON Lines sinks (stdout, file) written with liburing. The serializer thread owns a sink:
 * it copies each published text slot into the sink's own buffers and io_uring writes them
 * in order, one write in flight, so a slow terminal or disk never blocks the pipeline.
 * When every buffer is busy it waits while writes keep completing; after 100 ms without a
 * completion the slot's events (and those of the next 100 ms) are dropped, counted, and
 * announced in-band by a LOST line before the next text. A failed write drops what is
 * queued behind it; a file keeps only whole lines (a torn tail is truncated away).
 */
#ifndef LM_SINK_H
#define LM_SINK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

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
 * the file). Any thread; the serializer acts on it. The old file stays in use until the
 * new one is open: a failed open is retried once a second (see lm_sink_file_error).
 */
void lm_sink_request_reopen(struct lm_sink *s);

/*
 * File sink: 0 while its path is open as asked, else the -errno of the open or rotation
 * rename that keeps failing (the sink goes on writing to the file it has). Any thread.
 */
int lm_sink_file_error(const struct lm_sink *s);

/*
 * File sink: hands the open file to uid:gid (fchown), so that after a privilege drop to that
 * user rotation can rename it even in a sticky directory. Main thread, before the serializer
 * starts. Returns 0 (also for a non-file sink) or -errno from fchown.
 */
int lm_sink_set_owner(struct lm_sink *s, uid_t uid, gid_t gid);

/* True when nothing is buffered or in flight and no loss is left to announce. */
bool lm_sink_is_idle(const struct lm_sink *s);

/*
 * Shutdown: writes out everything, the LOST line for the last drops included, waiting up
 * to timeout_ms. Returns 0 or -ETIMEDOUT; then the write in flight has been waited for (up to
 * 10 ms more) and a buffer it left part written was cut back to whole lines, the rest of
 * the queue counted dropped.
 */
int lm_sink_drain(struct lm_sink *s, int timeout_ms);

/* Waits for any in-flight write (a short one is rolled back to whole lines), then frees.
 * Accepts NULL. */
void lm_sink_close(struct lm_sink *s);

#endif /* LM_SINK_H */
