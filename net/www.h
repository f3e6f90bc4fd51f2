/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The live page's files (net/www/), embedded into the binary at build time by
 * cmake/embed-www.cmake, and the lookup the lm-ws thread serves them with. Pure; no I/O.
 */
#ifndef LM_WWW_H
#define LM_WWW_H

#include <stddef.h>

/* One embedded file, served at `path` ("/" for index.html, "/<name>" for the others). */
struct lm_www_asset {
	const char *path;
	const char *content_type;  /* Content-Type header value */
	const unsigned char *data; /* len bytes, followed by a NUL not counted in len */
	size_t len;
};

/* The table the build generated (www_assets.c in the build dir), in net/www/ order. */
extern const struct lm_www_asset lm_www_assets[];
extern const size_t lm_www_asset_cnt;

/*
 * The asset a request path names, or NULL: "/" is index.html, "/app.js" is app.js; a query
 * string ("?...") is ignored. Names compare exactly (no dot segments, no %-decoding: lws has
 * normalised the path already), so nothing but the embedded files can be reached.
 */
const struct lm_www_asset *lm_www_find(const char *path);

/*
 * The headers every lifemon answer carries (a CRLF-free "name:" and its value): a
 * Content-Security-Policy that lets the page load only its own files and open only /ws on its
 * own host, and nosniff. lm_www_header_cnt entries.
 */
struct lm_www_header {
	const char *name; /* lower case, with the trailing ':' lws wants */
	const char *value;
};
extern const struct lm_www_header lm_www_headers[];
extern const size_t lm_www_header_cnt;

#endif /* LM_WWW_H */
