// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for core/cgroup.c: arbitrary bytes through lm_cgroup_parse, from a copy that
 * ends at a PROT_NONE guard page, each answer checked against the input (a container id is 64
 * lowercase hex found in it, a pod uid is canonical and found in it, a unit is one of its
 * components); then the same bytes as a learn/forget/lookup program run against an exact
 * model of the table. Built by tests/fuzz.cmake with clang -fsanitize=fuzzer,address,undefined.
 *
 * Program: repeated [op u8][id u8], learn ops followed by [len u8] and len path bytes.
 * op % 4: 0 learn, 1 forget, 2 and 3 lookup. The id byte picks one of 16 ids, the table holds
 * 16, so nothing is ever evicted and the model is exact: live ids resolve to their last path,
 * a removed id resolves until 4 more removals. The 16 ids share four neighbouring home slots
 * (wrapping round the end) of the table's 32 under its Fibonacci hash, so probe chains and
 * backward-shift deletions happen all the time.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/cgroup.h"

#define LM_FUZZ_NAME "fuzz_cgroup"
#include "tests/fuzz/fuzz_guard.h"

/* libFuzzer's entry points (the -Wmissing-prototypes build wants declarations) */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define IN_MAX 16384 /* longer inputs are cut here */
#define IDS 16
#define GRACE 4

static char *in_map; /* IN_MAX bytes, then a PROT_NONE page */
static size_t in_page;
static uint64_t ids[IDS];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	in_page = (size_t)sysconf(_SC_PAGESIZE);
	in_map = mmap(NULL, IN_MAX + in_page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		      -1, 0);
	check(in_map != MAP_FAILED, "mmap");
	check(mprotect(in_map + IN_MAX, in_page, PROT_NONE) == 0, "mprotect");
	/* home slot = top 5 bits of id * golden ratio (core/cgroup.c, 32 slots for 16 entries) */
	for (uint64_t x = 1, n = 0; n < IDS; x++) {
		unsigned int home = (unsigned int)((x * 0x9e3779b97f4a7c15ULL) >> 59);

		if (home >= 30 || home <= 1)
			ids[n++] = x;
	}
	return 0;
}

/* Copies bytes so that they end right before the guard page. */
static const char *guarded(const void *p, size_t n)
{
	char *d = in_map + IN_MAX - n;

	memcpy(d, p, n);
	return d;
}

static bool is_lhex(char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
}

static bool occurs(const char *hay, size_t n, const char *needle, size_t m)
{
	return memmem(hay, n, needle, m) != NULL;
}

/* Whether s[0..m) is a whole component of p: '/' or the start before, '/' or the end after. */
static bool is_component(const char *p, size_t n, const char *s, size_t m)
{
	size_t i;

	for (i = 0; i + m <= n; i++)
		if (!memcmp(p + i, s, m) && (i == 0 || p[i - 1] == '/') &&
		    (i + m == n || p[i + m] == '/'))
			return true;
	return false;
}

static void check_parse(const char *p, size_t n, const char *cid, const char *pod, const char *unit)
{
	static const char *const sfx[] = { ".service", ".scope",  ".slice",    ".socket",
					   ".mount",   ".swap",	  ".target",   ".timer",
					   ".path",    ".device", ".automount" };
	char alt[37];
	size_t i, l;
	bool ok;

	l = strlen(cid);
	check(l == 0 || l == 64, "container id length %zu", l);
	for (i = 0; i < l; i++)
		check(is_lhex(cid[i]), "container id byte %zu is 0x%02x", i, (unsigned char)cid[i]);
	check(l == 0 || occurs(p, n, cid, l), "container id %s not in the input", cid);

	l = strlen(pod);
	check(l == 0 || l == 36, "pod uid length %zu", l);
	for (i = 0; i < l; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			check(pod[i] == '-', "pod uid %s separator", pod);
		else
			check(is_lhex(pod[i]), "pod uid %s byte %zu", pod, i);
	}
	if (l) {
		memcpy(alt, pod, sizeof(alt));
		alt[8] = alt[13] = alt[18] = alt[23] = '_';
		check(occurs(p, n, pod, l) || occurs(p, n, alt, l), "pod uid %s not in the input",
		      pod);
	}

	l = strlen(unit);
	check(l <= 255, "unit length %zu", l);
	if (l) {
		check(is_component(p, n, unit, l), "unit %s is not a component", unit);
		for (ok = false, i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++)
			ok |= l > strlen(sfx[i]) && !strcmp(unit + l - strlen(sfx[i]), sfx[i]);
		check(ok, "unit %s has no unit suffix", unit);
		for (i = 0; i < l; i++)
			check(unit[i] != '/' && unit[i] != ' ', "unit %s byte %zu", unit, i);
	}
}

static void fuzz_parse(const uint8_t *data, size_t size)
{
	char cid[65], pod[37], unit[256], cid2[65], pod2[37], unit2[256];
	const char *p = guarded(data, size);

	lm_cgroup_parse(p, size, cid, pod, unit);
	check_parse(p, size, cid, pod, unit);
	/* a trailing '/' adds an empty component, which names nothing */
	if (size < IN_MAX) {
		char *q = in_map + IN_MAX - size - 1;

		memmove(q, p, size);
		q[size] = '/';
		lm_cgroup_parse(q, size + 1, cid2, pod2, unit2);
		check(!strcmp(cid, cid2) && !strcmp(pod, pod2) && !strcmp(unit, unit2),
		      "a trailing '/' changed the answer");
	}
}

struct model {
	int state[IDS]; /* 0 absent, 1 live, 2 removed */
	uint8_t path[IDS][256];
	size_t len[IDS];
	int dead[IDS]; /* removed ids, oldest first */
	int ndead;
};

static void model_undead(struct model *m, int id)
{
	int i;

	for (i = 0; i < m->ndead && m->dead[i] != id; i++)
		;
	check(i < m->ndead, "model: %d not in the removed queue", id);
	memmove(m->dead + i, m->dead + i + 1, (size_t)(m->ndead - i - 1) * sizeof(int));
	m->ndead--;
}

static void fuzz_table(const uint8_t *data, size_t size)
{
	struct lm_cgroup_opts o = { .mountinfo = "/dev/null",
				    .proc_cgroups = "/dev/null",
				    .max_entries = IDS,
				    .grace_cnt = GRACE };
	char cid[65], pod[37], unit[256];
	struct lm_cgroup_view v;
	struct lm_cgroup *c = NULL;
	struct model m;
	size_t i = 0, len;
	int op, id, got;

	memset(&m, 0, sizeof(m));
	check(lm_cgroup_open(&o, &c) == 0, "open");
	check(lm_cgroup_memory_hier(c) == -1, "memory hierarchy without /proc/cgroups");
	while (i + 2 <= size) {
		op = data[i] % 4;
		id = data[i + 1] % IDS;
		i += 2;
		if (op == 0) {
			if (i >= size)
				break;
			len = data[i++];
			if (len > size - i)
				len = size - i;
			lm_cgroup_learn(c, 0, ids[id], guarded(data + i, len), len);
			if (m.state[id] == 2)
				model_undead(&m, id);
			m.state[id] = 1;
			if (len == 0) {
				m.path[id][0] = '/';
				m.len[id] = 1;
			} else {
				memcpy(m.path[id], data + i, len);
				m.len[id] = len;
			}
			i += len;
		} else if (op == 1) {
			lm_cgroup_forget(c, 0, ids[id]);
			if (m.state[id] == 1) {
				m.state[id] = 2;
				m.dead[m.ndead++] = id;
				if (m.ndead > GRACE) {
					m.state[m.dead[0]] = 0;
					model_undead(&m, m.dead[0]);
				}
			}
		} else {
			check(lm_cgroup_lookup(c, 5, ids[id], &v) == -ENOENT, "hierarchy 5");
			got = lm_cgroup_lookup(c, 0, ids[id], &v);
			if (m.state[id] == 0) {
				check(got == -ENOENT, "id %d: found, the model has none", id);
				continue;
			}
			check(got == 0, "id %d: %d, the model has it (state %d)", id, got,
			      m.state[id]);
			check(v.path_len == m.len[id] && !memcmp(v.path, m.path[id], m.len[id]) &&
				      v.path[v.path_len] == '\0',
			      "id %d: wrong path", id);
			lm_cgroup_parse((const char *)m.path[id], m.len[id], cid, pod, unit);
			check(!strcmp(v.container_id ? v.container_id : "", cid), "id %d: cid", id);
			check(!strcmp(v.pod_uid ? v.pod_uid : "", pod), "id %d: pod", id);
			check(!strcmp(v.unit ? v.unit : "", unit), "id %d: unit", id);
		}
	}
	lm_cgroup_close(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > IN_MAX - 1)
		size = IN_MAX - 1;
	fuzz_parse(data, size);
	fuzz_table(data, size);
	return 0;
}
