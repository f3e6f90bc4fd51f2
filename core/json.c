// SPDX-License-Identifier: GPL-2.0
/*
 * JSON writer: one event -> one line of JSON, written straight into the caller's buffer.
 * Runs on the serializer thread (and in tests). Kernel strings are byte arrays bounded by
 * their size: valid UTF-8 passes through, controls (C0, DEL, C1) and U+2028/U+2029 are
 * escaped, invalid bytes become U+FFFD and the raw bytes are added as hex, so nothing is
 * lost and strict parsers accept it.
 */
#include "core/json.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "core/wstatus.h"

/* A bounded cursor over the output; `ok` turns false on the first overflow. */
struct lm_json_out {
	char *p;
	char *end;
	bool ok;
};

static void lm_json_put(struct lm_json_out *o, const char *s, size_t n)
{
	if (!o->ok || (size_t)(o->end - o->p) < n) {
		o->ok = false;
		return;
	}
	memcpy(o->p, s, n);
	o->p += n;
}

#define lm_json_lit(o, s) lm_json_put(o, s, sizeof(s) - 1)

static void lm_json_u64(struct lm_json_out *o, uint64_t v)
{
	char tmp[20];
	int i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	lm_json_put(o, tmp + i, sizeof(tmp) - i);
}

/* Length of the valid UTF-8 sequence at s (RFC 3629), or 0 if the bytes are not one. */
static size_t lm_json_utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		unsigned char lo = c == 0xe0 ? 0xa0 : 0x80;
		unsigned char hi = c == 0xed ? 0x9f : 0xbf; /* no UTF-16 surrogates */

		return n >= 3 && s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 ? 3 : 0;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		unsigned char lo = c == 0xf0 ? 0x90 : 0x80;
		unsigned char hi = c == 0xf4 ? 0x8f : 0xbf; /* nothing above U+10FFFF */

		return n >= 4 && s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 &&
		       (s[3] & 0xc0) == 0x80 ? 4 : 0;
	}
	return 0;
}

static const char lm_json_hex[] = "0123456789abcdef";

/* Printable ASCII that needs no escape: copied in runs. */
static inline bool lm_json_is_plain(unsigned char c)
{
	return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
}

/* Writes "\\uXXXX" for code point cp (below 0x10000). */
static void lm_json_put_u(struct lm_json_out *o, unsigned int cp)
{
	char esc[6] = { '\\', 'u', lm_json_hex[cp >> 12], lm_json_hex[(cp >> 8) & 15],
			lm_json_hex[(cp >> 4) & 15], lm_json_hex[cp & 15] };

	lm_json_put(o, esc, 6);
}

/*
 * Writes the string body; returns false if any byte had to be replaced. Escaped as \\uXXXX:
 * C0 controls and DEL, C1 controls U+0080-U+009F (U+009B is a terminal CSI) and U+2028/U+2029
 * (line breaks to JavaScript and many line-based readers).
 */
static bool lm_json_str_body(struct lm_json_out *o, const unsigned char *s, size_t n)
{
	bool valid = true;
	size_t i = 0;

	n = strnlen((const char *)s, n); /* bounded by sizeof; a NUL ends the string */
	while (i < n) {
		unsigned char c;
		size_t len, run = i;

		while (run < n && lm_json_is_plain(s[run]))
			run++;
		if (run > i) {
			lm_json_put(o, (const char *)s + i, run - i);
			i = run;
			if (i == n)
				break;
		}
		c = s[i];
		if (c == '"' || c == '\\') {
			char esc[2] = { '\\', (char)c };

			lm_json_put(o, esc, 2);
			i++;
			continue;
		}
		if (c < 0x80) {
			/* escape controls so terminals and line-based readers stay safe */
			lm_json_put_u(o, c);
			i++;
			continue;
		}
		len = lm_json_utf8_len(s + i, n - i);
		if (!len) {
			lm_json_lit(o, "\\ufffd");
			valid = false;
			i++;
			continue;
		}
		if (len == 2 && c == 0xc2 && s[i + 1] <= 0x9f)
			lm_json_put_u(o, s[i + 1]); /* C1 control: U+0080..U+009F */
		else if (len == 3 && c == 0xe2 && s[i + 1] == 0x80 && (s[i + 2] & 0xfe) == 0xa8)
			lm_json_put_u(o, 0x2000 | (s[i + 2] & 0x3f)); /* U+2028, U+2029 */
		else
			lm_json_put(o, (const char *)s + i, len);
		i += len;
	}
	return valid;
}

int lm_json_str(char *buf, size_t cap, const char *s, size_t len, int *valid)
{
	struct lm_json_out o = { .p = buf, .end = buf + cap, .ok = true };
	bool v = lm_json_str_body(&o, (const unsigned char *)s, len);

	if (!o.ok)
		return -ENOSPC;
	if (valid)
		*valid = v;
	return (int)(o.p - buf);
}

static void lm_json_hexstr(struct lm_json_out *o, const unsigned char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n && s[i]; i++) {
		char h[2] = { lm_json_hex[s[i] >> 4], lm_json_hex[s[i] & 15] };

		lm_json_put(o, h, 2);
	}
}

static const char *lm_json_type_name(uint16_t type)
{
	switch (type) {
	case LM_EV_EXEC:
		return "\"EXEC\"";
	case LM_EV_EXIT:
		return "\"EXIT\"";
	case LM_EV_OOM:
		return "\"OOM_KILL\"";
	default:
		return "\"UNKNOWN\"";
	}
}

/* True if every byte of s[0..n) is part of a valid UTF-8 sequence (no U+FFFD needed). */
static bool lm_json_is_utf8(const unsigned char *s, size_t n)
{
	size_t i = 0, len;

	while (i < n) {
		len = lm_json_utf8_len(s + i, n - i);
		if (!len)
			return false;
		i += len;
	}
	return true;
}

/*
 * Writes ,"name":"value" and, when value had invalid UTF-8, ,"name_hex":"..." with its raw
 * bytes. value holds no NUL (lengths come from the record).
 */
static void lm_json_str_field(struct lm_json_out *o, const char *name, const char *v, size_t n)
{
	bool ok;

	lm_json_lit(o, ",\"");
	lm_json_put(o, name, strlen(name));
	lm_json_lit(o, "\":\"");
	ok = lm_json_str_body(o, (const unsigned char *)v, n);
	lm_json_lit(o, "\"");
	if (ok)
		return;
	lm_json_lit(o, ",\"");
	lm_json_put(o, name, strlen(name));
	lm_json_lit(o, "_hex\":\"");
	lm_json_hexstr(o, (const unsigned char *)v, n);
	lm_json_lit(o, "\"");
}

static void lm_json_key(struct lm_json_out *o, uint32_t pid, uint64_t start_ns)
{
	lm_json_lit(o, "\"");
	lm_json_u64(o, pid);
	lm_json_lit(o, ":");
	lm_json_u64(o, start_ns);
	lm_json_lit(o, "\"");
}

/* The next argument of the NUL-separated area after *pos; false at the end. */
static bool lm_json_next_arg(const struct lm_rec_str *a, uint32_t *pos, const char **p,
			     size_t *n)
{
	const char *nul;

	if (*pos >= a->len)
		return false;
	*p = a->p + *pos;
	nul = memchr(*p, '\0', a->len - *pos);
	*n = nul ? (size_t)(nul - *p) : a->len - *pos;
	*pos += (uint32_t)*n + 1;
	return true;
}

static void lm_json_args(struct lm_json_out *o, const struct lm_rec_str *a)
{
	uint32_t pos = 0, idx = 0;
	bool any_bad = false, first = true;
	const char *p;
	size_t n;

	lm_json_lit(o, ",\"args\":[");
	while (lm_json_next_arg(a, &pos, &p, &n)) {
		if (!first)
			lm_json_lit(o, ",");
		first = false;
		lm_json_lit(o, "\"");
		any_bad |= !lm_json_str_body(o, (const unsigned char *)p, n);
		lm_json_lit(o, "\"");
	}
	lm_json_lit(o, "]");
	if (!any_bad)
		return;
	/* a hex twin for each argument that needed U+FFFD, keyed by its index */
	lm_json_lit(o, ",\"args_hex\":{");
	pos = 0;
	first = true;
	while (lm_json_next_arg(a, &pos, &p, &n)) {
		if (!lm_json_is_utf8((const unsigned char *)p, n)) {
			if (!first)
				lm_json_lit(o, ",");
			first = false;
			lm_json_lit(o, "\"");
			lm_json_u64(o, idx);
			lm_json_lit(o, "\":\"");
			lm_json_hexstr(o, (const unsigned char *)p, n);
			lm_json_lit(o, "\"");
		}
		idx++;
	}
	lm_json_lit(o, "}");
}

static void lm_json_exec(struct lm_json_out *o, const struct lm_json_ev *ev)
{
	const struct lm_rec_view *v = ev->v;
	const struct lm_exec *e = v->exec;
	uint8_t f = v->c->flags;
	bool first = true;

	lm_json_str_field(o, "filename", v->filename.p, v->filename.len);
	if (!(f & LM_F_NO_EXE))
		lm_json_str_field(o, "exe", ev->exe, ev->exe_len);
	lm_json_args(o, &v->args);
	lm_json_lit(o, ",\"argc\":");
	lm_json_u64(o, e->argc);
	lm_json_str_field(o, "cwd", ev->cwd, ev->cwd_len);
	lm_json_lit(o, ",\"gid\":");
	lm_json_u64(o, v->c->aux);
	lm_json_lit(o, ",\"euid\":");
	lm_json_u64(o, e->euid);
	lm_json_str_field(o, "pcomm", v->pcomm.p, v->pcomm.len);
	/* an argument area that could not be read is cut to nothing */
	if (!(f & (LM_F_TRUNC_ARGS | LM_F_ARGS_FAULT | LM_F_TRUNC_FILENAME | LM_F_TRUNC_EXE |
		   LM_F_TRUNC_CWD)))
		return;
	lm_json_lit(o, ",\"truncated\":[");
	if (f & (LM_F_TRUNC_ARGS | LM_F_ARGS_FAULT)) {
		lm_json_lit(o, "\"args\"");
		first = false;
	}
	if (f & LM_F_TRUNC_FILENAME) {
		if (!first)
			lm_json_lit(o, ",");
		lm_json_lit(o, "\"filename\"");
		first = false;
	}
	if (f & LM_F_TRUNC_EXE) {
		if (!first)
			lm_json_lit(o, ",");
		lm_json_lit(o, "\"exe\"");
		first = false;
	}
	if (f & LM_F_TRUNC_CWD) {
		if (!first)
			lm_json_lit(o, ",");
		lm_json_lit(o, "\"cwd\"");
	}
	lm_json_lit(o, "]");
}

static void lm_json_exit(struct lm_json_out *o, const struct lm_json_ev *ev)
{
	const struct lm_rec_view *v = ev->v;
	uint64_t dur = v->c->ts_ns > v->c->start_ns ? v->c->ts_ns - v->c->start_ns : 0;

	lm_json_lit(o, ",\"duration_ns\":");
	lm_json_u64(o, dur);
	lm_json_lit(o, ",\"cpu_user_ns\":");
	lm_json_u64(o, v->exit->cpu_user_ns);
	lm_json_lit(o, ",\"cpu_sys_ns\":");
	lm_json_u64(o, v->exit->cpu_sys_ns);
	lm_json_lit(o, ",\"max_rss_kb\":");
	lm_json_u64(o, v->exit->max_rss_kb);
	if (v->c->flags & LM_F_OOM_KILLED)
		lm_json_lit(o, ",\"oom_killed\":true");
	else
		lm_json_lit(o, ",\"oom_killed\":false");
}

static void lm_json_oom(struct lm_json_out *o, const struct lm_json_ev *ev)
{
	const struct lm_rec_view *v = ev->v;
	const struct lm_oom *e = v->oom;
	int32_t adj = (int32_t)v->c->aux;

	lm_json_lit(o, ",\"total_vm_kb\":");
	lm_json_u64(o, e->total_vm_kb);
	lm_json_lit(o, ",\"anon_rss_kb\":");
	lm_json_u64(o, e->anon_rss_kb);
	lm_json_lit(o, ",\"file_rss_kb\":");
	lm_json_u64(o, e->file_rss_kb);
	lm_json_lit(o, ",\"shmem_rss_kb\":");
	lm_json_u64(o, e->shmem_rss_kb);
	lm_json_lit(o, ",\"pgtables_kb\":");
	lm_json_u64(o, e->pgtables_kb);
	if (!(v->c->flags & LM_F_OOM_VICTIM))
		return;
	if (ev->memcg)
		lm_json_str_field(o, "memcg", ev->memcg, ev->memcg_len);
	lm_json_lit(o, ",\"oom_score_adj\":");
	if (adj < 0) {
		lm_json_lit(o, "-");
		lm_json_u64(o, (uint64_t)-(int64_t)adj);
	} else {
		lm_json_u64(o, (uint64_t)adj);
	}
	if (v->c->flags & LM_F_OOM_KNOWN) {
		if (v->c->flags & LM_F_OOM_MEMCG)
			lm_json_lit(o, ",\"constraint\":\"memcg\"");
		else
			lm_json_lit(o, ",\"constraint\":\"global\"");
	}
}

int lm_json_event(char *buf, size_t cap, const struct lm_json_ev *ev)
{
	struct lm_json_out o = { .p = buf, .end = buf + cap, .ok = true };
	const struct lm_rec_view *v = ev->v;
	const struct lm_common *c = v->c;
	struct lm_wstatus ws = { 0 };
	const char *type = lm_json_type_name(c->type);
	bool victim = c->type != LM_EV_OOM || (c->flags & LM_F_OOM_VICTIM);

	if (c->type == LM_EV_EXIT)
		lm_wstatus_decode(c->aux, &ws);
	lm_json_lit(&o, "{\"seq\":");
	lm_json_u64(&o, ev->seq);
	if (ev->instance) {
		lm_json_lit(&o, ",\"instance\":\"");
		lm_json_put(&o, ev->instance, strlen(ev->instance));
		lm_json_lit(&o, "\"");
	}
	lm_json_lit(&o, ",\"timestamp\":");
	lm_json_u64(&o, ev->unix_ns);
	lm_json_lit(&o, ",\"type\":");
	lm_json_put(&o, type, strlen(type));
	lm_json_lit(&o, ",\"pid\":");
	lm_json_u64(&o, c->pid);
	lm_json_lit(&o, ",\"tid\":");
	lm_json_u64(&o, c->tid);
	lm_json_lit(&o, ",\"ppid\":");
	lm_json_u64(&o, c->ppid);
	lm_json_lit(&o, ",\"uid\":");
	lm_json_u64(&o, c->uid);
	lm_json_str_field(&o, "comm", v->comm.p, v->comm.len);
	lm_json_lit(&o, ",\"exit_code\":");
	lm_json_u64(&o, ws.exit_code);
	lm_json_lit(&o, ",\"signal\":");
	lm_json_u64(&o, ws.signal);
	if (ws.core_dumped)
		lm_json_lit(&o, ",\"core_dumped\":true");
	else
		lm_json_lit(&o, ",\"core_dumped\":false");
	lm_json_lit(&o, ",\"target_pid\":");
	lm_json_u64(&o, c->type == LM_EV_OOM ? c->pid : 0);
	/* an OOM victim out of reach (kernels before 6.8) has only its pid */
	if (victim) {
		lm_json_lit(&o, ",\"key\":");
		lm_json_key(&o, c->pid, c->start_ns);
		lm_json_lit(&o, ",\"parent_key\":");
		lm_json_key(&o, c->ppid, c->pstart_ns);
		lm_json_lit(&o, ",\"cgroup_id\":");
		lm_json_u64(&o, c->cgroup_id);
		if (ev->cgroup)
			lm_json_str_field(&o, "cgroup", ev->cgroup, ev->cgroup_len);
		if (ev->container_id) {
			lm_json_lit(&o, ",\"container_id\":\"");
			lm_json_put(&o, ev->container_id, strlen(ev->container_id));
			lm_json_lit(&o, "\"");
		}
		if (ev->pod_uid) {
			lm_json_lit(&o, ",\"pod_uid\":\"");
			lm_json_put(&o, ev->pod_uid, strlen(ev->pod_uid));
			lm_json_lit(&o, "\"");
		}
		if (ev->unit)
			lm_json_str_field(&o, "unit", ev->unit, strlen(ev->unit));
	}
	if (c->type == LM_EV_EXEC)
		lm_json_exec(&o, ev);
	else if (c->type == LM_EV_EXIT)
		lm_json_exit(&o, ev);
	else if (c->type == LM_EV_OOM)
		lm_json_oom(&o, ev);
	lm_json_lit(&o, "}\n");
	if (!o.ok)
		return -ENOSPC;
	return (int)(o.p - buf);
}

size_t lm_json_event_max(uint32_t max_args)
{
	/*
	 * A byte of a string costs at most 8 (a 6-byte escape and 2 hex digits); an argument
	 * adds quotes, a comma and its hex key (~12), and can be a single NUL byte. Paths:
	 * filename, exe, cwd, cgroup, memcg; names: comm, pcomm, unit; the rest < 2 KiB.
	 */
	return 2048 + (size_t)max_args * 20 + 5 * (size_t)LM_PATH_MAX * 8 +
	       2 * LM_COMM_LEN * 8 + 256 * 8;
}

/* A LOST notice for seqs first..last; `matched` written unless NULL. */
static int lm_json_lost_range(char *buf, size_t cap, uint64_t first_seq, uint64_t last_seq,
			      uint64_t cnt, const uint64_t *matched, const char *reason)
{
	struct lm_json_out o = { .p = buf, .end = buf + cap, .ok = true };

	lm_json_lit(&o, "{\"type\":\"LOST\",\"first_seq\":");
	lm_json_u64(&o, first_seq);
	lm_json_lit(&o, ",\"last_seq\":");
	lm_json_u64(&o, last_seq);
	lm_json_lit(&o, ",\"count\":");
	lm_json_u64(&o, cnt);
	if (matched) {
		lm_json_lit(&o, ",\"matched\":");
		lm_json_u64(&o, *matched);
	}
	lm_json_lit(&o, ",\"reason\":\"");
	lm_json_put(&o, reason, strlen(reason));
	lm_json_lit(&o, "\"}\n");
	if (!o.ok)
		return -ENOSPC;
	return (int)(o.p - buf);
}

int lm_json_lost(char *buf, size_t cap, uint64_t first_seq, uint64_t last_seq, uint64_t cnt,
		 const char *reason)
{
	return lm_json_lost_range(buf, cap, first_seq, last_seq, cnt, NULL, reason);
}

int lm_json_lost_matched(char *buf, size_t cap, uint64_t first_seq, uint64_t last_seq,
			 uint64_t cnt, uint64_t matched, const char *reason)
{
	return lm_json_lost_range(buf, cap, first_seq, last_seq, cnt, &matched, reason);
}

/* A string field from lifemon's own bytes: escaped all the same, never trusted. */
static void lm_json_field(struct lm_json_out *o, const char *key, const char *val)
{
	int valid, n;

	lm_json_put(o, key, strlen(key));
	lm_json_lit(o, "\"");
	if (o->ok) {
		n = lm_json_str(o->p, (size_t)(o->end - o->p), val, strlen(val), &valid);
		if (n < 0)
			o->ok = false;
		else
			o->p += n;
	}
	lm_json_lit(o, "\"");
}

int lm_json_hello(char *buf, size_t cap, const char *instance, const char *version,
		  uint64_t first_seq, uint64_t next_seq, const char *filter)
{
	struct lm_json_out o = { .p = buf, .end = buf + cap, .ok = true };

	lm_json_field(&o, "{\"type\":\"HELLO\",\"instance\":", instance);
	lm_json_field(&o, ",\"version\":", version);
	lm_json_lit(&o, ",\"first_seq\":");
	lm_json_u64(&o, first_seq);
	lm_json_lit(&o, ",\"next_seq\":");
	lm_json_u64(&o, next_seq);
	lm_json_field(&o, ",\"filter\":", filter);
	lm_json_lit(&o, "}\n");
	if (!o.ok)
		return -ENOSPC;
	return (int)(o.p - buf);
}

int lm_json_restarted(char *buf, size_t cap, const char *previous, uint64_t since)
{
	struct lm_json_out o = { .p = buf, .end = buf + cap, .ok = true };

	lm_json_field(&o, "{\"type\":\"LOST\",\"reason\":\"restarted\",\"previous_instance\":",
		      previous);
	lm_json_lit(&o, ",\"since\":");
	lm_json_u64(&o, since);
	lm_json_lit(&o, "}\n");
	if (!o.ok)
		return -ENOSPC;
	return (int)(o.p - buf);
}

int lm_json_kernel_lost(char *buf, size_t cap, uint64_t cnt, uint32_t cpu, uint64_t before_seq)
{
	struct lm_json_out o = { .p = buf, .end = buf + cap, .ok = true };

	lm_json_lit(&o, "{\"type\":\"LOST\",\"count\":");
	lm_json_u64(&o, cnt);
	lm_json_lit(&o, ",\"reason\":\"kernel_ring_full\",\"cpu\":");
	lm_json_u64(&o, cpu);
	lm_json_lit(&o, ",\"before_seq\":");
	lm_json_u64(&o, before_seq);
	lm_json_lit(&o, "}\n");
	if (!o.ok)
		return -ENOSPC;
	return (int)(o.p - buf);
}
