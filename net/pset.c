// SPDX-License-Identifier: GPL-2.0
/*
 * Process set (see net/pset.h): an open-addressing hash table with linear probing and
 * backward-shift deletion (no tombstones), at most half full, plus a FIFO of what was added,
 * which says what to forget when full. lm-ws thread only.
 */
#include "net/pset.h"

#include <errno.h>
#include <stdlib.h>

#define LM_PSET_SLOTS (2 * LM_PSET_MAX)

struct lm_pset_key {
	uint64_t start_ns;
	uint32_t pid;
	bool used;
};

struct lm_pset {
	struct lm_pset_key slot[LM_PSET_SLOTS];
	struct lm_pset_key fifo[LM_PSET_MAX];	/* additions, oldest at head */
	uint32_t head, cnt;			/* FIFO */
	uint32_t len;				/* keys in the table */
};

int lm_pset_open(struct lm_pset **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

void lm_pset_close(struct lm_pset *s)
{
	free(s);
}

static uint32_t lm_pset_hash(uint32_t pid, uint64_t start_ns)
{
	uint64_t h = (start_ns ^ ((uint64_t)pid << 32 | pid)) * 0x9e3779b97f4a7c15ULL;

	return (uint32_t)(h >> 32) & (LM_PSET_SLOTS - 1);
}

/* The slot holding the key, or the empty slot where it would go. */
static uint32_t lm_pset_find(const struct lm_pset *s, uint32_t pid, uint64_t start_ns)
{
	uint32_t i = lm_pset_hash(pid, start_ns);

	while (s->slot[i].used && (s->slot[i].pid != pid || s->slot[i].start_ns != start_ns))
		i = (i + 1) & (LM_PSET_SLOTS - 1);
	return i;
}

bool lm_pset_has(const struct lm_pset *s, uint32_t pid, uint64_t start_ns)
{
	return s->slot[lm_pset_find(s, pid, start_ns)].used;
}

bool lm_pset_del(struct lm_pset *s, uint32_t pid, uint64_t start_ns)
{
	uint32_t i = lm_pset_find(s, pid, start_ns), j, home;

	if (!s->slot[i].used)
		return false;
	/* backward shift: move later keys of the run into the hole when their home allows */
	for (j = (i + 1) & (LM_PSET_SLOTS - 1); s->slot[j].used;
	     j = (j + 1) & (LM_PSET_SLOTS - 1)) {
		home = lm_pset_hash(s->slot[j].pid, s->slot[j].start_ns);
		/* j's home is cyclically outside (i, j]: it may move to i */
		if (((j - home) & (LM_PSET_SLOTS - 1)) >= ((j - i) & (LM_PSET_SLOTS - 1))) {
			s->slot[i] = s->slot[j];
			i = j;
		}
	}
	s->slot[i].used = false;
	s->len--;
	return true;
}

void lm_pset_add(struct lm_pset *s, uint32_t pid, uint64_t start_ns)
{
	uint32_t i = lm_pset_find(s, pid, start_ns);

	if (s->slot[i].used)
		return;
	if (s->cnt == LM_PSET_MAX) {
		/* forget the oldest addition (a no-op if it already exited) */
		struct lm_pset_key *old = &s->fifo[s->head];

		lm_pset_del(s, old->pid, old->start_ns);
		s->head = (s->head + 1) % LM_PSET_MAX;
		s->cnt--;
		/* a deletion may have moved the empty slot we found */
		i = lm_pset_find(s, pid, start_ns);
	}
	s->slot[i] = (struct lm_pset_key){ .start_ns = start_ns, .pid = pid, .used = true };
	s->len++;
	s->fifo[(s->head + s->cnt) % LM_PSET_MAX] = s->slot[i];
	s->cnt++;
}

uint32_t lm_pset_len(const struct lm_pset *s)
{
	return s->len;
}
