/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Test helper: writes kernel-format records (bpf/lm_event.h) as the BPF programs do, from a
 * description, and places byte buffers right before a PROT_NONE guard page so a read past
 * them faults. Used by the unit tests of core/rec.c and core/json.c; single-threaded.
 */
#ifndef LM_TEST_REC_BUILD_H
#define LM_TEST_REC_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "bpf/lm_event.h"

/* Bytes with a length: may hold NULs. A NULL p with len 0 is an empty string. */
struct rb_bytes {
	const char *p;
	size_t len;
};

/* A string literal, embedded NULs included, without its terminating NUL */
#define RB_LIT(s) ((struct rb_bytes){ (s), sizeof(s) - 1 })

/* Everything a record carries; lengths come from the rb_bytes. */
struct rb_spec {
	uint8_t type;
	uint8_t flags;
	uint32_t pid, tid, ppid, uid;
	uint32_t aux; /* EXEC gid, EXIT wait status, OOM oom_score_adj */
	uint32_t t0_back_ns, cpu_drops;
	uint64_t ts_ns, start_ns, pstart_ns, cgroup_id, memcg_id;
	struct rb_bytes comm;
	/* EXEC */
	uint32_t euid, argc;
	struct rb_bytes pcomm, args, filename;
	struct rb_bytes exe, cwd; /* walked: "/true/bin/usr" for /usr/bin/true */
	/* EXIT */
	uint64_t cpu_user_ns, cpu_sys_ns;
	uint32_t max_rss_kb;
	/* OOM */
	uint64_t total_vm_kb, anon_rss_kb, file_rss_kb, shmem_rss_kb, pgtables_kb;
	/* CGROUP */
	struct rb_bytes cg_path;
};

/* The largest record the programs write (an EXEC with every string at its cap), padded. */
#define RB_REC_MAX                                                                                \
	((offsetof(struct lm_exec, data) + 2 * LM_COMM_LEN + LM_ARGS_MAX + 3 * LM_PATH_MAX + 7) / \
	 8 * 8)

/* Zeroes *s and sets a plausible process: pid 4242, tid 4243, ppid 1, uid 1000, comm "bash". */
void rb_spec_init(struct rb_spec *s, uint8_t type);

/*
 * Writes the record of *s at `out` (8-byte aligned, `cap` bytes) in the programs' layout
 * with version LM_EVENT_VERSION, zero-padded up to a multiple of 8 as the ring would.
 * Returns the record's size without the pad; aborts if cap is too small.
 */
uint32_t rb_build(const struct rb_spec *s, void *out, size_t cap);

/*
 * Writes the walked form (lm_event.h) of an in-order path into out (len + 1 bytes suffice):
 * "/usr/bin/true" -> "/true/bin/usr"; a cut path "bin/true" -> "/true/bin". Returns bytes.
 */
size_t rb_walk(const char *path, size_t len, char *out);

/* A region of `size` usable bytes followed by a PROT_NONE page. */
struct rb_guard {
	char *map;
	size_t size;
	char *poisoned; /* pad poisoned by rb_guard_rec (ASan builds), to unpoison next time */
	size_t poisoned_len;
};

/* Maps the region; returns 0 or -errno. */
int rb_guard_map(struct rb_guard *g, size_t size);
void rb_guard_unmap(struct rb_guard *g);

/* The last `len` bytes of the region: byte len (one past) is the guard page. */
char *rb_guard_end(struct rb_guard *g, size_t len);

/*
 * `len` bytes, 8-byte aligned, followed by the pad up to a multiple of 8 and then the guard
 * page. In ASan builds the pad is poisoned, so even a read of byte `len` is caught.
 */
void *rb_guard_rec(struct rb_guard *g, size_t len);

#endif /* LM_TEST_REC_BUILD_H */
