/* SPDX-License-Identifier: GPL-2.0 */
/*
 * WebSocket/HTTP server: the lm-ws thread, which owns every socket. It moves published text
 * slots from txt_ring into the broadcast ring, writes them to each /ws client at that
 * client's pace, returns evicted slots on free_ring, and answers /, /healthz and /metrics.
 */
#ifndef LM_WS_H
#define LM_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ring.h"
#include "core/stats.h"

struct lm_ws;

/*
 * Renders /metrics on the lm-ws thread. hist_bytes: JSON text the replay history holds, of
 * hist_cap. Returns the length written into buf, or -ENOSPC.
 */
typedef int (*lm_ws_metrics_fn)(void *ctx, uint64_t hist_bytes, uint64_t hist_cap, char *buf,
				size_t cap);

/*
 * Called once on the lm-ws thread when its service loop fails, before the thread ends: the
 * serializer may be waiting for text slots that will never come back. Must not block.
 */
typedef void (*lm_ws_fail_fn)(void *ctx);

struct lm_ws_opts {
	const char *host;		/* numeric address to listen on */
	uint16_t port;
	struct lm_idx_ring *txt_ring;	/* consumed by this thread */
	struct lm_idx_ring *free_ring;	/* produced by this thread */
	struct lm_txt_pool *pool;
	uint64_t replay_bytes;		/* JSON text kept for clients and since= (--replay-bytes) */
	const char *instance;		/* this run's id (16 hex digits), told in HELLO */
	const char *version;		/* lifemon's version, told in HELLO */
	uint32_t slow_ms;		/* close a client still far behind this long after a loss */
	struct lm_stats *stats;
	lm_ws_metrics_fn metrics;
	void *metrics_ctx;
	const char *token;		/* bearer token every request needs; NULL: none */
	const char *const *allow_origins; /* extra allowed Origins (--allow-origin) */
	size_t allow_origin_cnt;
	const char *const *allow_hosts;	/* extra allowed Host names (--allow-host) */
	size_t allow_host_cnt;
	uint32_t max_clients;		/* WebSocket clients at most */
	uint32_t max_header_bytes;	/* request headers larger than this are refused */
	uint32_t handshake_timeout_s;	/* half-open connections are closed after this */
	uint32_t idle_timeout_s;	/* idle HTTP keep-alive connections are closed after this */
	lm_ws_fail_fn on_fail;		/* may be NULL */
	void *fail_ctx;
};

/* What a client may send: lifemon's clients only read. */
#define LM_WS_CLIENT_MAX_MSG_BYTES 1024
#define LM_WS_CLIENT_MAX_FRAMES 16

/* Bytes every text slot needs in front of its text (LWS_PRE). */
uint32_t lm_ws_headroom_bytes(void);

/*
 * Creates the server and binds the listening socket (main thread, before BPF attach).
 * Returns 0, -EADDRINUSE (port taken), -EADDRNOTAVAIL (address not on this host) or another
 * -errno from bind(2), -EINVAL, -ENOMEM.
 */
int lm_ws_open(const struct lm_ws_opts *opts, struct lm_ws **out);

/* Starts the lm-ws thread. Returns 0 or -errno. */
int lm_ws_start(struct lm_ws *ws);

/* /healthz answers 200 once ready is set, 503 before. Any thread. */
void lm_ws_set_ready(struct lm_ws *ws, bool ready);

/* Wakes the lm-ws thread to publish new slots. Any thread; never blocks. */
void lm_ws_wake(struct lm_ws *ws);

/*
 * Publishes what is left in txt_ring, gives clients up to flush_ms to receive it, then
 * stops and joins the thread. Call after lm_ser_stop: events in slots still in txt_ring
 * after the join (the thread failed) are counted in stats->abandoned[LM_STATS_STAGE_WS].
 * Returns the thread's error (0 or -EIO).
 */
int lm_ws_stop(struct lm_ws *ws, int flush_ms);

/* True once the service loop ended on an error; main polls it. Any thread. */
bool lm_ws_has_failed(struct lm_ws *ws);

void lm_ws_close(struct lm_ws *ws);

#endif /* LM_WS_H */
