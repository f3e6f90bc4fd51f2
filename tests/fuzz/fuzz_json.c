// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for core/json.c, the serializer's pure writer: arbitrary struct lm_event
 * bytes, seq and time through lm_json_event, arbitrary bytes through lm_json_str, and the two
 * loss notices. Every output buffer ends at a PROT_NONE guard page (and the inputs too), and
 * every line must be one strict JSON object (jansson) whose values match the input exactly.
 * Built by tests/fuzz.cmake with clang -fsanitize=fuzzer,address,undefined; single-threaded.
 *
 * Input layout (little-endian): seq u64, unix_ns u64, event-cap selector u16, string-cap
 * selector u16, then sizeof(struct lm_event) bytes of event (zero-filled if short), then the
 * bytes for lm_json_str.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <jansson.h>

#include "bpf/lm_event.h"
#include "core/json.h"
#include "core/wstatus.h"

/* libFuzzer's entry points (the -Wmissing-prototypes build wants declarations) */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define STR_MAX 8192		   /* longer lm_json_str inputs are cut here */
#define OUT_MAX (6 * STR_MAX + 64) /* worst case: every byte becomes \u00XX or \ufffd */
#define HDR_LEN (8 + 8 + 2 + 2)

/* A region whose last byte sits right before a PROT_NONE page: one byte past it faults. */
struct guard {
	char *map;
	size_t size; /* usable bytes before the guard page */
};

static struct guard out_g, out2_g, in_g;

#define check(cond, ...)                                                                  \
	do {                                                                              \
		if (!(cond)) {                                                            \
			fprintf(stderr, "fuzz_json: %s:%d: check failed: %s: ", __FILE__, \
				__LINE__, #cond);                                         \
			fprintf(stderr, __VA_ARGS__);                                     \
			fputc('\n', stderr);                                              \
			abort();                                                          \
		}                                                                         \
	} while (0)

static void guard_map(struct guard *g, size_t size)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	g->size = (size + page - 1) / page * page;
	g->map =
	    mmap(NULL, g->size + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (g->map == MAP_FAILED || mprotect(g->map + g->size, page, PROT_NONE)) {
		perror("fuzz_json: guard mapping");
		abort();
	}
}

/* `len` bytes that end exactly at the guard page. */
static char *guard_end(const struct guard *g, size_t len)
{
	check(len <= g->size, "buffer of %zu bytes > guard region %zu", len, g->size);
	return g->map + g->size - len;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	guard_map(&out_g, OUT_MAX);
	guard_map(&out2_g, OUT_MAX);
	guard_map(&in_g, STR_MAX + sizeof(struct lm_event));
	return 0;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* --- reference decoder: how lm_json_str's output must read back --- */

/* Length of a well-formed UTF-8 sequence at s (Unicode table 3-7), 0 if ill-formed. */
static size_t ref_utf8_len(const uint8_t *s, size_t n)
{
	uint32_t cp;
	size_t len, i;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000))
		return 0; /* overlong */
	if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/*
 * The string a strict parser must read back: bytes up to the first NUL (at most n), valid
 * sequences kept, each byte of an invalid one replaced by U+FFFD. Returns its length in out
 * (4 * n bytes suffice); *valid tells whether nothing was replaced.
 */
static size_t ref_decode(const uint8_t *s, size_t n, uint8_t *out, bool *valid)
{
	size_t i = 0, o = 0, len;

	*valid = true;
	n = strnlen((const char *)s, n);
	while (i < n) {
		len = ref_utf8_len(s + i, n - i);
		if (!len) {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
			*valid = false;
			continue;
		}
		memcpy(out + o, s + i, len);
		o += len;
		i += len;
	}
	return o;
}

/* --- line checks --- */

/* One line: ends with its only '\n', no raw control byte, no NUL. */
static void check_line(const char *buf, size_t len, const char *what)
{
	size_t i;

	check(len >= 3 && buf[len - 1] == '\n', "%s: not a line (%zu bytes)", what, len);
	for (i = 0; i + 1 < len; i++) {
		unsigned char c = (unsigned char)buf[i];

		check(c >= 0x20 && c != 0x7f, "%s: raw byte 0x%02x at %zu of %zu", what, c, i, len);
	}
}

/*
 * Parses a line (without its '\n') as one JSON object, strictly. Integers above INT64_MAX are
 * valid JSON that jansson cannot hold as integers: `big` parses them as reals instead.
 */
static json_t *parse_obj(const char *buf, size_t len, bool big, const char *what)
{
	json_error_t jerr;
	json_t *j;

	j = json_loadb(buf, len - 1, JSON_REJECT_DUPLICATES | (big ? JSON_DECODE_INT_AS_REAL : 0),
		       &jerr);
	check(j, "%s: not strict JSON: %s at column %d: %.*s", what, jerr.text, jerr.column,
	      (int)len, buf);
	check(json_is_object(j), "%s: not an object", what);
	return j;
}

/* The number after "key": in the text is exactly v (keys are unique, strings escape '"'). */
static void check_num(const char *buf, size_t len, const char *key, uint64_t v, const char *what)
{
	char pat[48], want[24];
	const char *p;
	size_t n, w;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = memmem(buf, len, pat, strlen(pat));
	check(p, "%s: no key \"%s\": %.*s", what, key, (int)len, buf);
	p += strlen(pat);
	n = strspn(p, "0123456789");
	w = (size_t)snprintf(want, sizeof(want), "%" PRIu64, v);
	check(n == w && !memcmp(p, want, w), "%s: \"%s\" is %.*s, want %s", what, key, (int)n, p,
	      want);
}

static bool streq(const char *a, const char *b)
{
	return a && !strcmp(a, b);
}

static bool any_big(const uint64_t *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i] > INT64_MAX)
			return true;
	return false;
}

static void check_event(const char *buf, size_t len, uint64_t seq, uint64_t unix_ns,
			const struct lm_event *e)
{
	static const char *const base_keys[] = {
	    "seq", "timestamp", "type",	     "pid",    "tid",	      "ppid",
	    "uid", "comm",	"exit_code", "signal", "core_dumped", "target_pid"};
	static const char *const oom_keys[] = {"total_vm_kb", "anon_rss_kb", "file_rss_kb",
					       "shmem_rss_kb", "pgtables_kb"};
	const uint64_t oom_vals[] = {e->total_vm_kb, e->anon_rss_kb, e->file_rss_kb,
				     e->shmem_rss_kb, e->pgtables_kb};
	uint64_t nums[2 + 5] = {seq, unix_ns};
	struct lm_wstatus ws = {0};
	uint8_t comm[4 * LM_COMM_LEN];
	char hex[2 * LM_COMM_LEN + 1];
	const char *type;
	size_t clen, nkeys, i, hl;
	bool valid, oom = e->type == LM_EV_OOM;
	json_t *j, *v;

	memcpy(nums + 2, oom_vals, sizeof(oom_vals));
	check_line(buf, len, "event");
	j = parse_obj(buf, len, any_big(nums, oom ? 7 : 2), "event");

	type = json_string_value(json_object_get(j, "type"));
	check(type, "event: no string \"type\"");
	switch (e->type) {
	case LM_EV_EXEC:
		check(!strcmp(type, "EXEC"), "type %u written as %s", e->type, type);
		break;
	case LM_EV_EXIT:
		check(!strcmp(type, "EXIT"), "type %u written as %s", e->type, type);
		break;
	case LM_EV_OOM:
		check(!strcmp(type, "OOM_KILL"), "type %u written as %s", e->type, type);
		break;
	default:
		check(strcmp(type, "EXEC") && strcmp(type, "EXIT") && strcmp(type, "OOM_KILL"),
		      "unknown type %u written as %s", e->type, type);
	}

	check_num(buf, len, "seq", seq, "event");
	check_num(buf, len, "timestamp", unix_ns, "event");
	check_num(buf, len, "pid", e->pid, "event");
	check_num(buf, len, "tid", e->tid, "event");
	check_num(buf, len, "ppid", e->ppid, "event");
	check_num(buf, len, "uid", e->uid, "event");
	check_num(buf, len, "target_pid", e->target_pid, "event");
	if (e->type == LM_EV_EXIT)
		lm_wstatus_decode(e->exit_status, &ws);
	check_num(buf, len, "exit_code", ws.exit_code, "event");
	check_num(buf, len, "signal", ws.signal, "event");
	v = json_object_get(j, "core_dumped");
	check(json_is_boolean(v) && json_is_true(v) == ws.core_dumped,
	      "core_dumped wrong for status 0x%x", e->exit_status);
	for (i = 0; i < 5; i++) {
		if (oom)
			check_num(buf, len, oom_keys[i], oom_vals[i], "OOM event");
		else
			check(!json_object_get(j, oom_keys[i]), "non-OOM event has %s",
			      oom_keys[i]);
	}

	/* comm reads back as the reference decoding; comm_hex iff something was replaced */
	clen = ref_decode((const uint8_t *)e->comm, sizeof(e->comm), comm, &valid);
	v = json_object_get(j, "comm");
	check(json_is_string(v), "comm is not a string");
	check(json_string_length(v) == clen && !memcmp(json_string_value(v), comm, clen),
	      "comm reads back wrong: %s", json_string_value(v));
	v = json_object_get(j, "comm_hex");
	if (valid) {
		check(!v, "comm_hex for a valid comm");
	} else {
		for (i = 0, hl = 0; i < sizeof(e->comm) && e->comm[i]; i++)
			hl += (size_t)snprintf(hex + hl, sizeof(hex) - hl, "%02x",
					       (unsigned char)e->comm[i]);
		hex[hl] = '\0';
		check(json_is_string(v) && !strcmp(json_string_value(v), hex),
		      "comm_hex is %s, want %s", json_string_value(v), hex);
	}

	nkeys = sizeof(base_keys) / sizeof(base_keys[0]) + (valid ? 0 : 1) + (oom ? 5 : 0);
	check(json_object_size(j) == nkeys, "event has %zu keys, want %zu", json_object_size(j),
	      nkeys);
	for (i = 0; i < sizeof(base_keys) / sizeof(base_keys[0]); i++)
		check(json_object_get(j, base_keys[i]), "event has no \"%s\"", base_keys[i]);
	json_decref(j);
}

/* Writes with every cap: the result is all or -ENOSPC, never past cap, never partial. */
static void fuzz_event(uint64_t seq, uint64_t unix_ns, uint16_t cap_sel, const struct lm_event *e)
{
	size_t cap = cap_sel & 0x8000 ? LM_JSON_EVENT_MAX : cap_sel % (LM_JSON_EVENT_MAX + 1);
	char *full = guard_end(&out2_g, LM_JSON_EVENT_MAX), *buf;
	int n, r;

	n = lm_json_event(full, LM_JSON_EVENT_MAX, seq, unix_ns, e);
	check(n > 0 && n <= LM_JSON_EVENT_MAX, "LM_JSON_EVENT_MAX bytes did not suffice: %d", n);
	check_event(full, (size_t)n, seq, unix_ns, e);

	buf = guard_end(&out_g, cap);
	r = lm_json_event(buf, cap, seq, unix_ns, e);
	if ((size_t)n <= cap)
		check(r == n && !memcmp(buf, full, (size_t)n), "cap %zu: %d, want %d", cap, r, n);
	else
		check(r == -ENOSPC, "cap %zu below the %d bytes needed: returned %d", cap, n, r);

	/* exactly sized, and one byte short */
	buf = guard_end(&out_g, (size_t)n);
	r = lm_json_event(buf, (size_t)n, seq, unix_ns, e);
	check(r == n && !memcmp(buf, full, (size_t)n), "exact cap %d: returned %d", n, r);
	buf = guard_end(&out_g, (size_t)n - 1);
	r = lm_json_event(buf, (size_t)n - 1, seq, unix_ns, e);
	check(r == -ENOSPC, "cap %d - 1: returned %d", n, r);
}

static void fuzz_str(const uint8_t *s, size_t len, uint16_t cap_sel)
{
	static uint8_t ref[4 * STR_MAX + 4];
	size_t worst = 6 * len, cap, rlen;
	const char *in = guard_end(&in_g, len);
	char *full = guard_end(&out2_g, worst), *buf, quoted[OUT_MAX + 2];
	int n, r, valid = 7, valid2 = 7;
	bool ref_valid;
	json_error_t jerr;
	json_t *j;

	memcpy((char *)in, s, len);
	n = lm_json_str(full, worst, in, len, &valid);
	check(n >= 0 && (size_t)n <= worst, "6 bytes per input byte did not suffice: %d", n);
	rlen = ref_decode(s, len, ref, &ref_valid);
	check(valid == ref_valid, "*valid is %d, the reference says %d", valid, ref_valid);

	/* the body between quotes is one strict JSON string that reads back as the reference */
	quoted[0] = '"';
	memcpy(quoted + 1, full, (size_t)n);
	quoted[n + 1] = '"';
	check(!memchr(full, '\0', (size_t)n), "NUL byte in the string body");
	j = json_loadb(quoted, (size_t)n + 2, JSON_DECODE_ANY, &jerr);
	check(j && json_is_string(j), "body is not a strict JSON string: %s: %.*s", jerr.text,
	      n + 2, quoted);
	check(json_string_length(j) == rlen && !memcmp(json_string_value(j), ref, rlen),
	      "string reads back wrong (%zu bytes, want %zu)", json_string_length(j), rlen);
	json_decref(j);

	cap = cap_sel & 0x8000 ? worst : cap_sel % (worst + 1);
	buf = guard_end(&out_g, cap);
	r = lm_json_str(buf, cap, in, len, &valid2);
	if ((size_t)n <= cap)
		check(r == n && !memcmp(buf, full, (size_t)n) && valid2 == valid,
		      "cap %zu: %d, want %d", cap, r, n);
	else
		check(r == -ENOSPC, "cap %zu below the %d bytes needed: returned %d", cap, n, r);
	/* valid may be NULL */
	buf = guard_end(&out_g, (size_t)n);
	r = lm_json_str(buf, (size_t)n, in, len, NULL);
	check(r == n && !memcmp(buf, full, (size_t)n), "exact cap %d: returned %d", n, r);
}

static void fuzz_notices(uint64_t a, uint64_t b, uint64_t c, uint16_t cap_sel)
{
	static const char *const reasons[] = {"slow_client", "sink_stalled", "kernel_ring_full"};
	const char *reason = reasons[cap_sel % 3];
	uint64_t nums[3] = {a, b, c};
	char *full = guard_end(&out2_g, 256), *buf;
	size_t cap = cap_sel % 257;
	json_t *j;
	int n, r;

	n = lm_json_lost(full, 256, a, b, c, reason);
	check(n > 0 && n <= 256, "lost notice: %d", n);
	check_line(full, (size_t)n, "LOST");
	j = parse_obj(full, (size_t)n, any_big(nums, 3), "LOST");
	check(streq(json_string_value(json_object_get(j, "type")), "LOST") &&
		  streq(json_string_value(json_object_get(j, "reason")), reason) &&
		  json_object_size(j) == 5,
	      "LOST notice: %.*s", n, full);
	json_decref(j);
	check_num(full, (size_t)n, "first_seq", a, "LOST");
	check_num(full, (size_t)n, "last_seq", b, "LOST");
	check_num(full, (size_t)n, "count", c, "LOST");
	buf = guard_end(&out_g, cap);
	r = lm_json_lost(buf, cap, a, b, c, reason);
	check((size_t)n <= cap ? r == n && !memcmp(buf, full, (size_t)n) : r == -ENOSPC,
	      "LOST with cap %zu: %d (full %d)", cap, r, n);

	n = lm_json_kernel_lost(full, 256, c, (uint32_t)a, b);
	check(n > 0 && n <= 256, "kernel notice: %d", n);
	check_line(full, (size_t)n, "kernel LOST");
	nums[0] = (uint32_t)a;
	j = parse_obj(full, (size_t)n, any_big(nums, 3), "kernel LOST");
	check(streq(json_string_value(json_object_get(j, "type")), "LOST") &&
		  streq(json_string_value(json_object_get(j, "reason")), "kernel_ring_full") &&
		  json_object_size(j) == 5,
	      "kernel LOST notice: %.*s", n, full);
	json_decref(j);
	check_num(full, (size_t)n, "count", c, "kernel LOST");
	check_num(full, (size_t)n, "cpu", (uint32_t)a, "kernel LOST");
	check_num(full, (size_t)n, "before_seq", b, "kernel LOST");
	r = lm_json_kernel_lost(buf, cap, c, (uint32_t)a, b);
	check((size_t)n <= cap ? r == n && !memcmp(buf, full, (size_t)n) : r == -ENOSPC,
	      "kernel LOST with cap %zu: %d (full %d)", cap, r, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t hdr[HDR_LEN] = {0}, comm[LM_COMM_LEN];
	struct lm_event *e;
	uint64_t seq, unix_ns;
	uint16_t ecap, scap;
	size_t n;

	n = size < HDR_LEN ? size : HDR_LEN;
	memcpy(hdr, data, n);
	data += n;
	size -= n;
	seq = get_u64(hdr);
	unix_ns = get_u64(hdr + 8);
	ecap = (uint16_t)(hdr[16] | hdr[17] << 8);
	scap = (uint16_t)(hdr[18] | hdr[19] << 8);

	/* the event ends at the input guard: nothing may read past its 16-byte comm */
	e = (struct lm_event *)guard_end(&in_g, sizeof(*e));
	memset(e, 0, sizeof(*e));
	n = size < sizeof(*e) ? size : sizeof(*e);
	memcpy(e, data, n);
	data += n;
	size -= n;
	fuzz_event(seq, unix_ns, ecap, e);
	fuzz_notices(seq, unix_ns, e->ts_ns, ecap);

	fuzz_str(data, size < STR_MAX ? size : STR_MAX, scap);
	/* the comm bytes alone, as lm_json_event sees them (copied: fuzz_str reuses in_g) */
	memcpy(comm, e->comm, sizeof(comm));
	fuzz_str(comm, sizeof(comm), scap);
	return 0;
}
