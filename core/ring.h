/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Typed single-producer single-consumer rings (Concurrency Kit ck_ring) and the text slot
 * pool. ev_ring carries event records reader -> serializer by value; idx rings carry text
 * slot indices serializer -> ws (txt_ring) and ws -> serializer (free_ring).
 * Exactly one thread produces and one consumes each ring; all memory is allocated at open.
 */
#ifndef LM_RING_H
#define LM_RING_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/types.h>

#include "bpf/lm_event.h"

/* One ev_ring slot: the kernel record plus the stream sequence number the reader gave it. */
struct lm_rec {
	uint64_t seq;
	uint64_t kernel_lost;	/* events lost in the kernel ring just before this one; 0 mostly */
	struct lm_event ev;
};

struct lm_ev_ring;
struct lm_idx_ring;

/*
 * Opens a ring of `slots` entries (a power of two >= 2; holds slots - 1).
 * Returns 0 and *out, -EINVAL for a bad size, -ENOMEM.
 */
int lm_ring_ev_open(uint32_t slots, struct lm_ev_ring **out);
void lm_ring_ev_close(struct lm_ev_ring *r);

/*
 * Producer: returns the next free slot to fill in place, or NULL when full (the caller
 * waits; nothing is lost). lm_ring_ev_commit publishes the slot returned last.
 */
struct lm_rec *lm_ring_ev_reserve(struct lm_ev_ring *r);
void lm_ring_ev_commit(struct lm_ev_ring *r);

/* Consumer: copies the oldest record into *out. Returns false when empty. */
bool lm_ring_ev_pop(struct lm_ev_ring *r, struct lm_rec *out);

/* Entries currently queued and the most the ring holds; approximate from a third thread. */
uint32_t lm_ring_ev_fill(const struct lm_ev_ring *r);
uint32_t lm_ring_ev_capacity(const struct lm_ev_ring *r);

int lm_ring_idx_open(uint32_t slots, struct lm_idx_ring **out);
void lm_ring_idx_close(struct lm_idx_ring *r);
/* Producer: returns false when full (the caller keeps ownership of idx). */
bool lm_ring_idx_push(struct lm_idx_ring *r, uint32_t idx);
/* Consumer: returns false when empty. Ownership of *idx moves to the caller. */
bool lm_ring_idx_pop(struct lm_idx_ring *r, uint32_t *idx);
uint32_t lm_ring_idx_fill(const struct lm_idx_ring *r);

/*
 * A text slot: JSON lines for events first_seq..last_seq, written by the serializer and read
 * by the ws thread and sinks. `text` has `headroom` writable bytes before it (LWS_PRE) so
 * the ws thread can frame it in place. Owned by whoever last popped its index.
 */
struct lm_txt_slot {
	uint64_t first_seq;
	uint64_t last_seq;
	uint32_t ev_cnt;	/* events in text (first_seq..last_seq) */
	uint32_t len;		/* bytes of text used */
	uint32_t cap;		/* bytes of text available */
	char *text;
};

struct lm_txt_pool;

/* Opens `n` slots of `cap` text bytes, each with `headroom` bytes in front. */
int lm_ring_pool_open(uint32_t n, uint32_t cap, uint32_t headroom, struct lm_txt_pool **out);
void lm_ring_pool_close(struct lm_txt_pool *p);
uint32_t lm_ring_pool_cnt(const struct lm_txt_pool *p);
struct lm_txt_slot *lm_ring_pool_slot(struct lm_txt_pool *p, uint32_t idx);

#endif /* LM_RING_H */
