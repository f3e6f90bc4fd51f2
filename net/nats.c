// SPDX-License-Identifier: GPL-2.0
/*
 * The NATS JetStream sink. Three threads touch it: lm-ser appends to the backlog
 * (lm_nats_put), lm-nats publishes from it and releases what was acked, and nats.c's reply
 * thread records each ack or failure (lm_nats_on_ack). One mutex guards the backlog's
 * positions and the entries' states; message text is built and published outside it, which
 * is safe because only lm-nats ever releases entries.
 *
 * The backlog is a byte ring of entries in seq order, with three cursors: head (the oldest
 * entry not yet acked), send (the next to publish) and tail (where lm-ser appends). An entry
 * that does not fit before the end of the buffer goes to its start, after a wrap marker.
 *
 * lm-nats owns the connection and makes a new one itself when it breaks: nats.c's own
 * reconnect would send, to the new server, what was published after the socket broke and
 * before the disconnect was noticed, ahead of what was lost with the socket, and the stream
 * would come out of order. Each connection's callbacks carry a generation (struct
 * lm_nats_link); acks and failures from an older one are ignored, and what was in flight on it
 * is published again, in order, with the same ids.
 */
#include "net/nats.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "core/json.h"
#include "core/log.h"

#define LM_NATS_WRAP UINT32_MAX		/* entry len of a wrap marker */
#define LM_NATS_ID_MAX 64
#define LM_NATS_BACKOFF_MIN_MS 50
#define LM_NATS_BACKOFF_MAX_MS 1000
#define LM_NATS_STREAM_RETRY_MS 1000
#define LM_NATS_SEND_BATCH 64
#define LM_NATS_CONNECT_MIN_MS 250	/* between connect attempts, doubling ... */
#define LM_NATS_CONNECT_MAX_MS 2000	/* ... up to this */

enum lm_nats_state {
	LM_NATS_UNSENT,
	LM_NATS_INFLIGHT,
	LM_NATS_ACKED,
	LM_NATS_FAILED,
};

/* One message in the backlog; its body (the JSON line without '\n') follows. */
struct lm_nats_ent {
	uint32_t len;		/* bytes of the whole entry, 8-aligned; LM_NATS_WRAP: marker */
	uint32_t text_len;
	uint64_t seq;		/* event: its seq; notice: the seq it comes before */
	uint64_t key;		/* event: seq << 1; notice: ordinal << 1 | 1 (the id's tail) */
	uint64_t sent_ns;	/* last publish */
	uint64_t ack_ns;
	uint8_t type;		/* LM_EV_*; 0: a LOST notice */
	uint8_t state;		/* enum lm_nats_state */
	uint8_t dup;		/* the ack said duplicate */
	uint8_t sent_before;	/* a publish of it is a retry */
	uint8_t ours;		/* a notice of this sink's own drops */
	uint8_t _pad[3];
	int32_t err;		/* the last failure: a natsStatus, or a jsErrCode when > 10000 */
	uint32_t _pad2;
};

struct lm_nats;

/* The closure of one connection's callbacks: freed only in lm_nats_close, after nats.c's
 * threads ended, since a callback of a dead connection may still be running. */
struct lm_nats_link {
	struct lm_nats *n;
	uint64_t gen;
	struct lm_nats_link *next;
};

struct lm_nats {
	struct lm_stats *stats;
	char *urls;		/* cut into the server list */
	char *url_list;		/* as given, for messages */
	char subject[LM_NATS_SUBJECT_MAX];
	char stream[128];
	char host[128];
	char instance[40];
	int replicas;
	uint32_t max_inflight;
	int64_t ack_wait_ms;

	natsOptions *nopts;
	natsConnection *nc;	/* lm-nats only (start, stop and close after it ended) */
	jsCtx *js;
	struct lm_nats_link *links;	/* every connection's, newest first */
	struct lm_nats_link *idle_link;	/* the last attempt's, which failed: used next */
	pthread_t thread;
	bool started;

	pthread_mutex_t mu;
	pthread_cond_t work;	/* lm-nats waits: data, acks, stop */
	char *buf;
	uint64_t cap;
	uint64_t used;		/* bytes from head to tail, wrap waste included */
	uint64_t head, send, tail;	/* byte offsets */
	uint64_t head_ord, send_ord, tail_ord; /* entry ordinals */
	uint32_t inflight;
	_Atomic bool failed;	/* a failure in this round: publish nothing new (lm-nats
				 * reads it between publishes without the lock) */
	bool probe;		/* after a failed round: one message in flight until acked */
	uint64_t resume_ns;	/* no publishing before this (backoff) */
	uint32_t backoff_ms;
	bool stopping;		/* lm_nats_stop: publish what is left, then end */
	bool stop_now;
	bool exited;
	uint64_t gen;		/* the current connection's generation */
	bool conn_lost;		/* its callbacks said it is gone */
	_Atomic uint64_t last_ack_ns;	/* broker progress: ends a probe; stop waits on it */

	/* the drops not yet told: lm-ser adds to them, either thread appends the notice */
	uint64_t loss_first, loss_last, loss_cnt;
	uint64_t notice_ord;
	bool dropping;		/* lm-ser only */

	/* lm-nats only */
	bool said_unreachable;	/* in this outage */
	bool had_conn;		/* a connection was made before: the next one is a reconnect */
	uint64_t next_connect_ns;
	uint32_t connect_wait_ms;
	char url[256];		/* the server connected to */
	char last_stream_err[640];
	uint64_t next_stream_try_ns;
};

static uint64_t lm_nats_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void lm_nats_subject_token(const char *host, char *out, size_t cap)
{
	size_t i;

	if (!cap)
		return;
	for (i = 0; host[i] && i + 1 < cap; i++) {
		char c = host[i];

		out[i] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '_' || c == '-') ? c : '_';
	}
	if (!i && cap > 1)
		out[i++] = '_';
	out[i] = '\0';
}

bool lm_nats_subject_valid(const char *subj)
{
	size_t tok = 0;
	const char *p;

	if (!subj || !*subj || strlen(subj) >= LM_NATS_SUBJECT_MAX)
		return false;
	for (p = subj; *p; p++) {
		if (*p == '.') {
			if (!tok)
				return false;
			tok = 0;
			continue;
		}
		if (*p <= ' ' || *p >= 0x7f || *p == '*' || *p == '>')
			return false;
		tok++;
	}
	return tok > 0;
}

/* Whether a stream subject pattern (with * and >) takes the literal subject subj. */
static bool lm_nats_subject_matches(const char *pat, const char *subj)
{
	for (;;) {
		const char *pe = strchr(pat, '.'), *se = strchr(subj, '.');
		size_t pl = pe ? (size_t)(pe - pat) : strlen(pat);
		size_t sl = se ? (size_t)(se - subj) : strlen(subj);

		if (pl == 1 && pat[0] == '>')
			return true;
		if (!(pl == 1 && pat[0] == '*') && (pl != sl || memcmp(pat, subj, pl)))
			return false;
		if (!pe || !se)
			return !pe && !se;
		pat = pe + 1;
		subj = se + 1;
	}
}

/* --- the backlog (callers hold mu) --- */

static struct lm_nats_ent *lm_nats_at(struct lm_nats *n, uint64_t off)
{
	return (struct lm_nats_ent *)(n->buf + off);
}

/* The entry at off, past a wrap marker (or the buffer's end) if there is one there. */
static uint64_t lm_nats_norm(struct lm_nats *n, uint64_t off)
{
	if (off + sizeof(uint32_t) > n->cap || lm_nats_at(n, off)->len == LM_NATS_WRAP)
		return 0;
	return off;
}

/*
 * Appends an entry with `len` bytes of body. Returns it (text still to be copied) or NULL
 * when it does not fit now.
 */
static struct lm_nats_ent *lm_nats_reserve(struct lm_nats *n, uint32_t text_len)
{
	uint64_t need = (sizeof(struct lm_nats_ent) + text_len + 7) & ~7ULL;
	uint64_t at = n->tail, waste = 0;
	struct lm_nats_ent *e;

	if (at + need > n->cap) {
		waste = n->cap - at;
		at = 0;
	}
	if (n->used + waste + need > n->cap)
		return NULL;
	if (waste >= sizeof(uint32_t))
		lm_nats_at(n, n->tail)->len = LM_NATS_WRAP;
	n->used += waste + need;
	e = lm_nats_at(n, at);
	memset(e, 0, sizeof(*e));
	e->len = (uint32_t)need;
	e->text_len = text_len;
	n->tail = at + need;
	n->tail_ord++;
	if (n->used > lm_stats_get(&n->stats->nats.backlog_peak))
		lm_stats_set(&n->stats->nats.backlog_peak, n->used);
	return e;
}

/* --- lm-ser: lm_nats_put --- */

/* Appends the LOST notice for the drops so far, if it fits now. */
static bool lm_nats_put_notice(struct lm_nats *n)
{
	char text[192];
	struct lm_nats_ent *e;
	int len = lm_json_lost(text, sizeof(text), n->loss_first, n->loss_last, n->loss_cnt,
			       "nats_backlog_full");

	if (len <= 1)
		return false;
	e = lm_nats_reserve(n, (uint32_t)len - 1);
	if (!e)
		return false;
	memcpy(e + 1, text, (size_t)len - 1);
	e->seq = n->loss_first;
	e->key = (++n->notice_ord << 1) | 1;
	e->ours = 1;
	n->loss_cnt = 0;
	return true;
}

static void lm_nats_drop(struct lm_nats *n, const struct lm_line *l)
{
	if (!l->type)
		return; /* a notice: no event to count */
	if (!n->loss_cnt)
		n->loss_first = l->seq;
	n->loss_last = l->seq;
	n->loss_cnt++;
	atomic_fetch_add_explicit(&n->stats->sink[LM_STATS_SINK_NATS].dropped, 1,
				  memory_order_relaxed);
	if (!n->dropping) {
		n->dropping = true;
		lm_stats_add(&n->stats->sink[LM_STATS_SINK_NATS].slow, 1);
	}
}

void lm_nats_put(struct lm_nats *n, const struct lm_txt_slot *slot)
{
	uint64_t taken = 0;
	bool signal = false;
	uint32_t i;

	pthread_mutex_lock(&n->mu);
	for (i = 0; i < slot->line_cnt; i++) {
		const struct lm_line *l = &slot->lines[i];
		uint32_t text_len = l->len && slot->text[l->off + l->len - 1] == '\n' ?
					    l->len - 1 : l->len;
		struct lm_nats_ent *e = NULL;

		/* never waits: the backlog is where events wait for the brokers */
		if (!n->loss_cnt || lm_nats_put_notice(n))
			e = lm_nats_reserve(n, text_len);
		if (!e) {
			lm_nats_drop(n, l);
			continue;
		}
		n->dropping = false;
		memcpy(e + 1, slot->text + l->off, text_len);
		e->seq = l->seq;
		e->type = l->type;
		e->key = l->type ? l->seq << 1 : (++n->notice_ord << 1) | 1;
		taken += l->type ? 1 : 0;
		signal = true;
	}
	pthread_mutex_unlock(&n->mu);
	if (taken)
		lm_stats_add(&n->stats->nats.taken, taken);
	if (signal)
		pthread_cond_signal(&n->work);
}

/* --- nats.c's threads --- */

static uint64_t lm_nats_parse_key(const char *id)
{
	const char *p = id ? strchr(id, ':') : NULL;
	char *end;
	uint64_t seq;

	if (!p)
		return 0;
	seq = strtoull(p + 1, &end, 10);
	if (*end == ':' && end[1] == 'n')
		return (strtoull(end + 2, NULL, 10) << 1) | 1;
	return seq << 1;
}

/* jsPubAckHandler, on nats.c's reply thread: records the outcome; lm-nats acts on it. */
static void lm_nats_on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae,
			   void *closure)
{
	struct lm_nats_link *link = closure;
	struct lm_nats *n = link->n;
	const char *id = NULL;
	uint64_t key, off, ord, now = lm_nats_now_ns();
	bool wake = false;

	(void)js;
	natsMsgHeader_Get(msg, "Nats-Msg-Id", &id);
	key = lm_nats_parse_key(id);
	pthread_mutex_lock(&n->mu);
	/* an older connection's: what it had in flight is being published again */
	for (off = n->head, ord = n->head_ord; link->gen == n->gen && ord < n->send_ord; ord++) {
		struct lm_nats_ent *e;

		off = lm_nats_norm(n, off);
		e = lm_nats_at(n, off);
		if (e->key == key && e->state == LM_NATS_INFLIGHT) {
			/*
			 * Wake lm-nats only when it waits for this: a full window, a failed
			 * round, a probe. Otherwise its 10 ms round
			 * releases the acked entries in batches (a wake per ack cost more than
			 * the publish itself).
			 */
			wake = !pa || n->failed || n->probe ||
			       n->inflight >= n->max_inflight;
			if (pa) {
				e->state = LM_NATS_ACKED;
				e->dup = pa->Duplicate;
				e->ack_ns = now;
				atomic_store_explicit(&n->last_ack_ns, now, memory_order_relaxed);
			} else {
				e->state = LM_NATS_FAILED;
				e->err = pae && pae->ErrCode ? (int32_t)pae->ErrCode :
							     (int32_t)(pae ? pae->Err : NATS_ERR);
				n->failed = true;
			}
			n->inflight--;
			break;
		}
		off += e->len;
	}
	pthread_mutex_unlock(&n->mu);
	if (wake)
		pthread_cond_signal(&n->work);
	natsMsg_Destroy(msg);
}

/* Disconnected or closed (nats.c does not reconnect by itself here): lm-nats makes a new one. */
static void lm_nats_on_lost(natsConnection *nc, void *closure)
{
	struct lm_nats_link *link = closure;
	struct lm_nats *n = link->n;

	(void)nc;
	pthread_mutex_lock(&n->mu);
	if (link->gen == n->gen) {
		n->conn_lost = true;
		lm_stats_set(&n->stats->nats.connected, 0);
	}
	pthread_mutex_unlock(&n->mu);
	pthread_cond_signal(&n->work);
}

static void lm_nats_on_error(natsConnection *nc, natsSubscription *sub, natsStatus err,
			     void *closure)
{
	(void)nc;
	(void)sub;
	(void)closure;
	lm_warn("nats", "connection error: %s", natsStatus_GetText(err));
}

/* --- lm-nats --- */

/* Finds the stream or creates it. Returns true when publishing may start. */
static bool lm_nats_ensure_stream(struct lm_nats *n)
{
	jsStreamInfo *si = NULL;
	jsStreamConfig cfg;
	jsErrCode jerr = 0;
	const char *subjects[] = { LM_NATS_STREAM_SUBJECTS };
	char why[640];
	natsStatus s;
	bool ok = false;
	int i;

	s = js_GetStreamInfo(&si, n->js, n->stream, NULL, &jerr);
	if (s == NATS_OK) {
		for (i = 0; i < si->Config->SubjectsLen && !ok; i++)
			ok = lm_nats_subject_matches(si->Config->Subjects[i], n->subject);
		if (ok) {
			lm_info("nats", "publishing to %s in stream %s (replicas %" PRId64 ", existing)",
				n->subject, n->stream, si->Config->Replicas);
		} else {
			snprintf(why, sizeof(why), "stream %s does not take subject %s: add it to the "
				 "stream's subjects or pass --nats-subject; events wait in the backlog",
				 n->stream, n->subject);
		}
		jsStreamInfo_Destroy(si);
	} else if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
		jsStreamConfig_Init(&cfg);
		cfg.Name = n->stream;
		cfg.Subjects = subjects;
		cfg.SubjectsLen = 1;
		cfg.Storage = js_FileStorage;
		cfg.Replicas = n->replicas;
		cfg.Duplicates = (int64_t)LM_NATS_DUPLICATE_WINDOW_S * 1000000000LL;
		s = js_AddStream(&si, n->js, &cfg, NULL, &jerr);
		if (s == NATS_OK) {
			ok = true;
			lm_info("nats", "created stream %s (subjects %s, replicas %d, duplicate window "
				"%ds); publishing to %s", n->stream, LM_NATS_STREAM_SUBJECTS,
				n->replicas, LM_NATS_DUPLICATE_WINDOW_S, n->subject);
			jsStreamInfo_Destroy(si);
		} else {
			snprintf(why, sizeof(why), "cannot create stream %s with %d replicas: %s "
				 "(error %d)%s", n->stream, n->replicas, nats_GetLastError(NULL),
				 (int)jerr, jerr == JSInsufficientResourcesErr ||
				 jerr == JSClusterNoPeersErr ? "; fewer servers than --nats-replicas?" :
				 "");
		}
	} else {
		snprintf(why, sizeof(why), "cannot look up stream %s: %s", n->stream,
			 nats_GetLastError(NULL));
	}
	if (ok) {
		/* the broker answered: that is progress too, before the first ack */
		atomic_store_explicit(&n->last_ack_ns, lm_nats_now_ns(), memory_order_relaxed);
		n->last_stream_err[0] = '\0';
		lm_stats_set(&n->stats->nats.stream_ready, 1);
		return true;
	}
	if (strcmp(why, n->last_stream_err)) {
		lm_warn("nats", "%s; retrying", why);
		snprintf(n->last_stream_err, sizeof(n->last_stream_err), "%s", why);
	}
	return false;
}

static const char *lm_nats_type_name(uint8_t type)
{
	switch (type) {
	case LM_EV_EXEC:
		return "EXEC";
	case LM_EV_EXIT:
		return "EXIT";
	case LM_EV_OOM:
		return "OOM_KILL";
	default:
		return "LOST";
	}
}

/* Publishes one entry (read outside the lock: only this thread frees entries). */
static natsStatus lm_nats_publish(struct lm_nats *n, const struct lm_nats_ent *e,
				  jsPubOptions *po)
{
	char id[LM_NATS_ID_MAX], seq[24];
	natsMsg *msg = NULL;
	natsStatus s;

	if (e->key & 1)
		snprintf(id, sizeof(id), "%s:%" PRIu64 ":n%" PRIu64, n->instance, e->seq,
			 e->key >> 1);
	else
		snprintf(id, sizeof(id), "%s:%" PRIu64, n->instance, e->seq);
	snprintf(seq, sizeof(seq), "%" PRIu64, e->seq);
	s = natsMsg_Create(&msg, n->subject, NULL, (const char *)(e + 1), (int)e->text_len);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(msg, "Nats-Msg-Id", id);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(msg, "Lifemon-Host", n->host);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(msg, "Lifemon-Instance", n->instance);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(msg, "Lifemon-Seq", seq);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(msg, "Lifemon-Type", lm_nats_type_name(e->type));
	if (s == NATS_OK)
		s = js_PublishMsgAsync(n->js, &msg, po);
	natsMsg_Destroy(msg); /* NULL once the library took it */
	return s;
}

/* Releases acked entries at the head and books them. Holds mu. */
static void lm_nats_release(struct lm_nats *n)
{
	struct lm_stats_nats *st = &n->stats->nats;
	struct lm_stats_sink *sk = &n->stats->sink[LM_STATS_SINK_NATS];

	while (n->head_ord < n->send_ord) {
		struct lm_nats_ent *e;
		uint64_t off = lm_nats_norm(n, n->head), us;
		int b;

		if (off != n->head) {
			n->used -= n->cap - n->head;
			n->head = 0;
		}
		e = lm_nats_at(n, off);
		if (e->state != LM_NATS_ACKED)
			break;
		if (e->type) {
			lm_stats_add(&sk->delivered, 1);
			lm_stats_add(&sk->bytes, e->text_len);
		} else if (e->ours) {
			lm_stats_add(&st->lost_notices, 1);
		}
		if (e->dup)
			lm_stats_add(&st->duplicates, 1);
		us = e->ack_ns > e->sent_ns ? (e->ack_ns - e->sent_ns) / 1000 : 0;
		for (b = 0; b < LM_STATS_NATS_ACK_BUCKETS && us > lm_stats_nats_ack_le_us[b]; b++)
			;
		lm_stats_add(&st->ack_bucket[b], 1);
		lm_stats_add(&st->ack_sum_us, us);
		n->used -= e->len;
		n->head = off + e->len;
		n->head_ord++;
	}
	if (n->head_ord == n->tail_ord) {
		/* empty: start over at the front, so the next entries need no wrap */
		n->used = 0;
		n->head = n->send = n->tail = 0;
	}
}

/* A failure no retry can mend: the message is larger than the server or stream takes. */
static bool lm_nats_rejected(const struct lm_nats_ent *e)
{
	return e->err == NATS_MAX_PAYLOAD || e->err == JSStreamMessageExceedsMaximumErr;
}

/*
 * Turns a message the servers refuse for good into the LOST notice for its event, in place
 * (the notice is shorter than any event line), so it cannot hold the stream back for ever.
 * Holds mu.
 */
static void lm_nats_reject(struct lm_nats *n, struct lm_nats_ent *e)
{
	char text[192];
	int len = lm_json_lost(text, sizeof(text), e->seq, e->seq, 1, "nats_rejected");

	lm_warn("nats", "the servers refuse event seq %" PRIu64 " (%u bytes): %s; it is "
		"dropped and a LOST notice takes its place in the stream", e->seq, e->text_len,
		e->err > 10000 ? "message size exceeds the stream's maximum" :
				 natsStatus_GetText((natsStatus)e->err));
	if (e->type) {
		atomic_fetch_add_explicit(&n->stats->sink[LM_STATS_SINK_NATS].dropped, 1,
					  memory_order_relaxed);
		lm_stats_add(&n->stats->nats.rejected, 1);
	}
	if (len > 1 && (uint32_t)len - 1 <= e->text_len) {
		memcpy(e + 1, text, (size_t)len - 1);
		e->text_len = (uint32_t)len - 1;
		e->type = 0;
		e->key = (++n->notice_ord << 1) | 1;
		e->ours = 1;
		e->state = LM_NATS_UNSENT;
	} else {
		e->state = LM_NATS_ACKED; /* a refused notice: nothing to tell, let it go */
	}
	e->err = 0;
}

/*
 * After a failed round, once nothing is in flight: start again at the oldest not acked,
 * after a backoff, with one message in flight until one is acked.
 */
static void lm_nats_rewind(struct lm_nats *n)
{
	uint64_t off = n->head, ord, failed = 0;

	for (ord = n->head_ord; ord < n->send_ord; ord++) {
		struct lm_nats_ent *e;

		off = lm_nats_norm(n, off);
		e = lm_nats_at(n, off);
		if (e->state == LM_NATS_FAILED) {
			failed++;
			if (lm_nats_rejected(e))
				lm_nats_reject(n, e);
		}
		off += e->len;
	}
	lm_stats_add(&n->stats->nats.failures, failed);
	n->send = n->head;
	n->send_ord = n->head_ord;
	n->failed = false;
	n->probe = true;
	n->resume_ns = lm_nats_now_ns() + (uint64_t)n->backoff_ms * 1000000ULL;
	n->backoff_ms = n->backoff_ms * 2 > LM_NATS_BACKOFF_MAX_MS ? LM_NATS_BACKOFF_MAX_MS :
								   n->backoff_ms * 2;
}

static bool lm_nats_can_send(struct lm_nats *n, bool ready)
{
	return ready && !n->failed && n->send_ord < n->tail_ord &&
	       n->inflight < (n->probe ? 1 : n->max_inflight) &&
	       n->nc && !n->conn_lost && lm_nats_now_ns() >= n->resume_ns;
}

/* Publishes what may be published now. Holds mu; drops it around each publish. */
static void lm_nats_send(struct lm_nats *n, bool ready, jsPubOptions *po)
{
	struct lm_stats_nats *st = &n->stats->nats;
	struct lm_nats_ent *batch[LM_NATS_SEND_BATCH];
	uint64_t again; /* bit i: batch[i] was published before (a retry) */
	uint32_t cnt, i;

	for (;;) {
		/* take a batch under the lock, publish it outside: one lock round per batch */
		for (cnt = 0, again = 0; cnt < LM_NATS_SEND_BATCH && lm_nats_can_send(n, ready);) {
			uint64_t off = lm_nats_norm(n, n->send);
			struct lm_nats_ent *e = lm_nats_at(n, off);

			n->send = off + e->len;
			n->send_ord++;
			if (e->state == LM_NATS_ACKED)
				continue; /* acked in a round that failed later */
			again |= (uint64_t)e->sent_before << cnt;
			e->sent_before = 1;
			e->state = LM_NATS_INFLIGHT;
			e->sent_ns = lm_nats_now_ns();
			n->inflight++;
			batch[cnt++] = e;
		}
		if (!cnt)
			return;
		pthread_mutex_unlock(&n->mu);
		for (i = 0; i < cnt; i++) {
			natsStatus s;

			/* a failure (here or acked meanwhile) ends publishing of anything newer */
			if (atomic_load_explicit(&n->failed, memory_order_relaxed))
				break;
			s = lm_nats_publish(n, batch[i], po);
			if (s != NATS_OK) {
				pthread_mutex_lock(&n->mu);
				if (batch[i]->state == LM_NATS_INFLIGHT) {
					batch[i]->state = LM_NATS_FAILED;
					batch[i]->err = (int32_t)s;
					n->inflight--;
				}
				n->failed = true;
				pthread_mutex_unlock(&n->mu);
				i++;
				break;
			}
		}
		lm_stats_add(&st->published, i);
		lm_stats_add(&st->retries, (uint64_t)__builtin_popcountll(
						   i < 64 ? again & ((1ULL << i) - 1) : again));
		pthread_mutex_lock(&n->mu);
		/* not published: failed without a try, the rewind sends them again */
		for (; i < cnt; i++) {
			batch[i]->sent_before = (again >> i) & 1;
			if (batch[i]->state == LM_NATS_INFLIGHT) {
				batch[i]->state = LM_NATS_FAILED;
				batch[i]->err = 0;
				n->inflight--;
			}
		}
	}
}

/*
 * Makes a connection and its JetStream context (lm-nats, without mu). A failure says so once
 * per outage and sets the time of the next try.
 */
static void lm_nats_connect(struct lm_nats *n)
{
	/* a failed attempt's link is used again: an outage of days makes no garbage */
	struct lm_nats_link *link = n->idle_link;
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	jsOptions jo;
	natsStatus s = NATS_NO_MEMORY;
	uint64_t now;

	if (!link) {
		link = calloc(1, sizeof(*link));
		if (link) {
			link->n = n;
			link->next = n->links;
			n->links = link;
		}
	}
	n->idle_link = NULL;
	if (link) {
		pthread_mutex_lock(&n->mu);
		link->gen = n->gen + 1;
		pthread_mutex_unlock(&n->mu);
		/* nats.c copies the options at connect: these callbacks are this connection's */
		s = natsOptions_SetDisconnectedCB(n->nopts, lm_nats_on_lost, link);
		if (s == NATS_OK)
			s = natsOptions_SetClosedCB(n->nopts, lm_nats_on_lost, link);
		if (s == NATS_OK)
			s = natsOptions_SetErrorHandler(n->nopts, lm_nats_on_error, link);
		if (s == NATS_OK)
			s = natsConnection_Connect(&nc, n->nopts);
	}
	if (s == NATS_OK) {
		jsOptions_Init(&jo);
		jo.Wait = 2000;
		jo.PublishAsync.AckHandler = lm_nats_on_ack;
		jo.PublishAsync.AckHandlerClosure = link;
		s = natsConnection_JetStream(&js, nc, &jo);
	}
	now = lm_nats_now_ns();
	if (s != NATS_OK) {
		if (!n->said_unreachable)
			lm_warn("nats", "cannot connect to a NATS server (%s): %s; lifemon runs on "
				"and keeps trying (events wait in a %" PRIu64 " MiB backlog)", n->url_list,
				nats_GetLastError(NULL), n->cap >> 20);
		n->said_unreachable = true;
		n->idle_link = link;
		natsConnection_Destroy(nc);
		n->next_connect_ns = now + (uint64_t)n->connect_wait_ms * 1000000ULL;
		n->connect_wait_ms = n->connect_wait_ms * 2 > LM_NATS_CONNECT_MAX_MS ?
			LM_NATS_CONNECT_MAX_MS : n->connect_wait_ms * 2;
		return;
	}
	natsConnection_GetConnectedUrl(nc, n->url, sizeof(n->url));
	if (n->had_conn) {
		atomic_fetch_add_explicit(&n->stats->nats.reconnects, 1, memory_order_relaxed);
		lm_info("nats", "reconnected to %s", n->url);
	} else {
		lm_info("nats", "connected to %s", n->url);
	}
	n->had_conn = true;
	n->said_unreachable = false;
	n->connect_wait_ms = LM_NATS_CONNECT_MIN_MS;
	pthread_mutex_lock(&n->mu);
	n->gen = link->gen;
	n->nc = nc;
	n->js = js;
	n->conn_lost = false;
	lm_stats_set(&n->stats->nats.connected, 1);
	pthread_mutex_unlock(&n->mu);
}

/*
 * The connection broke (lm-nats, holds mu): what it had in flight may or may not have reached
 * the stream; all of it is published again, in order, on the next connection (the server drops
 * the copies it has by their ids). Acks still coming from this one are ignored from now on.
 */
static void lm_nats_drop_conn(struct lm_nats *n)
{
	natsConnection *nc = n->nc;
	jsCtx *js = n->js;
	uint64_t off = n->head, ord;

	for (ord = n->head_ord; ord < n->send_ord; ord++) {
		struct lm_nats_ent *e;

		off = lm_nats_norm(n, off);
		e = lm_nats_at(n, off);
		if (e->state == LM_NATS_INFLIGHT) {
			e->state = LM_NATS_FAILED;
			e->err = NATS_CONNECTION_CLOSED;
		}
		off += e->len;
	}
	if (n->inflight || n->send_ord != n->head_ord)
		n->failed = true;
	n->inflight = 0;
	n->gen++;
	n->nc = NULL;
	n->js = NULL;
	n->conn_lost = false;
	lm_stats_set(&n->stats->nats.connected, 0);
	pthread_mutex_unlock(&n->mu);
	if (!n->stopping)
		lm_warn("nats", "lost the connection to %s; reconnecting (events wait in the "
			"backlog, and what was in flight is sent again)", n->url);
	natsConnection_Close(nc);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	pthread_mutex_lock(&n->mu);
	n->next_connect_ns = 0;
}

static void *lm_nats_main(void *arg)
{
	struct lm_nats *n = arg;
	struct lm_stats_nats *st = &n->stats->nats;
	jsPubOptions po;
	bool ready = false;

	pthread_setname_np(pthread_self(), "lm-nats");
	jsPubOptions_Init(&po);
	po.MaxWait = n->ack_wait_ms;
	pthread_mutex_lock(&n->mu);
	while (!n->stop_now) {
		uint64_t now = lm_nats_now_ns();
		struct timespec ts;

		/* closed also when it broke before its callbacks were this connection's */
		if (n->nc && (n->conn_lost || natsConnection_IsClosed(n->nc))) {
			lm_nats_drop_conn(n);
			ready = false;
		}
		if (!n->nc && now >= n->next_connect_ns) {
			pthread_mutex_unlock(&n->mu);
			lm_nats_connect(n);
			pthread_mutex_lock(&n->mu);
			now = lm_nats_now_ns();
		}
		if (!ready && n->nc && !n->conn_lost && now >= n->next_stream_try_ns) {
			pthread_mutex_unlock(&n->mu);
			ready = lm_nats_ensure_stream(n);
			pthread_mutex_lock(&n->mu);
			n->next_stream_try_ns = lm_nats_now_ns() +
						LM_NATS_STREAM_RETRY_MS * 1000000ULL;
		}
		lm_nats_release(n);
		/* nothing waits for an ack: the broker is not behind (lm_nats_stop) */
		if (n->head_ord == n->tail_ord)
			atomic_store_explicit(&n->last_ack_ns, now, memory_order_relaxed);
		/* a loss is told as soon as there is room, not only before the next event */
		if (n->loss_cnt)
			lm_nats_put_notice(n);
		if (n->failed && !n->inflight)
			lm_nats_rewind(n);
		if (n->probe &&
		    atomic_load_explicit(&n->last_ack_ns, memory_order_relaxed) > n->resume_ns) {
			n->probe = false;
			n->backoff_ms = LM_NATS_BACKOFF_MIN_MS;
		}
		lm_nats_send(n, ready, &po);
		lm_stats_set(&st->inflight, n->inflight);
		lm_stats_set(&st->backlog_bytes, n->used);
		if (n->stopping && n->head_ord == n->tail_ord && !n->loss_cnt)
			break;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&n->work, &n->mu, &ts);
	}
	n->exited = true;
	pthread_mutex_unlock(&n->mu);
	return NULL;
}

static int lm_nats_err(char *err, size_t cap, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int lm_nats_err(char *err, size_t cap, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, cap, fmt, ap);
	va_end(ap);
	return code;
}

static int lm_nats_check_file(const char *what, const char *path, char *err, size_t cap)
{
	if (path && access(path, R_OK))
		return lm_nats_err(err, cap, -errno, "%s %s: %s", what, path, strerror(errno));
	return 0;
}

/* Builds nats.c's connection options. */
static int lm_nats_conn_opts(struct lm_nats *n, const struct lm_nats_opts *o, char *err,
			     size_t cap)
{
	const char *servers[32];
	char name[160];
	int cnt = 0;
	char *p, *save = NULL;
	natsStatus s;

	for (p = strtok_r(n->urls, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
		if (cnt == 32)
			return lm_nats_err(err, cap, -EINVAL, "--nats: at most 32 URLs");
		if (!*p || strchr(p, ' '))
			return lm_nats_err(err, cap, -EINVAL, "--nats: bad URL '%s'", p);
		servers[cnt++] = p;
	}
	if (!cnt)
		return lm_nats_err(err, cap, -EINVAL, "--nats: no URL");
	snprintf(name, sizeof(name), "lifemon %s", n->host);
	s = natsOptions_Create(&n->nopts);
	if (s == NATS_OK)
		s = natsOptions_SetServers(n->nopts, servers, cnt);
	if (s != NATS_OK)
		return lm_nats_err(err, cap, -EINVAL, "--nats: %s", nats_GetLastError(NULL));
	s = natsOptions_SetName(n->nopts, name);
	/* lm-nats reconnects itself, so nothing sent after a break overtakes what it lost */
	if (s == NATS_OK)
		s = natsOptions_SetAllowReconnect(n->nopts, false);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(n->nopts, 2000);
	if (s == NATS_OK)
		s = natsOptions_SetPingInterval(n->nopts, 5000);
	if (s == NATS_OK)
		s = natsOptions_SetMaxPingsOut(n->nopts, 2);
	if (s == NATS_OK && o->token)
		s = natsOptions_SetToken(n->nopts, o->token);
	if (s != NATS_OK)
		return lm_nats_err(err, cap, -EINVAL, "nats options: %s", nats_GetLastError(NULL));
	if (o->creds_file) {
		s = natsOptions_SetUserCredentialsFromFiles(n->nopts, o->creds_file, NULL);
		if (s != NATS_OK)
			return lm_nats_err(err, cap, -EINVAL, "--nats-creds %s: %s", o->creds_file,
					   nats_GetLastError(NULL));
	}
	if (o->tls_ca || o->tls_cert || o->tls_key) {
		if (!o->tls_cert != !o->tls_key)
			return lm_nats_err(err, cap, -EINVAL,
					   "--nats-tls-cert and --nats-tls-key go together");
		s = natsOptions_SetSecure(n->nopts, true);
		if (s == NATS_OK && o->tls_ca)
			s = natsOptions_LoadCATrustedCertificates(n->nopts, o->tls_ca);
		if (s == NATS_OK && o->tls_cert)
			s = natsOptions_LoadCertificatesChain(n->nopts, o->tls_cert, o->tls_key);
		if (s != NATS_OK)
			return lm_nats_err(err, cap, -EINVAL, "nats TLS: %s",
					   nats_GetLastError(NULL));
	}
	return 0;
}

int lm_nats_open(const struct lm_nats_opts *o, struct lm_nats **out, char *err, size_t cap)
{
	struct lm_nats *n;
	struct utsname u;
	char tok[128];
	int rc;

	*out = NULL;
	if (!o->urls || !o->stats || !o->instance)
		return lm_nats_err(err, cap, -EINVAL, "nats: missing options");
	if (o->replicas < 0 || o->replicas > 5)
		return lm_nats_err(err, cap, -EINVAL, "--nats-replicas: %d is not 1..5",
				   o->replicas);
	if (o->backlog_bytes && (o->backlog_bytes < LM_NATS_BACKLOG_MIN_BYTES ||
				 o->backlog_bytes > LM_NATS_BACKLOG_MAX_BYTES))
		return lm_nats_err(err, cap, -EINVAL, "--nats-backlog-bytes: must be 64K..16G");
	if (o->subject && !lm_nats_subject_valid(o->subject))
		return lm_nats_err(err, cap, -EINVAL, "--nats-subject: '%s' is not a subject to "
				   "publish to (dot-separated tokens, no spaces, no * or >)",
				   o->subject);
	if (o->stream && (!*o->stream || strlen(o->stream) >= 128 ||
			  strpbrk(o->stream, " .*>/\\\t")))
		return lm_nats_err(err, cap, -EINVAL, "--nats-stream: '%s' is not a stream name",
				   o->stream);
	rc = lm_nats_check_file("--nats-creds", o->creds_file, err, cap);
	if (!rc)
		rc = lm_nats_check_file("--nats-tls-ca", o->tls_ca, err, cap);
	if (!rc)
		rc = lm_nats_check_file("--nats-tls-cert", o->tls_cert, err, cap);
	if (!rc)
		rc = lm_nats_check_file("--nats-tls-key", o->tls_key, err, cap);
	if (rc)
		return rc;
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->stats = o->stats;
	n->replicas = o->replicas ? o->replicas : LM_NATS_DEFAULT_REPLICAS;
	n->max_inflight = o->max_inflight ? o->max_inflight : 1024;
	n->ack_wait_ms = o->ack_wait_ms ? o->ack_wait_ms : 2000;
	n->backoff_ms = LM_NATS_BACKOFF_MIN_MS;
	n->connect_wait_ms = LM_NATS_CONNECT_MIN_MS;
	n->cap = (o->backlog_bytes ? o->backlog_bytes : LM_NATS_BACKLOG_DEFAULT_BYTES) & ~7ULL;
	snprintf(n->instance, sizeof(n->instance), "%s", o->instance);
	if (o->host)
		snprintf(n->host, sizeof(n->host), "%s", o->host);
	else if (!uname(&u))
		snprintf(n->host, sizeof(n->host), "%s", u.nodename);
	if (!n->host[0])
		snprintf(n->host, sizeof(n->host), "unknown");
	if (o->subject) {
		snprintf(n->subject, sizeof(n->subject), "%s", o->subject);
	} else {
		lm_nats_subject_token(n->host, tok, sizeof(tok));
		snprintf(n->subject, sizeof(n->subject), "lifemon.%s.events", tok);
	}
	snprintf(n->stream, sizeof(n->stream), "%s", o->stream ? o->stream :
								 LM_NATS_DEFAULT_STREAM);
	pthread_mutex_init(&n->mu, NULL);
	pthread_cond_init(&n->work, NULL);
	n->urls = strdup(o->urls);
	n->url_list = strdup(o->urls);
	/* the backlog's pages are touched only as it fills */
	n->buf = malloc(n->cap);
	if (!n->urls || !n->url_list || !n->buf) {
		lm_nats_close(n);
		return -ENOMEM;
	}
	rc = lm_nats_conn_opts(n, o, err, cap);
	if (rc) {
		lm_nats_close(n);
		return rc;
	}
	*out = n;
	return 0;
}

int lm_nats_start(struct lm_nats *n)
{
	int err;

	/* lm-nats connects: a broker that is down or slow to answer never holds up the start */
	err = pthread_create(&n->thread, NULL, lm_nats_main, n);
	if (err)
		return -err;
	n->started = true;
	return 0;
}

int lm_nats_stop(struct lm_nats *n, int timeout_ms)
{
	uint64_t start = lm_nats_now_ns(), left;
	uint64_t deadline = start + (uint64_t)timeout_ms * 1000000ULL;
	int err = 0;

	if (!n || !n->started)
		return 0;
	pthread_mutex_lock(&n->mu);
	n->stopping = true;
	pthread_cond_signal(&n->work);
	while (!n->exited && lm_nats_now_ns() < deadline) {
		uint64_t last = atomic_load_explicit(&n->last_ack_ns, memory_order_relaxed);
		struct timespec ts;

		/* wait only while the broker acks */
		if (lm_nats_now_ns() - (last > start ? last : start) > 1000000000ULL)
			break;
		pthread_mutex_unlock(&n->mu);
		ts = (struct timespec){ 0, 10000000L };
		nanosleep(&ts, NULL);
		pthread_mutex_lock(&n->mu);
	}
	if (!n->exited)
		err = -ETIMEDOUT;
	n->stop_now = true;
	pthread_cond_signal(&n->work);
	pthread_mutex_unlock(&n->mu);
	pthread_join(n->thread, NULL);
	n->started = false;
	if (n->nc)
		natsConnection_Close(n->nc);
	pthread_mutex_lock(&n->mu);
	lm_nats_release(n); /* acks that came after the thread's last look */
	pthread_mutex_unlock(&n->mu);
	/* whatever was not acked is lost to the stream; the server may still have some */
	left = lm_stats_get(&n->stats->nats.taken) -
	       lm_stats_get(&n->stats->sink[LM_STATS_SINK_NATS].delivered) -
	       lm_stats_get(&n->stats->nats.rejected) -
	       lm_stats_get(&n->stats->nats.shutdown_dropped);
	if (left) {
		lm_stats_add(&n->stats->nats.shutdown_dropped, left);
		atomic_fetch_add_explicit(&n->stats->sink[LM_STATS_SINK_NATS].dropped, left,
					  memory_order_relaxed);
		lm_warn("nats", "%" PRIu64 " events were not acked by JetStream before shutdown",
			left);
	}
	lm_stats_set(&n->stats->nats.inflight, 0);
	lm_stats_set(&n->stats->nats.backlog_bytes, 0);
	return err;
}

void lm_nats_close(struct lm_nats *n)
{
	if (!n)
		return;
	if (n->started)
		lm_nats_stop(n, 0);
	jsCtx_Destroy(n->js);
	natsConnection_Destroy(n->nc);
	natsOptions_Destroy(n->nopts);
	/*
	 * nats.c runs connection callbacks (lost, on the close above) on threads of its own,
	 * which hold a link and `n` until they return: wait for all of them before freeing.
	 * This sink is the process's only NATS user, so ending the library here costs nothing.
	 */
	if (n->links)
		nats_CloseAndWait(2000);
	while (n->links) {
		struct lm_nats_link *next = n->links->next;

		free(n->links);
		n->links = next;
	}
	pthread_cond_destroy(&n->work);
	pthread_mutex_destroy(&n->mu);
	free(n->buf);
	free(n->urls);
	free(n->url_list);
	free(n);
}

const char *lm_nats_subject(const struct lm_nats *n)
{
	return n->subject;
}
