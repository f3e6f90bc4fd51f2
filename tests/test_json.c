// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for core/json.c (the serializer's pure writer): every byte value through comm,
 * output checked by jansson's strict parser, the seed's keys and values, and writes that must
 * stop before a PROT_NONE guard page. Single-threaded; owns two guard mappings per group run.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <linux/types.h>

#include "bpf/lm_event.h"
#include "core/json.h"

#define U64_MAX_TXT "18446744073709551615"
#define U32_MAX_TXT "4294967295"
/* Worst case of a string body: every byte escaped as \u00XX. */
#define STR_BODY_MAX (6 * LM_COMM_LEN)

/*
 * Two pages, the second PROT_NONE. A buffer of `len` bytes placed by guard_end() ends exactly
 * at the guard, so one byte written (or read) past it faults.
 */
struct guard {
	char *map;
	size_t page;
};

static struct guard out_g; /* writer output */
static struct guard in_g;  /* event and string input: proves comm is not read past 16 */

/* What the current check is about, printed with every failure from a shared helper. */
static char cur_case[256];

#define expect(cond)                                                                      \
	do {                                                                              \
		if (!(cond))                                                              \
			fail_msg("%s: expected %s (line %d)", cur_case, #cond, __LINE__); \
	} while (0)

static int guard_map(struct guard *g)
{
	g->page = (size_t)sysconf(_SC_PAGESIZE);
	g->map =
	    mmap(NULL, 2 * g->page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (g->map == MAP_FAILED) {
		g->map = NULL;
		return -1;
	}
	return mprotect(g->map + g->page, g->page, PROT_NONE);
}

static void guard_unmap(struct guard *g)
{
	if (g->map)
		munmap(g->map, 2 * g->page);
	g->map = NULL;
}

static char *guard_end(const struct guard *g, size_t len)
{
	assert_true(len <= g->page);
	return g->map + g->page - len;
}

static int group_setup(void **state)
{
	(void)state;
	if (guard_map(&out_g) || guard_map(&in_g))
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	guard_unmap(&out_g);
	guard_unmap(&in_g);
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

static void make_event(struct lm_event *e, uint16_t type)
{
	memset(e, 0, sizeof(*e));
	e->ts_ns = 123456789;
	e->version = LM_EVENT_VERSION;
	e->type = type;
	e->cpu = 3;
	e->pid = 4242;
	e->tid = 4243;
	e->ppid = 1;
	e->uid = 1000;
	memcpy(e->comm, "bash", 4);
}

/*
 * Writes `e` into a `cap`-byte buffer that ends at the output guard, reading the event from a
 * copy that ends at the input guard. *out is the buffer.
 */
static int emit(const struct lm_event *e, uint64_t seq, uint64_t unix_ns, size_t cap, char **out)
{
	struct lm_event *in = (struct lm_event *)guard_end(&in_g, sizeof(*in));
	char *buf = guard_end(&out_g, cap);

	memcpy(in, e, sizeof(*in));
	memset(buf, 0xa5, cap);
	*out = buf;
	return lm_json_event(buf, cap, seq, unix_ns, in);
}

/* Checks the framing (one object, one '\n', nothing else) and parses strictly. */
static json_t *parse_line_flags(const char *buf, int n, size_t flags)
{
	json_error_t err;
	json_t *root, *dup;

	if (n < 3 || n > LM_JSON_EVENT_MAX)
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

/* Checks lm_json_str on s[0..len) against the reference decoding. */
static void check_str(const unsigned char *s, size_t len, const char *want, size_t want_len,
		      int want_valid)
{
	char *in = guard_end(&in_g, len);
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
 * reference, comm_hex present exactly when something was replaced.
 */
static void check_comm(const unsigned char *comm)
{
	char want[3 * LM_COMM_LEN], hex[2 * LM_COMM_LEN + 1];
	size_t len, want_len, got_len;
	struct lm_event e;
	json_t *root, *hexv;
	const char *got;
	int valid, n;
	char *buf;

	make_event(&e, LM_EV_EXEC);
	memcpy(e.comm, comm, LM_COMM_LEN);
	len = comm_len(comm);
	want_len = ref_sanitize(comm, len, want, &valid);
	hex_of(comm, len, hex);

	n = emit(&e, 1, 2, LM_JSON_EVENT_MAX, &buf);
	root = parse_line(buf, n);
	expect_escaped_text(buf, n - 1);
	got = get_str(root, "comm", &got_len);
	if (got_len != want_len || memcmp(got, want, want_len))
		fail_msg("%s: comm decodes to %zu bytes, want %zu: %.*s", cur_case, got_len,
			 want_len, n, buf);
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
	json_decref(root);

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
	struct lm_event e;
	json_t *root;
	char *buf;
	int n;

	(void)state;
	snprintf(cur_case, sizeof(cur_case), "exec keys");
	make_event(&e, LM_EV_EXEC);
	n = emit(&e, 77, 1700000000123456789ULL, LM_JSON_EVENT_MAX, &buf);
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
	struct lm_event e;
	json_t *root;
	size_t i;
	char *buf;
	int n;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(cur_case, sizeof(cur_case), "exit status 0x%x", cases[i].status);
		make_event(&e, LM_EV_EXIT);
		e.exit_status = cases[i].status;
		n = emit(&e, 5, 6, LM_JSON_EVENT_MAX, &buf);
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
		json_decref(root);
	}
}

static void test_json_oom_fields(void **state)
{
	struct lm_event e;
	json_t *root;
	char *buf;
	int n;

	(void)state;
	snprintf(cur_case, sizeof(cur_case), "oom keys");
	make_event(&e, LM_EV_OOM);
	e.target_pid = 31337;
	e.total_vm_kb = 123456789012ULL;
	e.anon_rss_kb = 1111;
	e.file_rss_kb = 2222;
	e.shmem_rss_kb = 3333;
	e.pgtables_kb = 44;
	n = emit(&e, 9, 10, LM_JSON_EVENT_MAX, &buf);
	root = parse_line(buf, n);
	assert_string_equal(get_str(root, "type", NULL), "OOM_KILL");
	assert_int_equal(get_int(root, "target_pid"), 31337);
	assert_true(get_int(root, "total_vm_kb") == 123456789012LL);
	assert_int_equal(get_int(root, "anon_rss_kb"), 1111);
	assert_int_equal(get_int(root, "file_rss_kb"), 2222);
	assert_int_equal(get_int(root, "shmem_rss_kb"), 3333);
	assert_int_equal(get_int(root, "pgtables_kb"), 44);
	assert_int_equal(get_int(root, "pid"), 4242);
	assert_int_equal(get_int(root, "ppid"), 1);
	assert_int_equal(get_int(root, "uid"), 1000);
	assert_int_equal(get_int(root, "seq"), 9);
	assert_int_equal(get_int(root, "timestamp"), 10);
	assert_string_equal(get_str(root, "comm", NULL), "bash");
	assert_int_equal(get_int(root, "exit_code"), 0);
	assert_int_equal(get_int(root, "signal"), 0);
	assert_false(get_bool(root, "core_dumped"));
	json_decref(root);
}

/* Largest numbers and the longest comms must print exactly and fit LM_JSON_EVENT_MAX. */
static void test_json_u64_max_exact(void **state)
{
	static const unsigned char worst[][LM_COMM_LEN] = {
	    {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
	    {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	     0xff, 0xff},
	    {'"', '\\', '"', '\\', '"', '\\', '"', '\\', '"', '\\', '"', '\\', '"', '\\', '"',
	     '\\'},
	};
	static const uint16_t types[] = {LM_EV_EXEC, LM_EV_EXIT, LM_EV_OOM};
	struct lm_event e;
	size_t i, t;
	json_t *root;
	char *buf;
	int n;

	(void)state;
	for (t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		for (i = 0; i < sizeof(worst) / sizeof(worst[0]); i++) {
			set_case_comm("u64 max", worst[i]);
			make_event(&e, types[t]);
			e.pid = e.tid = e.ppid = e.uid = UINT32_MAX;
			e.cpu = UINT32_MAX;
			e.ts_ns = UINT64_MAX;
			e.exit_status = types[t] == LM_EV_EXIT ? 0x80 | 64 : 0;
			if (types[t] == LM_EV_OOM) {
				e.target_pid = UINT32_MAX;
				e.total_vm_kb = e.anon_rss_kb = e.file_rss_kb = UINT64_MAX;
				e.shmem_rss_kb = e.pgtables_kb = UINT64_MAX;
			}
			memcpy(e.comm, worst[i], LM_COMM_LEN);
			n = emit(&e, UINT64_MAX, UINT64_MAX, LM_JSON_EVENT_MAX, &buf);
			/* jansson's json_int_t is long long: read numbers above it as reals. */
			root = parse_line_flags(buf, n, JSON_DECODE_INT_AS_REAL);
			json_decref(root);
			expect_raw_num(buf, n, "seq", U64_MAX_TXT);
			expect_raw_num(buf, n, "timestamp", U64_MAX_TXT);
			expect_raw_num(buf, n, "pid", U32_MAX_TXT);
			expect_raw_num(buf, n, "tid", U32_MAX_TXT);
			expect_raw_num(buf, n, "ppid", U32_MAX_TXT);
			expect_raw_num(buf, n, "uid", U32_MAX_TXT);
			if (types[t] == LM_EV_EXIT) {
				expect_raw_num(buf, n, "signal", "64");
				expect_raw_num(buf, n, "exit_code", "192");
			}
			if (types[t] != LM_EV_OOM)
				continue;
			expect_raw_num(buf, n, "target_pid", U32_MAX_TXT);
			expect_raw_num(buf, n, "total_vm_kb", U64_MAX_TXT);
			expect_raw_num(buf, n, "anon_rss_kb", U64_MAX_TXT);
			expect_raw_num(buf, n, "file_rss_kb", U64_MAX_TXT);
			expect_raw_num(buf, n, "shmem_rss_kb", U64_MAX_TXT);
			expect_raw_num(buf, n, "pgtables_kb", U64_MAX_TXT);
		}
	}
}

static void test_json_int64_max_parses(void **state)
{
	struct lm_event e;
	json_t *root;
	char *buf;
	int n;

	(void)state;
	snprintf(cur_case, sizeof(cur_case), "int64 max");
	make_event(&e, LM_EV_OOM);
	e.total_vm_kb = INT64_MAX;
	n = emit(&e, INT64_MAX, INT64_MAX - 1, LM_JSON_EVENT_MAX, &buf);
	root = parse_line(buf, n);
	assert_true(get_int(root, "seq") == INT64_MAX);
	assert_true(get_int(root, "timestamp") == INT64_MAX - 1);
	assert_true(get_int(root, "total_vm_kb") == INT64_MAX);
	json_decref(root);
	/* One past INT64_MAX: only the raw text can show it. */
	n = emit(&e, (uint64_t)INT64_MAX + 1, 0, LM_JSON_EVENT_MAX, &buf);
	root = parse_line_flags(buf, n, JSON_DECODE_INT_AS_REAL);
	json_decref(root);
	expect_raw_num(buf, n, "seq", "9223372036854775808");
	expect_raw_num(buf, n, "timestamp", "0");
}

static void test_json_comm_full_not_terminated(void **state)
{
	static const unsigned char comm[LM_COMM_LEN] = "abcdefghijklmnop";
	struct lm_event e;
	json_t *root;
	size_t len;
	char *buf;
	int n;

	(void)state;
	set_case_comm("full comm", comm);
	make_event(&e, LM_EV_EXEC);
	memcpy(e.comm, comm, LM_COMM_LEN);
	/* emit() puts the event's last byte (comm[15]) just before a PROT_NONE page. */
	n = emit(&e, 1, 1, LM_JSON_EVENT_MAX, &buf);
	root = parse_line(buf, n);
	assert_string_equal(get_str(root, "comm", &len), "abcdefghijklmnop");
	assert_int_equal(len, LM_COMM_LEN);
	json_decref(root);
}

static void test_json_comm_stops_at_nul(void **state)
{
	static const unsigned char comm[LM_COMM_LEN] = {'a', 'b', 0, 0xff, 'c', '"', 1};
	struct lm_event e;
	json_t *root;
	size_t len;
	char *buf;
	int n;

	(void)state;
	set_case_comm("nul", comm);
	make_event(&e, LM_EV_EXEC);
	memcpy(e.comm, comm, LM_COMM_LEN);
	n = emit(&e, 1, 1, LM_JSON_EVENT_MAX, &buf);
	root = parse_line(buf, n);
	assert_string_equal(get_str(root, "comm", &len), "ab");
	assert_int_equal(len, 2);
	assert_null(json_object_get(root, "comm_hex"));
	json_decref(root);

	memset(e.comm, 0, LM_COMM_LEN);
	n = emit(&e, 1, 1, LM_JSON_EVENT_MAX, &buf);
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
	struct lm_event e;
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
		memcpy(e.comm, comm, LM_COMM_LEN);
		n = emit(&e, 1, 1, LM_JSON_EVENT_MAX, &buf);
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
	struct lm_event e;
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
		memcpy(e.comm, comm, LM_COMM_LEN);
		n = emit(&e, 1, 1, LM_JSON_EVENT_MAX, &buf);
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
	struct lm_event e;
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
		memcpy(e.comm, comm, LM_COMM_LEN);
		n = emit(&e, 1, 1, LM_JSON_EVENT_MAX, &buf);
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
			struct lm_event e;

			/* C2 xx: U+0080..U+00BF when xx is a continuation byte */
			memcpy(comm, base, LM_COMM_LEN);
			comm[pos] = 0xc2;
			comm[pos + 1] = (unsigned char)b;
			set_case_comm("C2 xx", comm);
			check_comm(comm);
			if (b >= 0x80 && b <= 0x9f) {
				make_event(&e, LM_EV_EXEC);
				memcpy(e.comm, comm, LM_COMM_LEN);
				n = emit(&e, 1, 1, LM_JSON_EVENT_MAX, &buf);
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
				memcpy(e.comm, comm, LM_COMM_LEN);
				n = emit(&e, 1, 1, LM_JSON_EVENT_MAX, &buf);
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
static void sweep_event_caps(const struct lm_event *e, uint64_t seq, uint64_t unix_ns)
{
	char ref[LM_JSON_EVENT_MAX];
	size_t cap;
	char *buf;
	int n, ret;

	n = emit(e, seq, unix_ns, LM_JSON_EVENT_MAX, &buf);
	if (n <= 0 || n > LM_JSON_EVENT_MAX) {
		fail_msg("%s: returned %d", cur_case, n);
		return; /* cmocka's fail_msg is not declared noreturn */
	}
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
	struct lm_event e;

	(void)state;
	snprintf(cur_case, sizeof(cur_case), "enospc exec");
	make_event(&e, LM_EV_EXEC);
	sweep_event_caps(&e, 1, 1);

	snprintf(cur_case, sizeof(cur_case), "enospc exit signaled, full comm");
	make_event(&e, LM_EV_EXIT);
	e.exit_status = 0x80 | 11;
	memcpy(e.comm, "abcdefghijklmnop", LM_COMM_LEN);
	sweep_event_caps(&e, 1700000000, 1700000000123456789ULL);

	snprintf(cur_case, sizeof(cur_case), "enospc oom max");
	make_event(&e, LM_EV_OOM);
	e.pid = e.tid = e.ppid = e.uid = e.target_pid = UINT32_MAX;
	e.total_vm_kb = e.anon_rss_kb = e.file_rss_kb = UINT64_MAX;
	e.shmem_rss_kb = e.pgtables_kb = UINT64_MAX;
	memset(e.comm, 0x01, LM_COMM_LEN);
	sweep_event_caps(&e, UINT64_MAX, UINT64_MAX);

	snprintf(cur_case, sizeof(cur_case), "enospc invalid comm + comm_hex");
	make_event(&e, LM_EV_EXIT);
	memset(e.comm, 0xff, LM_COMM_LEN);
	sweep_event_caps(&e, UINT64_MAX, UINT64_MAX);

	snprintf(cur_case, sizeof(cur_case), "enospc mixed comm");
	make_event(&e, LM_EV_EXEC);
	memcpy(e.comm, "\xe6\x97\xa5\"\\\x01\xc0\x80\xf0\x9f\x98\x80z\x7f\xed\xa0", LM_COMM_LEN);
	sweep_event_caps(&e, 42, 43);
}

static void test_json_lost_fields(void **state)
{
	json_t *root;
	char *buf;
	int n;

	(void)state;
	snprintf(cur_case, sizeof(cur_case), "lost");
	buf = guard_end(&out_g, LM_JSON_EVENT_MAX);
	n = lm_json_lost(buf, LM_JSON_EVENT_MAX, 5, 9, 5, "slow_client");
	root = parse_line(buf, n);
	assert_string_equal(get_str(root, "type", NULL), "LOST");
	assert_int_equal(get_int(root, "first_seq"), 5);
	assert_int_equal(get_int(root, "last_seq"), 9);
	assert_int_equal(get_int(root, "count"), 5);
	assert_string_equal(get_str(root, "reason", NULL), "slow_client");
	json_decref(root);

	n = lm_json_lost(buf, LM_JSON_EVENT_MAX, UINT64_MAX - 9, UINT64_MAX, 10, "ring");
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
	buf = guard_end(&out_g, LM_JSON_EVENT_MAX);
	n = lm_json_kernel_lost(buf, LM_JSON_EVENT_MAX, 19855, 3, 8549);
	root = parse_line(buf, n);
	assert_string_equal(get_str(root, "type", NULL), "LOST");
	assert_string_equal(get_str(root, "reason", NULL), "kernel_ring_full");
	assert_int_equal(get_int(root, "count"), 19855);
	assert_int_equal(get_int(root, "cpu"), 3);
	assert_int_equal(get_int(root, "before_seq"), 8549);
	assert_int_equal(json_object_size(root), 5);
	json_decref(root);
	/* every cap short of the line: -ENOSPC and no write past the guard page */
	n = lm_json_kernel_lost(buf, LM_JSON_EVENT_MAX, UINT64_MAX, UINT32_MAX, UINT64_MAX);
	assert_true(n > 0);
	for (cap = 0; cap < (size_t)n; cap++) {
		buf = guard_end(&out_g, cap);
		assert_int_equal(lm_json_kernel_lost(buf, cap, UINT64_MAX, UINT32_MAX, UINT64_MAX),
				 -ENOSPC);
	}
}

static void test_json_lost_enospc_every_cap(void **state)
{
	char ref[LM_JSON_EVENT_MAX];
	size_t cap;
	char *buf;
	int n, ret;

	(void)state;
	snprintf(cur_case, sizeof(cur_case), "lost enospc");
	buf = guard_end(&out_g, LM_JSON_EVENT_MAX);
	n = lm_json_lost(buf, LM_JSON_EVENT_MAX, UINT64_MAX - 1, UINT64_MAX, UINT64_MAX,
			 "slow_client");
	assert_true(n > 0 && n <= LM_JSON_EVENT_MAX);
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
	memcpy(guard_end(&in_g, 3), "xyz", 3);
	valid = 1;
	assert_int_equal(lm_json_str(buf, 64, guard_end(&in_g, 3), 3, &valid), 3);
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
	    cmocka_unit_test(test_json_lost_fields),
	    cmocka_unit_test(test_json_lost_enospc_every_cap),
	    cmocka_unit_test(test_json_kernel_lost_fields),
	    cmocka_unit_test(test_json_str_stops_at_nul),
	    cmocka_unit_test(test_json_str_valid_flag),
	    cmocka_unit_test(test_json_str_enospc_every_cap),
	};

	return cmocka_run_group_tests_name("json", tests, group_setup, group_teardown);
}
