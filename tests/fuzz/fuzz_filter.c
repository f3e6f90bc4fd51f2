// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for net/filter.c, the /ws query parser and matcher: arbitrary bytes as a
 * query, placed to end at a PROT_NONE guard page (no NUL after it), with the filter and the
 * reason buffer ending at guard pages too. Checked: the result is 0 or -EINVAL with a
 * printable reason that fits its buffer; parse_query equals a reference lws 4.1 decoding fed
 * to parse_arg; an accepted filter matches events exactly as a plain reference of the
 * documented rules over the decoded arguments; its canonical form is plain ASCII and parses
 * back into a filter that matches and formats the same. Built by tests/fuzz.cmake with clang
 * -fsanitize=fuzzer,address,undefined; single-threaded.
 *
 * Input layout: why_cap selector u8, event selector u8, then the query, then after a NUL the
 * event's comm, exe, cgroup, container and args, NUL-separated (missing ones are NULL).
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpf/lm_event.h"
#include "net/filter.h"

#define LM_FUZZ_NAME "fuzz_filter"
#include "tests/fuzz/fuzz_guard.h"

/* libFuzzer's entry points (the -Wmissing-prototypes build wants declarations) */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define Q_MAX (LM_FILTER_MAX_QUERY_BYTES + 64) /* longer queries are cut here */
#define FIELDS 5			       /* comm, exe, cgroup, container, args */
#define ARGS_MAX 128			       /* decoded arguments kept by the reference */

static struct guard q_g, why_g, f_g, g_g, out_g, field_g[FIELDS];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int i;

	(void)argc;
	(void)argv;
	guard_map(&q_g, Q_MAX);
	guard_map(&why_g, LM_FILTER_WHY_BYTES);
	guard_map(&f_g, sizeof(struct lm_filter));
	guard_map(&g_g, sizeof(struct lm_filter));
	guard_map(&out_g, LM_FILTER_FORMAT_BYTES);
	for (i = 0; i < FIELDS; i++)
		guard_map(&field_g[i], Q_MAX + 1);
	return 0;
}

/* --- the reference, written from the header's contract and lws 4.1's parser --- */

struct ref_arg {
	char s[Q_MAX];
	size_t len;
};

static struct ref_arg ref_args[ARGS_MAX];

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * lws_parse_urldecode() for URI args: returns the argument count (empty ones included), or
 * -1 for a bad escape or a NUL, or -2 when there are more than ARGS_MAX.
 */
static int ref_decode(const char *q, size_t len)
{
	size_t i = 0;
	int n = 0;
	bool eq = false;

	ref_args[0].len = 0;
	while (i < len) {
		unsigned char c = (unsigned char)q[i];
		bool enc = false;

		if (c == '%') {
			if (i + 2 >= len)
				return -1;
			if (hexval((unsigned char)q[i + 1]) < 0 ||
			    hexval((unsigned char)q[i + 2]) < 0)
				return -1;
			c = (unsigned char)(hexval((unsigned char)q[i + 1]) << 4 |
					    hexval((unsigned char)q[i + 2]));
			enc = true;
			i += 3;
		} else {
			i++;
		}
		if (!c)
			return -1;
		if (!enc && (c == '&' || c == ';')) {
			if (++n == ARGS_MAX)
				return -2;
			ref_args[n].len = 0;
			eq = false;
			continue;
		}
		if (c == '=' && !enc)
			eq = true;
		else if (c == '=' && !eq)
			c = '_';
		else if (c == '+' && !enc)
			c = ' ';
		ref_args[n].s[ref_args[n].len++] = (char)c;
	}
	return n + 1;
}

static bool ref_is(const struct ref_arg *a, size_t klen, const char *key)
{
	return strlen(key) == klen && !memcmp(a->s, key, klen);
}

/* Does value v (vlen bytes, no comma) of `key` match e? By the README's table. */
static bool ref_value_matches(const char *key, const char *v, size_t vlen,
			      const struct lm_filter_ev *e)
{
	char pat[LM_FILTER_MAX_VALUE_BYTES + 1];
	unsigned long long n;
	size_t i;

	memcpy(pat, v, vlen);
	pat[vlen] = '\0';
	if (!strcmp(key, "type"))
		return (!strcasecmp(pat, "exec") && e->type == LM_EV_EXEC) ||
		       (!strcasecmp(pat, "exit") && e->type == LM_EV_EXIT) ||
		       (!strcasecmp(pat, "oom_kill") && e->type == LM_EV_OOM);
	if (!strcmp(key, "exit"))
		return e->type == LM_EV_EXIT && e->nonzero_exit;
	if (!strcmp(key, "comm"))
		return !fnmatch(pat, e->comm, 0);
	if (!strcmp(key, "exe"))
		return e->exe && !fnmatch(pat, e->exe, 0);
	if (!strcmp(key, "cgroup"))
		return e->cgroup && !fnmatch(pat, e->cgroup, 0);
	if (!strcmp(key, "container"))
		return e->container && strlen(e->container) >= vlen &&
		       !strncasecmp(e->container, pat, vlen);
	if (!strcmp(key, "args"))
		return e->args && memmem(e->args, e->args_len, v, vlen);
	n = strtoull(pat, NULL, 10);
	for (i = 0; i < vlen; i++)
		check(pat[i] >= '0' && pat[i] <= '9', "accepted number '%s'", pat);
	if (!strcmp(key, "pid"))
		return n == e->pid;
	if (!strcmp(key, "ppid"))
		return n == e->ppid;
	check(!strcmp(key, "uid"), "accepted key '%s'", key);
	return n == e->uid;
}

/* The documented rule over the decoded arguments of an accepted query. */
/* Whether some argument gives `key`. */
static bool ref_given(int nargs, const char *key)
{
	int i;

	for (i = 0; i < nargs; i++) {
		const char *eq = memchr(ref_args[i].s, '=', ref_args[i].len);

		if (eq && ref_is(&ref_args[i], (size_t)(eq - ref_args[i].s), key))
			return true;
	}
	return false;
}

static bool ref_match(int nargs, const struct lm_filter_ev *e)
{
	static const char *const keys[] = { "type", "comm",	 "exe",	   "pid",  "ppid",
					    "uid",  "container", "cgroup", "exit", "args" };
	/* on anything but an EXEC, exe= and args= stand for the process's EXEC */
	bool program = e->type != LM_EV_EXEC && (ref_given(nargs, "exe") ||
						 ref_given(nargs, "args"));
	size_t k;
	int i;

	for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		bool given = false, any = false;

		if (program && (!strcmp(keys[k], "exe") || !strcmp(keys[k], "args")))
			continue;
		for (i = 0; i < nargs; i++) {
			const struct ref_arg *a = &ref_args[i];
			const char *eq = memchr(a->s, '=', a->len), *v, *end;

			if (!eq || !ref_is(a, (size_t)(eq - a->s), keys[k]))
				continue;
			given = true;
			v = eq + 1;
			end = a->s + a->len;
			while (v <= end) {
				const char *c = memchr(v, ',', (size_t)(end - v));
				size_t vlen = c ? (size_t)(c - v) : (size_t)(end - v);

				any |= ref_value_matches(keys[k], v, vlen, e);
				v += vlen + 1;
			}
		}
		if (given && !any)
			return false;
	}
	return program ? e->program_matched : true;
}

/* --- the properties --- */

static void check_why(const char *why, size_t cap, int err)
{
	size_t j;

	check(err == 0 || err == -EINVAL, "returned %d", err);
	if (!cap)
		return;
	check(memchr(why, '\0', cap), "reason not NUL-terminated within %zu bytes", cap);
	if (!err) {
		check(why[0] == '\0', "reason \"%s\" on success", why);
		return;
	}
	if (cap >= LM_FILTER_WHY_BYTES)
		check(!strncmp(why, "bad filter: ", 12) || !strncmp(why, "bad since: ", 11) ||
			      !strncmp(why, "bad instance: ", 14),
		      "reason \"%s\"", why);
	for (j = 0; why[j]; j++)
		check((unsigned char)why[j] >= 0x20 && (unsigned char)why[j] < 0x7f &&
			      why[j] != '"',
		      "reason has byte 0x%02x", (unsigned char)why[j]);
}

static void check_format(const struct lm_filter *f, const struct lm_filter_ev *ev, size_t nev)
{
	struct lm_filter *g = (struct lm_filter *)guard_end(&g_g, sizeof(*g));
	char *out = guard_end(&out_g, LM_FILTER_FORMAT_BYTES);
	static char again[LM_FILTER_FORMAT_BYTES], why[LM_FILTER_WHY_BYTES];
	int len, len2, err;
	size_t i;

	len = lm_filter_format(f, out, LM_FILTER_FORMAT_BYTES);
	check(len >= 0 && (size_t)len < LM_FILTER_FORMAT_BYTES && strlen(out) == (size_t)len,
	      "format returned %d", len);
	check(lm_filter_is_active(f) == (len > 0), "active %d, format \"%s\"",
	      lm_filter_is_active(f), out);
	for (i = 0; i < (size_t)len; i++)
		check(out[i] > 0x20 && out[i] < 0x7f && out[i] != '"' && out[i] != '\\',
		      "format has byte 0x%02x", (unsigned char)out[i]);
	/* one byte short: -ENOSPC and "" */
	if (len > 0) {
		char *short_out = guard_end(&out_g, (size_t)len);

		check(lm_filter_format(f, short_out, (size_t)len) == -ENOSPC, "no -ENOSPC");
		check(short_out[0] == '\0', "not emptied on -ENOSPC");
		out = guard_end(&out_g, LM_FILTER_FORMAT_BYTES);
		lm_filter_format(f, out, LM_FILTER_FORMAT_BYTES);
	}
	if ((size_t)len > LM_FILTER_MAX_QUERY_BYTES)
		return;
	lm_filter_init(g);
	err = lm_filter_parse_query(g, out, (size_t)len, why, sizeof(why));
	check(!err, "format \"%s\" does not parse back: %s", out, why);
	len2 = lm_filter_format(g, again, sizeof(again));
	check(len2 == len && !strcmp(again, out), "format \"%s\" reformats as \"%s\"", out, again);
	for (i = 0; i < nev; i++)
		check(lm_filter_match(f, &ev[i]) == lm_filter_match(g, &ev[i]),
		      "format \"%s\" matches event %zu differently", out, i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t caps[] = { 0, 1, 12, 40, 100, LM_FILTER_WHY_BYTES };
	struct lm_filter *f = (struct lm_filter *)guard_end(&f_g, sizeof(*f));
	struct lm_filter *g = (struct lm_filter *)guard_end(&g_g, sizeof(*g));
	const char *fld[FIELDS] = { NULL }, *p, *end, *q;
	size_t flen[FIELDS] = { 0 }, qlen, cap, nf = 0, i;
	static char why2[LM_FILTER_WHY_BYTES];
	struct lm_filter_ev ev[4];
	char *why;
	uint8_t sel;
	int err, err2, nargs;

	if (size < 2)
		return 0;
	cap = caps[data[0] % (sizeof(caps) / sizeof(caps[0]))];
	sel = data[1];
	p = (const char *)data + 2;
	end = (const char *)data + size;
	{
		const char *z = memchr(p, '\0', (size_t)(end - p));

		qlen = z ? (size_t)(z - p) : (size_t)(end - p);
		if (qlen > Q_MAX)
			qlen = Q_MAX;
		q = memcpy(guard_end(&q_g, qlen ? qlen : 1), p, qlen);
		p = z ? z + 1 : end;
	}
	while (nf < FIELDS && p < end) {
		const char *z = memchr(p, '\0', (size_t)(end - p));
		size_t len = z ? (size_t)(z - p) : (size_t)(end - p);
		char *s;

		if (len > Q_MAX)
			len = Q_MAX;
		s = guard_end(&field_g[nf], len + 1);
		memcpy(s, p, len);
		s[len] = '\0';
		fld[nf] = s;
		flen[nf++] = len;
		p = z ? z + 1 : end;
	}

	/* parse, with the reason buffer ending at a guard page */
	why = guard_end(&why_g, cap ? cap : 1);
	lm_filter_init(f);
	err = lm_filter_parse_query(f, q, qlen, cap ? why : NULL, cap);
	check_why(why, cap, err);

	/* the same through a reference decoding and parse_arg */
	nargs = ref_decode(q, qlen);
	if (qlen > LM_FILTER_MAX_QUERY_BYTES || nargs == -1) {
		check(err == -EINVAL, "query of %zu bytes accepted, reference refuses it", qlen);
		return 0;
	}
	if (nargs == -2)
		return 0;
	lm_filter_init(g);
	err2 = 0;
	for (i = 0; i < (size_t)nargs && !err2; i++)
		err2 = lm_filter_parse_arg(g, ref_args[i].s, ref_args[i].len, why2, sizeof(why2));
	check(err == err2, "parse_query %d, reference decoding + parse_arg %d (%s)", err, err2,
	      why2);
	if (err) {
		if (cap >= LM_FILTER_WHY_BYTES)
			check(!strcmp(why, why2), "reasons differ: \"%s\" vs \"%s\"", why, why2);
		return 0;
	}

	/* events: one built from the input, and fixed ones of each type */
	memset(ev, 0, sizeof(ev));
	ev[0].type = (uint8_t)(sel % 4);
	ev[0].nonzero_exit = sel & 4;
	ev[0].pid = sel & 8 ? 1 : 100;
	ev[0].ppid = sel & 16 ? 0 : 1;
	ev[0].uid = sel & 32 ? 0 : 4294967295u;
	ev[0].comm = fld[0] ? fld[0] : "";
	ev[0].exe = fld[1];
	ev[0].cgroup = fld[2];
	ev[0].container = fld[3];
	ev[0].args = fld[4];
	ev[0].args_len = fld[4] ? (uint32_t)flen[4] : 0;
	ev[0].program_matched = sel & 64;
	ev[1] = (struct lm_filter_ev){ .type = LM_EV_EXEC,
				       .pid = 100,
				       .ppid = 1,
				       .comm = "bash",
				       .exe = "/usr/bin/bash",
				       .cgroup = "/system.slice/a.service",
				       .container = "0123abcd",
				       .args = "-c ls -la /tmp",
				       .args_len = 14 };
	ev[2] = (struct lm_filter_ev){
		.type = LM_EV_EXIT, .nonzero_exit = true, .pid = 100, .ppid = 1, .comm = "bash",
		.program_matched = true
	};
	ev[3] = (struct lm_filter_ev){ .type = LM_EV_OOM, .pid = 7, .uid = 1000, .comm = "" };
	for (i = 0; i < 4; i++)
		check(lm_filter_match(f, &ev[i]) == ref_match(nargs, &ev[i]),
		      "event %zu: match %d, reference %d", i, lm_filter_match(f, &ev[i]),
		      ref_match(nargs, &ev[i]));
	check_format(f, ev, 4);
	return 0;
}
