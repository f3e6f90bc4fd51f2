// SPDX-License-Identifier: GPL-2.0
/*
 * Test helper: kernel-format records built like bpf/lifemon.bpf.c writes them, and buffers
 * that end at a PROT_NONE guard page. Linked into test_json and test_rec; single-threaded.
 */
#include "tests/rec_build.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define RB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RB_ASAN 1
#endif
#endif
#ifdef RB_ASAN
#include <sanitizer/asan_interface.h>
#endif

void rb_spec_init(struct rb_spec *s, uint8_t type)
{
	memset(s, 0, sizeof(*s));
	s->type = type;
	s->ts_ns = 123456789;
	s->pid = 4242;
	s->tid = 4243;
	s->ppid = 1;
	s->uid = 1000;
	s->comm = RB_LIT("bash");
}

static void rb_put(char *base, size_t cap, size_t *off, struct rb_bytes b)
{
	if (b.len > cap - *off) {
		fprintf(stderr, "rb_build: record longer than its buffer (%zu bytes)\n", cap);
		abort();
	}
	if (b.len)
		memcpy(base + *off, b.p, b.len);
	*off += b.len;
}

uint32_t rb_build(const struct rb_spec *s, void *out, size_t cap)
{
	struct lm_common c = { 0 };
	char *b = out;
	size_t off, pad;

	c.ts_ns = s->ts_ns;
	c.t0_back_ns = s->t0_back_ns;
	c.cpu_drops = s->cpu_drops;
	c.version = LM_EVENT_VERSION;
	c.type = s->type;
	c.flags = s->flags;
	c.comm_len = (uint8_t)s->comm.len;
	c.pid = s->pid;
	c.tid = s->tid;
	c.ppid = s->ppid;
	c.uid = s->uid;
	c.aux = s->aux;
	c.start_ns = s->start_ns;
	c.pstart_ns = s->pstart_ns;
	c.cgroup_id = s->cgroup_id;
	c.memcg_id = s->memcg_id;
	if (cap < sizeof(struct lm_oom)) {
		fprintf(stderr, "rb_build: buffer of %zu bytes\n", cap);
		abort();
	}
	memset(out, 0, sizeof(struct lm_oom));
	switch (s->type) {
	case LM_EV_EXEC: {
		struct lm_exec e = { .c = c };

		e.euid = s->euid;
		e.argc = s->argc;
		e.args_len = (uint32_t)s->args.len;
		e.filename_len = (uint16_t)s->filename.len;
		e.exe_len = (uint16_t)s->exe.len;
		e.cwd_len = (uint16_t)s->cwd.len;
		e.pcomm_len = (uint8_t)s->pcomm.len;
		off = offsetof(struct lm_exec, data);
		memcpy(b, &e, off);
		rb_put(b, cap, &off, s->comm);
		rb_put(b, cap, &off, s->pcomm);
		rb_put(b, cap, &off, s->args);
		rb_put(b, cap, &off, s->filename);
		rb_put(b, cap, &off, s->exe);
		rb_put(b, cap, &off, s->cwd);
		break;
	}
	case LM_EV_EXIT: {
		struct lm_exit e = { .c = c };

		e.cpu_user_ns = s->cpu_user_ns;
		e.cpu_sys_ns = s->cpu_sys_ns;
		e.max_rss_kb = s->max_rss_kb;
		off = offsetof(struct lm_exit, data);
		memcpy(b, &e, off);
		rb_put(b, cap, &off, s->comm);
		break;
	}
	case LM_EV_OOM: {
		struct lm_oom e = { .c = c };

		e.total_vm_kb = s->total_vm_kb;
		e.anon_rss_kb = s->anon_rss_kb;
		e.file_rss_kb = s->file_rss_kb;
		e.shmem_rss_kb = s->shmem_rss_kb;
		e.pgtables_kb = s->pgtables_kb;
		off = offsetof(struct lm_oom, data);
		memcpy(b, &e, off);
		rb_put(b, cap, &off, s->comm);
		break;
	}
	case LM_EV_CGROUP: {
		struct lm_cgroup_rec e = { .c = c };

		e.path_len = (uint16_t)s->cg_path.len;
		off = offsetof(struct lm_cgroup_rec, data);
		memcpy(b, &e, off);
		rb_put(b, cap, &off, s->cg_path);
		break;
	}
	default:
		/* an unknown type: the common part alone */
		off = sizeof(c);
		memcpy(b, &c, off);
		break;
	}
	pad = (8 - off % 8) % 8;
	if (pad > cap - off) {
		fprintf(stderr, "rb_build: no room for the pad in %zu bytes\n", cap);
		abort();
	}
	memset(b + off, 0, pad);
	return (uint32_t)off;
}

size_t rb_walk(const char *path, size_t len, char *out)
{
	size_t end = len, start, n = 0;
	size_t first = len && path[0] == '/' ? 1 : 0;

	if (len == first) {
		/* "/" alone: one empty component; "" nothing */
		if (first)
			out[n++] = '/';
		return n;
	}
	/* components of path[first..len) from the last (the leaf) to the first */
	for (;;) {
		start = end;
		while (start > first && path[start - 1] != '/')
			start--;
		out[n++] = '/';
		memcpy(out + n, path + start, end - start);
		n += end - start;
		if (start == first)
			break;
		end = start - 1;
	}
	return n;
}

int rb_guard_map(struct rb_guard *g, size_t size)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	int err;

	memset(g, 0, sizeof(*g));
	g->size = (size + page - 1) / page * page;
	g->map = mmap(NULL, g->size + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		      0);
	if (g->map == MAP_FAILED) {
		err = -errno;
		g->map = NULL;
		return err;
	}
	if (mprotect(g->map + g->size, page, PROT_NONE)) {
		err = -errno;
		rb_guard_unmap(g);
		return err;
	}
	return 0;
}

void rb_guard_unmap(struct rb_guard *g)
{
	if (g->map)
		munmap(g->map, g->size + (size_t)sysconf(_SC_PAGESIZE));
	g->map = NULL;
}

static void rb_guard_unpoison(struct rb_guard *g)
{
#ifdef RB_ASAN
	if (g->poisoned_len)
		ASAN_UNPOISON_MEMORY_REGION(g->poisoned, g->poisoned_len);
#endif
	g->poisoned = NULL;
	g->poisoned_len = 0;
}

char *rb_guard_end(struct rb_guard *g, size_t len)
{
	if (len > g->size) {
		fprintf(stderr, "rb_guard_end: %zu bytes > region of %zu\n", len, g->size);
		abort();
	}
	rb_guard_unpoison(g);
	return g->map + g->size - len;
}

void *rb_guard_rec(struct rb_guard *g, size_t len)
{
	size_t pad = (8 - len % 8) % 8;
	char *p = rb_guard_end(g, len + pad);

	if (pad) {
		g->poisoned = p + len;
		g->poisoned_len = pad;
#ifdef RB_ASAN
		ASAN_POISON_MEMORY_REGION(g->poisoned, pad);
#endif
	}
	return p;
}
