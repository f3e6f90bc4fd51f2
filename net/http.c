// SPDX-License-Identifier: GPL-2.0
/*
 * HTTP helpers used by the lm-ws thread: routing and the Origin rule. Pure functions of
 * their arguments so they can be tested and fuzzed without a socket.
 */
#include "net/http.h"

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

bool lm_http_is_origin_allowed(const char *origin, uint16_t port)
{
	static const char *const hosts[] = { "127.0.0.1", "localhost", "[::1]" };
	char want[64];
	size_t i;

	if (!origin || !origin[0])
		return true;
	for (i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		snprintf(want, sizeof(want), "http://%s:%u", hosts[i], port);
		if (!strcmp(origin, want))
			return true;
	}
	return false;
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
	"const ws=new WebSocket((location.protocol==='https:'?'wss://':'ws://')+location.host+'/ws');\n"
	"ws.onopen=()=>st.textContent='connected';\n"
	"ws.onclose=()=>st.textContent='disconnected';\n"
	"ws.onmessage=m=>{for(const l of m.data.split('\\n')){if(!l)continue;\n"
	" const e=JSON.parse(l),d=document.createElement('div');d.className=e.type;\n"
	" d.textContent=JSON.stringify(e);log.prepend(d);}\n"
	" while(log.childNodes.length>500)log.lastChild.remove();};\n"
	"</script></body></html>\n";
const size_t lm_http_index_html_len = sizeof(lm_http_index_html) - 1;
