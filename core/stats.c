// SPDX-License-Identifier: GPL-2.0
/*
 * Prometheus rendering of the pipeline counters. Called by the ws thread for /metrics;
 * reads counters other threads write (relaxed, see stats.h) and allocates nothing.
 */
#include "core/stats.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

struct lm_stats_out {
	char *buf;
	size_t cap;
	size_t len;
	bool ok;
};

static void lm_stats_printf(struct lm_stats_out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void lm_stats_printf(struct lm_stats_out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!o->ok)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len) {
		o->ok = false;
		return;
	}
	o->len += (size_t)n;
}

static void lm_stats_head(struct lm_stats_out *o, const char *name, const char *type,
			  const char *help)
{
	lm_stats_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static const char *const lm_stats_type[LM_EV_EVENT_CNT] = { NULL, "exec", "exit", "oom_kill" };
static const char *const lm_stats_sink_name[LM_STATS_SINK_CNT] = { "stdout", "file",
									   "nats" };
const uint32_t lm_stats_nats_ack_le_us[LM_STATS_NATS_ACK_BUCKETS] = {
	500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000, 2500000, 10000000
};
static const char *const lm_stats_stage_name[LM_STATS_STAGE_CNT] = { "reader", "serializer",
								      "ws" };
static const char *const lm_stats_limit_name[LM_STATS_LIMIT_CNT] = {
	"clients", "client_messages", "token", "origin", "path", "incomplete_request",
	"host", "upgrade", "query"
};

static void lm_stats_by_type(struct lm_stats_out *o, const char *name, const uint64_t *vals)
{
	int t;

	for (t = 1; t < LM_EV_EVENT_CNT; t++)
		lm_stats_printf(o, "%s{type=\"%s\"} %" PRIu64 "\n", name, lm_stats_type[t],
				vals[t]);
}

/* A metric with a single unlabelled sample. */
static void lm_stats_one(struct lm_stats_out *o, const char *name, const char *type,
			 const char *help, uint64_t value)
{
	lm_stats_head(o, name, type, help);
	lm_stats_printf(o, "%s %" PRIu64 "\n", name, value);
}

/* One counter of struct lm_stats_sink (at `field`) for every enabled sink. */
static void lm_stats_by_sink(struct lm_stats_out *o, const struct lm_stats *s,
			     const struct lm_stats_view *v, const char *name, const char *help,
			     size_t field)
{
	int k;

	lm_stats_head(o, name, "counter", help);
	for (k = 0; k < LM_STATS_SINK_CNT; k++) {
		const _Atomic uint64_t *c = (const void *)((const char *)&s->sink[k] + field);

		if (v->sink_enabled[k])
			lm_stats_printf(o, "%s{sink=\"%s\"} %" PRIu64 "\n", name,
					lm_stats_sink_name[k], lm_stats_get(c));
	}
}

static void lm_stats_render_nats(struct lm_stats_out *o, const struct lm_stats *s)
{
	const struct lm_stats_nats *n = &s->nats;
	/* the subtrahends first: a pending count read this way is never negative */
	uint64_t done = lm_stats_get(&s->sink[LM_STATS_SINK_NATS].delivered) +
			lm_stats_get(&n->shutdown_dropped) + lm_stats_get(&n->rejected);
	uint64_t cum = 0, taken = lm_stats_get(&n->taken);
	int b;

	lm_stats_head(o, "lifemon_nats_ack_seconds", "histogram",
		      "Round trip from publishing a message to its JetStream ack.");
	for (b = 0; b < LM_STATS_NATS_ACK_BUCKETS; b++) {
		cum += lm_stats_get(&n->ack_bucket[b]);
		lm_stats_printf(o, "lifemon_nats_ack_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
				lm_stats_nats_ack_le_us[b] / 1e6, cum);
	}
	cum += lm_stats_get(&n->ack_bucket[LM_STATS_NATS_ACK_BUCKETS]);
	lm_stats_printf(o, "lifemon_nats_ack_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cum);
	lm_stats_printf(o, "lifemon_nats_ack_seconds_sum %.6f\n",
			lm_stats_get(&n->ack_sum_us) / 1e6);
	lm_stats_printf(o, "lifemon_nats_ack_seconds_count %" PRIu64 "\n", cum);
	lm_stats_one(o, "lifemon_nats_pending_events", "gauge",
		     "Events in the NATS sink not yet acked nor dropped: serialized = delivered + dropped + pending.",
		     taken > done ? taken - done : 0);
	lm_stats_one(o, "lifemon_nats_backlog_bytes", "gauge",
		     "Bytes of messages waiting for a JetStream ack, in flight included.",
		     lm_stats_get(&n->backlog_bytes));
	lm_stats_one(o, "lifemon_nats_backlog_peak_bytes", "gauge",
		     "Highest lifemon_nats_backlog_bytes since start.",
		     lm_stats_get(&n->backlog_peak));
	lm_stats_one(o, "lifemon_nats_inflight", "gauge",
		     "Messages published and not yet acked or failed.",
		     lm_stats_get(&n->inflight));
	lm_stats_one(o, "lifemon_nats_published_total", "counter",
		     "Messages handed to the NATS connection, retries included.",
		     lm_stats_get(&n->published));
	lm_stats_one(o, "lifemon_nats_retries_total", "counter",
		     "Messages published again, with the same Nats-Msg-Id, after a failure.",
		     lm_stats_get(&n->retries));
	lm_stats_one(o, "lifemon_nats_failures_total", "counter",
		     "Publishes that failed or got no ack in time (each is retried).",
		     lm_stats_get(&n->failures));
	lm_stats_one(o, "lifemon_nats_duplicates_total", "counter",
		     "Acks in which the server said it already had the message.",
		     lm_stats_get(&n->duplicates));
	lm_stats_one(o, "lifemon_nats_rejected_total", "counter",
		     "Events the servers refused for good (larger than they take); a LOST notice replaced each.",
		     lm_stats_get(&n->rejected));
	lm_stats_one(o, "lifemon_nats_lost_notices_total", "counter",
		     "LOST notices for this sink's drops, acked into the stream.",
		     lm_stats_get(&n->lost_notices));
	lm_stats_one(o, "lifemon_nats_reconnects_total", "counter",
		     "Times the NATS connection was re-established.",
		     lm_stats_get(&n->reconnects));
	lm_stats_one(o, "lifemon_nats_connected", "gauge",
		     "1 while connected to a NATS server.", lm_stats_get(&n->connected));
	lm_stats_one(o, "lifemon_nats_stream_ready", "gauge",
		     "1 once the JetStream stream was found or created.",
		     lm_stats_get(&n->stream_ready));
}

int lm_stats_render(const struct lm_stats *s, const struct lm_stats_view *v, char *buf,
		    size_t cap)
{
	struct lm_stats_out o = { .buf = buf, .cap = cap, .ok = cap > 0 };
	uint64_t read[LM_EV_TYPE_CNT] = { 0 };
	int t, k;

	for (t = 0; t < LM_EV_TYPE_CNT; t++)
		read[t] = lm_stats_get(&s->read[t]);

	if (v->kernel_ok) {
		lm_stats_head(&o, "lifemon_events_total", "counter",
			      "Events seen by the kernel programs, by type.");
		lm_stats_by_type(&o, "lifemon_events_total", v->kernel_seen);
		lm_stats_head(&o, "lifemon_kernel_dropped_total", "counter",
			      "Events lost in the kernel because a ring buffer was full.");
		lm_stats_by_type(&o, "lifemon_kernel_dropped_total", v->kernel_dropped);
	}
	if (v->kernel_ok && v->kernel_dropped_cpu) {
		lm_stats_head(&o, "lifemon_kernel_cpu_dropped_total", "counter",
			      "Events lost in the kernel because a ring buffer was full, by CPU.");
		for (k = 0; k < v->ncpus; k++)
			for (t = 1; t < LM_EV_EVENT_CNT; t++)
				lm_stats_printf(&o, "lifemon_kernel_cpu_dropped_total{cpu=\"%d\","
						"type=\"%s\"} %" PRIu64 "\n", k, lm_stats_type[t],
						v->kernel_dropped_cpu[k * LM_EV_TYPE_CNT + t]);
	}
	lm_stats_head(&o, "lifemon_read_total", "counter",
		      "Events read from the kernel ring buffers, by type.");
	lm_stats_by_type(&o, "lifemon_read_total", read);
	lm_stats_head(&o, "lifemon_cgroup_records_total", "counter",
		      "Cgroup creations and removals the kernel programs saw (they name cgroups; "
		      "not events), by what became of them.");
	if (v->kernel_ok) {
		lm_stats_printf(&o, "lifemon_cgroup_records_total{result=\"seen\"} %" PRIu64 "\n",
				v->kernel_seen[LM_EV_CGROUP]);
		lm_stats_printf(&o, "lifemon_cgroup_records_total{result=\"kernel_dropped\"} %" PRIu64
				"\n", v->kernel_dropped[LM_EV_CGROUP]);
	}
	lm_stats_printf(&o, "lifemon_cgroup_records_total{result=\"read\"} %" PRIu64 "\n",
			read[LM_EV_CGROUP]);
	lm_stats_one(&o, "lifemon_read_ring_bytes_total", "counter",
		     "Kernel ring bytes the records read took (8-byte header and padding included): "
		     "divided by the records read, the average record's footprint.",
		     lm_stats_get(&s->reader_ring_bytes));
	lm_stats_one(&o, "lifemon_reader_invalid_total", "counter",
		     "Ring buffer records that failed decoding (size, version, type or lengths).",
		     lm_stats_get(&s->reader_invalid));
	lm_stats_one(&o, "lifemon_reader_order_forced_total", "counter",
		     "Events released before kernel-time order was certain (staging full).",
		     lm_stats_get(&s->reader_order_forced));
	lm_stats_head(&o, "lifemon_kernel_ring_fill_ratio", "gauge",
		      "Fill of the fullest kernel ring buffer (0 to 1).");
	lm_stats_printf(&o, "lifemon_kernel_ring_fill_ratio %.3f\n",
			(double)lm_stats_get(&s->kernel_ring_fill) / 1000);
	lm_stats_head(&o, "lifemon_kernel_ring_fill_peak_ratio", "gauge",
		      "Highest fill of any kernel ring buffer since start (0 to 1).");
	lm_stats_printf(&o, "lifemon_kernel_ring_fill_peak_ratio %.3f\n",
			(double)lm_stats_get(&s->kernel_ring_fill_peak) / 1000);
	lm_stats_head(&o, "lifemon_stage_waits_total", "counter",
		      "Times a stage waited for the next one (backpressure, nothing lost).");
	lm_stats_printf(&o, "lifemon_stage_waits_total{stage=\"reader\"} %" PRIu64 "\n",
			lm_stats_get(&s->reader_full_waits));
	lm_stats_printf(&o, "lifemon_stage_waits_total{stage=\"serializer\"} %" PRIu64 "\n",
			lm_stats_get(&s->ser_slot_waits));
	lm_stats_one(&o, "lifemon_serialized_total", "counter",
		     "Events written as JSON.",
		     lm_stats_get(&s->serialized));
	lm_stats_head(&o, "lifemon_abandoned_total", "counter",
		      "Events a stage held when it or the next stage failed, by that stage.");
	for (k = 0; k < LM_STATS_STAGE_CNT; k++)
		lm_stats_printf(&o, "lifemon_abandoned_total{stage=\"%s\"} %" PRIu64 "\n",
				lm_stats_stage_name[k], lm_stats_get(&s->abandoned[k]));

	lm_stats_by_sink(&o, s, v, "lifemon_sink_delivered_total", "Events written by each sink.",
			 offsetof(struct lm_stats_sink, delivered));
	lm_stats_by_sink(&o, s, v, "lifemon_sink_dropped_total",
			 "Events a sink could not write in time.",
			 offsetof(struct lm_stats_sink, dropped));
	lm_stats_by_sink(&o, s, v, "lifemon_sink_written_bytes_total", "Bytes written by each sink.",
			 offsetof(struct lm_stats_sink, bytes));
	lm_stats_by_sink(&o, s, v, "lifemon_sink_errors_total", "Failed sink writes.",
			 offsetof(struct lm_stats_sink, errors));
	lm_stats_by_sink(&o, s, v, "lifemon_sink_stalls_total",
			 "Times a sink's device made no progress for 100 ms and it began dropping.",
			 offsetof(struct lm_stats_sink, slow));
	if (v->sink_enabled[LM_STATS_SINK_NATS])
		lm_stats_render_nats(&o, s);
	lm_stats_one(&o, "lifemon_ws_published_total", "counter",
		     "Events entered into the WebSocket replay history.",
		     lm_stats_get(&s->ws_published));
	lm_stats_one(&o, "lifemon_ws_filtered_total", "counter",
		     "Events a WebSocket client's filter left out, summed over clients.",
		     lm_stats_get(&s->ws_filtered));
	lm_stats_one(&o, "lifemon_ws_replayed_total", "counter",
		     "Events delivered or filtered that were published before the client connected, summed.",
		     lm_stats_get(&s->ws_replayed));
	lm_stats_one(&o, "lifemon_ws_delivered_total", "counter",
		     "Events written to WebSocket clients, summed over clients.",
		     lm_stats_get(&s->ws_delivered));
	lm_stats_one(&o, "lifemon_ws_dropped_total", "counter",
		     "Events slow WebSocket clients missed, summed over clients.",
		     lm_stats_get(&s->ws_dropped));
	lm_stats_one(&o, "lifemon_ws_clients", "gauge",
		     "Connected WebSocket clients.",
		     lm_stats_get(&s->ws_clients));
	lm_stats_one(&o, "lifemon_ws_connections_total", "counter",
		     "WebSocket connections accepted.",
		     lm_stats_get(&s->ws_connections));
	lm_stats_one(&o, "lifemon_ws_refused_total", "counter",
		     "WebSocket upgrades refused, by any rule (see lifemon_limit_hits_total).",
		     lm_stats_get(&s->ws_refused));
	lm_stats_one(&o, "lifemon_ws_slow_disconnects_total", "counter",
		     "WebSocket clients closed because they stayed behind after losing events.",
		     lm_stats_get(&s->ws_slow_disconnects));
	lm_stats_one(&o, "lifemon_http_requests_total", "counter",
		     "HTTP requests answered.",
		     lm_stats_get(&s->http_requests));

	lm_stats_head(&o, "lifemon_limit_hits_total", "counter",
		      "Requests refused or connections closed by a safety limit, by limit.");
	for (k = 0; k < LM_STATS_LIMIT_CNT; k++)
		lm_stats_printf(&o, "lifemon_limit_hits_total{limit=\"%s\"} %" PRIu64 "\n",
				lm_stats_limit_name[k], lm_stats_get(&s->limit_hits[k]));
	lm_stats_head(&o, "lifemon_ring_fill", "gauge",
		      "Queued in each user-space ring: bytes for ev and history (JSON text), entries for txt.");
	lm_stats_printf(&o, "lifemon_ring_fill{ring=\"ev\"} %u\n", v->ev_ring_fill);
	lm_stats_printf(&o, "lifemon_ring_fill{ring=\"txt\"} %u\n", v->txt_ring_fill);
	lm_stats_printf(&o, "lifemon_ring_fill{ring=\"history\"} %" PRIu64 "\n", v->hist_bytes);
	lm_stats_head(&o, "lifemon_ring_capacity", "gauge",
		      "Capacity of each user-space ring: bytes for ev and history (JSON text), entries for txt.");
	lm_stats_printf(&o, "lifemon_ring_capacity{ring=\"ev\"} %u\n", v->ev_ring_cap);
	lm_stats_printf(&o, "lifemon_ring_capacity{ring=\"txt\"} %u\n", v->txt_ring_cap);
	lm_stats_printf(&o, "lifemon_ring_capacity{ring=\"history\"} %" PRIu64 "\n", v->hist_cap);
	lm_stats_head(&o, "lifemon_attached", "gauge", "1 when the BPF programs are attached.");
	lm_stats_printf(&o, "lifemon_attached %d\n", v->attached ? 1 : 0);

	lm_stats_head(&o, "process_resident_memory_bytes", "gauge", "Resident memory size.");
	lm_stats_printf(&o, "process_resident_memory_bytes %" PRIu64 "\n", v->rss_bytes);
	lm_stats_head(&o, "process_cpu_seconds_total", "counter",
		      "User and system CPU time spent.");
	lm_stats_printf(&o, "process_cpu_seconds_total %.6f\n", v->cpu_seconds);
	lm_stats_head(&o, "process_start_time_seconds", "gauge",
		      "Start time of the process since the Unix epoch.");
	lm_stats_printf(&o, "process_start_time_seconds %.3f\n", v->start_time_seconds);
	if (!o.ok)
		return -ENOSPC;
	return (int)o.len;
}
