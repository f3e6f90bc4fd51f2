// SPDX-License-Identifier: GPL-2.0
/*
 * SPSC rings and the text slot pool. ev_ring (a byte ring, below): reader thread produces,
 * serializer consumes. txt_ring: serializer -> ws; free_ring: ws -> serializer, over ck_ring,
 * which publishes with a store fence before the producer's tail store; the consumer loads
 * the tail before reading a slot, so a popped slot's bytes are always complete.
 */
#include "core/ring.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>

#include <ck_ring.h>

/*
 * ck_ring orders its slots with ck_pr fences written in inline assembly, which ThreadSanitizer
 * cannot see. Under TSan only, the same edges are stated per slot: the producer releases a
 * slot before publishing it and acquires it when it reserves it again; the consumer checks
 * the ring is non-empty (so that release already happened), acquires the slot, copies it,
 * then releases it for reuse. Other builds compile none of this.
 */
#if defined(__SANITIZE_THREAD__)
#define LM_RING_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define LM_RING_TSAN 1
#endif
#endif
#ifdef LM_RING_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define lm_ring_tsan_acquire(p) __tsan_acquire(p)
#define lm_ring_tsan_release(p) __tsan_release(p)
#else
#define lm_ring_tsan_acquire(p) ((void)(p))
#define lm_ring_tsan_release(p) ((void)(p))
#endif

struct lm_idx {
	uint32_t v;
};

CK_RING_PROTOTYPE(lm_idx, lm_idx)

/*
 * ev_ring is a byte ring of variable-size entries (struct lm_rec and its record, 8-aligned),
 * hand-written because ck_ring only moves fixed-size slots. An entry never wraps: where the
 * room left before the end is too small, the producer writes ent_len 0 there and starts over
 * at offset 0. head and tail are free-running byte positions; C11 atomics order them, so
 * ThreadSanitizer sees the edges without help.
 */
struct lm_ev_ring {
	_Alignas(64) _Atomic uint64_t head; /* producer: bytes committed */
	uint64_t resv_end;		    /* producer only: head after the reserved entry */
	_Alignas(64) _Atomic uint64_t tail; /* consumer: bytes released */
	uint64_t peek_pos;		    /* consumer only: position of the peeked entry */
	_Alignas(64) char *buf;
	uint64_t cap;
};

struct lm_idx_ring {
	struct ck_ring ring;
	struct lm_idx *buf;
};

struct lm_txt_pool {
	struct lm_txt_slot *slots;
	char *mem;		/* every slot's headroom and text */
	struct lm_line *lines;	/* every slot's line index */
	char *str;		/* every slot's filter strings */
	uint32_t n;
};

static bool lm_ring_is_valid_size(uint32_t slots)
{
	return slots >= 2 && (slots & (slots - 1)) == 0;
}

static uint32_t lm_ring_ent_len(uint32_t size)
{
	return (uint32_t)((sizeof(struct lm_rec) + size + 7) & ~(size_t)7);
}

int lm_ring_ev_open(uint32_t bytes, struct lm_ev_ring **out)
{
	struct lm_ev_ring *r;

	*out = NULL;
	if (bytes < 4096 || (bytes & (bytes - 1)))
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->buf = aligned_alloc(64, bytes);
	if (!r->buf) {
		free(r);
		return -ENOMEM;
	}
	r->cap = bytes;
	atomic_init(&r->head, 0);
	atomic_init(&r->tail, 0);
	*out = r;
	return 0;
}

void lm_ring_ev_close(struct lm_ev_ring *r)
{
	if (!r)
		return;
	free(r->buf);
	free(r);
}

struct lm_rec *lm_ring_ev_reserve(struct lm_ev_ring *r, uint32_t size)
{
	/* relaxed: only this thread writes head */
	uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	/* acquire: pairs with the consumer's release; the bytes it gave back are free */
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
	uint64_t off = head & (r->cap - 1), room = r->cap - off;
	uint32_t len = lm_ring_ent_len(size);
	struct lm_rec *e;

	if (len > r->cap / 2)
		return NULL;
	if (room < len) {
		/* the entry goes to offset 0; the rest of the end is skipped */
		if (r->cap - (head - tail) < room + len)
			return NULL;
		((struct lm_rec *)(r->buf + off))->ent_len = 0;
		head += room;
		off = 0;
	} else if (r->cap - (head - tail) < len) {
		return NULL;
	}
	e = (struct lm_rec *)(r->buf + off);
	e->ent_len = len;
	e->size = size;
	r->resv_end = head + len;
	return e;
}

void lm_ring_ev_commit(struct lm_ev_ring *r)
{
	/* release: the entry (and any skip marker) is complete before the new head shows */
	atomic_store_explicit(&r->head, r->resv_end, memory_order_release);
}

const struct lm_rec *lm_ring_ev_peek(struct lm_ev_ring *r)
{
	/* relaxed: only this thread writes tail */
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	/* acquire: pairs with lm_ring_ev_commit; entries before head are complete */
	uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);

	while (tail != head) {
		uint64_t off = tail & (r->cap - 1);
		const struct lm_rec *e = (const struct lm_rec *)(r->buf + off);

		if (e->ent_len) {
			r->peek_pos = tail;
			return e;
		}
		tail += r->cap - off; /* skip marker: the entry is at offset 0 */
	}
	return NULL;
}

void lm_ring_ev_release(struct lm_ev_ring *r)
{
	const struct lm_rec *e = (const struct lm_rec *)(r->buf + (r->peek_pos & (r->cap - 1)));

	/* release: we are done reading the entry before the producer may overwrite it */
	atomic_store_explicit(&r->tail, r->peek_pos + e->ent_len, memory_order_release);
}

uint32_t lm_ring_ev_fill(const struct lm_ev_ring *r)
{
	return (uint32_t)(atomic_load_explicit(&r->head, memory_order_relaxed) -
			  atomic_load_explicit(&r->tail, memory_order_relaxed));
}

uint32_t lm_ring_ev_capacity(const struct lm_ev_ring *r)
{
	return (uint32_t)r->cap;
}

int lm_ring_idx_open(uint32_t slots, struct lm_idx_ring **out)
{
	struct lm_idx_ring *r;

	*out = NULL;
	if (!lm_ring_is_valid_size(slots))
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->buf = calloc(slots, sizeof(*r->buf));
	if (!r->buf) {
		free(r);
		return -ENOMEM;
	}
	ck_ring_init(&r->ring, slots);
	*out = r;
	return 0;
}

void lm_ring_idx_close(struct lm_idx_ring *r)
{
	if (!r)
		return;
	free(r->buf);
	free(r);
}

bool lm_ring_idx_push(struct lm_idx_ring *r, uint32_t idx)
{
	struct lm_idx *slot = ck_ring_enqueue_reserve_spsc_lm_idx(&r->ring, r->buf);

	if (!slot)
		return false;
	lm_ring_tsan_acquire(slot);
	slot->v = idx;
	lm_ring_tsan_release(slot);
	/* release: whatever the pusher wrote into slot idx is visible to the popper */
	ck_ring_enqueue_commit_spsc(&r->ring);
	return true;
}

bool lm_ring_idx_pop(struct lm_idx_ring *r, uint32_t *idx)
{
	struct lm_idx *slot = &r->buf[r->ring.c_head & r->ring.mask];
	struct lm_idx v;

#ifdef LM_RING_TSAN
	if (!ck_ring_size(&r->ring))
		return false;
#endif
	lm_ring_tsan_acquire(slot);
	/* acquire: pairs with the push; the slot's contents are complete */
	if (!ck_ring_dequeue_spsc_lm_idx(&r->ring, r->buf, &v))
		return false;
	lm_ring_tsan_release(slot);
	*idx = v.v;
	return true;
}

uint32_t lm_ring_idx_fill(const struct lm_idx_ring *r)
{
	return ck_ring_size(&r->ring);
}

int lm_ring_pool_open(uint32_t n, uint32_t cap, uint32_t headroom, struct lm_txt_pool **out)
{
	struct lm_txt_pool *p;
	size_t stride;
	uint32_t i;

	*out = NULL;
	if (!n || !cap)
		return -EINVAL;
	/* keep every slot's text 16-byte aligned, as LWS_PRE padding assumes */
	headroom = (headroom + 15) & ~15u;
	stride = (size_t)headroom + ((cap + 15) & ~(size_t)15);
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->slots = calloc(n, sizeof(*p->slots));
	/* C11: the size must be a multiple of the alignment */
	p->mem = aligned_alloc(64, (stride * n + 63) & ~(size_t)63);
	p->lines = calloc((size_t)n * LM_RING_SLOT_LINES, sizeof(*p->lines));
	p->str = malloc((size_t)n * cap);
	if (!p->slots || !p->mem || !p->lines || !p->str) {
		lm_ring_pool_close(p);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		p->slots[i].cap = cap;
		p->slots[i].text = p->mem + stride * i + headroom;
		p->slots[i].lines = p->lines + (size_t)i * LM_RING_SLOT_LINES;
		p->slots[i].str_cap = cap;
		p->slots[i].str = p->str + (size_t)i * cap;
	}
	p->n = n;
	*out = p;
	return 0;
}

void lm_ring_pool_close(struct lm_txt_pool *p)
{
	if (!p)
		return;
	free(p->slots);
	free(p->mem);
	free(p->lines);
	free(p->str);
	free(p);
}

uint32_t lm_ring_pool_cnt(const struct lm_txt_pool *p)
{
	return p->n;
}

struct lm_txt_slot *lm_ring_pool_slot(struct lm_txt_pool *p, uint32_t idx)
{
	return &p->slots[idx];
}
