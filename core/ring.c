// SPDX-License-Identifier: GPL-2.0
/*
 * Typed SPSC rings over ck_ring and the text slot pool. ev_ring: reader thread produces,
 * serializer consumes. txt_ring: serializer -> ws; free_ring: ws -> serializer.
 * ck_ring publishes with a store fence before the producer's tail store and the consumer
 * loads the tail before reading a slot, so a popped slot's bytes are always complete.
 */
#include "core/ring.h"

#include <errno.h>
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

_Static_assert(sizeof(struct lm_event) == 112, "lm_event ABI size");
_Static_assert(offsetof(struct lm_event, t0_ns) == 104, "lm_event t0_ns offset");
_Static_assert(offsetof(struct lm_event, cpu_drops) == 96, "lm_event cpu_drops offset");
_Static_assert(offsetof(struct lm_event, comm) == 80, "lm_event comm offset");
_Static_assert(offsetof(struct lm_event, exit_status) == 32, "lm_event exit_status offset");

struct lm_idx {
	uint32_t v;
};

CK_RING_PROTOTYPE(lm_rec, lm_rec)
CK_RING_PROTOTYPE(lm_idx, lm_idx)

struct lm_ev_ring {
	struct ck_ring ring;
	struct lm_rec *buf;
};

struct lm_idx_ring {
	struct ck_ring ring;
	struct lm_idx *buf;
};

struct lm_txt_pool {
	struct lm_txt_slot *slots;
	char *mem;
	uint32_t n;
};

static bool lm_ring_is_valid_size(uint32_t slots)
{
	return slots >= 2 && (slots & (slots - 1)) == 0;
}

int lm_ring_ev_open(uint32_t slots, struct lm_ev_ring **out)
{
	struct lm_ev_ring *r;

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

void lm_ring_ev_close(struct lm_ev_ring *r)
{
	if (!r)
		return;
	free(r->buf);
	free(r);
}

struct lm_rec *lm_ring_ev_reserve(struct lm_ev_ring *r)
{
	struct lm_rec *slot = ck_ring_enqueue_reserve_spsc_lm_rec(&r->ring, r->buf);

	if (slot)
		lm_ring_tsan_acquire(slot);
	return slot;
}

void lm_ring_ev_commit(struct lm_ev_ring *r)
{
	lm_ring_tsan_release(&r->buf[r->ring.p_tail & r->ring.mask]);
	/* release: the slot bytes written after reserve become visible before the new tail */
	ck_ring_enqueue_commit_spsc(&r->ring);
}

bool lm_ring_ev_pop(struct lm_ev_ring *r, struct lm_rec *out)
{
	struct lm_rec *slot = &r->buf[r->ring.c_head & r->ring.mask];

#ifdef LM_RING_TSAN
	if (!ck_ring_size(&r->ring))
		return false;
#endif
	lm_ring_tsan_acquire(slot);
	/* acquire: pairs with the producer's commit; the slot is complete once the tail says so */
	if (!ck_ring_dequeue_spsc_lm_rec(&r->ring, r->buf, out))
		return false;
	lm_ring_tsan_release(slot);
	return true;
}

uint32_t lm_ring_ev_fill(const struct lm_ev_ring *r)
{
	return ck_ring_size(&r->ring);
}

uint32_t lm_ring_ev_capacity(const struct lm_ev_ring *r)
{
	return ck_ring_capacity(&r->ring) - 1;
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
	if (!p->slots || !p->mem) {
		lm_ring_pool_close(p);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		p->slots[i].cap = cap;
		p->slots[i].text = p->mem + stride * i + headroom;
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
