// SPDX-License-Identifier: GPL-2.0
/*
 * Lookup of the embedded page files for the lm-ws thread; the files themselves are the table
 * generated from net/www/ at build time. Pure functions, unit-tested and fuzzable.
 */
#include "net/www.h"

#include <string.h>

const struct lm_www_asset *lm_www_find(const char *path)
{
	size_t len, i;

	if (!path)
		return NULL;
	len = strcspn(path, "?");
	for (i = 0; i < lm_www_asset_cnt; i++)
		if (strlen(lm_www_assets[i].path) == len &&
		    !memcmp(lm_www_assets[i].path, path, len))
			return &lm_www_assets[i];
	return NULL;
}

/*
 * connect-src names ws: and wss: because CSP 2 browsers do not let 'self' cover WebSockets;
 * the server's Host and Origin rules keep /ws for the page lifemon serves.
 */
const struct lm_www_header lm_www_headers[] = {
	{ "content-security-policy:",
	  "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
	  "style-src 'self'; script-src 'self'; frame-ancestors 'none'" },
	{ "x-content-type-options:", "nosniff" },
};
const size_t lm_www_header_cnt = sizeof(lm_www_headers) / sizeof(lm_www_headers[0]);
