/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Loader: opens, loads and attaches the BPF skeleton, owns the per-CPU ring buffer maps and
 * reads the kernel-side counters. Runs on the main thread, except lm_load_read_counters,
 * which any thread may call (it only reads maps).
 */
#ifndef LM_LOADER_H
#define LM_LOADER_H

#include <stdbool.h>
#include <stdint.h>

#include "bpf/lm_event.h"

struct lm_load;

struct lm_load_opts {
	uint32_t ring_bytes; /* per-CPU ring size: a power of two and a page multiple */
	uint32_t bench_tgid; /* benchmarks only: also attach lm_bench for this process; 0 = no */
	uint32_t max_args_bytes; /* --max-args-bytes: LM_ARGS_MIN..LM_ARGS_MAX */
	int memcg_hier;	     /* v1 hierarchy id of the memory controller; -1: on v2 or none */
};

/* Scratch slots per CPU in the BPF programs (bpf/lifemon.bpf.c LM_SCRATCH_SLOTS). */
#define LM_LOAD_SCRATCH_SLOTS 4

/* The largest record the programs write with a cap of `max_args` argument bytes. */
uint32_t lm_load_record_max(uint32_t max_args);

/* Kernel-side totals, summed over CPUs, indexed by LM_EV_*. */
struct lm_load_counters {
	uint64_t seen[LM_EV_TYPE_CNT];
	uint64_t dropped[LM_EV_TYPE_CNT];
	/* optional, caller-owned: ncpus * LM_EV_TYPE_CNT drops, [cpu * LM_EV_TYPE_CNT + type] */
	uint64_t *dropped_cpu;
};

/*
 * Opens and loads the programs (nothing attached yet) and creates one ring buffer per
 * possible CPU. Picks the program variants that match the running kernel's BTF.
 * Returns 0 and *out, -EINVAL for a bad ring size, or the -errno libbpf or the kernel gave.
 */
int lm_load_open(const struct lm_load_opts *opts, struct lm_load **out);

/* Attaches every loaded program. Returns 0 or -errno; on failure nothing stays attached. */
int lm_load_attach(struct lm_load *l);

/* Detaches every program (idempotent). */
void lm_load_detach(struct lm_load *l);

bool lm_load_is_attached(const struct lm_load *l);

/* Number of per-CPU rings and their fds (owned by the loader, valid until close). */
int lm_load_ring_cnt(const struct lm_load *l);
const int *lm_load_ring_fds(const struct lm_load *l);

/* Which program variants were chosen, for the startup log line. */
const char *lm_load_variant(const struct lm_load *l);

/* Possible CPUs: the number of rings and of per-CPU counter slots. */
int lm_load_cpu_cnt(const struct lm_load *l);

/*
 * Sums the per-CPU counters, and fills out->dropped_cpu if set. Returns 0, -ENOMEM or
 * -errno from the map lookup. Any thread.
 */
int lm_load_read_counters(const struct lm_load *l, struct lm_load_counters *out);

/* Detaches and frees everything; accepts NULL. */
void lm_load_close(struct lm_load *l);

#endif /* LM_LOADER_H */
