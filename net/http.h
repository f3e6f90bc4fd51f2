/* SPDX-License-Identifier: GPL-2.0 */
/*
 * HTTP request helpers for the ws thread: route a request path, decide whether a request's
 * Host and a WebSocket upgrade's Origin and handshake headers are acceptable (the page's
 * files are net/www.h's). Pure; no I/O.
 */
#ifndef LM_HTTP_H
#define LM_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum lm_http_route {
	LM_HTTP_NOT_FOUND,
	LM_HTTP_INDEX,		/* "/" */
	LM_HTTP_HEALTHZ,	/* "/healthz" */
	LM_HTTP_METRICS,	/* "/metrics" */
	LM_HTTP_WS,		/* "/ws" */
};

/* Routes a request path; a query string ("?...") is ignored. NULL is not found. */
enum lm_http_route lm_http_route(const char *path);

/*
 * True if a browser page from `origin` may open the event stream of a server listening on
 * `port`: no Origin at all (NULL or empty: not a browser), http://127.0.0.1:PORT,
 * http://localhost:PORT or http://[::1]:PORT (the page lifemon serves), or one of the
 * `extra_cnt` origins in `extra` (--allow-origin). Origins compare as RFC 6454 tuples:
 * scheme and host case-insensitively, an absent port as the scheme's default (http 80,
 * https 443), so http://x equals http://x:80. Anything with a path, user info, another
 * scheme or a malformed port is refused, "null" included, and look-alike hosts never match.
 * An `extra` that is not a plain origin only matches itself byte for byte.
 */
bool lm_http_is_origin_allowed(const char *origin, uint16_t port, const char *const *extra,
			       size_t extra_cnt);

/*
 * True if a request's Host header value (`host`, NULL when the request had none) names this
 * server, so that a foreign page reaching 127.0.0.1 through DNS rebinding is refused.
 * Allowed, case-insensitively: localhost, 127.0.0.1 and [::1], each alone or with `port`;
 * `listen_host` (numeric, IPv6 without brackets) the same way unless it is 0.0.0.0 or ::;
 * and each of `extra` (--allow-host): NAME alone matches NAME or NAME:`port`, NAME:PORT
 * matches exactly that. A malformed value (empty, bad port, stray characters) is refused.
 */
bool lm_http_is_host_allowed(const char *host, const char *listen_host, uint16_t port,
			     const char *const *extra, size_t extra_cnt);

/*
 * True if the comma-separated header value `list` holds `token`, around optional whitespace:
 * case-insensitively for Connection and Upgrade (RFC 7230), exactly for subprotocol names
 * (RFC 6455). NULL: false.
 */
bool lm_http_has_token(const char *list, const char *token, bool ignore_case);

/*
 * True if `list` is one or more RFC 7230 tokens separated by commas and optional
 * whitespace, with no empty element: the only lists libwebsockets parses without hanging up.
 */
bool lm_http_is_token_list(const char *list);

/* True if `key` is a Sec-WebSocket-Key of RFC 6455: 16 bytes in base64 (24 characters). */
bool lm_http_is_ws_key_valid(const char *key);

/*
 * Finds parameter `name` in a query string ("a=1&token=x", without the '?') and writes its
 * percent-decoded value, NUL-terminated, into out. Returns the value's length, -ENOENT when
 * absent, -ENOSPC when it does not fit in cap - 1 bytes, -EINVAL for a bad %-escape or a
 * decoded NUL. Never reads past the query's NUL.
 */
int lm_http_query_param(const char *query, const char *name, char *out, size_t cap);

/*
 * True if a request carries the bearer token: an "Authorization: Bearer <token>" header
 * value (`auth`, may be NULL) or a token=<token> query parameter (`query`, may be NULL; for
 * browsers, which cannot set headers on a WebSocket). Compares in time independent of where
 * the strings differ. An empty `want` allows everything (no --token-file).
 */
bool lm_http_is_token_ok(const char *want, size_t want_len, const char *auth, const char *query);

/*
 * Compares an already-decoded token with `want` in time that depends only on the lengths.
 * For callers whose HTTP library has decoded the query arguments itself.
 */
bool lm_http_is_token_equal(const char *want, size_t want_len, const char *got, size_t got_len);

#endif /* LM_HTTP_H */
