// SPDX-License-Identifier: GPL-2.0
/*
 * Kernel side of lifemon: exec, exit and OOM-kill tracepoints (tp_btf, so no tracefs is
 * needed). Each program reserves its record in the ring buffer of the CPU it runs on and
 * counts every attempt (lm_seen) and every failed reserve (lm_drops), per CPU and type.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "bpf/lm_event.h"

char LICENSE[] SEC("license") = "GPL";

/* include/uapi/asm-generic/errno-base.h: macros are not in BTF */
#define LM_EEXIST 17
/* include/linux/sched/signal.h; unchanged since 2.6 */
#define LM_SIGNAL_GROUP_EXIT 0x00000004

/* Set by the loader from sysconf(_SC_PAGESIZE) before load. */
const volatile __u32 lm_page_shift = 12;
/*
 * Wake the reader only once a ring holds this much; below it the reader's 5 ms poll drains
 * it. A wakeup is an irq_work (a self-IPI, and a VM exit on virtual machines) per event, the
 * largest per-event cost at storm rates. Set by the loader to a quarter of the ring.
 */
const volatile __u64 lm_wakeup_bytes = 0;
/* Benchmarks only: the process whose renames lm_bench turns into events (0: none). */
const volatile __u32 lm_bench_tgid = 0;

/* Inner map template; the loader sizes it and creates one per possible CPU. */
struct lm_ring {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096 * 1024);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1); /* the loader sets libbpf_num_possible_cpus() */
	__type(key, __u32);
	__array(values, struct lm_ring);
} lm_rings SEC(".maps");

/* Per-CPU counters indexed by LM_EV_*: kernel_seen = kernel_dropped + read. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LM_EV_TYPE_CNT);
	__type(key, __u32);
	__type(value, __u64);
} lm_seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LM_EV_TYPE_CNT);
	__type(key, __u32);
	__type(value, __u64);
} lm_drops SEC(".maps");

/* Kernels before 6.2 kept RSS counters in struct mm_rss_stat, not percpu_counter. */
struct mm_rss_stat___old {
	atomic_long_t count[4];
};

struct mm_struct___old {
	struct mm_rss_stat___old rss_stat;
} __attribute__((preserve_access_index));

/*
 * Claims of a process's exit on kernels without group_dead (see lm_exit_old), keyed by the
 * process's identity, which pid reuse cannot repeat. Entries are never deleted (a late
 * thread must still find its group's claim); LRU evicts the old ones. The loader shrinks the
 * map to a token size where lm_exit_old is not loaded.
 */
struct lm_exit_key {
	__u64 start_ns; /* the thread-group leader's start_time */
	__u32 tgid;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct lm_exit_key);
	__type(value, __u8);
} lm_exits SEC(".maps");

static __always_inline void lm_count(void *map, __u32 type)
{
	__u64 *cnt = bpf_map_lookup_elem(map, &type);

	/*
	 * Per-CPU slot, but atomic all the same: on PREEMPT_RT a program runs with only
	 * migration disabled, so another program on this CPU can preempt it mid-increment.
	 */
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
}

/*
 * Reserves a record in this CPU's ring, counting the attempt and any failure. *ringp gets
 * the ring for lm_submit.
 */
static __always_inline struct lm_event *lm_reserve(__u32 type, void **ringp)
{
	__u32 cpu = bpf_get_smp_processor_id(), zero = 0;
	__u64 t0_ns, drops;
	struct lm_event *e;
	__u64 *total;
	void *ring;

	lm_count(&lm_seen, type);
	ring = bpf_map_lookup_elem(&lm_rings, &cpu);
	if (!ring) {
		lm_count(&lm_drops, type);
		lm_count(&lm_drops, 0);
		return NULL;
	}
	/*
	 * Both read before the reserve. A program preempted between its reserve and its
	 * clock read (PREEMPT_RT, or a descheduled vCPU) may carry a later ts than a record
	 * behind it in the ring; t0_ns still bounds every later record from below, which is
	 * what the reader's merge relies on. A drop by a preempting program counts against
	 * the record after this one, which is where it sits in the ring.
	 */
	total = bpf_map_lookup_elem(&lm_drops, &zero);
	drops = total ? *total : 0;
	t0_ns = bpf_ktime_get_boot_ns();
	e = bpf_ringbuf_reserve(ring, sizeof(*e), 0);
	if (!e) {
		lm_count(&lm_drops, type);
		lm_count(&lm_drops, 0);
		return NULL;
	}
	*ringp = ring;
	e->cpu_drops = drops;
	e->t0_ns = t0_ns;
	e->ts_ns = bpf_ktime_get_boot_ns();
	e->version = LM_EVENT_VERSION;
	e->type = type;
	e->cpu = cpu;
	e->exit_status = 0;
	e->target_pid = 0;
	e->total_vm_kb = 0;
	e->anon_rss_kb = 0;
	e->file_rss_kb = 0;
	e->shmem_rss_kb = 0;
	e->pgtables_kb = 0;
	return e;
}

static __always_inline void lm_submit(struct lm_event *e, void *ring)
{
	__u64 flags = BPF_RB_NO_WAKEUP;

	if (!lm_wakeup_bytes || bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA) >= lm_wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(e, flags);
}

static __always_inline void lm_fill_task(struct lm_event *e, struct task_struct *p)
{
	e->pid = BPF_CORE_READ(p, tgid);
	e->tid = BPF_CORE_READ(p, pid);
	e->ppid = BPF_CORE_READ(p, real_parent, tgid);
	e->uid = BPF_CORE_READ(p, cred, uid.val);
}

/* old_pid: the exec'ing thread's id before exec; de_thread() has made it the leader since. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(lm_exec, struct task_struct *p, pid_t old_pid)
{
	void *ring = NULL;
	struct lm_event *e = lm_reserve(LM_EV_EXEC, &ring);

	if (!e)
		return 0;
	lm_fill_task(e, p);
	e->tid = old_pid;
	BPF_CORE_READ_STR_INTO(&e->comm, p, comm);
	lm_submit(e, ring);
	return 0;
}

/* One EXIT per process, from its last thread; status as wait(2) would report it. */
static __always_inline int lm_on_exit(struct task_struct *p)
{
	struct task_struct *leader = BPF_CORE_READ(p, group_leader);
	void *ring = NULL;
	struct lm_event *e = lm_reserve(LM_EV_EXIT, &ring);
	__u32 flags;

	if (!e)
		return 0;
	lm_fill_task(e, p);
	/* Same rule as wait_task_zombie(): a group exit's code, else the leader's. */
	flags = BPF_CORE_READ(p, signal, flags);
	if (flags & LM_SIGNAL_GROUP_EXIT)
		e->exit_status = BPF_CORE_READ(p, signal, group_exit_code);
	else
		e->exit_status = BPF_CORE_READ(leader, exit_code);
	/* The leader's comm is the process name; a last worker thread may have renamed itself. */
	BPF_CORE_READ_STR_INTO(&e->comm, leader, comm);
	lm_submit(e, ring);
	return 0;
}

/* Kernels 6.16 and later pass group_dead, set for exactly one thread of the group. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(lm_exit, struct task_struct *p, bool group_dead)
{
	if (!group_dead)
		return 0;
	return lm_on_exit(p);
}

/*
 * Older kernels: do_exit() decrements signal->live before this tracepoint, so 0 means the
 * group is dead. But every thread that reaches the tracepoint after the last decrement reads
 * 0 (threads killed together by exit_group or SIGKILL race here), so exactly one of them
 * claims the exit in lm_exits; the group's threads hold its pid until they are reaped, so
 * the key cannot be reused meanwhile.
 */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(lm_exit_old, struct task_struct *p)
{
	struct lm_exit_key key = {};
	__u8 one = 1;

	if (BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;
	key.tgid = BPF_CORE_READ(p, tgid);
	key.start_ns = BPF_CORE_READ(p, group_leader, start_time);
	/*
	 * -EEXIST: another thread claimed it. Any other failure: rather twice than never.
	 * Compare 32 bits: before 6.4 the map ops returned int and the verifier calls them
	 * directly, so the upper half of the helper's 64-bit result is not sign-extended
	 * (on Debian's 6.1 a 64-bit compare never matched and every claim "failed").
	 */
	if ((__s32)bpf_map_update_elem(&lm_exits, &key, &one, BPF_NOEXIST) == -LM_EEXIST)
		return 0;
	return lm_on_exit(p);
}

static __always_inline __u64 lm_rss_pages(struct mm_struct *mm, int member)
{
	struct mm_struct___old *old = (void *)mm;
	long v;

	if (bpf_core_type_exists(struct mm_rss_stat___old) &&
	    bpf_core_field_exists(old->rss_stat.count)) {
		/* Before 6.2: atomic_long_t count[NR_MM_COUNTERS] */
		v = BPF_CORE_READ(old, rss_stat.count[member].counter);
	} else {
		/* 6.2 and later: percpu_counter; .count is the folded total (may lag by batches) */
		v = BPF_CORE_READ(mm, rss_stat[member].count);
	}
	return v > 0 ? (__u64)v : 0;
}

static __always_inline void lm_fill_victim(struct lm_event *e, struct task_struct *v)
{
	struct mm_struct *mm = BPF_CORE_READ(v, mm);
	__u32 to_kb = lm_page_shift - 10;

	lm_fill_task(e, v);
	e->target_pid = e->pid;
	BPF_CORE_READ_STR_INTO(&e->comm, v, comm);
	if (!mm)
		return;
	/* enum mm_counter_type: MM_FILEPAGES 0, MM_ANONPAGES 1, MM_SWAPENTS 2, MM_SHMEMPAGES 3 */
	e->total_vm_kb = BPF_CORE_READ(mm, total_vm) << to_kb;
	e->file_rss_kb = lm_rss_pages(mm, 0) << to_kb;
	e->anon_rss_kb = lm_rss_pages(mm, 1) << to_kb;
	e->shmem_rss_kb = lm_rss_pages(mm, 3) << to_kb;
	e->pgtables_kb = BPF_CORE_READ(mm, pgtables_bytes.counter) >> 10;
}

/* Kernels 6.8 and later: mark_victim(struct task_struct *task, uid_t uid). */
SEC("tp_btf/mark_victim")
int BPF_PROG(lm_oom, struct task_struct *victim, __u32 uid)
{
	void *ring = NULL;
	struct lm_event *e = lm_reserve(LM_EV_OOM, &ring);

	if (!e)
		return 0;
	lm_fill_victim(e, victim);
	e->uid = uid;
	lm_submit(e, ring);
	return 0;
}

/*
 * Kernels before 6.8: mark_victim(int pid). The victim's task is reachable only when it is
 * the task that hit the OOM (the common memcg case); otherwise comm and memory stay empty.
 * bpf_get_current_task(), not the _btf variant: that one needs 5.11, this runs on 5.8.
 */
SEC("tp_btf/mark_victim")
int BPF_PROG(lm_oom_old, int pid)
{
	struct task_struct *cur = (struct task_struct *)bpf_get_current_task();
	void *ring = NULL;
	struct lm_event *e = lm_reserve(LM_EV_OOM, &ring);

	if (!e)
		return 0;
	if (BPF_CORE_READ(cur, tgid) == (__u32)pid) {
		lm_fill_victim(e, cur);
	} else {
		e->pid = pid;
		e->tid = pid;
		e->ppid = 0;
		e->uid = 0;
		e->target_pid = pid;
		e->comm[0] = '\0';
	}
	lm_submit(e, ring);
	return 0;
}

/*
 * Benchmarks only (loaded and attached just with --bench-tgid): every prctl(PR_SET_NAME) of
 * the benchmark's process becomes an EXEC- or EXIT-shaped event through the same per-CPU
 * rings, so a tight loop can drive the whole pipeline far beyond this host's fork rate.
 * A rename's first comm byte picks the type: 'x' EXIT, else EXEC. Other processes return
 * after one comparison.
 */
SEC("tp_btf/task_rename")
int BPF_PROG(lm_bench, struct task_struct *task, const char *comm)
{
	void *ring = NULL;
	struct lm_event *e;
	char first = 0;
	__u16 type;

	if (BPF_CORE_READ(task, tgid) != lm_bench_tgid || !lm_bench_tgid)
		return 0;
	bpf_probe_read_kernel(&first, 1, comm);
	type = first == 'x' ? LM_EV_EXIT : LM_EV_EXEC;
	e = lm_reserve(type, &ring);
	if (!e)
		return 0;
	lm_fill_task(e, task);
	bpf_probe_read_kernel_str(&e->comm, sizeof(e->comm), comm);
	lm_submit(e, ring);
	return 0;
}
