// SPDX-License-Identifier: GPL-2.0
/*
 * The composition root, on the main thread: sizes and builds every user-space stage from
 * struct lm_pipeline_opts, starts and stops their threads in pipeline order, renders
 * /metrics for the ws thread, and frees it all. core/main.c and bench/pipeline.c both
 * build the pipeline here, so they run the same sizes.
 */
#include "core/pipeline.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "core/cgroup.h"
#include "core/json.h"
#include "core/log.h"
#include "core/reader.h"
#include "core/sink.h"
#include "net/nats.h"
#include "net/ws.h"

#define LM_SINK_BUF_MIN_BYTES (256 * 1024)
#define LM_SINK_BUF_CNT 8
#define LM_PIPELINE_CGROUP_MAX 65536 /* cgroups remembered per hierarchy */
#define LM_PIPELINE_NATS_DRAIN_MS 5000 /* at shutdown, while the broker acks */

struct lm_pipeline {
	struct lm_pipeline_opts opts;	/* host, allow_* and token only valid during open */
	struct lm_stats stats;
	struct lm_load *load;		/* borrowed; NULL: the caller plays the reader */
	struct lm_ev_ring *ev_ring;
	struct lm_idx_ring *txt_ring, *free_ring;
	struct lm_txt_pool *pool;
	uint32_t slot_bytes;	/* a text slot: the longest line and a batch */
	struct lm_cgroup *cgroup;
	int memcg_hier;		/* v1 memory hierarchy, or -1 */
	struct lm_sink *sinks[LM_SER_MAX_SINKS];
	int sink_ids[LM_SER_MAX_SINKS];
	int sink_cnt;
	int wake_fd;
	struct lm_reader *reader;
	struct lm_ser *ser;
	struct lm_ws *ws;
	struct lm_nats *nats;	/* the NATS sink; NULL: none */
	char instance[17];	/* this run's id: 16 random hex digits */
};

/*
 * This run's id, in HELLO and every event line: a client that resumes with since= can tell
 * a restart (new id, seqs from 1 again) from a gap. 64 random bits; the clock and pid if the
 * kernel has no entropy to give yet.
 */
static void lm_pipeline_new_instance(char out[17])
{
	struct timespec ts;
	uint64_t id;

	if (getrandom(&id, sizeof(id), GRND_NONBLOCK) != sizeof(id)) {
		clock_gettime(CLOCK_REALTIME, &ts);
		id = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
		id ^= (uint64_t)getpid() << 40;
	}
	snprintf(out, 17, "%016llx", (unsigned long long)id);
}

static uint64_t lm_pipeline_rss_bytes(void)
{
	unsigned long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "re");

	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* lm_ws_metrics_fn: runs on the lm-ws thread for GET /metrics. */
static int lm_pipeline_metrics(void *ctx, uint64_t hist_bytes, uint64_t hist_cap, char *buf,
			       size_t cap)
{
	struct lm_pipeline *m = ctx;
	struct lm_stats_view v = { 0 };
	struct lm_load_counters k = { 0 };
	struct rusage ru;
	int i, n;

	if (m->load) {
		v.ncpus = lm_load_cpu_cnt(m->load);
		k.dropped_cpu = calloc((size_t)v.ncpus * LM_EV_TYPE_CNT, sizeof(*k.dropped_cpu));
		if (k.dropped_cpu && !lm_load_read_counters(m->load, &k)) {
			v.kernel_ok = 1;
			memcpy(v.kernel_seen, k.seen, sizeof(k.seen));
			memcpy(v.kernel_dropped, k.dropped, sizeof(k.dropped));
			v.kernel_dropped_cpu = k.dropped_cpu;
		}
	}
	v.ev_ring_fill = lm_ring_ev_fill(m->ev_ring);
	v.ev_ring_cap = lm_ring_ev_capacity(m->ev_ring);
	v.txt_ring_fill = lm_ring_idx_fill(m->txt_ring);
	v.txt_ring_cap = LM_PIPELINE_POOL_SLOTS;
	v.hist_bytes = hist_bytes;
	v.hist_cap = hist_cap;
	for (i = 0; i < m->sink_cnt; i++)
		v.sink_enabled[m->sink_ids[i]] = 1;
	v.sink_enabled[LM_STATS_SINK_NATS] = m->nats != NULL;
	v.rss_bytes = lm_pipeline_rss_bytes();
	if (!getrusage(RUSAGE_SELF, &ru))
		v.cpu_seconds = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
				(double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	v.start_time_seconds = m->opts.start_time_s;
	v.attached = 1;
	n = lm_stats_render(&m->stats, &v, buf, cap);
	free(k.dropped_cpu);
	return n;
}

static void lm_pipeline_nats_put(void *ctx, const struct lm_txt_slot *slot)
{
	lm_nats_put(ctx, slot);
}

static void lm_pipeline_publish(void *ctx)
{
	lm_ws_wake(ctx);
}

/*
 * lm_ser_fail_fn and lm_ws_fail_fn, on the failing thread: the stages before it would wait
 * forever for ring space or text slots, so end their waits now (each then counts what it
 * abandons). main notices the failure through lm_pipeline_has_failed and shuts down.
 */
static void lm_pipeline_abort_waits(void *ctx)
{
	struct lm_pipeline *m = ctx;

	if (m->reader)
		lm_reader_abort(m->reader);
	lm_ser_abort(m->ser);
}

static uint32_t lm_pipeline_pow2(uint32_t v)
{
	uint32_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

uint32_t lm_pipeline_slot_bytes(uint32_t max_args_bytes)
{
	uint32_t b = (uint32_t)lm_json_event_max(max_args_bytes) + LM_SER_BATCH_BYTES;

	return (b + 4095) & ~4095U;
}

static int lm_pipeline_add_sink(struct lm_pipeline *m, int fd, enum lm_stats_sink_id id)
{
	struct lm_sink_opts so = {
		.fd = fd,
		.id = id,
		.buf_bytes = lm_pipeline_pow2(m->slot_bytes + 4096 > LM_SINK_BUF_MIN_BYTES ?
					      m->slot_bytes + 4096 : LM_SINK_BUF_MIN_BYTES),
		.buf_cnt = LM_SINK_BUF_CNT,
		.notify_fd = m->wake_fd,
	};
	int err;

	if (id == LM_STATS_SINK_FILE) {
		so.path = m->opts.output;
		so.max_bytes = m->opts.output_max_bytes;
		so.keep = m->opts.output_keep;
	}
	err = lm_sink_open(&so, &m->stats, &m->sinks[m->sink_cnt]);
	if (err)
		return err;
	m->sink_ids[m->sink_cnt++] = id;
	return 0;
}

/* Builds rings, pool and sinks; nothing touches the kernel's BPF yet. */
static int lm_pipeline_build(struct lm_pipeline *m, enum lm_pipeline_part *failed)
{
	const struct lm_pipeline_opts *cfg = &m->opts;
	uint32_t i, ev_bytes;
	int err;

	m->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->wake_fd < 0) {
		err = -errno;
		*failed = LM_PIPELINE_PART_WAKE;
		return err;
	}
	/* the largest record takes at most a quarter of ev_ring; the longest line fits a slot */
	ev_bytes = lm_pipeline_pow2(4 * (lm_load_record_max(cfg->max_args_bytes) + 64));
	if (ev_bytes < LM_PIPELINE_EV_RING_MIN_BYTES)
		ev_bytes = LM_PIPELINE_EV_RING_MIN_BYTES;
	m->slot_bytes = lm_pipeline_slot_bytes(cfg->max_args_bytes);
	err = lm_ring_ev_open(ev_bytes, &m->ev_ring);
	if (!err)
		err = lm_ring_idx_open(LM_PIPELINE_IDX_RING_SLOTS, &m->txt_ring);
	if (!err)
		err = lm_ring_idx_open(LM_PIPELINE_IDX_RING_SLOTS, &m->free_ring);
	if (!err)
		err = lm_ring_pool_open(LM_PIPELINE_POOL_SLOTS, m->slot_bytes,
					lm_ws_headroom_bytes(), &m->pool);
	if (err) {
		*failed = LM_PIPELINE_PART_RINGS;
		return err;
	}
	for (i = 0; i < LM_PIPELINE_POOL_SLOTS; i++)
		lm_ring_idx_push(m->free_ring, i);
	if (cfg->to_stdout) {
		err = lm_pipeline_add_sink(m, STDOUT_FILENO, LM_STATS_SINK_STDOUT);
		if (err) {
			*failed = LM_PIPELINE_PART_STDOUT;
			return err;
		}
	}
	if (cfg->output) {
		err = lm_pipeline_add_sink(m, -1, LM_STATS_SINK_FILE);
		if (err) {
			*failed = LM_PIPELINE_PART_FILE;
			return err;
		}
		/* --user: the file becomes the user's, so rotation may rename it (sticky dirs) */
		err = cfg->output_chown ? lm_sink_set_owner(m->sinks[m->sink_cnt - 1],
							    cfg->output_uid, cfg->output_gid) : 0;
		if (err) {
			*failed = LM_PIPELINE_PART_FILE_OWNER;
			return err;
		}
	}
	return 0;
}

int lm_pipeline_open(const struct lm_pipeline_opts *opts, struct lm_pipeline **out,
		     enum lm_pipeline_part *failed)
{
	struct lm_pipeline *m;
	struct lm_ser_opts so = { 0 };
	struct lm_ws_opts wo;
	int err, i;

	*out = NULL;
	*failed = LM_PIPELINE_PART_NONE;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->opts = *opts;
	m->wake_fd = -1;
	m->memcg_hier = -1;
	lm_pipeline_new_instance(m->instance);
	err = lm_pipeline_build(m, failed);
	if (err)
		goto out;
	if (opts->host) {
		wo = (struct lm_ws_opts){
			.host = opts->host,
			.port = opts->port,
			.txt_ring = m->txt_ring,
			.free_ring = m->free_ring,
			.pool = m->pool,
			.replay_bytes = opts->replay_bytes ? opts->replay_bytes :
							    LM_PIPELINE_REPLAY_DEFAULT_BYTES,
			.instance = m->instance,
			.version = opts->version ? opts->version : "unknown",
			.slow_ms = opts->ws_slow_ms,
			.token = opts->token,
			.allow_origins = opts->allow_origins,
			.allow_origin_cnt = opts->allow_origin_cnt,
			.allow_hosts = opts->allow_hosts,
			.allow_host_cnt = opts->allow_host_cnt,
			.max_clients = opts->max_clients,
			.max_header_bytes = opts->max_header_bytes,
			.handshake_timeout_s = opts->handshake_timeout_s,
			.idle_timeout_s = opts->idle_timeout_s,
			.stats = &m->stats,
			.metrics = lm_pipeline_metrics,
			.metrics_ctx = m,
			.on_fail = lm_pipeline_abort_waits,
			.fail_ctx = m,
		};
		err = lm_ws_open(&wo, &m->ws);
		if (err) {
			*failed = LM_PIPELINE_PART_WS;
			goto out;
		}
	}
	if (opts->cgroup) {
		/* what cgroups exist now; the programs report the ones made and removed later */
		err = lm_cgroup_open(&(struct lm_cgroup_opts){ .max_entries =
								   LM_PIPELINE_CGROUP_MAX },
				     &m->cgroup);
		if (err) {
			*failed = LM_PIPELINE_PART_CGROUP;
			goto out;
		}
		if (lm_cgroup_memory_hier(m->cgroup) > 0)
			m->memcg_hier = lm_cgroup_memory_hier(m->cgroup);
	}
	if (opts->nats) {
		struct lm_nats_opts no = *opts->nats;
		char dummy[8];

		no.stats = &m->stats;
		no.instance = m->instance;
		err = lm_nats_open(&no, &m->nats, opts->nats_err ? opts->nats_err : dummy,
				   opts->nats_err ? opts->nats_err_cap : sizeof(dummy));
		if (err) {
			*failed = LM_PIPELINE_PART_NATS;
			goto out;
		}
		so.tap = lm_pipeline_nats_put;
		so.tap_ctx = m->nats;
	}
	so.ev_ring = m->ev_ring;
	so.txt_ring = m->txt_ring;
	so.free_ring = m->free_ring;
	so.pool = m->pool;
	for (i = 0; i < m->sink_cnt; i++)
		so.sinks[i] = m->sinks[i];
	so.sink_cnt = m->sink_cnt;
	so.stats = &m->stats;
	so.wake_fd = m->wake_fd;
	so.publish = m->ws ? lm_pipeline_publish : opts->publish;
	so.publish_ctx = m->ws ? (void *)m->ws : opts->publish_ctx;
	so.on_fail = lm_pipeline_abort_waits;
	so.fail_ctx = m;
	so.cgroup = m->cgroup;
	so.memcg_hier = m->memcg_hier;
	so.instance = m->instance;
	err = lm_ser_open(&so, &m->ser);
	if (err) {
		*failed = LM_PIPELINE_PART_SER;
		goto out;
	}
	/* the strings are the caller's; only open may read them */
	m->opts.host = NULL;
	m->opts.token = NULL;
	m->opts.allow_origins = NULL;
	m->opts.allow_hosts = NULL;
	*out = m;
	m = NULL;
out:
	lm_pipeline_close(m);
	return err;
}

int lm_pipeline_memcg_hier(const struct lm_pipeline *p)
{
	return p->memcg_hier;
}

const char *lm_pipeline_instance(const struct lm_pipeline *p)
{
	return p->instance;
}

int lm_pipeline_open_reader(struct lm_pipeline *p, struct lm_load *load)
{
	struct lm_reader_opts ro = {
		.ring_fds = lm_load_ring_fds(load),
		.ring_cnt = lm_load_ring_cnt(load),
		.ev_ring = p->ev_ring,
		.stats = &p->stats,
		.wake_fd = p->wake_fd,
	};
	int err;

	err = lm_reader_open(&ro, &p->reader);
	if (err)
		return err;
	p->load = load;
	return 0;
}

int lm_pipeline_start(struct lm_pipeline *p)
{
	int err = 0;

	if (p->ws)
		err = lm_ws_start(p->ws);
	if (!err && p->nats)
		err = lm_nats_start(p->nats);
	if (!err)
		err = lm_ser_start(p->ser);
	if (!err && p->reader)
		err = lm_reader_start(p->reader);
	return err;
}

void lm_pipeline_set_ready(struct lm_pipeline *p, bool ready)
{
	if (p->ws)
		lm_ws_set_ready(p->ws, ready);
}

/*
 * The stage lines keep main's tag: README.md and docs/ARCHITECTURE.md quote them as
 * `lifemon: main: stage ... failed`, and main decides to exit on them.
 */
int lm_pipeline_stop(struct lm_pipeline *p)
{
	int err = 0, e;

	if (p->load)
		lm_load_detach(p->load);
	lm_pipeline_set_ready(p, false);
	if (p->reader) {
		e = lm_reader_stop(p->reader);
		if (e) {
			lm_err("main", "stage reader (lm-reader) failed: %s; shutting down",
			       strerror(-e));
			lm_reader_abort(p->reader);
			err = e;
		}
	}
	e = lm_ser_stop(p->ser);
	if (e) {
		lm_err("main", "stage serializer (lm-ser) failed: %s; shutting down", strerror(-e));
		err = e;
	}
	/* the serializer is joined: nothing more enters the backlog; publish what is left */
	if (p->nats && lm_nats_stop(p->nats, LM_PIPELINE_NATS_DRAIN_MS))
		lm_warn("main", "NATS: gave up waiting for acks after %d ms",
			LM_PIPELINE_NATS_DRAIN_MS);
	if (p->ws) {
		e = lm_ws_stop(p->ws, 1000);
		if (e) {
			lm_err("main", "stage ws (lm-ws) failed: %s; shutting down", strerror(-e));
			err = e;
		}
	}
	return err;
}

bool lm_pipeline_has_failed(struct lm_pipeline *p)
{
	return (p->reader && lm_reader_has_failed(p->reader)) || lm_ser_has_failed(p->ser) ||
	       (p->ws && lm_ws_has_failed(p->ws));
}

const struct lm_stats *lm_pipeline_stats(const struct lm_pipeline *p)
{
	return &p->stats;
}

void lm_pipeline_reopen_output(struct lm_pipeline *p)
{
	int i;

	for (i = 0; i < p->sink_cnt; i++)
		if (p->sink_ids[i] == LM_STATS_SINK_FILE)
			lm_sink_request_reopen(p->sinks[i]);
}

int lm_pipeline_output_error(const struct lm_pipeline *p)
{
	int i;

	for (i = 0; i < p->sink_cnt; i++)
		if (p->sink_ids[i] == LM_STATS_SINK_FILE)
			return lm_sink_file_error(p->sinks[i]);
	return 0;
}

struct lm_ev_ring *lm_pipeline_ev_ring(struct lm_pipeline *p)
{
	return p->ev_ring;
}

int lm_pipeline_wake(const struct lm_pipeline *p)
{
	return p->wake_fd;
}

struct lm_idx_ring *lm_pipeline_txt_ring(struct lm_pipeline *p)
{
	return p->txt_ring;
}

struct lm_idx_ring *lm_pipeline_free_ring(struct lm_pipeline *p)
{
	return p->free_ring;
}

struct lm_txt_pool *lm_pipeline_pool(struct lm_pipeline *p)
{
	return p->pool;
}

void lm_pipeline_close(struct lm_pipeline *p)
{
	int i;

	if (!p)
		return;
	lm_ser_close(p->ser);
	lm_nats_close(p->nats);
	lm_reader_close(p->reader);
	lm_ws_close(p->ws);
	for (i = 0; i < p->sink_cnt; i++)
		lm_sink_close(p->sinks[i]);
	lm_ring_pool_close(p->pool);
	lm_cgroup_close(p->cgroup);
	lm_ring_idx_close(p->free_ring);
	lm_ring_idx_close(p->txt_ring);
	lm_ring_ev_close(p->ev_ring);
	if (p->wake_fd >= 0)
		close(p->wake_fd);
	free(p);
}
