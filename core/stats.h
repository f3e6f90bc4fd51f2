/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Counters of every pipeline stage and their Prometheus rendering.
 * Each counter has exactly one writer thread (named beside it) and is updated with a
 * relaxed load + relaxed store: with one writer no increment can be lost, and readers
 * (the ws thread rendering /metrics, main's summary) only need each value to be
 * untorn, not ordered against other memory, so relaxed atomics are enough.
 */
#ifndef LM_STATS_H
#define LM_STATS_H

/*
 * The kernel-ring fill at which consumers stop being waited for. A consumer (a WebSocket
 * client, a sink) that makes progress holds the pipeline back, and the backlog waits in the
 * kernel rings, which is what they are for. Once the fullest ring passes three quarters,
 * waiting longer would soon make the kernel drop events for every consumer, so whoever is
 * behind is dropped for instead. The quarter left is 1 MiB per CPU at the default
 * --ring-size (about 6,000 records, most of a second of a full storm on one CPU): far more
 * than the few milliseconds a drop takes to free the pipeline, and room for the catch-up to
 * begin while the storm goes on.
 */
#define LM_STATS_HIGH_WATER_PERMILLE 750
/* A consumer that made no progress for this long is not waited for (it may never read). */
#define LM_STATS_STUCK_MS 1000

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/types.h>

#include "bpf/lm_event.h"

enum lm_stats_limit {
	LM_STATS_LIMIT_CLIENTS,		/* upgrade refused: --max-clients reached */
	LM_STATS_LIMIT_CLIENT_MESSAGES,	/* client closed: it sent too much */
	LM_STATS_LIMIT_TOKEN,		/* request refused: missing or wrong bearer token */
	LM_STATS_LIMIT_ORIGIN,		/* upgrade refused: foreign Origin */
	LM_STATS_LIMIT_PATH,		/* upgrade refused: not GET /ws */
	LM_STATS_LIMIT_INCOMPLETE,	/* closed before a whole request: header too large,
					 * handshake or idle timeout, garbage */
	LM_STATS_LIMIT_HOST,		/* request refused: Host missing or not this server's */
	LM_STATS_LIMIT_UPGRADE,		/* upgrade refused: malformed WebSocket handshake */
	LM_STATS_LIMIT_QUERY,		/* /ws refused: a bad filter, since or instance */
	LM_STATS_LIMIT_CNT,
};

/* Pipeline stages, for what a stage abandoned when it or its peer failed. */
enum lm_stats_stage {
	LM_STATS_STAGE_READER,		/* taken from the kernel rings, never entered ev_ring */
	LM_STATS_STAGE_SER,		/* entered ev_ring, never serialized */
	LM_STATS_STAGE_WS,		/* serialized, never entered the broadcast ring */
	LM_STATS_STAGE_CNT,
};

enum lm_stats_sink_id {
	LM_STATS_SINK_STDOUT,
	LM_STATS_SINK_FILE,
	LM_STATS_SINK_NATS,		/* delivered: acked by JetStream (net/nats.c) */
	LM_STATS_SINK_CNT,
};

struct lm_stats_sink {
	_Atomic uint64_t delivered;	/* events fully written */
	_Atomic uint64_t dropped;	/* events the sink could not take */
	_Atomic uint64_t bytes;		/* bytes written */
	_Atomic uint64_t errors;	/* failed writes */
	_Atomic uint64_t slow;		/* waits for the device that timed out */
};

/* Upper bounds of lifemon_nats_ack_seconds' buckets, in microseconds (+Inf follows). */
#define LM_STATS_NATS_ACK_BUCKETS 12
extern const uint32_t lm_stats_nats_ack_le_us[LM_STATS_NATS_ACK_BUCKETS];

/*
 * The NATS JetStream sink (net/nats.c). `taken` is written by the serializer;
 * sink[LM_STATS_SINK_NATS].dropped by the serializer (a full backlog), lm-nats (a message
 * the servers refuse) and main after the threads were joined (unacked at shutdown), each
 * with atomic_fetch_add; everything else here by the lm-nats thread (connected also by
 * nats.c's callback thread when a connection is lost, a store). The books: events
 * serialized = taken + dropped at put; taken = delivered (acked) + rejected + dropped at
 * shutdown + pending.
 */
struct lm_stats_nats {
	_Atomic uint64_t taken;		/* events that entered the backlog */
	_Atomic uint64_t shutdown_dropped; /* of those, dropped at shutdown (never acked) */
	_Atomic uint64_t rejected;	/* of those, refused by the servers for good (too large) */
	_Atomic uint64_t backlog_bytes;	/* gauge: bytes in the backlog, in flight included */
	_Atomic uint64_t backlog_peak;	/* highest backlog_bytes seen (writer: serializer) */
	_Atomic uint64_t inflight;	/* gauge: messages published, not yet acked or failed */
	_Atomic uint64_t published;	/* messages handed to the connection, retries included */
	_Atomic uint64_t retries;	/* messages published again after a failure */
	_Atomic uint64_t duplicates;	/* acks saying the server already had the message */
	_Atomic uint64_t failures;	/* publishes that failed or timed out */
	_Atomic uint64_t lost_notices;	/* LOST notices of our own drops, acked */
	_Atomic uint64_t ack_bucket[LM_STATS_NATS_ACK_BUCKETS + 1]; /* round trips, by bucket */
	_Atomic uint64_t ack_sum_us;
	_Atomic uint64_t reconnects;	/* connections made after one was lost */
	_Atomic uint64_t connected;	/* gauge 0/1; writers: lm-nats, nats.c's lost callback */
	_Atomic uint64_t stream_ready;	/* gauge 0/1: the stream was found or created */
};

struct lm_stats {
	/* writer: reader thread */
	_Atomic uint64_t read[LM_EV_TYPE_CNT];	/* records taken from the kernel rings */
	_Atomic uint64_t reader_invalid;	/* records of a wrong size or version */
	_Atomic uint64_t reader_ring_bytes;	/* kernel ring bytes the records read took,
						 * header and padding included */
	_Atomic uint64_t reader_full_waits;	/* times ev_ring was full and the reader waited */
	_Atomic uint64_t reader_order_forced;	/* records released before the merge could place
						 * them (a CPU stalled mid-program); 0 normally */
	/*
	 * Fill of the fullest kernel ring, in 1/1000 of its size (gauge), and the highest
	 * value seen. The ws thread and the sinks read it to decide when waiting for a slow
	 * consumer must stop (LM_STATS_HIGH_WATER_PERMILLE).
	 */
	_Atomic uint64_t kernel_ring_fill;
	_Atomic uint64_t kernel_ring_fill_peak;
	/* writer: serializer thread */
	_Atomic uint64_t serialized;		/* events turned into JSON */
	_Atomic uint64_t ser_slot_waits;	/* times no free text slot was available */
	struct lm_stats_sink sink[LM_STATS_SINK_CNT];
	struct lm_stats_nats nats;
	/* writer: ws thread */
	_Atomic uint64_t ws_published;		/* events entered into the replay history */
	_Atomic uint64_t ws_delivered;		/* events written to clients, summed over clients */
	_Atomic uint64_t ws_filtered;		/* events a client's filter skipped, summed */
	_Atomic uint64_t ws_replayed;		/* events delivered or filtered that were published
						 * before the client connected (since=) */
	_Atomic uint64_t ws_dropped;		/* events slow clients missed, summed over clients */
	_Atomic uint64_t ws_clients;		/* connected WebSocket clients (gauge) */
	_Atomic uint64_t ws_connections;	/* WebSocket connections accepted */
	_Atomic uint64_t ws_refused;		/* upgrades refused (any rule) */
	_Atomic uint64_t ws_slow_disconnects;	/* clients closed for staying behind */
	_Atomic uint64_t http_requests;		/* HTTP requests answered */
	_Atomic uint64_t limit_hits[LM_STATS_LIMIT_CNT]; /* requests refused or closed, by rule */
	/*
	 * Events abandoned because a stage failed, by the stage that held them. Writers, one at
	 * a time: [READER] the reader thread; [SER] the serializer thread, then main once it
	 * joined it (lm_ser_stop); [WS] main once it joined the ws thread (lm_ws_stop). When
	 * every thread has been joined: events_total = kernel_dropped + read + abandoned[READER],
	 * read = serialized + abandoned[SER], serialized = ws_published + abandoned[WS].
	 */
	_Atomic uint64_t abandoned[LM_STATS_STAGE_CNT];
};

/* Single-writer increment; see the header comment for why relaxed is enough. */
static inline void lm_stats_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static inline void lm_stats_set(_Atomic uint64_t *c, uint64_t v)
{
	atomic_store_explicit(c, v, memory_order_relaxed);
}

static inline uint64_t lm_stats_get(const _Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* Values gathered by the caller at render time: kernel maps, ring fill levels, process. */
struct lm_stats_view {
	int kernel_ok;				/* 0 if the kernel counters could not be read */
	uint64_t kernel_seen[LM_EV_TYPE_CNT];
	uint64_t kernel_dropped[LM_EV_TYPE_CNT];
	const uint64_t *kernel_dropped_cpu;	/* ncpus * LM_EV_TYPE_CNT, or NULL */
	int ncpus;
	uint32_t ev_ring_fill, ev_ring_cap;
	uint32_t txt_ring_fill, txt_ring_cap;
	uint64_t hist_bytes, hist_cap;	/* JSON text in the replay history */
	int sink_enabled[LM_STATS_SINK_CNT];
	uint64_t rss_bytes;
	double cpu_seconds;
	double start_time_seconds;		/* Unix time the process started */
	int attached;				/* BPF programs attached */
};

/*
 * Renders the Prometheus text exposition (version 0.0.4) into buf.
 * Returns the length, or -ENOSPC if cap is too small. Any thread.
 */
int lm_stats_render(const struct lm_stats *s, const struct lm_stats_view *v, char *buf,
		    size_t cap);

#endif /* LM_STATS_H */
