// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for core/json.c (the serializer's pure writer): records built in the kernel's
 * variable-size format (tests/rec_build.h), decoded by lm_rec_decode and written by
 * lm_json_event. Every byte value through comm and the other strings, every line checked by
 * jansson's strict parser, the keys and values of each event type, the line bound
 * lm_json_event_max, and writes that must stop before a PROT_NONE guard page (inputs end at
 * one too). Single-threaded; owns the guard mappings for the group run.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <linux/types.h>

#include "bpf/lm_event.h"
#include "core/json.h"
#include "core/rec.h"
#include "tests/rec_build.h"

#define U64_MAX_TXT "18446744073709551615"
#define U32_MAX_TXT "4294967295"
/* Worst case of a string body: every byte escaped as \u00XX. */
#define STR_BODY_MAX (6 * LM_COMM_LEN)
/* Loss notices are short */
#define NOTICE_MAX 256
/* Longest string a test feeds to the reference decoder */
#define REF_MAX (LM_ARGS_MAX + LM_PATH_MAX)

#define guard_end(g, len) rb_guard_end(g, len)

static struct rb_guard out_g;	/* writer output */
static struct rb_guard in_g;	/* the record: nothing may be read past its end */
static struct rb_guard str_g;	/* lm_json_str input */
/* what the serializer resolves, each ending at a guard: read exactly by its length */
static struct rb_guard exe_g, cwd_g, cg_g, memcg_g, cid_g, pod_g, unit_g;
/* lm_json_event_max(LM_ARGS_MAX): the longest line any event may need */
static size_t line_max;

/* What the current check is about, printed with every failure from a shared helper. */
static char cur_case[256];

#define expect(cond)                                                                      \
	do {                                                                              \
		if (!(cond))                                                              \
			fail_msg("%s: expected %s (line %d)", cur_case, #cond, __LINE__); \
	} while (0)

static int group_setup(void **state)
{
	(void)state;
	line_max = lm_json_event_max(LM_ARGS_MAX);
	if (rb_guard_map(&out_g, line_max) || rb_guard_map(&in_g, RB_REC_MAX) ||
	    rb_guard_map(&str_g, REF_MAX) || rb_guard_map(&exe_g, LM_PATH_MAX) ||
	    rb_guard_map(&cwd_g, LM_PATH_MAX) || rb_guard_map(&cg_g, LM_PATH_MAX) ||
	    rb_guard_map(&memcg_g, LM_PATH_MAX) || rb_guard_map(&cid_g, 128) ||
	    rb_guard_map(&pod_g, 128) || rb_guard_map(&unit_g, 512))
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	rb_guard_unmap(&out_g);
	rb_guard_unmap(&in_g);
	rb_guard_unmap(&str_g);
	rb_guard_unmap(&exe_g);
	rb_guard_unmap(&cwd_g);
	rb_guard_unmap(&cg_g);
	rb_guard_unmap(&memcg_g);
	rb_guard_unmap(&cid_g);
	rb_guard_unmap(&pod_g);
	rb_guard_unmap(&unit_g);
	return 0;
}

/* splitmix64: a fixed seed makes every failure reproducible. */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void hex_of(const unsigned char *s, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[s[i] >> 4];
		out[2 * i + 1] = digits[s[i] & 0xf];
	}
	out[2 * len] = '\0';
}

static size_t comm_len(const unsigned char *comm)
{
	const unsigned char *nul = memchr(comm, 0, LM_COMM_LEN);

	return nul ? (size_t)(nul - comm) : LM_COMM_LEN;
}

/* Length of the well-formed UTF-8 sequence (RFC 3629, table 3-7) at s, or 0. */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		if (s[0] == 0xe0)
			lo = 0xa0; /* overlong */
		if (s[0] == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		if (s[0] == 0xf0)
			lo = 0x90; /* overlong */
		if (s[0] == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
	} else {
		return 0;
	}
	if (avail < n || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/*
 * The contract of json.h as a reference: valid sequences kept, every byte that is not part of
 * one becomes U+FFFD. Returns the decoded length; *valid is 0 if anything was replaced.
 */
static size_t ref_sanitize(const unsigned char *s, size_t len, char *out, int *valid)
{
	size_t i = 0, o = 0, n;

	*valid = 1;
	while (i < len) {
		n = utf8_seq_len(s + i, len - i);
		if (n) {
			memcpy(out + o, s + i, n);
			o += n;
			i += n;
		} else {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
			*valid = 0;
		}
	}
	return o;
}

/*
 * An event as the serializer sees it: the record's contents, and what it resolves beyond the
 * record (cgroup path and names, memcg path). exe and cwd are given in order and written
 * walked into the record, as the programs do. A NULL p is absent.
 */
struct ev {
	struct rb_spec r;
	struct rb_bytes exe, cwd; /* in order; "" is the root (an empty walk) */
	struct rb_bytes cgroup, memcg;
	const char *container_id, *pod_uid, *unit;
	char comm_buf[LM_COMM_LEN];
	char exe_walk[LM_PATH_MAX + 1], cwd_walk[LM_PATH_MAX + 1];
};

static void make_event(struct ev *e, uint8_t type)
{
	memset(e, 0, sizeof(*e));
	rb_spec_init(&e->r, type);
	if (type == LM_EV_EXEC) {
		e->r.argc = 1;
		e->r.args = RB_LIT("bash\0");
		e->r.filename = RB_LIT("/bin/bash");
		e->r.pcomm = RB_LIT("sshd");
		e->exe = RB_LIT("/usr/bin/bash");
		e->cwd = RB_LIT("/home/u");
	}
}

/* The 16 bytes of an old fixed comm: comm_len 16, NULs and all. */
static void set_comm16(struct ev *e, const unsigned char *comm)
{
	memcpy(e->comm_buf, comm, LM_COMM_LEN);
	e->r.comm = (struct rb_bytes){ e->comm_buf, LM_COMM_LEN };
}

static const struct lm_rec_view *last_view;

/*
 * Builds the record of `e`, places it so it ends at the input guard, decodes it and writes
 * it into a `cap`-byte buffer that ends at the output guard, like lm_ser_write does. *out is
 * the buffer. Fails the test if the record does not decode.
 */
static int emit(struct ev *e, uint64_t seq, uint64_t unix_ns, size_t cap, char **out)
{
	static uint64_t tmp[RB_REC_MAX / 8];
	static struct lm_rec_view v;
	static char path[LM_PATH_MAX];
	struct lm_json_ev j = { .v = &v, .seq = seq, .unix_ns = unix_ns };
	const char *why = "?";
	uint32_t size;
	size_t n;
	void *rec;
	char *buf;

	if (e->r.type == LM_EV_EXEC) {
		e->r.exe.p = e->exe_walk;
		e->r.exe.len = rb_walk(e->exe.p, e->exe.len, e->exe_walk);
		e->r.cwd.p = e->cwd_walk;
		e->r.cwd.len = rb_walk(e->cwd.p, e->cwd.len, e->cwd_walk);
	}
	size = rb_build(&e->r, tmp, sizeof(tmp));
	rec = rb_guard_rec(&in_g, size);
	memcpy(rec, tmp, size);
	if (lm_rec_decode(rec, size, &v, &why))
		fail_msg("%s: lm_rec_decode rejects the record: %s", cur_case, why);
	last_view = &v;
	if (v.exec) {
		n = lm_rec_path(&v.exe, v.c->flags & LM_F_TRUNC_EXE, path, sizeof(path));
		j.exe = memcpy(guard_end(&exe_g, n), path, n);
		j.exe_len = n;
		n = lm_rec_path(&v.cwd, v.c->flags & LM_F_TRUNC_CWD, path, sizeof(path));
		j.cwd = memcpy(guard_end(&cwd_g, n), path, n);
		j.cwd_len = n;
	}
	if (e->cgroup.p) {
		j.cgroup = memcpy(guard_end(&cg_g, e->cgroup.len), e->cgroup.p, e->cgroup.len);
		j.cgroup_len = e->cgroup.len;
	}
	if (e->memcg.p) {
		j.memcg = memcpy(guard_end(&memcg_g, e->memcg.len), e->memcg.p, e->memcg.len);
		j.memcg_len = e->memcg.len;
	}
	if (e->container_id)
		j.container_id = strcpy(guard_end(&cid_g, strlen(e->container_id) + 1),
					e->container_id);
	if (e->pod_uid)
		j.pod_uid = strcpy(guard_end(&pod_g, strlen(e->pod_uid) + 1), e->pod_uid);
	if (e->unit)
		j.unit = strcpy(guard_end(&unit_g, strlen(e->unit) + 1), e->unit);
	buf = guard_end(&out_g, cap);
	memset(buf, 0xa5, cap < 4096 ? cap : 4096);
	*out = buf;
	return lm_json_event(buf, cap, &j);
}

/* Checks the framing (one object, one '\n', nothing else) and parses strictly. */
static json_t *parse_line_flags(const char *buf, int n, size_t flags)
{
	json_error_t err;
	json_t *root, *dup;

	if (n < 3 || (size_t)n > line_max)
		fail_msg("%s: writer returned %d", cur_case, n);
	expect(buf[0] == '{');
	expect(buf[n - 2] == '}');
	expect(buf[n - 1] == '\n');
	expect(memchr(buf, '\n', n - 1) == NULL);
	expect(memchr(buf, '\0', n) == NULL);
	root = json_loadb(buf, n - 1, flags, &err);
	if (!root)
		fail_msg("%s: jansson rejects (%s at %d): %.*s", cur_case, err.text, err.position,
			 n, buf);
	expect(json_is_object(root));
	dup = json_loadb(buf, n - 1, flags | JSON_REJECT_DUPLICATES, &err);
	if (!dup)
		fail_msg("%s: duplicate key (%s): %.*s", cur_case, err.text, n, buf);
	json_decref(dup);
	return root;
}

static json_t *parse_line(const char *buf, int n)
{
	return parse_line_flags(buf, n, 0);
}

static json_int_t get_int(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v))
		fail_msg("%s: key \"%s\" missing or not an integer", cur_case, key);
	return json_integer_value(v);
}

static const char *get_str(json_t *o, const char *key, size_t *len)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_string(v))
		fail_msg("%s: key \"%s\" missing or not a string", cur_case, key);
	if (len)
		*len = json_string_length(v);
	return json_string_value(v);
}

static bool get_bool(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_boolean(v))
		fail_msg("%s: key \"%s\" missing or not a boolean", cur_case, key);
	return json_is_true(v);
}

/* The digits of a number value as printed: `"key"`, optional blanks, ':', optional blanks. */
static void expect_raw_num(const char *buf, int n, const char *key, const char *digits)
{
	char pat[64];
	const char *p, *end = buf + n;
	size_t len;

	snprintf(pat, sizeof(pat), "\"%s\"", key);
	p = memmem(buf, n, pat, strlen(pat));
	if (!p)
		fail_msg("%s: no key %s in %.*s", cur_case, pat, n, buf);
	p += strlen(pat);
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	expect(p < end && *p == ':');
	p++;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	for (len = 0; p + len < end && p[len] >= '0' && p[len] <= '9'; len++)
		;
	if (len != strlen(digits) || memcmp(p, digits, len))
		fail_msg("%s: %s printed as %.*s, want %s", cur_case, key, (int)len, p, digits);
}

/*
 * The README's escaping rule, on the raw output: no C0 control, DEL, C1 control (U+0080..
 * U+009F as C2 80..C2 9F) or U+2028/U+2029 (E2 80 A8/A9) appears unescaped. `n` excludes
 * the final '\n' of an event line.
 */
static void expect_escaped_text(const char *buf, int n)
{
	const unsigned char *p = (const unsigned char *)buf;
	int i;

	for (i = 0; i < n; i++) {
		if (p[i] < 0x20 || p[i] == 0x7f)
			fail_msg("%s: raw control 0x%02x at %d: %.*s", cur_case, p[i], i, n, buf);
		if (p[i] == 0xc2 && i + 1 < n && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f)
			fail_msg("%s: raw C1 control U+%04X at %d: %.*s", cur_case, p[i + 1], i, n,
				 buf);
		if (p[i] == 0xe2 && i + 2 < n && p[i + 1] == 0x80 &&
		    (p[i + 2] == 0xa8 || p[i + 2] == 0xa9))
			fail_msg("%s: raw U+%04X at %d: %.*s", cur_case, 0x2000 | (p[i + 2] & 0x3f),
				 i, n, buf);
	}
}

/* Keys of each kind of line, space-separated, for expect_keyset */
#define BASE_KEYS "seq timestamp type pid tid ppid uid comm exit_code signal core_dumped target_pid "
#define ID_KEYS "key parent_key cgroup_id "
#define EXEC_KEYS "filename exe args argc cwd gid euid pcomm "
#define EXIT_KEYS "duration_ns cpu_user_ns cpu_sys_ns max_rss_kb oom_killed "
#define OOM_KEYS "total_vm_kb anon_rss_kb file_rss_kb shmem_rss_kb pgtables_kb "

/* The object has exactly the space-separated `keys`. */
static void expect_keyset(json_t *root, const char *keys, const char *buf, int n)
{
	char key[64];
	const char *p = keys, *end;
	size_t cnt = 0;

	while (*p) {
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		end = strchr(p, ' ');
		if (!end)
			end = p + strlen(p);
		snprintf(key, sizeof(key), "%.*s", (int)(end - p), p);
		if (!json_object_get(root, key))
			fail_msg("%s: no key \"%s\": %.*s", cur_case, key, n > 4000 ? 4000 : n, buf);
		cnt++;
		p = end;
	}
	if (json_object_size(root) != cnt)
		fail_msg("%s: %zu keys, want %zu (%s): %.*s", cur_case, json_object_size(root), cnt,
			 keys, n > 4000 ? 4000 : n, buf);
}

/*
 * `key` reads back as the writer's rule applied to raw[0..len): bytes up to the first NUL,
 * valid UTF-8 kept, each invalid byte U+FFFD; "<key>_hex" holds the raw bytes exactly when
 * something was replaced.
 */
static void expect_text(json_t *root, const char *key, const char *raw, size_t len,
			const char *buf, int n)
{
	static char want[3 * REF_MAX], hex[2 * REF_MAX + 1];
	const char *got;
	size_t want_len, got_len;
	char hkey[64];
	json_t *hv;
	int valid;

	len = strnlen(raw, len);
	want_len = ref_sanitize((const unsigned char *)raw, len, want, &valid);
	got = get_str(root, key, &got_len);
	if (got_len != want_len || memcmp(got, want, want_len))
		fail_msg("%s: \"%s\" reads back as %zu bytes, want %zu: %.*s", cur_case, key,
			 got_len, want_len, n > 4000 ? 4000 : n, buf);
	snprintf(hkey, sizeof(hkey), "%s_hex", key);
	hv = json_object_get(root, hkey);
	if (valid) {
		if (hv)
			fail_msg("%s: %s on a valid value: %.*s", cur_case, hkey,
				 n > 4000 ? 4000 : n, buf);
		return;
	}
	hex_of((const unsigned char *)raw, len, hex);
	if (!json_is_string(hv) || strcmp(json_string_value(hv), hex))
		fail_msg("%s: %s is %s, want %s", cur_case, hkey,
			 json_is_string(hv) ? json_string_value(hv) : "(none)", hex);
}

/*
 * "args" is the NUL-separated area as an array (a last argument without its NUL included),
 * each read back by the comm rule; "args_hex" has exactly the invalid arguments' indices.
 */
static void expect_args(json_t *root, const char *area, size_t len, const char *buf, int n)
{
	static char want[3 * LM_ARGS_MAX], hex[2 * LM_ARGS_MAX + 1];
	json_t *arr = json_object_get(root, "args"), *hexo = json_object_get(root, "args_hex");
	size_t pos = 0, idx = 0, bad = 0, alen, want_len;
	const char *p, *nul;
	char ikey[24];
	json_t *el, *hv;
	int valid;

	if (!json_is_array(arr))
		fail_msg("%s: no args array: %.*s", cur_case, n > 4000 ? 4000 : n, buf);
	while (pos < len) {
		p = area + pos;
		nul = memchr(p, '\0', len - pos);
		alen = nul ? (size_t)(nul - p) : len - pos;
		want_len = ref_sanitize((const unsigned char *)p, alen, want, &valid);
		el = json_array_get(arr, idx);
		if (!json_is_string(el) || json_string_length(el) != want_len ||
		    memcmp(json_string_value(el), want, want_len))
			fail_msg("%s: args[%zu] reads back wrong: %.*s", cur_case, idx,
				 n > 4000 ? 4000 : n, buf);
		snprintf(ikey, sizeof(ikey), "%zu", idx);
		hv = json_is_object(hexo) ? json_object_get(hexo, ikey) : NULL;
		if (valid) {
			if (hv)
				fail_msg("%s: args_hex[%s] for a valid argument", cur_case, ikey);
		} else {
			bad++;
			hex_of((const unsigned char *)p, alen, hex);
			if (!json_is_string(hv) || strcmp(json_string_value(hv), hex))
				fail_msg("%s: args_hex[%s] is %s, want %s", cur_case, ikey,
					 json_is_string(hv) ? json_string_value(hv) : "(none)",
					 hex);
		}
		pos += alen + 1;
		idx++;
	}
	if (json_array_size(arr) != idx)
		fail_msg("%s: %zu args, want %zu", cur_case, json_array_size(arr), idx);
	if (!bad && hexo)
		fail_msg("%s: args_hex without an invalid argument: %.*s", cur_case,
			 n > 4000 ? 4000 : n, buf);
	if (bad && (!json_is_object(hexo) || json_object_size(hexo) != bad))
		fail_msg("%s: args_hex has %zu keys, want %zu", cur_case,
			 json_is_object(hexo) ? json_object_size(hexo) : 0, bad);
}

/* "truncated" is exactly `want` (space-separated, in order), or absent when want is "". */
static void expect_truncated(json_t *root, const char *want)
{
	json_t *arr = json_object_get(root, "truncated");
	char got[128] = "";
	size_t i;

	if (!*want) {
		if (arr)
			fail_msg("%s: truncated present with nothing cut", cur_case);
		return;
	}
	if (!json_is_array(arr))
		fail_msg("%s: no truncated array, want [%s]", cur_case, want);
	for (i = 0; i < json_array_size(arr); i++) {
		json_t *s = json_array_get(arr, i);

		if (!json_is_string(s))
			fail_msg("%s: truncated[%zu] is not a string", cur_case, i);
		snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", i ? " " : "",
			 json_string_value(s));
	}
	if (strcmp(got, want))
		fail_msg("%s: truncated is [%s], want [%s]", cur_case, got, want);
}

/* Checks lm_json_str on s[0..len) against the reference decoding. */
static void check_str(const unsigned char *s, size_t len, const char *want, size_t want_len,
		      int want_valid)
{
	char *in = guard_end(&str_g, len);
	char *buf = guard_end(&out_g, STR_BODY_MAX);
	char wrapped[STR_BODY_MAX + 8];
	json_error_t err;
	json_t *arr;
	int n, valid = 1;
	const char *got;

	memcpy(in, s, len);
	n = lm_json_str(buf, STR_BODY_MAX, in, len, &valid);
	if (n < 0 || n > STR_BODY_MAX)
		fail_msg("%s: lm_json_str returned %d", cur_case, n);
	expect(valid == want_valid);
	expect_escaped_text(buf, n);
	wrapped[0] = '[';
	wrapped[1] = '"';
	memcpy(wrapped + 2, buf, n);
	wrapped[n + 2] = '"';
	wrapped[n + 3] = ']';
	arr = json_loadb(wrapped, n + 4, 0, &err);
	if (!arr)
		fail_msg("%s: lm_json_str body rejected (%s): %.*s", cur_case, err.text, n, buf);
	expect(json_array_size(arr) == 1 && json_is_string(json_array_get(arr, 0)));
	got = json_string_value(json_array_get(arr, 0));
	expect(json_string_length(json_array_get(arr, 0)) == want_len);
	expect(memcmp(got, want, want_len) == 0);
	json_decref(arr);
}

/*
 * One comm through lm_json_event and lm_json_str: strict parse, decoded value equal to the
 * reference, comm_hex present exactly when something was replaced. The comm goes in as the
 * kernel writes it (comm_len bytes, no NUL) and as 16 raw bytes (a NUL ends it), and the
 * same bytes as the parent's comm (pcomm, pcomm_hex).
 */
static void check_comm(const unsigned char *comm)
{
	char want[3 * LM_COMM_LEN], hex[2 * LM_COMM_LEN + 1];
	size_t len, want_len, got_len;
	struct ev e;
	json_t *root, *hexv;
	const char *got;
	int valid, n, variant;
	char *buf;

	len = comm_len(comm);
	want_len = ref_sanitize(comm, len, want, &valid);
	hex_of(comm, len, hex);

	/* the raw variant differs only when a NUL ends the comm early */
	for (variant = 0; variant < (len < LM_COMM_LEN ? 2 : 1); variant++) {
		make_event(&e, LM_EV_EXEC);
		set_comm16(&e, comm);
		if (variant == 0)
			e.r.comm.len = len;
		e.r.pcomm = e.r.comm;
		n = emit(&e, 1, 2, line_max, &buf);
		root = parse_line(buf, n);
		expect_escaped_text(buf, n - 1);
		got = get_str(root, "comm", &got_len);
		if (got_len != want_len || memcmp(got, want, want_len))
			fail_msg("%s: comm decodes to %zu bytes, want %zu: %.*s", cur_case,
				 got_len, want_len, n, buf);
		hexv = json_object_get(root, "comm_hex");
		if (valid) {
			if (hexv)
				fail_msg("%s: comm_hex on a valid comm: %.*s", cur_case, n, buf);
		} else {
			expect(json_is_string(hexv));
			if (strcmp(json_string_value(hexv), hex))
				fail_msg("%s: comm_hex \"%s\", want \"%s\"", cur_case,
					 json_string_value(hexv), hex);
		}
		expect_text(root, "pcomm", (const char *)comm, e.r.pcomm.len, buf, n);
		json_decref(root);
	}

	check_str(comm, LM_COMM_LEN, want, want_len, valid);
}
static void set_case_comm(const char *what, const unsigned char *comm)
{
	char hex[2 * LM_COMM_LEN + 1];

	hex_of(comm, LM_COMM_LEN, hex);
	snprintf(cur_case, sizeof(cur_case), "%s: comm bytes %s", what, hex);
}
static void test_json_exec_keys(void **state)
{
	struct ev e;
	json_t *root;
	char *buf;
	int n;

	(void)state;
	snprintf(cur_case, sizeof(cur_case), "exec keys");
	make_event(&e, LM_EV_EXEC);
	n = emit(&e, 77, 1700000000123456789ULL, line_max, &buf);
	root = parse_line(buf, n);
	assert_int_equal(get_int(root, "seq"), 77);
	assert_true(get_int(root, "timestamp") == 1700000000123456789LL);
	assert_string_equal(get_str(root, "type", NULL), "EXEC");
	assert_int_equal(get_int(root, "pid"), 4242);
	assert_int_equal(get_int(root, "tid"), 4243);
	assert_int_equal(get_int(root, "ppid"), 1);
	assert_int_equal(get_int(root, "uid"), 1000);
	assert_string_equal(get_str(root, "comm", NULL), "bash");
	assert_int_equal(get_int(root, "exit_code"), 0);
	assert_int_equal(get_int(root, "signal"), 0);
	assert_false(get_bool(root, "core_dumped"));
	assert_int_equal(get_int(root, "target_pid"), 0);
	assert_null(json_object_get(root, "comm_hex"));
	expect_keyset(root, BASE_KEYS ID_KEYS EXEC_KEYS, buf, n);
	json_decref(root);
}

static void test_json_exit_status_fields(void **state)
{
	static const struct {
		uint32_t status;
		int exit_code;
		int sig;
		bool core;
	} cases[] = {
	    {0, 0, 0, false},	      {7 << 8, 7, 0, false}, {255 << 8, 255, 0, false},
	    {9, 137, 9, false},	      {15, 143, 15, false},  {0x80 | 11, 139, 11, true},
	    {0x80 | 6, 134, 6, true},
	};
	struct ev e;
	json_t *root;
	size_t i;
	char *buf;
	int n;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(cur_case, sizeof(cur_case), "exit status 0x%x", cases[i].status);
		make_event(&e, LM_EV_EXIT);
		e.r.aux = cases[i].status;
		n = emit(&e, 5, 6, line_max, &buf);
		root = parse_line(buf, n);
		assert_string_equal(get_str(root, "type", NULL), "EXIT");
		assert_int_equal(get_int(root, "exit_code"), cases[i].exit_code);
		assert_int_equal(get_int(root, "signal"), cases[i].sig);
		assert_int_equal(get_bool(root, "core_dumped"), cases[i].core);
		assert_int_equal(get_int(root, "pid"), 4242);
		assert_int_equal(get_int(root, "tid"), 4243);
		assert_int_equal(get_int(root, "seq"), 5);
		assert_int_equal(get_int(root, "timestamp"), 6);
		assert_int_equal(get_int(root, "target_pid"), 0);
		expect_keyset(root, BASE_KEYS ID_KEYS EXIT_KEYS, buf, n);
		json_decref(root);
	}
}

static void test_json_oom_fields(void **state)
{
	struct ev e;
	json_t *root;
	char *buf;
	int n;

	(void)state;
	snprintf(cur_case, sizeof(cur_case), "oom keys");
	make_event(&e, LM_EV_OOM);
	e.r.flags = LM_F_OOM_VICTIM;
	e.r.pid = 31337;
	e.r.total_vm_kb = 123456789012ULL;
	e.r.anon_rss_kb = 1111;
	e.r.file_rss_kb = 2222;
	e.r.shmem_rss_kb = 3333;
	e.r.pgtables_kb = 44;
	n = emit(&e, 9, 10, line_max, &buf);
	root = parse_line(buf, n);
	assert_string_equal(get_str(root, "type", NULL), "OOM_KILL");
	/* the record's pid is the victim's: target_pid repeats it for the seed's clients */
	assert_int_equal(get_int(root, "target_pid"), 31337);
	assert_int_equal(get_int(root, "pid"), 31337);
	assert_true(get_int(root, "total_vm_kb") == 123456789012LL);
	assert_int_equal(get_int(root, "anon_rss_kb"), 1111);
	assert_int_equal(get_int(root, "file_rss_kb"), 2222);
	assert_int_equal(get_int(root, "shmem_rss_kb"), 3333);
	assert_int_equal(get_int(root, "pgtables_kb"), 44);
	assert_int_equal(get_int(root, "ppid"), 1);
	assert_int_equal(get_int(root, "uid"), 1000);
	assert_int_equal(get_int(root, "seq"), 9);
	assert_int_equal(get_int(root, "timestamp"), 10);
	assert_string_equal(get_str(root, "comm", NULL), "bash");
	assert_int_equal(get_int(root, "exit_code"), 0);
	assert_int_equal(get_int(root, "signal"), 0);
	assert_false(get_bool(root, "core_dumped"));
	expect_keyset(root, BASE_KEYS ID_KEYS OOM_KEYS "oom_score_adj", buf, n);
	json_decref(root);
}

/* Largest numbers and the longest comms must print exactly and fit lm_json_event_max. */
static void test_json_u64_max_exact(void **state)
{
	static const unsigned char worst[][LM_COMM_LEN] = {
	    {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
	    {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	     0xff, 0xff},
	    {'"', '\\', '"', '\\', '"', '\\', '"', '\\', '"', '\\', '"', '\\', '"', '\\', '"',
	     '\\'},
	};
	static const uint8_t types[] = {LM_EV_EXEC, LM_EV_EXIT, LM_EV_OOM};
	static const char key_txt[] = "\"key\":\"" U32_MAX_TXT ":" U64_MAX_TXT "\"";
	static const char pkey_txt[] = "\"parent_key\":\"" U32_MAX_TXT ":" U64_MAX_TXT "\"";
	struct ev e;
	size_t i, t;
	json_t *root;
	char *buf;
	int n;

	(void)state;
	for (t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		for (i = 0; i < sizeof(worst) / sizeof(worst[0]); i++) {
			set_case_comm("u64 max", worst[i]);
			make_event(&e, types[t]);
			e.r.pid = e.r.tid = e.r.ppid = e.r.uid = UINT32_MAX;
			e.r.ts_ns = e.r.start_ns = e.r.pstart_ns = e.r.cgroup_id = UINT64_MAX;
			e.r.aux = types[t] == LM_EV_EXIT ? 0x80 | 64 : UINT32_MAX;
			e.r.euid = e.r.argc = UINT32_MAX;
			e.r.cpu_user_ns = e.r.cpu_sys_ns = UINT64_MAX;
			e.r.max_rss_kb = UINT32_MAX;
			if (types[t] == LM_EV_OOM) {
				e.r.flags = LM_F_OOM_VICTIM;
				e.r.aux = 1000;
				e.r.total_vm_kb = e.r.anon_rss_kb = e.r.file_rss_kb = UINT64_MAX;
				e.r.shmem_rss_kb = e.r.pgtables_kb = UINT64_MAX;
			}
			set_comm16(&e, worst[i]);
			n = emit(&e, UINT64_MAX, UINT64_MAX, line_max, &buf);
			/* jansson's json_int_t is long long: read numbers above it as reals. */
			root = parse_line_flags(buf, n, JSON_DECODE_INT_AS_REAL);
			json_decref(root);
			expect_raw_num(buf, n, "seq", U64_MAX_TXT);
			expect_raw_num(buf, n, "timestamp", U64_MAX_TXT);
			expect_raw_num(buf, n, "pid", U32_MAX_TXT);
			expect_raw_num(buf, n, "tid", U32_MAX_TXT);
			expect_raw_num(buf, n, "ppid", U32_MAX_TXT);
			expect_raw_num(buf, n, "uid", U32_MAX_TXT);
			expect_raw_num(buf, n, "cgroup_id", U64_MAX_TXT);
			if (!memmem(buf, n, key_txt, sizeof(key_txt) - 1) ||
			    !memmem(buf, n, pkey_txt, sizeof(pkey_txt) - 1))
				fail_msg("%s: key or parent_key not printed whole: %.*s", cur_case, n,
					 buf);
			if (types[t] == LM_EV_EXEC) {
				expect_raw_num(buf, n, "gid", U32_MAX_TXT);
				expect_raw_num(buf, n, "euid", U32_MAX_TXT);
				expect_raw_num(buf, n, "argc", U32_MAX_TXT);
			}
			if (types[t] == LM_EV_EXIT) {
				expect_raw_num(buf, n, "signal", "64");
				expect_raw_num(buf, n, "exit_code", "192");
				expect_raw_num(buf, n, "duration_ns", "0");
				expect_raw_num(buf, n, "cpu_user_ns", U64_MAX_TXT);
				expect_raw_num(buf, n, "cpu_sys_ns", U64_MAX_TXT);
				expect_raw_num(buf, n, "max_rss_kb", U32_MAX_TXT);
			}
			if (types[t] != LM_EV_OOM)
				continue;
			expect_raw_num(buf, n, "target_pid", U32_MAX_TXT);
			expect_raw_num(buf, n, "total_vm_kb", U64_MAX_TXT);
			expect_raw_num(buf, n, "anon_rss_kb", U64_MAX_TXT);
			expect_raw_num(buf, n, "file_rss_kb", U64_MAX_TXT);
			expect_raw_num(buf, n, "shmem_rss_kb", U64_MAX_TXT);
			expect_raw_num(buf, n, "pgtables_kb", U64_MAX_TXT);
			expect_raw_num(buf, n, "oom_score_adj", "1000");
		}
	}
}

static void test_json_int64_max_parses(void **state)
{
	struct ev e;
	json_t *root;
	char *buf;
	int n;

	(void)state;
	snprintf(cur_case, sizeof(cur_case), "int64 max");
	make_event(&e, LM_EV_OOM);
	e.r.total_vm_kb = INT64_MAX;
	n = emit(&e, INT64_MAX, INT64_MAX - 1, line_max, &buf);
	root = parse_line(buf, n);
	assert_true(get_int(root, "seq") == INT64_MAX);
	assert_true(get_int(root, "timestamp") == INT64_MAX - 1);
	assert_true(get_int(root, "total_vm_kb") == INT64_MAX);
	json_decref(root);
	/* One past INT64_MAX: only the raw text can show it. */
	n = emit(&e, (uint64_t)INT64_MAX + 1, 0, line_max, &buf);
	root = parse_line_flags(buf, n, JSON_DECODE_INT_AS_REAL);
	json_decref(root);
	expect_raw_num(buf, n, "seq", "9223372036854775808");
	expect_raw_num(buf, n, "timestamp", "0");
}

static void test_json_comm_full_not_terminated(void **state)
{
	static const unsigned char comm[LM_COMM_LEN] = "abcdefghijklmnop";
	static const uint8_t types[] = {LM_EV_OOM, LM_EV_EXIT, LM_EV_EXEC};
	struct ev e;
	json_t *root;
	size_t len, t;
	char *buf;
	int n;

	(void)state;
	for (t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		set_case_comm("full comm", comm);
		make_event(&e, types[t]);
		set_comm16(&e, comm);
		e.r.flags = types[t] == LM_EV_OOM ? LM_F_OOM_VICTIM : 0;
		/*
		 * An OOM record ends with its comm, on an 8-byte boundary: emit() puts comm[15]
		 * right before the PROT_NONE page (EXIT's 4-byte pad is poisoned under ASan).
		 */
		n = emit(&e, 1, 1, line_max, &buf);
		root = parse_line(buf, n);
		assert_string_equal(get_str(root, "comm", &len), "abcdefghijklmnop");
		assert_int_equal(len, LM_COMM_LEN);
		json_decref(root);
	}
}

static void test_json_comm_stops_at_nul(void **state)
{
	static const unsigned char comm[LM_COMM_LEN] = {'a', 'b', 0, 0xff, 'c', '"', 1};
	struct ev e;
	json_t *root;
	size_t len;
	char *buf;
	int n;

	(void)state;
	set_case_comm("nul", comm);
	make_event(&e, LM_EV_EXEC);
	set_comm16(&e, comm);
	n = emit(&e, 1, 1, line_max, &buf);
	root = parse_line(buf, n);
	assert_string_equal(get_str(root, "comm", &len), "ab");
	assert_int_equal(len, 2);
	assert_null(json_object_get(root, "comm_hex"));
	json_decref(root);

	memset(e.comm_buf, 0, LM_COMM_LEN);
	n = emit(&e, 1, 1, line_max, &buf);
	root = parse_line(buf, n);
	assert_string_equal(get_str(root, "comm", &len), "");
	assert_int_equal(len, 0);
	json_decref(root);

	/* comm_len 0, as the kernel writes an empty comm */
	e.r.comm.len = 0;
	n = emit(&e, 1, 1, line_max, &buf);
	root = parse_line(buf, n);
	assert_string_equal(get_str(root, "comm", &len), "");
	assert_int_equal(len, 0);
	json_decref(root);
}

/* Bytes 0x00..0xff at each of the 16 positions, in a full comm and in a NUL-ended one. */
static void test_json_comm_every_byte_every_pos(void **state)
{
	static const unsigned char base[LM_COMM_LEN] = "ABCDEFGHIJKLMNOP";
	unsigned char comm[LM_COMM_LEN];
	unsigned int pos, b;

	(void)state;
	for (pos = 0; pos < LM_COMM_LEN; pos++) {
		for (b = 0; b <= 0xff; b++) {
			memcpy(comm, base, LM_COMM_LEN);
			comm[pos] = (unsigned char)b;
			set_case_comm("every byte, full", comm);
			check_comm(comm);

			memset(comm + pos + 1, 0, LM_COMM_LEN - pos - 1);
			set_case_comm("every byte, short", comm);
			check_comm(comm);
		}
	}
}

static void test_json_comm_random_bytes(void **state)
{
	unsigned char comm[LM_COMM_LEN];
	uint64_t r[2];
	unsigned int it;

	(void)state;
	rng_state = 0x6c69666d6f6e0001ULL;
	for (it = 0; it < 200000; it++) {
		r[0] = rng_next();
		r[1] = rng_next();
		memcpy(comm, r, LM_COMM_LEN);
		set_case_comm("random bytes", comm);
		check_comm(comm);
	}
}

/* Random comms built from UTF-8 pieces, valid and broken, so multi-byte paths get exercised. */
static size_t rand_piece(unsigned char *p)
{
	uint64_t r = rng_next();
	unsigned char c1 = 0x80 | ((r >> 8) & 0x3f), c2 = 0x80 | ((r >> 16) & 0x3f);
	unsigned char c3 = 0x80 | ((r >> 24) & 0x3f);

	switch ((r >> 32) % 16) {
	case 0:
		p[0] = 0x20 + (r & 0xff) % 0x5f; /* printable ASCII */
		return 1;
	case 1:
		p[0] = 1 + (r & 0xff) % 0x1f; /* C0 control */
		return 1;
	case 2:
		p[0] = (r & 1) ? '"' : ((r & 2) ? '\\' : 0x7f);
		return 1;
	case 3:
		p[0] = 0xc2 + (r & 0xff) % 30; /* valid 2-byte */
		p[1] = c1;
		return 2;
	case 4:
		p[0] = 0xe1 + (r & 0xff) % 15; /* valid 3-byte, E1..EF but ED */
		if (p[0] == 0xed)
			p[0] = 0xee;
		p[1] = c1;
		p[2] = c2;
		return 3;
	case 5:
		p[0] = 0xe0; /* valid 3-byte, E0 A0..BF */
		p[1] = 0xa0 | (c1 & 0x1f);
		p[2] = c2;
		return 3;
	case 6:
		p[0] = 0xf0 + (r & 3); /* valid 4-byte */
		p[1] = p[0] == 0xf0 ? (0x90 | (c1 & 0x2f)) : c1;
		p[2] = c2;
		p[3] = c3;
		return 4;
	case 7:
		p[0] = 0xf4; /* valid 4-byte up to U+10FFFF */
		p[1] = 0x80 | (c1 & 0x0f);
		p[2] = c2;
		p[3] = c3;
		return 4;
	case 8:
		p[0] = c1; /* lone continuation */
		return 1;
	case 9:
		p[0] = (r & 1) ? 0xc0 : 0xc1; /* overlong 2-byte */
		p[1] = c1;
		return 2;
	case 10:
		p[0] = 0xed; /* surrogate */
		p[1] = 0xa0 | (c1 & 0x1f);
		p[2] = c2;
		return 3;
	case 11:
		p[0] = 0xf5 + (r & 0xff) % 11; /* F5..FF */
		return 1;
	case 12:
		p[0] = 0xe0 + (r & 0xf); /* truncated 3-byte */
		p[1] = c1;
		return 2;
	case 13:
		p[0] = 0xf0 + (r & 7); /* truncated or invalid 4-byte */
		p[1] = c1;
		p[2] = c2;
		return 3;
	case 14:
		p[0] = 0xe0; /* overlong 3-byte */
		p[1] = 0x80 | (c1 & 0x1f);
		p[2] = c2;
		return 3;
	default:
		p[0] = (r & 0xff) % 64 ? 0x61 + (r & 0xff) % 26 : 0; /* rarely a NUL */
		return 1;
	}
}

static void test_json_comm_random_utf8_mix(void **state)
{
	unsigned char comm[LM_COMM_LEN], piece[4];
	unsigned int it;
	size_t len, n;

	(void)state;
	rng_state = 0x6c69666d6f6e0002ULL;
	for (it = 0; it < 200000; it++) {
		for (len = 0; len < LM_COMM_LEN; len += n) {
			n = rand_piece(piece);
			if (n > LM_COMM_LEN - len)
				n = LM_COMM_LEN - len; /* cut at the end: truncated sequence */
			memcpy(comm + len, piece, n);
		}
		set_case_comm("random utf-8 mix", comm);
		check_comm(comm);
	}
}

static void fill_comm(unsigned char *comm, const char *s, size_t len)
{
	memset(comm, 0, LM_COMM_LEN);
	memcpy(comm, s, len);
}

static void test_json_valid_utf8_roundtrip(void **state)
{
	static const char *const cases[] = {
	    "h\xc3\xa9llo",							/* héllo */
	    "\xe6\x97\xa5\xe6\x9c\xac",						/* 日本 */
	    "\xf0\x9f\x98\x80",							/* 😀 */
	    "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80", /* 16 bytes */
	    "\346\227\245\346\234\254\350\252\236\346\227\245\346\234\254a",	/* 16 bytes */
	    "\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbd\xf4\x8f\xbf\xbf",		/* range edges */
	    "\xed\x9f\xbf\xee\x80\x80", /* U+D7FF, U+E000 around surrogates */
	};
	unsigned char comm[LM_COMM_LEN];
	struct ev e;
	json_t *root;
	size_t i, len, got_len;
	const char *got;
	char *buf;
	int n;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		len = strlen(cases[i]);
		assert_true(len <= LM_COMM_LEN);
		fill_comm(comm, cases[i], len);
		set_case_comm("valid utf-8", comm);
		make_event(&e, LM_EV_EXEC);
		set_comm16(&e, comm);
		n = emit(&e, 1, 1, line_max, &buf);
		root = parse_line(buf, n);
		got = get_str(root, "comm", &got_len);
		assert_int_equal(got_len, len);
		assert_memory_equal(got, cases[i], len);
		assert_null(json_object_get(root, "comm_hex"));
		json_decref(root);
		check_comm(comm);
	}
}

static void test_json_invalid_utf8_replaced(void **state)
{
#define FFFD "\xef\xbf\xbd"
	static const struct {
		const char *in;
		const char *want;
		const char *hex;
	} cases[] = {
	    {"a\200b", "a" FFFD "b", "618062"}, /* lone continuation */
	    {"\xbf\xbf", FFFD FFFD, "bfbf"},
	    {"\xc0\x80", FFFD FFFD, "c080"}, /* overlong NUL */
	    {"x\xc1\xbf", "x" FFFD FFFD, "78c1bf"},
	    {"\xe0\x80\xaf", FFFD FFFD FFFD, "e080af"},	       /* overlong '/' */
	    {"\xed\xa0\x80", FFFD FFFD FFFD, "eda080"},	       /* U+D800 */
	    {"\355\277\277z", FFFD FFFD FFFD "z", "edbfbf7a"}, /* U+DFFF */
	    {"\xf5", FFFD, "f5"},
	    {"\xf8\x88\x80\x80\x80", FFFD FFFD FFFD FFFD FFFD, "f888808080"},
	    {"\377a\376", FFFD "a" FFFD, "ff61fe"},
	    {"\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD, "f4908080"}, /* > U+10FFFF */
	    {"\346\227x", FFFD FFFD "x", "e69778"},		   /* truncated 3-byte */
	    {"ab\xf0\x9f\x98", "ab" FFFD FFFD FFFD, "6162f09f98"}, /* truncated at end */
	    {"\xe6\x97\xa5\xff\xe6\x9c\xac", "\xe6\x97\xa5" FFFD "\xe6\x9c\xac", "e697a5ffe69cac"},
	    {"\xc3\xc3\xa9", FFFD "\xc3\xa9", "c3c3a9"},
	    /* 16 bytes, the last a lead byte whose sequence is cut by the end of comm */
	    {"abcdefghijklmno\xe6", "abcdefghijklmno" FFFD, "6162636465666768696a6b6c6d6e6fe6"},
	};
#undef FFFD
	unsigned char comm[LM_COMM_LEN];
	struct ev e;
	size_t i, len, got_len;
	json_t *root;
	const char *got;
	char *buf;
	int n;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		len = strlen(cases[i].in);
		assert_true(len <= LM_COMM_LEN);
		fill_comm(comm, cases[i].in, len);
		set_case_comm("invalid utf-8", comm);
		make_event(&e, LM_EV_EXIT);
		set_comm16(&e, comm);
		n = emit(&e, 1, 1, line_max, &buf);
		root = parse_line(buf, n);
		got = get_str(root, "comm", &got_len);
		if (got_len != strlen(cases[i].want) || memcmp(got, cases[i].want, got_len))
			fail_msg("%s: got %.*s", cur_case, n, buf);
		assert_string_equal(get_str(root, "comm_hex", NULL), cases[i].hex);
		json_decref(root);
		check_comm(comm);
	}
}

static void test_json_escapes_roundtrip(void **state)
{
	unsigned char comm[LM_COMM_LEN];
	struct ev e;
	size_t got_len;
	unsigned int b, i;
	json_t *root;
	const char *got;
	char *buf;
	int n;

	(void)state;
	/* Control bytes 0x01..0x1f and 0x7f, 16 at a time, then quotes and backslashes. */
	for (b = 0; b < 3; b++) {
		for (i = 0; i < LM_COMM_LEN; i++) {
			if (b == 0)
				comm[i] = 0x01 + i;
			else
				comm[i] = 0x11 + i < 0x20 ? 0x11 + i : 0x7f;
		}
		if (b == 2)
			memcpy(comm, "\"\\\"\\\x7f/\b\f\n\r\t\\u00\x01\"", LM_COMM_LEN);
		set_case_comm("escapes", comm);
		make_event(&e, LM_EV_EXEC);
		set_comm16(&e, comm);
		n = emit(&e, 1, 1, line_max, &buf);
		root = parse_line(buf, n);
		got = get_str(root, "comm", &got_len);
		assert_int_equal(got_len, LM_COMM_LEN);
		assert_memory_equal(got, comm, LM_COMM_LEN);
		assert_null(json_object_get(root, "comm_hex"));
		json_decref(root);
		check_comm(comm);
	}
}

/*
 * Every C1 control (C2 80..C2 9F) and U+2028/U+2029 (E2 80 A8/A9) at each position comes out
 * as its \\uXXXX escape and decodes back to itself; every other byte after the same lead bytes
 * keeps the rule (valid sequences raw, invalid ones U+FFFD plus comm_hex).
 */
static void test_json_c1_and_line_separators_escaped(void **state)
{
	static const unsigned char base[LM_COMM_LEN] = "ABCDEFGHIJKLMNOP";
	unsigned char comm[LM_COMM_LEN];
	unsigned int pos, b;
	char esc[8];
	char *buf;
	int n;

	(void)state;
	for (pos = 0; pos + 3 <= LM_COMM_LEN; pos++) {
		for (b = 0; b <= 0xff; b++) {
			struct ev e;

			/* C2 xx: U+0080..U+00BF when xx is a continuation byte */
			memcpy(comm, base, LM_COMM_LEN);
			comm[pos] = 0xc2;
			comm[pos + 1] = (unsigned char)b;
			set_case_comm("C2 xx", comm);
			check_comm(comm);
			if (b >= 0x80 && b <= 0x9f) {
				make_event(&e, LM_EV_EXEC);
				set_comm16(&e, comm);
				n = emit(&e, 1, 1, line_max, &buf);
				snprintf(esc, sizeof(esc), "\\u%04x", b);
				expect(n > 0 && memmem(buf, (size_t)n, esc, 6));
			}

			/* E2 80 xx: U+2000..U+203F, U+2028 and U+2029 among them */
			memcpy(comm, base, LM_COMM_LEN);
			comm[pos] = 0xe2;
			comm[pos + 1] = 0x80;
			comm[pos + 2] = (unsigned char)b;
			set_case_comm("E2 80 xx", comm);
			check_comm(comm);
			if (b == 0xa8 || b == 0xa9) {
				make_event(&e, LM_EV_EXEC);
				set_comm16(&e, comm);
				n = emit(&e, 1, 1, line_max, &buf);
				snprintf(esc, sizeof(esc), "\\u%04x", 0x2000 | (b & 0x3f));
				expect(n > 0 && memmem(buf, (size_t)n, esc, 6));
			}
		}
	}
	/* a comm of nothing but C1 controls and separators: longest escaped valid comm */
	memcpy(comm, "\xc2\x9b\xc2\x80\xc2\x9f\xe2\x80\xa8\xe2\x80\xa9\xc2\x85\xc2\x9b", LM_COMM_LEN);
	set_case_comm("C1 and separators only", comm);
	check_comm(comm);
}

/* Every cap below the needed length gives -ENOSPC without touching the guard page. */
static void sweep_event_caps(struct ev *e, uint64_t seq, uint64_t unix_ns)
{
	static char ref[1 << 16];
	size_t cap;
	char *buf;
	int n, ret;

	n = emit(e, seq, unix_ns, line_max, &buf);
	if (n <= 0 || (size_t)n > sizeof(ref)) {
		fail_msg("%s: returned %d", cur_case, n);
		return; /* cmocka's fail_msg is not declared noreturn */
	}
	json_decref(parse_line_flags(buf, n, JSON_DECODE_INT_AS_REAL));
	memcpy(ref, buf, n);
	for (cap = 0; cap < (size_t)n; cap++) {
		ret = emit(e, seq, unix_ns, cap, &buf);
		if (ret != -ENOSPC)
			fail_msg("%s: cap %zu of %d needed: returned %d, want -ENOSPC", cur_case,
				 cap, n, ret);
	}
	ret = emit(e, seq, unix_ns, n, &buf);
	if (ret != n)
		fail_msg("%s: cap == needed %d: returned %d", cur_case, n, ret);
	assert_memory_equal(buf, ref, n);
}

static void test_json_event_enospc_every_cap(void **state)
{
	struct ev e;

	(void)state;
	snprintf(cur_case, sizeof(cur_case), "enospc exec");
	make_event(&e, LM_EV_EXEC);
	sweep_event_caps(&e, 1, 1);

	snprintf(cur_case, sizeof(cur_case), "enospc exit signaled, full comm");
	make_event(&e, LM_EV_EXIT);
	e.r.aux = 0x80 | 11;
	e.r.comm = RB_LIT("abcdefghijklmnop");
	sweep_event_caps(&e, 1700000000, 1700000000123456789ULL);

	snprintf(cur_case, sizeof(cur_case), "enospc oom max");
	make_event(&e, LM_EV_OOM);
	e.r.flags = LM_F_OOM_VICTIM | LM_F_OOM_KNOWN | LM_F_OOM_MEMCG;
	e.r.aux = (uint32_t)-1000;
	e.r.pid = e.r.tid = e.r.ppid = e.r.uid = UINT32_MAX;
	e.r.total_vm_kb = e.r.anon_rss_kb = e.r.file_rss_kb = UINT64_MAX;
	e.r.shmem_rss_kb = e.r.pgtables_kb = UINT64_MAX;
	e.r.comm = RB_LIT("\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01");
	e.memcg = RB_LIT("/sys\xff/m");
	e.cgroup = RB_LIT("/a\"b");
	sweep_event_caps(&e, UINT64_MAX, UINT64_MAX);

	snprintf(cur_case, sizeof(cur_case), "enospc invalid comm + comm_hex");
	make_event(&e, LM_EV_EXIT);
	e.r.comm = RB_LIT("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff");
	sweep_event_caps(&e, UINT64_MAX, UINT64_MAX);

	snprintf(cur_case, sizeof(cur_case), "enospc mixed comm");
	make_event(&e, LM_EV_EXEC);
	e.r.comm = RB_LIT("\xe6\x97\xa5\"\\\x01\xc0\x80\xf0\x9f\x98\x80z\x7f\xed\xa0");
	sweep_event_caps(&e, 42, 43);

	snprintf(cur_case, sizeof(cur_case), "enospc exec, every optional key");
	make_event(&e, LM_EV_EXEC);
	e.r.flags = LM_F_TRUNC_ARGS | LM_F_TRUNC_FILENAME | LM_F_TRUNC_EXE | LM_F_TRUNC_CWD;
	e.r.args = RB_LIT("a\0\xff\0\0\"q\n\0\xe2\x80\xa8x\xc3");
	e.r.argc = 9;
	e.r.pcomm = RB_LIT("p\xfe");
	e.r.filename = RB_LIT("/dev/fd/\xff");
	e.exe = RB_LIT("usr/\xc0/x");
	e.cwd = RB_LIT("h\\o\xe0me");
	e.cgroup = RB_LIT("/system.slice/\xff.service");
	e.container_id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	e.pod_uid = "01234567-89ab-cdef-0123-456789abcdef";
	e.unit = "docker-x.scope";
	sweep_event_caps(&e, 7, 8);
}

/* --- the keys of issue 9 --- */

static json_t *emit_parse(struct ev *e, char **buf, int *n)
{
	json_t *root;

	*n = emit(e, 1, 2, line_max, buf);
	root = parse_line(*buf, *n);
	expect_escaped_text(*buf, *n - 1);
	return root;
}

static void test_json_key_and_parent_key(void **state)
{
	static const uint8_t types[] = {LM_EV_EXEC, LM_EV_EXIT, LM_EV_OOM};
	struct ev e;
	json_t *root;
	size_t t;
	char *buf;
	int n;

	(void)state;
	for (t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		snprintf(cur_case, sizeof(cur_case), "key, type %u", types[t]);
		make_event(&e, types[t]);
		e.r.flags = types[t] == LM_EV_OOM ? LM_F_OOM_VICTIM : 0;
		e.r.pid = 4242;
		e.r.tid = 4250;
		e.r.start_ns = 18273645501ULL;
		e.r.ppid = 77;
		e.r.pstart_ns = 5;
		e.r.cgroup_id = 9876;
		root = emit_parse(&e, &buf, &n);
		/* PID:START_NS of the group leader: the tid plays no part */
		assert_string_equal(get_str(root, "key", NULL), "4242:18273645501");
		assert_string_equal(get_str(root, "parent_key", NULL), "77:5");
		assert_int_equal(get_int(root, "cgroup_id"), 9876);
		json_decref(root);

		e.r.start_ns = 0;
		e.r.ppid = 0;
		e.r.pstart_ns = 0;
		e.r.cgroup_id = 0;
		root = emit_parse(&e, &buf, &n);
		assert_string_equal(get_str(root, "key", NULL), "4242:0");
		assert_string_equal(get_str(root, "parent_key", NULL), "0:0");
		assert_int_equal(get_int(root, "cgroup_id"), 0);
		json_decref(root);
	}
}

/* cgroup, container_id, pod_uid and unit: each present exactly when resolved, on every type. */
static void test_json_cgroup_names_presence(void **state)
{
	static const uint8_t types[] = {LM_EV_EXEC, LM_EV_EXIT, LM_EV_OOM};
	static const char cid[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	static const char pod[] = "01234567-89ab-cdef-0123-456789abcdef";
	static const char *const kind_keys[] = {EXEC_KEYS, EXIT_KEYS, OOM_KEYS "oom_score_adj "};
	char keys[512];
	struct ev e;
	json_t *root;
	unsigned int m;
	size_t t;
	char *buf;
	int n;

	(void)state;
	for (t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		for (m = 0; m < 16; m++) {
			snprintf(cur_case, sizeof(cur_case), "cgroup names, type %u, mask %u",
				 types[t], m);
			make_event(&e, types[t]);
			e.r.flags = types[t] == LM_EV_OOM ? LM_F_OOM_VICTIM : 0;
			e.r.cgroup_id = 4321;
			snprintf(keys, sizeof(keys), BASE_KEYS ID_KEYS "%s", kind_keys[t]);
			if (m & 1) {
				e.cgroup = RB_LIT("/system.slice/docker-0123.scope");
				strcat(keys, " cgroup");
			}
			if (m & 2) {
				e.container_id = cid;
				strcat(keys, " container_id");
			}
			if (m & 4) {
				e.pod_uid = pod;
				strcat(keys, " pod_uid");
			}
			if (m & 8) {
				e.unit = "docker-0123.scope";
				strcat(keys, " unit");
			}
			root = emit_parse(&e, &buf, &n);
			expect_keyset(root, keys, buf, n);
			if (m & 1)
				assert_string_equal(get_str(root, "cgroup", NULL),
						    "/system.slice/docker-0123.scope");
			if (m & 2)
				assert_string_equal(get_str(root, "container_id", NULL), cid);
			if (m & 4)
				assert_string_equal(get_str(root, "pod_uid", NULL), pod);
			if (m & 8)
				assert_string_equal(get_str(root, "unit", NULL),
						    "docker-0123.scope");
			json_decref(root);
		}
	}
	/* the root cgroup, and cgroup and unit bytes that need escapes or U+FFFD */
	snprintf(cur_case, sizeof(cur_case), "cgroup root");
	make_event(&e, LM_EV_EXIT);
	e.cgroup = RB_LIT("/");
	root = emit_parse(&e, &buf, &n);
	assert_string_equal(get_str(root, "cgroup", NULL), "/");
	json_decref(root);

	snprintf(cur_case, sizeof(cur_case), "cgroup odd bytes");
	make_event(&e, LM_EV_EXEC);
	e.cgroup = RB_LIT("/a\"b\\c\n\xc2\x9b\xe2\x80\xa8\xff/\xc3");
	e.unit = "x\"y\x01.service";
	root = emit_parse(&e, &buf, &n);
	expect_text(root, "cgroup", e.cgroup.p, e.cgroup.len, buf, n);
	expect_text(root, "unit", e.unit, strlen(e.unit), buf, n);
	json_decref(root);
}

static void test_json_args(void **state)
{
	static const struct {
		const char *area;
		size_t len;
		uint8_t flags;
		uint32_t argc;
		const char *want; /* the args array as jansson prints it compactly */
		const char *hex;  /* the args_hex object, or NULL for none */
	} cases[] = {
#define A(s) s, sizeof(s) - 1
	    {A("bash\0"), 0, 1, "[\"bash\"]", NULL},
	    {A(""), 0, 0, "[]", NULL},
	    {A(""), LM_F_ARGS_FAULT, 3, "[]", NULL},
	    {A("\0"), 0, 1, "[\"\"]", NULL},
	    {A("a\0\0b\0"), 0, 3, "[\"a\", \"\", \"b\"]", NULL},
	    {A("\0\0\0"), 0, 3, "[\"\", \"\", \"\"]", NULL},
	    {A("x\0\0"), 0, 2, "[\"x\", \"\"]", NULL},
	    /* cut inside the third argument: its piece is kept, argc stays the true count */
	    {A("ls\0-la\0/tm"), LM_F_TRUNC_ARGS, 4, "[\"ls\", \"-la\", \"/tm\"]", NULL},
	    {A("ls\0"), LM_F_TRUNC_ARGS, 5000, "[\"ls\"]", NULL},
	    {A("say\0\"hi\"\0a\nb\0\\\0\t\0"), 0, 5,
	     "[\"say\", \"\\\"hi\\\"\", \"a\\nb\", \"\\\\\", \"\\t\"]", NULL},
	    {A("ok\0\xff\0x\xc3\0\xe6\x97\xa5\0\xc2\x9b\0"), 0, 5, NULL,
	     "{\"1\": \"ff\", \"2\": \"78c3\"}"},
	    {A("0\0" "1\0" "2\0" "3\0" "4\0" "5\0" "6\0" "7\0" "8\0" "9\0" "10\0" "\xc0\x80"),
	     LM_F_TRUNC_ARGS, 12, NULL, "{\"11\": \"c080\"}"},
	    {A("\xff"), 0, 1, "[\"\xef\xbf\xbd\"]", "{\"0\": \"ff\"}"},
#undef A
	};
	struct ev e;
	json_t *root, *v;
	size_t i;
	char *buf, *dump;
	int n;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(cur_case, sizeof(cur_case), "args case %zu", i);
		make_event(&e, LM_EV_EXEC);
		e.r.args = (struct rb_bytes){ cases[i].area, cases[i].len };
		e.r.flags = cases[i].flags;
		e.r.argc = cases[i].argc;
		root = emit_parse(&e, &buf, &n);
		expect_args(root, cases[i].area, cases[i].len, buf, n);
		assert_int_equal(get_int(root, "argc"), cases[i].argc);
		/* an unreadable argument area counts as cut to nothing */
		expect_truncated(root, cases[i].flags & (LM_F_TRUNC_ARGS | LM_F_ARGS_FAULT) ? "args"
											   : "");
		if (cases[i].want) {
			dump = json_dumps(json_object_get(root, "args"), JSON_ENCODE_ANY);
			if (strcmp(dump, cases[i].want))
				fail_msg("%s: args %s, want %s", cur_case, dump, cases[i].want);
			free(dump);
		}
		v = json_object_get(root, "args_hex");
		if (cases[i].hex) {
			dump = json_dumps(v, JSON_SORT_KEYS);
			if (!dump || strcmp(dump, cases[i].hex))
				fail_msg("%s: args_hex %s, want %s", cur_case, dump, cases[i].hex);
			free(dump);
		} else {
			expect(v == NULL);
		}
		json_decref(root);
	}
}

static void test_json_paths(void **state)
{
	static const struct {
		const char *filename, *exe, *cwd; /* exe, cwd in order; "" an empty walk */
		uint8_t flags;
		const char *want_exe, *want_cwd, *trunc;
	} cases[] = {
	    {"/bin/true", "/usr/bin/true", "/home/u", 0, "/usr/bin/true", "/home/u", ""},
	    {"true", "/usr/bin/true", "", 0, "/usr/bin/true", "/", ""},
	    {"/dev/fd/3", "/memfd:x (deleted)", "/", 0, "/memfd:x (deleted)", "/", ""},
	    {"./s.sh", "/usr/bin/bash", "/a/b/c/d/e/f/g", 0, "/usr/bin/bash", "/a/b/c/d/e/f/g",
	     ""},
	    /* cut paths keep their leaf end, without the leading '/' */
	    {"x", "lib/y/z", "b/c", LM_F_TRUNC_EXE | LM_F_TRUNC_CWD, "lib/y/z", "b/c", "exe cwd"},
	    {"/bin/x", "leaf", "/", LM_F_TRUNC_EXE, "leaf", "/", "exe"},
	    {"/very/lo", "/bin/x", "/", LM_F_TRUNC_FILENAME, "/bin/x", "/", "filename"},
	    /* no file to resolve: exe absent */
	    {"/bin/x", "", "/tmp", LM_F_NO_EXE, NULL, "/tmp", ""},
	    {"/bin/x", "/w\xff", "/tmp", LM_F_NO_EXE, NULL, "/tmp", ""},
	};
	char walk[64], keys[512];
	struct ev e;
	json_t *root;
	size_t i, len;
	char *buf;
	int n;

	(void)state;
	/* the helper writes the walked form lm_event.h describes */
	snprintf(cur_case, sizeof(cur_case), "walked form");
	len = rb_walk("/usr/bin/true", 13, walk);
	assert_int_equal(len, 13);
	assert_memory_equal(walk, "/true/bin/usr", 13);
	assert_int_equal(rb_walk("", 0, walk), 0);
	assert_int_equal(rb_walk("b/c", 3, walk), 4);
	assert_memory_equal(walk, "/c/b", 4);

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(cur_case, sizeof(cur_case), "paths case %zu", i);
		make_event(&e, LM_EV_EXEC);
		e.r.filename = (struct rb_bytes){ cases[i].filename, strlen(cases[i].filename) };
		e.exe = (struct rb_bytes){ cases[i].exe, strlen(cases[i].exe) };
		e.cwd = (struct rb_bytes){ cases[i].cwd, strlen(cases[i].cwd) };
		e.r.flags = cases[i].flags;
		root = emit_parse(&e, &buf, &n);
		assert_string_equal(get_str(root, "filename", NULL), cases[i].filename);
		snprintf(keys, sizeof(keys), "%s%s",
			 cases[i].want_exe ? BASE_KEYS ID_KEYS EXEC_KEYS
					   : BASE_KEYS ID_KEYS "filename args argc cwd gid euid pcomm",
			 cases[i].trunc[0] ? " truncated" : "");
		expect_keyset(root, keys, buf, n);
		if (cases[i].want_exe) {
			assert_string_equal(get_str(root, "exe", NULL), cases[i].want_exe);
		} else {
			expect(!json_object_get(root, "exe"));
			expect(!json_object_get(root, "exe_hex"));
		}
		assert_string_equal(get_str(root, "cwd", NULL), cases[i].want_cwd);
		expect_truncated(root, cases[i].trunc);
		json_decref(root);
	}

	/* invalid UTF-8 in each path: U+FFFD and a hex twin of the raw (in-order) bytes */
	snprintf(cur_case, sizeof(cur_case), "paths with invalid bytes");
	make_event(&e, LM_EV_EXEC);
	e.r.filename = RB_LIT("/tmp/\xff");
	e.exe = RB_LIT("/opt/\xc3(/\xe2\x80\xa8");
	e.cwd = RB_LIT("/h\xed\xa0\x80/\x01");
	root = emit_parse(&e, &buf, &n);
	expect_text(root, "filename", e.r.filename.p, e.r.filename.len, buf, n);
	expect_text(root, "exe", e.exe.p, e.exe.len, buf, n);
	expect_text(root, "cwd", e.cwd.p, e.cwd.len, buf, n);
	assert_string_equal(get_str(root, "filename_hex", NULL), "2f746d702fff");
	assert_string_equal(get_str(root, "exe_hex", NULL), "2f6f70742fc3282fe280a8");
	assert_string_equal(get_str(root, "cwd_hex", NULL), "2f68eda0802f01");
	expect_keyset(root, BASE_KEYS ID_KEYS EXEC_KEYS "filename_hex exe_hex cwd_hex", buf, n);
	json_decref(root);
}

/* "truncated" names what was cut, in the order args, filename, exe, cwd; absent otherwise. */
static void test_json_truncated_list(void **state)
{
	static const char *const names[] = {"args", "filename", "exe", "cwd"};
	static const uint8_t bits[] = {LM_F_TRUNC_ARGS, LM_F_TRUNC_FILENAME, LM_F_TRUNC_EXE,
				       LM_F_TRUNC_CWD};
	char want[64];
	struct ev e;
	json_t *root;
	unsigned int m, noise;
	size_t i;
	char *buf;
	int n;

	(void)state;
	for (noise = 0; noise < 2; noise++) {
		for (m = 0; m < 16; m++) {
			snprintf(cur_case, sizeof(cur_case), "truncated mask %u noise %u", m,
				 noise);
			make_event(&e, LM_EV_EXEC);
			want[0] = '\0';
			for (i = 0; i < 4; i++) {
				if (!(m & (1u << i)))
					continue;
				e.r.flags |= bits[i];
				snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%s",
					 want[0] ? " " : "", names[i]);
			}
			if (m & 4)
				e.exe = RB_LIT("bin/x"); /* a cut path has no leading '/' */
			if (m & 8)
				e.cwd = RB_LIT("u/w");
			/* flags that are not about cutting add nothing */
			if (noise)
				e.r.flags |= LM_F_NO_EXE;
			root = emit_parse(&e, &buf, &n);
			expect_truncated(root, want);
			json_decref(root);
		}
	}
}

static void test_json_exec_ids(void **state)
{
	struct ev e;
	json_t *root;
	char *buf;
	int n;

	(void)state;
	/* a setuid-root program run by uid 1000: euid 0, uid 1000 */
	snprintf(cur_case, sizeof(cur_case), "exec ids");
	make_event(&e, LM_EV_EXEC);
	e.r.uid = 1000;
	e.r.aux = 50;
	e.r.euid = 0;
	e.r.pcomm = RB_LIT("sshd");
	root = emit_parse(&e, &buf, &n);
	assert_int_equal(get_int(root, "uid"), 1000);
	assert_int_equal(get_int(root, "gid"), 50);
	assert_int_equal(get_int(root, "euid"), 0);
	assert_string_equal(get_str(root, "pcomm", NULL), "sshd");
	expect(!json_object_get(root, "pcomm_hex"));
	json_decref(root);

	snprintf(cur_case, sizeof(cur_case), "pcomm empty");
	e.r.pcomm = RB_LIT("");
	root = emit_parse(&e, &buf, &n);
	assert_string_equal(get_str(root, "pcomm", NULL), "");
	json_decref(root);

	snprintf(cur_case, sizeof(cur_case), "pcomm invalid, full length");
	e.r.pcomm = RB_LIT("abcdefghijklmn\xc3\x28");
	root = emit_parse(&e, &buf, &n);
	expect_text(root, "pcomm", e.r.pcomm.p, e.r.pcomm.len, buf, n);
	assert_string_equal(get_str(root, "pcomm_hex", NULL), "6162636465666768696a6b6c6d6ec328");
	json_decref(root);
}

static void test_json_exit_fields(void **state)
{
	static const struct {
		uint64_t ts, start;
		const char *dur;
	} cases[] = {
	    {5000000000ULL, 1000000000ULL, "4000000000"},
	    {777, 777, "0"},
	    {1000, 1001, "0"}, /* a start after the event (clock skew): 0, not a wrap */
	    {1000, UINT64_MAX, "0"},
	    {UINT64_MAX, 0, U64_MAX_TXT},
	    {123, 0, "123"},
	};
	struct ev e;
	json_t *root;
	size_t i;
	char *buf;
	int n;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(cur_case, sizeof(cur_case), "exit duration case %zu", i);
		make_event(&e, LM_EV_EXIT);
		e.r.ts_ns = cases[i].ts;
		e.r.start_ns = cases[i].start;
		e.r.cpu_user_ns = 300000000;
		e.r.cpu_sys_ns = 12345;
		e.r.max_rss_kb = 204800;
		e.r.flags = i % 2 ? LM_F_OOM_KILLED : 0;
		n = emit(&e, 1, 2, line_max, &buf);
		/* jansson holds no integer above INT64_MAX: read them as reals */
		root = parse_line_flags(buf, n, JSON_DECODE_INT_AS_REAL);
		expect_raw_num(buf, n, "duration_ns", cases[i].dur);
		expect_raw_num(buf, n, "cpu_user_ns", "300000000");
		expect_raw_num(buf, n, "cpu_sys_ns", "12345");
		expect_raw_num(buf, n, "max_rss_kb", "204800");
		assert_int_equal(get_bool(root, "oom_killed"), i % 2 == 1);
		expect_keyset(root, BASE_KEYS ID_KEYS EXIT_KEYS, buf, n);
		json_decref(root);
	}
}

static void test_json_oom_victim_keys(void **state)
{
	static const struct {
		int32_t adj;
		const char *txt;
	} adjs[] = {
	    {-1000, "-1000"}, {-1, "-1"}, {0, "0"}, {1, "1"}, {1000, "1000"},
	    {INT32_MIN, "-2147483648"}, {INT32_MAX, "2147483647"},
	};
	static const struct {
		uint8_t flags;
		const char *constraint; /* NULL: absent */
	} cons[] = {
	    {LM_F_OOM_KNOWN | LM_F_OOM_MEMCG, "memcg"},
	    {LM_F_OOM_KNOWN, "global"},
	    {0, NULL},
	    {LM_F_OOM_MEMCG, NULL}, /* MEMCG means nothing without KNOWN */
	};
	char pat[64], keys[512];
	struct ev e;
	json_t *root;
	size_t a, c;
	char *buf;
	int n, mc;

	(void)state;
	for (a = 0; a < sizeof(adjs) / sizeof(adjs[0]); a++) {
		for (c = 0; c < sizeof(cons) / sizeof(cons[0]); c++) {
			for (mc = 0; mc < 2; mc++) {
				snprintf(cur_case, sizeof(cur_case), "oom adj %s, flags 0x%x, memcg %d",
					 adjs[a].txt, cons[c].flags, mc);
				make_event(&e, LM_EV_OOM);
				e.r.flags = LM_F_OOM_VICTIM | cons[c].flags;
				e.r.aux = (uint32_t)adjs[a].adj;
				e.cgroup = RB_LIT("/user.slice");
				if (mc)
					e.memcg = RB_LIT("/docker/0123");
				root = emit_parse(&e, &buf, &n);
				assert_true(get_int(root, "oom_score_adj") == adjs[a].adj);
				snprintf(pat, sizeof(pat), "\"oom_score_adj\":%s,", adjs[a].txt);
				if (!memmem(buf, n, pat, strlen(pat)) &&
				    !(snprintf(pat, sizeof(pat), "\"oom_score_adj\":%s}", adjs[a].txt),
				      memmem(buf, n, pat, strlen(pat))))
					fail_msg("%s: no %s in %.*s", cur_case, pat, n, buf);
				snprintf(keys, sizeof(keys),
					 BASE_KEYS ID_KEYS OOM_KEYS "cgroup oom_score_adj%s%s",
					 mc ? " memcg" : "", cons[c].constraint ? " constraint" : "");
				expect_keyset(root, keys, buf, n);
				if (mc)
					assert_string_equal(get_str(root, "memcg", NULL),
							    "/docker/0123");
				if (cons[c].constraint)
					assert_string_equal(get_str(root, "constraint", NULL),
							    cons[c].constraint);
				json_decref(root);
			}
		}
	}
	snprintf(cur_case, sizeof(cur_case), "oom memcg odd bytes");
	make_event(&e, LM_EV_OOM);
	e.r.flags = LM_F_OOM_VICTIM;
	e.memcg = RB_LIT("/k\xff\"\n/\xe2\x80\xa9");
	root = emit_parse(&e, &buf, &n);
	expect_text(root, "memcg", e.memcg.p, e.memcg.len, buf, n);
	json_decref(root);
}

/*
 * Kernels before 6.8, victim out of reach: only its pid is known. No key, cgroup or memcg
 * line even if the serializer had names at hand, no oom_score_adj, no constraint.
 */
static void test_json_oom_without_victim(void **state)
{
	struct ev e;
	json_t *root;
	char *buf;
	int n, noise;

	(void)state;
	for (noise = 0; noise < 2; noise++) {
		snprintf(cur_case, sizeof(cur_case), "oom without victim, noise %d", noise);
		make_event(&e, LM_EV_OOM);
		e.r.flags = noise ? LM_F_OOM_KNOWN | LM_F_OOM_MEMCG : 0;
		e.r.pid = e.r.tid = 555;
		e.r.ppid = 0;
		e.r.uid = 0;
		e.r.aux = (uint32_t)-17;
		e.r.comm = RB_LIT("");
		if (noise) {
			e.r.start_ns = 99;
			e.r.cgroup_id = 12;
			e.cgroup = RB_LIT("/x");
			e.memcg = RB_LIT("/y");
			e.container_id =
			    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
			e.pod_uid = "01234567-89ab-cdef-0123-456789abcdef";
			e.unit = "u.service";
		}
		root = emit_parse(&e, &buf, &n);
		expect_keyset(root, BASE_KEYS OOM_KEYS, buf, n);
		assert_int_equal(get_int(root, "pid"), 555);
		assert_int_equal(get_int(root, "target_pid"), 555);
		assert_string_equal(get_str(root, "type", NULL), "OOM_KILL");
		json_decref(root);
	}
}

/*
 * lm_json_event_max(cap) bounds the longest line: the argument area at its cap filled in the
 * costliest ways (single-byte invalid arguments: U+FFFD plus a hex twin keyed by a 5-digit
 * index; one long invalid argument; empty arguments; controls), every path and name at its
 * cap in invalid bytes, every number at its maximum. A buffer of exactly the bound suffices.
 */
static void test_json_event_max_bounds_worst_case(void **state)
{
	static const uint32_t caps[] = {LM_ARGS_MIN, LM_ARGS_DEFAULT, LM_ARGS_MAX};
	static const struct {
		const char *unit;
		size_t len;
	} pats[] = {{"\xff\0", 2}, {"\xff", 1}, {"\0", 1}, {"\x01\0", 2}, {"\xff\xff\0", 3},
		    {"\"\0", 2}};
	static char args[LM_ARGS_MAX], path[LM_PATH_MAX], cut[LM_PATH_MAX], unit[256];
	static const char comm[] = "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff";
	size_t c, p, i, bound, worst = 0;
	struct ev e;
	json_t *root;
	char *buf;
	int n, t;

	(void)state;
	path[0] = '/';
	memset(path + 1, 0xff, sizeof(path) - 1);
	memset(cut, 0xff, sizeof(cut));
	memset(unit, 0xff, sizeof(unit) - 1);
	unit[sizeof(unit) - 1] = '\0';
	for (c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
		bound = lm_json_event_max(caps[c]);
		for (p = 0; p < sizeof(pats) / sizeof(pats[0]); p++) {
			for (i = 0; i < caps[c]; i++)
				args[i] = pats[p].unit[i % pats[p].len];
			for (t = 0; t < 2; t++) {
				snprintf(cur_case, sizeof(cur_case),
					 "worst case, cap %u, pattern %zu, cut paths %d", caps[c], p, t);
				make_event(&e, LM_EV_EXEC);
				e.r.flags = LM_F_TRUNC_ARGS | LM_F_TRUNC_FILENAME |
					    (t ? LM_F_TRUNC_EXE | LM_F_TRUNC_CWD : 0);
				e.r.pid = e.r.tid = e.r.ppid = e.r.uid = e.r.aux = UINT32_MAX;
				e.r.euid = e.r.argc = UINT32_MAX;
				e.r.start_ns = e.r.pstart_ns = e.r.cgroup_id = UINT64_MAX;
				e.r.comm = (struct rb_bytes){ comm, LM_COMM_LEN };
				e.r.pcomm = e.r.comm;
				e.r.args = (struct rb_bytes){ args, caps[c] };
				e.r.filename = (struct rb_bytes){ path, LM_PATH_MAX };
				/* a cut path has no leading '/'; its walk adds one */
				e.exe = t ? (struct rb_bytes){ cut, LM_PATH_MAX - 1 }
					  : (struct rb_bytes){ path, LM_PATH_MAX };
				e.cwd = e.exe;
				e.cgroup = (struct rb_bytes){ path, LM_PATH_MAX };
				e.container_id = "0123456789abcdef0123456789abcdef0123456789abcdef"
						 "0123456789abcdef";
				e.pod_uid = "01234567-89ab-cdef-0123-456789abcdef";
				e.unit = unit;
				n = emit(&e, UINT64_MAX, UINT64_MAX, bound, &buf);
				if (n <= 0 || (size_t)n > bound)
					fail_msg("%s: %d bytes, lm_json_event_max(%u) is %zu",
						 cur_case, n, caps[c], bound);
				if ((size_t)n > worst)
					worst = (size_t)n;
				root = parse_line_flags(buf, n, JSON_DECODE_INT_AS_REAL);
				json_decref(root);
			}
		}
		/* the other types, every string at its cap */
		snprintf(cur_case, sizeof(cur_case), "worst case OOM, cap %u", caps[c]);
		make_event(&e, LM_EV_OOM);
		e.r.flags = LM_F_OOM_VICTIM | LM_F_OOM_KNOWN | LM_F_OOM_MEMCG;
		e.r.pid = e.r.tid = e.r.ppid = e.r.uid = UINT32_MAX;
		e.r.aux = (uint32_t)INT32_MIN;
		e.r.start_ns = e.r.pstart_ns = e.r.cgroup_id = UINT64_MAX;
		e.r.total_vm_kb = e.r.anon_rss_kb = e.r.file_rss_kb = UINT64_MAX;
		e.r.shmem_rss_kb = e.r.pgtables_kb = UINT64_MAX;
		e.r.comm = (struct rb_bytes){ comm, LM_COMM_LEN };
		e.cgroup = e.memcg = (struct rb_bytes){ path, LM_PATH_MAX };
		e.container_id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
		e.pod_uid = "01234567-89ab-cdef-0123-456789abcdef";
		e.unit = unit;
		n = emit(&e, UINT64_MAX, UINT64_MAX, bound, &buf);
		expect(n > 0 && (size_t)n <= bound);
		json_decref(parse_line_flags(buf, n, JSON_DECODE_INT_AS_REAL));

		snprintf(cur_case, sizeof(cur_case), "worst case EXIT, cap %u", caps[c]);
		make_event(&e, LM_EV_EXIT);
		e.r.pid = e.r.tid = e.r.ppid = e.r.uid = UINT32_MAX;
		e.r.aux = 0x80 | 127;
		e.r.ts_ns = e.r.cpu_user_ns = e.r.cpu_sys_ns = UINT64_MAX;
		e.r.max_rss_kb = UINT32_MAX;
		e.r.flags = LM_F_OOM_KILLED;
		e.r.comm = (struct rb_bytes){ comm, LM_COMM_LEN };
		e.cgroup = (struct rb_bytes){ path, LM_PATH_MAX };
		e.container_id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
		e.pod_uid = "01234567-89ab-cdef-0123-456789abcdef";
		e.unit = unit;
		n = emit(&e, UINT64_MAX, UINT64_MAX, bound, &buf);
		expect(n > 0 && (size_t)n <= bound);
		json_decref(parse_line_flags(buf, n, JSON_DECODE_INT_AS_REAL));
	}
	print_message("worst line %zu bytes, lm_json_event_max(%u) = %zu\n", worst, LM_ARGS_MAX,
		      lm_json_event_max(LM_ARGS_MAX));
}

/*
 * Random bytes (valid and broken UTF-8 pieces, controls, NULs, '/') in every string an EXEC
 * or OOM carries: each reads back by the comm rule, with its hex twin exactly when needed,
 * and the raw line holds no unescaped control, C1 or line separator.
 */
static size_t rand_bytes(char *out, size_t max)
{
	unsigned char piece[4];
	size_t len = rng_next() % (max + 1), n, o = 0;

	while (o < len) {
		n = rand_piece(piece);
		if (rng_next() % 8 == 0)
			piece[0] = '/';
		if (n > len - o)
			n = len - o;
		memcpy(out + o, piece, n);
		o += n;
	}
	return o;
}

static void test_json_every_string_random(void **state)
{
	static char args[256], fname[64], exe[64], cwd[64], cg[64], mem[64], unit[64];
	static char pcomm[LM_COMM_LEN];
	unsigned int it;
	struct ev e;
	json_t *root;
	size_t i, n_unit;
	char *buf;
	int n;

	(void)state;
	rng_state = 0x6c69666d6f6e0003ULL;
	for (it = 0; it < 20000; it++) {
		snprintf(cur_case, sizeof(cur_case), "random strings, iteration %u", it);
		make_event(&e, it % 4 == 3 ? LM_EV_OOM : LM_EV_EXEC);
		e.r.flags = it % 4 == 3 ? LM_F_OOM_VICTIM : (uint8_t)(rng_next() & 0x3f);
		e.r.args = (struct rb_bytes){ args, rand_bytes(args, sizeof(args)) };
		e.r.pcomm = (struct rb_bytes){ pcomm, rand_bytes(pcomm, sizeof(pcomm)) };
		e.r.filename = (struct rb_bytes){ fname, rand_bytes(fname, sizeof(fname)) };
		/* in order: "/..." or, cut, a leaf end without the leading '/' */
		e.exe = (struct rb_bytes){ exe, rand_bytes(exe + 1, sizeof(exe) - 1) + 1 };
		exe[0] = e.r.flags & LM_F_TRUNC_EXE ? 'x' : '/';
		e.cwd = (struct rb_bytes){ cwd, rand_bytes(cwd + 1, sizeof(cwd) - 1) + 1 };
		cwd[0] = e.r.flags & LM_F_TRUNC_CWD ? 'y' : '/';
		e.cgroup = (struct rb_bytes){ cg, rand_bytes(cg, sizeof(cg)) };
		e.memcg = (struct rb_bytes){ mem, rand_bytes(mem, sizeof(mem)) };
		n_unit = rand_bytes(unit, sizeof(unit) - 1);
		unit[n_unit] = '\0';
		e.unit = unit;
		n = emit(&e, it, it, line_max, &buf);
		root = parse_line(buf, n);
		expect_escaped_text(buf, n - 1);
		expect_text(root, "cgroup", cg, e.cgroup.len, buf, n);
		expect_text(root, "unit", unit, strlen(unit), buf, n);
		if (e.r.type == LM_EV_OOM) {
			expect_text(root, "memcg", mem, e.memcg.len, buf, n);
			json_decref(root);
			continue;
		}
		expect_args(root, args, e.r.args.len, buf, n);
		expect_text(root, "pcomm", pcomm, e.r.pcomm.len, buf, n);
		expect_text(root, "filename", fname, e.r.filename.len, buf, n);
		expect_text(root, "cwd", cwd, e.cwd.len, buf, n);
		if (e.r.flags & LM_F_NO_EXE) {
			expect(!json_object_get(root, "exe") && !json_object_get(root, "exe_hex"));
		} else {
			expect_text(root, "exe", exe, e.exe.len, buf, n);
		}
		for (i = 0; i < 2; i++)
			expect(!json_object_get(root, i ? "memcg" : "memcg_hex"));
		json_decref(root);
	}
}

static void test_json_lost_fields(void **state)
{
	json_t *root;
	char *buf;
	int n;

	(void)state;
	snprintf(cur_case, sizeof(cur_case), "lost");
	buf = guard_end(&out_g, NOTICE_MAX);
	n = lm_json_lost(buf, NOTICE_MAX, 5, 9, 5, "slow_client");
	root = parse_line(buf, n);
	assert_string_equal(get_str(root, "type", NULL), "LOST");
	assert_int_equal(get_int(root, "first_seq"), 5);
	assert_int_equal(get_int(root, "last_seq"), 9);
	assert_int_equal(get_int(root, "count"), 5);
	assert_string_equal(get_str(root, "reason", NULL), "slow_client");
	json_decref(root);

	n = lm_json_lost(buf, NOTICE_MAX, UINT64_MAX - 9, UINT64_MAX, 10, "ring");
	root = parse_line_flags(buf, n, JSON_DECODE_INT_AS_REAL);
	assert_string_equal(get_str(root, "type", NULL), "LOST");
	assert_string_equal(get_str(root, "reason", NULL), "ring");
	json_decref(root);
	expect_raw_num(buf, n, "first_seq", "18446744073709551606");
	expect_raw_num(buf, n, "last_seq", U64_MAX_TXT);
	expect_raw_num(buf, n, "count", "10");
}

static void test_json_kernel_lost_fields(void **state)
{
	json_t *root;
	size_t cap;
	char *buf;
	int n;

	(void)state;
	snprintf(cur_case, sizeof(cur_case), "kernel lost");
	buf = guard_end(&out_g, NOTICE_MAX);
	n = lm_json_kernel_lost(buf, NOTICE_MAX, 19855, 3, 8549);
	root = parse_line(buf, n);
	assert_string_equal(get_str(root, "type", NULL), "LOST");
	assert_string_equal(get_str(root, "reason", NULL), "kernel_ring_full");
	assert_int_equal(get_int(root, "count"), 19855);
	assert_int_equal(get_int(root, "cpu"), 3);
	assert_int_equal(get_int(root, "before_seq"), 8549);
	assert_int_equal(json_object_size(root), 5);
	json_decref(root);
	/* every cap short of the line: -ENOSPC and no write past the guard page */
	n = lm_json_kernel_lost(buf, NOTICE_MAX, UINT64_MAX, UINT32_MAX, UINT64_MAX);
	assert_true(n > 0);
	for (cap = 0; cap < (size_t)n; cap++) {
		buf = guard_end(&out_g, cap);
		assert_int_equal(lm_json_kernel_lost(buf, cap, UINT64_MAX, UINT32_MAX, UINT64_MAX),
				 -ENOSPC);
	}
}

static void test_json_lost_enospc_every_cap(void **state)
{
	char ref[NOTICE_MAX];
	size_t cap;
	char *buf;
	int n, ret;

	(void)state;
	snprintf(cur_case, sizeof(cur_case), "lost enospc");
	buf = guard_end(&out_g, NOTICE_MAX);
	n = lm_json_lost(buf, NOTICE_MAX, UINT64_MAX - 1, UINT64_MAX, UINT64_MAX,
			 "slow_client");
	assert_true(n > 0 && n <= NOTICE_MAX);
	memcpy(ref, buf, n);
	for (cap = 0; cap < (size_t)n; cap++) {
		buf = guard_end(&out_g, cap);
		ret = lm_json_lost(buf, cap, UINT64_MAX - 1, UINT64_MAX, UINT64_MAX, "slow_client");
		if (ret != -ENOSPC)
			fail_msg("lost: cap %zu of %d: returned %d, want -ENOSPC", cap, n, ret);
	}
	buf = guard_end(&out_g, n);
	assert_int_equal(
	    lm_json_lost(buf, n, UINT64_MAX - 1, UINT64_MAX, UINT64_MAX, "slow_client"), n);
	assert_memory_equal(buf, ref, n);
}

static void test_json_str_stops_at_nul(void **state)
{
	char *buf = guard_end(&out_g, 64);
	int valid = 1;

	(void)state;
	assert_int_equal(lm_json_str(buf, 64, "ab\0\377cd", 6, &valid), 2);
	assert_memory_equal(buf, "ab", 2);
	assert_int_equal(valid, 1);

	valid = 1;
	assert_int_equal(lm_json_str(buf, 64, "\0abc", 4, &valid), 0);
	assert_int_equal(valid, 1);

	/* An empty body fits in no space at all. */
	buf = guard_end(&out_g, 0);
	valid = 1;
	assert_int_equal(lm_json_str(buf, 0, "", 0, &valid), 0);
	assert_int_equal(valid, 1);

	/* `len` bounds the read: nothing past it, NUL or not (input ends at a guard). */
	buf = guard_end(&out_g, 64);
	memcpy(guard_end(&str_g, 3), "xyz", 3);
	valid = 1;
	assert_int_equal(lm_json_str(buf, 64, guard_end(&str_g, 3), 3, &valid), 3);
	assert_memory_equal(buf, "xyz", 3);
}

static void test_json_str_valid_flag(void **state)
{
	char *buf = guard_end(&out_g, 64);
	int valid;

	(void)state;
	valid = 1;
	assert_int_equal(lm_json_str(buf, 64, "h\xc3\xa9", 3, &valid), 3);
	assert_memory_equal(buf, "h\xc3\xa9", 3);
	assert_int_equal(valid, 1);

	/* U+FFFD may be written raw or as \ufffd: compare what a parser reads. */
	snprintf(cur_case, sizeof(cur_case), "str a\\xff");
	check_str((const unsigned char *)"a\xff", 2, "a\xef\xbf\xbd", 4, 0);
	buf = guard_end(&out_g, 64);

	/* A replaced byte after the first NUL does not count. */
	valid = 1;
	assert_int_equal(lm_json_str(buf, 64, "a\0\xff", 3, &valid), 1);
	assert_int_equal(valid, 1);
}

static void test_json_str_enospc_every_cap(void **state)
{
	static const char s[] = "\"\\\x01\x1f\x7f\xe6\x97\xa5\xff\xc0\x80 ok\xf0\x9f\x98\x80";
	char ref[STR_BODY_MAX * 2];
	size_t cap;
	char *buf;
	int n, ret, valid = 1;

	(void)state;
	buf = guard_end(&out_g, sizeof(ref));
	n = lm_json_str(buf, sizeof(ref), s, sizeof(s) - 1, &valid);
	assert_true(n > 0 && (size_t)n <= sizeof(ref));
	assert_int_equal(valid, 0);
	memcpy(ref, buf, n);
	for (cap = 0; cap < (size_t)n; cap++) {
		buf = guard_end(&out_g, cap);
		ret = lm_json_str(buf, cap, s, sizeof(s) - 1, &valid);
		if (ret != -ENOSPC)
			fail_msg("str: cap %zu of %d: returned %d, want -ENOSPC", cap, n, ret);
	}
	buf = guard_end(&out_g, n);
	assert_int_equal(lm_json_str(buf, n, s, sizeof(s) - 1, &valid), n);
	assert_memory_equal(buf, ref, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_json_exec_keys),
	    cmocka_unit_test(test_json_exit_status_fields),
	    cmocka_unit_test(test_json_oom_fields),
	    cmocka_unit_test(test_json_u64_max_exact),
	    cmocka_unit_test(test_json_int64_max_parses),
	    cmocka_unit_test(test_json_comm_full_not_terminated),
	    cmocka_unit_test(test_json_comm_stops_at_nul),
	    cmocka_unit_test(test_json_comm_every_byte_every_pos),
	    cmocka_unit_test(test_json_comm_random_bytes),
	    cmocka_unit_test(test_json_comm_random_utf8_mix),
	    cmocka_unit_test(test_json_valid_utf8_roundtrip),
	    cmocka_unit_test(test_json_invalid_utf8_replaced),
	    cmocka_unit_test(test_json_escapes_roundtrip),
	    cmocka_unit_test(test_json_c1_and_line_separators_escaped),
	    cmocka_unit_test(test_json_event_enospc_every_cap),
	    cmocka_unit_test(test_json_key_and_parent_key),
	    cmocka_unit_test(test_json_cgroup_names_presence),
	    cmocka_unit_test(test_json_args),
	    cmocka_unit_test(test_json_paths),
	    cmocka_unit_test(test_json_truncated_list),
	    cmocka_unit_test(test_json_exec_ids),
	    cmocka_unit_test(test_json_exit_fields),
	    cmocka_unit_test(test_json_oom_victim_keys),
	    cmocka_unit_test(test_json_oom_without_victim),
	    cmocka_unit_test(test_json_event_max_bounds_worst_case),
	    cmocka_unit_test(test_json_every_string_random),
	    cmocka_unit_test(test_json_lost_fields),
	    cmocka_unit_test(test_json_lost_enospc_every_cap),
	    cmocka_unit_test(test_json_kernel_lost_fields),
	    cmocka_unit_test(test_json_str_stops_at_nul),
	    cmocka_unit_test(test_json_str_valid_flag),
	    cmocka_unit_test(test_json_str_enospc_every_cap),
	};

	return cmocka_run_group_tests_name("json", tests, group_setup, group_teardown);
}
