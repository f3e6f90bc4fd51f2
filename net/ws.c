// SPDX-License-Identifier: GPL-2.0
/*
 * The lm-ws thread: libwebsockets service loop. Only this thread calls lws_* (other threads
 * only lws_cancel_service through lm_ws_wake). One protocol serves HTTP and WebSocket, so
 * the path and Origin checks hold whichever protocol an upgrade lands on. Owns the replay
 * history (net/hist.c), into which it copies every published text slot before giving the
 * slot back; clients are cursors into it, each with its own filter.
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
#include "net/filter.h"
#include "net/hist.h"
#include "net/pset.h"
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

/* A loss this client is owed a notice for: seqs first..last, cnt events, matched of them. */
struct lm_ws_loss {
	uint64_t first_seq, last_seq, cnt, matched;
};

/* What a client that asked for since= is told before its replay. */
enum lm_ws_start {
	LM_WS_START_LIVE,	/* nothing to say */
	LM_WS_START_EVICTED,	/* since is older than the history */
	LM_WS_START_RESTARTED,	/* since is from another run of lifemon */
};

/* Per-connection state, allocated and zeroed by lws; lives on the lm-ws thread. */
struct lm_ws_client {
	struct lm_filter filter;	/* parsed from the query before the upgrade */
	uint64_t pos;			/* history position of the chunk being read */
	uint32_t line;			/* next line of that chunk */
	uint64_t live_pos;		/* chunks before this were published before it came */
	struct lm_ws_loss pending;	/* dropped for it: announced before its next message */
	enum lm_ws_start start;
	uint64_t start_first, start_last; /* LM_WS_START_EVICTED: the seqs no longer kept */
	uint64_t hello_first, hello_next; /* the history when it came, for its HELLO */
	struct lm_ws_client *prev, *next;
	struct lws *wsi;
	char *buf;			/* LWS_PRE + a message built for it (HELLO, filtered) */
	struct lm_pset *procs;		/* exe=/args= filters: processes whose EXEC matched */
	uint64_t waiting_since_ms;	/* behind, and no message sent since; see lm_ws_is_stuck */
	uint64_t behind_since_ms;	/* first loss not yet caught up from; 0 = keeping up */
	uint64_t last_loss_ms;		/* its latest loss */
	uint64_t lost;			/* events this client missed, for the close reason */
	uint32_t rx_frames;		/* data frames the client sent */
	uint32_t rx_bytes;		/* bytes of the message being received */
	bool has_filter;		/* filter parsed (FILTER_PROTOCOL_CONNECTION) */
	bool hello_sent;
	bool is_ws;			/* established WebSocket (in the client list) */
	bool closing;			/* we closed it (slow, or sent data): close frame next */
	unsigned char notice[LWS_PRE + 256];
};

#define LM_WS_NO_SLOT UINT32_MAX
/* A refused query's reason, at most */
#define LM_WS_WHY_BYTES 320
/* A client's writable callback skips at most this many chunks its filter empties. */
#define LM_WS_SKIP_CHUNKS 64
/* While a slot waits for room in the history, the rules are checked again this often. */
#define LM_WS_RETRY_MS 10

struct lm_ws {
	struct lm_ws_opts o;
	struct lws_context *ctx;
	struct lm_hist *hist;
	uint32_t held;			/* slot taken from txt_ring, waiting for room; or NO_SLOT */
	uint32_t buf_bytes;		/* a client's message buffer, LWS_PRE included */
	struct lm_ws_client *clients;	/* established /ws clients */
	lws_sorted_usec_list_t sul;	/* periodic slow-client check */
	lws_sorted_usec_list_t retry;	/* held slot: check the waiting rules again */
	char *scratch;			/* LWS_PRE + response bodies, lm-ws thread only */
	struct lm_filter query;		/* an upgrade's query, checked before its client exists */
	pthread_t thread;
	bool started;
	bool flushing;			/* shutdown: nobody is waited for any more */
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

/* What a client's filter tests for one line of a chunk. */
static void lm_ws_filter_ev(const struct lm_hist_chunk *ch, const struct lm_line *l,
			    struct lm_filter_ev *ev)
{
	const char *p = lm_hist_str(ch) + l->str_off;

	ev->type = l->type;
	ev->nonzero_exit = l->flags & LM_LINE_NONZERO_EXIT;
	ev->pid = l->pid;
	ev->ppid = l->ppid;
	ev->uid = l->uid;
	ev->comm = p;
	p += l->comm_len + 1;
	ev->exe = l->flags & LM_LINE_HAS_EXE ? p : NULL;
	p += l->exe_len + 1;
	ev->cgroup = l->flags & LM_LINE_HAS_CGROUP ? p : NULL;
	p += l->cgroup_len + 1;
	ev->container = l->flags & LM_LINE_HAS_CONTAINER ? p : NULL;
	p += l->container_len + 1;
	ev->args = l->flags & LM_LINE_HAS_ARGS ? p : NULL;
	ev->args_len = l->args_len;
}

/*
 * Whether the client gets this line: notices always, events when its filter matches. With
 * exe= or args=, an EXEC that passes them makes the client remember its process, whose EXIT
 * (which forgets it) and OOM_KILL then pass them too. Call once per line and client, in
 * stream order: delivering, skipping or losing the line.
 */
static bool lm_ws_wants(const struct lm_ws_client *c, const struct lm_hist_chunk *ch,
			const struct lm_line *l)
{
	struct lm_filter_ev ev;

	if (!l->type || !c->has_filter || !lm_filter_is_active(&c->filter))
		return true;
	lm_ws_filter_ev(ch, l, &ev);
	if (c->procs) {
		if (l->type == LM_EV_EXEC) {
			if (lm_filter_match_program(&c->filter, &ev))
				lm_pset_add(c->procs, l->pid, l->start_ns);
		} else if (l->type == LM_EV_EXIT) {
			ev.program_matched = lm_pset_del(c->procs, l->pid, l->start_ns);
		} else {
			ev.program_matched = lm_pset_has(c->procs, l->pid, l->start_ns);
		}
	}
	return lm_filter_match(&c->filter, &ev);
}

/*
 * A client that has had something to read for LM_STATS_STUCK_MS without taking a message:
 * it is not waited for. A client that keeps reading, however slowly, is.
 */
static bool lm_ws_is_stuck(const struct lm_ws *ws, const struct lm_ws_client *c, uint64_t now)
{
	return c->closing || (c->pos < lm_hist_head(ws->hist) &&
			      now - c->waiting_since_ms >= LM_STATS_STUCK_MS);
}

/*
 * Whether the oldest chunk may go although some clients have not read it all: at shutdown,
 * once the kernel rings pass the high-water mark, or if each of them is stuck
 * (lm_ws_is_stuck). Waiting holds the slot, so the serializer and then the reader wait, and
 * the backlog stays in the kernel rings.
 */
static bool lm_ws_may_evict(const struct lm_ws *ws, uint64_t now)
{
	uint64_t next = lm_hist_next(ws->hist, lm_hist_tail(ws->hist));
	const struct lm_ws_client *c;

	if (ws->flushing ||
	    lm_stats_get(&ws->o.stats->kernel_ring_fill) >= LM_STATS_HIGH_WATER_PERMILLE)
		return true;
	for (c = ws->clients; c; c = c->next)
		if (c->pos < next && !lm_ws_is_stuck(ws, c, now))
			return false;
	return true;
}

/*
 * Evicts the oldest chunk. Each client that had not read all of it loses the rest, counted
 * now (it may never read again) and merged into the notice it gets before its next message.
 */
static void lm_ws_evict_oldest(struct lm_ws *ws, uint64_t now)
{
	uint64_t tail = lm_hist_tail(ws->hist), next = lm_hist_next(ws->hist, tail);
	const struct lm_hist_chunk *ch = lm_hist_at(ws->hist, tail);
	const struct lm_line *l = lm_hist_lines(ch);
	struct lm_ws_client *c;
	uint32_t i;

	for (c = ws->clients; c; c = c->next) {
		struct lm_ws_loss loss = { 0 };

		if (c->pos >= next)
			continue;
		for (i = c->line; i < ch->line_cnt; i++) {
			if (!l[i].type)
				continue; /* a kernel notice: no seq of its own */
			if (!loss.cnt)
				loss.first_seq = l[i].seq;
			loss.last_seq = l[i].seq;
			loss.cnt++;
			if (lm_ws_wants(c, ch, &l[i]))
				loss.matched++;
		}
		c->pos = next;
		c->line = 0;
		if (!loss.cnt)
			continue;
		if (!c->pending.cnt)
			c->pending.first_seq = loss.first_seq;
		c->pending.last_seq = loss.last_seq;
		c->pending.cnt += loss.cnt;
		c->pending.matched += loss.matched;
		c->lost += loss.cnt;
		lm_stats_add(&ws->o.stats->ws_dropped, loss.cnt);
		if (!c->behind_since_ms)
			c->behind_since_ms = now;
		c->last_loss_ms = now;
	}
	lm_hist_evict(ws->hist);
}

static void lm_ws_retry(lws_sorted_usec_list_t *sul);

/*
 * Copies every slot the serializer published into the history and gives the slot back.
 * When the history has no room and the oldest chunk may not go yet (lm_ws_may_evict), the
 * slot is held and tried again after LM_WS_RETRY_MS or a client's next message.
 */
static void lm_ws_take_published(struct lm_ws *ws)
{
	uint64_t now = lm_ws_now_ms();
	struct lm_ws_client *c;
	bool any = false;

	for (;;) {
		struct lm_txt_slot *slot;
		uint64_t head;

		if (ws->held == LM_WS_NO_SLOT && !lm_ring_idx_pop(ws->o.txt_ring, &ws->held))
			break;
		slot = lm_ring_pool_slot(ws->o.pool, ws->held);
		while (!lm_hist_has_room(ws->hist, slot) && lm_hist_len(ws->hist)) {
			if (!lm_ws_may_evict(ws, now)) {
				lws_sul_schedule(ws->ctx, 0, &ws->retry, lm_ws_retry,
						 LM_WS_RETRY_MS * LWS_US_PER_MS);
				goto out;
			}
			lm_ws_evict_oldest(ws, now);
		}
		head = lm_hist_head(ws->hist);
		/* sized at open for the largest slot: cannot fail */
		lm_hist_append(ws->hist, slot);
		/*
		 * A client that was up to date reads the new chunk next (which may sit after a
		 * skip marker at the old head), and has something to read from now on.
		 */
		for (c = ws->clients; c; c = c->next) {
			if (c->pos < head)
				continue;
			c->pos = lm_hist_newest(ws->hist);
			c->line = 0;
			c->waiting_since_ms = now;
		}
		lm_stats_add(&ws->o.stats->ws_published, slot->ev_cnt);
		lm_ring_idx_push(ws->o.free_ring, ws->held); /* sized for every slot */
		ws->held = LM_WS_NO_SLOT;
		any = true;
	}
out:
	if (any)
		lws_callback_on_writable_all_protocol(ws->ctx, &lm_ws_protocols[0]);
}

static void lm_ws_retry(lws_sorted_usec_list_t *sul)
{
	struct lm_ws *ws = lws_container_of(sul, struct lm_ws, retry);

	lm_ws_take_published(ws);
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

/*
 * Parses the /ws query (filters, since, instance; lws has percent-decoded each argument).
 * Returns 0, or -EINVAL with the reason in why.
 */
static int lm_ws_parse_query(struct lws *wsi, struct lm_ws *ws, struct lm_filter *f, char *why,
			     size_t why_cap)
{
	char arg[LM_FILTER_MAX_QUERY_BYTES + 1];
	size_t total = 0;
	int i, len;

	lm_filter_init(f);
	for (i = 0; (len = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i)) > 0; i++) {
		total += (size_t)len + 1;
		if (total > LM_FILTER_MAX_QUERY_BYTES + 1) {
			snprintf(why, why_cap, "bad filter: query longer than %d bytes",
				 LM_FILTER_MAX_QUERY_BYTES);
			return -EINVAL;
		}
		if (lws_hdr_copy_fragment(wsi, arg, sizeof(arg), WSI_TOKEN_HTTP_URI_ARGS, i) !=
		    len) {
			snprintf(why, why_cap, "bad filter: unreadable argument %d", i + 1);
			return -EINVAL;
		}
		if (lm_filter_parse_arg(f, arg, (size_t)len, why, why_cap))
			return -EINVAL;
	}
	if (f->has_since && f->has_instance && !strcmp(f->instance, ws->o.instance) &&
	    f->since > lm_hist_next_seq(ws->hist)) {
		snprintf(why, why_cap, "bad since: ahead of next_seq %llu",
			 (unsigned long long)lm_hist_next_seq(ws->hist));
		return -EINVAL;
	}
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
		n = ws->o.metrics(ws->o.metrics_ctx, lm_hist_text_bytes(ws->hist),
				  ws->o.replay_bytes, body, cap);
		if (n < 0)
			return lm_ws_respond(wsi, HTTP_STATUS_INTERNAL_SERVER_ERROR, "text/plain",
					     "metrics too large\n", 18);
		return lm_ws_respond(wsi, HTTP_STATUS_OK, "text/plain; version=0.0.4; charset=utf-8",
				     body, (size_t)n);
	case LM_HTTP_WS: {
		/* a page whose WebSocket was refused asks again in plain HTTP for the reason */
		struct lm_filter f;
		char why[LM_WS_WHY_BYTES + 1];

		if (lm_ws_parse_query(wsi, ws, &f, why, sizeof(why) - 1)) {
			n = (int)strlen(why);
			why[n++] = '\n';
			return lm_ws_respond(wsi, HTTP_STATUS_BAD_REQUEST, "text/plain", why,
					     (size_t)n);
		}
		return lm_ws_respond(wsi, HTTP_STATUS_BAD_REQUEST, "text/plain",
				     "use a WebSocket client\n", 23);
	}
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

/* Answers 400 with the reason as the plain-text body, so a client can show it. */
static int lm_ws_refuse_query(struct lws *wsi, struct lm_ws *ws, const char *why)
{
	unsigned char hdr[LWS_PRE + 512], *start = &hdr[LWS_PRE], *p = start;
	unsigned char *end = &hdr[sizeof(hdr) - 1];
	char body[LM_WS_WHY_BYTES + 2];
	int n = snprintf(body, sizeof(body), "%s\n", why);

	lm_stats_add(&ws->o.stats->ws_refused, 1);
	lm_stats_add(&ws->o.stats->limit_hits[LM_STATS_LIMIT_QUERY], 1);
	if (n < 0 || n >= (int)sizeof(body))
		n = (int)sizeof(body) - 1;
	if (lws_add_http_common_headers(wsi, HTTP_STATUS_BAD_REQUEST, "text/plain; charset=utf-8",
					(lws_filepos_t)n, &p, end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
					(const unsigned char *)"no-store", 8, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	memcpy(ws->scratch + LWS_PRE, body, (size_t)n);
	if (lws_write(wsi, (unsigned char *)ws->scratch + LWS_PRE, (size_t)n,
		      LWS_WRITE_HTTP_FINAL) != n)
		return -1;
	return 1;
}

/*
 * Decides an upgrade: only with this server's Host, GET /ws, the token, from an allowed
 * Origin, as a well-formed handshake, with a good query, below --max-clients. There is one
 * protocol, so this holds whatever subprotocol the client names. 0 accepts.
 */
static int lm_ws_filter_upgrade(struct lws *wsi, struct lm_ws *ws, struct lm_filter *f)
{
	char uri[64], origin[256], reason[LM_WS_WHY_BYTES];
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
	if (lm_ws_parse_query(wsi, ws, f, reason, sizeof(reason)))
		return lm_ws_refuse_query(wsi, ws, reason);
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

/*
 * Where a new client starts, from its since= and instance= (checked before the upgrade):
 * live without since; else at the first retained line with seq >= since, after an
 * "evicted" notice when since is older than the history, or at the oldest line after a
 * "restarted" notice when since belongs to another run of lifemon.
 */
static void lm_ws_client_seek(struct lm_ws *ws, struct lm_ws_client *c)
{
	const struct lm_filter *f = &c->filter;
	uint64_t first = lm_hist_first_seq(ws->hist), next = lm_hist_next_seq(ws->hist);

	c->pos = lm_hist_head(ws->hist);
	c->line = 0;
	c->live_pos = c->pos;
	c->hello_first = first ? first : next;
	c->hello_next = next;
	if (!c->has_filter || !f->has_since)
		return;
	if ((f->has_instance && strcmp(f->instance, ws->o.instance)) || f->since > next) {
		/* without instance=, a since ahead of this run can only be from an earlier one */
		c->start = LM_WS_START_RESTARTED;
		c->pos = lm_hist_tail(ws->hist);
		return;
	}
	if (!first)
		first = next;
	if (f->since < first) {
		c->start = LM_WS_START_EVICTED;
		c->start_first = f->since;
		c->start_last = first - 1;
	}
	lm_hist_seek(ws->hist, f->since, &c->pos, &c->line);
}

static int lm_ws_client_add(struct lm_ws *ws, struct lm_ws_client *c, struct lws *wsi)
{
	c->buf = malloc(ws->buf_bytes);
	if (!c->buf || (lm_filter_has_program(&c->filter) && lm_pset_open(&c->procs)))
		return -1; /* lws closes the connection (CLOSED frees what was made) */
	lm_ws_client_seek(ws, c);
	c->waiting_since_ms = lm_ws_now_ms();
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
	/* the HELLO goes first, then the replay */
	lws_callback_on_writable(wsi);
	return 0;
}

static void lm_ws_client_del(struct lm_ws *ws, struct lm_ws_client *c)
{
	free(c->buf);
	c->buf = NULL;
	lm_pset_close(c->procs);
	c->procs = NULL;
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
	/* a client that held the oldest chunk may have held a slot back */
	if (ws->held != LM_WS_NO_SLOT)
		lws_sul_schedule(ws->ctx, 0, &ws->retry, lm_ws_retry, 0);
}

/* Writes a notice the client is owed, if any: HELLO, its start notice, its loss. */
static int lm_ws_write_notice(struct lws *wsi, struct lm_ws *ws, struct lm_ws_client *c,
			      bool *sent)
{
	char *out = c->buf + LWS_PRE, filter[LM_FILTER_MAX_QUERY_BYTES * 3 + 1];
	size_t cap = ws->buf_bytes - LWS_PRE;
	int n;

	*sent = true;
	if (!c->hello_sent) {
		if (lm_filter_format(&c->filter, filter, sizeof(filter)) < 0)
			filter[0] = '\0';
		n = lm_json_hello(out, cap, ws->o.instance, ws->o.version, c->hello_first,
				  c->hello_next, filter);
		c->hello_sent = true;
	} else if (c->start == LM_WS_START_EVICTED) {
		n = lm_json_lost(out, cap, c->start_first, c->start_last,
				 c->start_last - c->start_first + 1, "evicted");
		c->start = LM_WS_START_LIVE;
	} else if (c->start == LM_WS_START_RESTARTED) {
		n = lm_json_restarted(out, cap, c->filter.has_instance ? c->filter.instance : "",
				      c->filter.since);
		c->start = LM_WS_START_LIVE;
	} else if (c->pending.cnt) {
		n = lm_json_lost_matched(out, cap, c->pending.first_seq, c->pending.last_seq,
					 c->pending.cnt, c->pending.matched, "slow_client");
		memset(&c->pending, 0, sizeof(c->pending));
	} else {
		*sent = false;
		return 0;
	}
	if (n < 0 || lws_write(wsi, (unsigned char *)out, (size_t)n, LWS_WRITE_TEXT) < n)
		return -1;
	return 0;
}

/*
 * Writes the client's next message: a notice it is owed, else the lines it wants from the
 * chunk at its cursor. A whole chunk for a client without a filter goes out in place (the
 * chunk has LWS_PRE bytes of headroom); otherwise the lines it wants are copied into its own
 * buffer, and chunks its filter empties are skipped (at most LM_WS_SKIP_CHUNKS per call).
 */
static int lm_ws_write_next(struct lws *wsi, struct lm_ws *ws, struct lm_ws_client *c)
{
	bool all = !c->has_filter || !lm_filter_is_active(&c->filter), sent;
	uint64_t head = lm_hist_head(ws->hist);
	int k;

	if (c->closing)
		return -1; /* lws sends the close frame with the reason set when it was closed */
	if (lm_ws_write_notice(wsi, ws, c, &sent))
		return -1;
	for (k = 0; !sent && k < LM_WS_SKIP_CHUNKS && c->pos < head; k++) {
		const struct lm_hist_chunk *ch = lm_hist_at(ws->hist, c->pos);
		const struct lm_line *l = lm_hist_lines(ch);
		bool replay = c->pos < c->live_pos;
		uint64_t ev = 0, skipped = 0;
		size_t n = 0, cap = ws->buf_bytes - LWS_PRE;
		uint32_t i;

		if (all && !c->line) {
			if (lws_write(wsi, (unsigned char *)lm_hist_text(ch), ch->text_len,
				      LWS_WRITE_TEXT) < (int)ch->text_len)
				return -1;
			ev = ch->ev_cnt;
			c->pos = lm_hist_next(ws->hist, c->pos);
			sent = true;
		} else {
			for (i = c->line; i < ch->line_cnt; i++) {
				/* room first: a line is judged once (lm_ws_wants) */
				if (n + l[i].len > cap)
					break; /* the rest in the next message */
				if (!lm_ws_wants(c, ch, &l[i])) {
					skipped++;
					continue;
				}
				memcpy(c->buf + LWS_PRE + n, lm_hist_text(ch) + l[i].off, l[i].len);
				n += l[i].len;
				ev += l[i].type != 0;
			}
			c->line = i;
			if (i == ch->line_cnt) {
				c->pos = lm_hist_next(ws->hist, c->pos);
				c->line = 0;
			}
			if (n) {
				if (lws_write(wsi, (unsigned char *)c->buf + LWS_PRE, n,
					      LWS_WRITE_TEXT) < (int)n)
					return -1;
				sent = true;
			}
		}
		lm_stats_add(&ws->o.stats->ws_delivered, ev);
		lm_stats_add(&ws->o.stats->ws_filtered, skipped);
		if (replay)
			lm_stats_add(&ws->o.stats->ws_replayed, ev + skipped);
	}
	c->waiting_since_ms = lm_ws_now_ms();
	if (c->pos >= head && !c->pending.cnt)
		c->behind_since_ms = 0; /* caught up */
	else
		lws_callback_on_writable(wsi);
	/* it moved on: a slot held for room in the history may fit now */
	if (ws->held != LM_WS_NO_SLOT)
		lm_ws_take_published(ws);
	return 0;
}

/*
 * Every 500 ms: close clients that lost events slow_ms ago, have not caught up since, and
 * still fail: stuck (lm_ws_is_stuck) or losing again within the last second. A client that
 * lost events in a burst and now reads its way through the history is left alone.
 */
static void lm_ws_check_slow(lws_sorted_usec_list_t *sul)
{
	struct lm_ws *ws = lws_container_of(sul, struct lm_ws, sul);
	uint64_t now = lm_ws_now_ms();
	struct lm_ws_client *c;

	for (c = ws->clients; c; c = c->next) {
		char reason[96];
		int n;

		if (c->closing || !c->behind_since_ms || now - c->behind_since_ms < ws->o.slow_ms ||
		    (!lm_ws_is_stuck(ws, c, now) && now - c->last_loss_ms >= LM_STATS_STUCK_MS))
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
		return lm_ws_filter_upgrade(wsi, ws, &ws->query);
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		/* second line: the same rules once the protocol is bound; the query is kept */
		if (!c)
			return -1;
		c->has_filter = true;
		return lm_ws_filter_upgrade(wsi, ws, &c->filter);
	case LWS_CALLBACK_ESTABLISHED:
		if (!c || !c->has_filter)
			return -1;
		return lm_ws_client_add(ws, c, wsi);
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
	struct lm_txt_slot big, *slot0;
	struct lm_ws *ws;
	uint64_t ring;
	int err;

	*out = NULL;
	if (!opts->txt_ring || !opts->free_ring || !opts->pool || !opts->metrics ||
	    !opts->replay_bytes || !opts->instance || !opts->version ||
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
	/*
	 * The history keeps at most replay_bytes of JSON text in a ring half as large again,
	 * which also holds each line's index entry and strings (about a third of the text for
	 * typical events; more, and less text is kept, when arguments are long). The ring takes
	 * at least four of the largest chunks a slot can make.
	 */
	slot0 = lm_ring_pool_slot(opts->pool, 0);
	big = *slot0;
	big.len = big.cap;
	big.line_cnt = LM_RING_SLOT_LINES;
	big.str_len = big.str_cap;
	ring = opts->replay_bytes + opts->replay_bytes / 2;
	if (ring < 4 * (uint64_t)lm_hist_chunk_bytes(&big, LWS_PRE))
		ring = 4 * (uint64_t)lm_hist_chunk_bytes(&big, LWS_PRE);
	ring = (ring + 63) & ~63ULL;
	err = lm_hist_open((size_t)ring, opts->replay_bytes, LWS_PRE, &ws->hist);
	if (err)
		goto out;
	ws->held = LM_WS_NO_SLOT;
	ws->buf_bytes = LWS_PRE + slot0->cap;

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
		if (!c->closing && (c->pending.cnt || !c->hello_sent ||
				    c->pos < lm_hist_head(ws->hist)))
			return false;
	return true;
}

/* Shutdown: publish the last slots and let clients take them, up to flush_ms. */
static void lm_ws_flush(struct lm_ws *ws)
{
	uint64_t end = lm_ws_now_ms() + (uint64_t)ws->flush_ms;

	/* nobody is waited for now: every slot goes into the history, whoever has not read */
	ws->flushing = true;
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
	if (ws->held != LM_WS_NO_SLOT)
		left += lm_ring_pool_slot(ws->o.pool, ws->held)->ev_cnt;
	ws->held = LM_WS_NO_SLOT;
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
	lm_hist_close(ws->hist);
	free(ws->scratch);
	free(ws);
}
