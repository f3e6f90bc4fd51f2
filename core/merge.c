// SPDX-License-Identifier: GPL-2.0
/*
 * Merge: per-CPU staging queues sorted by ts_ns, and the release rule of the kernel-time
 * order. Called only by the lm-reader thread; pure, so tests drive it with made-up streams.
 */
#include "core/merge.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct lm_merge_cpu {
	struct lm_merge_rec *q; /* stage_cnt records, sorted by ts_ns from head */
	uint32_t head, tail;	/* free-running; tail - head records staged */
	uint64_t floor_ns;	/* every record still unread in this CPU's ring is newer */
};

struct lm_merge {
	struct lm_merge_cpu *cpus;
	int ncpus;
	uint32_t mask; /* stage_cnt - 1 */
	uint32_t staged;
};

int lm_merge_open(int ncpus, uint32_t stage_cnt, struct lm_merge **out)
{
	struct lm_merge *m;
	int i, err = 0;

	*out = NULL;
	if (ncpus <= 0 || stage_cnt < 2 || (stage_cnt & (stage_cnt - 1)))
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->ncpus = ncpus;
	m->mask = stage_cnt - 1;
	m->cpus = calloc(ncpus, sizeof(*m->cpus));
	if (!m->cpus) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < ncpus; i++) {
		m->cpus[i].q = calloc(stage_cnt, sizeof(*m->cpus[i].q));
		if (!m->cpus[i].q) {
			err = -ENOMEM;
			goto out;
		}
	}
	*out = m;
	m = NULL;
out:
	lm_merge_close(m);
	return err;
}

void lm_merge_close(struct lm_merge *m)
{
	int i;

	if (!m)
		return;
	for (i = 0; m->cpus && i < m->ncpus; i++)
		free(m->cpus[i].q);
	free(m->cpus);
	free(m);
}

bool lm_merge_is_full(const struct lm_merge *m, int cpu)
{
	const struct lm_merge_cpu *c = &m->cpus[cpu];

	return c->tail - c->head > m->mask;
}

int lm_merge_push(struct lm_merge *m, int cpu, const struct lm_merge_rec *rec)
{
	struct lm_merge_cpu *c = &m->cpus[cpu];
	uint32_t i;

	if (lm_merge_is_full(m, cpu))
		return -ENOSPC;
	/*
	 * Ring order is ts order on a CPU except where a program was preempted between its
	 * reserve and its clock read; then the record moves back past the few that overtook
	 * it. The usual case does no move at all.
	 */
	for (i = c->tail; i != c->head && c->q[(i - 1) & m->mask].ts_ns > rec->ts_ns; i--)
		c->q[i & m->mask] = c->q[(i - 1) & m->mask];
	c->q[i & m->mask] = *rec;
	c->q[i & m->mask].cpu = (uint32_t)cpu;
	c->tail++;
	m->staged++;
	return 0;
}

void lm_merge_raise_floor(struct lm_merge *m, int cpu, uint64_t floor_ns)
{
	struct lm_merge_cpu *c = &m->cpus[cpu];

	if (floor_ns > c->floor_ns)
		c->floor_ns = floor_ns;
}

bool lm_merge_pop(struct lm_merge *m, bool all, struct lm_merge_rec *out)
{
	struct lm_merge_cpu *best = NULL;
	uint64_t floor_ns = UINT64_MAX;
	int i;

	if (!m->staged)
		return false;
	for (i = 0; i < m->ncpus; i++) {
		struct lm_merge_cpu *c = &m->cpus[i];

		if (c->floor_ns < floor_ns)
			floor_ns = c->floor_ns;
		if (c->head == c->tail)
			continue;
		if (!best ||
		    c->q[c->head & m->mask].ts_ns < best->q[best->head & m->mask].ts_ns)
			best = c;
	}
	/* staged records of one CPU are sorted, so best's head is the oldest staged of all */
	if (!all && best->q[best->head & m->mask].ts_ns > floor_ns)
		return false;
	*out = best->q[best->head & m->mask];
	best->head++;
	m->staged--;
	return true;
}

uint32_t lm_merge_staged(const struct lm_merge *m)
{
	return m->staged;
}
