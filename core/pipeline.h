/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The composition root of the user-space pipeline, on the main thread: builds the wake
 * eventfd, ev_ring, txt_ring, free_ring, the text pool, the sinks, the cgroup cache, the ws
 * server, the serializer and the reader from one options struct, starts their threads,
 * stops them in pipeline order and tears everything down. Owns all of it and the stats;
 * borrows the BPF loader (main opens and closes it). Runs no thread of its own.
 */
#ifndef LM_PIPELINE_H
#define LM_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/loader.h"
#include "core/ring.h"
#include "core/ser.h"
#include "core/stats.h"

/* ev_ring's least size; it grows so the largest record takes at most a quarter of it */
#define LM_PIPELINE_EV_RING_MIN_BYTES (1U << 20)
/*
 * lm-ws copies each slot into its replay history and gives it back at once, unless it waits
 * for a client that is behind: then these are the text the serializer may run ahead by.
 */
#define LM_PIPELINE_POOL_SLOTS 64
#define LM_PIPELINE_IDX_RING_SLOTS 128 /* > LM_PIPELINE_POOL_SLOTS: every index fits */
#define LM_PIPELINE_REPLAY_DEFAULT_BYTES (16ULL << 20) /* --replay-bytes */

struct lm_pipeline;

/* Which part lm_pipeline_open could not build, so the caller can say what failed. */
enum lm_pipeline_part {
	LM_PIPELINE_PART_NONE,
	LM_PIPELINE_PART_WAKE,		/* the wake eventfd */
	LM_PIPELINE_PART_RINGS,		/* ev_ring, txt_ring, free_ring or the text pool */
	LM_PIPELINE_PART_STDOUT,	/* the stdout sink */
	LM_PIPELINE_PART_FILE,		/* the file sink (open(2) of the path included) */
	LM_PIPELINE_PART_FILE_OWNER,	/* handing the file to output_uid:output_gid */
	LM_PIPELINE_PART_WS,		/* the ws server (bind(2) included) */
	LM_PIPELINE_PART_CGROUP,	/* reading the cgroup hierarchies */
	LM_PIPELINE_PART_SER,		/* the serializer */
	LM_PIPELINE_PART_NATS,		/* the NATS sink's options (opts->nats_err says why) */
};

struct lm_nats_opts;

struct lm_pipeline_opts {
	uint32_t max_args_bytes;	/* argument bytes per exec: sizes ev_ring and the slots */
	bool to_stdout;			/* JSON Lines on stdout */
	const char *output;		/* file sink path, borrowed until close; NULL: none */
	uint64_t output_max_bytes;	/* rotate before a write would pass this; 0 = never */
	uint32_t output_keep;		/* rotated files kept */
	bool output_chown;		/* hand the file to output_uid:output_gid (--user) */
	uid_t output_uid;
	gid_t output_gid;
	bool cgroup;			/* read the cgroup hierarchies: paths go into events */
	/*
	 * The ws server. host NULL: none; then publish(publish_ctx) is called on the lm-ser
	 * thread after slots were pushed to lm_pipeline_txt_ring(), and the caller returns
	 * each slot index to lm_pipeline_free_ring(), as ws would.
	 */
	const char *host;		/* numeric address, borrowed until open returns */
	uint16_t port;
	uint32_t ws_slow_ms;
	uint64_t replay_bytes;		/* JSON the ws history keeps (--replay-bytes) */
	const char *version;		/* lifemon's version, for HELLO */
	const char *token;		/* bearer token; NULL: none */
	const char *const *allow_origins;
	size_t allow_origin_cnt;
	const char *const *allow_hosts;
	size_t allow_host_cnt;
	uint32_t max_clients;
	uint32_t max_header_bytes;
	uint32_t handshake_timeout_s;
	uint32_t idle_timeout_s;
	lm_ser_publish_fn publish;	/* only without ws */
	void *publish_ctx;
	double start_time_s;		/* process start, unix seconds, for /metrics */
	/*
	 * The NATS JetStream sink (net/nats.h); NULL: none. Its stats and instance are the
	 * pipeline's. On LM_PIPELINE_PART_NATS the reason is written to nats_err.
	 */
	const struct lm_nats_opts *nats;
	char *nats_err;
	size_t nats_err_cap;
};

/*
 * A text slot's bytes for max_args_bytes: the longest JSON line and a batch, page-rounded.
 * Pure; any thread.
 */
uint32_t lm_pipeline_slot_bytes(uint32_t max_args_bytes);

/*
 * Builds everything but the reader: eventfd, rings, pool, sinks, ws server (socket bound,
 * thread not started), cgroup cache, serializer. Nothing touches BPF. Logs nothing of its
 * own: on failure *failed names the part and the caller reports it. Returns 0 and *out, or
 * the part's -errno: -ENOMEM, -EINVAL, -errno from eventfd(2), open(2) of the output path,
 * io_uring setup, fchown(2), bind(2) (-EADDRINUSE, -EADDRNOTAVAIL, -EACCES) or the cgroup
 * walk. Main thread.
 */
int lm_pipeline_open(const struct lm_pipeline_opts *opts, struct lm_pipeline **out,
		     enum lm_pipeline_part *failed);

/*
 * What lm_load_opts.memcg_hier should be: the v1 hierarchy of the memory controller, or -1
 * (cgroup v2, or no cgroup cache). The serializer was built with the same value.
 */
int lm_pipeline_memcg_hier(const struct lm_pipeline *p);

/*
 * This run's id: 16 random hex digits, made at open, in every event line and the HELLO of
 * /ws. Valid until close.
 */
const char *lm_pipeline_instance(const struct lm_pipeline *p);

/*
 * Opens the lm-reader stage over the loader's rings; load is borrowed until
 * lm_pipeline_close, and lm_pipeline_stop detaches its programs. Without this call there
 * is no reader: the caller produces into lm_pipeline_ev_ring() and writes
 * lm_pipeline_wake() after each batch. Returns 0 or the -errno of lm_reader_open (which
 * logs). Main thread, once, before lm_pipeline_start.
 */
int lm_pipeline_open_reader(struct lm_pipeline *p, struct lm_load *load);

/*
 * Starts the threads: ws, then the serializer, then the reader. Returns 0 or -errno from
 * pthread_create; on failure call lm_pipeline_stop. Threads inherit the caller's signal
 * mask. Main thread.
 */
int lm_pipeline_start(struct lm_pipeline *p);

/* /healthz answers 200 only while ready; no-op without ws. Any thread. */
void lm_pipeline_set_ready(struct lm_pipeline *p, bool ready);

/*
 * Shutdown in pipeline order: detaches the programs, marks ws not ready, stops the reader
 * after a final drain, drains the serializer and its sinks, flushes ws clients (up to 1 s)
 * and joins every thread. Logs one line per failed stage. Returns 0 or the last failed
 * stage's -errno. Blocks up to a few seconds. Main thread.
 */
int lm_pipeline_stop(struct lm_pipeline *p);

/* True once any stage's thread ended on an error; main polls it. Any thread. */
bool lm_pipeline_has_failed(struct lm_pipeline *p);

/* The counters every stage writes; valid until close. */
const struct lm_stats *lm_pipeline_stats(const struct lm_pipeline *p);

/* Asks the file sink to reopen its path (SIGHUP); no-op without one. Any thread. */
void lm_pipeline_reopen_output(struct lm_pipeline *p);

/* The file sink's reopen/rotate error (0 when fine or without one). Any thread. */
int lm_pipeline_output_error(const struct lm_pipeline *p);

/* Without a reader: the ring the caller produces into, and the eventfd it writes after. */
struct lm_ev_ring *lm_pipeline_ev_ring(struct lm_pipeline *p);
int lm_pipeline_wake(const struct lm_pipeline *p);

/* Without ws: where published slots arrive, where they go back, and their pool. */
struct lm_idx_ring *lm_pipeline_txt_ring(struct lm_pipeline *p);
struct lm_idx_ring *lm_pipeline_free_ring(struct lm_pipeline *p);
struct lm_txt_pool *lm_pipeline_pool(struct lm_pipeline *p);

/* Closes everything it opened (not the loader); accepts NULL. Call after lm_pipeline_stop. */
void lm_pipeline_close(struct lm_pipeline *p);

#endif /* LM_PIPELINE_H */
