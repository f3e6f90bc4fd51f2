// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for core/rec.c, the user-side guard against corrupt kernel records:
 * arbitrary bytes as one record. The record ends at a PROT_NONE page (its pad up to 8 bytes
 * poisoned), so a read past its size faults. When lm_rec_decode accepts it, every view must
 * lie inside it, lm_json_event with lm_json_event_max(LM_ARGS_MAX) bytes must write one line
 * of strict JSON, and lm_rec_path must stay inside its output at every cap. Built by
 * tests/fuzz.cmake with clang -fsanitize=fuzzer,address,undefined; single-threaded.
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

#include <jansson.h>
#include <sanitizer/asan_interface.h>

#include "bpf/lm_event.h"
#include "core/json.h"
#include "core/rec.h"

#define LM_FUZZ_NAME "fuzz_rec"
#include "tests/fuzz/fuzz_guard.h"

/* libFuzzer's entry points (the -Wmissing-prototypes build wants declarations) */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define IN_MAX (1u << 20) /* longer inputs are cut here */

static struct guard in_g, out_g, exe_g, cwd_g;
static size_t line_max;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	line_max = lm_json_event_max(LM_ARGS_MAX);
	guard_map(&in_g, IN_MAX + 8);
	guard_map(&out_g, line_max);
	guard_map(&exe_g, LM_PATH_MAX + 1);
	guard_map(&cwd_g, LM_PATH_MAX + 1);
	return 0;
}

static void check_inside(const struct lm_rec_view *v, const struct lm_rec_str *s,
			 const char *name)
{
	const char *base = (const char *)v->c;

	check(s->len == 0 || (s->p >= base && s->p + s->len <= base + v->size),
	      "%s view (%u bytes) outside the %u-byte record", name, s->len, v->size);
}

/* lm_rec_path at every cap up to the full length (and one short of a few): within cap. */
static size_t check_path(const struct lm_rec_str *w, bool cut, struct guard *g, char **out)
{
	size_t full, got, cap;
	char *buf = guard_end(g, LM_PATH_MAX + 1);

	full = lm_rec_path(w, cut, buf, LM_PATH_MAX + 1);
	/* the root's empty walk is "/"; otherwise as long as the walk, one less when cut */
	check(full <= (size_t)w->len + 1 && (w->len || full == 1),
	      "path of %zu bytes from a %u-byte walk", full, w->len);
	for (cap = 0; cap < full; cap += 1 + cap / 4) {
		buf = guard_end(g, cap);
		got = lm_rec_path(w, cut, buf, cap);
		check(got == cap, "cap %zu of %zu: %zu bytes", cap, full, got);
	}
	/* the output the line uses ends at the guard */
	*out = guard_end(g, full);
	got = lm_rec_path(w, cut, *out, full);
	check(got == full, "exact cap %zu: %zu bytes", full, got);
	return full;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lm_json_ev ev = { 0 };
	struct lm_rec_view v;
	const char *why = NULL;
	size_t pad, len;
	json_error_t jerr;
	json_t *j;
	char *rec, *out;
	int rc, n;

	if (size > IN_MAX)
		size = IN_MAX;
	/* 8-aligned, ending at the guard; the pad bytes before it are poisoned */
	pad = (8 - size % 8) % 8;
	rec = guard_end(&in_g, size + pad);
	ASAN_UNPOISON_MEMORY_REGION(guard_end(&in_g, 8), 8);
	memcpy(rec, data, size);
	ASAN_POISON_MEMORY_REGION(rec + size, pad);
	rc = lm_rec_decode(rec, (uint32_t)size, &v, &why);
	if (rc) {
		check(rc == -EINVAL && why && *why, "rejected with %d", rc);
		return 0;
	}
	check(v.c == (const void *)rec && v.size == size, "view of another record");
	check_inside(&v, &v.comm, "comm");
	check_inside(&v, &v.pcomm, "pcomm");
	check_inside(&v, &v.args, "args");
	check_inside(&v, &v.filename, "filename");
	check_inside(&v, &v.exe, "exe");
	check_inside(&v, &v.cwd, "cwd");
	check_inside(&v, &v.cg_path, "cg_path");
	check(v.comm.len <= LM_COMM_LEN && v.pcomm.len <= LM_COMM_LEN &&
		  v.args.len <= LM_ARGS_MAX && v.filename.len <= LM_PATH_MAX &&
		  v.exe.len <= LM_PATH_MAX && v.cwd.len <= LM_PATH_MAX &&
		  v.cg_path.len <= LM_PATH_MAX,
	      "a view past its cap");
	check(v.c->type >= LM_EV_EXEC && v.c->type <= LM_EV_CGROUP, "type %u", v.c->type);
	if (v.cg)
		return 0; /* not an event: the serializer only learns its path */

	ev.v = &v;
	ev.seq = v.c->ts_ns;
	ev.unix_ns = v.c->start_ns;
	if (v.exec) {
		ev.exe_len = check_path(&v.exe, v.c->flags & LM_F_TRUNC_EXE, &exe_g, &out);
		ev.exe = out;
		ev.cwd_len = check_path(&v.cwd, v.c->flags & LM_F_TRUNC_CWD, &cwd_g, &out);
		ev.cwd = out;
	}
	out = guard_end(&out_g, line_max);
	n = lm_json_event(out, line_max, &ev);
	check(n > 0 && (size_t)n <= line_max, "lm_json_event_max(%u) did not suffice: %d",
	      LM_ARGS_MAX, n);
	len = (size_t)n;
	check(out[len - 1] == '\n' && !memchr(out, '\n', len - 1), "not one line");
	check(!memchr(out, '\0', len), "NUL in the line");
	j = json_loadb(out, len - 1, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &jerr);
	check(j && json_is_object(j), "not strict JSON: %s at column %d: %.*s", jerr.text,
	      jerr.column, n > 2000 ? 2000 : n, out);
	json_decref(j);
	/* one byte short: -ENOSPC, nothing past the cap */
	out = guard_end(&out_g, len - 1);
	check(lm_json_event(out, len - 1, &ev) == -ENOSPC, "cap one short of %zu", len);
	return 0;
}
