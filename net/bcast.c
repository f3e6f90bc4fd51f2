// SPDX-License-Identifier: GPL-2.0
/*
 * Broadcast ring on the lm-ws thread: positions grow without bound (u64), entry i lives at
 * i & mask, and [tail, head) are the entries kept. Readers are plain cursors, so a client
 * costs no memory here and can never hold an entry back.
 */
#include "net/bcast.h"

#include <errno.h>
#include <stdlib.h>

struct lm_bcast {
	struct lm_bcast_entry *e;
	uint32_t cap;
	uint64_t head;	/* position of the next push */
	uint64_t tail;	/* oldest position kept */
	uint64_t next_seq; /* first seq of the next push: seqs are contiguous, from 1 */
};

int lm_bcast_open(uint32_t cap, struct lm_bcast **out)
{
	struct lm_bcast *b;

	*out = NULL;
	if (cap < 2 || (cap & (cap - 1)))
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->e = calloc(cap, sizeof(*b->e));
	if (!b->e) {
		free(b);
		return -ENOMEM;
	}
	b->cap = cap;
	b->next_seq = 1;
	*out = b;
	return 0;
}

void lm_bcast_close(struct lm_bcast *b)
{
	if (!b)
		return;
	free(b->e);
	free(b);
}

int lm_bcast_push(struct lm_bcast *b, const struct lm_bcast_entry *e, uint32_t *evicted)
{
	int ret = 0;

	if (b->head - b->tail == b->cap) {
		*evicted = b->e[b->tail & (b->cap - 1)].slot;
		b->tail++;
		ret = 1;
	}
	b->e[b->head & (b->cap - 1)] = *e;
	b->head++;
	b->next_seq = e->last_seq + 1;
	return ret;
}

uint32_t lm_bcast_len(const struct lm_bcast *b)
{
	return (uint32_t)(b->head - b->tail);
}

bool lm_bcast_pop_oldest(struct lm_bcast *b, uint32_t *slot)
{
	if (b->head == b->tail)
		return false;
	*slot = b->e[b->tail & (b->cap - 1)].slot;
	b->tail++;
	return true;
}

void lm_bcast_cursor_init(const struct lm_bcast *b, struct lm_bcast_cursor *c)
{
	c->pos = b->head;
	c->next_seq = b->next_seq;
}

uint64_t lm_bcast_behind(const struct lm_bcast *b, const struct lm_bcast_cursor *c)
{
	return b->head - c->pos;
}

void lm_bcast_catch_up(const struct lm_bcast *b, struct lm_bcast_cursor *c,
		       struct lm_bcast_loss *loss)
{
	const struct lm_bcast_entry *e;

	loss->cnt = 0;
	if (c->pos >= b->tail)
		return;
	/* the entries it had not read were evicted: report their seqs, skip to the tail */
	e = &b->e[b->tail & (b->cap - 1)];
	c->pos = b->tail;
	if (e->first_seq > c->next_seq) {
		loss->first_seq = c->next_seq;
		loss->last_seq = e->first_seq - 1;
		loss->cnt = e->first_seq - c->next_seq;
	}
	c->next_seq = e->first_seq;
}

const struct lm_bcast_entry *lm_bcast_next(const struct lm_bcast *b, struct lm_bcast_cursor *c,
					   struct lm_bcast_loss *loss)
{
	const struct lm_bcast_entry *e;

	lm_bcast_catch_up(b, c, loss);
	if (c->pos >= b->head)
		return NULL;
	e = &b->e[c->pos & (b->cap - 1)];
	c->pos++;
	c->next_seq = e->last_seq + 1;
	return e;
}
