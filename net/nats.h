/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The NATS JetStream sink (--nats), on its own lm-nats thread, with nats.c (libnats) doing
 * the connection. The serializer copies each slot's lines into a bounded backlog (one
 * message per line); lm-nats publishes them asynchronously, in order, a bounded number in
 * flight, each with the header Nats-Msg-Id <instance>:<seq> so that the server de-duplicates
 * a retry. A message leaves the backlog only when JetStream acked it. Any failure (a timeout,
 * no stream leader, a lost connection) stops new publishing until every message in flight
 * is resolved; then publishing starts again from the oldest one not acked, one message at a
 * time until one is acked, with the same ids. So the stream holds every event once and in
 * order while the backlog holds.
 *
 * The serializer never waits for this sink: the backlog is where events wait for the
 * brokers. When it is full, new events are dropped for NATS only, counted, and a LOST notice
 * (reason nats_backlog_full) goes into the backlog as soon as there is room for it.
 */
#ifndef LM_NATS_H
#define LM_NATS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/ring.h"
#include "core/stats.h"

#define LM_NATS_BACKLOG_DEFAULT_BYTES (64ULL << 20)
#define LM_NATS_BACKLOG_MIN_BYTES (64ULL << 10)
#define LM_NATS_BACKLOG_MAX_BYTES (16ULL << 30)
#define LM_NATS_DEFAULT_STREAM "LIFEMON"
#define LM_NATS_STREAM_SUBJECTS "lifemon.>"
#define LM_NATS_DEFAULT_REPLICAS 3
#define LM_NATS_DUPLICATE_WINDOW_S 120
#define LM_NATS_SUBJECT_MAX 256

struct lm_nats;

struct lm_nats_opts {
	const char *urls;		/* "nats://h:p[,nats://h:p...]"; copied */
	const char *subject;		/* NULL: lifemon.<hostname>.events */
	const char *stream;		/* NULL: LIFEMON */
	int replicas;			/* for a stream we create; 0: 3 */
	const char *creds_file;		/* --nats-creds */
	const char *token;		/* the token itself (main read --nats-token-file) */
	const char *tls_ca, *tls_cert, *tls_key;
	uint64_t backlog_bytes;		/* 0: LM_NATS_BACKLOG_DEFAULT_BYTES */
	uint32_t max_inflight;		/* 0: 1024 */
	uint32_t ack_wait_ms;		/* a publish not acked within this has failed; 0: 2000 */
	const char *instance;		/* this run's id; copied */
	const char *host;		/* for Lifemon-Host and the subject; NULL: uname's */
	struct lm_stats *stats;
};

/*
 * Makes `host` subject-safe into out (cap bytes): every byte outside [A-Za-z0-9_-] becomes
 * '_'. Pure.
 */
void lm_nats_subject_token(const char *host, char *out, size_t cap);

/*
 * True when subj is a valid subject to publish to: dot-separated non-empty tokens of
 * printable ASCII without spaces or the wildcards * and >. Pure.
 */
bool lm_nats_subject_valid(const char *subj);

/*
 * Validates the options, allocates the backlog and configures the connection (nothing
 * connects yet). Returns 0 and *out; -EINVAL with a reason in err (a bad URL list, subject,
 * replica count or size), -ENOENT/-EACCES and the file in err for an unreadable creds or
 * TLS file, -ENOMEM. Main thread.
 */
int lm_nats_open(const struct lm_nats_opts *opts, struct lm_nats **out, char *err, size_t cap);

/*
 * Starts the lm-nats thread: it connects (retrying for ever; says once on stderr that no
 * broker answers), finds or creates the stream, and publishes. Returns 0 or -errno.
 */
int lm_nats_start(struct lm_nats *n);

/*
 * lm-ser thread: copies the slot's lines into the backlog; the lines that do not fit are
 * dropped and counted. Never waits (but for the mutex).
 */
void lm_nats_put(struct lm_nats *n, const struct lm_txt_slot *slot);

/*
 * Shutdown, after the serializer was joined: publishes what is left for up to timeout_ms
 * while the broker acks, then closes the connection and joins the thread; events never
 * acked are counted dropped (shutdown_dropped). Returns 0 or -ETIMEDOUT. Main thread.
 */
int lm_nats_stop(struct lm_nats *n, int timeout_ms);

/*
 * Frees everything, and ends nats.c's threads (nats_CloseAndWait: the library can be used
 * again afterwards). Accepts NULL. After lm_nats_stop (or without start).
 */
void lm_nats_close(struct lm_nats *n);

/* The subject this sink publishes to. */
const char *lm_nats_subject(const struct lm_nats *n);

#endif /* LM_NATS_H */
