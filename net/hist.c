// SPDX-License-Identifier: GPL-2.0
/*
 * Replay history (see net/hist.h): a byte ring of chunks, used only by the lm-ws thread.
 * Chunks never wrap: when the room before the ring's end is too small, a skip marker is left
 * there and the chunk starts at offset 0, as in ev_ring.
 */
#include "net/hist.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LM_HIST_ALIGN 64

struct lm_hist {
	char *mem;
	size_t size;		/* ring bytes, a multiple of LM_HIST_ALIGN */
	uint64_t tail, head;	/* free-running byte positions; tail is always a chunk's start */
	uint64_t text_budget;
	uint64_t text_bytes;	/* JSON text held */
	uint64_t next_seq;	/* seq after the newest chunk's last */
	uint64_t newest;	/* position of the newest chunk */
	uint32_t headroom;
	uint32_t len;		/* chunks held */
};

static size_t lm_hist_round(size_t n, size_t a)
{
	return (n + a - 1) & ~(a - 1);
}

size_t lm_hist_chunk_bytes(const struct lm_txt_slot *slot, uint32_t headroom)
{
	size_t n = lm_hist_round(sizeof(struct lm_hist_chunk) + headroom, 16);

	n += lm_hist_round(slot->len, 8);
	n += (size_t)slot->line_cnt * sizeof(struct lm_line);
	n += slot->str_len;
	return lm_hist_round(n, LM_HIST_ALIGN);
}

int lm_hist_open(size_t ring_bytes, uint64_t text_budget, uint32_t headroom,
		 struct lm_hist **out)
{
	struct lm_hist *h;

	*out = NULL;
	if (ring_bytes < 4096 || ring_bytes % LM_HIST_ALIGN || !text_budget)
		return -EINVAL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->mem = aligned_alloc(LM_HIST_ALIGN, ring_bytes);
	if (!h->mem) {
		free(h);
		return -ENOMEM;
	}
	h->size = ring_bytes;
	h->text_budget = text_budget;
	h->headroom = headroom;
	h->next_seq = 1;
	*out = h;
	return 0;
}

void lm_hist_close(struct lm_hist *h)
{
	if (!h)
		return;
	free(h->mem);
	free(h);
}

/* Ring bytes a chunk of `need` bytes takes at head, the skipped end included. */
static size_t lm_hist_cost(const struct lm_hist *h, size_t need)
{
	size_t off = (size_t)(h->head % h->size);

	return off + need > h->size ? need + (h->size - off) : need;
}

bool lm_hist_has_room(const struct lm_hist *h, const struct lm_txt_slot *slot)
{
	size_t need = lm_hist_chunk_bytes(slot, h->headroom);

	return lm_hist_cost(h, need) <= h->size - (size_t)(h->head - h->tail) &&
	       (!h->len || h->text_bytes + slot->len <= h->text_budget);
}

int lm_hist_append(struct lm_hist *h, const struct lm_txt_slot *slot)
{
	size_t need = lm_hist_chunk_bytes(slot, h->headroom);
	size_t off = (size_t)(h->head % h->size);
	struct lm_hist_chunk *c;
	char *p;

	if (need > h->size / 4 || !slot->ev_cnt || !slot->line_cnt)
		return -EINVAL;
	if (!lm_hist_has_room(h, slot))
		return -ENOSPC;
	if (off + need > h->size) {
		/* skip marker: readers jump to the ring's start */
		((struct lm_hist_chunk *)(h->mem + off))->ent_len = 0;
		h->head += h->size - off;
		off = 0;
	}
	c = (struct lm_hist_chunk *)(h->mem + off);
	h->newest = h->head;
	c->ent_len = (uint32_t)need;
	c->line_cnt = slot->line_cnt;
	c->text_len = slot->len;
	c->ev_cnt = slot->ev_cnt;
	c->first_seq = slot->first_seq;
	c->last_seq = slot->last_seq;
	c->text_off = (uint32_t)lm_hist_round(sizeof(*c) + h->headroom, 16);
	c->lines_off = c->text_off + (uint32_t)lm_hist_round(slot->len, 8);
	c->str_off = c->lines_off + slot->line_cnt * (uint32_t)sizeof(struct lm_line);
	c->_pad = 0;
	p = (char *)c;
	memcpy(p + c->text_off, slot->text, slot->len);
	memcpy(p + c->lines_off, slot->lines, slot->line_cnt * sizeof(struct lm_line));
	memcpy(p + c->str_off, slot->str, slot->str_len);
	h->head += need;
	h->text_bytes += slot->len;
	h->next_seq = slot->last_seq + 1;
	h->len++;
	return 0;
}

/* The chunk at a position, following a skip marker there. */
static struct lm_hist_chunk *lm_hist_chunk_at(const struct lm_hist *h, uint64_t *pos)
{
	struct lm_hist_chunk *c = (struct lm_hist_chunk *)(h->mem + *pos % h->size);

	if (!c->ent_len) {
		*pos += h->size - *pos % h->size;
		c = (struct lm_hist_chunk *)h->mem;
	}
	return c;
}

bool lm_hist_evict(struct lm_hist *h)
{
	const struct lm_hist_chunk *c;

	if (!h->len)
		return false;
	c = lm_hist_at(h, h->tail);
	h->text_bytes -= c->text_len;
	h->tail = lm_hist_next(h, h->tail);
	h->len--;
	if (!h->len)
		h->tail = h->head;
	return true;
}

uint64_t lm_hist_newest(const struct lm_hist *h)
{
	return h->len ? h->newest : h->head;
}

uint64_t lm_hist_tail(const struct lm_hist *h)
{
	return h->tail;
}

uint64_t lm_hist_head(const struct lm_hist *h)
{
	return h->head;
}

const struct lm_hist_chunk *lm_hist_at(const struct lm_hist *h, uint64_t pos)
{
	if (pos < h->tail || pos >= h->head)
		return NULL;
	return lm_hist_chunk_at(h, &pos);
}

uint64_t lm_hist_next(const struct lm_hist *h, uint64_t pos)
{
	const struct lm_hist_chunk *c = lm_hist_chunk_at(h, &pos);

	pos += c->ent_len;
	/* a skip marker right after: the next chunk is at the ring's start */
	if (pos < h->head && !((struct lm_hist_chunk *)(h->mem + pos % h->size))->ent_len)
		pos += h->size - pos % h->size;
	return pos;
}

uint64_t lm_hist_first_seq(const struct lm_hist *h)
{
	uint64_t pos = h->tail;

	if (!h->len)
		return 0;
	return lm_hist_chunk_at(h, &pos)->first_seq;
}

uint64_t lm_hist_next_seq(const struct lm_hist *h)
{
	return h->next_seq;
}

uint32_t lm_hist_len(const struct lm_hist *h)
{
	return h->len;
}

uint64_t lm_hist_text_bytes(const struct lm_hist *h)
{
	return h->text_bytes;
}

void lm_hist_seek(const struct lm_hist *h, uint64_t since, uint64_t *pos, uint32_t *line)
{
	uint64_t p = h->tail;
	uint32_t i;

	*line = 0;
	while (p < h->head) {
		const struct lm_hist_chunk *c = lm_hist_chunk_at(h, &p);
		const struct lm_line *l = lm_hist_lines(c);

		if (c->last_seq >= since) {
			for (i = 0; i < c->line_cnt && l[i].seq < since; i++)
				;
			*pos = p;
			*line = i;
			return;
		}
		p = lm_hist_next(h, p);
	}
	*pos = h->head;
}
