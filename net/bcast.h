/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Broadcast ring: the ws thread's history of published text slots, read by every WebSocket
 * client through its own cursor. One writer and all readers are the ws thread, so no
 * synchronization; memory is fixed at open whatever the clients do. A client that falls a
 * whole ring behind skips to the oldest entry and is told which seqs it missed.
 */
#ifndef LM_BCAST_H
#define LM_BCAST_H

#include <stdbool.h>
#include <stdint.h>

struct lm_bcast;

struct lm_bcast_entry {
	uint32_t slot;		/* text pool index; owned by the ring until evicted */
	uint32_t ev_cnt;	/* events in the slot */
	uint64_t first_seq;
	uint64_t last_seq;
};

/* A reader's position. Start one with lm_bcast_cursor_init (new messages only). */
struct lm_bcast_cursor {
	uint64_t pos;		/* next ring position to read */
	uint64_t next_seq;	/* first seq the reader has not seen yet */
};

/* What a reader missed since its last read: seqs first_seq..last_seq, cnt events. */
struct lm_bcast_loss {
	uint64_t first_seq;
	uint64_t last_seq;
	uint64_t cnt;
};

/*
 * Opens a ring of `cap` entries (a power of two >= 2). Entries must carry contiguous seq
 * ranges starting at 1, as the serializer publishes them. Returns 0, -EINVAL, -ENOMEM.
 */
int lm_bcast_open(uint32_t cap, struct lm_bcast **out);
void lm_bcast_close(struct lm_bcast *b);

/*
 * Appends an entry. When the ring is full the oldest entry is evicted: returns 1 and its
 * slot index in *evicted (ownership moves to the caller); else returns 0.
 */
int lm_bcast_push(struct lm_bcast *b, const struct lm_bcast_entry *e, uint32_t *evicted);

/* Entries held, and removal of the oldest (shutdown: the caller reclaims each slot). */
uint32_t lm_bcast_len(const struct lm_bcast *b);
bool lm_bcast_pop_oldest(struct lm_bcast *b, uint32_t *slot);

void lm_bcast_cursor_init(const struct lm_bcast *b, struct lm_bcast_cursor *c);

/* Entries between the cursor and the newest, including ones already evicted. */
uint64_t lm_bcast_behind(const struct lm_bcast *b, const struct lm_bcast_cursor *c);

/*
 * If entries the cursor had not read were evicted, moves it to the oldest entry kept and
 * fills *loss with the seqs it missed; else sets loss->cnt to 0. Lets the owner account a
 * client's loss when it happens, even if the client never reads again.
 */
void lm_bcast_catch_up(const struct lm_bcast *b, struct lm_bcast_cursor *c,
		       struct lm_bcast_loss *loss);

/*
 * Returns the next entry for the cursor and advances it, or NULL when it is up to date.
 * If entries the cursor had not read were evicted, it first skips to the oldest one kept
 * and fills *loss (cnt 0 when nothing was missed). The entry stays valid until the next push.
 */
const struct lm_bcast_entry *lm_bcast_next(const struct lm_bcast *b, struct lm_bcast_cursor *c,
					   struct lm_bcast_loss *loss);

#endif /* LM_BCAST_H */
