/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Cgroup names: turns the cgroup ids the kernel records carry into the cgroup's path and the
 * container id, pod uid and systemd unit the path names, for the lm-ser thread (it owns the
 * object; nothing here is thread-safe). One bounded table per tracked hierarchy (cgroup v2, and
 * the v1 hierarchy of the memory controller), filled by scanning the mounted trees at open, by
 * the kernel's cgroup_mkdir/cgroup_rmdir records, and by a rate-limited rescan on a miss.
 */
#ifndef LM_CGROUP_H
#define LM_CGROUP_H

#include <stddef.h>
#include <stdint.h>

/* Longest path stored; longer paths are stored cut (and counted in cut_paths). */
#define LM_CGROUP_PATH_MAX 4096
/* Defaults of struct lm_cgroup_opts' zero fields. */
#define LM_CGROUP_MAX_ENTRIES 65536
#define LM_CGROUP_GRACE_CNT 4096
#define LM_CGROUP_RESCAN_NS 1000000000ULL

struct lm_cgroup;

struct lm_cgroup_opts {
	const char *mountinfo;	  /* default "/proc/self/mountinfo" when NULL */
	const char *proc_cgroups; /* default "/proc/cgroups" when NULL */
	/* Entries per hierarchy (live and removed-in-grace), 0 = LM_CGROUP_MAX_ENTRIES; at the
	 * bound the least recently learnt or looked-up live entry is evicted. At least 2. */
	uint32_t max_entries;
	/* A removed cgroup stays resolvable until this many later removals in its hierarchy,
	 * 0 = min(LM_CGROUP_GRACE_CNT, max_entries / 2); at most max_entries / 2. */
	uint32_t grace_cnt;
	/* Least time between two scans of one hierarchy, 0 = LM_CGROUP_RESCAN_NS. */
	uint64_t rescan_interval_ns;
};

/*
 * What a lookup answers. Every pointer points into the table and stays valid until the next
 * lm_cgroup_learn, lm_cgroup_forget or lm_cgroup_lookup call on the same hierarchy of the same
 * object: the tables are separate, so an event's v2 view survives the lookup of its v1 memory
 * cgroup (and the other way round).
 */
struct lm_cgroup_view {
	/* relative to the hierarchy root, "/" for the root: path_len bytes, then a NUL. The
	 * bytes are the kernel's and may hold any value, '\0' included: use path_len. */
	const char *path;
	size_t path_len;
	const char *container_id; /* 64 lowercase hex + NUL, or NULL */
	const char *pod_uid;	  /* canonical 8-4-4-4-12 lowercase hex + NUL, or NULL */
	const char *unit;	  /* innermost systemd unit name + NUL, or NULL */
};

/* Counters, written and read by the owning thread only (copy them out for main's stats). */
struct lm_cgroup_stats {
	uint64_t scans;	      /* tree walks: open's and rate-limited rescans after a miss */
	uint64_t scan_errors; /* directories a walk could not open or stat, or too deep */
	uint64_t misses;      /* lookups answered -ENOENT */
	uint64_t evictions;   /* live entries dropped at max_entries */
	uint64_t cut_paths;   /* paths stored cut at LM_CGROUP_PATH_MAX */
	uint64_t nomem;	      /* learns dropped because malloc failed */
	uint32_t entries;     /* entries held now, all hierarchies */
};

/*
 * Finds the cgroup2 mount and the v1 mount holding the memory controller in `mountinfo`
 * (preferring a mount of the hierarchy's root; a mount whose root lies outside this cgroup
 * namespace, "/..", is not scanned; a mount of a subtree prefixes its root to the paths), the
 * memory controller's hierarchy id in `proc_cgroups`, allocates the tables and scans both
 * trees (st_ino -> path). A host without either mount is fine: that table is filled by
 * learn only. Blocks on the file system (the scan). Returns 0 and *out, -EINVAL for bad opts,
 * -ENOMEM, or the -errno of opening `mountinfo`; *out is NULL on failure.
 */
int lm_cgroup_open(const struct lm_cgroup_opts *o, struct lm_cgroup **out);
/* Frees everything; accepts NULL. */
void lm_cgroup_close(struct lm_cgroup *c);

/*
 * The v1 hierarchy id of the memory controller (the `hier` of its records); 0 when memory is
 * on cgroup v2; -1 when there is none (disabled, or /proc/cgroups unreadable or silent).
 */
int lm_cgroup_memory_hier(const struct lm_cgroup *c);

/*
 * A cgroup_mkdir record: cgroup `id` (kernfs id) of hierarchy `hier` has `path` (`len` bytes,
 * not NUL-terminated, any bytes; an empty path means the root). Records for a hierarchy that
 * is not tracked (not 0, not the memory one) are ignored. Replaces what was known of `id`,
 * and brings it back to life if it was removed. Allocates the path's copy (mkdir is rare); on
 * ENOMEM the table is left as it was and `nomem` counts it.
 */
void lm_cgroup_learn(struct lm_cgroup *c, uint32_t hier, uint64_t id, const char *path, size_t len);

/*
 * A cgroup_rmdir record. The entry stays resolvable for events queued behind the record:
 * it is dropped only after grace_cnt later removals in its hierarchy (or evicted at
 * max_entries when no live entry is left to evict). Unknown ids are ignored.
 */
void lm_cgroup_forget(struct lm_cgroup *c, uint32_t hier, uint64_t id);

/*
 * Per-event hot path: a hash lookup, no allocation. Returns 0 and fills *out, or -ENOENT.
 * On a miss in a mounted hierarchy the tree is rescanned if the last scan of that hierarchy
 * is at least rescan_interval_ns old, so a storm of misses costs at most one scan per
 * interval (the miss path reads CLOCK_MONOTONIC; the rescan blocks on the file system).
 */
int lm_cgroup_lookup(struct lm_cgroup *c, uint32_t hier, uint64_t id, struct lm_cgroup_view *out);

/* Copies the counters. */
void lm_cgroup_get_stats(const struct lm_cgroup *c, struct lm_cgroup_stats *out);

/*
 * Pure parser used by learn and the scan (exported for tests and the fuzzer): reads at most
 * `len` bytes of `path` (any bytes, no NUL needed) and writes NUL-terminated strings, empty
 * when absent:
 * - container_id: the innermost component naming a 64 lowercase hex id as docker-<id>.scope,
 *   cri-containerd-<id>.scope, crio-<id>.scope, libpod-<id>.scope (".scope" optional),
 *   <parent>:cri-containerd:<id>, or a bare <id> under a docker, actions_job, kubepods*,
 *   libpod* or pod<uid> ancestor ("/docker/<id>", "/kubepods/<qos>/pod<uid>/<id>").
 *   crio-conmon-<id> and libpod-conmon-<id> are not ids: they hold the runtime's monitor,
 *   not the container. Components below the container's (".../libpod-<id>.scope/container")
 *   inherit its id.
 * - pod_uid: the innermost "pod<uid>" (at a component's start or after '-', the component
 *   ending there, in ".slice" or in ".slice:<...>"), <uid> 8-4-4-4-12 lowercase hex with '-'
 *   or '_' separators, written with '-'.
 * - unit: the innermost component that is a valid systemd unit name (at most 255 bytes of
 *   [A-Za-z0-9:_.\\@-]) ending in .service .scope .slice .socket .mount .swap .target .timer
 *   .path .device or .automount.
 */
void lm_cgroup_parse(const char *path, size_t len, char container_id[65], char pod_uid[37],
		     char unit[256]);

#endif /* LM_CGROUP_H */
