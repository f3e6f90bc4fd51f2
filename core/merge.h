/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Merge: the kernel-time order of the per-CPU streams, for the lm-reader thread (pure: no
 * I/O, no threads). Records read from each CPU's ring are staged per CPU, sorted by ts_ns;
 * a record is released only when no record still unread in any ring can be older, which
 * each CPU's floor (a lower bound on the ts of its unread records) tells. Owns its staging.
 */
#ifndef LM_MERGE_H
#define LM_MERGE_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/types.h>

#include "bpf/lm_event.h"

struct lm_merge;

/*
 * A staged record: where the kernel record is (it stays in its kernel ring until released)
 * and what the reader learnt reading it. The merge looks only at ts_ns.
 */
struct lm_merge_rec {
	uint64_t ts_ns;
	uint64_t kernel_lost;	/* this CPU's failed reserves just before this record */
	const void *data;	/* the record's bytes */
	uint32_t size;
	uint32_t pend;		/* the reader's bookkeeping slot for the record */
	uint32_t cpu;		/* set by lm_merge_push */
};

/*
 * Opens a merge of `ncpus` streams, staging at most `stage_cnt` records per CPU (a power
 * of two). Returns 0 and *out, -EINVAL or -ENOMEM.
 */
int lm_merge_open(int ncpus, uint32_t stage_cnt, struct lm_merge **out);
void lm_merge_close(struct lm_merge *m);

/* True when cpu's staging is full: the caller leaves the rest in the kernel ring. */
bool lm_merge_is_full(const struct lm_merge *m, int cpu);

/*
 * Stages a record read from cpu's ring, in ring order. Returns 0, or -ENOSPC when cpu's
 * staging is full (nothing is taken; check lm_merge_is_full first).
 */
int lm_merge_push(struct lm_merge *m, int cpu, const struct lm_merge_rec *rec);

/*
 * Raises cpu's floor: every record still unread in cpu's ring has ts_ns > floor_ns. A lower
 * value than the current floor is ignored (floors only rise).
 */
void lm_merge_raise_floor(struct lm_merge *m, int cpu, uint64_t floor_ns);

/*
 * Takes the oldest staged record into *out if no unread record can be older (its ts_ns is
 * at most every CPU's floor). `all` takes the oldest staged record regardless (final drain,
 * or a forced release when staging is full). Returns false when nothing may be taken.
 */
bool lm_merge_pop(struct lm_merge *m, bool all, struct lm_merge_rec *out);

/* Records staged over all CPUs. */
uint32_t lm_merge_staged(const struct lm_merge *m);

#endif /* LM_MERGE_H */
