// SPDX-License-Identifier: GPL-2.0
/*
 * liburing JSONL sink, run by the serializer thread. Buffers are used round-robin: `fill`
 * takes new text, `head` is the oldest unwritten one and the only one with a write in
 * flight, so lines reach the fd in stream order. Short writes are resubmitted.
 */
#include "core/sink.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "core/json.h"

/*
 * A put waits while writes keep completing; a stall is no completion for LM_SINK_WAIT_MS.
 * After a stall the sink drops at once for LM_SINK_BREAK_MS, so a dead device costs the
 * pipeline at most half its time while a slow one (starved of CPU in a catch-up) loses
 * nothing: the kernel rings absorb the wait.
 */
#define LM_SINK_WAIT_MS 100
#define LM_SINK_BREAK_MS 100

struct lm_sink_buf {
	char *data;
	uint32_t len;		/* bytes filled */
	uint32_t off;		/* bytes already written */
	uint64_t ev_cnt;	/* events in data */
	uint64_t first_seq;
	uint64_t last_seq;
};

struct lm_sink {
	struct io_uring ring;
	bool ring_ok;
	int fd;
	bool owns_fd;		/* file sink: opened here, closed on rotate/reopen/close */
	char *path;
	uint64_t max_bytes;
	uint32_t keep;
	uint64_t file_bytes;	/* size of the current file */
	uint64_t retry_ms;	/* file could not be opened: next attempt no sooner */
	atomic_bool reopen;	/* any thread -> serializer: reopen path before the next write */
	uint64_t no_wait_until_ms; /* after a wait timed out: drop at once until then */
	uint32_t fill_cap;	/* bytes a buffer is filled to (<= buf_bytes, <= max_bytes / 2) */
	enum lm_stats_sink_id id;
	struct lm_stats *stats;
	struct lm_sink_buf *bufs;
	uint32_t buf_cnt;
	uint32_t buf_bytes;
	uint32_t head;		/* oldest buffer with unwritten bytes */
	uint32_t used;		/* buffers from head that hold data (the last is `fill`) */
	bool inflight;
	/* events dropped since the last LOST line: first..last seq, count */
	uint64_t loss_first, loss_last, loss_cnt;
};

static int lm_sink_open_file(struct lm_sink *s);

static struct lm_sink_buf *lm_sink_fill_buf(struct lm_sink *s)
{
	return s->used ? &s->bufs[(s->head + s->used - 1) % s->buf_cnt] : NULL;
}

int lm_sink_open(const struct lm_sink_opts *opts, struct lm_stats *stats, struct lm_sink **out)
{
	struct lm_sink *s;
	uint32_t i;
	int err;

	*out = NULL;
	if ((!opts->path && opts->fd < 0) || opts->buf_cnt < 2 || opts->buf_bytes < 32768 ||
	    (opts->max_bytes && (opts->max_bytes < 65536 || !opts->keep)))
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->fd = opts->fd;
	s->max_bytes = opts->max_bytes;
	s->keep = opts->keep;
	s->fill_cap = opts->buf_bytes;
	/* a buffer never passes half a rotated file, so files stay within max_bytes */
	if (s->max_bytes && s->fill_cap > s->max_bytes / 2)
		s->fill_cap = (uint32_t)(s->max_bytes / 2);
	if (opts->path) {
		s->path = strdup(opts->path);
		if (!s->path) {
			err = -ENOMEM;
			goto out;
		}
		err = lm_sink_open_file(s);
		if (err)
			goto out;
	}
	s->id = opts->id;
	s->stats = stats;
	s->buf_cnt = opts->buf_cnt;
	s->buf_bytes = opts->buf_bytes;
	s->bufs = calloc(opts->buf_cnt, sizeof(*s->bufs));
	if (!s->bufs) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < s->buf_cnt; i++) {
		s->bufs[i].data = malloc(s->buf_bytes);
		if (!s->bufs[i].data) {
			err = -ENOMEM;
			goto out;
		}
	}
	err = io_uring_queue_init(8, &s->ring, 0);
	if (err)
		goto out;
	s->ring_ok = true;
	if (opts->notify_fd >= 0) {
		err = io_uring_register_eventfd(&s->ring, opts->notify_fd);
		if (err)
			goto out;
	}
	*out = s;
	s = NULL;
out:
	lm_sink_close(s);
	return err;
}

static void lm_sink_retire(struct lm_sink *s, bool ok);

static int lm_sink_open_file(struct lm_sink *s)
{
	struct stat st;
	int err;

	s->fd = open(s->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (s->fd < 0)
		return -errno;
	s->owns_fd = true;
	if (fstat(s->fd, &st) < 0) {
		err = -errno;
		close(s->fd);
		s->fd = -1;
		return err;
	}
	s->file_bytes = (uint64_t)st.st_size;
	return 0;
}

static void lm_sink_close_file(struct lm_sink *s)
{
	if (s->owns_fd && s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

static uint64_t lm_sink_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Reopens the path, at most once a second while it keeps failing. */
static void lm_sink_reopen(struct lm_sink *s)
{
	uint64_t now = lm_sink_now_ms();

	if (now < s->retry_ms)
		return;
	lm_sink_close_file(s);
	if (lm_sink_open_file(s)) {
		lm_stats_add(&s->stats->sink[s->id].errors, 1);
		s->retry_ms = now + 1000;
	}
}

/* path -> path.1 -> ... -> path.keep (the oldest is replaced), then a fresh path. */
static void lm_sink_rotate(struct lm_sink *s)
{
	char from[PATH_MAX + 16], to[PATH_MAX + 16];
	size_t n = sizeof(to);
	uint32_t k;

	lm_sink_close_file(s);
	for (k = s->keep; k > 1; k--) {
		snprintf(from, n, "%s.%u", s->path, k - 1);
		snprintf(to, n, "%s.%u", s->path, k);
		rename(from, to); /* a missing older file is fine */
	}
	snprintf(to, n, "%s.1", s->path);
	if (rename(s->path, to) < 0)
		lm_stats_add(&s->stats->sink[s->id].errors, 1);
	s->retry_ms = 0;
	lm_sink_reopen(s);
}

void lm_sink_request_reopen(struct lm_sink *s)
{
	/* release: nothing else is published with it; the serializer polls the flag */
	atomic_store_explicit(&s->reopen, true, memory_order_release);
}

/* Appends bytes to the fill buffer, starting a new one if needed. false: no buffer free. */
static bool lm_sink_append(struct lm_sink *s, const char *text, uint32_t len,
			   uint64_t ev_cnt, uint64_t first_seq, uint64_t last_seq)
{
	struct lm_sink_buf *b = lm_sink_fill_buf(s);

	if (!b || (b == &s->bufs[s->head] && s->inflight) || b->len + len > s->fill_cap) {
		if (s->used == s->buf_cnt)
			return false;
		b = &s->bufs[(s->head + s->used) % s->buf_cnt];
		b->len = 0;
		b->off = 0;
		b->ev_cnt = 0;
		b->first_seq = 0;
		s->used++;
	}
	memcpy(b->data + b->len, text, len);
	b->len += len;
	if (ev_cnt) {
		if (!b->ev_cnt)
			b->first_seq = first_seq;
		b->last_seq = last_seq;
		b->ev_cnt += ev_cnt;
	}
	return true;
}

static void lm_sink_lose(struct lm_sink *s, uint64_t cnt, uint64_t first_seq, uint64_t last_seq)
{
	if (!cnt)
		return;
	if (!s->loss_cnt)
		s->loss_first = first_seq;
	s->loss_last = last_seq;
	s->loss_cnt += cnt;
	lm_stats_add(&s->stats->sink[s->id].dropped, cnt);
}

static void lm_sink_complete(struct lm_sink *s, int res);

/*
 * Waits for a buffer to free up while writes keep completing. A burst larger than the
 * buffers is then absorbed upstream (the kernel rings) instead of being dropped here; a
 * device with no completion for LM_SINK_WAIT_MS makes the sink drop at once for
 * LM_SINK_BREAK_MS. Returns true if a buffer is free.
 */
static bool lm_sink_wait_room(struct lm_sink *s)
{
	struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = LM_SINK_WAIT_MS * 1000000L };
	uint64_t now = lm_sink_now_ms();
	struct io_uring_cqe *cqe;

	if (now < s->no_wait_until_ms)
		return false;
	while (s->used == s->buf_cnt) {
		if (!s->inflight && lm_sink_flush(s))
			return false;
		if (!s->inflight)
			break; /* the head buffer was retired without a write */
		if (io_uring_wait_cqe_timeout(&s->ring, &cqe, &ts)) {
			lm_stats_add(&s->stats->sink[s->id].slow, 1);
			s->no_wait_until_ms = lm_sink_now_ms() + LM_SINK_BREAK_MS;
			return false;
		}
		lm_sink_complete(s, cqe->res);
		io_uring_cqe_seen(&s->ring, cqe);
		lm_sink_flush(s);
	}
	return s->used < s->buf_cnt;
}

/* Buffers the LOST line for the events dropped since the last one, if there is room. */
static void lm_sink_put_notice(struct lm_sink *s)
{
	char notice[160];
	int n = lm_json_lost(notice, sizeof(notice), s->loss_first, s->loss_last, s->loss_cnt,
			     "sink_full");

	if (n > 0 && lm_sink_append(s, notice, (uint32_t)n, 0, 0, 0))
		s->loss_cnt = 0;
}

int lm_sink_put(struct lm_sink *s, const struct lm_txt_slot *slot)
{
	if (slot->len > s->fill_cap - 256) {
		lm_sink_lose(s, slot->ev_cnt, slot->first_seq, slot->last_seq);
		return -ENOSPC;
	}
	/* the notice goes first, ahead of the text that follows the loss */
	if (s->loss_cnt)
		lm_sink_put_notice(s);
	if (!s->loss_cnt && lm_sink_append(s, slot->text, slot->len, slot->ev_cnt,
					   slot->first_seq, slot->last_seq))
		return 0;
	/* every buffer busy: give the write in flight a short, bounded time to finish */
	if (!s->loss_cnt && lm_sink_wait_room(s) &&
	    lm_sink_append(s, slot->text, slot->len, slot->ev_cnt, slot->first_seq,
			   slot->last_seq))
		return 0;
	lm_sink_lose(s, slot->ev_cnt, slot->first_seq, slot->last_seq);
	return -ENOSPC;
}

int lm_sink_flush(struct lm_sink *s)
{
	struct lm_sink_buf *b;
	struct io_uring_sqe *sqe;
	int err;

	if (s->inflight || !s->used)
		return 0;
	b = &s->bufs[s->head];
	if (b->off >= b->len)
		return 0;
	if (s->path && b->off == 0) {
		/* between whole buffers only, so files always end at a line boundary */
		if (atomic_exchange_explicit(&s->reopen, false, memory_order_acquire)) {
			s->retry_ms = 0;
			lm_sink_reopen(s);
		}
		if (s->fd >= 0 && s->max_bytes && s->file_bytes &&
		    s->file_bytes + b->len > s->max_bytes)
			lm_sink_rotate(s);
		if (s->fd < 0) {
			lm_sink_reopen(s);
			if (s->fd < 0) {
				/* no file to write to: these events are lost, and said so later */
				lm_sink_retire(s, false);
				return 0;
			}
		}
	}
	sqe = io_uring_get_sqe(&s->ring);
	if (!sqe)
		return -EBUSY;
	/* offset -1: the file position, so O_APPEND files and pipes both work */
	io_uring_prep_write(sqe, s->fd, b->data + b->off, b->len - b->off, (__u64)-1);
	err = io_uring_submit(&s->ring);
	if (err < 0)
		return err;
	s->inflight = true;
	return 0;
}

/* Retires the head buffer after its last byte was written or its write failed. */
static void lm_sink_retire(struct lm_sink *s, bool ok)
{
	struct lm_sink_buf *b = &s->bufs[s->head];

	if (ok) {
		lm_stats_add(&s->stats->sink[s->id].delivered, b->ev_cnt);
	} else {
		lm_stats_add(&s->stats->sink[s->id].errors, 1);
		lm_sink_lose(s, b->ev_cnt, b->first_seq, b->last_seq);
	}
	b->len = 0;
	b->off = 0;
	b->ev_cnt = 0;
	s->head = (s->head + 1) % s->buf_cnt;
	s->used--;
}

static void lm_sink_complete(struct lm_sink *s, int res)
{
	struct lm_sink_buf *b = &s->bufs[s->head];

	s->inflight = false;
	if (res < 0 && res != -EAGAIN && res != -EINTR) {
		lm_sink_retire(s, false);
		return;
	}
	if (res > 0) {
		b->off += (uint32_t)res;
		s->file_bytes += (uint64_t)res;
		lm_stats_add(&s->stats->sink[s->id].bytes, (uint64_t)res);
	}
	/* a short write leaves off < len; the next flush resubmits the rest */
	if (b->off >= b->len)
		lm_sink_retire(s, true);
}

int lm_sink_reap(struct lm_sink *s)
{
	struct io_uring_cqe *cqe;

	while (io_uring_peek_cqe(&s->ring, &cqe) == 0) {
		lm_sink_complete(s, cqe->res);
		io_uring_cqe_seen(&s->ring, cqe);
	}
	return lm_sink_flush(s);
}

bool lm_sink_is_idle(const struct lm_sink *s)
{
	/* an unwritten loss notice is work left: a drain must not end before it */
	return !s->used && !s->inflight && !s->loss_cnt;
}

int lm_sink_drain(struct lm_sink *s, int timeout_ms)
{
	struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 10 * 1000 * 1000 };
	uint64_t end = lm_sink_now_ms() + (uint64_t)timeout_ms;
	int err;

	for (;;) {
		struct io_uring_cqe *cqe;

		err = lm_sink_reap(s);
		if (err)
			return err;
		if (s->loss_cnt)
			lm_sink_put_notice(s);
		if (lm_sink_is_idle(s))
			return 0;
		if (lm_sink_now_ms() >= end)
			return -ETIMEDOUT;
		if (io_uring_wait_cqe_timeout(&s->ring, &cqe, &ts) == 0) {
			lm_sink_complete(s, cqe->res);
			io_uring_cqe_seen(&s->ring, cqe);
		}
	}
}

void lm_sink_close(struct lm_sink *s)
{
	uint32_t i;

	if (!s)
		return;
	if (s->ring_ok) {
		if (s->inflight) {
			struct io_uring_cqe *cqe;

			/* the kernel may still read the buffer: wait before freeing it */
			if (io_uring_wait_cqe(&s->ring, &cqe) == 0)
				io_uring_cqe_seen(&s->ring, cqe);
		}
		io_uring_queue_exit(&s->ring);
	}
	if (s->bufs)
		for (i = 0; i < s->buf_cnt; i++)
			free(s->bufs[i].data);
	free(s->bufs);
	lm_sink_close_file(s);
	free(s->path);
	free(s);
}
