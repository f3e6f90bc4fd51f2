/* SPDX-License-Identifier: GPL-2.0 */
/*
 * HTTP request helpers for the ws thread: route a request path, decide whether a WebSocket
 * upgrade's Origin is allowed, and the live page served at "/". Pure; no I/O.
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
 * `port`: no Origin at all (NULL or empty: not a browser), or exactly http://127.0.0.1:PORT,
 * http://localhost:PORT or http://[::1]:PORT. Everything else, "null" included, is refused.
 */
bool lm_http_is_origin_allowed(const char *origin, uint16_t port);

/* The live page: a minimal HTML client of /ws. */
extern const char lm_http_index_html[];
extern const size_t lm_http_index_html_len;

#endif /* LM_HTTP_H */
