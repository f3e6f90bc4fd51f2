// SPDX-License-Identifier: GPL-2.0
/*
 * Loader: the BPF skeleton's lifecycle on the main thread. It chooses program variants from
 * the kernel's BTF (tracepoint signatures changed in 6.8 and 6.16), creates one ring buffer
 * map per possible CPU, and owns the links until lm_load_close.
 */
#include "core/loader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "core/log.h"
#include "lifemon.skel.h"

#define LM_LOAD_MAX_LINKS 8

struct lm_load {
	struct lifemon *skel;
	int *ring_fds;
	int ring_cnt;
	struct bpf_link *links[LM_LOAD_MAX_LINKS];
	int link_cnt;
	int ncpus;
	char variant[96];
};

/* Number of parameters of a tracepoint's btf_trace_<name> prototype, including ctx. */
static int lm_load_tp_nargs(const struct btf *btf, const char *tp)
{
	const struct btf_type *t;
	char name[128];
	int id;

	snprintf(name, sizeof(name), "btf_trace_%s", tp);
	id = btf__find_by_name_kind(btf, name, BTF_KIND_TYPEDEF);
	if (id < 0)
		return id;
	t = btf__type_by_id(btf, id);
	while (t && (btf_is_typedef(t) || btf_is_ptr(t)))
		t = btf__type_by_id(btf, t->type);
	if (!t || !btf_is_func_proto(t))
		return -ENOENT;
	return btf_vlen(t);
}

static int lm_load_pick_variants(struct lm_load *l)
{
	struct btf *btf;
	int exit_nargs, oom_nargs, err;

	btf = btf__load_vmlinux_btf();
	if (!btf) {
		err = -errno;
		lm_err("loader", "cannot read kernel BTF /sys/kernel/btf/vmlinux: %s", strerror(-err));
		return err;
	}
	exit_nargs = lm_load_tp_nargs(btf, "sched_process_exit");
	oom_nargs = lm_load_tp_nargs(btf, "mark_victim");
	btf__free(btf);

	/* (ctx, task, group_dead) since 6.16; (ctx, task) before */
	bpf_program__set_autoload(l->skel->progs.lm_exit, exit_nargs >= 3);
	bpf_program__set_autoload(l->skel->progs.lm_exit_old, exit_nargs < 3);
	/* only lm_exit_old claims exits in lm_exits; elsewhere a token size saves memory */
	err = bpf_map__set_max_entries(l->skel->maps.lm_exits, exit_nargs < 3 ? 16384 : l->ncpus);
	if (err) {
		lm_err("loader", "cannot size map lm_exits: %s", strerror(-err));
		return err;
	}
	/* (ctx, task, uid) since 6.8; (ctx, pid) before; absent without CONFIG_MEMCG/OOM tp */
	bpf_program__set_autoload(l->skel->progs.lm_oom, oom_nargs >= 3);
	bpf_program__set_autoload(l->skel->progs.lm_oom_old, oom_nargs == 2);
	if (oom_nargs < 0)
		lm_warn("loader", "kernel has no mark_victim tracepoint: OOM kills are not reported");
	snprintf(l->variant, sizeof(l->variant), "exit=%s oom=%s",
		 exit_nargs >= 3 ? "group_dead" : "signal_live",
		 oom_nargs >= 3 ? "task" : oom_nargs == 2 ? "pid" : "none");
	return 0;
}

static int lm_load_create_rings(struct lm_load *l, uint32_t ring_bytes)
{
	int outer = bpf_map__fd(l->skel->maps.lm_rings);
	int i, err;

	l->ring_fds = calloc(l->ncpus, sizeof(*l->ring_fds));
	if (!l->ring_fds)
		return -ENOMEM;
	for (i = 0; i < l->ncpus; i++)
		l->ring_fds[i] = -1;
	for (i = 0; i < l->ncpus; i++) {
		char name[16];
		__u32 key = i;

		snprintf(name, sizeof(name), "lm_ring%u", (unsigned int)i & 0xffff);
		l->ring_fds[i] = bpf_map_create(BPF_MAP_TYPE_RINGBUF, name, 0, 0, ring_bytes, NULL);
		if (l->ring_fds[i] < 0) {
			err = -errno;
			lm_err("loader", "cannot create ring buffer %s of %u bytes: %s", name,
			       ring_bytes, strerror(-err));
			return err;
		}
		l->ring_cnt++;
		if (bpf_map_update_elem(outer, &key, &l->ring_fds[i], BPF_ANY) < 0) {
			err = -errno;
			lm_err("loader", "cannot insert %s into map lm_rings: %s", name,
			       strerror(-err));
			return err;
		}
	}
	return 0;
}

uint32_t lm_load_record_max(uint32_t max_args)
{
	/* fixed part, comm and pcomm, args, filename (NUL dropped), exe and cwd */
	return sizeof(struct lm_exec) + 2 * LM_COMM_LEN + max_args + 3 * LM_PATH_MAX;
}

/*
 * Sizes the scratch slots: 2 * half bytes each, half a power of two above the largest record
 * (see lm_half in bpf/lifemon.bpf.c).
 */
static int lm_load_size_scratch(struct lm_load *l, uint32_t max_args)
{
	uint32_t half = 4096, slots = (uint32_t)l->ncpus * LM_LOAD_SCRATCH_SLOTS;
	int err;

	while (half < lm_load_record_max(max_args) + LM_NAME_MAX + 1)
		half <<= 1;
	l->skel->rodata->lm_half = half;
	l->skel->rodata->lm_max_args = max_args;
	err = bpf_map__set_value_size(l->skel->maps.lm_scratch, 2 * half);
	if (!err)
		err = bpf_map__set_max_entries(l->skel->maps.lm_scratch, slots);
	if (!err)
		err = bpf_map__set_max_entries(l->skel->maps.lm_claims, slots);
	if (err)
		lm_err("loader", "cannot size the scratch maps: %s", strerror(-err));
	return err;
}

int lm_load_open(const struct lm_load_opts *opts, struct lm_load **out)
{
	long page = sysconf(_SC_PAGESIZE);
	struct lm_load *l = NULL;
	int err;

	*out = NULL;
	if (opts->ring_bytes < (uint32_t)page || (opts->ring_bytes & (opts->ring_bytes - 1)) ||
	    opts->max_args_bytes < LM_ARGS_MIN || opts->max_args_bytes > LM_ARGS_MAX)
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->ncpus = libbpf_num_possible_cpus();
	if (l->ncpus <= 0) {
		err = l->ncpus < 0 ? l->ncpus : -EINVAL;
		lm_err("loader", "cannot count possible CPUs: %s", strerror(-err));
		goto out;
	}
	l->skel = lifemon__open();
	if (!l->skel) {
		err = -errno;
		lm_err("loader", "cannot open BPF skeleton: %s", strerror(-err));
		goto out;
	}
	l->skel->rodata->lm_page_shift = __builtin_ctzl(page);
	l->skel->rodata->lm_bench_tgid = opts->bench_tgid;
	/* the reader drains every ring each 5 ms; a quarter-full ring wakes it at once */
	l->skel->rodata->lm_wakeup_bytes = opts->ring_bytes / 4;
	l->skel->rodata->lm_memcg_hier = opts->memcg_hier;
	bpf_program__set_autoload(l->skel->progs.lm_bench, opts->bench_tgid != 0);
	err = lm_load_size_scratch(l, opts->max_args_bytes);
	if (err)
		goto out;
	/*
	 * Only the outer map is sized: libbpf 1.1 crashes resizing an inner-map template (its
	 * obj pointer is NULL), and the kernel's bpf_map_meta_equal() ignores max_entries for
	 * ring buffers, so rings of any size fit the 4 MiB template.
	 */
	err = bpf_map__set_max_entries(l->skel->maps.lm_rings, l->ncpus);
	if (err) {
		lm_err("loader", "cannot size map lm_rings: %s", strerror(-err));
		goto out;
	}
	err = lm_load_pick_variants(l);
	if (err)
		goto out;
	err = lifemon__load(l->skel);
	if (err) {
		lm_err("loader", "cannot load BPF programs (run with -v for the verifier log): %s",
		       strerror(-err));
		goto out;
	}
	err = lm_load_create_rings(l, opts->ring_bytes);
	if (err)
		goto out;
	*out = l;
	l = NULL;
out:
	lm_load_close(l);
	return err;
}

int lm_load_attach(struct lm_load *l)
{
	struct bpf_program *prog;
	int err = 0;

	bpf_object__for_each_program(prog, l->skel->obj) {
		struct bpf_link *link;

		if (!bpf_program__autoload(prog))
			continue;
		if (l->link_cnt == LM_LOAD_MAX_LINKS) {
			err = -E2BIG;
			goto out;
		}
		link = bpf_program__attach(prog);
		if (!link) {
			err = -errno;
			lm_err("loader", "cannot attach program %s: %s", bpf_program__name(prog),
			       strerror(-err));
			goto out;
		}
		l->links[l->link_cnt++] = link;
	}
out:
	if (err)
		lm_load_detach(l);
	return err;
}

void lm_load_detach(struct lm_load *l)
{
	int i;

	for (i = 0; i < l->link_cnt; i++)
		bpf_link__destroy(l->links[i]);
	l->link_cnt = 0;
}

bool lm_load_is_attached(const struct lm_load *l)
{
	return l->link_cnt > 0;
}

int lm_load_ring_cnt(const struct lm_load *l)
{
	return l->ring_cnt;
}

const int *lm_load_ring_fds(const struct lm_load *l)
{
	return l->ring_fds;
}

const char *lm_load_variant(const struct lm_load *l)
{
	return l->variant;
}

int lm_load_cpu_cnt(const struct lm_load *l)
{
	return l->ncpus;
}

/* Sums a per-CPU counter map into out[type]; keeps the per-CPU values if per_cpu_out. */
static int lm_load_sum(const struct lm_load *l, int map_fd, uint64_t *out, uint64_t *per_cpu_out)
{
	uint64_t *per_cpu = NULL;
	int err = 0;
	__u32 key;

	per_cpu = calloc(l->ncpus, sizeof(*per_cpu));
	if (!per_cpu)
		return -ENOMEM;
	for (key = 0; key < LM_EV_TYPE_CNT; key++) {
		int c;

		if (bpf_map_lookup_elem(map_fd, &key, per_cpu) < 0) {
			err = -errno;
			goto out;
		}
		out[key] = 0;
		for (c = 0; c < l->ncpus; c++) {
			out[key] += per_cpu[c];
			if (per_cpu_out)
				per_cpu_out[c * LM_EV_TYPE_CNT + key] = per_cpu[c];
		}
	}
out:
	free(per_cpu);
	return err;
}

int lm_load_read_counters(const struct lm_load *l, struct lm_load_counters *out)
{
	int err;

	err = lm_load_sum(l, bpf_map__fd(l->skel->maps.lm_seen), out->seen, NULL);
	if (!err)
		err = lm_load_sum(l, bpf_map__fd(l->skel->maps.lm_drops), out->dropped,
				  out->dropped_cpu);
	return err;
}

void lm_load_close(struct lm_load *l)
{
	int i;

	if (!l)
		return;
	lm_load_detach(l);
	for (i = 0; i < l->ring_cnt; i++)
		if (l->ring_fds[i] >= 0)
			close(l->ring_fds[i]);
	free(l->ring_fds);
	lifemon__destroy(l->skel);
	free(l);
}
