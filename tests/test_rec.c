// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for core/rec.c (record decoding, the user-side guard against corrupt kernel
 * records): valid records of each type and many sizes decode to views of exactly their
 * parts; short, foreign, unknown, over-long and overrunning records are refused with -EINVAL,
 * and nothing is read past a record's end (each ends at a PROT_NONE page, its pad poisoned
 * under ASan). lm_rec_path puts walked paths in order. Single-threaded.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "bpf/lm_event.h"
#include "core/rec.h"
#include "tests/rec_build.h"

/* room for a record with one length past its cap */
#define IN_MAX (RB_REC_MAX + 16)

static struct rb_guard in_g, out_g;
static uint64_t tmp[IN_MAX / 8];
static char big[LM_ARGS_MAX + 8]; /* string bytes for records at their caps */
static char cur_case[256];

static int group_setup(void **state)
{
	(void)state;
	memset(big, 'a', sizeof(big));
	if (rb_guard_map(&in_g, IN_MAX) || rb_guard_map(&out_g, 2 * LM_PATH_MAX))
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	rb_guard_unmap(&in_g);
	rb_guard_unmap(&out_g);
	return 0;
}

/* Copies the record in tmp so it ends at the guard (8-aligned) and decodes it there. */
static int decode_at_guard(uint32_t size, struct lm_rec_view *v, const char **why)
{
	void *rec = rb_guard_rec(&in_g, size);

	memcpy(rec, tmp, size);
	return lm_rec_decode(rec, size, v, why);
}

/* A view's string lies inside the record and holds the bytes that were put there. */
static void expect_part(const struct lm_rec_view *v, const struct lm_rec_str *s,
			struct rb_bytes want, const char *name)
{
	const char *base = (const char *)v->c;

	if (s->len != want.len)
		fail_msg("%s: %s has %u bytes, want %zu", cur_case, name, s->len, want.len);
	if (!s->p || s->p < base || s->p + s->len > base + v->size)
		fail_msg("%s: %s lies outside the record", cur_case, name);
	if (want.len && memcmp(s->p, want.p, want.len))
		fail_msg("%s: %s holds other bytes", cur_case, name);
}

static void expect_valid(const struct rb_spec *s, uint32_t extra)
{
	struct lm_rec_view v;
	const char *why = NULL;
	uint32_t size = rb_build(s, tmp, sizeof(tmp));
	int rc;

	/* the ring may hand a record with up to 7 bytes after its parts */
	memset((char *)tmp + size, 0, extra);
	rc = decode_at_guard(size + extra, &v, &why);
	if (rc)
		fail_msg("%s (+%u): rejected: %d %s", cur_case, extra, rc, why ? why : "");
	assert_ptr_equal(v.c->type, s->type);
	assert_int_equal(v.size, size + extra);
	/* every part a type carries points into the record, even an empty one */
	if (s->type == LM_EV_CGROUP)
		assert_int_equal(v.comm.len, 0);
	else
		expect_part(&v, &v.comm, s->comm, "comm");
	assert_true((v.exec != NULL) == (s->type == LM_EV_EXEC));
	assert_true((v.exit != NULL) == (s->type == LM_EV_EXIT));
	assert_true((v.oom != NULL) == (s->type == LM_EV_OOM));
	assert_true((v.cg != NULL) == (s->type == LM_EV_CGROUP));
	if (s->type == LM_EV_EXEC) {
		expect_part(&v, &v.pcomm, s->pcomm, "pcomm");
		expect_part(&v, &v.args, s->args, "args");
		expect_part(&v, &v.filename, s->filename, "filename");
		expect_part(&v, &v.exe, s->exe, "exe");
		expect_part(&v, &v.cwd, s->cwd, "cwd");
		assert_int_equal(v.exec->argc, s->argc);
		assert_int_equal(v.exec->euid, s->euid);
	} else {
		assert_int_equal(v.pcomm.len + v.args.len + v.filename.len + v.exe.len + v.cwd.len,
				 0);
	}
	if (s->type == LM_EV_CGROUP)
		expect_part(&v, &v.cg_path, s->cg_path, "cg_path");
	else
		assert_int_equal(v.cg_path.len, 0);
	if (s->type == LM_EV_EXIT)
		assert_true(v.exit->cpu_user_ns == s->cpu_user_ns);
	if (s->type == LM_EV_OOM)
		assert_true(v.oom->pgtables_kb == s->pgtables_kb);
	assert_int_equal(v.c->pid, s->pid);
}

static void expect_invalid(uint32_t size, const char *what)
{
	struct lm_rec_view v;
	const char *why = NULL;
	int rc;

	snprintf(cur_case, sizeof(cur_case), "%s, %u bytes", what, size);
	rc = decode_at_guard(size, &v, &why);
	if (rc != -EINVAL)
		fail_msg("%s: decoded (%d), want -EINVAL", cur_case, rc);
	if (!why || !*why)
		fail_msg("%s: no reason given", cur_case);
	/* why may be NULL */
	rc = decode_at_guard(size, &v, NULL);
	if (rc != -EINVAL)
		fail_msg("%s: without why: %d, want -EINVAL", cur_case, rc);
}

static const uint32_t lens_path[] = { 0, 1, 7, 8, 255, LM_PATH_MAX - 1, LM_PATH_MAX };
static const uint32_t lens_args[] = { 0, 1, 2, 9, 4096, LM_ARGS_MAX - 1, LM_ARGS_MAX };

static void test_rec_accepts_exec_every_size(void **state)
{
	struct rb_spec s;
	uint32_t c, p, a, f, x, w, extra;

	(void)state;
	for (c = 0; c <= LM_COMM_LEN; c++) {
		for (p = 0; p <= LM_COMM_LEN; p += (c == 5 ? 1 : 8)) {
			for (extra = 0; extra < 8; extra++) {
				snprintf(cur_case, sizeof(cur_case), "EXEC comm %u pcomm %u", c, p);
				rb_spec_init(&s, LM_EV_EXEC);
				s.comm = (struct rb_bytes){ "0123456789abcdef", c };
				s.pcomm = (struct rb_bytes){ "fedcba9876543210", p };
				s.argc = 7;
				s.euid = 3;
				expect_valid(&s, extra);
			}
		}
	}
	for (a = 0; a < sizeof(lens_args) / sizeof(lens_args[0]); a++) {
		for (f = 0; f < sizeof(lens_path) / sizeof(lens_path[0]); f++) {
			for (x = 0; x < sizeof(lens_path) / sizeof(lens_path[0]); x += 2) {
				for (w = 0; w < sizeof(lens_path) / sizeof(lens_path[0]); w += 3) {
					snprintf(cur_case, sizeof(cur_case),
						 "EXEC args %u filename %u exe %u cwd %u",
						 lens_args[a], lens_path[f], lens_path[x],
						 lens_path[w]);
					rb_spec_init(&s, LM_EV_EXEC);
					s.comm = RB_LIT("x");
					s.pcomm = RB_LIT("");
					s.args = (struct rb_bytes){ big, lens_args[a] };
					s.filename = (struct rb_bytes){ big + 1, lens_path[f] };
					s.exe = (struct rb_bytes){ big + 2, lens_path[x] };
					s.cwd = (struct rb_bytes){ big + 3, lens_path[w] };
					expect_valid(&s, (a + f + x + w) % 8);
				}
			}
		}
	}
}

static void test_rec_accepts_exit_oom_cgroup_every_size(void **state)
{
	static const uint8_t types[] = { LM_EV_EXIT, LM_EV_OOM };
	struct rb_spec s;
	uint32_t c, extra, p;
	size_t t;

	(void)state;
	for (t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		for (c = 0; c <= LM_COMM_LEN; c++) {
			for (extra = 0; extra < 8; extra++) {
				snprintf(cur_case, sizeof(cur_case), "type %u comm %u", types[t],
					 c);
				rb_spec_init(&s, types[t]);
				s.comm = (struct rb_bytes){ "0123456789abcdef", c };
				s.cpu_user_ns = 11;
				s.pgtables_kb = 12;
				s.flags = 0xff;
				expect_valid(&s, extra);
			}
		}
	}
	for (p = 0; p < sizeof(lens_path) / sizeof(lens_path[0]); p++) {
		for (extra = 0; extra < 8; extra++) {
			snprintf(cur_case, sizeof(cur_case), "CGROUP path %u", lens_path[p]);
			rb_spec_init(&s, LM_EV_CGROUP);
			s.comm = RB_LIT("");
			s.cg_path = (struct rb_bytes){ big, lens_path[p] };
			expect_valid(&s, extra);
		}
	}
}

static void test_rec_rejects_short_and_foreign(void **state)
{
	static const uint8_t types[] = { LM_EV_EXEC, LM_EV_EXIT, LM_EV_OOM, LM_EV_CGROUP };
	static const uint8_t bad_types[] = { 0, 5, LM_EV_TYPE_CNT, 128, 255 };
	static const uint8_t bad_versions[] = { 0, LM_EVENT_VERSION - 1, LM_EVENT_VERSION + 1,
						255 };
	struct lm_common *c = (struct lm_common *)tmp;
	struct rb_spec s;
	uint32_t size, full, fixed;
	size_t t, i;

	(void)state;
	for (t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		rb_spec_init(&s, types[t]);
		s.comm = RB_LIT("");
		full = rb_build(&s, tmp, sizeof(tmp));
		/* shorter than lm_common, then shorter than the type's fixed part */
		for (size = 0; size < sizeof(struct lm_common); size++)
			expect_invalid(size, "shorter than lm_common");
		fixed = full; /* comm and strings empty: the fixed part alone */
		for (size = sizeof(struct lm_common); size < fixed; size++)
			expect_invalid(size, "shorter than its fixed part");
		for (i = 0; i < sizeof(bad_versions); i++) {
			rb_build(&s, tmp, sizeof(tmp));
			c->version = bad_versions[i];
			expect_invalid(full, "wrong version");
		}
		for (i = 0; i < sizeof(bad_types); i++) {
			rb_build(&s, tmp, sizeof(tmp));
			c->type = bad_types[i];
			expect_invalid(full, "unknown type");
		}
		/* comm_len beyond TASK_COMM_LEN, with the bytes there */
		s.comm = (struct rb_bytes){ big, LM_COMM_LEN + 1 };
		full = rb_build(&s, tmp, sizeof(tmp));
		expect_invalid(full, "comm_len 17");
		s.comm = (struct rb_bytes){ big, 255 };
		full = rb_build(&s, tmp, sizeof(tmp));
		expect_invalid(full, "comm_len 255");
	}
}

/* Each length one past its cap, the record long enough to hold it: refused for the cap. */
static void test_rec_rejects_lengths_beyond_caps(void **state)
{
	struct rb_spec s;
	uint32_t size;
	int f;

	(void)state;
	for (f = 0; f < 5; f++) {
		rb_spec_init(&s, LM_EV_EXEC);
		s.comm = RB_LIT("x");
		switch (f) {
		case 0:
			s.pcomm = (struct rb_bytes){ big, LM_COMM_LEN + 1 };
			break;
		case 1:
			s.args = (struct rb_bytes){ big, LM_ARGS_MAX + 1 };
			break;
		case 2:
			s.filename = (struct rb_bytes){ big, LM_PATH_MAX + 1 };
			break;
		case 3:
			s.exe = (struct rb_bytes){ big, LM_PATH_MAX + 1 };
			break;
		default:
			s.cwd = (struct rb_bytes){ big, LM_PATH_MAX + 1 };
			break;
		}
		size = rb_build(&s, tmp, sizeof(tmp));
		expect_invalid(size, f == 0 ? "pcomm_len 17" : "EXEC length past its cap");
		/* and the largest the cap allows is fine */
		s.pcomm.len = s.pcomm.len ? LM_COMM_LEN : 0;
		s.args.len = s.args.len ? LM_ARGS_MAX : 0;
		s.filename.len = s.filename.len ? LM_PATH_MAX : 0;
		s.exe.len = s.exe.len ? LM_PATH_MAX : 0;
		s.cwd.len = s.cwd.len ? LM_PATH_MAX : 0;
		snprintf(cur_case, sizeof(cur_case), "EXEC length at its cap, field %d", f);
		expect_valid(&s, 0);
	}
	rb_spec_init(&s, LM_EV_CGROUP);
	s.comm = RB_LIT("");
	s.cg_path = (struct rb_bytes){ big, LM_PATH_MAX + 1 };
	size = rb_build(&s, tmp, sizeof(tmp));
	expect_invalid(size, "CGROUP path past its cap");
}

/*
 * Each string claims one byte more than the record holds: the strings after it are empty and
 * the record ends right at the guard, so reading the claimed byte would fault.
 */
static void test_rec_rejects_strings_past_end(void **state)
{
	static const char *const names[] = { "comm", "pcomm", "args", "filename", "exe", "cwd" };
	struct lm_exec *x = (struct lm_exec *)tmp;
	struct lm_common *c = (struct lm_common *)tmp;
	struct lm_cgroup_rec *g = (struct lm_cgroup_rec *)tmp;
	struct rb_bytes *fields[6];
	struct rb_spec s;
	uint32_t size, off, k, j;
	char what[64];

	(void)state;
	for (k = 0; k < 6; k++) {
		rb_spec_init(&s, LM_EV_EXEC);
		fields[0] = &s.comm;
		fields[1] = &s.pcomm;
		fields[2] = &s.args;
		fields[3] = &s.filename;
		fields[4] = &s.exe;
		fields[5] = &s.cwd;
		off = offsetof(struct lm_exec, data);
		for (j = 0; j < 6; j++) {
			*fields[j] = (struct rb_bytes){ big, 0 };
			if (j < k) {
				fields[j]->len = j < 2 ? 3 : 10;
			} else if (j == k) {
				/* end the record on an 8-byte boundary, right at the guard */
				fields[j]->len = (8 - (off % 8)) % 8 + (j < 2 ? 0 : 8);
			}
			off += (uint32_t)fields[j]->len;
		}
		size = rb_build(&s, tmp, sizeof(tmp));
		assert_int_equal(size % 8, 0);
		snprintf(cur_case, sizeof(cur_case), "EXEC %s exactly to the end", names[k]);
		expect_valid(&s, 0);
		rb_build(&s, tmp, sizeof(tmp));
		switch (k) {
		case 0:
			c->comm_len++;
			break;
		case 1:
			x->pcomm_len++;
			break;
		case 2:
			x->args_len++;
			break;
		case 3:
			x->filename_len++;
			break;
		case 4:
			x->exe_len++;
			break;
		default:
			x->cwd_len++;
			break;
		}
		snprintf(what, sizeof(what), "EXEC %s one byte past the end", names[k]);
		expect_invalid(size, what);
	}
	/* EXIT (comm 4: 96 bytes), OOM (comm 0 or 8: 112, 120), CGROUP (path 6: 80) */
	rb_spec_init(&s, LM_EV_EXIT);
	s.comm = RB_LIT("abcd");
	size = rb_build(&s, tmp, sizeof(tmp));
	c->comm_len++;
	expect_invalid(size, "EXIT comm past the end");
	rb_spec_init(&s, LM_EV_OOM);
	s.comm = RB_LIT("abcdefgh");
	size = rb_build(&s, tmp, sizeof(tmp));
	c->comm_len++;
	expect_invalid(size, "OOM comm past the end");
	s.comm = RB_LIT("");
	size = rb_build(&s, tmp, sizeof(tmp));
	c->comm_len = 1;
	expect_invalid(size, "OOM comm past the end, empty");
	rb_spec_init(&s, LM_EV_CGROUP);
	s.cg_path = RB_LIT("/a/b/c");
	size = rb_build(&s, tmp, sizeof(tmp));
	g->path_len++;
	expect_invalid(size, "CGROUP path past the end");
	/* a length at its cap in a short record */
	rb_spec_init(&s, LM_EV_EXEC);
	s.comm = RB_LIT("abcd");
	size = rb_build(&s, tmp, sizeof(tmp));
	x->args_len = LM_ARGS_MAX;
	expect_invalid(size, "EXEC args_len at its cap in a 96-byte record");
}

/* 8 or more bytes after the parts: the size and the lengths disagree. */
static void test_rec_rejects_trailing_garbage(void **state)
{
	static const uint8_t types[] = { LM_EV_EXEC, LM_EV_EXIT, LM_EV_OOM, LM_EV_CGROUP };
	static const uint32_t extras[] = { 8, 9, 15, 16, 100, 4096 };
	struct rb_spec s;
	uint32_t size;
	size_t t, i;

	(void)state;
	for (t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		for (i = 0; i < sizeof(extras) / sizeof(extras[0]); i++) {
			rb_spec_init(&s, types[t]);
			s.cg_path = RB_LIT("/x");
			size = rb_build(&s, tmp, sizeof(tmp));
			memset((char *)tmp + size, 0x5a, extras[i]);
			expect_invalid(size + extras[i], "trailing garbage");
		}
	}
}

/* lm_rec_path of `walked` (cut or not) is `want`, and every smaller cap gives its prefix. */
static void check_path(const char *walked, size_t wlen, bool cut, const char *want, size_t n)
{
	struct lm_rec_str w = { walked, (uint32_t)wlen };
	size_t cap, got;
	char *out;

	out = rb_guard_end(&out_g, 2 * LM_PATH_MAX);
	got = lm_rec_path(&w, cut, out, 2 * LM_PATH_MAX);
	if (got != n || memcmp(out, want, n))
		fail_msg("%s: \"%.*s\" (%zu bytes), want \"%.*s\"", cur_case, (int)got, out, got,
			 (int)n, want);
	for (cap = 0; cap <= n + 1; cap++) {
		/* the output ends at the guard: a byte written past cap faults */
		out = rb_guard_end(&out_g, cap);
		got = lm_rec_path(&w, cut, out, cap);
		if (got != (cap < n ? cap : n) || memcmp(out, want, got))
			fail_msg("%s: cap %zu: %zu bytes \"%.*s\"", cur_case, cap, got, (int)got,
				 out);
	}
}

#define CHECK_PATH(walked, cut, want) \
	check_path(walked, sizeof(walked) - 1, cut, want, sizeof(want) - 1)

static void test_rec_path_in_order(void **state)
{
	(void)state;
	snprintf(cur_case, sizeof(cur_case), "root");
	CHECK_PATH("", false, "/");
	snprintf(cur_case, sizeof(cur_case), "one component");
	CHECK_PATH("/tmp", false, "/tmp");
	snprintf(cur_case, sizeof(cur_case), "several");
	CHECK_PATH("/true/bin/usr", false, "/usr/bin/true");
	CHECK_PATH("/g/f/e/d/c/b/a", false, "/a/b/c/d/e/f/g");
	snprintf(cur_case, sizeof(cur_case), "cut");
	CHECK_PATH("/c/b", true, "b/c");
	CHECK_PATH("/leaf", true, "leaf");
	snprintf(cur_case, sizeof(cur_case), "odd bytes");
	CHECK_PATH("/\xff\xfe/ a b /\n\t\"/..", false, "/../\n\t\"/ a b /\xff\xfe");
	CHECK_PATH("/x\0y/\0", false, "/\0/x\0y");
	CHECK_PATH("/memfd:x (deleted)/\xe2\x80\xa8", false, "/\xe2\x80\xa8/memfd:x (deleted)");
	CHECK_PATH("/\xc3/\xa9", true, "\xa9/\xc3");
}

/* Random names: the walk the helper writes comes back as the path it walked. */
static void test_rec_path_random_roundtrip(void **state)
{
	static char path[LM_PATH_MAX + 1], walked[LM_PATH_MAX + 2];
	uint64_t x = 0x6c69666d6f6e0004ULL;
	size_t len, wlen, i, it;
	bool cut;

	(void)state;
	for (it = 0; it < 3000; it++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		len = 1 + x % 300;
		cut = x >> 40 & 1;
		for (i = 0; i < len; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			path[i] = (char)(x % 5 == 0 ? '/' : x >> 24);
		}
		path[0] = cut ? 'c' : '/';
		wlen = rb_walk(path, len, walked);
		snprintf(cur_case, sizeof(cur_case), "random path %zu (%zu bytes, cut %d)", it, len,
			 cut);
		check_path(walked, wlen, cut, path, len);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rec_accepts_exec_every_size),
		cmocka_unit_test(test_rec_accepts_exit_oom_cgroup_every_size),
		cmocka_unit_test(test_rec_rejects_short_and_foreign),
		cmocka_unit_test(test_rec_rejects_lengths_beyond_caps),
		cmocka_unit_test(test_rec_rejects_strings_past_end),
		cmocka_unit_test(test_rec_rejects_trailing_garbage),
		cmocka_unit_test(test_rec_path_in_order),
		cmocka_unit_test(test_rec_path_random_roundtrip),
	};

	return cmocka_run_group_tests_name("rec", tests, group_setup, group_teardown);
}
