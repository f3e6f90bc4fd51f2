// SPDX-License-Identifier: GPL-2.0
/*
 * The lm-ws thread: libwebsockets service loop. Only this thread calls lws_* (other threads
 * only lws_cancel_service through lm_ws_wake). One protocol serves HTTP and WebSocket, so
 * the path and Origin checks hold whichever protocol an upgrade lands on. Owns the
 * broadcast ring and every slot in it; clients are cursors into it.
 */
#include "net/ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libwebsockets.h>

#include "core/fault.h"
#include "core/json.h"
#include "core/log.h"
#include "net/bcast.h"
#include "net/http.h"
#include "net/www.h"

#define LM_WS_SCRATCH_BYTES (256 * 1024)
/* statuses lws has no constant for: RFC 9110 421 Misdirected Request, 426 Upgrade Required */
#define LM_WS_STATUS_MISDIRECTED 421
#define LM_WS_STATUS_UPGRADE_REQUIRED 426
/*
 * How long a client the server closes (too slow, or sending data) has to take its 1008 close
 * frame. The frame goes out on its next writable callback; one that never becomes writable
 * (it does not read) is dropped when this runs out, without the frame. A client that fell
 * behind has a full socket almost always, so dropping it at once would leave the frame to
 * chance; in 2 s a client that still reads frees the third of the kernel's send buffer (about
 * 2 MiB on loopback) that makes it writable. Meanwhile it gets no more events, so nothing new
 * is held for it.
 */
#define LM_WS_CLOSE_GRACE_S 2

/* Per-connection state, allocated and zeroed by lws; lives on the lm-ws thread. */
struct lm_ws_client {
	struct lm_bcast_cursor cur;
	struct lm_bcast_loss pending;	/* loss to announce before the next message */
	struct lm_ws_client *prev, *next;
	struct lws *wsi;
	uint64_t behind_since_ms;	/* first loss not yet caught up from; 0 = keeping up */
	uint64_t lost;			/* events this client missed, for the close reason */
	uint32_t rx_frames;		/* data frames the client sent */
	uint32_t rx_bytes;		/* bytes of the message being received */
	bool is_ws;			/* established WebSocket (in the client list) */
	bool closing;			/* we closed it (slow, or sent data): close frame next */
	unsigned char notice[LWS_PRE + 192];
};

struct lm_ws {
	struct lm_ws_opts o;
	struct lws_context *ctx;
	struct lm_bcast *bcast;
	struct lm_ws_client *clients;	/* established /ws clients */
	lws_sorted_usec_list_t sul;	/* periodic slow-client check */
	char *scratch;			/* LWS_PRE + response bodies, lm-ws thread only */
	pthread_t thread;
	bool started;
	atomic_bool ready;	/* main -> ws: BPF attached; read for /healthz */
	atomic_bool stop;	/* main -> ws: finish and exit the service loop */
	atomic_bool failed;	/* ws -> main: the service loop ended on an error */
	int flush_ms;		/* set by main before stop */
	size_t token_len;
	uint32_t client_cnt;	/* established WebSocket clients, lm-ws thread only */
	int err;		/* written by the thread; read after join */
};

static const struct lws_protocols lm_ws_protocols[];

/* Marks, in lws's opaque pointer, a connection that delivered a whole request. */
static char lm_ws_conn_served;
#define LM_WS_CONN_SERVED ((void *)&lm_ws_conn_served)

uint32_t lm_ws_headroom_bytes(void)
{
	return LWS_PRE;
}

/*
 * lws logs a line per refused request; anyone who can connect could flood stderr. Pass at
 * most LM_WS_LOG_BURST lines per 10 s (this thread only) and say how many were skipped.
 */
#define LM_WS_LOG_BURST 20

static void lm_ws_lws_log(int level, const char *line)
{
	static uint64_t window_ms, passed, skipped;
	size_t n = strlen(line);
	struct timespec ts;
	uint64_t now;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	if (now - window_ms >= 10000) {
		if (skipped)
			lm_warn("lws", "%llu more messages of libwebsockets skipped in 10 s",
				(unsigned long long)skipped);
		window_ms = now;
		passed = 0;
		skipped = 0;
	}
	if (++passed > LM_WS_LOG_BURST) {
		skipped++;
		return;
	}

	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	if (level & LLL_ERR)
		lm_err("lws", "%.*s", (int)n, line);
	else if (level & LLL_WARN)
		lm_warn("lws", "%.*s", (int)n, line);
	else
		lm_dbg("lws", "%.*s", (int)n, line);
}

static uint64_t lm_ws_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Accounts, when it happens, the loss of a client the ring has overtaken (it may never
 * read again), merging it into the notice it will get before its next message.
 */
static void lm_ws_account_loss(struct lm_ws *ws, struct lm_ws_client *c)
{
	struct lm_bcast_loss loss;

	lm_bcast_catch_up(ws->bcast, &c->cur, &loss);
	if (!loss.cnt)
		return;
	if (!c->pending.cnt)
		c->pending = loss;
	else {
		c->pending.last_seq = loss.last_seq;
		c->pending.cnt += loss.cnt;
	}
	c->lost += loss.cnt;
	lm_stats_add(&ws->o.stats->ws_dropped, loss.cnt);
	if (!c->behind_since_ms)
		c->behind_since_ms = lm_ws_now_ms();
}

/* Moves every slot the serializer published into the broadcast ring. */
static void lm_ws_take_published(struct lm_ws *ws)
{
	struct lm_ws_client *c;
	bool any = false;
	uint32_t idx;

	while (lm_ring_idx_pop(ws->o.txt_ring, &idx)) {
		struct lm_txt_slot *slot = lm_ring_pool_slot(ws->o.pool, idx);
		struct lm_bcast_entry e = {
			.slot = idx,
			.ev_cnt = slot->ev_cnt,
			.first_seq = slot->first_seq,
			.last_seq = slot->last_seq,
		};
		uint32_t evicted;

		if (lm_bcast_push(ws->bcast, &e, &evicted))
			lm_ring_idx_push(ws->o.free_ring, evicted); /* sized for every slot */
		lm_stats_add(&ws->o.stats->ws_published, e.ev_cnt);
		any = true;
	}
	if (!any)
		return;
	for (c = ws->clients; c; c = c->next)
		lm_ws_account_loss(ws, c);
	lws_callback_on_writable_all_protocol(ws->ctx, &lm_ws_protocols[0]);
}

static int lm_ws_respond(struct lws *wsi, unsigned int status, const char *type,
			 const char *body, size_t len)
{
	unsigned char hdr[LWS_PRE + 1024], *start = &hdr[LWS_PRE], *p = start;
	unsigned char *end = &hdr[sizeof(hdr) - 1];
	struct lm_ws *ws = lws_context_user(lws_get_context(wsi));
	unsigned char *out = (unsigned char *)ws->scratch + LWS_PRE;
	size_t i;

	if (lws_add_http_common_headers(wsi, status, type, len, &p, end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
					(const unsigned char *)"no-store", 8, &p, end))
		return -1;
	for (i = 0; i < lm_www_header_cnt; i++)
		if (lws_add_http_header_by_name(wsi, (const unsigned char *)lm_www_headers[i].name,
						(const unsigned char *)lm_www_headers[i].value,
						(int)strlen(lm_www_headers[i].value), &p, end))
			return -1;
	if (lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	if (len > LM_WS_SCRATCH_BYTES - LWS_PRE)
		return -1;
	if (body != (const char *)out)
		memcpy(out, body, len);
	if (len && lws_write(wsi, out, len, LWS_WRITE_HTTP_FINAL) != (int)len)
		return -1;
	lm_stats_add(&ws->o.stats->http_requests, 1);
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/*
 * Whether a request carries the bearer token (always true without --token-file): the
 * Authorization header, or a token= query argument. lws has already percent-decoded each
 * argument, so it is compared as it is (decoding again would turn "+" and "%" around).
 */
static bool lm_ws_is_authorized(struct lws *wsi, struct lm_ws *ws)
{
	char auth[320], frag[300];
	int i, len;

	if (!ws->token_len)
		return true;
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION) < (int)sizeof(auth) &&
	    lws_hdr_copy(wsi, auth, sizeof(auth), WSI_TOKEN_HTTP_AUTHORIZATION) > 0 &&
	    lm_http_is_token_ok(ws->o.token, ws->token_len, auth, NULL))
		return true;
	/* every argument; the header size limit bounds how many there can be */
	for (i = 0; (len = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i)) > 0; i++) {
		if (len < 6 || len >= (int)sizeof(frag) ||
		    lws_hdr_copy_fragment(wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, i) != len ||
		    strncmp(frag, "token=", 6))
			continue;
		if (lm_http_is_token_equal(ws->o.token, ws->token_len, frag + 6, (size_t)len - 6))
			return true;
	}
	lm_stats_add(&ws->o.stats->limit_hits[LM_STATS_LIMIT_TOKEN], 1);
	return false;
}

/*
 * Whether the request's Host header names this server (the DNS-rebinding guard, before any
 * other rule). Returns 0, HTTP_STATUS_BAD_REQUEST without a Host header (HTTP/1.1 requires
 * one; lifemon asks it of HTTP/1.0 too), or 421 (Misdirected Request) for any other name.
 * The caller answers and counts.
 */
static unsigned int lm_ws_check_host(struct lws *wsi, struct lm_ws *ws)
{
	char host[256];
	int len = lws_hdr_total_length(wsi, WSI_TOKEN_HOST);

	if (len <= 0)
		return HTTP_STATUS_BAD_REQUEST;
	if (len >= (int)sizeof(host) || lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST) < 0 ||
	    !lm_http_is_host_allowed(host, ws->o.host, ws->o.port, ws->o.allow_hosts,
				     ws->o.allow_host_cnt))
		return LM_WS_STATUS_MISDIRECTED;
	return 0;
}

static int lm_ws_on_http(struct lws *wsi, struct lm_ws *ws, const char *path)
{
	char *body = ws->scratch + LWS_PRE;
	size_t cap = LM_WS_SCRATCH_BYTES - LWS_PRE;
	const struct lm_www_asset *a;
	unsigned int st;
	int n;

	st = lm_ws_check_host(wsi, ws);
	if (st) {
		lm_stats_add(&ws->o.stats->limit_hits[LM_STATS_LIMIT_HOST], 1);
		if (st == HTTP_STATUS_BAD_REQUEST)
			return lm_ws_respond(wsi, st, "text/plain", "Host header required\n", 21);
		return lm_ws_respond(wsi, st, "text/plain", "Host not served here (--allow-host)\n",
				     36);
	}
	/*
	 * The page's scripts and styles are the repo's own files and hold no host data, so they
	 * need no token: module imports cannot carry the page's ?token=. "/" keeps the rule.
	 */
	a = lm_www_find(path);
	if (a && lm_http_route(path) == LM_HTTP_NOT_FOUND)
		return lm_ws_respond(wsi, HTTP_STATUS_OK, a->content_type, (const char *)a->data,
				     a->len);
	if (!lm_ws_is_authorized(wsi, ws))
		return lm_ws_respond(wsi, HTTP_STATUS_UNAUTHORIZED, "text/plain",
				     "bearer token required\n", 22);
	switch (lm_http_route(path)) {
	case LM_HTTP_INDEX:
		if (!a) /* index.html is always embedded; test_www checks it */
			return lm_ws_respond(wsi, HTTP_STATUS_NOT_FOUND, "text/plain",
					     "not found\n", 10);
		return lm_ws_respond(wsi, HTTP_STATUS_OK, a->content_type, (const char *)a->data,
				     a->len);
	case LM_HTTP_HEALTHZ:
		/* acquire: pairs with lm_ws_set_ready's release after the attach */
		if (atomic_load_explicit(&ws->ready, memory_order_acquire))
			return lm_ws_respond(wsi, HTTP_STATUS_OK, "text/plain", "ok\n", 3);
		return lm_ws_respond(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, "text/plain",
				     "starting\n", 9);
	case LM_HTTP_METRICS:
		n = ws->o.metrics(ws->o.metrics_ctx, lm_bcast_len(ws->bcast), ws->o.bcast_cap,
				  body, cap);
		if (n < 0)
			return lm_ws_respond(wsi, HTTP_STATUS_INTERNAL_SERVER_ERROR, "text/plain",
					     "metrics too large\n", 18);
		return lm_ws_respond(wsi, HTTP_STATUS_OK, "text/plain; version=0.0.4; charset=utf-8",
				     body, (size_t)n);
	case LM_HTTP_WS:
		return lm_ws_respond(wsi, HTTP_STATUS_BAD_REQUEST, "text/plain",
				     "use a WebSocket client\n", 23);
	case LM_HTTP_NOT_FOUND:
	default:
		return lm_ws_respond(wsi, HTTP_STATUS_NOT_FOUND, "text/plain", "not found\n", 10);
	}
}

/* Refuses an upgrade with an HTTP status and counts the rule that refused it. */
static int lm_ws_refuse(struct lws *wsi, struct lm_ws *ws, unsigned int status,
			enum lm_stats_limit why)
{
	lm_stats_add(&ws->o.stats->ws_refused, 1);
	lm_stats_add(&ws->o.stats->limit_hits[why], 1);
	lws_return_http_status(wsi, status, NULL);
	return 1;
}

/*
 * Checks what libwebsockets itself needs of a WebSocket handshake, so that a malformed one
 * gets an HTTP error instead of the silent hang-up lws gives it: Connection must hold the
 * token "upgrade" (any case, any position), Sec-WebSocket-Version must be 13 (else 426),
 * Sec-WebSocket-Key must be 16 bytes of base64, and a Sec-WebSocket-Protocol list must be
 * well-formed and offer "lifemon" (the only subprotocol; lws refuses any other). Returns 0
 * or the HTTP status; *why is the body text.
 */
static unsigned int lm_ws_check_handshake(struct lws *wsi, const char **why)
{
	char buf[128];
	int len;

	*why = "need Connection: Upgrade";
	len = lws_hdr_total_length(wsi, WSI_TOKEN_CONNECTION);
	if (len <= 0 || len >= (int)sizeof(buf) ||
	    lws_hdr_copy(wsi, buf, sizeof(buf), WSI_TOKEN_CONNECTION) < 0 ||
	    !lm_http_is_token_list(buf) || !lm_http_has_token(buf, "upgrade", true))
		return HTTP_STATUS_BAD_REQUEST;
	*why = "need Sec-WebSocket-Version: 13";
	if (lws_hdr_copy(wsi, buf, sizeof(buf), WSI_TOKEN_VERSION) <= 0 || strcmp(buf, "13"))
		return LM_WS_STATUS_UPGRADE_REQUIRED;
	*why = "need a Sec-WebSocket-Key of 16 bytes in base64";
	if (lws_hdr_total_length(wsi, WSI_TOKEN_KEY) >= (int)sizeof(buf) ||
	    lws_hdr_copy(wsi, buf, sizeof(buf), WSI_TOKEN_KEY) <= 0 || !lm_http_is_ws_key_valid(buf))
		return HTTP_STATUS_BAD_REQUEST;
	*why = "the only subprotocol is lifemon";
	len = lws_hdr_total_length(wsi, WSI_TOKEN_PROTOCOL);
	if (len > 0 && (len >= (int)sizeof(buf) ||
			lws_hdr_copy(wsi, buf, sizeof(buf), WSI_TOKEN_PROTOCOL) < 0 ||
			!lm_http_is_token_list(buf) || !lm_http_has_token(buf, "lifemon", false)))
		return HTTP_STATUS_BAD_REQUEST;
	return 0;
}

/*
 * Decides an upgrade: only with this server's Host, GET /ws, the token, from an allowed
 * Origin, as a well-formed handshake, below --max-clients. There is one protocol, so this
 * holds whatever subprotocol the client names. 0 accepts.
 */
static int lm_ws_filter_upgrade(struct lws *wsi, struct lm_ws *ws)
{
	char uri[64], origin[256];
	const char *why;
	unsigned int st;
	int len;

	st = lm_ws_check_host(wsi, ws);
	if (st)
		return lm_ws_refuse(wsi, ws, st, LM_STATS_LIMIT_HOST);
	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0 ||
	    lm_http_route(uri) != LM_HTTP_WS)
		return lm_ws_refuse(wsi, ws, HTTP_STATUS_NOT_FOUND, LM_STATS_LIMIT_PATH);
	if (!lm_ws_is_authorized(wsi, ws)) {
		lm_stats_add(&ws->o.stats->ws_refused, 1);
		lws_return_http_status(wsi, HTTP_STATUS_UNAUTHORIZED, NULL);
		return 1;
	}
	len = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN);
	if (len > 0 &&
	    (len >= (int)sizeof(origin) ||
	     lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) < 0 ||
	     !lm_http_is_origin_allowed(origin, ws->o.port, ws->o.allow_origins,
					ws->o.allow_origin_cnt)))
		return lm_ws_refuse(wsi, ws, HTTP_STATUS_FORBIDDEN, LM_STATS_LIMIT_ORIGIN);
	st = lm_ws_check_handshake(wsi, &why);
	if (st) {
		lm_stats_add(&ws->o.stats->ws_refused, 1);
		lm_stats_add(&ws->o.stats->limit_hits[LM_STATS_LIMIT_UPGRADE], 1);
		lws_return_http_status(wsi, st, why);
		return 1;
	}
	if (ws->client_cnt >= ws->o.max_clients)
		return lm_ws_refuse(wsi, ws, HTTP_STATUS_SERVICE_UNAVAILABLE,
				    LM_STATS_LIMIT_CLIENTS);
	return 0;
}

/*
 * An Upgrade other than websocket (any case). lws has already answered 403 to names it does
 * not know and hangs up when this returns -1; h2c it would take up, so it is refused here.
 */
static int lm_ws_refuse_other_upgrade(struct lws *wsi, struct lm_ws *ws, const char *up)
{
	lm_stats_add(&ws->o.stats->ws_refused, 1);
	lm_stats_add(&ws->o.stats->limit_hits[LM_STATS_LIMIT_UPGRADE], 1);
	if (strcasecmp(up, "h2c"))
		return -1;
	lws_return_http_status(wsi, HTTP_STATUS_BAD_REQUEST, "only Upgrade: websocket");
	return 1;
}

/*
 * Clients only read: one that sends a message over LM_WS_CLIENT_MAX_MSG_BYTES or more than
 * LM_WS_CLIENT_MAX_FRAMES data frames (fragments count, empty ones too) is closed.
 */
static int lm_ws_on_receive(struct lws *wsi, struct lm_ws *ws, struct lm_ws_client *c,
			    size_t len)
{
	static const char reason[] = "clients of lifemon only read";
	bool frame_end = !lws_remaining_packet_payload(wsi);

	if (c->closing)
		return 0; /* already being closed: read and discard until lws hangs up */
	c->rx_bytes += (uint32_t)len;
	if (frame_end)
		c->rx_frames++;
	if (c->rx_bytes <= LM_WS_CLIENT_MAX_MSG_BYTES && c->rx_frames <= LM_WS_CLIENT_MAX_FRAMES) {
		if (frame_end && lws_is_final_fragment(wsi))
			c->rx_bytes = 0;
		return 0;
	}
	lm_stats_add(&ws->o.stats->limit_hits[LM_STATS_LIMIT_CLIENT_MESSAGES], 1);
	lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, (unsigned char *)reason,
			 sizeof(reason) - 1);
	/*
	 * Close from the writable callback rather than now: lws then keeps reading (and we
	 * discard) what the client still sends, so its unread flood does not turn the close
	 * into a TCP reset that would swallow the 1008 frame; LM_WS_CLOSE_GRACE_S at most.
	 */
	c->closing = true;
	lws_callback_on_writable(wsi);
	lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, LM_WS_CLOSE_GRACE_S);
	return 0;
}

static void lm_ws_client_add(struct lm_ws *ws, struct lm_ws_client *c, struct lws *wsi)
{
	lm_bcast_cursor_init(ws->bcast, &c->cur);
	c->wsi = wsi;
	c->is_ws = true;
	c->prev = NULL;
	c->next = ws->clients;
	if (ws->clients)
		ws->clients->prev = c;
	ws->clients = c;
	ws->client_cnt++;
	lm_stats_set(&ws->o.stats->ws_clients, ws->client_cnt);
	lm_stats_add(&ws->o.stats->ws_connections, 1);
}

static void lm_ws_client_del(struct lm_ws *ws, struct lm_ws_client *c)
{
	if (!c->is_ws)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		ws->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->is_ws = false;
	ws->client_cnt--;
	lm_stats_set(&ws->o.stats->ws_clients, ws->client_cnt);
}

/* Writes one message to a client: a pending loss notice, else the next entry. */
static int lm_ws_write_next(struct lws *wsi, struct lm_ws *ws, struct lm_ws_client *c)
{
	const struct lm_bcast_entry *e;
	struct lm_bcast_loss loss;
	struct lm_txt_slot *slot;
	int n;

	if (c->closing)
		return -1; /* lws sends the close frame with the reason set when it was closed */
	if (c->pending.cnt) {
		n = lm_json_lost((char *)c->notice + LWS_PRE, sizeof(c->notice) - LWS_PRE,
				 c->pending.first_seq, c->pending.last_seq, c->pending.cnt,
				 "slow_client");
		c->pending.cnt = 0;
		if (n < 0 || lws_write(wsi, c->notice + LWS_PRE, (size_t)n, LWS_WRITE_TEXT) < n)
			return -1;
		lws_callback_on_writable(wsi);
		return 0;
	}
	e = lm_bcast_next(ws->bcast, &c->cur, &loss);
	if (!e)
		return 0;
	if (loss.cnt) {
		/* announce the gap first; the entry is read again on the next callback */
		c->pending = loss;
		c->cur.pos--;
		c->cur.next_seq = e->first_seq;
		lm_stats_add(&ws->o.stats->ws_dropped, loss.cnt);
		lws_callback_on_writable(wsi);
		return 0;
	}
	slot = lm_ring_pool_slot(ws->o.pool, e->slot);
	/* in place: the slot has LWS_PRE bytes of headroom for the frame header */
	if (lws_write(wsi, (unsigned char *)slot->text, slot->len, LWS_WRITE_TEXT) <
	    (int)slot->len)
		return -1;
	lm_stats_add(&ws->o.stats->ws_delivered, e->ev_cnt);
	/* back within a quarter ring of the newest: no longer at risk */
	if (c->behind_since_ms && lm_bcast_behind(ws->bcast, &c->cur) <= ws->o.bcast_cap / 4)
		c->behind_since_ms = 0;
	if (lm_bcast_behind(ws->bcast, &c->cur))
		lws_callback_on_writable(wsi);
	return 0;
}

/* Every 500 ms: close clients that lost events and have not caught up for slow_ms. */
static void lm_ws_check_slow(lws_sorted_usec_list_t *sul)
{
	struct lm_ws *ws = lws_container_of(sul, struct lm_ws, sul);
	uint64_t now = lm_ws_now_ms();
	struct lm_ws_client *c;

	for (c = ws->clients; c; c = c->next) {
		char reason[96];
		int n;

		if (c->closing || !c->behind_since_ms || now - c->behind_since_ms < ws->o.slow_ms)
			continue;
		n = snprintf(reason, sizeof(reason), "too slow: %llu events missed",
			     (unsigned long long)c->lost);
		lws_close_reason(c->wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, (unsigned char *)reason,
				 (size_t)n);
		c->closing = true;
		lm_stats_add(&ws->o.stats->ws_slow_disconnects, 1);
		/*
		 * Its pipe is almost always choked (that is why it fell behind): do not drop it
		 * now, give it LM_WS_CLOSE_GRACE_S to become writable. lm_ws_write_next sends no
		 * more events, only the close frame; lws first completes a frame it had cut.
		 */
		lws_callback_on_writable(c->wsi);
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LM_WS_CLOSE_GRACE_S);
	}
	lws_sul_schedule(ws->ctx, 0, &ws->sul, lm_ws_check_slow, 500 * LWS_US_PER_MS);
}

static int lm_ws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		    size_t len)
{
	struct lm_ws *ws = lws_context_user(lws_get_context(wsi));
	struct lm_ws_client *c = user;

	switch (reason) {
	case LWS_CALLBACK_WSI_DESTROY:
		/*
		 * A connection that never delivered a whole request was closed by a limit
		 * (header size, handshake or idle timeout) or sent garbage. Only connections
		 * end while the server runs; the listen socket and event pipe end at shutdown.
		 */
		if (!atomic_load_explicit(&ws->stop, memory_order_acquire) &&
		    lws_get_opaque_user_data(wsi) != LM_WS_CONN_SERVED)
			lm_stats_add(&ws->o.stats->limit_hits[LM_STATS_LIMIT_INCOMPLETE], 1);
		return 0;
	case LWS_CALLBACK_HTTP:
		lws_set_opaque_user_data(wsi, LM_WS_CONN_SERVED);
		return lm_ws_on_http(wsi, ws, in);
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		lws_set_opaque_user_data(wsi, LM_WS_CONN_SERVED);
		/* before lws matches a subprotocol, so every upgrade passes through here */
		if (!in)
			return -1;
		/* RFC 7230 6.7: protocol names are case-insensitive ("WebSocket" is fine) */
		if (strcasecmp(in, "websocket"))
			return lm_ws_refuse_other_upgrade(wsi, ws, in);
		return lm_ws_filter_upgrade(wsi, ws);
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		/* second line: the same rules once the protocol is bound */
		return lm_ws_filter_upgrade(wsi, ws);
	case LWS_CALLBACK_ESTABLISHED:
		lm_ws_client_add(ws, c, wsi);
		return 0;
	case LWS_CALLBACK_CLOSED:
		lm_ws_client_del(ws, c);
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (!c || !c->is_ws)
			return 0;
		return lm_ws_write_next(wsi, ws, c);
	case LWS_CALLBACK_RECEIVE:
		if (!c || !c->is_ws)
			return -1;
		return lm_ws_on_receive(wsi, ws, c, len);
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		lm_ws_take_published(ws);
		return 0;
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

static const struct lws_protocols lm_ws_protocols[] = {
	{
		.name = "lifemon",
		.callback = lm_ws_cb,
		.per_session_data_size = sizeof(struct lm_ws_client),
		.rx_buffer_size = 4096,
	},
	{ NULL, NULL, 0, 0, 0, NULL, 0 } /* terminator */
};

/*
 * Binds the address once with the options lws uses, to report EADDRINUSE/EADDRNOTAVAIL
 * precisely (lws only says it failed, and leaks on that path).
 */
static int lm_ws_probe_bind(const char *host, uint16_t port)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	socklen_t len;
	int fd, one = 1, err = 0;

	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		len = sizeof(*a4);
	} else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		len = sizeof(*a6);
	} else {
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 1) < 0)
		err = -errno;
	close(fd);
	return err;
}

int lm_ws_open(const struct lm_ws_opts *opts, struct lm_ws **out)
{
	struct lws_context_creation_info info;
	struct lm_ws *ws;
	int err;

	*out = NULL;
	if (!opts->txt_ring || !opts->free_ring || !opts->pool || !opts->metrics ||
	    !opts->max_clients || opts->max_header_bytes < 512 || opts->max_header_bytes > 65535 ||
	    !opts->handshake_timeout_s || !opts->idle_timeout_s)
		return -EINVAL;
	err = lm_ws_probe_bind(opts->host, opts->port);
	if (err)
		return err;
	ws = calloc(1, sizeof(*ws));
	if (!ws)
		return -ENOMEM;
	ws->o = *opts;
	ws->token_len = opts->token ? strlen(opts->token) : 0;
	ws->scratch = malloc(LM_WS_SCRATCH_BYTES);
	if (!ws->scratch) {
		err = -ENOMEM;
		goto out;
	}
	err = lm_bcast_open(opts->bcast_cap, &ws->bcast);
	if (err)
		goto out;

	memset(&info, 0, sizeof(info));
	info.port = opts->port;
	info.iface = opts->host;
	info.protocols = lm_ws_protocols;
	info.user = ws;
	info.uid = -1;
	info.gid = -1;
	info.max_http_header_data = (unsigned short)opts->max_header_bytes;
	info.max_http_header_pool = 64;
	info.timeout_secs = opts->handshake_timeout_s;
	info.keepalive_timeout = (int)opts->idle_timeout_s;
	/* a connection may hold one of the 64 header buffers this long without finishing */
	info.timeout_secs_ah_idle = opts->handshake_timeout_s;
	info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
	if (!strchr(opts->host, ':'))
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	/* lws logs its own bind failure; main prints the one line the user needs */
	lws_set_log_level(0, lm_ws_lws_log);
	ws->ctx = lws_create_context(&info);
	if (!ws->ctx) {
		err = -EADDRINUSE;
		goto out;
	}
	lws_set_log_level(LLL_ERR | LLL_WARN | (lm_log_is_enabled(LM_LOG_DBG) ? LLL_NOTICE : 0),
			  lm_ws_lws_log);
	*out = ws;
	ws = NULL;
out:
	lm_ws_close(ws);
	return err;
}

static bool lm_ws_clients_done(const struct lm_ws *ws)
{
	const struct lm_ws_client *c;

	for (c = ws->clients; c; c = c->next)
		if (c->pending.cnt || lm_bcast_behind(ws->bcast, &c->cur))
			return false;
	return true;
}

/* Shutdown: publish the last slots and let clients take them, up to flush_ms. */
static void lm_ws_flush(struct lm_ws *ws)
{
	uint64_t end = lm_ws_now_ms() + (uint64_t)ws->flush_ms;

	lm_ws_take_published(ws);
	while (!lm_ws_clients_done(ws) && lm_ws_now_ms() < end) {
		/* negative timeout: service what is ready without sleeping in poll */
		if (lws_service(ws->ctx, -1) < 0)
			break;
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
}

static void *lm_ws_main(void *arg)
{
	struct lm_ws *ws = arg;

	pthread_setname_np(pthread_self(), "lm-ws");
	if (ws->o.slow_ms)
		lws_sul_schedule(ws->ctx, 0, &ws->sul, lm_ws_check_slow, 500 * LWS_US_PER_MS);
	/* acquire: pairs with lm_ws_stop's release, made after the serializer was joined,
	 * so the last slots it pushed are in txt_ring for the flush */
	while (!atomic_load_explicit(&ws->stop, memory_order_acquire)) {
		if (lws_service(ws->ctx, 0) < 0 ||
		    lm_fault_is_due(LM_FAULT_WS, lm_stats_get(&ws->o.stats->ws_published))) {
			/* lws gives no errno; the loop cannot go on, and no slot comes back */
			ws->err = -EIO;
			/* release: publishes ws->err to main's lm_ws_has_failed */
			atomic_store_explicit(&ws->failed, true, memory_order_release);
			if (ws->o.on_fail)
				ws->o.on_fail(ws->o.fail_ctx);
			return NULL;
		}
	}
	lm_ws_flush(ws);
	return NULL;
}

int lm_ws_start(struct lm_ws *ws)
{
	int err = pthread_create(&ws->thread, NULL, lm_ws_main, ws);

	if (err)
		return -err;
	ws->started = true;
	return 0;
}

void lm_ws_set_ready(struct lm_ws *ws, bool ready)
{
	atomic_store_explicit(&ws->ready, ready, memory_order_release);
}

void lm_ws_wake(struct lm_ws *ws)
{
	lws_cancel_service(ws->ctx);
}

int lm_ws_stop(struct lm_ws *ws, int flush_ms)
{
	uint64_t left = 0;
	uint32_t idx;

	if (!ws->started)
		return 0;
	ws->flush_ms = flush_ms; /* published by the release store below */
	atomic_store_explicit(&ws->stop, true, memory_order_release);
	lws_cancel_service(ws->ctx);
	pthread_join(ws->thread, NULL);
	ws->started = false;
	/* joined, and the serializer before it: we consume txt_ring now. Empty after a clean
	 * flush; after a failure, the slots the thread never took. */
	while (lm_ring_idx_pop(ws->o.txt_ring, &idx))
		left += lm_ring_pool_slot(ws->o.pool, idx)->ev_cnt;
	if (left)
		lm_stats_add(&ws->o.stats->abandoned[LM_STATS_STAGE_WS], left);
	return ws->err;
}

bool lm_ws_has_failed(struct lm_ws *ws)
{
	/* acquire: pairs with the release store when the loop failed */
	return atomic_load_explicit(&ws->failed, memory_order_acquire);
}

void lm_ws_close(struct lm_ws *ws)
{
	if (!ws)
		return;
	if (ws->ctx)
		lws_context_destroy(ws->ctx);
	lm_bcast_close(ws->bcast);
	free(ws->scratch);
	free(ws);
}
