// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for net/filter.c: every bad /ws query form gets its exact 400 reason, the
 * decoding follows libwebsockets 4.1, every key matches what README's "Filters on /ws" says,
 * and the canonical form parses back. Pure; single-threaded.
 */
#include "net/filter.h"

#include "bpf/lm_event.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static char why[LM_FILTER_WHY_BYTES];

static int parse(struct lm_filter *f, const char *q)
{
	lm_filter_init(f);
	return lm_filter_parse_query(f, q, strlen(q), why, sizeof(why));
}

/* q must fail with exactly `reason` */
static void bad(const char *q, const char *reason)
{
	struct lm_filter f;
	int err = parse(&f, q);

	if (err != -EINVAL || strcmp(why, reason))
		fail_msg("query \"%s\": got %d \"%s\", want -EINVAL \"%s\"", q, err, why, reason);
}

/* q must parse; returns the filter in *f */
static void good(struct lm_filter *f, const char *q)
{
	int err = parse(f, q);

	if (err)
		fail_msg("query \"%s\": got %d \"%s\", want 0", q, err, why);
	assert_string_equal(why, "");
}

/* a query of `n` repetitions of `unit` joined by `sep`, after `head` */
static const char *repeat(char *buf, size_t cap, const char *head, const char *unit,
			  const char *sep, int n)
{
	size_t o = (size_t)snprintf(buf, cap, "%s", head);
	int i;

	for (i = 0; i < n; i++)
		o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? sep : "", unit);
	assert_true(o < cap);
	return buf;
}

static struct lm_filter_ev exec_ev(void)
{
	static const char args[] = "-la /tmp";
	struct lm_filter_ev e = {
		.type = LM_EV_EXEC,
		.pid = 100,
		.ppid = 1,
		.uid = 1000,
		.comm = "ls",
		.exe = "/usr/bin/ls",
		.cgroup = "/system.slice/docker-0123abcd.scope",
		.container = "0123abcdef0123abcdef0123abcdef0123abcdef0123abcdef0123abcdef0123",
		.args = args,
		.args_len = sizeof(args) - 1,
	};
	return e;
}

static struct lm_filter_ev exit_ev(bool nonzero)
{
	struct lm_filter_ev e = {
		.type = LM_EV_EXIT,
		.nonzero_exit = nonzero,
		.pid = 100,
		.ppid = 1,
		.uid = 1000,
		.comm = "ls",
		.cgroup = "/user.slice/user-1000.slice/session-2.scope",
	};
	return e;
}

static struct lm_filter_ev oom_ev(void)
{
	struct lm_filter_ev e = {
		.type = LM_EV_OOM,
		.pid = 300,
		.ppid = 0,
		.uid = 0,
		.comm = "hog",
	};
	return e;
}

static bool match(const char *q, const struct lm_filter_ev *e)
{
	struct lm_filter f;

	good(&f, q);
	return lm_filter_match(&f, e);
}

static void test_filter_rejects_each_bad_form(void **state)
{
	static const struct {
		const char *q, *reason;
	} cases[] = {
		{ "foo=1", "bad filter: unknown key 'foo'" },
		{ "foo", "bad filter: unknown key 'foo'" },
		{ "=x", "bad filter: unknown key ''" },
		{ "COMM=a", "bad filter: unknown key 'COMM'" },
		{ "comm=a&foo=1", "bad filter: unknown key 'foo'" },
		{ "pid=12x", "bad filter: pid: '12x' is not a number" },
		{ "pid=-1", "bad filter: pid: '-1' is not a number" },
		{ "ppid=%2B1", "bad filter: ppid: '+1' is not a number" },
		{ "uid=+1", "bad filter: uid: ' 1' is not a number" }, /* '+' is a space */
		{ "uid=%201", "bad filter: uid: ' 1' is not a number" },
		{ "uid=1%20", "bad filter: uid: '1 ' is not a number" },
		{ "pid=0x10", "bad filter: pid: '0x10' is not a number" },
		{ "pid=1.5", "bad filter: pid: '1.5' is not a number" },
		{ "pid=4294967296",
		  "bad filter: pid: '4294967296' is out of range (0..4294967295)" },
		{ "uid=99999999999999999999999",
		  "bad filter: uid: '99999999999999999999999' is out of range (0..4294967295)" },
		{ "pid=99999999999x", "bad filter: pid: '99999999999x' is not a number" },
		{ "pid=1,x", "bad filter: pid: 'x' is not a number" },
		{ "ppid=", "bad filter: ppid: empty value" },
		{ "type=fork", "bad filter: type: 'fork' is not exec, exit or oom_kill" },
		{ "type=exec,fork", "bad filter: type: 'fork' is not exec, exit or oom_kill" },
		{ "type=oom", "bad filter: type: 'oom' is not exec, exit or oom_kill" },
		{ "type=execx", "bad filter: type: 'execx' is not exec, exit or oom_kill" },
		{ "type=", "bad filter: type: empty value" },
		{ "exit=zero", "bad filter: exit: only exit=nonzero" },
		{ "exit=1", "bad filter: exit: only exit=nonzero" },
		{ "exit=nonzero,0", "bad filter: exit: only exit=nonzero" },
		{ "exit=", "bad filter: exit: empty value" },
		{ "container=xyz", "bad filter: container: 'xyz' is not hex" },
		{ "container=abc-1", "bad filter: container: 'abc-1' is not hex" },
		{ "container=", "bad filter: container: empty value" },
		{ "comm=", "bad filter: comm: empty value" },
		{ "comm", "bad filter: comm: empty value" },
		{ "comm=a,,b", "bad filter: comm: empty value" },
		{ "comm=a,", "bad filter: comm: empty value" },
		{ "comm=,a", "bad filter: comm: empty value" },
		{ "exe=", "bad filter: exe: empty value" },
		{ "cgroup=", "bad filter: cgroup: empty value" },
		{ "args=", "bad filter: args: empty value" },
		{ "args=a&args=", "bad filter: args: empty value" },
		{ "since=0", "bad since: '0' is not a seq (1 or more)" },
		{ "since=000", "bad since: '000' is not a seq (1 or more)" },
		{ "since=", "bad since: '' is not a seq (1 or more)" },
		{ "since", "bad since: '' is not a seq (1 or more)" },
		{ "since=-5", "bad since: '-5' is not a seq (1 or more)" },
		{ "since=5+", "bad since: '5 ' is not a seq (1 or more)" },
		{ "since=18446744073709551616",
		  "bad since: '18446744073709551616' is not a seq (1 or more)" },
		{ "since=1&since=2", "bad since: given twice" },
		{ "since=1&since=1", "bad since: given twice" },
		{ "instance=abc", "bad instance: must be 16 hex digits" },
		{ "instance=", "bad instance: must be 16 hex digits" },
		{ "instance=5f0c9a1e22b4d7ag", "bad instance: must be 16 hex digits" },
		{ "instance=5f0c9a1e22b4d7aa0", "bad instance: must be 16 hex digits" },
		{ "instance=5f0c9a1e22b4d7aa&instance=5f0c9a1e22b4d7aa",
		  "bad instance: given twice" },
		{ "comm=%zz", "bad filter: bad percent-escape '%zz'" },
		{ "comm=a%4", "bad filter: bad percent-escape '%4'" },
		{ "comm=a%", "bad filter: bad percent-escape '%'" },
		{ "comm=%4g", "bad filter: bad percent-escape '%4g'" },
		{ "comm=%%41", "bad filter: bad percent-escape '%%4'" },
		{ "comm=%\x01"
		  "1",
		  "bad filter: bad percent-escape '%\\x011'" },
		{ "comm=a%00b", "bad filter: '%00' (NUL) in the query" },
		/* lws: an encoded '=' in the name becomes '_', ';' separates like '&' */
		{ "co%3Dmm=x", "bad filter: unknown key 'co_mm'" },
		{ "comm=a;foo=1", "bad filter: unknown key 'foo'" },
		{ "comm%26pid=1", "bad filter: unknown key 'comm&pid'" },
		/* shown bytes are printable: control bytes, '"', '\\' and non-ASCII as \xNN */
		{ "f%01o=1", "bad filter: unknown key 'f\\x01o'" },
		{ "f%0Ao%0D=1", "bad filter: unknown key 'f\\x0ao\\x0d'" },
		{ "%22k%5C=1", "bad filter: unknown key '\\x22k\\x5c'" },
		{ "k%C3%A9=1", "bad filter: unknown key 'k\\xc3\\xa9'" },
		{ "k\xff=1", "bad filter: unknown key 'k\\xff'" },
	};
	struct lm_filter f;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		bad(cases[i].q, cases[i].reason);
	/* a raw control byte in a value is a byte like any other */
	good(&f, "comm=a\x01");
}

static void test_filter_cuts_long_values_in_reasons(void **state)
{
	char q[512], want[512];

	(void)state;
	/* 50-byte key: shown as its first 40 bytes and "..." */
	repeat(q, sizeof(q), "", "k", "", 50);
	strcat(q, "=1");
	snprintf(want, sizeof(want), "bad filter: unknown key '%.40s...'", q);
	bad(q, want);

	/* 40 escaped bytes: each shown as \xNN */
	repeat(q, sizeof(q), "pid=", "%01", "", 41);
	repeat(want, sizeof(want), "bad filter: pid: '", "\\x01", "", 40);
	strcat(want, "...' is not a number");
	bad(q, want);
}

static void test_filter_enforces_limits(void **state)
{
	static char q[LM_FILTER_MAX_QUERY_BYTES + 64];
	char v256[LM_FILTER_MAX_VALUE_BYTES + 2];
	struct lm_filter f;
	size_t n;

	(void)state;
	/* 16 values per key, in one argument or over repeats, and not one more */
	good(&f, repeat(q, sizeof(q), "comm=", "a", ",", 16));
	bad(repeat(q, sizeof(q), "comm=", "a", ",", 17), "bad filter: comm: more than 16 values");
	good(&f, repeat(q, sizeof(q), "", "pid=1", "&", 16));
	bad(repeat(q, sizeof(q), "", "pid=1", "&", 17), "bad filter: pid: more than 16 values");
	bad(repeat(q, sizeof(q), "pid=1,2&", "ppid=1", "&", 17),
	    "bad filter: ppid: more than 16 values");
	bad(repeat(q, sizeof(q), "", "uid=1", "&", 17), "bad filter: uid: more than 16 values");
	bad(repeat(q, sizeof(q), "", "type=exec", "&", 17),
	    "bad filter: type: more than 16 values");
	bad(repeat(q, sizeof(q), "", "exit=nonzero", "&", 17),
	    "bad filter: exit: more than 16 values");
	bad(repeat(q, sizeof(q), "", "exe=a,b", "&", 9), "bad filter: exe: more than 16 values");
	bad(repeat(q, sizeof(q), "", "container=a", "&", 17),
	    "bad filter: container: more than 16 values");
	bad(repeat(q, sizeof(q), "", "cgroup=/", "&", 17),
	    "bad filter: cgroup: more than 16 values");
	bad(repeat(q, sizeof(q), "", "args=x", "&", 17), "bad filter: args: more than 16 values");

	/* a value of 256 bytes, decoded, and not one more */
	memset(v256, 'v', LM_FILTER_MAX_VALUE_BYTES);
	v256[LM_FILTER_MAX_VALUE_BYTES] = '\0';
	snprintf(q, sizeof(q), "args=%s", v256);
	good(&f, q);
	snprintf(q, sizeof(q), "comm=x,%sv", v256);
	bad(q, "bad filter: comm: value longer than 256 bytes");
	snprintf(q, sizeof(q), "args=%sv", v256);
	bad(q, "bad filter: args: value longer than 256 bytes");
	snprintf(q, sizeof(q), "exe=%sv", v256);
	bad(q, "bad filter: exe: value longer than 256 bytes");
	snprintf(q, sizeof(q), "cgroup=%sv", v256);
	bad(q, "bad filter: cgroup: value longer than 256 bytes");
	/* 768 raw bytes that decode to 256 are fine */
	repeat(q, sizeof(q), "args=", "%41", "", LM_FILTER_MAX_VALUE_BYTES);
	good(&f, q);
	repeat(q, sizeof(q), "container=", "a", "", 64);
	good(&f, q);
	repeat(q, sizeof(q), "container=", "a", "", 65);
	bad(q, "bad filter: container: value longer than 64 hex digits");

	/* the whole query: 4096 bytes, and not one more (token counts too) */
	repeat(q, sizeof(q), "token=", "t", "", LM_FILTER_MAX_QUERY_BYTES - 6);
	assert_int_equal(strlen(q), LM_FILTER_MAX_QUERY_BYTES);
	good(&f, q);
	strcat(q, "t");
	bad(q, "bad filter: query longer than 4096 bytes");

	/* a query of 4096 bytes of long values: the filter holds them all */
	n = 0;
	while (n + 262 <= LM_FILTER_MAX_QUERY_BYTES)
		n += (size_t)snprintf(q + n, sizeof(q) - n, "%sargs=%.250s", n ? "&" : "", v256);
	n += (size_t)snprintf(q + n, sizeof(q) - n, "&comm=");
	memset(q + n, 'c', LM_FILTER_MAX_QUERY_BYTES - n);
	q[LM_FILTER_MAX_QUERY_BYTES] = '\0';
	good(&f, q);
	assert_int_equal(f.str_cnt[LM_FILTER_ARGS], 15);
	assert_int_equal(f.str_cnt[LM_FILTER_COMM], 1);
	{
		struct lm_filter_ev e = exec_ev();

		e.comm = q + n;
		e.args = v256;
		e.args_len = 250;
		assert_true(lm_filter_match(&f, &e));
	}
}

static void test_filter_parse_arg_takes_decoded_args(void **state)
{
	struct lm_filter f;
	char tiny[12];

	(void)state;
	lm_filter_init(&f);
	/* not NUL-terminated: only len bytes count */
	assert_int_equal(lm_filter_parse_arg(&f, "comm=bashXXX", 9, why, sizeof(why)), 0);
	/* decoded already: '%' and '+' are literal bytes here */
	assert_int_equal(lm_filter_parse_arg(&f, "args=100%+", 10, why, sizeof(why)), 0);
	assert_int_equal(lm_filter_parse_arg(&f, "", 0, why, sizeof(why)), 0);
	assert_int_equal(lm_filter_parse_arg(&f, "token=", 6, why, sizeof(why)), 0);
	assert_int_equal(lm_filter_parse_arg(&f, "token", 5, why, sizeof(why)), 0);
	{
		struct lm_filter_ev e = exec_ev();

		e.comm = "bash";
		e.args = "x 100%+ y";
		e.args_len = 9;
		assert_true(lm_filter_match(&f, &e));
		e.args = "x 100% y";
		e.args_len = 8;
		assert_false(lm_filter_match(&f, &e));
	}
	assert_int_equal(lm_filter_parse_arg(&f, "comm=a\0b", 8, why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "bad filter: NUL byte in the query");

	/* a short why buffer is cut, NUL-terminated; none at all is allowed */
	lm_filter_init(&f);
	memset(tiny, 'z', sizeof(tiny));
	assert_int_equal(lm_filter_parse_arg(&f, "foo=1", 5, tiny, sizeof(tiny)), -EINVAL);
	assert_string_equal(tiny, "bad filter:");
	lm_filter_init(&f);
	assert_int_equal(lm_filter_parse_arg(&f, "foo=1", 5, NULL, 0), -EINVAL);
	assert_int_equal(lm_filter_parse_query(&f, "%", 1, NULL, 0), -EINVAL);

	/* the query limit holds for arguments fed one by one too */
	{
		static char arg[LM_FILTER_MAX_QUERY_BYTES];
		size_t n = LM_FILTER_MAX_QUERY_BYTES - 7; /* "token=" + n, "&", "pid=1" */

		memcpy(arg, "token=", 6);
		memset(arg + 6, 't', n - 6);
		lm_filter_init(&f);
		assert_int_equal(lm_filter_parse_arg(&f, arg, n, why, sizeof(why)), 0);
		assert_int_equal(lm_filter_parse_arg(&f, "pid=1", 5, why, sizeof(why)), 0);
		assert_int_equal(lm_filter_parse_arg(&f, "p", 1, why, sizeof(why)), -EINVAL);
		assert_string_equal(why, "bad filter: query longer than 4096 bytes");
	}
}

static void test_filter_accepts_non_filter_keys(void **state)
{
	struct lm_filter f;

	(void)state;
	good(&f, "");
	assert_false(lm_filter_is_active(&f));
	assert_false(f.has_since);
	assert_false(f.has_instance);

	good(&f, "token=s3cr%26t&since=18446744073709551615&instance=5F0C9A1E22B4D7AA&token=2");
	assert_false(lm_filter_is_active(&f));
	assert_true(f.has_since);
	assert_true(f.since == UINT64_MAX);
	assert_true(f.has_instance);
	assert_string_equal(f.instance, "5f0c9a1e22b4d7aa");

	good(&f, "since=1&&");
	assert_true(f.has_since);
	assert_true(f.since == 1);
	good(&f, "since=007");
	assert_true(f.since == 7);
	good(&f, "&comm=a;;since=2&");
	assert_true(lm_filter_is_active(&f));
	assert_true(f.since == 2);
}

static void test_filter_each_key_makes_it_active(void **state)
{
	static const char *const q[] = { "type=exec",	 "comm=a", "exe=/a",	  "pid=0",
					 "ppid=1",	 "uid=0",  "container=a", "cgroup=/",
					 "exit=nonzero", "args=x" };
	struct lm_filter f;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		good(&f, q[i]);
		assert_true(lm_filter_is_active(&f));
	}
}

static void test_filter_empty_matches_all(void **state)
{
	struct lm_filter f;
	struct lm_filter_ev ex = exec_ev(), ez = exit_ev(false), eo = oom_ev();

	(void)state;
	lm_filter_init(&f);
	assert_true(lm_filter_match(&f, &ex));
	assert_true(lm_filter_match(&f, &ez));
	assert_true(lm_filter_match(&f, &eo));
	good(&f, "token=a&since=3");
	assert_true(lm_filter_match(&f, &eo));
}

static void test_filter_matches_type(void **state)
{
	struct lm_filter_ev ex = exec_ev(), ez = exit_ev(false), eo = oom_ev();

	(void)state;
	assert_true(match("type=exec", &ex));
	assert_false(match("type=exec", &ez));
	assert_false(match("type=exec", &eo));
	assert_true(match("type=exit", &ez));
	assert_false(match("type=exit", &ex));
	assert_true(match("type=oom_kill", &eo));
	assert_false(match("type=oom_kill", &ez));
	assert_true(match("type=EXIT,Oom_Kill", &eo));
	assert_true(match("type=EXIT,Oom_Kill", &ez));
	assert_false(match("type=EXIT,Oom_Kill", &ex));
	assert_true(match("type=exec&type=exit", &ez));
	assert_false(match("type=exec&type=exit", &eo));
	ex.type = LM_EV_CGROUP; /* not an event type: no type= names it */
	assert_false(match("type=exec,exit,oom_kill", &ex));
	ex.type = 200;
	assert_false(match("type=exec,exit,oom_kill", &ex));
}

static void test_filter_matches_comm_glob(void **state)
{
	struct lm_filter_ev e = exec_ev(), eo = oom_ev();

	(void)state;
	assert_true(match("comm=ls", &e));
	assert_false(match("comm=l", &e));
	assert_false(match("comm=LS", &e)); /* globs are case-sensitive */
	assert_true(match("comm=l*", &e));
	assert_true(match("comm=?s", &e));
	assert_true(match("comm=[kl]s", &e));
	assert_false(match("comm=[!l]s", &e));
	assert_true(match("comm=hog", &eo)); /* any event type */
	/* OR within a key, and across repeats of it */
	assert_true(match("comm=bash,ls", &e));
	assert_true(match("comm=bash&comm=ls", &e));
	assert_false(match("comm=bash&comm=sh", &e));
	e.comm = "";
	assert_true(match("comm=*", &e));
	assert_false(match("comm=?*", &e));
	e.comm = "kworker/0:1";
	assert_true(match("comm=kworker*", &e)); /* flags 0: '*' matches '/' */
	assert_true(match("comm=kworker%2F*", &e));
	e.comm = "a b";
	assert_true(match("comm=a+b", &e));
	assert_true(match("comm=a%20b", &e));
}

static void test_filter_matches_exe_glob(void **state)
{
	struct lm_filter_ev e = exec_ev(), ez = exit_ev(false), eo = oom_ev();

	(void)state;
	assert_true(match("exe=/usr/bin/ls", &e));
	assert_true(match("exe=*/ls", &e));
	assert_true(match("exe=/usr/*", &e)); /* '*' crosses '/' */
	assert_false(match("exe=/usr/bin", &e));
	assert_false(match("exe=ls", &e));
	assert_true(match("exe=/bin/*,/usr/bin/*", &e));
	/* events without an exe never match, not even '*' */
	assert_false(match("exe=*", &ez));
	assert_false(match("exe=*", &eo));
	e.exe = NULL; /* an EXEC whose file was not known */
	assert_false(match("exe=*", &e));
}

/* EXIT and OOM_KILL pass exe= and args= when the caller saw their process's EXEC pass them */
static void test_filter_program_stands_for_exit_and_oom(void **state)
{
	struct lm_filter_ev e = exec_ev(), ez = exit_ev(true), eo = oom_ev();
	struct lm_filter f;

	(void)state;
	good(&f, "exe=*/ls&args=/tmp");
	assert_true(lm_filter_has_program(&f));
	assert_true(lm_filter_match_program(&f, &e));
	e.args_len = 3; /* "-la": args= no longer matches */
	assert_false(lm_filter_match_program(&f, &e));
	e = exec_ev();
	/* program_matched says nothing about an EXEC: its own exe and args decide */
	e.program_matched = true;
	e.exe = "/bin/cat";
	assert_false(lm_filter_match(&f, &e));
	assert_false(lm_filter_match(&f, &ez));
	assert_false(lm_filter_match(&f, &eo));
	ez.program_matched = eo.program_matched = true;
	assert_true(lm_filter_match(&f, &ez));
	assert_true(lm_filter_match(&f, &eo));
	/* the other keys still apply to the EXIT */
	good(&f, "exe=*/ls&type=exec");
	assert_false(lm_filter_match(&f, &ez));
	good(&f, "args=tmp&exit=nonzero&comm=ls");
	assert_true(lm_filter_match(&f, &ez));
	good(&f, "args=tmp&comm=cat");
	assert_false(lm_filter_match(&f, &ez));
	/* without exe= or args= there is no program to stand for */
	good(&f, "comm=ls");
	assert_false(lm_filter_has_program(&f));
	assert_true(lm_filter_match_program(&f, &e));
	ez.program_matched = false;
	assert_true(lm_filter_match(&f, &ez));
}

static void test_filter_matches_numbers(void **state)
{
	struct lm_filter_ev e = exec_ev(), eo = oom_ev();

	(void)state;
	assert_true(match("pid=100", &e));
	assert_false(match("pid=10", &e));
	assert_false(match("pid=1000", &e));
	assert_true(match("pid=1,2,100", &e));
	assert_true(match("pid=1&pid=100", &e));
	assert_true(match("pid=0100", &e));
	assert_true(match("ppid=1", &e));
	assert_false(match("ppid=100", &e));
	assert_true(match("ppid=0", &eo));
	assert_true(match("uid=1000", &e));
	assert_false(match("uid=0", &e));
	assert_true(match("uid=0", &eo));
	e.uid = UINT32_MAX;
	assert_true(match("uid=4294967295", &e));
	assert_false(match("uid=0", &e));
}

static void test_filter_matches_container_prefix(void **state)
{
	struct lm_filter_ev e = exec_ev(), ez = exit_ev(false);
	char q[128];

	(void)state;
	assert_true(match("container=0123abcdef", &e));
	assert_true(match("container=0123ABCDEF", &e)); /* case-insensitive */
	assert_true(match("container=0", &e));
	snprintf(q, sizeof(q), "container=%s", e.container);
	assert_true(match(q, &e));		     /* all 64 digits */
	assert_false(match("container=123abc", &e)); /* a prefix, not a substring */
	assert_false(match("container=0123abce", &e));
	assert_true(match("container=ffff,0123", &e));
	assert_true(match("container=ffff&container=0123", &e));
	/* no container: never */
	assert_false(match("container=0", &ez));
	/* an id shorter than the prefix does not match */
	e.container = "0123";
	assert_false(match("container=01234", &e));
	assert_true(match("container=0123", &e));
	e.container = "0123ABCD"; /* even if the serializer wrote upper case */
	assert_true(match("container=0123abcd", &e));
}

static void test_filter_matches_cgroup_glob(void **state)
{
	struct lm_filter_ev e = exec_ev(), eo = oom_ev();

	(void)state;
	assert_true(match("cgroup=/system.slice/*", &e));
	assert_true(match("cgroup=*docker-*", &e));
	assert_true(match("cgroup=/system.slice/docker-0123abcd.scope", &e));
	assert_false(match("cgroup=/system.slice", &e));
	assert_false(match("cgroup=/user.slice/*", &e));
	assert_true(match("cgroup=/user.slice/*,/system.slice/*", &e));
	e.cgroup = "/kubepods/burstable/pod1/abc";
	assert_true(match("cgroup=/kubepods/*/abc", &e));
	/* unknown path: never, not even '*' */
	assert_false(match("cgroup=*", &eo));
}

static void test_filter_matches_exit_nonzero(void **state)
{
	struct lm_filter_ev ex = exec_ev(), ez = exit_ev(false), en = exit_ev(true), eo = oom_ev();

	(void)state;
	assert_true(match("exit=nonzero", &en));  /* exit code or signal */
	assert_false(match("exit=nonzero", &ez)); /* exit 0 */
	assert_false(match("exit=nonzero", &ex));
	ex.nonzero_exit = true; /* only EXITs ever match */
	assert_false(match("exit=nonzero", &ex));
	eo.nonzero_exit = true;
	assert_false(match("exit=nonzero", &eo));
	assert_true(match("exit=NonZero", &en));
	assert_true(match("exit=nonzero&exit=nonzero", &en));
	assert_true(match("exit=nonzero&type=exit", &en));
	assert_false(match("exit=nonzero&type=exec", &en));
}

static void test_filter_matches_args_substring(void **state)
{
	/* args are not NUL-terminated where args_len ends */
	static const char buf[] = "-la /tmpXYZ";
	struct lm_filter_ev e = exec_ev(), ez = exit_ev(true);

	(void)state;
	e.args = buf;
	e.args_len = 8;				 /* "-la /tmp" */
	assert_true(match("args=-la+/tmp", &e)); /* across an argument boundary */
	assert_true(match("args=-la%20/tmp", &e));
	assert_true(match("args=a /t", &e));
	assert_true(match("args=-la", &e));
	assert_true(match("args=/tmp", &e));
	assert_false(match("args=/tmpX", &e)); /* past args_len */
	assert_false(match("args=-LA", &e));   /* case-sensitive */
	assert_false(match("args=-la  /tmp", &e));
	assert_false(match("args=*", &e)); /* a substring, not a glob */
	assert_true(match("args=nope,/tm", &e));
	assert_true(match("args=nope&args=/tm", &e));
	/* no args (EXIT, OOM): never */
	assert_false(match("args=-", &ez));
	e.args_len = 0;
	assert_false(match("args=-", &e));
	/* bytes beyond ASCII, encoded */
	e.args = "\xff\x01 x";
	e.args_len = 4;
	assert_true(match("args=%FF%01+", &e));
}

static void test_filter_ands_keys(void **state)
{
	struct lm_filter_ev e = exec_ev();

	(void)state;
	assert_true(match("type=exec&comm=ls&uid=1000&pid=100&ppid=1&exe=*/ls&container=0123&"
			  "cgroup=/system.slice/*&args=/tmp",
			  &e));
	/* each key alone can veto */
	assert_false(match("type=exit&comm=ls&uid=1000", &e));
	assert_false(match("comm=sh&uid=1000", &e));
	assert_false(match("comm=ls&uid=0", &e));
	assert_false(match("comm=ls&pid=1", &e));
	assert_false(match("comm=ls&ppid=2", &e));
	assert_false(match("comm=ls&exe=/bin/*", &e));
	assert_false(match("comm=ls&container=f", &e));
	assert_false(match("comm=ls&cgroup=/user.slice/*", &e));
	assert_false(match("comm=ls&args=-r", &e));
	assert_false(match("comm=ls&exit=nonzero", &e));
	/* OR within, AND across */
	assert_true(match("comm=sh,ls&uid=0,1000", &e));
	assert_false(match("comm=sh,ls&uid=0,1", &e));
}

/* Every byte value, raw and encoded, in a key and in a value: no crash, a printable reason. */
static void test_filter_survives_every_byte(void **state)
{
	/* the byte goes between pre and post */
	static const struct {
		const char *pre, *post;
	} at[] = { { "comm=", "" },   { "", "=1" },	    { "args=a", "b" }, { "pid=", "" },
		   { "type=", "" },   { "container=", "" }, { "since=", "" },  { "instance=", "" },
		   { "comm=a,", "" }, { "", "" },	    { "k", "y=1" },    { "exit=", "" } };
	char q[64], raw[4];
	struct lm_filter f;
	size_t i, j, k, rlen;
	int b;

	(void)state;
	for (b = 0; b < 256; b++) {
		for (k = 0; k < 2; k++) {
			if (k == 0) {
				raw[0] = (char)b;
				rlen = 1;
			} else {
				rlen = (size_t)snprintf(raw, sizeof(raw), "%%%02X", b);
			}
			for (i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
				size_t pl = strlen(at[i].pre), ql = strlen(at[i].post);
				int err;

				memcpy(q, at[i].pre, pl);
				memcpy(q + pl, raw, rlen);
				memcpy(q + pl + rlen, at[i].post, ql + 1);
				memset(why, 'Z', sizeof(why));
				lm_filter_init(&f);
				err = lm_filter_parse_query(&f, q, pl + rlen + ql, why,
							    sizeof(why));
				assert_true(err == 0 || err == -EINVAL);
				assert_non_null(memchr(why, '\0', sizeof(why)));
				if (!err)
					assert_string_equal(why, "");
				else
					assert_true(strlen(why) > 12);
				for (j = 0; why[j]; j++)
					if ((unsigned char)why[j] < 0x20 ||
					    (unsigned char)why[j] > 0x7e || why[j] == '"')
						fail_msg("byte 0x%02x in \"%s\": reason has byte "
							 "0x%02x",
							 b, q, (unsigned char)why[j]);
			}
		}
		/* an encoded byte in comm matches exactly that comm (globs aside) */
		if (b) {
			struct lm_filter_ev e = exec_ev();
			char comm[2] = { (char)b, '\0' };

			e.comm = comm;
			snprintf(q, sizeof(q), "comm=%%%02X", b);
			if (b == ',') {
				/* decoded before the split: two empty values */
				bad(q, "bad filter: comm: empty value");
				continue;
			}
			good(&f, q);
			if (strchr("*?[\\", b))
				continue;
			assert_true(lm_filter_match(&f, &e));
			comm[0] = b == 'x' ? 'y' : 'x';
			assert_false(lm_filter_match(&f, &e));
		}
	}
	/* %00 and a raw NUL are always refused (lws drops the request) */
	lm_filter_init(&f);
	assert_int_equal(lm_filter_parse_query(&f, "comm=a\0b", 8, why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "bad filter: NUL byte in the query");
}

static void test_filter_formats_canonically(void **state)
{
	static char out[LM_FILTER_FORMAT_BYTES];
	struct lm_filter f, g;
	int n;

	(void)state;
	lm_filter_init(&f);
	assert_int_equal(lm_filter_format(&f, out, sizeof(out)), 0);
	assert_string_equal(out, "");

	good(&f, "token=x&since=4&args=-la+/tmp&exit=nonzero&cgroup=/system.slice/*&"
		 "container=ABC&uid=0&ppid=1&pid=2,3&exe=/usr/bin/*&comm=a&type=oom_kill,EXEC&"
		 "comm=b%2Cc&instance=5f0c9a1e22b4d7aa&type=exec");
	n = lm_filter_format(&f, out, sizeof(out));
	assert_string_equal(out, "type=exec,oom_kill&comm=a,b,c&exe=/usr/bin/*&pid=2,3&ppid=1&"
				 "uid=0&container=abc&cgroup=/system.slice/*&exit=nonzero&"
				 "args=-la%20/tmp");
	assert_int_equal(n, (int)strlen(out));

	/* special bytes are encoded, and the output parses back to the same filter */
	good(&f, "comm=%22q%5C%26%3B%3D%2B%25%23%3F%20%7F%FF%C3%A9['x']&args=a%0Ab");
	n = lm_filter_format(&f, out, sizeof(out));
	assert_string_equal(out, "comm=%22q%5C%26%3B%3D%2B%25%23%3F%20%7F%FF%C3%A9%5B%27x%27%5D&"
				 "args=a%0Ab");
	good(&g, out);
	{
		char again[256];

		assert_int_equal(lm_filter_format(&g, again, sizeof(again)), n);
		assert_string_equal(again, out);
	}

	/* -ENOSPC when it does not fit with its NUL, and then an empty string */
	good(&f, "comm=abc");
	assert_int_equal(lm_filter_format(&f, out, 9), 8);
	assert_int_equal(lm_filter_format(&f, out, 8), -ENOSPC);
	assert_string_equal(out, "");
	assert_int_equal(lm_filter_format(&f, out, 0), -ENOSPC);
	good(&f, "pid=4294967295,0");
	assert_int_equal(lm_filter_format(&f, out, sizeof(out)), 16);
	assert_string_equal(out, "pid=4294967295,0");
}

/* The worst case fits LM_FILTER_FORMAT_BYTES, and every output byte is plain ASCII. */
static void test_filter_format_worst_case(void **state)
{
	static const char *const keys[] = { "comm", "exe", "cgroup", "args" };
	static char out[LM_FILTER_FORMAT_BYTES];
	struct lm_filter f;
	char arg[300];
	size_t i, a, vbytes = 0;
	int len, k, err = 0;

	(void)state;
	/* values of bytes that all need encoding, fed decoded, until the query limit */
	lm_filter_init(&f);
	for (k = 0; !err; k++) {
		a = (size_t)snprintf(arg, sizeof(arg), "%s=", keys[(k / 16) % 4]);
		for (i = 0; i < LM_FILTER_MAX_VALUE_BYTES; i++)
			arg[a++] = (char)(0x80 + i % 0x7f);
		err = lm_filter_parse_arg(&f, arg, a, why, sizeof(why));
		if (!err)
			vbytes += LM_FILTER_MAX_VALUE_BYTES;
	}
	assert_string_equal(why, "bad filter: query longer than 4096 bytes");
	len = lm_filter_format(&f, out, sizeof(out));
	assert_int_equal(len, 5 + 3 * (int)vbytes + (k - 2)); /* "args=", values, commas */
	assert_true(len <= 3 * f.query_bytes);
	for (i = 0; i < (size_t)len; i++)
		assert_true(out[i] > 0x20 && out[i] < 0x7f && out[i] != '"' && out[i] != '\\');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_filter_rejects_each_bad_form),
		cmocka_unit_test(test_filter_cuts_long_values_in_reasons),
		cmocka_unit_test(test_filter_enforces_limits),
		cmocka_unit_test(test_filter_parse_arg_takes_decoded_args),
		cmocka_unit_test(test_filter_accepts_non_filter_keys),
		cmocka_unit_test(test_filter_each_key_makes_it_active),
		cmocka_unit_test(test_filter_empty_matches_all),
		cmocka_unit_test(test_filter_matches_type),
		cmocka_unit_test(test_filter_matches_comm_glob),
		cmocka_unit_test(test_filter_matches_exe_glob),
		cmocka_unit_test(test_filter_program_stands_for_exit_and_oom),
		cmocka_unit_test(test_filter_matches_numbers),
		cmocka_unit_test(test_filter_matches_container_prefix),
		cmocka_unit_test(test_filter_matches_cgroup_glob),
		cmocka_unit_test(test_filter_matches_exit_nonzero),
		cmocka_unit_test(test_filter_matches_args_substring),
		cmocka_unit_test(test_filter_ands_keys),
		cmocka_unit_test(test_filter_survives_every_byte),
		cmocka_unit_test(test_filter_formats_canonically),
		cmocka_unit_test(test_filter_format_worst_case),
	};

	return cmocka_run_group_tests_name("filter", tests, NULL, NULL);
}
