// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for core/json.c, the serializer's pure writer: a valid kernel record
 * built from arbitrary fields and strings (tests/rec_build.h), decoded by lm_rec_decode, with
 * arbitrary resolved names, through lm_json_event; arbitrary bytes through lm_json_str; and
 * the two loss notices. Every output buffer ends at a PROT_NONE guard page (and the inputs
 * too), and every line must be one strict JSON object (jansson) whose values match the input
 * exactly. Built by tests/fuzz.cmake with clang -fsanitize=fuzzer,address,undefined;
 * single-threaded.
 *
 * Input layout (little-endian): seq u64, unix_ns u64, event-cap selector u16, string-cap
 * selector u16; type/presence selector u8, flags u8; 72 bytes of lm_common, 40 bytes of the
 * type's fixed fields; 9 u16 lengths (comm, pcomm, args, filename, exe and cwd as walked,
 * cgroup, memcg, unit), each cut to its cap and to the bytes left, then those bytes in that
 * order; the rest goes to lm_json_str.
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
#include "core/rec.h"
#include "core/wstatus.h"
#include "tests/rec_build.h"

#define LM_FUZZ_NAME "fuzz_json"
#include "tests/fuzz/fuzz_guard.h"

/* libFuzzer's entry points (the -Wmissing-prototypes build wants declarations) */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define STR_MAX 8192		   /* longer lm_json_str inputs are cut here */
#define OUT_MAX (6 * STR_MAX + 64) /* worst case: every byte becomes \u00XX or \ufffd */
#define HDR_LEN (8 + 8 + 2 + 2 + 2 + 72 + 40 + 9 * 2)

static struct guard out_g, out2_g, in_g;
/* the record, and what the serializer resolves: each ends at a guard page */
static struct rb_guard rec_g, exe_g, cwd_g, cg_g, memcg_g, unit_g, cid_g, pod_g;
static size_t line_max; /* lm_json_event_max(LM_ARGS_MAX) */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	line_max = lm_json_event_max(LM_ARGS_MAX);
	guard_map(&out_g, line_max > OUT_MAX ? line_max : OUT_MAX);
	guard_map(&out2_g, line_max > OUT_MAX ? line_max : OUT_MAX);
	guard_map(&in_g, STR_MAX);
	if (rb_guard_map(&rec_g, RB_REC_MAX) || rb_guard_map(&exe_g, LM_PATH_MAX) ||
	    rb_guard_map(&cwd_g, LM_PATH_MAX) || rb_guard_map(&cg_g, LM_PATH_MAX) ||
	    rb_guard_map(&memcg_g, LM_PATH_MAX) || rb_guard_map(&unit_g, 256) ||
	    rb_guard_map(&cid_g, 128) || rb_guard_map(&pod_g, 128)) {
		perror("fuzz_json: guard mapping");
		abort();
	}
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

/* "key" reads back as the writer's rule applied to raw[0..n); "key_hex" iff replaced. */
static void check_text(json_t *j, const char *key, const char *raw, size_t n)
{
	static uint8_t ref[4 * (LM_ARGS_MAX + LM_PATH_MAX)];
	static char hex[2 * (LM_ARGS_MAX + LM_PATH_MAX) + 1];
	char hkey[64];
	size_t rlen, i;
	bool valid;
	json_t *v;

	rlen = ref_decode((const uint8_t *)raw, n, ref, &valid);
	v = json_object_get(j, key);
	check(json_is_string(v) && json_string_length(v) == rlen &&
		  !memcmp(json_string_value(v), ref, rlen),
	      "%s reads back wrong", key);
	snprintf(hkey, sizeof(hkey), "%s_hex", key);
	v = json_object_get(j, hkey);
	if (valid) {
		check(!v, "%s for a valid value", hkey);
		return;
	}
	n = strnlen(raw, n);
	for (i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", (unsigned char)raw[i]);
	hex[2 * n] = '\0';
	check(json_is_string(v) && !strcmp(json_string_value(v), hex), "%s is %s, want %s", hkey,
	      json_string_value(v), hex);
}

/* args: the NUL-separated area as an array; args_hex keyed by the invalid ones' indices. */
static size_t check_args(json_t *j, const char *a, size_t len)
{
	static uint8_t ref[4 * LM_ARGS_MAX];
	json_t *arr = json_object_get(j, "args"), *hexo = json_object_get(j, "args_hex"), *el;
	size_t pos = 0, idx = 0, bad = 0, alen, rlen, i;
	const char *p, *nul;
	char ikey[24];
	bool valid;

	check(json_is_array(arr), "no args array");
	while (pos < len) {
		p = a + pos;
		nul = memchr(p, '\0', len - pos);
		alen = nul ? (size_t)(nul - p) : len - pos;
		rlen = ref_decode((const uint8_t *)p, alen, ref, &valid);
		el = json_array_get(arr, idx);
		check(json_is_string(el) && json_string_length(el) == rlen &&
			  !memcmp(json_string_value(el), ref, rlen),
		      "args[%zu] reads back wrong", idx);
		snprintf(ikey, sizeof(ikey), "%zu", idx);
		el = json_is_object(hexo) ? json_object_get(hexo, ikey) : NULL;
		if (valid) {
			check(!el, "args_hex[%zu] for a valid argument", idx);
		} else {
			const char *h = json_string_value(el);

			bad++;
			check(h && strlen(h) == 2 * alen, "args_hex[%zu] missing or short", idx);
			for (i = 0; i < alen; i++) {
				char two[3];

				snprintf(two, sizeof(two), "%02x", (unsigned char)p[i]);
				check(!memcmp(h + 2 * i, two, 2), "args_hex[%zu] byte %zu", idx, i);
			}
		}
		pos += alen + 1;
		idx++;
	}
	check(json_array_size(arr) == idx, "%zu args, want %zu", json_array_size(arr), idx);
	check(bad ? json_is_object(hexo) && json_object_size(hexo) == bad : !hexo,
	      "args_hex with %zu keys, want %zu", hexo ? json_object_size(hexo) : 0, bad);
	return bad ? 2 : 1;
}

/* The key's string value is exactly want. */
static void check_exact(json_t *j, const char *key, const char *want)
{
	json_t *v = json_object_get(j, key);

	check(json_is_string(v) && !strcmp(json_string_value(v), want), "%s is %s, want %s", key,
	      json_string_value(v), want);
}

static void check_event(const char *buf, size_t len, const struct lm_json_ev *ev)
{
	static const char *const base_keys[] = {
	    "seq", "timestamp", "type",	     "pid",    "tid",	      "ppid",
	    "uid", "comm",	"exit_code", "signal", "core_dumped", "target_pid"};
	static const char *const oom_keys[] = {"total_vm_kb", "anon_rss_kb", "file_rss_kb",
					       "shmem_rss_kb", "pgtables_kb"};
	const struct lm_rec_view *v = ev->v;
	const struct lm_common *c = v->c;
	uint8_t f = c->flags;
	bool oom = c->type == LM_EV_OOM, victim = !oom || (f & LM_F_OOM_VICTIM);
	struct lm_wstatus ws = {0};
	size_t nkeys = 12, i;
	char want[64], *p;
	const char *type;
	json_t *j, *t;

	check_line(buf, len, "event");
	j = parse_obj(buf, len, true, "event");
	for (i = 0; i < sizeof(base_keys) / sizeof(base_keys[0]); i++)
		check(json_object_get(j, base_keys[i]), "event has no \"%s\"", base_keys[i]);
	type = json_string_value(json_object_get(j, "type"));
	check(streq(type, c->type == LM_EV_EXEC ? "EXEC" : c->type == LM_EV_EXIT ? "EXIT"
										  : "OOM_KILL"),
	      "type %u written as %s", c->type, type);
	check_num(buf, len, "seq", ev->seq, "event");
	check_num(buf, len, "timestamp", ev->unix_ns, "event");
	check_num(buf, len, "pid", c->pid, "event");
	check_num(buf, len, "tid", c->tid, "event");
	check_num(buf, len, "ppid", c->ppid, "event");
	check_num(buf, len, "uid", c->uid, "event");
	check_num(buf, len, "target_pid", oom ? c->pid : 0, "event");
	if (c->type == LM_EV_EXIT)
		lm_wstatus_decode(c->aux, &ws);
	check_num(buf, len, "exit_code", ws.exit_code, "event");
	check_num(buf, len, "signal", ws.signal, "event");
	t = json_object_get(j, "core_dumped");
	check(json_is_boolean(t) && json_is_true(t) == ws.core_dumped, "core_dumped wrong");
	check_text(j, "comm", v->comm.p, v->comm.len);
	nkeys += json_object_get(j, "comm_hex") ? 1 : 0;

	if (victim) {
		snprintf(want, sizeof(want), "%u:%llu", c->pid, (unsigned long long)c->start_ns);
		check_exact(j, "key", want);
		snprintf(want, sizeof(want), "%u:%llu", c->ppid, (unsigned long long)c->pstart_ns);
		check_exact(j, "parent_key", want);
		check_num(buf, len, "cgroup_id", c->cgroup_id, "event");
		nkeys += 3;
		if (ev->cgroup) {
			check_text(j, "cgroup", ev->cgroup, ev->cgroup_len);
			nkeys += json_object_get(j, "cgroup_hex") ? 2 : 1;
		}
		if (ev->container_id) {
			check_exact(j, "container_id", ev->container_id);
			nkeys++;
		}
		if (ev->pod_uid) {
			check_exact(j, "pod_uid", ev->pod_uid);
			nkeys++;
		}
		if (ev->unit) {
			check_text(j, "unit", ev->unit, strlen(ev->unit));
			nkeys += json_object_get(j, "unit_hex") ? 2 : 1;
		}
	}
	for (i = 0; i < 5; i++)
		check(oom == !!json_object_get(j, oom_keys[i]), "%s on type %u", oom_keys[i],
		      c->type);
	if (c->type == LM_EV_EXEC) {
		static const char *const tr[] = {"args", "filename", "exe", "cwd"};
		size_t k = 0;

		check_text(j, "filename", v->filename.p, v->filename.len);
		check_text(j, "cwd", ev->cwd, ev->cwd_len);
		check_text(j, "pcomm", v->pcomm.p, v->pcomm.len);
		nkeys += 3 + !!json_object_get(j, "filename_hex") + !!json_object_get(j, "cwd_hex") +
			 !!json_object_get(j, "pcomm_hex");
		if (f & LM_F_NO_EXE) {
			check(!json_object_get(j, "exe") && !json_object_get(j, "exe_hex"),
			      "exe with LM_F_NO_EXE");
		} else {
			check_text(j, "exe", ev->exe, ev->exe_len);
			nkeys += json_object_get(j, "exe_hex") ? 2 : 1;
		}
		nkeys += check_args(j, v->args.p, v->args.len);
		check_num(buf, len, "argc", v->exec->argc, "EXEC");
		check_num(buf, len, "gid", c->aux, "EXEC");
		check_num(buf, len, "euid", v->exec->euid, "EXEC");
		nkeys += 3;
		t = json_object_get(j, "truncated");
		for (i = 0; i < 4; i++) {
			/* an unreadable argument area is named as cut args too */
			uint8_t bit = (uint8_t)(LM_F_TRUNC_ARGS << i) |
				      (i == 0 ? LM_F_ARGS_FAULT : 0);

			if (!(f & bit))
				continue;
			check(streq(json_string_value(json_array_get(t, k)), tr[i]),
			      "truncated[%zu] is not %s", k, tr[i]);
			k++;
		}
		check(k ? json_array_size(t) == k : !t, "truncated has %zu, want %zu",
		      json_array_size(t), k);
		nkeys += k ? 1 : 0;
	} else if (c->type == LM_EV_EXIT) {
		check_num(buf, len, "duration_ns", c->ts_ns > c->start_ns ? c->ts_ns - c->start_ns : 0,
			  "EXIT");
		check_num(buf, len, "cpu_user_ns", v->exit->cpu_user_ns, "EXIT");
		check_num(buf, len, "cpu_sys_ns", v->exit->cpu_sys_ns, "EXIT");
		check_num(buf, len, "max_rss_kb", v->exit->max_rss_kb, "EXIT");
		t = json_object_get(j, "oom_killed");
		check(json_is_boolean(t) && json_is_true(t) == !!(f & LM_F_OOM_KILLED),
		      "oom_killed wrong");
		nkeys += 5;
	} else {
		check_num(buf, len, "total_vm_kb", v->oom->total_vm_kb, "OOM");
		check_num(buf, len, "anon_rss_kb", v->oom->anon_rss_kb, "OOM");
		check_num(buf, len, "file_rss_kb", v->oom->file_rss_kb, "OOM");
		check_num(buf, len, "shmem_rss_kb", v->oom->shmem_rss_kb, "OOM");
		check_num(buf, len, "pgtables_kb", v->oom->pgtables_kb, "OOM");
		nkeys += 5;
		if (victim) {
			snprintf(want, sizeof(want), "\"oom_score_adj\":%d", (int32_t)c->aux);
			p = memmem(buf, len, want, strlen(want));
			check(p && (p[strlen(want)] == ',' || p[strlen(want)] == '}'),
			      "no %s", want);
			nkeys++;
			if (ev->memcg) {
				check_text(j, "memcg", ev->memcg, ev->memcg_len);
				nkeys += json_object_get(j, "memcg_hex") ? 2 : 1;
			}
			if (f & LM_F_OOM_KNOWN) {
				check_exact(j, "constraint", f & LM_F_OOM_MEMCG ? "memcg" : "global");
				nkeys++;
			}
		}
		check(victim || (!json_object_get(j, "key") && !json_object_get(j, "constraint") &&
				 !json_object_get(j, "oom_score_adj") && !json_object_get(j, "memcg")),
		      "victim keys on an OOM without its victim");
	}
	check(json_object_size(j) == nkeys, "event has %zu keys, want %zu", json_object_size(j),
	      nkeys);
	json_decref(j);
}

/* Writes with every cap: the result is all or -ENOSPC, never past cap, never partial. */
static void fuzz_event(uint16_t cap_sel, const struct lm_json_ev *ev)
{
	size_t cap;
	char *full = guard_end(&out2_g, line_max), *buf;
	int n, r;

	n = lm_json_event(full, line_max, ev);
	check(n > 0 && (size_t)n <= line_max, "lm_json_event_max(%u) did not suffice: %d",
	      LM_ARGS_MAX, n);
	check_event(full, (size_t)n, ev);

	cap = cap_sel & 0x8000 ? (size_t)n : cap_sel % ((size_t)n + 16);
	buf = guard_end(&out_g, cap);
	r = lm_json_event(buf, cap, ev);
	if ((size_t)n <= cap)
		check(r == n && !memcmp(buf, full, (size_t)n), "cap %zu: %d, want %d", cap, r, n);
	else
		check(r == -ENOSPC, "cap %zu below the %d bytes needed: returned %d", cap, n, r);

	/* exactly sized, and one byte short */
	buf = guard_end(&out_g, (size_t)n);
	r = lm_json_event(buf, (size_t)n, ev);
	check(r == n && !memcmp(buf, full, (size_t)n), "exact cap %d: returned %d", n, r);
	buf = guard_end(&out_g, (size_t)n - 1);
	r = lm_json_event(buf, (size_t)n - 1, ev);
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

static uint16_t get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)get_u64(p); /* the next bytes are in the header too */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t caps[9] = {LM_COMM_LEN, LM_COMM_LEN, LM_ARGS_MAX, LM_PATH_MAX,
					 LM_PATH_MAX,	LM_PATH_MAX, LM_PATH_MAX, LM_PATH_MAX, 255};
	static char strs[9][LM_ARGS_MAX];
	static uint64_t recbuf[RB_REC_MAX / 8];
	static char path_buf[2][LM_PATH_MAX];
	uint8_t hdr[HDR_LEN] = {0}, comm[LM_COMM_LEN];
	struct lm_json_ev ev = {0};
	struct lm_rec_view v;
	const char *why = NULL, *s;
	struct rb_spec r;
	uint64_t seq, unix_ns;
	uint16_t ecap, scap;
	uint32_t lens[9], rsize;
	uint8_t sel;
	size_t n, i;
	void *rec;

	n = size < HDR_LEN ? size : HDR_LEN;
	memcpy(hdr, data, n);
	data += n;
	size -= n;
	seq = get_u64(hdr);
	unix_ns = get_u64(hdr + 8);
	ecap = get_u16(hdr + 16);
	scap = get_u16(hdr + 18);
	sel = hdr[20];

	memset(&r, 0, sizeof(r));
	r.type = (uint8_t)(1 + sel % 3);
	r.flags = hdr[21];
	r.ts_ns = get_u64(hdr + 22);
	r.t0_back_ns = get_u32(hdr + 30);
	r.cpu_drops = get_u32(hdr + 34);
	/* +38: version, type, flags, comm_len are the builder's */
	r.pid = get_u32(hdr + 42);
	r.tid = get_u32(hdr + 46);
	r.ppid = get_u32(hdr + 50);
	r.uid = get_u32(hdr + 54);
	r.aux = get_u32(hdr + 58);
	r.start_ns = get_u64(hdr + 62);
	r.pstart_ns = get_u64(hdr + 70);
	r.cgroup_id = get_u64(hdr + 78);
	r.memcg_id = get_u64(hdr + 86);
	r.euid = get_u32(hdr + 94);
	r.argc = get_u32(hdr + 98);
	r.cpu_user_ns = r.total_vm_kb = get_u64(hdr + 94);
	r.cpu_sys_ns = r.anon_rss_kb = get_u64(hdr + 102);
	r.max_rss_kb = get_u32(hdr + 110);
	r.file_rss_kb = get_u64(hdr + 110);
	r.shmem_rss_kb = get_u64(hdr + 118);
	r.pgtables_kb = get_u64(hdr + 126);
	for (i = 0; i < 9; i++)
		lens[i] = get_u16(hdr + 134 + 2 * i) % (caps[i] + 1);
	/* args may reach the cap: two length bytes carry its top bit */
	if (sel & 0x80)
		lens[2] = (uint32_t)(lens[2] | (uint32_t)get_u16(hdr + 150) << 16) % (LM_ARGS_MAX + 1);
	for (i = 0; i < 9; i++) {
		if (lens[i] > size)
			lens[i] = (uint32_t)size;
		memcpy(strs[i], data, lens[i]);
		data += lens[i];
		size -= lens[i];
	}
	r.comm = (struct rb_bytes){strs[0], lens[0]};
	if (r.type == LM_EV_EXEC) {
		r.pcomm = (struct rb_bytes){strs[1], lens[1]};
		r.args = (struct rb_bytes){strs[2], lens[2]};
		r.filename = (struct rb_bytes){strs[3], lens[3]};
		r.exe = (struct rb_bytes){strs[4], lens[4]};
		r.cwd = (struct rb_bytes){strs[5], lens[5]};
	}
	rsize = rb_build(&r, recbuf, sizeof(recbuf));
	rec = rb_guard_rec(&rec_g, rsize);
	memcpy(rec, recbuf, rsize);
	check(!lm_rec_decode(rec, rsize, &v, &why), "a built record is refused: %s", why);

	ev.v = &v;
	ev.seq = seq;
	ev.unix_ns = unix_ns;
	if (v.exec) {
		n = lm_rec_path(&v.exe, r.flags & LM_F_TRUNC_EXE, path_buf[0], LM_PATH_MAX);
		ev.exe = memcpy(rb_guard_end(&exe_g, n), path_buf[0], n);
		ev.exe_len = n;
		n = lm_rec_path(&v.cwd, r.flags & LM_F_TRUNC_CWD, path_buf[1], LM_PATH_MAX);
		ev.cwd = memcpy(rb_guard_end(&cwd_g, n), path_buf[1], n);
		ev.cwd_len = n;
	}
	if (sel & 0x04) {
		ev.cgroup = memcpy(rb_guard_end(&cg_g, lens[6]), strs[6], lens[6]);
		ev.cgroup_len = lens[6];
	}
	if (sel & 0x08) {
		ev.memcg = memcpy(rb_guard_end(&memcg_g, lens[7]), strs[7], lens[7]);
		ev.memcg_len = lens[7];
	}
	if (sel & 0x10) {
		/* NUL-terminated: its first NUL ends it */
		s = rb_guard_end(&unit_g, lens[8] + 1);
		memcpy((char *)s, strs[8], lens[8]);
		((char *)s)[lens[8]] = '\0';
		ev.unit = s;
	}
	if (sel & 0x20)
		ev.container_id = strcpy(rb_guard_end(&cid_g, 65),
					 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	if (sel & 0x40)
		ev.pod_uid = strcpy(rb_guard_end(&pod_g, 37), "01234567-89ab-cdef-0123-456789abcdef");
	fuzz_event(ecap, &ev);
	fuzz_notices(seq, unix_ns, r.ts_ns, ecap);

	fuzz_str(data, size < STR_MAX ? size : STR_MAX, scap);
	/* the comm bytes alone, as lm_json_event sees them (copied: fuzz_str reuses in_g) */
	memcpy(comm, strs[0], sizeof(comm));
	fuzz_str(comm, lens[0], scap);
	return 0;
}
