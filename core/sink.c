// SPDX-License-Identifier: GPL-2.0
/*
 * liburing JSONL sink, run by the serializer thread. Buffers are used round-robin: `fill`
 * takes new text, `head` is the oldest unwritten one and the only one with a write in
 * flight, so lines reach the fd in stream order. Short writes are resubmitted. A write that
 * fails (ENOSPC, EFBIG, EIO) after a short one is rolled back to the end of the last whole
 * chunk (slot or notice) it wrote, so the file never holds a partial line; what stayed is
 * delivered, the rest of the queue is dropped in stream order and announced.
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
/* A file that cannot be (re)opened is tried again no sooner than this. */
#define LM_SINK_RETRY_MS 1000
/* Chunks per buffer: one per byte count of this size, so small slots cannot run out of them. */
#define LM_SINK_BYTES_PER_CHUNK 256

/*
 * One appended piece of text: a slot's whole lines, or a LOST notice. A failed write is
 * rolled back to a chunk boundary, so the chunk list says which events made it.
 */
struct lm_sink_chunk {
	uint32_t end;		/* offset in the buffer just past the chunk */
	uint32_t ev_cnt;	/* events; 0 for a LOST notice */
	uint64_t first_seq;	/* events: theirs; notice: the range it announces */
	uint64_t last_seq;
	uint64_t lost_cnt;	/* notice: events it announces */
};

struct lm_sink_buf {
	char *data;
	uint32_t len;		/* bytes filled */
	uint32_t off;		/* bytes already written */
	uint64_t ev_cnt;	/* events in data */
	struct lm_sink_chunk *chunks;
	uint32_t chunk_cnt;
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
	bool want_open;		/* path must be (re)opened; until then fd stays the old file */
	bool rotate_off;	/* a rename failed: no rotation of this file (it would lose data) */
	uint64_t retry_ms;	/* path could not be opened: next attempt no sooner */
	atomic_bool reopen;	/* any thread -> serializer: reopen path before the next write */
	atomic_int file_err;	/* serializer -> any thread: -errno of the failing open/rename */
	uint64_t no_wait_until_ms; /* after a wait timed out: drop at once until then */
	uint32_t fill_cap;	/* bytes a buffer is filled to (<= buf_bytes, <= max_bytes / 2) */
	enum lm_stats_sink_id id;
	struct lm_stats *stats;
	struct lm_sink_buf *bufs;
	uint32_t buf_cnt;
	uint32_t buf_bytes;
	uint32_t chunk_cap;	/* chunks per buffer */
	uint32_t head;		/* oldest buffer with unwritten bytes */
	uint32_t used;		/* buffers from head that hold data (the last is `fill`) */
	bool inflight;
	/* events dropped since the last LOST line: first..last seq, count */
	uint64_t loss_first, loss_last, loss_cnt;
};

static int lm_sink_open_fd(const char *path, int *fd, uint64_t *size);

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
		s->fd = -1;
		s->path = strdup(opts->path);
		if (!s->path) {
			err = -ENOMEM;
			goto out;
		}
		err = lm_sink_open_fd(s->path, &s->fd, &s->file_bytes);
		if (err)
			goto out;
		s->owns_fd = true;
	}
	s->id = opts->id;
	s->stats = stats;
	s->buf_cnt = opts->buf_cnt;
	s->buf_bytes = opts->buf_bytes;
	s->chunk_cap = s->buf_bytes / LM_SINK_BYTES_PER_CHUNK;
	s->bufs = calloc(opts->buf_cnt, sizeof(*s->bufs));
	if (!s->bufs) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < s->buf_cnt; i++) {
		s->bufs[i].data = malloc(s->buf_bytes);
		s->bufs[i].chunks = calloc(s->chunk_cap, sizeof(*s->bufs[i].chunks));
		if (!s->bufs[i].data || !s->bufs[i].chunks) {
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

/* Opens path for appending. Returns 0 with *fd and *size (its length), or -errno. */
static int lm_sink_open_fd(const char *path, int *fd, uint64_t *size)
{
	struct stat st;
	int err;

	*fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (*fd < 0)
		return -errno;
	if (fstat(*fd, &st) < 0) {
		err = -errno;
		close(*fd);
		*fd = -1;
		return err;
	}
	*size = (uint64_t)st.st_size;
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

/* Records the open/rename failure for main; counted once per run of failures. */
static void lm_sink_file_failed(struct lm_sink *s, int err)
{
	/* relaxed: a status value main reads for its log line, nothing is published with it */
	if (!atomic_exchange_explicit(&s->file_err, err, memory_order_relaxed))
		lm_stats_add(&s->stats->sink[s->id].errors, 1);
}

/*
 * Opens path anew and only then lets go of the old file: while the open fails (the
 * directory lost its write permission, path is now a directory, ...) the sink keeps
 * appending to the file it has and tries again LM_SINK_RETRY_MS later.
 */
static void lm_sink_switch_file(struct lm_sink *s)
{
	uint64_t now = lm_sink_now_ms(), size = 0;
	int fd = -1, err;

	if (now < s->retry_ms)
		return;
	err = lm_sink_open_fd(s->path, &fd, &size);
	if (err) {
		lm_sink_file_failed(s, err);
		s->retry_ms = now + LM_SINK_RETRY_MS;
		return;
	}
	lm_sink_close_file(s);
	s->fd = fd;
	s->file_bytes = size;
	s->want_open = false;
	s->rotate_off = false;
	s->retry_ms = 0;
	atomic_store_explicit(&s->file_err, 0, memory_order_relaxed);
}

/* True if path still names the file the sink writes to. */
static bool lm_sink_path_is_ours(const struct lm_sink *s)
{
	struct stat ours, named;

	return !fstat(s->fd, &ours) && !stat(s->path, &named) && ours.st_dev == named.st_dev &&
	       ours.st_ino == named.st_ino;
}

/*
 * path -> path.1 -> ... -> path.keep (the oldest is replaced), then a fresh path. If path
 * no longer names our file (someone moved or deleted it without SIGHUP), the old file is
 * theirs now: nothing is shifted, so no rotated file is lost, and a fresh path is opened.
 * A failed rename stops the shift where it is and rotation of this file, so a retry can
 * never push one more rotated file out.
 */
static void lm_sink_rotate(struct lm_sink *s)
{
	char from[PATH_MAX + 16], to[PATH_MAX + 16];
	size_t n = sizeof(to);
	uint32_t k;

	s->want_open = true;
	s->retry_ms = 0;
	if (!lm_sink_path_is_ours(s))
		return;
	for (k = s->keep; k > 1; k--) {
		snprintf(from, n, "%s.%u", s->path, k - 1);
		snprintf(to, n, "%s.%u", s->path, k);
		if (rename(from, to) < 0 && errno != ENOENT)
			goto fail;
	}
	snprintf(to, n, "%s.1", s->path);
	if (rename(s->path, to) == 0)
		return;
fail:
	lm_sink_file_failed(s, -errno);
	s->want_open = false;
	s->rotate_off = true;
}

void lm_sink_request_reopen(struct lm_sink *s)
{
	/* release: nothing else is published with it; the serializer polls the flag */
	atomic_store_explicit(&s->reopen, true, memory_order_release);
}

int lm_sink_file_error(const struct lm_sink *s)
{
	/* relaxed: see lm_sink_file_failed */
	return atomic_load_explicit(&s->file_err, memory_order_relaxed);
}

int lm_sink_set_owner(struct lm_sink *s, uid_t uid, gid_t gid)
{
	if (!s->path)
		return 0;
	return fchown(s->fd, uid, gid) ? -errno : 0;
}

static void lm_sink_buf_reset(struct lm_sink_buf *b)
{
	b->len = 0;
	b->off = 0;
	b->ev_cnt = 0;
	b->chunk_cnt = 0;
}

/*
 * Appends a chunk to the fill buffer, starting a new one if needed. ev_cnt events with
 * seqs first..last, or a notice (ev_cnt 0) for lost_cnt events first..last. false: no
 * buffer free.
 */
static bool lm_sink_append(struct lm_sink *s, const char *text, uint32_t len, uint32_t ev_cnt,
			   uint64_t first_seq, uint64_t last_seq, uint64_t lost_cnt)
{
	struct lm_sink_buf *b = lm_sink_fill_buf(s);
	struct lm_sink_chunk *c;

	if (!b || (b == &s->bufs[s->head] && s->inflight) || b->len + len > s->fill_cap ||
	    b->chunk_cnt == s->chunk_cap) {
		if (s->used == s->buf_cnt)
			return false;
		b = &s->bufs[(s->head + s->used) % s->buf_cnt];
		lm_sink_buf_reset(b);
		s->used++;
	}
	memcpy(b->data + b->len, text, len);
	b->len += len;
	b->ev_cnt += ev_cnt;
	c = &b->chunks[b->chunk_cnt++];
	c->end = b->len;
	c->ev_cnt = ev_cnt;
	c->first_seq = first_seq;
	c->last_seq = last_seq;
	c->lost_cnt = lost_cnt;
	return true;
}

/* Adds first..last (cnt events, already counted) to the loss the next LOST line announces. */
static void lm_sink_owe_notice(struct lm_sink *s, uint64_t cnt, uint64_t first_seq,
			       uint64_t last_seq)
{
	if (!cnt)
		return;
	if (!s->loss_cnt)
		s->loss_first = first_seq;
	s->loss_last = last_seq;
	s->loss_cnt += cnt;
}

static void lm_sink_lose(struct lm_sink *s, uint64_t cnt, uint64_t first_seq, uint64_t last_seq)
{
	lm_sink_owe_notice(s, cnt, first_seq, last_seq);
	lm_stats_add(&s->stats->sink[s->id].dropped, cnt);
}

static void lm_sink_complete(struct lm_sink *s, int res);

/*
 * Waits for a buffer to free up while writes keep completing. A burst larger than the
 * buffers is then absorbed upstream (the kernel rings) instead of being dropped here; a
 * device with no completion for LM_SINK_WAIT_MS makes the sink drop at once for
 * LM_SINK_BREAK_MS. Past the kernel rings' high-water mark the sink waits no more: the
 * kernel would soon drop for every consumer. Returns true if a buffer is free.
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
			break;
		if (lm_stats_get(&s->stats->kernel_ring_fill) >= LM_STATS_HIGH_WATER_PERMILLE)
			return false;
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

	if (n > 0 && lm_sink_append(s, notice, (uint32_t)n, 0, s->loss_first, s->loss_last,
				    s->loss_cnt))
		s->loss_cnt = 0;
}

int lm_sink_put(struct lm_sink *s, const struct lm_txt_slot *slot)
{
	bool waited = false;

	if (slot->len > s->fill_cap - 256) {
		lm_sink_lose(s, slot->ev_cnt, slot->first_seq, slot->last_seq);
		return -ENOSPC;
	}
	for (;;) {
		/* the notice goes first, ahead of the text that follows the loss */
		if (s->loss_cnt)
			lm_sink_put_notice(s);
		if (!s->loss_cnt && lm_sink_append(s, slot->text, slot->len, slot->ev_cnt,
						   slot->first_seq, slot->last_seq, 0))
			return 0;
		/*
		 * every buffer busy: give the write in flight a short, bounded time to finish,
		 * unless the notice found no room either. Once: a write that fails meanwhile
		 * drops the queue and owes a notice, which then goes in ahead of this slot
		 */
		if (waited || s->loss_cnt || !lm_sink_wait_room(s))
			break;
		waited = true;
	}
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
			s->want_open = true;
			s->retry_ms = 0;
		}
		if (!s->want_open && !s->rotate_off && s->max_bytes && s->file_bytes &&
		    s->file_bytes + b->len > s->max_bytes)
			lm_sink_rotate(s);
		if (s->want_open)
			lm_sink_switch_file(s);
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

/* Retires the head buffer after its last byte was written. */
static void lm_sink_retire(struct lm_sink *s)
{
	struct lm_sink_buf *b = &s->bufs[s->head];

	lm_stats_add(&s->stats->sink[s->id].delivered, b->ev_cnt);
	lm_stats_add(&s->stats->sink[s->id].bytes, b->len);
	lm_sink_buf_reset(b);
	s->head = (s->head + 1) % s->buf_cnt;
	s->used--;
}

/*
 * Cuts the last `cut` bytes off a regular file: the torn tail of a failed write. The file
 * position moves back too, for fds without O_APPEND (a redirected stdout). Pipes and
 * terminals cannot take back bytes; they are left as they are. Returns 0 or -errno.
 */
static int lm_sink_cut_tail(int fd, uint64_t cut)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return 0;
	if ((uint64_t)st.st_size < cut)
		return -ESPIPE; /* someone else truncated it: nothing of ours to cut */
	if (ftruncate(fd, st.st_size - (off_t)cut) < 0 ||
	    lseek(fd, st.st_size - (off_t)cut, SEEK_SET) < 0)
		return -errno;
	return 0;
}

/*
 * A write failed after the head buffer's first `off` bytes went out. The whole chunks
 * among them stay and are delivered; a torn chunk is cut off the file. Everything after
 * them, in this buffer and the ones queued behind it, is dropped in stream order, so the
 * loss (ahead of what puts had already dropped) is one seq range and its LOST line comes
 * before the next text that reaches the file. A notice that did not make it is owed again.
 */
static void lm_sink_fail_head(struct lm_sink *s)
{
	uint64_t owed_first = s->loss_first, owed_last = s->loss_last, owed_cnt = s->loss_cnt;
	struct lm_sink_buf *b = &s->bufs[s->head];
	uint32_t i = 0, kept = 0;
	uint64_t ev = 0;

	lm_stats_add(&s->stats->sink[s->id].errors, 1);
	for (; i < b->chunk_cnt && b->chunks[i].end <= b->off; i++) {
		kept = b->chunks[i].end;
		ev += b->chunks[i].ev_cnt;
	}
	if (b->off > kept) {
		if (lm_sink_cut_tail(s->fd, b->off - kept))
			lm_stats_add(&s->stats->sink[s->id].errors, 1);
		else
			s->file_bytes -= b->off - kept;
	}
	lm_stats_add(&s->stats->sink[s->id].delivered, ev);
	lm_stats_add(&s->stats->sink[s->id].bytes, kept);
	s->loss_cnt = 0;
	while (s->used) {
		for (; i < b->chunk_cnt; i++) {
			const struct lm_sink_chunk *c = &b->chunks[i];

			if (c->ev_cnt)
				lm_sink_lose(s, c->ev_cnt, c->first_seq, c->last_seq);
			else
				lm_sink_owe_notice(s, c->lost_cnt, c->first_seq, c->last_seq);
		}
		lm_sink_buf_reset(b);
		s->head = (s->head + 1) % s->buf_cnt;
		s->used--;
		b = &s->bufs[s->head];
		i = 0;
	}
	lm_sink_owe_notice(s, owed_cnt, owed_first, owed_last);
}

static void lm_sink_complete(struct lm_sink *s, int res)
{
	struct lm_sink_buf *b = &s->bufs[s->head];

	s->inflight = false;
	if (res == -EAGAIN || res == -EINTR)
		return; /* the next flush resubmits */
	/* 0 bytes for a non-empty write is no progress: resubmitting would spin */
	if (res <= 0) {
		lm_sink_fail_head(s);
		return;
	}
	b->off += (uint32_t)res;
	s->file_bytes += (uint64_t)res;
	/* a short write leaves off < len; the next flush resubmits the rest */
	if (b->off >= b->len)
		lm_sink_retire(s);
}

/*
 * Stops writing: waits for the write in flight (up to timeout_ms, or without limit if
 * negative), and rolls a buffer left part written back to whole lines, so a file given up
 * on ends at a line boundary.
 */
static void lm_sink_settle(struct lm_sink *s, int timeout_ms)
{
	struct __kernel_timespec ts = { .tv_sec = timeout_ms / 1000,
					.tv_nsec = (timeout_ms % 1000) * 1000000L };
	struct io_uring_cqe *cqe;

	if (s->inflight &&
	    (timeout_ms < 0 ? io_uring_wait_cqe(&s->ring, &cqe) :
			      io_uring_wait_cqe_timeout(&s->ring, &cqe, &ts)) == 0) {
		lm_sink_complete(s, cqe->res);
		io_uring_cqe_seen(&s->ring, cqe);
	}
	if (!s->inflight && s->used && s->bufs[s->head].off)
		lm_sink_fail_head(s);
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
		if (lm_sink_now_ms() >= end) {
			lm_sink_settle(s, 10);
			return -ETIMEDOUT;
		}
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
		/* the kernel may still read the buffer: wait before freeing it */
		lm_sink_settle(s, -1);
		io_uring_queue_exit(&s->ring);
	}
	if (s->bufs)
		for (i = 0; i < s->buf_cnt; i++) {
			free(s->bufs[i].data);
			free(s->bufs[i].chunks);
		}
	free(s->bufs);
	lm_sink_close_file(s);
	free(s->path);
	free(s);
}
