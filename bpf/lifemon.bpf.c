// SPDX-License-Identifier: GPL-2.0
/*
 * Kernel side of lifemon: exec, exit and OOM-kill tracepoints (tp_btf, so no tracefs is
 * needed), plus cgroup mkdir/rmdir for the reader side's path cache. Each program builds its
 * record in a scratch slot of its CPU, then reserves exactly the bytes the record needs in
 * its CPU's ring (a dynptr: the size need not be a constant) and copies it in. Every attempt
 * (lm_seen) and every failed reserve (lm_drops) is counted per CPU and type.
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
/* Threads summed for an EXIT's CPU time beyond those already folded into signal_struct */
#define LM_THREADS_MAX 64
/* Memory cgroups walked up from an OOM victim's to find one at its limit */
#define LM_MEMCG_DEPTH 8
/* A charge that failed left usage within this many pages of max (a THP is 512) */
#define LM_MEMCG_SLACK_PAGES 512
/* Scratch slots per CPU: on PREEMPT_RT a program can be preempted by another on its CPU */
#define LM_SCRATCH_SLOTS 4

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
/* --max-args-bytes */
const volatile __u32 lm_max_args = LM_ARGS_DEFAULT;
/*
 * A scratch slot is 2 * lm_half bytes (a power of two the loader picks above the largest
 * record); every write starts below lm_half and is at most lm_half long, which is what lets
 * the verifier accept variable offsets.
 */
const volatile __u32 lm_half = 32768;
/* The v1 hierarchy holding the memory controller, or -1 when memory is on cgroup v2 */
const volatile __s32 lm_memcg_hier = -1;

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

/*
 * Where records are built: LM_SCRATCH_SLOTS slots per CPU (the loader sets max_entries and
 * the value size, 2 * lm_half; sizes without BTF types so it can). Not a per-CPU map: those
 * cap a value at 32 KiB.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 65536);
} lm_scratch SEC(".maps");

/*
 * One per scratch slot: its claim word (0 free, 1 taken), taken with a compare-and-swap, and
 * the state of a path walk in progress (lm_put_path). The walk's state lives here, not on the
 * stack, because the verifier (since 6.7) checks a bpf_loop callback again for every state it
 * can be entered with: with the growing offset and the pointers on the stack, each step was a
 * new state, and lm_exec took 595k of the 1M instructions it may check (3 s at each start on
 * 6.18, 19 s in the 6.12 guest under TCG). Read from a map value, they are unknown scalars at
 * every step, so one check covers them all. The pointers are kernel addresses, only ever
 * probe-read.
 */
struct lm_slot {
	__u32 claim;
	__u32 off;		/* where the next path component goes */
	__u64 d;		/* struct dentry *: the next to name */
	__u64 vm;		/* struct vfsmount *: its mount */
	__u64 m;		/* struct mount *: the same mount */
	__u64 mnt_root;		/* struct dentry *: that mount's root */
	__u32 done;		/* reached the root: nothing was cut */
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lm_slot);
} lm_claims SEC(".maps");

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

static __always_inline void lm_count_drop(__u32 type)
{
	lm_count(&lm_drops, type);
	/* index 0 feeds cpu_drops, which announces lost events: cgroup records are not events */
	if (type != LM_EV_CGROUP)
		lm_count(&lm_drops, 0);
}

/* A build in progress: the scratch slot and its claim. */
struct lm_build {
	char *b;	/* the slot: 2 * lm_half bytes */
	__u32 *claim;
	__u32 type;
	__u32 key;	/* the slot's index in lm_scratch */
};

/*
 * Claims a free scratch slot of this CPU and counts the attempt. Returns false (counted as
 * a drop) if all are taken, which takes LM_SCRATCH_SLOTS nested programs on one CPU.
 */
static __always_inline bool lm_begin(struct lm_build *bd, __u32 type)
{
	__u32 cpu = bpf_get_smp_processor_id();
	__u32 i, key;

	lm_count(&lm_seen, type);
	bd->type = type;
	for (i = 0; i < LM_SCRATCH_SLOTS; i++) {
		key = cpu * LM_SCRATCH_SLOTS + i;
		bd->claim = bpf_map_lookup_elem(&lm_claims, &key);
		if (!bd->claim)
			break;
		if (__sync_val_compare_and_swap(bd->claim, 0, 1) != 0)
			continue;
		bd->b = bpf_map_lookup_elem(&lm_scratch, &key);
		bd->key = key;
		if (bd->b)
			return true;
		*(volatile __u32 *)bd->claim = 0;
		break;
	}
	lm_count_drop(type);
	return false;
}

static __always_inline void lm_release(struct lm_build *bd)
{
	/*
	 * A plain store (BPF has no store-release): the slot's next user is a program on this
	 * CPU, whose compare-and-swap is ordered after it by the CPU itself.
	 */
	*(volatile __u32 *)bd->claim = 0;
}

/*
 * Reserves `size` bytes in this CPU's ring, stamps the record's clocks and drop counter,
 * copies it in and submits it. Releases the slot either way.
 */
static __always_inline void lm_commit(struct lm_build *bd, __u32 size)
{
	struct lm_common *c = (void *)bd->b;
	__u32 cpu = bpf_get_smp_processor_id(), zero = 0;
	struct bpf_dynptr dp;
	__u64 t0_ns, flags;
	__u64 *total;
	void *ring;

	ring = bpf_map_lookup_elem(&lm_rings, &cpu);
	if (!ring) {
		lm_count_drop(bd->type);
		goto out;
	}
	if (size > lm_half)
		size = lm_half;
	/*
	 * Both read before the reserve. A program preempted between its reserve and its
	 * clock read (PREEMPT_RT, or a descheduled vCPU) may carry a later ts than a record
	 * behind it in the ring; t0 still bounds every later record from below, which is
	 * what the reader's merge relies on. A drop by a preempting program counts against
	 * the record after this one, which is where it sits in the ring.
	 */
	total = bpf_map_lookup_elem(&lm_drops, &zero);
	c->cpu_drops = total ? (__u32)*total : 0;
	t0_ns = bpf_ktime_get_boot_ns();
	if (bpf_ringbuf_reserve_dynptr(ring, size, 0, &dp)) {
		bpf_ringbuf_discard_dynptr(&dp, 0);
		lm_count_drop(bd->type);
		goto out;
	}
	c->ts_ns = bpf_ktime_get_boot_ns();
	c->t0_back_ns = c->ts_ns - t0_ns > 0xffffffffULL ? 0xffffffffU : c->ts_ns - t0_ns;
	c->version = LM_EVENT_VERSION;
	c->type = bd->type;
	bpf_dynptr_write(&dp, 0, bd->b, size, 0);
	flags = BPF_RB_NO_WAKEUP;
	if (!lm_wakeup_bytes || bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA) >= lm_wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit_dynptr(&dp, flags);
out:
	lm_release(bd);
}

/* Copies a kernel string of at most `max` bytes (NUL included) to b[off]; returns its length. */
static __always_inline __u32 lm_put_str(char *b, __u32 off, const void *src, __u32 max)
{
	long n;

	if (off >= lm_half)
		return 0;
	n = bpf_probe_read_kernel_str(b + off, max, src);
	return n > 1 ? (__u32)n - 1 : 0;
}

static __always_inline void lm_fill_common(struct lm_common *c, struct task_struct *p)
{
	/*
	 * Direct loads, not bpf_probe_read: p is a BTF pointer (a tracepoint argument), so
	 * each field is one load the JIT guards with an exception entry, where a probe_read
	 * is a helper call of some 50 ns here. The same holds throughout this file.
	 */
	struct task_struct *leader = p->group_leader;
	struct task_struct *parent = p->real_parent;
	struct css_set *cs = p->cgroups;

	c->flags = 0;
	c->pid = p->tgid;
	c->tid = p->pid;
	c->ppid = parent->tgid;
	c->uid = p->cred->uid.val;
	c->aux = 0;
	/* de_thread() gives an exec'ing thread the leader's start times: the key survives exec */
	c->start_ns = leader->start_boottime;
	c->pstart_ns = parent->group_leader->start_boottime;
	c->cgroup_id = cs->dfl_cgrp->kn->id;
	c->memcg_id = 0;
	if (lm_memcg_hier >= 0) {
		int idx = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);

		if (idx >= 0 && idx < 16)
			c->memcg_id = cs->subsys[idx]->cgroup->kn->id;
	}
}

/*
 * Copies p's comm to b[off] with two direct loads (p is a BTF pointer) and no helper call;
 * returns its length (up to the first NUL, at most 16: the kernel keeps one, but a racing
 * rename may not have written it yet).
 */
static __always_inline __u32 lm_put_comm(char *b, __u32 off, struct task_struct *p)
{
	union {
		__u64 w[2];
		char c[LM_COMM_LEN];
	} comm;
	__u32 len, pos;

	if (off >= lm_half)
		return 0;
	comm.w[0] = *(__u64 *)&p->comm[0];
	comm.w[1] = *(__u64 *)&p->comm[8];
	for (len = 0; len < LM_COMM_LEN; len++)
		if (!comm.c[len])
			break;
	pos = off & (lm_half - 1);
	*(__u64 *)(b + pos) = comm.w[0];
	*(__u64 *)(b + pos + 8) = comm.w[1];
	return len;
}

/* The inline name: d_shortname since 6.14, d_iname before (32 bytes on 64-bit). */
#define LM_INAME_LEN 32

struct dentry___short {
	union shortname_store d_shortname;
} __attribute__((preserve_access_index));

struct dentry___iname {
	unsigned char d_iname[32];
} __attribute__((preserve_access_index));

/*
 * The inline name's offset in struct dentry when d_parent, d_name (hash_len, name), d_inode
 * and it follow each other, else 0. Relocated constants: the verifier sees one branch.
 */
static __always_inline __u32 lm_iname_off(void)
{
	__u32 p = bpf_core_field_offset(struct dentry, d_parent), in;

	if (bpf_core_field_exists(struct dentry___short, d_shortname))
		in = bpf_core_field_offset(struct dentry___short, d_shortname);
	else if (bpf_core_field_exists(struct dentry___iname, d_iname))
		in = bpf_core_field_offset(struct dentry___iname, d_iname);
	else
		return 0;
	if (bpf_core_field_offset(struct dentry, d_name) != p + 8 ||
	    bpf_core_field_offset(struct qstr, name) != 8 ||
	    bpf_core_field_offset(struct dentry, d_inode) != p + 24 || in != p + 32)
		return 0;
	return in;
}

/* What a path walk does not change; the rest is in the slot's struct lm_slot. */
struct lm_walk {
	__u32 key;		/* the scratch slot */
	__u32 start;		/* where the path began */
	__u64 root_d;		/* struct dentry *, struct vfsmount *: the task's root */
	__u64 root_vm;
};

static long lm_walk_step(__u32 i, void *ctx)
{
	struct lm_walk *w = ctx;
	struct lm_slot *s = bpf_map_lookup_elem(&lm_claims, &w->key);
	struct dentry *d, *parent;
	struct mount *m;
	/* d_parent, d_name, d_inode and the inline name, as they sit in struct dentry */
	struct {
		struct dentry *parent;
		__u64 hash_len;
		const unsigned char *name;
		void *inode;
		unsigned char iname[LM_INAME_LEN];
	} dn;
	__u32 pos, len, off, ioff = lm_iname_off();
	char *b;
	long n;

	if (!s)
		return 1;
	d = (struct dentry *)s->d;
	m = (struct mount *)s->m;
	if (s->d == w->root_d && s->vm == w->root_vm)
		goto root;
	/* struct mount is reached by container_of, which leaves BTF: probe reads there */
	if (s->d == s->mnt_root) {
		struct mount *pm = BPF_CORE_READ(m, mnt_parent);
		struct vfsmount *vm;

		if (pm == m)
			goto root; /* the namespace's root */
		s->d = (__u64)BPF_CORE_READ(m, mnt_mountpoint);
		s->m = (__u64)pm;
		vm = (void *)pm + bpf_core_field_offset(struct mount, mnt);
		s->vm = (__u64)vm;
		s->mnt_root = (__u64)BPF_CORE_READ(vm, mnt_root);
		return 0;
	}
	/*
	 * d comes from the slot, a kernel address and no BTF pointer. Where d_parent, d_name,
	 * d_inode and the inline name sit together (every kernel since 2.6; ioff says so, from
	 * relocated offsets) one probe read takes them all, and a short name (most are) is
	 * copied from it without a second helper call.
	 */
	if (ioff) {
		bpf_probe_read_kernel(&dn, sizeof(dn),
				      (void *)d + bpf_core_field_offset(struct dentry, d_parent));
	} else {
		dn.parent = BPF_CORE_READ(d, d_parent);
		dn.hash_len = 0;
		dn.name = BPF_CORE_READ(d, d_name.name);
	}
	parent = dn.parent;
	if (parent == d || !parent)
		goto root;
	off = s->off;
	if (off - w->start + LM_NAME_MAX > LM_PATH_MAX || off + 1 + LM_NAME_MAX > lm_half)
		return 1; /* cut */
	b = bpf_map_lookup_elem(&lm_scratch, &w->key);
	if (!b)
		return 1;
	pos = off & (lm_half - 1);
	b[pos] = '/';
	pos = (pos + 1) & (lm_half - 1);
	/* hash_len: the hash in the low half, the length in the high half */
	len = dn.hash_len >> 32;
	if (ioff && (void *)dn.name == (void *)d + ioff && len < LM_INAME_LEN) {
		__builtin_memcpy(b + pos, dn.iname, LM_INAME_LEN);
		s->off = off + 1 + len; /* the '/' and the name; the bytes after it are overwritten */
	} else {
		n = bpf_probe_read_kernel_str(b + pos, LM_NAME_MAX, dn.name);
		if (n < 1)
			return 1;
		s->off = off + n; /* the '/' and the name, its NUL overwritten by the next '/' */
	}
	s->d = (__u64)parent;
	return 0;
root:
	s->done = 1;
	return 1;
}

/*
 * Writes path `pth` at the slot's byte off as lm_event.h describes (leaf first, "/name"
 * each), stopping at the task's root `root` or the namespace's. Returns the bytes written;
 * sets *cut when the path was deeper or longer than allowed (the leaf end is kept).
 */
static __always_inline __u32 lm_put_path(struct lm_build *bd, __u32 off, const struct path *pth,
					 const struct path *root, bool *cut)
{
	struct lm_slot *s = (struct lm_slot *)bd->claim;
	struct lm_walk w = {
		.key = bd->key,
		.start = off,
		.root_d = (__u64)root->dentry,
		.root_vm = (__u64)root->mnt,
	};
	struct vfsmount *vm = pth->mnt;

	s->off = off;
	s->done = 0;
	s->d = (__u64)pth->dentry;
	s->vm = (__u64)vm;
	s->m = (__u64)((void *)vm - bpf_core_field_offset(struct mount, mnt));
	s->mnt_root = (__u64)vm->mnt_root;
	bpf_loop(LM_PATH_DEPTH, lm_walk_step, &w, 0);
	*cut = !s->done;
	return s->off - off;
}

/* old_pid: the exec'ing thread's id before exec; de_thread() has made it the leader since. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(lm_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct task_struct *parent = p->real_parent;
	struct lm_build bd;
	struct lm_exec *e;
	struct mm_struct *mm;
	struct fs_struct *fs;
	struct file *file;
	__u64 arg_start, arg_end, n;
	__u32 off;
	bool cut;

	if (!lm_begin(&bd, LM_EV_EXEC))
		return 0;
	e = (void *)bd.b;
	lm_fill_common(&e->c, p);
	e->c.tid = old_pid;
	e->c.aux = p->cred->gid.val;
	e->euid = p->cred->euid.val;
	e->argc = bprm->argc;
	off = __builtin_offsetof(struct lm_exec, data);
	/*
	 * The lengths are read back from the record: the verifier then sees one unknown length,
	 * not each of the 17 a comm can have, and checks what follows once, not 17 x 17 times.
	 */
	e->c.comm_len = lm_put_comm(bd.b, off, p);
	off += *(volatile typeof(e->c.comm_len) *)&e->c.comm_len;
	e->pcomm_len = lm_put_comm(bd.b, off, parent);
	off += *(volatile typeof(e->pcomm_len) *)&e->pcomm_len;

	/* the new program's argument area, just written by the kernel (current is p) */
	e->args_len = 0;
	mm = p->mm;
	arg_start = mm->arg_start;
	arg_end = mm->arg_end;
	if (arg_end > arg_start) {
		n = arg_end - arg_start;
		if (n > lm_max_args) {
			n = lm_max_args;
			e->c.flags |= LM_F_TRUNC_ARGS;
		}
		if (n > LM_ARGS_MAX)
			n = LM_ARGS_MAX;
		if (off + n > lm_half)
			n = 0; /* cannot happen: the loader sizes lm_half for the cap */
		off &= lm_half - 1;
		if (n && !bpf_probe_read_user(bd.b + off, n, (void *)arg_start)) {
			e->args_len = n;
			off += n;
		} else {
			e->c.flags |= LM_F_ARGS_FAULT;
		}
	}

	e->filename_len = lm_put_str(bd.b, off, bprm->filename, LM_PATH_MAX);
	if (e->filename_len >= LM_PATH_MAX - 1)
		e->c.flags |= LM_F_TRUNC_FILENAME;
	off += e->filename_len;

	fs = p->fs;
	file = bprm->file;
	e->exe_len = 0;
	if (file) {
		e->exe_len = lm_put_path(&bd, off, &file->f_path, &fs->root, &cut);
		if (cut)
			e->c.flags |= LM_F_TRUNC_EXE;
		off += e->exe_len;
	} else {
		e->c.flags |= LM_F_NO_EXE;
	}
	e->cwd_len = lm_put_path(&bd, off, &fs->pwd, &fs->root, &cut);
	if (cut)
		e->c.flags |= LM_F_TRUNC_CWD;
	off += e->cwd_len;
	lm_commit(&bd, off);
	return 0;
}

/* One EXIT per process, from its last thread; status as wait(2) would report it. */
static __always_inline int lm_on_exit(struct task_struct *p)
{
	struct task_struct *leader = p->group_leader;
	struct signal_struct *sig = p->signal;
	struct list_head *head, *pos;
	unsigned long rss, crss;
	__u64 ut, st, kb;
	struct lm_build bd;
	struct lm_exit *e;
	__u32 flags, i, off;

	if (!lm_begin(&bd, LM_EV_EXIT))
		return 0;
	e = (void *)bd.b;
	lm_fill_common(&e->c, p);
	/* Same rule as wait_task_zombie(): a group exit's code, else the leader's. */
	flags = sig->flags;
	if (flags & LM_SIGNAL_GROUP_EXIT)
		e->c.aux = sig->group_exit_code;
	else
		e->c.aux = leader->exit_code;
	if (sig->oom_mm)
		e->c.flags |= LM_F_OOM_KILLED;
	/*
	 * CPU time: released threads are folded into signal_struct; the rest (this one, a
	 * zombie leader, threads still exiting) are on the thread list. A thread released
	 * between the two reads is missed or counted twice; it has little left to add.
	 */
	ut = sig->utime;
	st = sig->stime;
	head = &sig->thread_head;
	pos = head->next;
	for (i = 0; i < LM_THREADS_MAX && pos && pos != head; i++) {
		struct task_struct *t = (void *)pos - bpf_core_field_offset(struct task_struct,
									    thread_node);

		if (pos == &p->thread_node) {
			/* the usual case, a single thread: this one, read directly */
			ut += p->utime;
			st += p->stime;
		} else {
			/* container_of leaves BTF: probe reads */
			ut += BPF_CORE_READ(t, utime);
			st += BPF_CORE_READ(t, stime);
		}
		pos = BPF_CORE_READ(pos, next);
	}
	e->cpu_user_ns = ut;
	e->cpu_sys_ns = st;
	rss = sig->maxrss;
	crss = sig->cmaxrss;
	kb = (rss > crss ? rss : crss) << (lm_page_shift - 10);
	e->max_rss_kb = kb > 0xffffffffULL ? 0xffffffffU : kb;
	/* The leader's comm is the process name; a last worker thread may have renamed itself. */
	off = __builtin_offsetof(struct lm_exit, data);
	e->c.comm_len = lm_put_comm(bd.b, off, leader);
	lm_commit(&bd, off + e->c.comm_len);
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

	if (p->signal->live.counter != 0)
		return 0;
	key.tgid = p->tgid;
	key.start_ns = p->group_leader->start_time;
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

/*
 * Was this a memory-cgroup OOM? The memcg whose limit was hit is not a tracepoint argument;
 * but a charge fails only with usage within a charge of max, so walk up from the victim's
 * memcg looking for one that is (the root has no limit: a global OOM finds none).
 */
static __always_inline bool lm_memcg_at_limit(struct task_struct *v)
{
	int idx = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	struct cgroup_subsys_state *css;
	__u32 i;

	if (idx < 0 || idx >= 16)
		return false;
	css = BPF_CORE_READ(v, cgroups, subsys[idx]);
	for (i = 0; i < LM_MEMCG_DEPTH && css; i++) {
		/* css is the first member of struct mem_cgroup */
		struct mem_cgroup *mc = (void *)css;
		long usage = BPF_CORE_READ(mc, memory.usage.counter);
		unsigned long max = BPF_CORE_READ(mc, memory.max);

		if (usage > 0 && (unsigned long)usage + LM_MEMCG_SLACK_PAGES >= max)
			return true;
		css = BPF_CORE_READ(css, parent);
	}
	return false;
}

static __always_inline void lm_fill_victim(struct lm_oom *e, struct task_struct *v)
{
	struct mm_struct *mm = BPF_CORE_READ(v, mm);
	__u32 to_kb = lm_page_shift - 10;

	lm_fill_common(&e->c, v);
	e->c.flags = LM_F_OOM_VICTIM | LM_F_OOM_KNOWN;
	if (lm_memcg_at_limit(v))
		e->c.flags |= LM_F_OOM_MEMCG;
	e->c.aux = (__u32)(__s32)v->signal->oom_score_adj;
	e->total_vm_kb = 0;
	e->anon_rss_kb = 0;
	e->file_rss_kb = 0;
	e->shmem_rss_kb = 0;
	e->pgtables_kb = 0;
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
	struct lm_build bd;
	struct lm_oom *e;

	if (!lm_begin(&bd, LM_EV_OOM))
		return 0;
	e = (void *)bd.b;
	lm_fill_victim(e, victim);
	e->c.uid = uid;
	e->c.comm_len = lm_put_comm(bd.b, sizeof(*e), victim);
	lm_commit(&bd, sizeof(*e) + e->c.comm_len);
	return 0;
}

/*
 * Kernels before 6.8: mark_victim(int pid), a thread id. The victim's task is reachable only
 * when it is the task that hit the OOM (the common memcg case); otherwise only pid is known.
 */
SEC("tp_btf/mark_victim")
int BPF_PROG(lm_oom_old, int pid)
{
	struct task_struct *cur = bpf_get_current_task_btf();
	struct lm_build bd;
	struct lm_oom *e;

	if (!lm_begin(&bd, LM_EV_OOM))
		return 0;
	e = (void *)bd.b;
	if (cur->pid == (__u32)pid) {
		lm_fill_victim(e, cur);
		e->c.comm_len = lm_put_comm(bd.b, sizeof(*e), cur);
	} else {
		__builtin_memset(e, 0, sizeof(*e));
		e->c.pid = pid;
		e->c.tid = pid;
	}
	lm_commit(&bd, sizeof(*e) + e->c.comm_len);
	return 0;
}

static __always_inline int lm_on_cgroup(struct cgroup *cgrp, const char *path, __u8 flags)
{
	int hier = BPF_CORE_READ(cgrp, root, hierarchy_id);
	struct lm_build bd;
	struct lm_cgroup_rec *e;

	/* cgroup v2 and the memory controller's v1 hierarchy: the others name nothing new */
	if (hier != 0 && hier != lm_memcg_hier)
		return 0;
	if (!lm_begin(&bd, LM_EV_CGROUP))
		return 0;
	e = (void *)bd.b;
	__builtin_memset(e, 0, sizeof(*e));
	e->c.flags = flags;
	e->c.aux = hier;
	e->c.cgroup_id = BPF_CORE_READ(cgrp, kn, id);
	e->c.pid = bpf_get_current_pid_tgid() >> 32;
	e->path_len = lm_put_str(bd.b, __builtin_offsetof(struct lm_cgroup_rec, data), path,
				 LM_PATH_MAX);
	lm_commit(&bd, __builtin_offsetof(struct lm_cgroup_rec, data) + e->path_len);
	return 0;
}

SEC("tp_btf/cgroup_mkdir")
int BPF_PROG(lm_cg_mkdir, struct cgroup *cgrp, const char *path)
{
	return lm_on_cgroup(cgrp, path, 0);
}

SEC("tp_btf/cgroup_rmdir")
int BPF_PROG(lm_cg_rmdir, struct cgroup *cgrp, const char *path)
{
	return lm_on_cgroup(cgrp, path, LM_F_CG_RMDIR);
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
	struct lm_build bd;
	struct lm_exit *x;
	struct lm_exec *e;
	char first = 0;

	if (task->tgid != lm_bench_tgid || !lm_bench_tgid)
		return 0;
	bpf_probe_read_kernel(&first, 1, comm);
	if (first == 'x') {
		if (!lm_begin(&bd, LM_EV_EXIT))
			return 0;
		x = (void *)bd.b;
		__builtin_memset(x, 0, sizeof(*x));
		lm_fill_common(&x->c, task);
		x->c.comm_len = lm_put_str(bd.b, __builtin_offsetof(struct lm_exit, data), comm,
					   LM_COMM_LEN);
		lm_commit(&bd, __builtin_offsetof(struct lm_exit, data) + x->c.comm_len);
		return 0;
	}
	if (!lm_begin(&bd, LM_EV_EXEC))
		return 0;
	e = (void *)bd.b;
	__builtin_memset(e, 0, sizeof(*e));
	lm_fill_common(&e->c, task);
	e->c.flags = LM_F_NO_EXE;
	e->c.comm_len = lm_put_str(bd.b, __builtin_offsetof(struct lm_exec, data), comm,
				   LM_COMM_LEN);
	lm_commit(&bd, __builtin_offsetof(struct lm_exec, data) + e->c.comm_len);
	return 0;
}
