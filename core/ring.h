/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Single-producer single-consumer rings and the text slot pool. ev_ring carries variable-size
 * kernel records reader -> serializer by value; idx rings (Concurrency Kit ck_ring) carry text
 * slot indices serializer -> ws (txt_ring) and ws -> serializer (free_ring).
 * Exactly one thread produces and one consumes each ring; all memory is allocated at open.
 */
#ifndef LM_RING_H
#define LM_RING_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/types.h>

#include "bpf/lm_event.h"

/*
 * One ev_ring entry: the stream sequence number the reader gave the record, then the kernel
 * record itself (`size` bytes at lm_rec_data(), 8-byte aligned).
 */
struct lm_rec {
	uint32_t ent_len;	/* ring bookkeeping: bytes of the whole entry */
	uint32_t size;		/* bytes of the kernel record */
	uint64_t seq;		/* events: their seq; CGROUP records: the next event's seq */
	uint64_t kernel_lost;	/* events lost in the kernel ring just before this one; 0 mostly */
	uint32_t cpu;		/* whose ring the record came from */
	uint32_t _pad;
};

static inline void *lm_rec_data(const struct lm_rec *e)
{
	return (char *)e + sizeof(*e);
}

struct lm_ev_ring;
struct lm_idx_ring;

/*
 * Opens a ring of `bytes` (a power of two >= 4096); an entry may take up to half of it.
 * Returns 0 and *out, -EINVAL for a bad size, -ENOMEM.
 */
int lm_ring_ev_open(uint32_t bytes, struct lm_ev_ring **out);
void lm_ring_ev_close(struct lm_ev_ring *r);

/*
 * Producer: returns room for an entry with a record of `size` bytes, its ent_len and size
 * set, to fill in place, or NULL when full (the caller waits; nothing is lost).
 * lm_ring_ev_commit publishes the entry reserved last.
 */
struct lm_rec *lm_ring_ev_reserve(struct lm_ev_ring *r, uint32_t size);
void lm_ring_ev_commit(struct lm_ev_ring *r);

/*
 * Consumer: returns the oldest entry, valid until lm_ring_ev_release gives it back, or NULL
 * when empty.
 */
const struct lm_rec *lm_ring_ev_peek(struct lm_ev_ring *r);
void lm_ring_ev_release(struct lm_ev_ring *r);

/* Bytes currently queued and the ring's size; approximate from a third thread. */
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
 * The index entry of one line of a text slot: where it is, and what the /ws filters test,
 * so the ws thread never parses JSON. The strings are raw bytes (not JSON), each followed by
 * a NUL, at str_off in the slot's `str` area, in this order: comm, exe, cgroup, container,
 * args (its arguments joined by single spaces). An absent one is empty and its LM_LINE_HAS_
 * flag clear.
 */
struct lm_line {
	uint64_t seq;		/* an event's seq; a notice: the seq of the event it precedes */
	uint64_t start_ns;	/* with pid, the process's key (its leader's start) */
	uint32_t off;		/* first byte in the slot's text */
	uint32_t len;		/* bytes, the '\n' included */
	uint32_t pid, ppid, uid;
	uint32_t str_off;
	uint32_t args_len;
	uint16_t exe_len, cgroup_len;
	uint8_t comm_len, container_len;
	uint8_t type;		/* LM_EV_EXEC, _EXIT, _OOM; 0: a notice (LOST), never filtered */
	uint8_t flags;		/* LM_LINE_* */
	uint32_t _pad;
};

#define LM_LINE_NONZERO_EXIT 0x01	/* EXIT with a non-zero code or a signal */
#define LM_LINE_HAS_EXE 0x02
#define LM_LINE_HAS_CGROUP 0x04
#define LM_LINE_HAS_CONTAINER 0x08
#define LM_LINE_HAS_ARGS 0x10

/* Lines a slot can index; a slot with this many is published. */
#define LM_RING_SLOT_LINES 512

/*
 * A text slot: JSON lines for events first_seq..last_seq, written by the serializer and read
 * by the ws thread and sinks, with an index entry per line and the raw strings the index
 * points to. `text` has `headroom` writable bytes before it. Owned by whoever last popped
 * its index.
 */
struct lm_txt_slot {
	uint64_t first_seq;
	uint64_t last_seq;
	uint32_t ev_cnt;	/* events in text (first_seq..last_seq) */
	uint32_t len;		/* bytes of text used */
	uint32_t cap;		/* bytes of text available */
	uint32_t line_cnt;	/* entries of `lines` used, at most LM_RING_SLOT_LINES */
	uint32_t str_len;	/* bytes of `str` used */
	uint32_t str_cap;	/* bytes of `str` available: `cap`, as a line's raw strings are
				 * never longer than its JSON */
	char *text;
	struct lm_line *lines;
	char *str;
};

struct lm_txt_pool;

/* Opens `n` slots of `cap` text bytes, each with `headroom` bytes in front. */
int lm_ring_pool_open(uint32_t n, uint32_t cap, uint32_t headroom, struct lm_txt_pool **out);
void lm_ring_pool_close(struct lm_txt_pool *p);
uint32_t lm_ring_pool_cnt(const struct lm_txt_pool *p);
struct lm_txt_slot *lm_ring_pool_slot(struct lm_txt_pool *p, uint32_t idx);

#endif /* LM_RING_H */
