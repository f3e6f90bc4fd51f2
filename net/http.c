// SPDX-License-Identifier: GPL-2.0
/*
 * HTTP helpers used by the lm-ws thread: routing and the Origin rule. Pure functions of
 * their arguments so they can be tested and fuzzed without a socket.
 */
#include "net/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

enum lm_http_route lm_http_route(const char *path)
{
	size_t len;

	if (!path)
		return LM_HTTP_NOT_FOUND;
	len = strcspn(path, "?");
	if (len == 1 && path[0] == '/')
		return LM_HTTP_INDEX;
	if (len == 8 && !strncmp(path, "/healthz", 8))
		return LM_HTTP_HEALTHZ;
	if (len == 8 && !strncmp(path, "/metrics", 8))
		return LM_HTTP_METRICS;
	if (len == 3 && !strncmp(path, "/ws", 3))
		return LM_HTTP_WS;
	return LM_HTTP_NOT_FOUND;
}

/* A port as written in a URL or Host header: 1-5 digits, no leading zero, 1..65535; else -1. */
static long lm_http_parse_port(const char *s, size_t n)
{
	long v = 0;
	size_t i;

	if (!n || n > 5 || s[0] == '0')
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v <= 65535 ? v : -1;
}

/* Characters of a host name (RFC 3986 reg-name, without %-escapes and sub-delims). */
static bool lm_http_is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

/* host[:port] split; name is "[v6]" with its brackets or a reg-name; port -1 when absent. */
struct lm_http_authority {
	const char *name;
	size_t name_len;
	long port;
};

/* Splits the n bytes at s as host[:port]; false if they are anything else. */
static bool lm_http_split_authority(const char *s, size_t n, struct lm_http_authority *a)
{
	size_t i = 0;

	a->name = s;
	a->port = -1;
	if (n && s[0] == '[') {
		for (i = 1; i < n && s[i] != ']'; i++)
			if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
			      (s[i] >= 'A' && s[i] <= 'F') || s[i] == ':' || s[i] == '.'))
				return false;
		if (i == n || i == 1)
			return false;
		i++; /* past ']' */
	} else {
		while (i < n && lm_http_is_name_char(s[i]))
			i++;
		if (!i)
			return false;
	}
	a->name_len = i;
	if (i == n)
		return true;
	if (s[i] != ':')
		return false;
	a->port = lm_http_parse_port(s + i + 1, n - i - 1);
	return a->port > 0;
}

static bool lm_http_name_equal(const struct lm_http_authority *a, const char *name, size_t name_len)
{
	return a->name_len == name_len && !strncasecmp(a->name, name, name_len);
}

/* The names every server answers to: its loopback names. */
static const char *const lm_http_loopback[] = { "localhost", "127.0.0.1", "[::1]" };
#define LM_HTTP_LOOPBACK_CNT (sizeof(lm_http_loopback) / sizeof(lm_http_loopback[0]))

/* An Origin (RFC 6454 serialisation): http or https scheme, host, port with defaults applied. */
struct lm_http_origin {
	bool https;
	struct lm_http_authority a;	/* port: the default of the scheme when absent */
};

static bool lm_http_parse_origin(const char *s, struct lm_http_origin *o)
{
	size_t skip;

	if (!strncasecmp(s, "http://", 7)) {
		o->https = false;
		skip = 7;
	} else if (!strncasecmp(s, "https://", 8)) {
		o->https = true;
		skip = 8;
	} else {
		return false;
	}
	if (!lm_http_split_authority(s + skip, strlen(s + skip), &o->a))
		return false;
	if (o->a.port < 0)
		o->a.port = o->https ? 443 : 80;
	return true;
}

static bool lm_http_origin_equal(const struct lm_http_origin *a, const struct lm_http_origin *b)
{
	return a->https == b->https && a->a.port == b->a.port &&
	       lm_http_name_equal(&a->a, b->a.name, b->a.name_len);
}

bool lm_http_is_origin_allowed(const char *origin, uint16_t port, const char *const *extra,
			       size_t extra_cnt)
{
	struct lm_http_origin got, want;
	bool parsed;
	size_t i;

	if (!origin || !origin[0])
		return true;
	parsed = lm_http_parse_origin(origin, &got);
	for (i = 0; i < extra_cnt; i++) {
		/* an --allow-origin that is no plain origin still matches itself exactly */
		if (!strcmp(origin, extra[i]))
			return true;
		if (parsed && lm_http_parse_origin(extra[i], &want) &&
		    lm_http_origin_equal(&got, &want))
			return true;
	}
	if (!parsed || got.https || got.a.port != port)
		return false;
	for (i = 0; i < LM_HTTP_LOOPBACK_CNT; i++)
		if (lm_http_name_equal(&got.a, lm_http_loopback[i], strlen(lm_http_loopback[i])))
			return true;
	return false;
}

/* True if the listen address is 0.0.0.0 or :: (every address: no name of its own). */
static bool lm_http_is_wildcard(const char *listen_host)
{
	unsigned char addr[16];
	static const unsigned char zero[16];

	if (inet_pton(AF_INET, listen_host, addr) == 1)
		return !memcmp(addr, zero, 4);
	if (inet_pton(AF_INET6, listen_host, addr) == 1)
		return !memcmp(addr, zero, 16);
	return false;
}

bool lm_http_is_host_allowed(const char *host, const char *listen_host, uint16_t port,
			     const char *const *extra, size_t extra_cnt)
{
	struct lm_http_authority got, want;
	char own[72];
	size_t i;

	if (!host || !lm_http_split_authority(host, strlen(host), &got))
		return false;
	for (i = 0; i < extra_cnt; i++) {
		if (!lm_http_split_authority(extra[i], strlen(extra[i]), &want) ||
		    !lm_http_name_equal(&got, want.name, want.name_len))
			continue;
		/* NAME alone: with or without the listen port; NAME:PORT: exactly that port */
		if (want.port > 0 ? got.port == want.port : (got.port < 0 || got.port == port))
			return true;
	}
	if (got.port >= 0 && got.port != port)
		return false;
	for (i = 0; i < LM_HTTP_LOOPBACK_CNT; i++)
		if (lm_http_name_equal(&got, lm_http_loopback[i], strlen(lm_http_loopback[i])))
			return true;
	if (!listen_host || lm_http_is_wildcard(listen_host))
		return false;
	snprintf(own, sizeof(own), strchr(listen_host, ':') ? "[%s]" : "%s", listen_host);
	return lm_http_name_equal(&got, own, strlen(own));
}

bool lm_http_has_token(const char *list, const char *token, bool ignore_case)
{
	size_t want = strlen(token);

	while (list && *list) {
		size_t n;

		list += strspn(list, " \t,");
		n = strcspn(list, ",");
		while (n && (list[n - 1] == ' ' || list[n - 1] == '\t'))
			n--;
		if (n == want &&
		    !(ignore_case ? strncasecmp(list, token, n) : strncmp(list, token, n)))
			return true;
		list = strchr(list, ',');
	}
	return false;
}

bool lm_http_is_token_list(const char *list)
{
	if (!list)
		return false;
	for (;;) {
		size_t n;

		list += strspn(list, " \t");
		/* RFC 7230 tchar */
		n = strspn(list, "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
				 "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
		if (!n)
			return false; /* an empty element or a character outside tchar */
		list += n;
		list += strspn(list, " \t");
		if (!*list)
			return true;
		if (*list++ != ',')
			return false;
	}
}

static int lm_http_b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

bool lm_http_is_ws_key_valid(const char *key)
{
	size_t i;

	/* 16 bytes in base64: 22 characters, the last with 4 zero bits, then "==" */
	if (!key || strlen(key) != 24 || strcmp(key + 22, "=="))
		return false;
	for (i = 0; i < 22; i++)
		if (lm_http_b64_value(key[i]) < 0)
			return false;
	return !(lm_http_b64_value(key[21]) & 15);
}

static int lm_http_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int lm_http_query_param(const char *query, const char *name, char *out, size_t cap)
{
	size_t name_len = strlen(name);
	const char *p = query;

	if (!cap)
		return -ENOSPC;
	while (p && *p) {
		size_t key_len = strcspn(p, "=&");

		if (key_len == name_len && !strncmp(p, name, name_len) && p[key_len] == '=') {
			const char *v = p + key_len + 1;
			size_t n = 0;

			while (*v && *v != '&') {
				char c = *v++;

				if (c == '%') {
					int hi = lm_http_hex(v[0]), lo = hi < 0 ? -1 : lm_http_hex(v[1]);

					if (lo < 0)
						return -EINVAL;
					c = (char)(hi << 4 | lo);
					v += 2;
					if (!c)
						return -EINVAL;
				} else if (c == '+') {
					c = ' ';
				}
				if (n + 1 >= cap)
					return -ENOSPC;
				out[n++] = c;
			}
			out[n] = '\0';
			return (int)n;
		}
		p = strchr(p, '&');
		if (p)
			p++;
	}
	return -ENOENT;
}

/* Equal length and bytes, in time that depends only on the lengths. */
static bool lm_http_ct_equal(const char *a, size_t a_len, const char *b, size_t b_len)
{
	unsigned char diff = a_len != b_len;
	size_t i;

	for (i = 0; i < b_len; i++)
		diff |= (unsigned char)(a[i % (a_len ? a_len : 1)] ^ b[i]) & (a_len ? 0xff : 0);
	return !diff && a_len == b_len;
}

bool lm_http_is_token_equal(const char *want, size_t want_len, const char *got, size_t got_len)
{
	return want_len && lm_http_ct_equal(want, want_len, got, got_len);
}

bool lm_http_is_token_ok(const char *want, size_t want_len, const char *auth, const char *query)
{
	char got[256];
	int n;

	if (!want_len)
		return true;
	if (auth && !strncmp(auth, "Bearer ", 7) &&
	    lm_http_ct_equal(want, want_len, auth + 7, strlen(auth + 7)))
		return true;
	n = query ? lm_http_query_param(query, "token", got, sizeof(got)) : -ENOENT;
	return n >= 0 && lm_http_ct_equal(want, want_len, got, (size_t)n);
}
