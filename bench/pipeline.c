// SPDX-License-Identifier: GPL-2.0
/*
 * Pipeline benchmark, user space only (no kernel, no BPF). A producer thread plays lm-reader
 * and fills the real ev_ring; the real lm-ser thread, file sink and lm-ws server (built by
 * core/pipeline.c, as for lifemon) carry the events to K WebSocket clients on loopback, each a thread
 * of this process that reads RFC 6455 frames, counts events and LOST notices and checks seq
 * order. Also times lm_json_event alone, and runs as a standalone client for bench/synth.sh.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "core/json.h"
#include "core/log.h"
#include "core/pipeline.h"
#include "core/ring.h"
#include "core/stats.h"
#include "tests/ws_client.h"

/* lifemon's defaults (core/main.c); lm_ws_open refuses zeroes */
#define PL_WS_SLOW_MS 10000
#define PL_WS_MAX_CLIENTS 64
#define PL_WS_MAX_HEADER_BYTES 4096
#define PL_WS_HANDSHAKE_TIMEOUT_S 5
#define PL_WS_IDLE_TIMEOUT_S 30

#define PL_WAKE_EVERY 256	/* core/reader.c wakes the serializer every 256 records */
#define PL_TPL_CNT 4096		/* distinct template events, cycled */
#define PL_LINE_HEAD 160	/* bytes of each line kept for parsing (seq, LOST fields) */
#define PL_RX_BYTES (1 << 20)
#define PL_MAX_CLIENTS 64
#define PL_MAX_RUNS 64
#define PL_MAX_SCEN 16

/* RFC 6455 section 1.3's example key and its accept value. */
#define PL_WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define PL_WS_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static uint64_t pl_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t pl_boot_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void pl_sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ULL), (long)(ns % 1000000000ULL) };

	nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------------------------------ */
/* Event templates: what a busy build host produces                                      */

/* A template record in the kernel's format (8-byte aligned). */
struct pl_tpl {
	uint64_t b[64];
	uint32_t size;
};

static struct pl_tpl pl_tpl[PL_TPL_CNT];

/* Appends n bytes at *off of t; returns n. */
static uint32_t pl_tpl_put(struct pl_tpl *t, uint32_t *off, const char *s, uint32_t n)
{
	memcpy((char *)t->b + *off, s, n);
	*off += n;
	return n;
}

static void pl_tpl_init(void)
{
	static const char *const comms[] = {
		"cc1plus", "make", "sh", "gcc", "as", "ld", "collect2", "cc1", "g++", "bash",
		"python3", "git", "sed", "ninja", "cmake", "x86_64-linux-gn",
	};
	/* a compile step as a build host runs thousands of: args with NULs, paths walked */
	static const char args[] = "cc1plus\0-O2\0-c\0src/lib/module.cc\0-o\0module.o";
	static const char filename[] = "/usr/lib/gcc/x86_64-linux-gnu/12/cc1plus";
	static const char exe[] = "/cc1plus/12/x86_64-linux-gnu/gcc/lib/usr";
	static const char cwd[] = "/build/project/home";
	uint32_t i;

	for (i = 0; i < PL_TPL_CNT; i++) {
		struct pl_tpl *t = &pl_tpl[i];
		struct lm_common *e = (struct lm_common *)t->b;
		const char *c = comms[(i / 2 * 7) % (sizeof(comms) / sizeof(comms[0]))];
		uint32_t off;

		memset(t, 0, sizeof(*t));
		e->version = LM_EVENT_VERSION;
		e->type = i % 2 ? LM_EV_EXIT : LM_EV_EXEC;	/* EXEC then EXIT of one pid */
		e->pid = 200000 + i / 2;
		e->tid = e->pid;
		e->ppid = 4242;
		e->uid = 1000;
		e->start_ns = 1000000000ULL + i;
		e->pstart_ns = 999;
		e->cgroup_id = 1234;
		if (e->type == LM_EV_EXIT) {
			struct lm_exit *x = (struct lm_exit *)t->b;

			if (i % 97 == 1)
				e->aux = 9;		/* SIGKILL */
			else if (i % 16 == 3)
				e->aux = 1 << 8;	/* exit 1 */
			x->cpu_user_ns = 12000000;
			x->cpu_sys_ns = 4000000;
			x->max_rss_kb = 81234;
			off = offsetof(struct lm_exit, data);
			e->comm_len = (uint8_t)pl_tpl_put(t, &off, c, (uint32_t)strnlen(c, LM_COMM_LEN));
		} else {
			struct lm_exec *x = (struct lm_exec *)t->b;

			e->aux = 1000;
			x->euid = 1000;
			x->argc = 6;
			off = offsetof(struct lm_exec, data);
			e->comm_len = (uint8_t)pl_tpl_put(t, &off, c, (uint32_t)strnlen(c, LM_COMM_LEN));
			x->pcomm_len = (uint8_t)pl_tpl_put(t, &off, "make", 4);
			x->args_len = pl_tpl_put(t, &off, args, sizeof(args));
			x->filename_len = (uint16_t)pl_tpl_put(t, &off, filename, sizeof(filename) - 1);
			x->exe_len = (uint16_t)pl_tpl_put(t, &off, exe, sizeof(exe) - 1);
			x->cwd_len = (uint16_t)pl_tpl_put(t, &off, cwd, sizeof(cwd) - 1);
		}
		t->size = off;
	}
}

/* ------------------------------------------------------------------------------------ */
/* Line checker: counts events and LOST notices and checks that seqs are contiguous       */

struct pl_check {
	uint64_t next_seq;	/* seq expected next; 0 before the first line */
	uint64_t events;	/* event lines */
	uint64_t lost;		/* events announced lost */
	uint64_t lost_notices;
	uint64_t kernel_lost;	/* events the kernel could not queue (they never got seqs) */
	uint64_t kernel_notices;
	uint64_t order_errors;	/* seq not the expected one (gap, repeat, reorder) */
	uint64_t bad_lines;	/* neither an event nor a LOST notice, or a HELLO not first */
	uint64_t hellos;	/* HELLO lines */
	bool filtered;		/* the client asked for a filter: a seq gap was filtered out */
	uint64_t last_seq;	/* newest seq seen or announced lost */
	uint64_t first_seq;	/* seq of the first line (events before it predate the client) */
	char head[PL_LINE_HEAD];
	size_t head_len;
	bool in_line;
};

static bool pl_field_u64(const char *s, size_t n, const char *key, uint64_t *v)
{
	size_t klen = strlen(key);
	const char *p = memmem(s, n, key, klen);
	uint64_t x = 0;

	if (!p)
		return false;
	p += klen;
	if (p >= s + n || *p < '0' || *p > '9')
		return false;
	while (p < s + n && *p >= '0' && *p <= '9')
		x = x * 10 + (uint64_t)(*p++ - '0');
	*v = x;
	return true;
}

static void pl_check_line(struct pl_check *k, const char *s, size_t n)
{
	static const char ev_pfx[] = "{\"seq\":";
	static const char lost_pfx[] = "{\"type\":\"LOST\"";
	static const char hello_pfx[] = "{\"type\":\"HELLO\",";
	uint64_t seq, first, last, cnt;

	/* lifemon's first line on /ws; only there */
	if (n >= sizeof(hello_pfx) - 1 && !memcmp(s, hello_pfx, sizeof(hello_pfx) - 1)) {
		if (k->hellos++ || k->events || k->lost_notices || k->kernel_notices)
			k->bad_lines++;
		return;
	}

	if (n >= sizeof(ev_pfx) - 1 && !memcmp(s, ev_pfx, sizeof(ev_pfx) - 1) &&
	    pl_field_u64(s, n, "{\"seq\":", &seq)) {
		if (!k->first_seq)
			k->first_seq = seq;
		if (k->next_seq && (k->filtered ? seq < k->next_seq : seq != k->next_seq))
			k->order_errors++;
		k->next_seq = seq + 1;
		k->last_seq = seq;
		k->events++;
		return;
	}
	if (n >= sizeof(lost_pfx) - 1 && !memcmp(s, lost_pfx, sizeof(lost_pfx) - 1) &&
	    pl_field_u64(s, n, "\"first_seq\":", &first) &&
	    pl_field_u64(s, n, "\"last_seq\":", &last) &&
	    pl_field_u64(s, n, "\"count\":", &cnt)) {
		if ((k->next_seq && (k->filtered ? first < k->next_seq : first != k->next_seq)) ||
		    last < first || cnt != last - first + 1)
			k->order_errors++;
		if (!k->first_seq)
			k->first_seq = first;
		k->next_seq = last + 1;
		k->last_seq = last;
		k->lost += cnt;
		k->lost_notices++;
		return;
	}
	/* {"type":"LOST","count":N,"reason":"kernel_ring_full","cpu":C,"before_seq":S} */
	if (n >= sizeof(lost_pfx) - 1 && !memcmp(s, lost_pfx, sizeof(lost_pfx) - 1) &&
	    pl_field_u64(s, n, "\"count\":", &cnt) &&
	    pl_field_u64(s, n, "\"before_seq\":", &seq)) {
		if (k->next_seq && seq != k->next_seq)
			k->order_errors++;
		k->kernel_lost += cnt;
		k->kernel_notices++;
		return;
	}
	k->bad_lines++;
}

/* Feeds message bytes; lines may be split anywhere. Only each line's head is parsed. */
static void pl_check_feed(struct pl_check *k, const char *p, size_t n)
{
	while (n) {
		const char *nl = memchr(p, '\n', n);
		size_t seg = nl ? (size_t)(nl - p) : n;

		if (!k->in_line && nl) {
			pl_check_line(k, p, seg);	/* whole line in this chunk: no copy */
		} else {
			size_t room = sizeof(k->head) - k->head_len;
			size_t take = seg < room ? seg : room;

			memcpy(k->head + k->head_len, p, take);
			k->head_len += take;
			k->in_line = true;
			if (nl) {
				pl_check_line(k, k->head, k->head_len);
				k->head_len = 0;
				k->in_line = false;
			}
		}
		if (!nl)
			return;
		p = nl + 1;
		n -= seg + 1;
	}
}

/* ------------------------------------------------------------------------------------ */
/* WebSocket client: a small RFC 6455 reader (server frames are unmasked; we send masked) */

struct pl_client {
	int id;
	uint16_t port;
	const char *query;	/* client mode: /ws?query (a filter); NULL: none */
	bool strict;		/* read through tests/ws_client.c (lm_wsc) instead */
	pthread_t thread;
	bool started;
	struct pl_check chk;
	uint64_t msgs;		/* complete text messages */
	uint64_t bytes;		/* payload bytes */
	_Atomic uint64_t target_seq;	/* main -> client: done once this seq was seen or lost */
	_Atomic uint64_t done_ns;	/* client -> main: when target_seq was reached */
	_Atomic bool connected;
	_Atomic bool ended;	/* closed by the server or failed */
	_Atomic bool stop;	/* main -> client */
	/* for the client-mode stat file */
	_Atomic uint64_t pub_events, pub_lost, pub_last_seq, pub_first_seq;
	uint16_t close_code;
	int err;
	char errmsg[160];
	FILE *out;		/* client mode: raw stream copy, or NULL */
	/* fast reader state */
	int fd;
	unsigned char *in;
	size_t in_len;
	uint64_t frame_left;	/* payload bytes of the current data frame still to come */
	bool in_frame;
	bool msg_open;		/* a text message started and its FIN frame not yet seen */
};

static void pl_client_set_err(struct pl_client *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void pl_client_set_err(struct pl_client *c, int err, const char *fmt, ...)
{
	va_list ap;

	if (c->err)
		return;
	c->err = err;
	va_start(ap, fmt);
	vsnprintf(c->errmsg, sizeof(c->errmsg), fmt, ap);
	va_end(ap);
}

static void pl_client_progress(struct pl_client *c)
{
	uint64_t t = atomic_load_explicit(&c->target_seq, memory_order_relaxed);

	/* relaxed: the stat values are independent numbers read by another thread */
	atomic_store_explicit(&c->pub_events, c->chk.events, memory_order_relaxed);
	atomic_store_explicit(&c->pub_lost, c->chk.lost, memory_order_relaxed);
	atomic_store_explicit(&c->pub_last_seq, c->chk.last_seq, memory_order_relaxed);
	atomic_store_explicit(&c->pub_first_seq, c->chk.first_seq, memory_order_relaxed);
	if (t && c->chk.last_seq >= t && !atomic_load_explicit(&c->done_ns, memory_order_relaxed))
		/* release: main reads the counters after it sees done_ns */
		atomic_store_explicit(&c->done_ns, pl_now_ns(), memory_order_release);
}

static int pl_send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Sends a masked control frame (close or pong) with a payload of at most 125 bytes. */
static int pl_send_control(int fd, int opcode, const unsigned char *payload, size_t len)
{
	unsigned char f[2 + 4 + 125];
	const unsigned char mask[4] = { 0x12, 0x34, 0x56, 0x78 };
	size_t i;

	if (len > 125)
		len = 125;
	f[0] = (unsigned char)(0x80 | opcode);
	f[1] = (unsigned char)(0x80 | len);
	memcpy(f + 2, mask, 4);
	for (i = 0; i < len; i++)
		f[6 + i] = payload[i] ^ mask[i % 4];
	return pl_send_all(fd, f, 6 + len);
}

static int pl_client_connect(struct pl_client *c)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(c->port) };
	char req[4608];
	size_t hdr_end = 0;
	int n, err;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = -errno;
		pl_client_set_err(c, err, "connect to 127.0.0.1:%u: %s", c->port, strerror(-err));
		return err;
	}
	n = snprintf(req, sizeof(req), "GET /ws%s%s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
		     "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " PL_WS_KEY
		     "\r\nSec-WebSocket-Version: 13\r\n\r\n", c->query ? "?" : "",
		     c->query ? c->query : "", c->port);
	if (n < 0 || n >= (int)sizeof(req))
		return -EINVAL;
	err = pl_send_all(c->fd, req, (size_t)n);
	if (err)
		return err;
	while (!hdr_end) {
		ssize_t r = recv(c->fd, c->in + c->in_len, 4096 - c->in_len, 0);
		char *e;

		if (r <= 0) {
			err = r < 0 ? -errno : -ECONNRESET;
			pl_client_set_err(c, err, "handshake: connection closed");
			return err;
		}
		c->in_len += (size_t)r;
		c->in[c->in_len] = '\0';
		e = strstr((char *)c->in, "\r\n\r\n");
		if (e)
			hdr_end = (size_t)(e - (char *)c->in) + 4;
		else if (c->in_len >= 4095)
			return -EPROTO;
	}
	if (strncmp((char *)c->in, "HTTP/1.1 101", 12) ||
	    !memmem(c->in, hdr_end, PL_WS_ACCEPT, strlen(PL_WS_ACCEPT))) {
		pl_client_set_err(c, -EPROTO, "handshake refused: %.40s", (char *)c->in);
		return -EPROTO;
	}
	/* bytes after the header are already frames */
	memmove(c->in, c->in + hdr_end, c->in_len - hdr_end);
	c->in_len -= hdr_end;
	return 0;
}

/*
 * Parses what c->in holds: data frame payloads go to the checker as they arrive (no
 * reassembly), control frames are handled whole. Returns 0 to go on, 1 after a close,
 * or -EPROTO.
 */
static int pl_client_parse(struct pl_client *c)
{
	size_t pos = 0;
	int ret = 0;

	while (pos < c->in_len) {
		const unsigned char *h = c->in + pos;
		size_t avail = c->in_len - pos, hlen = 2;
		uint64_t plen;
		int op;

		if (c->in_frame) {
			size_t take = c->frame_left < avail ? (size_t)c->frame_left : avail;

			pl_check_feed(&c->chk, (const char *)h, take);
			if (c->out && take)
				fwrite(h, 1, take, c->out);
			c->bytes += take;
			c->frame_left -= take;
			pos += take;
			if (!c->frame_left)
				c->in_frame = false;
			continue;
		}
		if (avail < 2)
			break;
		op = h[0] & 0x0f;
		if (h[1] & 0x80) {
			pl_client_set_err(c, -EPROTO, "masked frame from the server");
			return -EPROTO;
		}
		if (h[0] & 0x70) {
			pl_client_set_err(c, -EPROTO, "RSV bits set");
			return -EPROTO;
		}
		plen = h[1] & 0x7f;
		if (plen == 126)
			hlen = 4;
		else if (plen == 127)
			hlen = 10;
		if (avail < hlen)
			break;
		if (plen == 126) {
			plen = (uint64_t)h[2] << 8 | h[3];
		} else if (plen == 127) {
			int i;

			plen = 0;
			for (i = 0; i < 8; i++)
				plen = plen << 8 | h[2 + i];
		}
		if (op >= 8) {
			if (plen > 125 || !(h[0] & 0x80)) {
				pl_client_set_err(c, -EPROTO, "bad control frame");
				return -EPROTO;
			}
			if (avail < hlen + plen)
				break;
			if (op == LM_WSC_OP_CLOSE) {
				c->close_code = plen >= 2 ? (uint16_t)(h[hlen] << 8 | h[hlen + 1])
							  : 1005;
				pl_send_control(c->fd, LM_WSC_OP_CLOSE, h + hlen,
						plen >= 2 ? 2 : 0);
				ret = 1;
			} else if (op == LM_WSC_OP_PING) {
				pl_send_control(c->fd, LM_WSC_OP_PONG, h + hlen, (size_t)plen);
			}
			pos += hlen + (size_t)plen;
			if (ret)
				break;
			continue;
		}
		if ((op == LM_WSC_OP_CONT) != c->msg_open || (op != LM_WSC_OP_CONT &&
							       op != LM_WSC_OP_TEXT)) {
			pl_client_set_err(c, -EPROTO, "unexpected opcode %d", op);
			return -EPROTO;
		}
		c->msg_open = !(h[0] & 0x80);
		if (!c->msg_open)
			c->msgs++;
		c->in_frame = plen > 0;
		c->frame_left = plen;
		pos += hlen;
	}
	memmove(c->in, c->in + pos, c->in_len - pos);
	c->in_len -= pos;
	return ret;
}

static void pl_client_run_fast(struct pl_client *c)
{
	int err;

	c->in = malloc(PL_RX_BYTES + 1);
	if (!c->in) {
		pl_client_set_err(c, -ENOMEM, "no memory");
		return;
	}
	if (pl_client_connect(c))
		goto out;
	atomic_store_explicit(&c->connected, true, memory_order_release);
	err = pl_client_parse(c);
	while (!err && !atomic_load_explicit(&c->stop, memory_order_relaxed)) {
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		ssize_t n;

		pl_client_progress(c);
		n = recv(c->fd, c->in + c->in_len, PL_RX_BYTES - c->in_len, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			poll(&pfd, 1, 100);
			continue;
		}
		if (n <= 0) {
			pl_client_set_err(c, n ? -errno : -ECONNRESET, "connection closed without "
					  "a close frame");
			break;
		}
		c->in_len += (size_t)n;
		err = pl_client_parse(c);
	}
	pl_client_progress(c);
out:
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->in);
	c->in = NULL;
}

/* The same counting over the test suite's strict client (full UTF-8 and framing checks). */
static void pl_client_run_strict(struct pl_client *c)
{
	struct lm_wsc_opts o = { .port = c->port, .path = "/ws", .timeout_ms = 5000 };
	struct lm_wsc *w = NULL;
	char path[4200];
	int err, status = 0;

	if (c->query) {
		snprintf(path, sizeof(path), "/ws?%s", c->query);
		o.path = path;
	}
	err = lm_wsc_connect(&o, &w, &status);
	if (err) {
		pl_client_set_err(c, err, "lm_wsc_connect: %s (status %d)", strerror(-err), status);
		return;
	}
	atomic_store_explicit(&c->connected, true, memory_order_release);
	while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
		const char *msg;
		size_t len;

		pl_client_progress(c);
		err = lm_wsc_recv(w, 100, &msg, &len);
		if (err == -ETIMEDOUT)
			continue;
		if (err == LM_WSC_OP_TEXT) {
			pl_check_feed(&c->chk, msg, len);
			if (c->out)
				fwrite(msg, 1, len, c->out);
			c->msgs++;
			c->bytes += len;
			continue;
		}
		if (err == LM_WSC_OP_CLOSE) {
			c->close_code = lm_wsc_close_code(w);
			break;
		}
		pl_client_set_err(c, err < 0 ? err : -EPROTO, "lm_wsc_recv: %s",
				  lm_wsc_errmsg(w));
		break;
	}
	pl_client_progress(c);
	lm_wsc_close(w);
}

static void *pl_client_main(void *arg)
{
	struct pl_client *c = arg;
	char name[16];

	snprintf(name, sizeof(name), "pl-client%d", c->id);
	pthread_setname_np(pthread_self(), name);
	if (c->strict)
		pl_client_run_strict(c);
	else
		pl_client_run_fast(c);
	atomic_store_explicit(&c->ended, true, memory_order_release);
	return NULL;
}

/* ------------------------------------------------------------------------------------ */
/* Per-thread CPU time from /proc/self/task/ * /schedstat (ns on CPU)                     */

enum pl_cpu_group { PL_CPU_PRODUCER, PL_CPU_SER, PL_CPU_WS, PL_CPU_CLIENTS, PL_CPU_OTHER,
		    PL_CPU_GROUPS };

static void pl_cpu_sample(double out[PL_CPU_GROUPS])
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;

	memset(out, 0, sizeof(double) * PL_CPU_GROUPS);
	if (!d)
		return;
	while ((de = readdir(d))) {
		char path[300], comm[32] = "";
		unsigned long long run = 0;
		FILE *f;
		int g = PL_CPU_OTHER;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
		f = fopen(path, "re");
		if (f) {
			if (!fgets(comm, sizeof(comm), f))
				comm[0] = '\0';
			fclose(f);
		}
		snprintf(path, sizeof(path), "/proc/self/task/%s/schedstat", de->d_name);
		f = fopen(path, "re");
		if (f) {
			if (fscanf(f, "%llu", &run) != 1)
				run = 0;
			fclose(f);
		}
		if (!strncmp(comm, "pl-producer", 11))
			g = PL_CPU_PRODUCER;
		else if (!strncmp(comm, "lm-ser", 6))
			g = PL_CPU_SER;
		else if (!strncmp(comm, "lm-ws", 5) || !strncmp(comm, "pl-drain", 8))
			g = PL_CPU_WS;
		else if (!strncmp(comm, "pl-client", 9))
			g = PL_CPU_CLIENTS;
		out[g] += (double)run / 1e9;
	}
	closedir(d);
}

/* ------------------------------------------------------------------------------------ */
/* One end-to-end run                                                                     */

struct pl_scen {
	char name[32];
	bool json_only;	/* lm_json_event in a loop, no threads */
	bool ws;	/* real lm-ws server; else a drain thread returns slots */
	int clients;
	bool file;	/* file sink */
};

struct pl_cfg {
	uint64_t events;
	int runs;
	uint64_t rate;	/* events/s offered by the producer; 0 = as fast as possible */
	uint16_t port;
	const char *file_path;
	bool strict;
	bool keep_file;
};

struct pl_result {
	double ev_per_s;	/* N / elapsed */
	double deliv_per_s;	/* events a client received / elapsed, mean over clients */
	double produce_s;	/* producer's time to commit all events */
	double elapsed_s;	/* producer start until the last consumer saw the last event */
	double cpu_s;		/* whole process during the run */
	double cpu[PL_CPU_GROUPS];
	uint64_t cl_events[PL_MAX_CLIENTS], cl_lost[PL_MAX_CLIENTS];
	uint64_t cl_notices[PL_MAX_CLIENTS], cl_order_err[PL_MAX_CLIENTS];
	uint64_t msgs;		/* messages received, summed over clients */
	uint64_t lost_total, order_errors, bad_lines;
	int incomplete;		/* clients that never reached the last seq */
	uint64_t ws_published, ws_delivered, ws_dropped, ws_slow_disc;
	uint64_t serialized, ser_slot_waits, producer_waits;
	uint64_t sink_delivered, sink_dropped, sink_bytes, file_bytes;
	bool file_ok;
	double bytes_per_event;
	double json_ns;		/* json_only: ns per event */
};

struct pl_run {
	const struct pl_cfg *cfg;
	const struct pl_scen *sc;
	struct lm_pipeline *pipe;	/* rings, pool, sink, lm-ser and lm-ws; no reader */
	const struct lm_stats *stats;
	/* the pipeline's, for the producer and the drain thread */
	struct lm_ev_ring *ev_ring;
	struct lm_idx_ring *txt_ring, *free_ring;
	struct lm_txt_pool *pool;
	int wake_fd;
	int drain_fd;		/* eventfd: publish callback -> drain thread */
	pthread_t producer, drain;
	bool drain_started;
	_Atomic bool drain_stop;
	_Atomic uint64_t drain_last_seq;
	_Atomic uint64_t drain_done_ns;
	_Atomic uint64_t produce_end_ns;
	_Atomic bool producer_exit;	/* main -> producer: CPU time sampled, exit */
	uint64_t producer_waits;
	struct pl_client *clients;
};

static void pl_producer_wake(struct pl_run *r)
{
	uint64_t one = 1;

	/* a full eventfd counter (EAGAIN) still reads as readable */
	if (write(r->wake_fd, &one, sizeof(one)) < 0)
		return;
}

/* Plays lm-reader: seq 1..N into ev_ring, waiting while full, waking every 256 records. */
static void *pl_producer_main(void *arg)
{
	struct pl_run *r = arg;
	uint64_t n = r->cfg->events, seq, ts = pl_boot_ns(), start = pl_now_ns();
	uint32_t batch = 0;

	pthread_setname_np(pthread_self(), "pl-producer");
	for (seq = 1; seq <= n; seq++) {
		const struct pl_tpl *t = &pl_tpl[(seq - 1) % PL_TPL_CNT];
		long backoff_ns = 20000;
		bool waited = false;
		struct lm_common *e;
		struct lm_rec *slot;

		while (!(slot = lm_ring_ev_reserve(r->ev_ring, t->size))) {
			if (!waited) {
				r->producer_waits++;
				waited = true;
			}
			pl_producer_wake(r);
			pl_sleep_ns((uint64_t)backoff_ns);
			if (backoff_ns < 1000000)
				backoff_ns *= 2;
		}
		slot->seq = seq;
		slot->kernel_lost = 0;	/* the reader's count of kernel drops before this event */
		slot->cpu = (uint32_t)((seq - 1) / 2 % 2);
		e = lm_rec_data(slot);
		memcpy(e, t->b, t->size);
		e->ts_ns = ts + seq * 1000;
		e->pid += (uint32_t)((seq - 1) / PL_TPL_CNT * (PL_TPL_CNT / 2)) % 3000000;
		e->tid = e->pid;
		lm_ring_ev_commit(r->ev_ring);
		if (++batch >= PL_WAKE_EVERY) {
			batch = 0;
			pl_producer_wake(r);
			if (r->cfg->rate) {
				uint64_t due = start + (uint64_t)((double)seq * 1e9 / (double)r->cfg->rate);
				uint64_t now = pl_now_ns();

				if (due > now)
					pl_sleep_ns(due - now);
			}
		}
	}
	pl_producer_wake(r);
	atomic_store_explicit(&r->produce_end_ns, pl_now_ns(), memory_order_release);
	/* stay alive (idle) until main has read this thread's CPU time */
	while (!atomic_load_explicit(&r->producer_exit, memory_order_acquire))
		pl_sleep_ns(1000000);
	return NULL;
}

/* Serializer without ws: returns each published slot to free_ring, as ws would. */
static void *pl_drain_main(void *arg)
{
	struct pl_run *r = arg;

	pthread_setname_np(pthread_self(), "pl-drain");
	while (!atomic_load_explicit(&r->drain_stop, memory_order_acquire)) {
		struct pollfd pfd = { .fd = r->drain_fd, .events = POLLIN };
		uint64_t cnt, last = 0;
		uint32_t idx;
		bool any = false;

		if (poll(&pfd, 1, 100) > 0 && read(r->drain_fd, &cnt, sizeof(cnt)) < 0)
			continue;
		while (lm_ring_idx_pop(r->txt_ring, &idx)) {
			const struct lm_txt_slot *s = lm_ring_pool_slot(r->pool, idx);

			last = s->last_seq;
			any = true;
			lm_ring_idx_push(r->free_ring, idx);
		}
		if (any) {
			atomic_store_explicit(&r->drain_last_seq, last, memory_order_relaxed);
			if (last >= r->cfg->events &&
			    !atomic_load_explicit(&r->drain_done_ns, memory_order_relaxed))
				atomic_store_explicit(&r->drain_done_ns, pl_now_ns(),
						      memory_order_release);
		}
	}
	return NULL;
}

static void pl_publish_drain(void *ctx)
{
	struct pl_run *r = ctx;
	uint64_t one = 1;

	if (write(r->drain_fd, &one, sizeof(one)) < 0)
		return;
}

/* Scans a JSON Lines file with the line checker. Returns 0 or -errno. */
static int pl_scan_file(const char *path, struct pl_check *k, uint64_t *size)
{
	struct stat st;
	void *m;
	int fd = open(path, O_RDONLY | O_CLOEXEC), err;

	*size = 0;
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		err = -errno;
		close(fd);
		return err;
	}
	*size = (uint64_t)st.st_size;
	if (!st.st_size) {
		close(fd);
		return 0;
	}
	m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	err = m == MAP_FAILED ? -errno : 0;
	close(fd);
	if (err)
		return err;
	madvise(m, (size_t)st.st_size, MADV_SEQUENTIAL);
	pl_check_feed(k, m, (size_t)st.st_size);
	munmap(m, (size_t)st.st_size);
	return 0;
}

/* Reads the file the sink wrote and checks it holds seq 1..N in order. */
static bool pl_verify_file(const char *path, uint64_t n, uint64_t *size)
{
	struct pl_check k = { 0 };
	bool ok;

	if (pl_scan_file(path, &k, size))
		return false;
	ok = k.events + k.lost == n && !k.order_errors && !k.bad_lines && k.last_seq == n &&
	     k.first_seq == 1;
	if (!ok)
		fprintf(stderr, "pipeline: file %s: %" PRIu64 " events, %" PRIu64 " lost, %" PRIu64
			" order errors, %" PRIu64 " bad lines, last seq %" PRIu64 "\n", path,
			k.events, k.lost, k.order_errors, k.bad_lines, k.last_seq);
	return ok;
}

static double pl_rusage_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static double pl_json_only(const struct pl_cfg *cfg, uint64_t *bytes)
{
	uint32_t slot_bytes = lm_pipeline_slot_bytes(LM_ARGS_DEFAULT);
	char *buf = malloc(slot_bytes), exe[LM_PATH_MAX], cwd[LM_PATH_MAX];
	uint64_t i, total = 0, unix0 = (uint64_t)time(NULL) * 1000000000ULL, t0, t1;
	struct lm_rec_view v;
	size_t len = 0;

	if (!buf)
		return -1;
	t0 = pl_now_ns();
	for (i = 1; i <= cfg->events; i++) {
		const struct pl_tpl *t = &pl_tpl[(i - 1) % PL_TPL_CNT];
		struct lm_json_ev ev = { .v = &v, .seq = i, .unix_ns = unix0 + i * 1000 };
		int w;

		/* what lm-ser does per event: decode, put the walked paths in order, write */
		if (lm_rec_decode(t->b, t->size, &v, NULL))
			break;
		if (v.exec) {
			ev.exe_len = lm_rec_path(&v.exe, false, exe, sizeof(exe));
			ev.exe = exe;
			ev.cwd_len = lm_rec_path(&v.cwd, false, cwd, sizeof(cwd));
			ev.cwd = cwd;
		}
		w = lm_json_event(buf + len, slot_bytes - len, &ev);
		if (w < 0) {
			/* slot full: start a fresh one, as lm-ser does */
			len = 0;
			w = lm_json_event(buf, slot_bytes, &ev);
			if (w < 0)
				break;
		}
		len += (size_t)w;
		total += (uint64_t)w;
	}
	t1 = pl_now_ns();
	free(buf);
	*bytes = total;
	return (double)(t1 - t0) / (double)cfg->events;
}

static int pl_run_once(const struct pl_cfg *cfg, const struct pl_scen *sc, int run_no,
		       struct pl_result *res)
{
	struct pl_run r = { .cfg = cfg, .sc = sc, .wake_fd = -1, .drain_fd = -1 };
	double cpu0[PL_CPU_GROUPS], cpu1[PL_CPU_GROUPS], rus0;
	uint64_t t0, t_end = 0, t_ws = 0, t_file = 0, deadline;
	bool producer_started = false;
	int i, err = 0, g;

	memset(res, 0, sizeof(*res));
	if (sc->json_only) {
		uint64_t bytes = 0;

		res->json_ns = pl_json_only(cfg, &bytes);
		res->ev_per_s = 1e9 / res->json_ns;
		res->bytes_per_event = (double)bytes / (double)cfg->events;
		return res->json_ns < 0 ? -ENOMEM : 0;
	}
	r.drain_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r.drain_fd < 0)
		return -errno;
	{
		struct lm_pipeline_opts po = {
			.max_args_bytes = LM_ARGS_DEFAULT,
			.output = sc->file ? cfg->file_path : NULL,
			.host = sc->ws ? "127.0.0.1" : NULL,
			.port = (uint16_t)(cfg->port + run_no % 64),
			.ws_slow_ms = PL_WS_SLOW_MS,
			.version = "bench",
			.max_clients = PL_WS_MAX_CLIENTS,
			.max_header_bytes = PL_WS_MAX_HEADER_BYTES,
			.handshake_timeout_s = PL_WS_HANDSHAKE_TIMEOUT_S,
			.idle_timeout_s = PL_WS_IDLE_TIMEOUT_S,
			/* without ws a drain thread returns the slots */
			.publish = pl_publish_drain,
			.publish_ctx = &r,
			.start_time_s = (double)time(NULL),
		};
		enum lm_pipeline_part part;

		if (sc->file)
			unlink(cfg->file_path);
		err = lm_pipeline_open(&po, &r.pipe, &part);
		if (err) {
			if (part == LM_PIPELINE_PART_FILE)
				fprintf(stderr, "pipeline: cannot open file sink %s: %s\n",
					cfg->file_path, strerror(-err));
			else if (part == LM_PIPELINE_PART_WS)
				fprintf(stderr, "pipeline: cannot listen on 127.0.0.1:%u: %s\n",
					po.port, strerror(-err));
			else
				fprintf(stderr, "pipeline: cannot build the pipeline (part %d): %s\n",
					(int)part, strerror(-err));
			goto out;
		}
	}
	/* this process plays lm-reader, and lm-ws too when there is no server */
	r.stats = lm_pipeline_stats(r.pipe);
	r.ev_ring = lm_pipeline_ev_ring(r.pipe);
	r.wake_fd = lm_pipeline_wake(r.pipe);
	r.txt_ring = lm_pipeline_txt_ring(r.pipe);
	r.free_ring = lm_pipeline_free_ring(r.pipe);
	r.pool = lm_pipeline_pool(r.pipe);
	lm_pipeline_set_ready(r.pipe, true);
	if (!sc->ws) {
		err = -pthread_create(&r.drain, NULL, pl_drain_main, &r);
		r.drain_started = !err;
	}
	if (!err)
		err = lm_pipeline_start(r.pipe);
	if (err)
		goto out_clients;

	r.clients = calloc(sc->clients ? (size_t)sc->clients : 1, sizeof(*r.clients));
	if (!r.clients) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < sc->clients; i++) {
		struct pl_client *c = &r.clients[i];

		c->id = i;
		c->port = (uint16_t)(cfg->port + run_no % 64);
		c->strict = cfg->strict;
		c->fd = -1;
		err = -pthread_create(&c->thread, NULL, pl_client_main, c);
		if (err)
			goto out_clients;
		c->started = true;
	}
	/* every client must be in the broadcast before the first event (cursor = newest) */
	deadline = pl_now_ns() + 5000000000ULL;
	while (lm_stats_get(&r.stats->ws_clients) < (uint64_t)sc->clients) {
		if (pl_now_ns() > deadline) {
			fprintf(stderr, "pipeline: only %" PRIu64 " of %d clients connected\n",
				lm_stats_get(&r.stats->ws_clients), sc->clients);
			err = -ETIMEDOUT;
			goto out_clients;
		}
		pl_sleep_ns(1000000);
	}
	for (i = 0; i < sc->clients; i++)
		atomic_store_explicit(&r.clients[i].target_seq, cfg->events, memory_order_relaxed);

	pl_cpu_sample(cpu0);
	rus0 = pl_rusage_cpu_s();
	t0 = pl_now_ns();
	err = -pthread_create(&r.producer, NULL, pl_producer_main, &r);
	if (err)
		goto out_clients;
	producer_started = true;
	/*
	 * The run ends when every consumer has the last event (or was told it lost it).
	 * Clients and the drain thread stamp their own time; the ws-only and file conditions
	 * are stamped here when first seen, at 0.2 ms resolution.
	 */
	deadline = t0 + 30000000000ULL + cfg->events * 20000ULL;
	for (;;) {
		bool done = true;
		uint64_t t, now = pl_now_ns();

		if (!sc->ws) {
			t = atomic_load_explicit(&r.drain_done_ns, memory_order_acquire);
			done &= t != 0;
			t_end = t > t_end ? t : t_end;
		} else if (!sc->clients && !t_ws) {
			if (lm_stats_get(&r.stats->ws_published) >= cfg->events)
				t_ws = now;
			done &= t_ws != 0;
		}
		for (i = 0; i < sc->clients; i++) {
			t = atomic_load_explicit(&r.clients[i].done_ns, memory_order_acquire);
			if (!t && !atomic_load_explicit(&r.clients[i].ended, memory_order_acquire))
				done = false;
			t_end = t > t_end ? t : t_end;
		}
		if (sc->file && !t_file) {
			if (lm_stats_get(&r.stats->sink[LM_STATS_SINK_FILE].delivered) +
				    lm_stats_get(&r.stats->sink[LM_STATS_SINK_FILE].dropped) >=
			    cfg->events)
				t_file = now;
			done &= t_file != 0;
		}
		if (done)
			break;
		if (now > deadline) {
			fprintf(stderr, "pipeline: run did not finish before its deadline\n");
			break;
		}
		pl_sleep_ns(200000);
	}
	t_end = t_ws > t_end ? t_ws : t_end;
	t_end = t_file > t_end ? t_file : t_end;
	pl_cpu_sample(cpu1);
	res->cpu_s = pl_rusage_cpu_s() - rus0;
	for (g = 0; g < PL_CPU_GROUPS; g++)
		res->cpu[g] = cpu1[g] - cpu0[g];
	atomic_store_explicit(&r.producer_exit, true, memory_order_release);
	pthread_join(r.producer, NULL);
	producer_started = false;
	res->produce_s = (double)(atomic_load(&r.produce_end_ns) - t0) / 1e9;
	if (!t_end || t_end < t0)
		t_end = pl_now_ns();
	res->elapsed_s = (double)(t_end - t0) / 1e9;
	res->ev_per_s = (double)cfg->events / res->elapsed_s;

out_clients:
	if (producer_started) {
		atomic_store_explicit(&r.producer_exit, true, memory_order_release);
		pthread_join(r.producer, NULL);
	}
	/* pipeline order (core/pipeline.c): no reader here, so lm-ser, then lm-ws */
	if (r.pipe) {
		int e = lm_pipeline_stop(r.pipe);

		if (e && !err)
			err = e;
	}
	if (r.drain_started) {
		atomic_store_explicit(&r.drain_stop, true, memory_order_release);
		pthread_join(r.drain, NULL);
		r.drain_started = false;
	}
	for (i = 0; i < sc->clients && r.clients; i++) {
		struct pl_client *c = &r.clients[i];

		if (!c->started)
			continue;
		atomic_store_explicit(&c->stop, true, memory_order_relaxed);
		pthread_join(c->thread, NULL);
		res->cl_events[i] = c->chk.events;
		res->cl_lost[i] = c->chk.lost;
		res->cl_notices[i] = c->chk.lost_notices;
		res->cl_order_err[i] = c->chk.order_errors;
		res->lost_total += c->chk.lost;
		res->msgs += c->msgs;
		res->order_errors += c->chk.order_errors;
		res->bad_lines += c->chk.bad_lines;
		if (c->chk.last_seq < cfg->events)
			res->incomplete++;
		if (res->elapsed_s > 0)
			res->deliv_per_s += (double)c->chk.events / res->elapsed_s / sc->clients;
		if (c->err || c->close_code)
			fprintf(stderr, "pipeline: client %d: %s (close code %u)\n", i,
				c->err ? c->errmsg : "closed by server", c->close_code);
	}
	res->ws_published = lm_stats_get(&r.stats->ws_published);
	res->ws_delivered = lm_stats_get(&r.stats->ws_delivered);
	res->ws_dropped = lm_stats_get(&r.stats->ws_dropped);
	res->ws_slow_disc = lm_stats_get(&r.stats->ws_slow_disconnects);
	res->serialized = lm_stats_get(&r.stats->serialized);
	res->ser_slot_waits = lm_stats_get(&r.stats->ser_slot_waits);
	res->producer_waits = r.producer_waits;
	res->sink_delivered = lm_stats_get(&r.stats->sink[LM_STATS_SINK_FILE].delivered);
	res->sink_dropped = lm_stats_get(&r.stats->sink[LM_STATS_SINK_FILE].dropped);
	res->sink_bytes = lm_stats_get(&r.stats->sink[LM_STATS_SINK_FILE].bytes);
out:
	if (r.drain_started) {
		atomic_store_explicit(&r.drain_stop, true, memory_order_release);
		pthread_join(r.drain, NULL);
	}
	lm_pipeline_close(r.pipe);
	if (sc->file && !err) {
		res->file_ok = pl_verify_file(cfg->file_path, cfg->events, &res->file_bytes);
		if (!cfg->keep_file)
			unlink(cfg->file_path);
	}
	free(r.clients);
	if (r.drain_fd >= 0)
		close(r.drain_fd);
	return err;
}

/* ------------------------------------------------------------------------------------ */
/* Reporting                                                                              */

static int pl_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pl_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), pl_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void pl_report(const struct pl_cfg *cfg, const struct pl_scen *sc, struct pl_result *res,
		      int runs)
{
	double v[PL_MAX_RUNS], cpu[PL_CPU_GROUPS], mn, mx, med, deliv;
	char offered[32];
	uint64_t lost_max = 0, lost_sum = 0, order = 0, incomplete = 0, disc = 0, sdrop = 0;
	int i, g, j;
	bool file_ok = true;

	for (i = 0; i < runs; i++)
		v[i] = sc->json_only ? res[i].json_ns : res[i].ev_per_s;
	mn = v[0];
	mx = v[0];
	for (i = 1; i < runs; i++) {
		mn = v[i] < mn ? v[i] : mn;
		mx = v[i] > mx ? v[i] : mx;
	}
	med = pl_median(v, runs);
	if (sc->json_only) {
		printf("| lm_json_event alone | %.1f | %.1f-%.1f | %.2f | %.0f |\n\n", med, mn, mx,
		       1e3 / med, res[0].bytes_per_event);
		return;
	}
	for (g = 0; g < PL_CPU_GROUPS; g++) {
		for (i = 0; i < runs; i++)
			v[i] = res[i].cpu[g] / ((double)cfg->events / 1e6);
		cpu[g] = pl_median(v, runs);
	}
	for (i = 0; i < runs; i++) {
		for (j = 0; j < sc->clients; j++)
			if (res[i].cl_lost[j] > lost_max)
				lost_max = res[i].cl_lost[j];
		lost_sum += res[i].lost_total;
		order += res[i].order_errors + res[i].bad_lines;
		incomplete += (uint64_t)res[i].incomplete;
		disc += res[i].ws_slow_disc;
		sdrop += res[i].sink_dropped;
		if (sc->file && !res[i].file_ok)
			file_ok = false;
	}
	for (i = 0; i < runs; i++)
		v[i] = res[i].deliv_per_s;
	deliv = sc->clients ? pl_median(v, runs) : 0;
	if (cfg->rate)
		snprintf(offered, sizeof(offered), "%.0fk", (double)cfg->rate / 1e3);
	printf("| %-10s | %s | %.0fk | %.0fk-%.0fk | ", sc->name, cfg->rate ? offered : "max",
	       med / 1e3, mn / 1e3, mx / 1e3);
	if (sc->clients)
		printf("%.0fk | %" PRIu64 " / %" PRIu64 " | %" PRIu64 "%s | ", deliv / 1e3, lost_max,
		       lost_sum, order, incomplete ? " (incomplete)" : "");
	else
		printf("- | - | - | ");
	printf("%s | ", sc->file ? (file_ok && !sdrop ? "ok" : "LOSS/BAD") : "-");
	for (g = 0; g < PL_CPU_GROUPS - 1; g++)
		printf("%s%.2f", g ? "/" : "", cpu[g]);
	printf(" |\n");
	for (i = 0; i < runs; i++) {
		fprintf(stderr, "  %s run %d: %.0f ev/s (elapsed %.3f s, producer %.3f s), cpu %.2f s"
			" [prod %.2f ser %.2f ws %.2f cli %.2f], published %" PRIu64 " delivered %"
			PRIu64 " dropped %" PRIu64 ", ser slot waits %" PRIu64 ", producer waits %"
			PRIu64, sc->name, i, res[i].ev_per_s, res[i].elapsed_s, res[i].produce_s,
			res[i].cpu_s, res[i].cpu[0], res[i].cpu[1], res[i].cpu[2], res[i].cpu[3],
			res[i].ws_published, res[i].ws_delivered, res[i].ws_dropped,
			res[i].ser_slot_waits, res[i].producer_waits);
		if (sc->file)
			fprintf(stderr, ", file delivered %" PRIu64 " dropped %" PRIu64 " bytes %"
				PRIu64 "/%" PRIu64 " %s", res[i].sink_delivered, res[i].sink_dropped,
				res[i].sink_bytes, res[i].file_bytes, res[i].file_ok ? "ok" : "BAD");
		if (res[i].msgs)
			fprintf(stderr, ", %.1f events per message", (double)(res[i].ws_delivered) /
				(double)res[i].msgs);
		for (j = 0; j < sc->clients; j++)
			fprintf(stderr, "%s c%d %" PRIu64 "+%" PRIu64 "L/%" PRIu64 "n%s", j ? "" : ";",
				j, res[i].cl_events[j], res[i].cl_lost[j], res[i].cl_notices[j],
				res[i].cl_order_err[j] ? " ORDER" : "");
		fprintf(stderr, "\n");
	}
	if (disc)
		fprintf(stderr, "  %s: %" PRIu64 " slow-client disconnects\n", sc->name, disc);
}

/* ------------------------------------------------------------------------------------ */
/* Client mode (bench/synth.sh): one client against a running lifemon                     */

static volatile sig_atomic_t pl_signal;

static void pl_on_signal(int sig)
{
	pl_signal = sig;
}

static void pl_write_stat(const char *path, struct pl_client *c, bool final)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "we");
	if (!f)
		return;
	fprintf(f, "events %" PRIu64 "\nlost %" PRIu64 "\nfirst_seq %" PRIu64 "\nlast_seq %" PRIu64
		"\nfinal %d\n", atomic_load_explicit(&c->pub_events, memory_order_relaxed),
		atomic_load_explicit(&c->pub_lost, memory_order_relaxed),
		atomic_load_explicit(&c->pub_first_seq, memory_order_relaxed),
		atomic_load_explicit(&c->pub_last_seq, memory_order_relaxed), final);
	if (final)
		fprintf(f, "lost_notices %" PRIu64 "\norder_errors %" PRIu64 "\nbad_lines %" PRIu64
			"\nkernel_lost %" PRIu64 "\nmsgs %" PRIu64 "\nbytes %" PRIu64
			"\nclose_code %u\nerror %s\n",
			c->chk.lost_notices, c->chk.order_errors, c->chk.bad_lines,
			c->chk.kernel_lost, c->msgs,
			c->bytes, c->close_code, c->err ? c->errmsg : "none");
	fclose(f);
	rename(tmp, path);
}

static int pl_client_mode(uint16_t port, const char *query, const char *out_path,
			  const char *stat_path, bool strict)
{
	struct pl_client c = { .port = port, .query = query, .strict = strict, .fd = -1 };
	struct sigaction sa = { .sa_handler = pl_on_signal };
	char *obuf = NULL;

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (out_path) {
		c.out = fopen(out_path, "we");
		obuf = malloc(1 << 20);
		if (!c.out || !obuf) {
			fprintf(stderr, "pipeline: cannot open %s: %s\n", out_path, strerror(errno));
			return 1;
		}
		setvbuf(c.out, obuf, _IOFBF, 1 << 20);
	}
	c.chk.filtered = query != NULL;
	if (pthread_create(&c.thread, NULL, pl_client_main, &c))
		return 1;
	while (!pl_signal && !atomic_load_explicit(&c.ended, memory_order_acquire)) {
		if (stat_path)
			pl_write_stat(stat_path, &c, false);
		pl_sleep_ns(100000000);
	}
	atomic_store_explicit(&c.stop, true, memory_order_relaxed);
	pthread_join(c.thread, NULL);
	if (c.out)
		fclose(c.out);
	free(obuf);
	if (stat_path)
		pl_write_stat(stat_path, &c, true);
	printf("events %" PRIu64 " lost %" PRIu64 " lost_notices %" PRIu64 " kernel_lost %" PRIu64
	       " order_errors %" PRIu64 " bad_lines %" PRIu64 " last_seq %" PRIu64 " msgs %" PRIu64
	       " bytes %" PRIu64 " close_code %u error \"%s\"\n", c.chk.events, c.chk.lost,
	       c.chk.lost_notices, c.chk.kernel_lost, c.chk.order_errors, c.chk.bad_lines,
	       c.chk.last_seq, c.msgs, c.bytes, c.close_code, c.err ? c.errmsg : "none");
	return c.err && !c.connected ? 1 : 0;
}

/* ------------------------------------------------------------------------------------ */

/* Other work on the host skews every number here; print what it was. */
static void pl_print_loadavg(const char *when)
{
	char buf[128] = "";
	FILE *f = fopen("/proc/loadavg", "re");

	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = '\0';
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = '\0';
	printf("\n%s (1/5/15 min, runnable/total, last pid): %s\n\n", when, buf);
}

static void pl_usage(FILE *f)
{
	fprintf(f,
		"usage: pipeline [--events N] [--runs R] [--clients K] [--rate R,...]\n"
		"                [--scenarios LIST] [--file PATH] [--keep-file] [--port P] [--strict]\n"
		"                [--smoke]\n"
		"       pipeline --connect PORT [--query Q] [--out FILE] [--stat FILE] [--strict]\n"
		"       pipeline --check-file FILE\n"
		"\n"
		"  --events N       events per run (default 5000000)\n"
		"  --runs R         runs per scenario; the table shows the median (default 5)\n"
		"  --clients K      run only the WebSocket scenario with K clients (ws:K)\n"
		"  --rate R[,R...]  producer offers R events/s, paced every 256 events; 0 = as fast\n"
		"                   as it can (default 0); each rate runs every scenario\n"
		"  --scenarios L    comma-separated from json, ser, ser+file, ws:K, ws:K+file\n"
		"                   (default json,ser,ser+file,ws:0,ws:1,ws:8,ws:1+file)\n"
		"  --file PATH      file sink path (default /tmp/lifemon-pipeline.jsonl)\n"
		"  --port P         first listening port (default 18300; +run number)\n"
		"  --strict         clients use tests/ws_client.c (strict RFC 6455 + UTF-8 checks)\n"
		"  --smoke          a second, for make test: --events 20000 --runs 1, every\n"
		"                   scenario; exits 1 if a run fails\n"
		"  --connect PORT   client mode: read ws://127.0.0.1:PORT/ws until SIGINT/SIGTERM,\n"
		"                   write counts to --stat FILE every 100 ms, the stream to --out;\n"
		"                   --query Q asks for /ws?Q (a filter: seq gaps are no error)\n"
		"  --check-file F   check that JSON Lines file F has contiguous seqs (LOST-aware)\n");
}

static int pl_parse_scen(const char *name, struct pl_scen *sc)
{
	memset(sc, 0, sizeof(*sc));
	snprintf(sc->name, sizeof(sc->name), "%s", name);
	if (!strcmp(name, "json")) {
		sc->json_only = true;
		return 0;
	}
	if (!strcmp(name, "ser") || !strcmp(name, "ser+file")) {
		sc->file = !strcmp(name, "ser+file");
		return 0;
	}
	if (!strncmp(name, "ws:", 3)) {
		char *end;
		long k = strtol(name + 3, &end, 10);

		if (end == name + 3 || k < 0 || k > PL_MAX_CLIENTS)
			return -EINVAL;
		if (*end && strcmp(end, "+file"))
			return -EINVAL;
		sc->ws = true;
		sc->clients = (int)k;
		sc->file = *end != '\0';
		return 0;
	}
	return -EINVAL;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "events", required_argument, NULL, 'n' },
		{ "runs", required_argument, NULL, 'r' },
		{ "clients", required_argument, NULL, 'k' },
		{ "rate", required_argument, NULL, 'R' },
		{ "scenarios", required_argument, NULL, 's' },
		{ "file", required_argument, NULL, 'f' },
		{ "keep-file", no_argument, NULL, 'K' },
		{ "port", required_argument, NULL, 'p' },
		{ "strict", no_argument, NULL, 'S' },
		{ "connect", required_argument, NULL, 'c' },
		{ "out", required_argument, NULL, 'o' },
		{ "stat", required_argument, NULL, 't' },
		{ "check-file", required_argument, NULL, 'C' },
		{ "query", required_argument, NULL, 'q' },
		{ "smoke", no_argument, NULL, 'Z' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct pl_cfg cfg = { .events = 5000000, .runs = 5, .port = 18300,
			      .file_path = "/tmp/lifemon-pipeline.jsonl" };
	struct pl_scen scen[PL_MAX_SCEN];
	char scen_list[256] = "json,ser,ser+file,ws:0,ws:1,ws:8,ws:1+file";
	const char *out_path = NULL, *stat_path = NULL, *check_path = NULL, *query = NULL;
	struct pl_result *res;
	int nscen = 0, opt, i, run_no = 0, connect_port = 0, failed = 0;
	bool header = false;
	uint64_t rates[32] = { 0 };
	int nrates = 1, ri;
	char *tok, *save;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			cfg.events = strtoull(optarg, NULL, 10);
			break;
		case 'r':
			cfg.runs = atoi(optarg);
			break;
		case 'k':
			snprintf(scen_list, sizeof(scen_list), "ws:%d", atoi(optarg));
			break;
		case 'R':
			for (nrates = 0, tok = strtok_r(optarg, ",", &save); tok && nrates < 32;
			     tok = strtok_r(NULL, ",", &save))
				rates[nrates++] = strtoull(tok, NULL, 10);
			if (!nrates)
				nrates = 1;
			break;
		case 's':
			snprintf(scen_list, sizeof(scen_list), "%s", optarg);
			break;
		case 'f':
			cfg.file_path = optarg;
			break;
		case 'K':
			cfg.keep_file = true;
			break;
		case 'p':
			cfg.port = (uint16_t)atoi(optarg);
			break;
		case 'S':
			cfg.strict = true;
			break;
		case 'c':
			connect_port = atoi(optarg);
			break;
		case 'o':
			out_path = optarg;
			break;
		case 't':
			stat_path = optarg;
			break;
		case 'C':
			check_path = optarg;
			break;
		case 'q':
			query = optarg;
			break;
		case 'Z':
			cfg.events = 20000;
			cfg.runs = 1;
			break;
		case 'h':
			pl_usage(stdout);
			return 0;
		default:
			pl_usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		pl_usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	lm_log_set_level(LM_LOG_WARN);
	if (check_path) {
		struct pl_check k = { 0 };
		uint64_t size;
		int err = pl_scan_file(check_path, &k, &size);

		if (err) {
			fprintf(stderr, "pipeline: cannot read %s: %s\n", check_path, strerror(-err));
			return 1;
		}
		printf("events %" PRIu64 " lost %" PRIu64 " lost_notices %" PRIu64 " kernel_lost %"
		       PRIu64 " order_errors %" PRIu64 " bad_lines %" PRIu64 " first_seq %" PRIu64
		       " last_seq %" PRIu64 " bytes %" PRIu64 "\n", k.events, k.lost, k.lost_notices,
		       k.kernel_lost, k.order_errors, k.bad_lines, k.first_seq, k.last_seq, size);
		return k.order_errors || k.bad_lines ||
		       (k.last_seq && k.events + k.lost != k.last_seq - k.first_seq + 1);
	}
	if (connect_port > 0 && connect_port < 65536)
		return pl_client_mode((uint16_t)connect_port, query, out_path, stat_path,
				      cfg.strict);
	if (!cfg.events || cfg.runs < 1 || cfg.runs > PL_MAX_RUNS) {
		fprintf(stderr, "pipeline: need --events >= 1 and --runs 1..%d\n", PL_MAX_RUNS);
		return 2;
	}
	for (tok = strtok_r(scen_list, ",", &save); tok && nscen < PL_MAX_SCEN;
	     tok = strtok_r(NULL, ",", &save)) {
		if (pl_parse_scen(tok, &scen[nscen])) {
			fprintf(stderr, "pipeline: bad scenario '%s'\n", tok);
			return 2;
		}
		nscen++;
	}
	res = calloc((size_t)cfg.runs, sizeof(*res));
	if (!res)
		return 1;
	pl_tpl_init();
	printf("pipeline: %" PRIu64 " events per run, %d runs per row, clients: %s\n",
	       cfg.events, cfg.runs, cfg.strict ? "strict (tests/ws_client.c)" : "fast reader");
	pl_print_loadavg("load average at the start");
	for (ri = 0, i = 0; ri < nrates; i += 1) {
		int k, done = 0;

		if (i == nscen) {
			i = -1;
			ri++;
			continue;
		}
		cfg.rate = rates[ri];
		if (scen[i].json_only && ri)
			continue;
		if (scen[i].json_only) {
			printf("| serializer | ns/event median | min-max | M events/s per core "
			       "| bytes/event |\n|---|---|---|---|---|\n");
		} else if (!header) {
			printf("| scenario | offered ev/s | end-to-end ev/s (median) | min-max | "
			       "received ev/s per client | lost per client: max / sum over runs | "
			       "order errors | file | CPU s per 1M events: producer/lm-ser/"
			       "lm-ws(or drain)/clients |\n|---|---|---|---|---|---|---|---|---|\n");
			header = true;
		}
		fflush(stdout);
		for (k = 0; k < cfg.runs; k++) {
			int err = pl_run_once(&cfg, &scen[i], run_no++, &res[done]);

			if (err) {
				fprintf(stderr, "pipeline: %s run %d failed: %s\n", scen[i].name, k,
					strerror(-err));
				failed = 1;
				continue;
			}
			done++;
		}
		if (done)
			pl_report(&cfg, &scen[i], res, done);
		fflush(stdout);
	}
	pl_print_loadavg("load average at the end");
	free(res);
	return failed;
}
