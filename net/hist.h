/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Replay history: the lm-ws thread's record of the latest published text, read by every
 * WebSocket client through its own cursor and searched by seq for since=. A byte ring of
 * chunks, one per published text slot: its JSON lines (with LWS_PRE headroom in front, so a
 * whole chunk can be framed in place), their index entries and filter strings. One writer
 * and all readers are the ws thread, so no synchronization; memory is fixed at open.
 */
#ifndef LM_HIST_H
#define LM_HIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ring.h"

struct lm_hist;

/* A chunk's header; its text, lines and strings follow at the offsets given. */
struct lm_hist_chunk {
	uint32_t ent_len;	/* bytes of the whole chunk, a multiple of 64; 0: skip marker */
	uint32_t line_cnt;	/* index entries (events and notices) */
	uint32_t text_len;	/* bytes of JSON text */
	uint32_t ev_cnt;	/* events, first_seq..last_seq; at least 1 */
	uint64_t first_seq;
	uint64_t last_seq;
	uint32_t text_off;	/* from the chunk's start; headroom bytes before it are free */
	uint32_t lines_off;
	uint32_t str_off;
	uint32_t _pad;
};

static inline char *lm_hist_text(const struct lm_hist_chunk *c)
{
	return (char *)c + c->text_off;
}

static inline const struct lm_line *lm_hist_lines(const struct lm_hist_chunk *c)
{
	return (const struct lm_line *)((const char *)c + c->lines_off);
}

static inline const char *lm_hist_str(const struct lm_hist_chunk *c)
{
	return (const char *)c + c->str_off;
}

/*
 * Bytes a chunk for `slot` takes in the ring. `headroom`: bytes kept free before the text.
 */
size_t lm_hist_chunk_bytes(const struct lm_txt_slot *slot, uint32_t headroom);

/*
 * Opens a history of `ring_bytes` (a multiple of 64, at least 4 KiB) that keeps at most
 * `text_budget` bytes of JSON text. A chunk may take at most a quarter of the ring.
 * Returns 0, -EINVAL or -ENOMEM.
 */
int lm_hist_open(size_t ring_bytes, uint64_t text_budget, uint32_t headroom,
		 struct lm_hist **out);
void lm_hist_close(struct lm_hist *h);

/* Whether `slot` can be appended without evicting (ring room and text budget). */
bool lm_hist_has_room(const struct lm_hist *h, const struct lm_txt_slot *slot);

/*
 * Copies a published slot (at least one event, seqs after the newest chunk's) in as the
 * newest chunk. Returns 0, -ENOSPC when it needs room (evict first), -EINVAL for a slot
 * that could never fit or carries no event.
 */
int lm_hist_append(struct lm_hist *h, const struct lm_txt_slot *slot);

/* Drops the oldest chunk. Returns false when empty. */
bool lm_hist_evict(struct lm_hist *h);

/* Positions: free-running; the oldest chunk is at tail, the next one appended at head. */
uint64_t lm_hist_tail(const struct lm_hist *h);
uint64_t lm_hist_head(const struct lm_hist *h);

/* The chunk at `pos` (a position a chunk started at), or NULL at head or before tail. */
const struct lm_hist_chunk *lm_hist_at(const struct lm_hist *h, uint64_t pos);

/*
 * The newest chunk's position (head when empty). A reader that was at head before an
 * append must move here: the chunk may have been put at the ring's start, after a skip
 * marker left at the old head.
 */
uint64_t lm_hist_newest(const struct lm_hist *h);

/* The position after the chunk at `pos` (head after the newest). */
uint64_t lm_hist_next(const struct lm_hist *h, uint64_t pos);

/* Seq of the oldest event kept (0 when empty), and of the next event to come (from 1). */
uint64_t lm_hist_first_seq(const struct lm_hist *h);
uint64_t lm_hist_next_seq(const struct lm_hist *h);

/* Chunks held, and bytes of JSON text held. */
uint32_t lm_hist_len(const struct lm_hist *h);
uint64_t lm_hist_text_bytes(const struct lm_hist *h);

/*
 * Where a reader that wants every line with seq >= `since` starts: the position of the
 * chunk and the line in it. `since` at most the oldest seq kept gives tail, line 0; beyond
 * the newest gives head, line 0. A notice line carries the seq of the event it precedes,
 * so it is replayed with that event.
 */
void lm_hist_seek(const struct lm_hist *h, uint64_t since, uint64_t *pos, uint32_t *line);

#endif /* LM_HIST_H */
