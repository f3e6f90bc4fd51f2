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

int lm_json_event(char *buf, size_t cap, uint64_t seq, uint64_t unix_ns,
		  const struct lm_event *e)
{
	struct lm_json_out o = { .p = buf, .end = buf + cap, .ok = true };
	struct lm_wstatus ws = { 0 };
	const char *type = lm_json_type_name(e->type);
	bool comm_ok;

	if (e->type == LM_EV_EXIT)
		lm_wstatus_decode(e->exit_status, &ws);
	lm_json_lit(&o, "{\"seq\":");
	lm_json_u64(&o, seq);
	lm_json_lit(&o, ",\"timestamp\":");
	lm_json_u64(&o, unix_ns);
	lm_json_lit(&o, ",\"type\":");
	lm_json_put(&o, type, strlen(type));
	lm_json_lit(&o, ",\"pid\":");
	lm_json_u64(&o, e->pid);
	lm_json_lit(&o, ",\"tid\":");
	lm_json_u64(&o, e->tid);
	lm_json_lit(&o, ",\"ppid\":");
	lm_json_u64(&o, e->ppid);
	lm_json_lit(&o, ",\"uid\":");
	lm_json_u64(&o, e->uid);
	lm_json_lit(&o, ",\"comm\":\"");
	comm_ok = lm_json_str_body(&o, (const unsigned char *)e->comm, sizeof(e->comm));
	lm_json_lit(&o, "\"");
	if (!comm_ok) {
		lm_json_lit(&o, ",\"comm_hex\":\"");
		lm_json_hexstr(&o, (const unsigned char *)e->comm, sizeof(e->comm));
		lm_json_lit(&o, "\"");
	}
	lm_json_lit(&o, ",\"exit_code\":");
	lm_json_u64(&o, ws.exit_code);
	lm_json_lit(&o, ",\"signal\":");
	lm_json_u64(&o, ws.signal);
	if (ws.core_dumped)
		lm_json_lit(&o, ",\"core_dumped\":true");
	else
		lm_json_lit(&o, ",\"core_dumped\":false");
	lm_json_lit(&o, ",\"target_pid\":");
	lm_json_u64(&o, e->target_pid);
	if (e->type == LM_EV_OOM) {
		lm_json_lit(&o, ",\"total_vm_kb\":");
		lm_json_u64(&o, e->total_vm_kb);
		lm_json_lit(&o, ",\"anon_rss_kb\":");
		lm_json_u64(&o, e->anon_rss_kb);
		lm_json_lit(&o, ",\"file_rss_kb\":");
		lm_json_u64(&o, e->file_rss_kb);
		lm_json_lit(&o, ",\"shmem_rss_kb\":");
		lm_json_u64(&o, e->shmem_rss_kb);
		lm_json_lit(&o, ",\"pgtables_kb\":");
		lm_json_u64(&o, e->pgtables_kb);
	}
	lm_json_lit(&o, "}\n");
	if (!o.ok)
		return -ENOSPC;
	return (int)(o.p - buf);
}

int lm_json_lost(char *buf, size_t cap, uint64_t first_seq, uint64_t last_seq, uint64_t cnt,
		 const char *reason)
{
	struct lm_json_out o = { .p = buf, .end = buf + cap, .ok = true };

	lm_json_lit(&o, "{\"type\":\"LOST\",\"first_seq\":");
	lm_json_u64(&o, first_seq);
	lm_json_lit(&o, ",\"last_seq\":");
	lm_json_u64(&o, last_seq);
	lm_json_lit(&o, ",\"count\":");
	lm_json_u64(&o, cnt);
	lm_json_lit(&o, ",\"reason\":\"");
	lm_json_put(&o, reason, strlen(reason));
	lm_json_lit(&o, "\"}\n");
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
