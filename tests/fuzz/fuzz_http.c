// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for net/http.c, the ws thread's request helpers: lm_http_route,
 * lm_http_is_origin_allowed, lm_http_query_param and lm_http_is_token_ok on arbitrary
 * NUL-terminated strings, each placed to end at a PROT_NONE guard page (so a read past its
 * NUL faults) and checked against a plain reference of the documented rule. Built by
 * tests/fuzz.cmake with clang -fsanitize=fuzzer,address,undefined; single-threaded.
 *
 * Input layout: port u16 (little-endian), query_param cap selector u16, flags u8, then up to
 * five strings separated by NUL bytes: path/origin/query, name/extra origin, want, auth, query.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "net/http.h"

#define LM_FUZZ_NAME "fuzz_http"
#include "tests/fuzz/fuzz_guard.h"

/* libFuzzer's entry points (the -Wmissing-prototypes build wants declarations) */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FIELDS 5
#define FIELD_MAX 4096 /* longer fields are cut here */
#define OUT_MAX 8192
#define TOKEN_CAP 256 /* lm_http_is_token_ok decodes the query token into this many bytes */

static struct guard field_g[FIELDS], out_g, tok_g;

/* Copies s (with its NUL) so that the NUL is the last byte before the guard page. */
static const char *guard_str(const struct guard *g, const char *s, size_t len)
{
	char *p = guard_end(g, len + 1);

	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int i;

	(void)argc;
	(void)argv;
	for (i = 0; i < FIELDS; i++)
		guard_map(&field_g[i], FIELD_MAX + 1);
	guard_map(&out_g, OUT_MAX);
	guard_map(&tok_g, 2 * FIELD_MAX + 64);
	return 0;
}

/* --- references, written from the header's contract --- */

static enum lm_http_route ref_route(const char *path)
{
	static const struct {
		const char *path;
		enum lm_http_route r;
	} routes[] = {{"/", LM_HTTP_INDEX},
		      {"/healthz", LM_HTTP_HEALTHZ},
		      {"/metrics", LM_HTTP_METRICS},
		      {"/ws", LM_HTTP_WS}};
	const char *q = strchr(path, '?');
	size_t len = q ? (size_t)(q - path) : strlen(path), i;

	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strlen(routes[i].path) == len && !memcmp(path, routes[i].path, len))
			return routes[i].r;
	return LM_HTTP_NOT_FOUND;
}

/*
 * Reference origin canonicalisation, written apart from net/http.c: "scheme://host:port" with
 * scheme and host lower-cased and the scheme's default port filled in, or false when s is not
 * a plain http(s) origin (host a reg-name of [A-Za-z0-9-._~] or a bracketed IPv6 literal of
 * hex digits, ':' and '.'; port 1-65535 written without a leading zero).
 */
static bool ref_canon_origin(const char *s, char *out, size_t cap)
{
	const char *host, *p;
	char lhost[FIELD_MAX + 1];
	unsigned long port;
	size_t i, hlen;
	bool https;

	if (!strncasecmp(s, "https://", 8)) {
		https = true;
		host = s + 8;
	} else if (!strncasecmp(s, "http://", 7)) {
		https = false;
		host = s + 7;
	} else {
		return false;
	}
	p = host;
	if (*p == '[') {
		p++;
		while (*p && *p != ']' && (isxdigit((unsigned char)*p) || *p == ':' || *p == '.'))
			p++;
		if (*p != ']' || p == host + 1)
			return false;
		p++;
	} else {
		while (isalnum((unsigned char)*p) || (*p && strchr("-._~", *p)))
			p++;
		if (p == host)
			return false;
	}
	hlen = (size_t)(p - host);
	if (hlen > FIELD_MAX)
		return false;
	for (i = 0; i < hlen; i++)
		lhost[i] = (char)tolower((unsigned char)host[i]);
	lhost[hlen] = '\0';
	if (!*p) {
		port = https ? 443 : 80;
	} else {
		char *end;

		if (*p != ':' || p[1] < '1' || p[1] > '9' || strlen(p + 1) > 5)
			return false;
		port = strtoul(p + 1, &end, 10);
		if (*end || port > 65535)
			return false;
	}
	snprintf(out, cap, "%s://%s:%lu", https ? "https" : "http", lhost, port);
	return true;
}

static bool ref_origin(const char *origin, uint16_t port, const char *const *extra, size_t n)
{
	static const char *const hosts[] = {"127.0.0.1", "localhost", "[::1]"};
	char got[FIELD_MAX + 32], want[FIELD_MAX + 32];
	bool canon;
	size_t i;

	if (!origin || !*origin)
		return true;
	canon = ref_canon_origin(origin, got, sizeof(got));
	for (i = 0; i < n; i++) {
		if (!strcmp(origin, extra[i]))
			return true;
		if (canon && ref_canon_origin(extra[i], want, sizeof(want)) && !strcmp(got, want))
			return true;
	}
	if (!canon)
		return false;
	for (i = 0; i < 3; i++) {
		snprintf(want, sizeof(want), "http://%s:%u", hosts[i], port);
		if (!strcmp(got, want))
			return true;
	}
	return false;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * The first "name=value" among the '&'-separated parameters, value percent-decoded ('+' is a
 * space). Returns the decoded length into out (OUT_MAX bytes), -ENOENT, or -EINVAL for a bad
 * %-escape or a decoded NUL. No cap: the caller compares lengths.
 */
static int ref_query(const char *query, const char *name, char *out)
{
	size_t name_len = strlen(name);
	const char *seg = query;

	while (seg) {
		const char *end = strchr(seg, '&'), *eq;
		size_t seg_len = end ? (size_t)(end - seg) : strlen(seg), n = 0;

		eq = memchr(seg, '=', seg_len);
		if (eq && (size_t)(eq - seg) == name_len && !memcmp(seg, name, name_len)) {
			const char *v = eq + 1, *vend = seg + seg_len;

			while (v < vend) {
				char c = *v++;

				if (c == '%') {
					int hi = v < vend ? hexval(v[0]) : -1;
					int lo = v + 1 < vend ? hexval(v[1]) : -1;

					if (hi < 0 || lo < 0 || !(hi | lo))
						return -EINVAL;
					c = (char)(hi << 4 | lo);
					v += 2;
				} else if (c == '+') {
					c = ' ';
				}
				out[n++] = c;
			}
			out[n] = '\0';
			return (int)n;
		}
		seg = end ? end + 1 : NULL;
	}
	return -ENOENT;
}

static bool ref_token(const char *want, size_t want_len, const char *auth, const char *query)
{
	static char got[OUT_MAX];
	int n;

	if (!want_len)
		return true;
	if (auth && !strncmp(auth, "Bearer ", 7) && strlen(auth + 7) == want_len &&
	    !memcmp(auth + 7, want, want_len))
		return true;
	if (!query)
		return false;
	n = ref_query(query, "token", got);
	return n >= 0 && n < TOKEN_CAP && (size_t)n == want_len && !memcmp(got, want, want_len);
}

/* --- the properties --- */

static void fuzz_query(const char *query, const char *name, size_t cap)
{
	static char ref[OUT_MAX];
	char *out = guard_end(&out_g, cap);
	int r, want;

	want = ref_query(query, name, ref);
	if (cap)
		memset(out, 0x5a, cap);
	r = lm_http_query_param(query, name, out, cap);
	if (r >= 0) {
		check((size_t)r < cap, "query_param returned %d with cap %zu", r, cap);
		check(out[r] == '\0' && strlen(out) == (size_t)r,
		      "output of %d bytes not NUL-terminated there", r);
		check(want == r && !memcmp(out, ref, (size_t)r),
		      "query \"%s\" name \"%s\": got \"%s\" (%d), reference %d", query, name, out,
		      r, want);
		return;
	}
	check(r == -ENOENT || r == -ENOSPC || r == -EINVAL, "query_param returned %d", r);
	if (!cap)
		return; /* no room at all: any of the errors will do (and nothing was written) */
	if (want == -ENOENT)
		check(r == -ENOENT, "query \"%s\" name \"%s\": %d, reference: absent", query, name,
		      r);
	else if (want == -EINVAL)
		/* which of two problems is reported first is not part of the contract */
		check(r == -EINVAL || r == -ENOSPC,
		      "query \"%s\" name \"%s\": %d, reference: bad "
		      "escape",
		      query, name, r);
	else
		check(r == -ENOSPC && (size_t)want >= cap,
		      "query \"%s\" name \"%s\": %d with cap %zu, reference value of %d bytes",
		      query, name, r, cap, want);
}

static void fuzz_token(const char *want_s, size_t want_len, const char *auth, const char *query)
{
	/* want has no NUL after it: only want_len bytes are the caller's */
	char *want = guard_end(&tok_g, want_len ? want_len : 1);
	char *line = NULL;
	bool got, ref;
	size_t i, o;

	memcpy(want, want_s, want_len);
	got = lm_http_is_token_ok(want, want_len, auth, query);
	ref = ref_token(want, want_len, auth, query);
	check(got == ref, "token_ok(\"%.*s\", auth \"%s\", query \"%s\") = %d, reference %d",
	      (int)want_len, want, auth ? auth : "(null)", query ? query : "(null)", got, ref);
	check(lm_http_is_token_ok(want, want_len, NULL, NULL) == !want_len,
	      "no credentials accepted for a token of %zu bytes", want_len);
	if (!want_len || memchr(want, '\0', want_len))
		return;

	/* the right token in the header and in the query (percent-encoded) is accepted... */
	line = malloc(3 * want_len + 16);
	if (!line)
		abort();
	o = (size_t)sprintf(line, "Bearer ");
	memcpy(line + o, want, want_len);
	line[o + want_len] = '\0';
	check(lm_http_is_token_ok(want, want_len, line, NULL), "right bearer refused");
	/* ... one that differs in its last byte, or in length, is not */
	line[o + want_len - 1] ^= 0x01;
	check(!lm_http_is_token_ok(want, want_len, line, NULL), "bearer with last byte flipped");
	line[o + want_len - 1] ^= 0x01;
	line[o + want_len - 1] = '\0';
	check(!lm_http_is_token_ok(want, want_len, line, NULL), "bearer one byte short");
	line[o + want_len - 1] = want[want_len - 1];
	line[o + want_len] = 'x';
	line[o + want_len + 1] = '\0';
	check(!lm_http_is_token_ok(want, want_len, line, NULL), "bearer one byte long");

	o = (size_t)sprintf(line, "token=");
	for (i = 0; i < want_len; i++)
		o += (size_t)sprintf(line + o, "%%%02X", (unsigned char)want[i]);
	check(lm_http_is_token_ok(want, want_len, NULL, line) == (want_len < TOKEN_CAP),
	      "percent-encoded query token of %zu bytes", want_len);
	line[o - 1] = line[o - 1] == '0' ? '1' : '0'; /* the last byte's low nibble */
	check(!lm_http_is_token_ok(want, want_len, NULL, line),
	      "query token with last byte changed accepted");
	free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *f[FIELDS] = {NULL}, *extra[2];
	size_t flen[FIELDS] = {0}, nf = 0, i, cap, nextra;
	uint16_t port, cap_sel;
	uint8_t flags;
	const char *p, *end;

	if (size < 5)
		return 0;
	port = (uint16_t)(data[0] | data[1] << 8);
	cap_sel = (uint16_t)(data[2] | data[3] << 8);
	flags = data[4];
	p = (const char *)data + 5;
	end = (const char *)data + size;
	while (nf < FIELDS && p <= end) {
		const char *z = memchr(p, '\0', (size_t)(end - p));
		size_t len = z ? (size_t)(z - p) : (size_t)(end - p);

		if (len > FIELD_MAX)
			len = FIELD_MAX;
		f[nf] = guard_str(&field_g[nf], p, len);
		flen[nf++] = len;
		if (!z)
			break;
		p = z + 1;
	}
	for (; nf < FIELDS; nf++) {
		f[nf] = guard_str(&field_g[nf], "", 0);
		flen[nf] = 0;
	}

	check(lm_http_route(NULL) == LM_HTTP_NOT_FOUND, "route(NULL)");
	for (i = 0; i < FIELDS; i++)
		check(lm_http_route(f[i]) == ref_route(f[i]), "route(\"%s\") = %d, reference %d",
		      f[i], lm_http_route(f[i]), ref_route(f[i]));

	extra[0] = f[1];
	extra[1] = f[2];
	nextra = flags % 3;
	for (i = 0; i < FIELDS; i++)
		check(lm_http_is_origin_allowed(f[i], port, extra, nextra) ==
			  ref_origin(f[i], port, extra, nextra),
		      "origin \"%s\" port %u with %zu extra: %d", f[i], port, nextra,
		      lm_http_is_origin_allowed(f[i], port, extra, nextra));
	check(lm_http_is_origin_allowed(NULL, port, extra, nextra), "no Origin refused");

	cap = cap_sel & 0x8000 ? OUT_MAX : cap_sel % 1100;
	fuzz_query(f[0], f[1], cap);
	fuzz_query(f[0], "token", cap);
	fuzz_query(f[4], "token", cap % 300);

	/* want: the third field, or a prefix of it (flags say how much) */
	fuzz_token(f[2], flags & 0x80 ? flen[2] / 2 : flen[2], flags & 0x08 ? NULL : f[3],
		   flags & 0x10 ? NULL : f[4]);
	return 0;
}
