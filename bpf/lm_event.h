/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The only ABI between the BPF programs and user space: the event record each program
 * writes into its CPU's ring buffer, and the keys of the per-CPU counter maps.
 * Fixed-size types only; the user side _Static_asserts the layout.
 */
#ifndef LM_EVENT_H
#define LM_EVENT_H

#ifndef __VMLINUX_H__
#include <linux/types.h> /* user space; BPF code gets the types from vmlinux.h */
#endif

/* Bump on any change to struct lm_event; the reader refuses records of another version. */
#define LM_EVENT_VERSION 3

#define LM_EV_EXEC 1
#define LM_EV_EXIT 2
#define LM_EV_OOM 3
/* Counter maps are indexed by type; index 0 of lm_drops counts every type together. */
#define LM_EV_TYPE_CNT 4

#define LM_COMM_LEN 16

struct lm_event {
	__u64 ts_ns;		/* bpf_ktime_get_boot_ns(): CLOCK_BOOTTIME of the event */
	__u16 version;		/* LM_EVENT_VERSION */
	__u16 type;		/* LM_EV_* */
	__u32 cpu;		/* CPU whose ring holds the record */
	__u32 pid;		/* thread-group id (the process id users know) */
	__u32 tid;		/* EXEC: the exec'ing thread; EXIT: the last thread to exit */
	__u32 ppid;		/* real parent's thread-group id */
	__u32 uid;		/* real uid, init user namespace */
	__u32 exit_status;	/* EXIT: raw wait(2) status of the process; else 0 */
	__u32 target_pid;	/* OOM: victim's thread-group id; else 0 */
	__u64 total_vm_kb;	/* OOM: victim's mapped virtual memory */
	__u64 anon_rss_kb;	/* OOM: victim's resident anonymous memory */
	__u64 file_rss_kb;	/* OOM: victim's resident file-backed memory */
	__u64 shmem_rss_kb;	/* OOM: victim's resident shared memory */
	__u64 pgtables_kb;	/* OOM: victim's page tables */
	char comm[LM_COMM_LEN]; /* task comm: any bytes, NUL-terminated only if shorter */
	__u64 cpu_drops;	/* this CPU's failed reserves so far (all types): a rise since
				 * the CPU's previous record means events were lost between */
	__u64 t0_ns;		/* the clock just before the reserve: every record reserved
				 * later in this CPU's ring has ts_ns > t0_ns (the merge's floor) */
};

#endif /* LM_EVENT_H */
