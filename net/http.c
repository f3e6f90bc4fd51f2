// SPDX-License-Identifier: GPL-2.0
/*
 * HTTP helpers used by the lm-ws thread: routing and the Origin rule. Pure functions of
 * their arguments so they can be tested and fuzzed without a socket.
 */
#include "net/http.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

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

bool lm_http_is_origin_allowed(const char *origin, uint16_t port, const char *const *extra,
			       size_t extra_cnt)
{
	static const char *const hosts[] = { "127.0.0.1", "localhost", "[::1]" };
	char want[64];
	size_t i;

	if (!origin || !origin[0])
		return true;
	for (i = 0; i < extra_cnt; i++)
		if (!strcmp(origin, extra[i]))
			return true;
	for (i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		snprintf(want, sizeof(want), "http://%s:%u", hosts[i], port);
		if (!strcmp(origin, want))
			return true;
	}
	return false;
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

const char lm_http_index_html[] =
	"<!doctype html>\n"
	"<html><head><meta charset=\"utf-8\"><title>lifemon</title>\n"
	"<style>body{font:13px monospace;margin:1em}#log div{white-space:pre}"
	".EXIT{color:#555}.OOM_KILL{color:#b00}.LOST{color:#b60}</style></head>\n"
	"<body><h3>lifemon: live process events</h3><p id=\"st\">connecting</p>"
	"<div id=\"log\"></div>\n"
	"<script>\n"
	"const log=document.getElementById('log'),st=document.getElementById('st');\n"
	"const ws=new WebSocket((location.protocol==='https:'?'wss://':'ws://')+location.host+'/ws'+location.search);\n"
	"ws.onopen=()=>st.textContent='connected';\n"
	"ws.onclose=()=>st.textContent='disconnected';\n"
	"ws.onmessage=m=>{for(const l of m.data.split('\\n')){if(!l)continue;\n"
	" const e=JSON.parse(l),d=document.createElement('div');d.className=e.type;\n"
	" d.textContent=JSON.stringify(e);log.prepend(d);}\n"
	" while(log.childNodes.length>500)log.lastChild.remove();};\n"
	"</script></body></html>\n";
const size_t lm_http_index_html_len = sizeof(lm_http_index_html) - 1;
