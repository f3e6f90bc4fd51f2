/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Process set: the processes (pid and start time, as in an event's key) whose EXEC matched a
 * /ws client's exe= or args= filter, so that their EXIT and OOM_KILL, which carry neither,
 * match too. One per such client, on the lm-ws thread; fixed memory. When full, the process
 * remembered longest ago is forgotten first.
 */
#ifndef LM_PSET_H
#define LM_PSET_H

#include <stdbool.h>
#include <stdint.h>

/* Processes remembered at most; the table has twice as many slots. */
#define LM_PSET_MAX 4096

struct lm_pset;

/* Returns 0 and *out, or -ENOMEM. */
int lm_pset_open(struct lm_pset **out);
void lm_pset_close(struct lm_pset *s);

/* Remembers a process (again: no change). Forgets the oldest one when full. */
void lm_pset_add(struct lm_pset *s, uint32_t pid, uint64_t start_ns);

/* Whether the process is remembered. */
bool lm_pset_has(const struct lm_pset *s, uint32_t pid, uint64_t start_ns);

/* Forgets a process (it exited). Returns whether it was remembered. */
bool lm_pset_del(struct lm_pset *s, uint32_t pid, uint64_t start_ns);

/* Processes remembered now. */
uint32_t lm_pset_len(const struct lm_pset *s);

#endif /* LM_PSET_H */
