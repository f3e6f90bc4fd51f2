/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The only ABI between the BPF programs and user space: the records the programs write into
 * their CPU's ring buffer, and the keys of the per-CPU counter maps. Fixed-size types only;
 * the user side _Static_asserts the layout and core/rec.c decodes and bounds every record.
 *
 * Records vary in size: a fixed part per type, then the strings it carries, packed without
 * NULs or padding, their lengths in the fixed part. A /bin/true exec costs the bytes of its
 * names, not the cap of --max-args-bytes.
 */
#ifndef LM_EVENT_H
#define LM_EVENT_H

#ifndef __VMLINUX_H__
#include <linux/types.h> /* user space; BPF code gets the types from vmlinux.h */
#endif

/* Bump on any change to the records below; the reader refuses records of another version. */
#define LM_EVENT_VERSION 4

#define LM_EV_EXEC 1
#define LM_EV_EXIT 2
#define LM_EV_OOM 3
/* Not an event: a cgroup was created or removed; feeds the reader side's path cache. */
#define LM_EV_CGROUP 4
/* Counter maps are indexed by type; index 0 of lm_drops counts the events (types 1-3). */
#define LM_EV_TYPE_CNT 5
/* Event types are 1 .. LM_EV_EVENT_CNT - 1 */
#define LM_EV_EVENT_CNT 4

#define LM_COMM_LEN 16
/* A path component (NAME_MAX + NUL) and a whole path (PATH_MAX) */
#define LM_NAME_MAX 256
#define LM_PATH_MAX 4096
/* Components walked per path; a deeper path is cut (its leaf end is kept) */
#define LM_PATH_DEPTH 64
/* --max-args-bytes: the default and the bounds */
#define LM_ARGS_DEFAULT 4096
#define LM_ARGS_MIN 64
#define LM_ARGS_MAX 65536

/* lm_common.flags, EXEC: what was cut short */
#define LM_F_TRUNC_ARGS 0x01
#define LM_F_TRUNC_FILENAME 0x02
#define LM_F_TRUNC_EXE 0x04
#define LM_F_TRUNC_CWD 0x08
#define LM_F_ARGS_FAULT 0x10	/* the argument area could not be read: args empty */
#define LM_F_NO_EXE 0x20	/* no file to resolve */
/* EXIT */
#define LM_F_OOM_KILLED 0x01	/* the OOM killer chose this process */
/* OOM */
#define LM_F_OOM_VICTIM 0x01	/* the victim's task was reachable: pid, memory, cgroups set */
#define LM_F_OOM_KNOWN 0x02	/* the constraint is known; LM_F_OOM_MEMCG tells which */
#define LM_F_OOM_MEMCG 0x04	/* a memory cgroup was at its limit: a memcg OOM */
/* CGROUP */
#define LM_F_CG_RMDIR 0x01	/* removed (else created) */

/*
 * Every record starts with this (72 bytes). exe and cwd are carried as walked, from the leaf
 * up, each component behind a '/': /usr/bin/true as "/true/bin/usr". The reader puts them
 * back in order; an empty path is the root.
 */
struct lm_common {
	__u64 ts_ns;		/* bpf_ktime_get_boot_ns(): CLOCK_BOOTTIME of the event */
	__u32 t0_back_ns;	/* ts_ns - the clock just before the reserve, UINT32_MAX if more:
				 * every record reserved later in this CPU's ring has ts_ns >
				 * ts_ns - t0_back_ns (the merge's floor) */
	__u32 cpu_drops;	/* low 32 bits of this CPU's failed event reserves so far: a rise
				 * since the CPU's previous record means events were lost between */
	__u8 version;		/* LM_EVENT_VERSION */
	__u8 type;		/* LM_EV_* */
	__u8 flags;		/* LM_F_* of the type */
	__u8 comm_len;		/* bytes of comm in the tail (no NUL) */
	__u32 pid;		/* thread-group id (the process id users know) */
	__u32 tid;		/* EXEC: the exec'ing thread; EXIT: the last thread to exit */
	__u32 ppid;		/* real parent's thread-group id */
	__u32 uid;		/* real uid, init user namespace */
	__u32 aux;		/* EXEC: real gid; EXIT: raw wait(2) status; OOM: oom_score_adj
				 * (signed); CGROUP: hierarchy id (0: cgroup v2) */
	__u64 start_ns;		/* the process's start (leader's start_boottime), ns since boot */
	__u64 pstart_ns;	/* the same of the real parent */
	__u64 cgroup_id;	/* cgroup v2 id (kernfs id); CGROUP: the cgroup's id */
	__u64 memcg_id;		/* the memory controller's cgroup id in its hierarchy (v1 hosts) */
};

/* EXEC: then comm, pcomm, args, filename, exe, cwd, packed in this order. */
struct lm_exec {
	struct lm_common c;
	__u32 euid;
	__u32 argc;		/* the true count, even when args were cut */
	__u32 args_len;		/* bytes of the argument area kept (NUL-separated) */
	__u16 filename_len;
	__u16 exe_len;
	__u16 cwd_len;
	__u8 pcomm_len;
	__u8 _pad;
	char data[];
};

/* EXIT: then comm (the leader's). */
struct lm_exit {
	struct lm_common c;
	__u64 cpu_user_ns;	/* all threads, dead and alive */
	__u64 cpu_sys_ns;
	__u32 max_rss_kb;	/* max(maxrss, cmaxrss) as wait(2) hands it to getrusage */
	char data[];
};

/* OOM: then the victim's comm. */
struct lm_oom {
	struct lm_common c;
	__u64 total_vm_kb;	/* victim's mapped virtual memory */
	__u64 anon_rss_kb;	/* victim's resident anonymous memory */
	__u64 file_rss_kb;	/* victim's resident file-backed memory */
	__u64 shmem_rss_kb;	/* victim's resident shared memory */
	__u64 pgtables_kb;	/* victim's page tables */
	char data[];
};

/* CGROUP: then the path relative to the hierarchy root, as the tracepoint gives it. */
struct lm_cgroup_rec {
	struct lm_common c;
	__u16 path_len;
	char data[];
};

#endif /* LM_EVENT_H */
