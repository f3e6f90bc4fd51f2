// SPDX-License-Identifier: GPL-2.0
/*
 * Per-client /ws filters: the query parser (run by lm-ws at the handshake; its reasons become
 * the body of a 400) and the matcher (run by lm-ws per event and client). Pure: no I/O, no
 * allocation; a filter owns all its values in its own fixed-size struct.
 */
#include "net/filter.h"

#include "bpf/lm_event.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A value shown in a reason is cut to this many bytes (then "..."). */
#define LM_FILTER_SHOW_BYTES 40

_Static_assert(LM_EV_EXEC < 8 && LM_EV_EXIT < 8 && LM_EV_OOM < 8, "types fit lm_filter.types");
_Static_assert(LM_FILTER_MAX_QUERY_BYTES < UINT16_MAX, "pool offsets and counts are u16");
_Static_assert(LM_FILTER_MAX_VALUES < UINT8_MAX, "value counts are u8");
_Static_assert(sizeof(struct lm_filter) <= 8192, "lm_filter lives in lws per-session memory");
_Static_assert(LM_FILTER_WHY_BYTES >= 64 + 4 * LM_FILTER_SHOW_BYTES + 3,
	       "the longest reason: a prefix and one value of 40 bytes each escaped to 4");

static const char *const lm_filter_skey_names[LM_FILTER_SKEY_CNT] = {
	[LM_FILTER_COMM] = "comm",	     [LM_FILTER_EXE] = "exe",
	[LM_FILTER_CONTAINER] = "container", [LM_FILTER_CGROUP] = "cgroup",
	[LM_FILTER_ARGS] = "args",
};

static const char *const lm_filter_nkey_names[LM_FILTER_NKEY_CNT] = {
	[LM_FILTER_PID] = "pid",
	[LM_FILTER_PPID] = "ppid",
	[LM_FILTER_UID] = "uid",
};

/* type= names, indexed by LM_EV_*; also the order lm_filter_format writes them in */
static const char *const lm_filter_type_names[LM_EV_EVENT_CNT] = {
	[LM_EV_EXEC] = "exec",
	[LM_EV_EXIT] = "exit",
	[LM_EV_OOM] = "oom_kill",
};

void lm_filter_init(struct lm_filter *f)
{
	memset(f, 0, sizeof(*f));
}

static int lm_filter_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static char lm_filter_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* s (len bytes) equals the NUL-terminated lowercase word, ASCII case-insensitively */
static bool lm_filter_is_word(const char *s, size_t len, const char *word)
{
	size_t i;

	if (strlen(word) != len)
		return false;
	for (i = 0; i < len; i++)
		if (lm_filter_lower(s[i]) != word[i])
			return false;
	return true;
}

/* s (len bytes) equals the NUL-terminated key exactly */
static bool lm_filter_is_key(const char *s, size_t len, const char *key)
{
	return strlen(key) == len && !memcmp(s, key, len);
}

/*
 * Writes s (len bytes) for a reason: printable ASCII as is, other bytes and '"', '\\' as
 * \xNN, cut after LM_FILTER_SHOW_BYTES input bytes with "...". out holds at least
 * 4 * LM_FILTER_SHOW_BYTES + 4 bytes.
 */
static void lm_filter_show(char *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, n = len > LM_FILTER_SHOW_BYTES ? LM_FILTER_SHOW_BYTES : len, o = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			out[o++] = (char)c;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (n < len) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

/* Writes a reason into why (cut to why_cap) and returns -EINVAL. */
__attribute__((format(printf, 3, 4))) static int lm_filter_fail(char *why, size_t why_cap,
								const char *fmt, ...)
{
	va_list ap;

	if (why && why_cap) {
		va_start(ap, fmt);
		vsnprintf(why, why_cap, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* Decimal digits only, at most max; false for empty, signs, spaces or overflow (*overflow set). */
static bool lm_filter_parse_num(const char *s, size_t len, uint64_t max, uint64_t *out,
				bool *overflow)
{
	uint64_t v = 0;
	size_t i;

	*overflow = false;
	if (!len)
		return false;
	for (i = 0; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9') {
			*overflow = false;
			return false;
		}
		d = (unsigned)(s[i] - '0');
		if (v > (max - d) / 10) {
			/* keep scanning: a non-digit later makes it "not a number" instead */
			*overflow = true;
			continue;
		}
		if (!*overflow)
			v = v * 10 + d;
	}
	if (*overflow)
		return false;
	*out = v;
	return true;
}

static int lm_filter_parse_since(struct lm_filter *f, const char *v, size_t len, char *why,
				 size_t why_cap)
{
	char shown[4 * LM_FILTER_SHOW_BYTES + 4];
	uint64_t seq;
	bool overflow;

	if (f->has_since)
		return lm_filter_fail(why, why_cap, "bad since: given twice");
	if (!lm_filter_parse_num(v, len, UINT64_MAX, &seq, &overflow) || !seq) {
		lm_filter_show(shown, v, len);
		return lm_filter_fail(why, why_cap, "bad since: '%s' is not a seq (1 or more)",
				      shown);
	}
	f->has_since = true;
	f->since = seq;
	return 0;
}

static int lm_filter_parse_instance(struct lm_filter *f, const char *v, size_t len, char *why,
				    size_t why_cap)
{
	size_t i;

	if (f->has_instance)
		return lm_filter_fail(why, why_cap, "bad instance: given twice");
	if (len != sizeof(f->instance) - 1)
		return lm_filter_fail(why, why_cap, "bad instance: must be 16 hex digits");
	for (i = 0; i < len; i++)
		if (lm_filter_hexval((unsigned char)v[i]) < 0)
			return lm_filter_fail(why, why_cap, "bad instance: must be 16 hex digits");
	for (i = 0; i < len; i++)
		f->instance[i] = lm_filter_lower(v[i]);
	f->instance[len] = '\0';
	f->has_instance = true;
	return 0;
}

/* The key an argument names; which of the lists it is in goes to *kind. */
enum lm_filter_kind {
	LM_FILTER_K_UNKNOWN,
	LM_FILTER_K_TYPE,
	LM_FILTER_K_EXIT,
	LM_FILTER_K_STR,
	LM_FILTER_K_NUM,
};

static enum lm_filter_kind lm_filter_lookup(const char *k, size_t klen, int *idx)
{
	int i;

	if (lm_filter_is_key(k, klen, "type"))
		return LM_FILTER_K_TYPE;
	if (lm_filter_is_key(k, klen, "exit"))
		return LM_FILTER_K_EXIT;
	for (i = 0; i < LM_FILTER_SKEY_CNT; i++)
		if (lm_filter_is_key(k, klen, lm_filter_skey_names[i])) {
			*idx = i;
			return LM_FILTER_K_STR;
		}
	for (i = 0; i < LM_FILTER_NKEY_CNT; i++)
		if (lm_filter_is_key(k, klen, lm_filter_nkey_names[i])) {
			*idx = i;
			return LM_FILTER_K_NUM;
		}
	return LM_FILTER_K_UNKNOWN;
}

/* Adds one value (non-empty, at most LM_FILTER_MAX_VALUE_BYTES) of a filter key. */
static int lm_filter_add_value(struct lm_filter *f, enum lm_filter_kind kind, int idx,
			       const char *key, const char *v, size_t len, char *why,
			       size_t why_cap)
{
	char shown[4 * LM_FILTER_SHOW_BYTES + 4];
	uint64_t n;
	bool overflow;
	int t;
	size_t i;

	switch (kind) {
	case LM_FILTER_K_TYPE:
		if (f->type_cnt >= LM_FILTER_MAX_VALUES)
			break;
		for (t = 1; t < LM_EV_EVENT_CNT; t++)
			if (lm_filter_is_word(v, len, lm_filter_type_names[t]))
				break;
		if (t == LM_EV_EVENT_CNT) {
			lm_filter_show(shown, v, len);
			return lm_filter_fail(
				why, why_cap,
				"bad filter: type: '%s' is not exec, exit or oom_kill", shown);
		}
		f->types |= (uint8_t)(1u << t);
		f->type_cnt++;
		return 0;
	case LM_FILTER_K_EXIT:
		if (f->exit_cnt >= LM_FILTER_MAX_VALUES)
			break;
		if (!lm_filter_is_word(v, len, "nonzero"))
			return lm_filter_fail(why, why_cap, "bad filter: exit: only exit=nonzero");
		f->exit_nonzero = true;
		f->exit_cnt++;
		return 0;
	case LM_FILTER_K_NUM:
		if (f->num_cnt[idx] >= LM_FILTER_MAX_VALUES)
			break;
		if (!lm_filter_parse_num(v, len, UINT32_MAX, &n, &overflow)) {
			lm_filter_show(shown, v, len);
			if (overflow)
				return lm_filter_fail(
					why, why_cap,
					"bad filter: %s: '%s' is out of range (0..4294967295)", key,
					shown);
			return lm_filter_fail(why, why_cap, "bad filter: %s: '%s' is not a number",
					      key, shown);
		}
		f->num[idx][f->num_cnt[idx]++] = (uint32_t)n;
		return 0;
	case LM_FILTER_K_STR:
		if (f->str_cnt[idx] >= LM_FILTER_MAX_VALUES)
			break;
		if (idx == LM_FILTER_CONTAINER) {
			for (i = 0; i < len; i++)
				if (lm_filter_hexval((unsigned char)v[i]) < 0)
					break;
			if (i < len) {
				lm_filter_show(shown, v, len);
				return lm_filter_fail(why, why_cap,
						      "bad filter: container: '%s' is not hex",
						      shown);
			}
			if (len > LM_FILTER_MAX_CONTAINER_HEX)
				return lm_filter_fail(
					why, why_cap,
					"bad filter: container: value longer than %d hex digits",
					LM_FILTER_MAX_CONTAINER_HEX);
		}
		/* the query limit bounds the pool (see lm_filter.pool); this is a backstop */
		if (f->pool_len + len + 1 > sizeof(f->pool))
			return lm_filter_fail(why, why_cap,
					      "bad filter: query longer than %d bytes",
					      LM_FILTER_MAX_QUERY_BYTES);
		for (i = 0; i < len; i++)
			f->pool[f->pool_len + i] =
				idx == LM_FILTER_CONTAINER ? lm_filter_lower(v[i]) : v[i];
		f->pool[f->pool_len + len] = '\0';
		f->str[idx][f->str_cnt[idx]].off = f->pool_len;
		f->str[idx][f->str_cnt[idx]].len = (uint16_t)len;
		f->str_cnt[idx]++;
		f->pool_len = (uint16_t)(f->pool_len + len + 1);
		return 0;
	case LM_FILTER_K_UNKNOWN:
		break;
	}
	return lm_filter_fail(why, why_cap, "bad filter: %s: more than %d values", key,
			      LM_FILTER_MAX_VALUES);
}

int lm_filter_parse_arg(struct lm_filter *f, const char *arg, size_t len, char *why, size_t why_cap)
{
	char shown[4 * LM_FILTER_SHOW_BYTES + 4];
	const char *eq, *v, *end, *key = NULL;
	enum lm_filter_kind kind;
	size_t klen, vlen, total;
	int idx = 0, err;

	if (why && why_cap)
		why[0] = '\0';
	if (!len)
		return 0;
	if (memchr(arg, '\0', len))
		return lm_filter_fail(why, why_cap, "bad filter: NUL byte in the query");
	total = (size_t)f->query_bytes + (f->arg_cnt ? 1 : 0) + len;
	if (total > LM_FILTER_MAX_QUERY_BYTES)
		return lm_filter_fail(why, why_cap, "bad filter: query longer than %d bytes",
				      LM_FILTER_MAX_QUERY_BYTES);
	f->query_bytes = (uint16_t)total;
	f->arg_cnt++;

	eq = memchr(arg, '=', len);
	klen = eq ? (size_t)(eq - arg) : len;
	v = eq ? eq + 1 : arg + len;
	vlen = (size_t)(arg + len - v);

	if (lm_filter_is_key(arg, klen, "token"))
		return 0;
	if (lm_filter_is_key(arg, klen, "since"))
		return lm_filter_parse_since(f, v, vlen, why, why_cap);
	if (lm_filter_is_key(arg, klen, "instance"))
		return lm_filter_parse_instance(f, v, vlen, why, why_cap);

	kind = lm_filter_lookup(arg, klen, &idx);
	switch (kind) {
	case LM_FILTER_K_UNKNOWN:
		lm_filter_show(shown, arg, klen);
		return lm_filter_fail(why, why_cap, "bad filter: unknown key '%s'", shown);
	case LM_FILTER_K_TYPE:
		key = "type";
		break;
	case LM_FILTER_K_EXIT:
		key = "exit";
		break;
	case LM_FILTER_K_STR:
		key = lm_filter_skey_names[idx];
		break;
	case LM_FILTER_K_NUM:
		key = lm_filter_nkey_names[idx];
		break;
	}

	/* "k", "k=", "k=a,,b" and "k=a," all hold an empty value */
	for (;;) {
		const char *comma = memchr(v, ',', vlen);
		size_t n = comma ? (size_t)(comma - v) : vlen;

		end = v + n;
		if (!n)
			return lm_filter_fail(why, why_cap, "bad filter: %s: empty value", key);
		if (n > LM_FILTER_MAX_VALUE_BYTES)
			return lm_filter_fail(why, why_cap,
					      "bad filter: %s: value longer than %d bytes", key,
					      LM_FILTER_MAX_VALUE_BYTES);
		err = lm_filter_add_value(f, kind, idx, key, v, n, why, why_cap);
		if (err)
			return err;
		if (!comma)
			return 0;
		vlen -= n + 1;
		v = end + 1;
	}
}

int lm_filter_parse_query(struct lm_filter *f, const char *q, size_t len, char *why, size_t why_cap)
{
	/* one decoded argument: never longer than the raw query, which is at most this */
	char arg[LM_FILTER_MAX_QUERY_BYTES];
	char shown[4 * LM_FILTER_SHOW_BYTES + 4];
	size_t i = 0, n = 0;
	bool seen_eq = false;
	int err;

	if (why && why_cap)
		why[0] = '\0';
	if (len > LM_FILTER_MAX_QUERY_BYTES)
		return lm_filter_fail(why, why_cap, "bad filter: query longer than %d bytes",
				      LM_FILTER_MAX_QUERY_BYTES);
	/* lws 4.1 lib/roles/http/parsers.c lws_parse_urldecode(), for the URI args */
	while (i < len) {
		unsigned char c = (unsigned char)q[i];
		bool enc = false;

		if (c == '%') {
			int hi = i + 1 < len ? lm_filter_hexval((unsigned char)q[i + 1]) : -1;
			int lo = i + 2 < len ? lm_filter_hexval((unsigned char)q[i + 2]) : -1;

			if (hi < 0 || lo < 0) {
				lm_filter_show(shown, q + i, len - i < 3 ? len - i : 3);
				return lm_filter_fail(why, why_cap,
						      "bad filter: bad percent-escape '%s'", shown);
			}
			c = (unsigned char)(hi << 4 | lo);
			enc = true;
			if (!c)
				return lm_filter_fail(why, why_cap,
						      "bad filter: '%%00' (NUL) in the query");
			i += 3;
		} else {
			if (!c)
				return lm_filter_fail(why, why_cap,
						      "bad filter: NUL byte in the query");
			i++;
		}
		if (!enc && (c == '&' || c == ';')) {
			err = lm_filter_parse_arg(f, arg, n, why, why_cap);
			if (err)
				return err;
			n = 0;
			seen_eq = false;
			continue;
		}
		if (c == '=' && enc && !seen_eq)
			c = '_'; /* lws: an encoded '=' in the name part */
		if (c == '=' && !enc)
			seen_eq = true;
		if (c == '+' && !enc)
			c = ' ';
		arg[n++] = (char)c;
	}
	return lm_filter_parse_arg(f, arg, n, why, why_cap);
}

bool lm_filter_is_active(const struct lm_filter *f)
{
	int i;

	if (f->types || f->exit_nonzero)
		return true;
	for (i = 0; i < LM_FILTER_SKEY_CNT; i++)
		if (f->str_cnt[i])
			return true;
	for (i = 0; i < LM_FILTER_NKEY_CNT; i++)
		if (f->num_cnt[i])
			return true;
	return false;
}

static bool lm_filter_match_num(const struct lm_filter *f, int k, uint32_t v)
{
	unsigned i;

	if (!f->num_cnt[k])
		return true;
	for (i = 0; i < f->num_cnt[k]; i++)
		if (f->num[k][i] == v)
			return true;
	return false;
}

static bool lm_filter_match_glob(const struct lm_filter *f, int k, const char *s)
{
	unsigned i;

	if (!f->str_cnt[k])
		return true;
	if (!s)
		return false;
	for (i = 0; i < f->str_cnt[k]; i++)
		if (!fnmatch(f->pool + f->str[k][i].off, s, 0))
			return true;
	return false;
}

static bool lm_filter_match_container(const struct lm_filter *f, const char *id)
{
	unsigned i;
	size_t j;

	if (!f->str_cnt[LM_FILTER_CONTAINER])
		return true;
	if (!id)
		return false;
	for (i = 0; i < f->str_cnt[LM_FILTER_CONTAINER]; i++) {
		const struct lm_filter_str *s = &f->str[LM_FILTER_CONTAINER][i];
		const char *p = f->pool + s->off;

		/* id's NUL differs from any hex digit of p, so a short id stops the loop */
		for (j = 0; j < s->len; j++)
			if (lm_filter_lower(id[j]) != p[j])
				break;
		if (j == s->len)
			return true;
	}
	return false;
}

static bool lm_filter_match_args(const struct lm_filter *f, const char *args, uint32_t len)
{
	unsigned i;

	if (!f->str_cnt[LM_FILTER_ARGS])
		return true;
	if (!args)
		return false;
	for (i = 0; i < f->str_cnt[LM_FILTER_ARGS]; i++) {
		const struct lm_filter_str *s = &f->str[LM_FILTER_ARGS][i];

		if (memmem(args, len, f->pool + s->off, s->len))
			return true;
	}
	return false;
}

bool lm_filter_match(const struct lm_filter *f, const struct lm_filter_ev *e)
{
	/* cheapest tests first: a client filtering on type or pid skips the globs */
	if (f->types && (e->type >= 8 || !(f->types & (1u << e->type))))
		return false;
	if (f->exit_nonzero && !(e->type == LM_EV_EXIT && e->nonzero_exit))
		return false;
	if (!lm_filter_match_num(f, LM_FILTER_PID, e->pid) ||
	    !lm_filter_match_num(f, LM_FILTER_PPID, e->ppid) ||
	    !lm_filter_match_num(f, LM_FILTER_UID, e->uid))
		return false;
	if (!lm_filter_match_container(f, e->container))
		return false;
	if (!lm_filter_match_glob(f, LM_FILTER_COMM, e->comm) ||
	    !lm_filter_match_glob(f, LM_FILTER_CGROUP, e->cgroup))
		return false;
	if (e->type != LM_EV_EXEC && lm_filter_has_program(f))
		return e->program_matched;
	return lm_filter_match_program(f, e);
}

bool lm_filter_has_program(const struct lm_filter *f)
{
	return f->str_cnt[LM_FILTER_EXE] || f->str_cnt[LM_FILTER_ARGS];
}

bool lm_filter_match_program(const struct lm_filter *f, const struct lm_filter_ev *e)
{
	return lm_filter_match_glob(f, LM_FILTER_EXE, e->exe) &&
	       lm_filter_match_args(f, e->args, e->args_len);
}

/* Appends to buf; false once it no longer fits (with its NUL). */
struct lm_filter_out {
	char *buf;
	size_t cap, len;
	bool full;
};

static void lm_filter_put(struct lm_filter_out *o, const char *s, size_t n)
{
	if (o->full || o->len + n + 1 > o->cap) {
		o->full = true;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

/* Bytes a formatted value keeps as is: RFC 3986 unreserved plus a few that read well in globs. */
static bool lm_filter_is_plain(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("-._~*/:@!$()", c));
}

static void lm_filter_put_encoded(struct lm_filter_out *o, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char e[3] = { '%', hex[c >> 4], hex[c & 15] };

		if (lm_filter_is_plain(c))
			lm_filter_put(o, (const char *)&s[i], 1);
		else
			lm_filter_put(o, e, 3);
	}
}

/* "key=" for the first key, "&key=" after it, "," between values */
static void lm_filter_put_key(struct lm_filter_out *o, const char *key, unsigned i)
{
	if (i) {
		lm_filter_put(o, ",", 1);
		return;
	}
	if (o->len)
		lm_filter_put(o, "&", 1);
	lm_filter_put(o, key, strlen(key));
	lm_filter_put(o, "=", 1);
}

static void lm_filter_put_str(struct lm_filter_out *o, const struct lm_filter *f, int k)
{
	unsigned i;

	for (i = 0; i < f->str_cnt[k]; i++) {
		lm_filter_put_key(o, lm_filter_skey_names[k], i);
		lm_filter_put_encoded(o, f->pool + f->str[k][i].off, f->str[k][i].len);
	}
}

static void lm_filter_put_num(struct lm_filter_out *o, const struct lm_filter *f, int k)
{
	char num[16];
	unsigned i;

	for (i = 0; i < f->num_cnt[k]; i++) {
		int n = snprintf(num, sizeof(num), "%u", f->num[k][i]);

		lm_filter_put_key(o, lm_filter_nkey_names[k], i);
		lm_filter_put(o, num, (size_t)n);
	}
}

int lm_filter_format(const struct lm_filter *f, char *buf, size_t cap)
{
	struct lm_filter_out o = { .buf = buf, .cap = cap };
	unsigned i = 0;
	int t;

	for (t = 1; t < LM_EV_EVENT_CNT; t++)
		if (f->types & (1u << t)) {
			lm_filter_put_key(&o, "type", i++);
			lm_filter_put(&o, lm_filter_type_names[t], strlen(lm_filter_type_names[t]));
		}
	lm_filter_put_str(&o, f, LM_FILTER_COMM);
	lm_filter_put_str(&o, f, LM_FILTER_EXE);
	lm_filter_put_num(&o, f, LM_FILTER_PID);
	lm_filter_put_num(&o, f, LM_FILTER_PPID);
	lm_filter_put_num(&o, f, LM_FILTER_UID);
	lm_filter_put_str(&o, f, LM_FILTER_CONTAINER);
	lm_filter_put_str(&o, f, LM_FILTER_CGROUP);
	if (f->exit_nonzero) {
		lm_filter_put_key(&o, "exit", 0);
		lm_filter_put(&o, "nonzero", 7);
	}
	lm_filter_put_str(&o, f, LM_FILTER_ARGS);
	if (o.full || !cap) {
		if (cap)
			buf[0] = '\0';
		return -ENOSPC;
	}
	buf[o.len] = '\0';
	return (int)o.len;
}
