// SPDX-License-Identifier: GPL-2.0
/*
 * Integration test, hostile network input: garbage bytes, huge headers, traversal paths, TLS
 * on the plain port, abusive WebSocket frames, idle and half-open floods, foreign Origins and
 * bad tokens, foreign or missing Host headers (DNS rebinding) and malformed or mixed-case
 * handshakes. lifemon must stay up and under 64 MiB RSS, count each refusal under exactly the
 * right limit (every phase checks the exact change of every lifemon_limit_hits_total
 * series), answer each bad request with an HTTP error, close each bad client and keep
 * serving good ones. Root only; the main thread drives everything and a
 * sampler thread only reads /proc/<pid>/status.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/it_util.h"
#include "tests/ws_client.h"

#define IT_PORT 18098	    /* instance A: small limits, no token */
#define IT_PORT_TOKEN 18099 /* instance B: --token-file with an alphanumeric token */
#define IT_PORT_B64 18100   /* instance C: --token-file with a base64-alphabet token */
#define IT_PORT_STR "18098"
#define MAX_CLIENTS 8
#define HS_TIMEOUT_S 2
#define IDLE_TIMEOUT_S 3
#define ALLOWED_EXTRA "https://dash.example.com"
#define ALLOWED_PORT80 "http://dash.example:80" /* --allow-origin with the default port */
#define ALLOWED_HOST "dash.example"		 /* --allow-host without a port */
#define ALLOWED_HOST_PORT "proxy.example:8443"	 /* --allow-host with one */
#define GOOD_HOST "Host: 127.0.0.1:" IT_PORT_STR "\r\n"
/* lws checks its timeouts about once a second; connections must be gone within this slack */
#define CLOSE_SLACK_MS 5000
#define RSS_LIMIT_KB (64 * 1024)
/* ASan/TSan builds: shadow memory and the free quarantine, not lifemon, dominate RSS */
#define RSS_LIMIT_SANITIZED_KB (256 * 1024)
#define IDLE_CONNS 220
#define HALF_OPEN_CONNS 50
#define GOOD_MS 10000 /* a good request must succeed within this even under a flood */
#define CLIENT_MAX_MSG 1024
#define CLIENT_MAX_MSGS 16
#define TOKEN_LEN 32
#define B64_TOKEN "u+8/Xq3=Lm0n+T0k3n/AbC9z" /* base64 alphabet, as README.md makes tokens */

/* --- RSS sampler thread: reads /proc only, so forks on the main thread stay safe --- */

#define SAMPLE_PIDS 3

static struct {
	pthread_t thr;
	bool running;
	atomic_bool stop;
	atomic_int pid[SAMPLE_PIDS];
	atomic_long max_kb[SAMPLE_PIDS];
	atomic_ulong samples;
} smp;

static void *sampler_main(void *arg)
{
	struct timespec ts = {.tv_sec = 0, .tv_nsec = 5 * 1000000};
	int i;

	(void)arg;
	while (!atomic_load(&smp.stop)) {
		for (i = 0; i < SAMPLE_PIDS; i++) {
			pid_t pid = atomic_load(&smp.pid[i]);
			long kb;

			if (pid <= 0)
				continue;
			kb = lm_it_proc_rss_kb(pid);
			if (kb > atomic_load(&smp.max_kb[i]))
				atomic_store(&smp.max_kb[i], kb);
		}
		atomic_fetch_add(&smp.samples, 1);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static void sampler_stop(void *arg)
{
	(void)arg;
	if (!smp.running)
		return;
	atomic_store(&smp.stop, true);
	pthread_join(smp.thr, NULL);
	smp.running = false;
}

/* True if the process maps a sanitizer runtime (libasan, libtsan). */
static bool is_sanitized(pid_t pid)
{
	char path[64], *text = NULL;
	bool yes;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	if (lm_it_read_file(path, &text, NULL))
		return false;
	yes = strstr(text, "/libasan.so") || strstr(text, "/libtsan.so");
	free(text);
	return yes;
}

/* --- lifemon instances --- */

static struct lm_it_proc *lm_a, *lm_b, *lm_c;
static char token[TOKEN_LEN + 1];
static char token_path[64], b64_path[64];
static char metrics_b_path[128];
static unsigned int b_refused; /* requests and upgrades B answered 401 */

static void files_cleanup(void *arg)
{
	(void)arg;
	if (token_path[0])
		unlink(token_path);
	if (b64_path[0])
		unlink(b64_path);
}

static int write_token_file(char *path, size_t cap, const char *tok)
{
	int fd, err = 0;
	size_t len = strlen(tok);

	snprintf(path, cap, "/tmp/lifemon-it-token-XXXXXX");
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		path[0] = '\0';
		return err;
	}
	if (fchmod(fd, 0600) < 0 || write(fd, tok, len) != (ssize_t)len || write(fd, "\n", 1) != 1)
		err = -errno;
	close(fd);
	return err;
}

/* True while `p` runs; reaps and reports it once it has exited. */
static bool still_alive(struct lm_it_proc *p, const char *who)
{
	char ws[32];
	int st;

	if (lm_it_proc_wait(p, 0, &st) == -ETIMEDOUT)
		return true;
	lm_it_fail("lifemon %s (pid %d) died: %s", who, lm_it_proc_pid(p),
		   lm_it_wstatus_str(st, ws, sizeof(ws)));
	return false;
}

static void require_alive(const char *phase)
{
	bool a = still_alive(lm_a, "A"), b = still_alive(lm_b, "B");

	if (!a || !b)
		lm_it_fatal("lifemon died during %s", phase);
}

/* --- /metrics --- */

enum {
	LIM_CLIENTS,
	LIM_MESSAGES,
	LIM_TOKEN,
	LIM_ORIGIN,
	LIM_PATH,
	LIM_INCOMPLETE,
	LIM_HOST,
	LIM_UPGRADE,
	LIM_CNT
};
static const char *const lim_name[LIM_CNT] = {"clients", "client_messages", "token",
					      "origin",	 "path",	    "incomplete_request",
					      "host",	 "upgrade"};

struct counters {
	double lim[LIM_CNT];
	bool has[LIM_CNT];
	double ws_clients;
};

static int counters_read(uint16_t port, const char *path, struct counters *c)
{
	char series[96], *body = NULL;
	int err, i;

	memset(c, 0, sizeof(*c));
	err = lm_it_metrics_fetch_path(port, path, 5000, &body);
	if (err)
		return err;
	for (i = 0; i < LIM_CNT; i++) {
		snprintf(series, sizeof(series), "lifemon_limit_hits_total{limit=\"%s\"}",
			 lim_name[i]);
		c->has[i] = lm_it_metric(body, series, &c->lim[i]);
	}
	if (!lm_it_metric(body, "lifemon_ws_clients", &c->ws_clients))
		c->ws_clients = -1;
	free(body);
	return 0;
}

/*
 * The refusals each instance must have counted so far, by limit. Each phase adds what it
 * caused; expect_books then wants /metrics to show exactly the books, so a refusal counted
 * twice, under the wrong limit or not at all fails the phase that caused it.
 */
struct books {
	const char *who;
	uint16_t port;
	const char *path; /* /metrics, with the token where one is needed */
	double lim[LIM_CNT];
};

static struct books books_a = {.who = "A", .port = IT_PORT, .path = "/metrics"};
static struct books books_b = {.who = "B", .port = IT_PORT_TOKEN};

static void books_init(struct books *bk, const struct counters *c)
{
	memcpy(bk->lim, c->lim, sizeof(bk->lim));
}

/*
 * Adds a phase's refusals (`d`, by limit) to the books and waits until /metrics agrees: some
 * are counted only once lws tears the connection down, so up to 5 s. Every series must then
 * be exact; on a mismatch the books follow /metrics so that later phases are judged alone.
 */
static void expect_books(struct books *bk, const double *d, const char *phase)
{
	int64_t deadline = lm_it_now_ms() + 5000;
	struct counters c;
	bool same;
	int i, err;

	for (i = 0; i < LIM_CNT; i++)
		bk->lim[i] += d[i];
	for (;;) {
		err = counters_read(bk->port, bk->path, &c);
		same = !err;
		for (i = 0; same && i < LIM_CNT; i++)
			same = c.has[i] && c.lim[i] == bk->lim[i];
		if (same || lm_it_now_ms() >= deadline)
			break;
		usleep(50 * 1000);
	}
	if (err) {
		lm_it_fail("%s: GET /metrics on %s: %s", phase, bk->who, strerror(-err));
		return;
	}
	for (i = 0; i < LIM_CNT; i++) {
		LM_IT_EXPECT(c.lim[i] == bk->lim[i],
			     "%s: %s: lifemon_limit_hits_total{limit=\"%s\"} rose by %g, want %g",
			     phase, bk->who, lim_name[i], c.lim[i] - (bk->lim[i] - d[i]), d[i]);
		bk->lim[i] = c.lim[i];
	}
	lm_it_note("%s: %s expected (clients %g, client_messages %g, token %g, origin %g, "
		   "path %g, incomplete %g, host %g, upgrade %g)",
		   phase, bk->who, d[LIM_CLIENTS], d[LIM_MESSAGES], d[LIM_TOKEN], d[LIM_ORIGIN],
		   d[LIM_PATH], d[LIM_INCOMPLETE], d[LIM_HOST], d[LIM_UPGRADE]);
}

/* Polls lifemon_ws_clients until it equals want. Returns the last value seen. */
static double wait_ws_clients(uint16_t port, const char *path, double want, int timeout_ms)
{
	int64_t deadline = lm_it_now_ms() + timeout_ms;
	struct counters c = {.ws_clients = -1};

	for (;;) {
		if (!counters_read(port, path, &c) && c.ws_clients == want)
			return c.ws_clients;
		if (lm_it_now_ms() >= deadline)
			return c.ws_clients;
		usleep(50 * 1000);
	}
}

/* --- small helpers --- */

static void fill_random(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = getrandom(p, len, 0);

		if (n <= 0)
			lm_it_fatal("getrandom: %s", strerror(errno));
		p += n;
		len -= (size_t)n;
	}
}

static const char *status_line(const char *head)
{
	static char line[96];
	size_t n = strcspn(head, "\r\n");

	if (n >= sizeof(line))
		n = sizeof(line) - 1;
	memcpy(line, head, n);
	line[n] = '\0';
	return line[0] ? line : "(nothing)";
}

/*
 * Sends `len` bytes of `req` on a fresh connection (the server may hang up part-way), then
 * waits for the server to close. Returns 0 once closed, -ETIMEDOUT if it stays open, or a
 * connect error; the first bytes of its answer go to head.
 */
static int raw_exchange(uint16_t port, const void *req, size_t len, int close_ms, char *head,
			size_t cap)
{
	int fd = -1, err;

	head[0] = '\0';
	err = lm_wsc_tcp_open(port, 3000, &fd);
	if (err)
		return err;
	lm_wsc_fd_send(fd, req, len, 3000); /* EPIPE/ECONNRESET: it hung up on us, as it may */
	err = lm_wsc_fd_wait_closed(fd, close_ms, head, cap, NULL);
	close(fd);
	return err == -ECONNRESET ? 0 : err;
}

/* A good client's GET, timed: fails the test unless it gets `want` within GOOD_MS. */
static void expect_good_get(uint16_t port, const char *path, const char *headers, int want,
			    const char *during)
{
	int64_t t0 = lm_it_now_ms();
	char *body = NULL;
	int err, st = 0;

	err = lm_wsc_http_request(port, "GET", path, headers, GOOD_MS, &st, &body, NULL);
	free(body);
	LM_IT_EXPECT(!err && st == want, "%s: good GET %s on port %u: %s, status %d (want %d)",
		     during, path, port, err ? strerror(-err) : "ok", st, want);
	lm_it_note("%s: good GET %s answered %d in %lld ms", during, path, st,
		   (long long)(lm_it_now_ms() - t0));
}

static int ws_open(uint16_t port, const char *path, const char *origin, const char *headers,
		   struct lm_wsc **c, int *st)
{
	struct lm_wsc_opts o = {
	    .port = port, .path = path, .origin = origin, .headers = headers, .timeout_ms = 5000};

	*st = 0;
	return lm_wsc_connect(&o, c, st);
}

/* 1: the client answers a ping (still open); 0: closed; -ETIMEDOUT: no pong, no close. */
static int ws_is_open(struct lm_wsc *c, int timeout_ms)
{
	int64_t deadline = lm_it_now_ms() + timeout_ms;
	uint64_t before = lm_wsc_pong_count(c);
	const char *msg;
	size_t len;
	int r;

	if (lm_wsc_send_frame(c, LM_WSC_OP_PING, true, "alive?", 6))
		return 0;
	while (lm_wsc_pong_count(c) == before) {
		int left = (int)(deadline - lm_it_now_ms());

		if (left <= 0)
			return -ETIMEDOUT;
		r = lm_wsc_recv(c, left < 100 ? left : 100, &msg, &len);
		if (r == -ETIMEDOUT || r == LM_WSC_OP_TEXT || r == LM_WSC_OP_BINARY)
			continue;
		return 0;
	}
	return 1;
}

/* --- 1. garbage on the HTTP port --- */

/*
 * Random bytes and the TLS hello die in lws's parser (lws answers 403 itself): one
 * incomplete_request each. lws cuts the request line at the NUL and serves "/": no refusal.
 */
static void phase_garbage(double *d)
{
	static const char tls_hello[] =
	    /* TLS 1.2 record, ClientHello for "localhost" with a few suites */
	    "\x16\x03\x01\x00\x5d\x01\x00\x00\x59\x03\x03"
	    "\x5e\x1f\x7c\x21\x9a\x03\x44\x10\x6b\x77\x3e\x2a\x90\x11\xc4\x5d"
	    "\x0b\x8e\x33\x72\xa1\x4c\x6f\x59\xe2\x17\x05\xbc\x48\x36\x9d\x02"
	    "\x00\x00\x08\x13\x01\x13\x02\xc0\x2f\x00\xff\x01\x00\x00\x28"
	    "\x00\x00\x00\x0e\x00\x0c\x00\x00\x09localhost"
	    "\x00\x0a\x00\x04\x00\x02\x00\x1d\x00\x0d\x00\x06\x00\x04\x04\x03\x08\x04"
	    "\x00\x2b\x00\x03\x02\x03\x04";
	static const char nul_line[] = "GET /\0\xff\xfe HTTP/1.1\r\n" GOOD_HOST "\r\n";
	int close_ms = HS_TIMEOUT_S * 1000 + CLOSE_SLACK_MS;
	char head[256], *buf;
	size_t len = 8192, i;
	int err;

	buf = malloc(len);
	if (!buf)
		lm_it_fatal("out of memory");
	for (i = 0; i < 6; i++) {
		fill_random(buf, len);
		if (i == 5) { /* a request line, then garbage as its headers */
			size_t k;

			memcpy(buf, "GET / HTTP/1.1\r\n", 16);
			/*
			 * No CR or LF in them: random bytes holding a blank line would end the
			 * headers and make a whole request (counted as a Host refusal, not as
			 * incomplete), one run in a few. These overflow the header cap instead.
			 */
			for (k = 16; k < len; k++)
				if (buf[k] == '\r' || buf[k] == '\n')
					buf[k] = 'x';
		}
		err = raw_exchange(IT_PORT, buf, len, close_ms, head, sizeof(head));
		LM_IT_EXPECT(!err, "random bytes #%zu: connection not closed within %d ms: %s", i,
			     close_ms, strerror(-err));
		LM_IT_EXPECT(strncmp(head, "HTTP/1.1 200", 12) && strncmp(head, "HTTP/1.0 200", 12),
			     "random bytes #%zu answered %s", i, status_line(head));
		d[LIM_INCOMPLETE]++;
	}
	free(buf);
	err = raw_exchange(IT_PORT, nul_line, sizeof(nul_line) - 1, close_ms, head, sizeof(head));
	LM_IT_EXPECT(!err, "request line with NUL: not closed: %s", strerror(-err));
	lm_it_note("garbage: request line with NUL answered %s", status_line(head));
	err = raw_exchange(IT_PORT, tls_hello, sizeof(tls_hello) - 1, close_ms, head, sizeof(head));
	LM_IT_EXPECT(!err, "TLS ClientHello: connection not closed within %d ms: %s", close_ms,
		     strerror(-err));
	LM_IT_EXPECT(!strstr(head, " 200 ") && !strstr(head, " 101 "),
		     "TLS ClientHello answered %s", status_line(head));
	lm_it_note("garbage: TLS ClientHello answered %s", status_line(head));
	d[LIM_INCOMPLETE]++;
	require_alive("garbage");
	expect_good_get(IT_PORT, "/healthz", NULL, 200, "after garbage");
}

/* --- 2. oversized headers --- */

/* lws refuses each before lifemon sees a request: one incomplete_request each. */
static void big_request(const char *what, const char *req, size_t len, double *d)
{
	int close_ms = HS_TIMEOUT_S * 1000 + CLOSE_SLACK_MS;
	char head[256];
	int err;

	err = raw_exchange(IT_PORT, req, len, close_ms, head, sizeof(head));
	LM_IT_EXPECT(!err, "%s: connection not closed within %d ms: %s", what, close_ms,
		     strerror(-err));
	LM_IT_EXPECT(!strstr(head, " 200 ") && !strstr(head, " 101 "),
		     "%s (%zu bytes) was served: %s", what, len, status_line(head));
	lm_it_note("%s (%zu bytes): %s", what, len, head[0] ? status_line(head) : "closed");
	d[LIM_INCOMPLETE]++;
}

static void phase_headers(double *d)
{
	size_t cap = (1 << 16) + 4096, n;
	char *req = malloc(cap);
	int i;

	if (!req)
		lm_it_fatal("out of memory");
	/* one 64 KiB header lws does not store, one it does, and a 64 KiB URI */
	n = (size_t)snprintf(req, cap, "GET /healthz HTTP/1.1\r\n" GOOD_HOST "X-Big: ");
	memset(req + n, 'a', 65536);
	n += 65536;
	memcpy(req + n, "\r\n\r\n", 4);
	big_request("64 KiB X-Big header", req, n + 4, d);

	n = (size_t)snprintf(req, cap, "GET /healthz HTTP/1.1\r\n" GOOD_HOST "Cookie: ");
	memset(req + n, 'c', 65536);
	n += 65536;
	memcpy(req + n, "\r\n\r\n", 4);
	big_request("64 KiB Cookie header", req, n + 4, d);

	n = (size_t)snprintf(req, cap, "GET /");
	memset(req + n, 'u', 65536);
	n += 65536;
	n += (size_t)snprintf(req + n, cap - n, " HTTP/1.1\r\n" GOOD_HOST "\r\n");
	big_request("64 KiB URI", req, n, d);

	n = (size_t)snprintf(req, cap, "GET /ws HTTP/1.1\r\n" GOOD_HOST);
	for (i = 0; i < 1000; i++)
		n += (size_t)snprintf(req + n, cap - n, "X-H%d: v%d\r\n", i, i);
	n += (size_t)snprintf(req + n, cap - n, "\r\n");
	big_request("1000 headers", req, n, d);

	n = (size_t)snprintf(req, cap, "GET /healthz HTTP/1.1\r\n" GOOD_HOST);
	for (i = 0; i < 1000; i++)
		n += (size_t)snprintf(req + n, cap - n, "Accept: text/v%d\r\n", i);
	n += (size_t)snprintf(req + n, cap - n, "\r\n");
	big_request("1000 Accept headers", req, n, d);
	free(req);

	/* well under --max-header-bytes (default 4096) still works */
	req = malloc(2100);
	if (!req)
		lm_it_fatal("out of memory");
	n = (size_t)snprintf(req, 2100, "User-Agent: ");
	memset(req + n, 'g', 2000);
	memcpy(req + n + 2000, "\r\n", 3);
	expect_good_get(IT_PORT, "/healthz", req, 200, "2000-byte User-Agent");
	free(req);
	require_alive("headers");
}

/* --- 3. paths --- */

static const char *const traversal[] = {
    "/../../etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/..%2f..%2fetc%2fpasswd",
    "/%2e%2e/",
    "/./healthz/../../../etc/passwd",
    "//etc/passwd",
    "//ws",
    "/ws/../metrics",
    "/x/../healthz",
    "//healthz",
    "/metrics%00.txt",
    "/\\..\\..\\etc\\passwd",
};

/* Paths that name (after dot-segment removal) a route that needs the token. */
static bool is_protected_route(const char *p)
{
	return !strcmp(p, "/%2e%2e/") || !strcmp(p, "/ws/../metrics") ||
	       !strcmp(p, "/x/../healthz") || !strcmp(p, "//healthz");
}

/*
 * What a refused request on a path counts: an upgrade answered 404 is limit "path"; a
 * request lws hung up on without an answer never reached lifemon, so "incomplete_request".
 */
static void count_path_refusal(int err, int st, double *d)
{
	if (st == 404)
		d[LIM_PATH]++;
	else if (err && !st)
		d[LIM_INCOMPLETE]++;
}

static void phase_paths(double *d, double *db)
{
	static const char *const not_ws[] = {
	    "/",    "/metrics",	      "/healthz", "/ws/",
	    "/wsx", "/ws/../metrics", "/WS",	  "/ws%2f..%2fmetrics"};
	static const char *const same_ws[] = {"//ws", "/x/../ws", "/./ws", "/%77%73"};
	struct lm_wsc *c = NULL;
	char *body = NULL;
	size_t i;
	int err, st;

	for (i = 0; i < sizeof(traversal) / sizeof(traversal[0]); i++) {
		const char *p = traversal[i];

		st = 0;
		err = lm_wsc_http_get(IT_PORT, p, 5000, &st, &body, NULL);
		LM_IT_EXPECT(!err || err == -ECONNRESET || err == -EPROTO,
			     "GET %s: %s (lifemon must answer or hang up)", p, strerror(-err));
		LM_IT_EXPECT(!body || !strstr(body, "root:"), "GET %s leaked a file: %.80s", p,
			     body);
		if (strstr(p, "passwd"))
			LM_IT_EXPECT(err || st != 200, "GET %s answered 200", p);
		lm_it_note("GET %s -> %d", p, st);
		d[LIM_INCOMPLETE] += err && !st; /* plain GETs count nothing when answered */
		free(body);
		body = NULL;

		/* with --token-file every one of them needs the token */
		st = 0;
		err = lm_wsc_http_get(IT_PORT_TOKEN, p, 5000, &st, &body, NULL);
		LM_IT_EXPECT(err || st != 200, "token instance: GET %s without token answered 200",
			     p);
		LM_IT_EXPECT(!body || !strstr(body, "root:"), "token instance: GET %s leaked", p);
		b_refused += !err && st == 401;
		db[LIM_TOKEN] += !err && st == 401;
		db[LIM_INCOMPLETE] += err && !st;
		if (is_protected_route(p))
			LM_IT_EXPECT(!err && st == 401,
				     "token instance: GET %s (a protected route) without token: "
				     "%s, status %d (want 401)",
				     p, err ? strerror(-err) : "ok", st);
		free(body);
		body = NULL;
	}

	for (i = 0; i < sizeof(not_ws) / sizeof(not_ws[0]); i++) {
		err = ws_open(IT_PORT, not_ws[i], NULL, NULL, &c, &st);
		LM_IT_EXPECT(err, "upgrade on %s was accepted (only /ws upgrades)", not_ws[i]);
		LM_IT_EXPECT(st == 404, "upgrade on %s answered %d, want 404", not_ws[i], st);
		count_path_refusal(err, st, d);
		lm_wsc_close(c);
		c = NULL;
	}
	/* the same resource as /ws once lws has normalised the path: either answer is fine */
	for (i = 0; i < sizeof(same_ws) / sizeof(same_ws[0]); i++) {
		err = ws_open(IT_PORT, same_ws[i], NULL, NULL, &c, &st);
		lm_it_note("upgrade on %s (normalises to /ws): %s, status %d", same_ws[i],
			   err ? strerror(-err) : "accepted", st);
		count_path_refusal(err, st, d);
		if (c)
			lm_wsc_send_close(c, 1000);
		lm_wsc_close(c);
		c = NULL;
	}
	{
		struct lm_wsc_opts o = {.port = IT_PORT,
					.path = "/ws",
					.method = "POST",
					.headers = "Content-Length: 0\r\n",
					.timeout_ms = 5000};

		st = 0;
		err = lm_wsc_connect(&o, &c, &st);
		LM_IT_EXPECT(err && st != 101, "POST /ws upgrade was accepted (status %d)", st);
		lm_it_note("POST /ws upgrade: %s, status %d", strerror(-err), st);
		count_path_refusal(err, st, d);
		lm_wsc_close(c);
		c = NULL;
	}
	require_alive("paths");
}

/* --- 4. abusive WebSocket clients --- */

struct abuse {
	unsigned int closed_1008; /* clients closed with 1008: the client_messages counter */
};

/* Waits for the server to close `c`; fails unless it did (with `want` if nonzero). */
static void expect_closed(struct lm_wsc *c, const char *what, uint16_t want, struct abuse *ab)
{
	uint16_t code = 0;
	int err;

	err = lm_wsc_wait_close(c, 5000, &code);
	if (err == -ETIMEDOUT) {
		lm_it_fail("%s: the client was not closed within 5 s", what);
		return;
	}
	if (code == 1008)
		ab->closed_1008++;
	if (want)
		LM_IT_EXPECT(code == want, "%s: closed with %s%u, want %u", what,
			     err ? "TCP reset, code " : "code ", code, want);
	lm_it_note("%s: closed (%s, code %u)", what, err ? "TCP" : "close frame", code);
}

static void expect_open(struct lm_wsc *c, const char *what)
{
	int r = ws_is_open(c, 3000);

	LM_IT_EXPECT(r == 1, "%s: the client should still be served (ping: %s)", what,
		     r == 0 ? "closed" : "no pong");
}

static struct lm_wsc *abuser(const char *what)
{
	struct lm_wsc *c = NULL;
	int err, st;

	err = ws_open(IT_PORT, "/ws", NULL, NULL, &c, &st);
	if (err)
		lm_it_fatal("%s: upgrade failed: %s, status %d", what, strerror(-err), st);
	return c;
}

/* Frame header for a masked frame of `len` bytes declared with the 64-bit length. */
static size_t frame_hdr64(uint8_t *h, int opcode, uint64_t len)
{
	size_t n = 0;
	int i;

	h[n++] = 0x80 | (uint8_t)opcode;
	h[n++] = 0x80 | 127;
	for (i = 7; i >= 0; i--)
		h[n++] = (uint8_t)(len >> (8 * i));
	fill_random(h + n, 4);
	return n + 4;
}

/*
 * Seven clients here pass a client limit, each counted once. The 16 MiB text frame with
 * 4 MiB pushed is usually cut by libwebsockets itself (TCP close, no close frame) before a
 * receive callback reaches lifemon, and then counts nothing; see phase_frames.
 */
#define FRAMES_OVER_LIMIT 7

static void phase_frames(struct abuse *ab, double *d)
{
	static const char bad_utf8[] = "ok \xff\xfe \xc0\x80 \xed\xa0\x80";
	char small[CLIENT_MAX_MSG + 1];
	uint8_t hdr[14], *chunk;
	struct counters before, after;
	struct lm_wsc *c;
	size_t n, sent;
	int i, err;

	memset(small, 'm', sizeof(small));

	c = abuser("invalid UTF-8");
	lm_wsc_send_text(c, bad_utf8, sizeof(bad_utf8) - 1);
	expect_closed(c, "text frame with invalid UTF-8", 0, ab);
	lm_wsc_close(c);

	/* 16 MiB declared, 2 KiB sent: must be closed with 1008 without waiting for the rest */
	c = abuser("16 MiB frame");
	n = frame_hdr64(hdr, LM_WSC_OP_BINARY, 16u << 20);
	chunk = calloc(1, 65536);
	if (!chunk)
		lm_it_fatal("out of memory");
	fill_random(chunk, 2048);
	lm_wsc_send_raw(c, hdr, n, 2000);
	lm_wsc_send_raw(c, chunk, 2048, 2000);
	expect_closed(c, "binary frame declaring 16 MiB (2 KiB sent)", 1008, ab);
	lm_wsc_close(c);

	/* ... and with a few MiB of it pushed as fast as lifemon takes them */
	if (counters_read(IT_PORT, "/metrics", &before))
		lm_it_fatal("frames: GET /metrics failed");
	c = abuser("16 MiB frame, 4 MiB sent");
	n = frame_hdr64(hdr, LM_WSC_OP_TEXT, 16u << 20);
	memset(chunk, 'x', 65536);
	err = lm_wsc_send_raw(c, hdr, n, 2000);
	for (sent = 0; !err && sent < (4u << 20); sent += 65536)
		err = lm_wsc_send_raw(c, chunk, 65536, 2000);
	lm_it_note("16 MiB text frame: %zu KiB sent before %s", sent / 1024,
		   err ? strerror(-err) : "stopping");
	expect_closed(c, "text frame declaring 16 MiB (4 MiB pushed)", 0, ab);
	lm_wsc_close(c);
	free(chunk);
	/*
	 * Whether lifemon's receive callback sees a piece of this frame before libwebsockets
	 * cuts the connection itself depends on how the bytes arrive: 0 or 1 refusal, never
	 * more. The rest of the phase stays exact.
	 */
	for (i = 0; i < 20; i++) {
		if (!counters_read(IT_PORT, "/metrics", &after) &&
		    after.lim[LIM_MESSAGES] != before.lim[LIM_MESSAGES])
			break;
		usleep(50 * 1000);
	}
	LM_IT_EXPECT(after.lim[LIM_MESSAGES] - before.lim[LIM_MESSAGES] <= 1,
		     "16 MiB text frame: client_messages rose by %.0f, want 0 or 1",
		     after.lim[LIM_MESSAGES] - before.lim[LIM_MESSAGES]);
	d[LIM_MESSAGES] += after.lim[LIM_MESSAGES] - before.lim[LIM_MESSAGES];

	c = abuser("1024-byte text");
	lm_wsc_send_text(c, small, CLIENT_MAX_MSG);
	expect_open(c, "one text frame of exactly 1024 bytes");
	lm_wsc_send_text(c, small, CLIENT_MAX_MSG + 1);
	expect_closed(c, "text frame of 1025 bytes", 1008, ab);
	lm_wsc_close(c);

	c = abuser("binary");
	lm_wsc_send_frame(c, LM_WSC_OP_BINARY, true, "\x00\x01\xff\xfe\x80", 5);
	expect_open(c, "one small binary frame");
	lm_wsc_send_frame(c, LM_WSC_OP_BINARY, true, small, CLIENT_MAX_MSG + 1);
	expect_closed(c, "binary frame of 1025 bytes", 1008, ab);
	lm_wsc_close(c);

	/* pings are not data frames: each one answered, however many */
	c = abuser("pings");
	for (i = 0; i < 2 * CLIENT_MAX_MSGS; i++) {
		if (ws_is_open(c, 3000) != 1) {
			lm_it_fail("ping %d of %d (sent one at a time) got no pong", i + 1,
				   2 * CLIENT_MAX_MSGS);
			break;
		}
	}
	/* a burst: RFC 6455 5.5.3 lets the server answer only the latest of pending pings */
	for (i = 0; i < 3 * CLIENT_MAX_MSGS; i++)
		lm_wsc_send_frame(c, LM_WSC_OP_PING, true, small, 125);
	expect_open(c, "a burst of 48 pings of 125 bytes");
	lm_wsc_send_close(c, 1000);
	lm_wsc_close(c);

	c = abuser("oversized ping");
	lm_wsc_send_frame(c, LM_WSC_OP_PING, true, small, 126);
	expect_closed(c, "ping with 126 bytes (RFC 6455: control frames carry <= 125)", 0, ab);
	lm_wsc_close(c);

	c = abuser("reserved opcode");
	lm_wsc_send_frame(c, 0x3, true, "zz", 2);
	expect_closed(c, "frame with reserved opcode 3", 0, ab);
	lm_wsc_close(c);

	c = abuser("16 frames");
	for (i = 0; i < CLIENT_MAX_MSGS; i++)
		lm_wsc_send_text(c, "hi", 2);
	expect_open(c, "16 small text frames");
	lm_wsc_send_text(c, "hi", 2);
	expect_closed(c, "17th small data frame", 1008, ab);
	lm_wsc_close(c);

	c = abuser("17 empty frames");
	for (i = 0; i <= CLIENT_MAX_MSGS; i++)
		lm_wsc_send_text(c, "", 0);
	expect_closed(c, "17 empty text frames", 1008, ab);
	lm_wsc_close(c);

	/* one message in 100 fragments of 5 bytes (500 bytes): 100 data frames */
	c = abuser("fragments");
	err = lm_wsc_send_frame(c, LM_WSC_OP_TEXT, false, "frag.", 5);
	for (i = 1; !err && i < 100; i++)
		err = lm_wsc_send_frame(c, LM_WSC_OP_CONT, i == 99, "frag.", 5);
	expect_closed(c, "one message in 100 data frames (500 bytes)", 1008, ab);
	lm_wsc_close(c);

	/* zero-length fragments that never finish a message: no byte limit can catch them */
	c = abuser("empty fragments");
	err = lm_wsc_send_frame(c, LM_WSC_OP_TEXT, false, "", 0);
	for (i = 1; !err && i < 2000; i++)
		err = lm_wsc_send_frame(c, LM_WSC_OP_CONT, false, "", 0);
	expect_closed(c, "2000 empty continuation frames", 1008, ab);
	lm_wsc_close(c);

	/* unmasked garbage after a good handshake */
	c = abuser("garbage frames");
	chunk = malloc(4096);
	if (!chunk)
		lm_it_fatal("out of memory");
	fill_random(chunk, 4096);
	chunk[1] &= 0x7f; /* unmasked: RFC 6455 5.1 says fail the connection */
	lm_wsc_send_raw(c, chunk, 4096, 2000);
	free(chunk);
	expect_closed(c, "random bytes after the upgrade", 0, ab);
	lm_wsc_close(c);
	d[LIM_MESSAGES] += FRAMES_OVER_LIMIT;

	require_alive("frames");
}

/* --- 5. idle and half-open floods, keep-alive --- */

/* Waits for every fd to be closed by the server; returns how many still are open. */
static int wait_all_closed(int *fds, int n, int timeout_ms, int64_t *last_close_ms)
{
	int64_t t0 = lm_it_now_ms(), deadline = t0 + timeout_ms;
	int i, open = n, err;

	*last_close_ms = 0;
	for (i = 0; i < n; i++) {
		int left = (int)(deadline - lm_it_now_ms());

		err = lm_wsc_fd_wait_closed(fds[i], left > 0 ? left : 0, NULL, 0, NULL);
		if (err == -ETIMEDOUT)
			continue;
		open--;
		if (lm_it_now_ms() - t0 > *last_close_ms)
			*last_close_ms = lm_it_now_ms() - t0;
	}
	return open;
}

static void close_fds(int *fds, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

/* Every idle and half-open connection is closed by a limit: one incomplete_request each. */
static void phase_floods(double *d)
{
	static const char half[] = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:" IT_PORT_STR
				   "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";
	static const char keep[] = "GET /healthz HTTP/1.1\r\n" GOOD_HOST "\r\n";
	int close_ms = HS_TIMEOUT_S * 1000 + CLOSE_SLACK_MS;
	int fds[IDLE_CONNS], i, err, left, st;
	int64_t last, t0;
	char head[512];

	for (i = 0; i < IDLE_CONNS; i++)
		fds[i] = -1;
	for (i = 0; i < IDLE_CONNS; i++) {
		err = lm_wsc_tcp_open(IT_PORT, 3000, &fds[i]);
		if (err) {
			lm_it_fail("idle connection %d: %s", i, strerror(-err));
			break;
		}
	}
	lm_it_note("%d idle connections open", i);
	d[LIM_INCOMPLETE] += i;
	/*
	 * More idle connections than lws has header tables (64): a good client may have to
	 * wait for them to time out, so this one is only reported.
	 */
	{
		int64_t t1 = lm_it_now_ms();
		char *body = NULL;

		st = 0;
		err = lm_wsc_http_get(IT_PORT, "/healthz", GOOD_MS, &st, &body, NULL);
		free(body);
		lm_it_note(
		    "with %d idle connections: good GET /healthz: %s, status %d after %lld ms", i,
		    err ? strerror(-err) : "ok", st, (long long)(lm_it_now_ms() - t1));
		/* it waited for a header table like the idle ones and timed out with them */
		d[LIM_INCOMPLETE] += err && !st;
	}
	left = wait_all_closed(fds, i, close_ms, &last);
	LM_IT_EXPECT(left == 0,
		     "%d of %d idle connections (no byte sent) still open %d ms after "
		     "connecting (--handshake-timeout-s %d)",
		     left, i, close_ms, HS_TIMEOUT_S);
	if (left < i)
		lm_it_note("idle connections: the last closed by lifemon went after %lld ms",
			   (long long)last);
	close_fds(fds, IDLE_CONNS);
	require_alive("idle flood");
	expect_good_get(IT_PORT, "/healthz", NULL, 200, "after the idle flood");

	for (i = 0; i < HALF_OPEN_CONNS; i++) {
		err = lm_wsc_tcp_open(IT_PORT, 3000, &fds[i]);
		if (!err)
			err = lm_wsc_fd_send(fds[i], half, sizeof(half) - 1, 3000);
		if (err) {
			lm_it_fail("half-open handshake %d: %s", i, strerror(-err));
			break;
		}
	}
	d[LIM_INCOMPLETE] += i;
	expect_good_get(IT_PORT, "/healthz", NULL, 200, "with 50 half-open handshakes");
	left = wait_all_closed(fds, i, close_ms, &last);
	LM_IT_EXPECT(left == 0,
		     "%d of %d half-open handshakes still open %d ms after they "
		     "stopped (--handshake-timeout-s %d)",
		     left, i, close_ms, HS_TIMEOUT_S);
	if (left < i)
		lm_it_note("half-open handshakes: the last closed by lifemon went after %lld ms",
			   (long long)last);
	close_fds(fds, IDLE_CONNS);
	require_alive("half-open flood");
	expect_good_get(IT_PORT, "/healthz", NULL, 200, "after the half-open flood");

	/* an idle keep-alive connection after one good request */
	err = lm_wsc_tcp_open(IT_PORT, 3000, &fds[0]);
	if (!err)
		err = lm_wsc_fd_send(fds[0], keep, sizeof(keep) - 1, 3000);
	LM_IT_ASSERT(!err, "keep-alive request: %s", strerror(-err));
	t0 = lm_it_now_ms();
	err = lm_wsc_fd_wait_closed(fds[0], IDLE_TIMEOUT_S * 1000 + CLOSE_SLACK_MS, head,
				    sizeof(head), NULL);
	LM_IT_EXPECT(!strncmp(head, "HTTP/1.1 200", 12), "keep-alive request answered %s",
		     status_line(head));
	LM_IT_EXPECT(err != -ETIMEDOUT, "idle keep-alive connection still open after %d ms",
		     IDLE_TIMEOUT_S * 1000 + CLOSE_SLACK_MS);
	lm_it_note("idle keep-alive connection closed after %lld ms",
		   (long long)(lm_it_now_ms() - t0));
	close_fds(fds, 1);
	require_alive("keep-alive");
}

/* --- 6. Origin --- */

static const char *const protocols[] = {
    NULL,
    "Sec-WebSocket-Protocol: lifemon\r\n",
    "Sec-WebSocket-Protocol: http\r\n",
    "Sec-WebSocket-Protocol: garbage!#$\r\n",
    "Sec-WebSocket-Protocol: \r\n",
    "Sec-WebSocket-Protocol: lifemon, http\r\n",
    "Sec-WebSocket-Protocol: chat, superchat\r\n",
};
#define NPROTO (sizeof(protocols) / sizeof(protocols[0]))

static unsigned int phase_origin(double *d)
{
	static const char *const foreign[] = {
	    "http://evil.example",
	    "http://127.0.0.1.evil.example",
	    "http://127.0.0.1:" IT_PORT_STR ".evil.example",
	    "http://localhost.evil.example:" IT_PORT_STR,
	    "http://localhost:" IT_PORT_STR "@evil.example",
	    "null",
	    "http://127.0.0.1:18099",
	    "https://127.0.0.1:" IT_PORT_STR,
	    "http://127.0.0.1:" IT_PORT_STR "/",
	    "http://127.0.0.1",
	    "http://[::1]:" IT_PORT_STR "0",
	    "ws://127.0.0.1:" IT_PORT_STR,
	    "https://dash.example.com.evil.example",
	    "http://dash.example.com",
	    /* --allow-origin http://dash.example:80: only that scheme and port */
	    "http://dash.example:8080",
	    "https://dash.example",
	    "http://dash.example:080",
	    "http://dash.example.",
	    "http://127.0.0.1:" IT_PORT_STR
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	};
	/* default ports are equal to no port (RFC 6454), both in Origin and in --allow-origin */
	static const char *const allowed[] = {"http://127.0.0.1:" IT_PORT_STR,
					      "http://localhost:" IT_PORT_STR,
					      "http://[::1]:" IT_PORT_STR,
					      ALLOWED_EXTRA,
					      "https://dash.example.com:443",
					      ALLOWED_PORT80,
					      "http://dash.example",
					      "http://LocalHost:" IT_PORT_STR};
	static const char *const doubled[] = {
	    "Origin: http://127.0.0.1:" IT_PORT_STR "\r\nOrigin: http://evil.example\r\n",
	    "Origin: http://evil.example\r\nOrigin: http://127.0.0.1:" IT_PORT_STR "\r\n",
	};
	unsigned int refused = 0, tried[NPROTO] = {0}, wrong[NPROTO] = {0};
	char hdrs[512], example[NPROTO][160];
	struct lm_wsc *c = NULL;
	size_t i, k, nf = sizeof(foreign) / sizeof(foreign[0]);
	int err, st;

	/* each foreign Origin alone, then two Origin headers (one allowed) in both orders */
	for (i = 0; i < nf + sizeof(doubled) / sizeof(doubled[0]); i++) {
		for (k = 0; k < NPROTO; k++) {
			const char *origin = i < nf ? foreign[i] : NULL;

			snprintf(hdrs, sizeof(hdrs), "%s%s", i < nf ? "" : doubled[i - nf],
				 protocols[k] ? protocols[k] : "");
			err = ws_open(IT_PORT, "/ws", origin, hdrs, &c, &st);
			LM_IT_EXPECT(err && st != 101, "Origin %.60s with %s was accepted",
				     origin ? origin : doubled[i - nf],
				     protocols[k] ? protocols[k] : "no protocol");
			tried[k]++;
			if (st == 403) {
				refused++;
			} else if (!wrong[k]++) {
				snprintf(example[k], sizeof(example[k]),
					 "Origin %.60s: %s, status %d",
					 origin ? origin : "(two headers)",
					 err ? strerror(-err) : "accepted", st);
			}
			lm_wsc_close(c);
			c = NULL;
		}
	}
	/* every one of them, whatever subprotocol it names, is an origin refusal */
	d[LIM_ORIGIN] += (double)((nf + sizeof(doubled) / sizeof(doubled[0])) * NPROTO);
	LM_IT_EXPECT(refused == (nf + sizeof(doubled) / sizeof(doubled[0])) * NPROTO,
		     "%u foreign-Origin upgrades got 403, want %zu", refused,
		     (nf + sizeof(doubled) / sizeof(doubled[0])) * NPROTO);
	for (k = 0; k < NPROTO; k++) {
		size_t l = protocols[k] ? strlen(protocols[k]) - 2 : 0;

		LM_IT_EXPECT(!wrong[k],
			     "%u of %u foreign-Origin upgrades with %.*s got no 403 "
			     "(e.g. %s)",
			     wrong[k], tried[k], protocols[k] ? (int)l : 11,
			     protocols[k] ? protocols[k] : "no protocol", example[k]);
	}
	/* allowed Origins with the protocols lifemon speaks (none named, or "lifemon") */
	for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		for (k = 0; k < 2; k++) {
			err = ws_open(IT_PORT, "/ws", allowed[i], protocols[k], &c, &st);
			LM_IT_EXPECT(!err, "allowed Origin %s with %s refused: %s, status %d",
				     allowed[i], protocols[k] ? protocols[k] : "no protocol",
				     strerror(-err), st);
			if (c)
				lm_wsc_send_close(c, 1000);
			lm_wsc_close(c);
			c = NULL;
		}
	}
	require_alive("origin");
	return refused;
}

static void good_client(struct lm_wsc_opts *o, const char *who);

/* --- 6b. Host: the DNS-rebinding guard, on every path and on upgrades --- */

/* Status of a raw response head, 0 when there was none. */
static int head_status(const char *head)
{
	int minor, st;

	if (sscanf(head, "HTTP/1.%d %3d", &minor, &st) != 2)
		return 0;
	return st;
}

/* Sends a raw request, waits for the close, wants status `want`; returns the head. */
static void expect_raw_status(const char *what, const char *req, int want, char *head,
			      size_t cap)
{
	int close_ms = IDLE_TIMEOUT_S * 1000 + CLOSE_SLACK_MS;
	int err;

	err = raw_exchange(IT_PORT, req, strlen(req), close_ms, head, cap);
	LM_IT_EXPECT(!err, "%s: connection not closed within %d ms: %s", what, close_ms,
		     strerror(-err));
	LM_IT_EXPECT(head_status(head) == want, "%s: answered %s, want %d", what,
		     status_line(head), want);
}

/* An upgrade with the given Host, Upgrade and Connection values and extra headers. */
static int ws_open_hdrs(const char *host, const char *upgrade, const char *connection,
			const char *headers, struct lm_wsc **c, int *st)
{
	struct lm_wsc_opts o = {.port = IT_PORT,
				.path = "/ws",
				.headers = headers,
				.host = host,
				.upgrade = upgrade,
				.connection = connection,
				.timeout_ms = 5000};

	*st = 0;
	return lm_wsc_connect(&o, c, st);
}

static void expect_upgrade(const char *what, const char *host, const char *upgrade,
			   const char *connection, const char *headers, int want)
{
	struct lm_wsc *c = NULL;
	int err, st;

	err = ws_open_hdrs(host, upgrade, connection, headers, &c, &st);
	if (want == 101)
		LM_IT_EXPECT(!err && st == 101, "%s: %s, status %d (want 101)", what,
			     err ? strerror(-err) : "accepted", st);
	else
		LM_IT_EXPECT(err && st == want, "%s: %s, status %d (want %d)", what,
			     err ? strerror(-err) : "accepted", st, want);
	if (c)
		lm_wsc_send_close(c, 1000);
	lm_wsc_close(c);
}

static void phase_host(double *d)
{
	static const struct {
		const char *path;
		const char *host; /* NULL: no Host header */
		const char *version;
		int want;
	} cases[] = {
	    /* foreign names on every route: what a rebinding page would send */
	    {"/metrics", "evil.example", "1.1", 421},
	    {"/", "evil.example", "1.1", 421},
	    {"/healthz", "evil.example:" IT_PORT_STR, "1.1", 421},
	    {"/nothing-here", "evil.example", "1.1", 421},
	    {"/metrics", "localhost.evil.example", "1.1", 421},
	    {"/metrics", "127.0.0.1.evil.example:" IT_PORT_STR, "1.1", 421},
	    {"/metrics", "localhost:18099", "1.1", 421},
	    {"/metrics", "localhost:", "1.1", 421},
	    {"/metrics", "localhost:0" IT_PORT_STR, "1.1", 421},
	    {"/metrics", "localhost.", "1.1", 421},
	    {"/metrics", "127.0.0.1:" IT_PORT_STR "@evil.example", "1.1", 421},
	    {"/metrics", ALLOWED_HOST ":9999", "1.1", 421},
	    {"/metrics", "proxy.example", "1.1", 421},
	    {"/metrics", "evil.example", "1.0", 421},
	    /* no Host at all, or an empty one */
	    {"/metrics", NULL, "1.1", 400},
	    {"/metrics", NULL, "1.0", 400},
	    {"/", "", "1.1", 400},
	    /* this server's names, any case, with or without the port, and --allow-host */
	    {"/metrics", "localhost", "1.1", 200},
	    {"/metrics", "LOCALHOST:" IT_PORT_STR, "1.1", 200},
	    {"/healthz", "127.0.0.1", "1.1", 200},
	    {"/healthz", "[::1]:" IT_PORT_STR, "1.1", 200},
	    {"/metrics", ALLOWED_HOST, "1.1", 200},
	    {"/metrics", "Dash.Example:" IT_PORT_STR, "1.1", 200},
	    {"/metrics", ALLOWED_HOST_PORT, "1.1", 200},
	    {"/metrics", "localhost", "1.0", 200},
	};
	char req[512], what[160], head[4096];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char hostline[160] = "";

		if (cases[i].host)
			snprintf(hostline, sizeof(hostline), "Host: %s\r\n", cases[i].host);
		snprintf(req, sizeof(req), "GET %s HTTP/%s\r\n%sConnection: close\r\n\r\n",
			 cases[i].path, cases[i].version, hostline);
		snprintf(what, sizeof(what), "GET %s HTTP/%s with %s%s", cases[i].path,
			 cases[i].version, cases[i].host ? "Host: " : "no Host",
			 cases[i].host ? cases[i].host : "");
		expect_raw_status(what, req, cases[i].want, head, sizeof(head));
		if (cases[i].want != 200) {
			d[LIM_HOST]++;
			LM_IT_EXPECT(!strstr(head, "lifemon_") && !strstr(head, "WebSocket("),
				     "%s: the refusal leaked the page or the metrics", what);
		} else if (!strcmp(cases[i].path, "/metrics")) {
			LM_IT_EXPECT(strstr(head, "lifemon_") != NULL, "%s: no metrics", what);
		}
	}
	/* two Host headers, one of them good: never served */
	snprintf(req, sizeof(req),
		 "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:" IT_PORT_STR
		 "\r\nHost: evil.example\r\nConnection: close\r\n\r\n");
	expect_raw_status("two Host headers", req, 421, head, sizeof(head));
	d[LIM_HOST]++;

	/* upgrades: the same rule, before path, token and Origin */
	expect_upgrade("upgrade with Host evil.example", "evil.example", NULL, NULL, NULL, 421);
	expect_upgrade("upgrade with Host evil.example:port", "evil.example:" IT_PORT_STR, NULL,
		       NULL, NULL, 421);
	expect_upgrade("upgrade with Host evil.example and an allowed Origin", "evil.example",
		       NULL, NULL, "Origin: http://127.0.0.1:" IT_PORT_STR "\r\n", 421);
	expect_upgrade("upgrade without Host", "", NULL, NULL, NULL, 400);
	d[LIM_HOST] += 4;
	expect_upgrade("upgrade with Host localhost:port", "localhost:" IT_PORT_STR, NULL, NULL,
		       NULL, 101);
	expect_upgrade("upgrade with --allow-host " ALLOWED_HOST, ALLOWED_HOST, NULL, NULL, NULL,
		       101);
	expect_upgrade("upgrade with --allow-host " ALLOWED_HOST_PORT, ALLOWED_HOST_PORT, NULL,
		       NULL, NULL, 101);
	require_alive("host");
}

/* --- 6c. handshake headers: any case works, a malformed one gets an HTTP error --- */

static void phase_upgrade(double *d)
{
	static const struct {
		const char *what;
		const char *req_tail; /* after the request line and Host */
		int want;
		int lim; /* the limit it counts under */
	} raw[] = {
	    {"no Sec-WebSocket-Key",
	     "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n", 400,
	     LIM_UPGRADE},
	    {"a short Sec-WebSocket-Key",
	     "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: abc\r\n"
	     "Sec-WebSocket-Version: 13\r\n",
	     400, LIM_UPGRADE},
	    {"Sec-WebSocket-Version: 8",
	     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n",
	     426, LIM_UPGRADE},
	    {"no Sec-WebSocket-Version",
	     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
	     426, LIM_UPGRADE},
	    {"Upgrade: h2c",
	     "Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n"
	     "HTTP2-Settings: AAMAAABkAAQAAP__\r\n",
	     400, LIM_UPGRADE},
	    /* lws itself answers unknown protocols and hangs up before lifemon sees them */
	    {"Upgrade: foo",
	     "Upgrade: foo\r\nConnection: Upgrade\r\n"
	     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
	     403, LIM_INCOMPLETE},
	};
	char req[512], head[1024];
	size_t i;

	/* RFC 7230: Upgrade and Connection tokens are case-insensitive; events must flow */
	{
		struct lm_wsc_opts o1 = {.port = IT_PORT,
					 .path = "/ws",
					 .upgrade = "WebSocket",
					 .connection = "keep-alive, Upgrade",
					 .timeout_ms = 5000};
		struct lm_wsc_opts o2 = {.port = IT_PORT,
					 .path = "/ws",
					 .upgrade = "WEBSOCKET",
					 .connection = "upgrade",
					 .timeout_ms = 5000};

		good_client(&o1, "Upgrade: WebSocket, Connection: keep-alive, Upgrade");
		good_client(&o2, "Upgrade: WEBSOCKET, Connection: upgrade");
	}
	expect_upgrade("Connection: UPGRADE", NULL, NULL, "UPGRADE", NULL, 101);
	expect_upgrade("Connection: Upgrade, keep-alive", NULL, "websocket", "Upgrade, keep-alive",
		       NULL, 101);
	expect_upgrade("Connection: keep-alive,upgrade", NULL, "webSocket", "keep-alive,upgrade",
		       NULL, 101);
	expect_upgrade("Sec-WebSocket-Protocol: chat, lifemon", NULL, NULL, NULL,
		       "Sec-WebSocket-Protocol: chat, lifemon\r\n", 101);

	/* malformed: an HTTP error, never a silent hang-up */
	expect_upgrade("Connection: keep-alive", NULL, NULL, "keep-alive", NULL, 400);
	expect_upgrade("Connection: Upgrades", NULL, NULL, "Upgrades", NULL, 400);
	expect_upgrade("Connection: u", NULL, NULL, "u", NULL, 400);
	expect_upgrade("Connection: foo=1, Upgrade", NULL, NULL, "foo=1, Upgrade", NULL, 400);
	expect_upgrade("Sec-WebSocket-Protocol: chat", NULL, NULL, NULL,
		       "Sec-WebSocket-Protocol: chat\r\n", 400);
	expect_upgrade("Sec-WebSocket-Protocol: LIFEMON", NULL, NULL, NULL,
		       "Sec-WebSocket-Protocol: LIFEMON\r\n", 400);
	d[LIM_UPGRADE] += 6;
	for (i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
		snprintf(req, sizeof(req), "GET /ws HTTP/1.1\r\n" GOOD_HOST "%s\r\n",
			 raw[i].req_tail);
		expect_raw_status(raw[i].what, req, raw[i].want, head, sizeof(head));
		d[raw[i].lim]++;
	}
	require_alive("upgrade");
}

/* --- 7. --max-clients --- */

static unsigned int phase_max_clients(double base_clients, double *d)
{
	struct lm_wsc *cl[MAX_CLIENTS + 1] = {NULL};
	unsigned int refused = 0;
	double g;
	int n = (int)base_clients, i, err, st;

	for (i = 0; n < MAX_CLIENTS; i++, n++) {
		err = ws_open(IT_PORT, "/ws", NULL, NULL, &cl[i], &st);
		LM_IT_ASSERT(!err, "client %d of %d refused: %s, status %d", n + 1, MAX_CLIENTS,
			     strerror(-err), st);
	}
	g = wait_ws_clients(IT_PORT, "/metrics", MAX_CLIENTS, 5000);
	LM_IT_EXPECT(g == MAX_CLIENTS, "lifemon_ws_clients is %g with %d clients", g, MAX_CLIENTS);
	for (int k = 0; k < 2; k++) {
		struct lm_wsc *extra = NULL;

		err = ws_open(IT_PORT, "/ws", NULL, NULL, &extra, &st);
		LM_IT_EXPECT(err && st == 503,
			     "client %d past --max-clients %d: %s, status %d "
			     "(want 503)",
			     MAX_CLIENTS + 1 + k, MAX_CLIENTS, err ? strerror(-err) : "accepted",
			     st);
		refused += st == 503;
		d[LIM_CLIENTS]++;
		lm_wsc_close(extra);
	}
	/* a freed slot is usable again */
	lm_wsc_send_close(cl[0], 1000);
	lm_wsc_close(cl[0]);
	cl[0] = NULL;
	g = wait_ws_clients(IT_PORT, "/metrics", MAX_CLIENTS - 1, 5000);
	LM_IT_EXPECT(g == MAX_CLIENTS - 1, "lifemon_ws_clients is %g after one client left", g);
	err = ws_open(IT_PORT, "/ws", NULL, NULL, &cl[0], &st);
	LM_IT_EXPECT(!err, "client refused after a slot was freed: %s, status %d", strerror(-err),
		     st);
	for (i = 0; i <= MAX_CLIENTS; i++) {
		if (cl[i])
			lm_wsc_send_close(cl[i], 1000);
		lm_wsc_close(cl[i]);
	}
	g = wait_ws_clients(IT_PORT, "/metrics", base_clients, 5000);
	LM_IT_EXPECT(g == base_clients, "lifemon_ws_clients is %g after the clients left (want %g)",
		     g, base_clients);
	require_alive("max-clients");
	return refused;
}

/* --- 8. tokens --- */

struct tok_case {
	const char *what;
	const char *path_suffix; /* appended to the route: "" or "?token=..." */
	const char *headers;
	int want; /* 401, or 200 (HTTP) / 101 (upgrade) */
};

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		lm_it_fatal("out of memory");
	va_end(ap);
	return s;
}

static void phase_token(double *db)
{
	static const char *const routes[] = {"/", "/healthz", "/metrics"};
	char last[TOKEN_LEN + 1], shorter[TOKEN_LEN], enc[3 * TOKEN_LEN + 1];
	struct tok_case cases[24];
	size_t nc = 0, i, r;
	char path[512];
	int err, st;

	memcpy(last, token, sizeof(last));
	last[TOKEN_LEN - 1] = last[TOKEN_LEN - 1] == 'A' ? 'B' : 'A';
	memcpy(shorter, token, TOKEN_LEN - 1);
	shorter[TOKEN_LEN - 1] = '\0';
	for (i = 0; i < TOKEN_LEN; i++)
		snprintf(enc + 3 * i, 4, "%%%02X", (unsigned char)token[i]);

#define CASE(w, s, h, code) cases[nc++] = (struct tok_case){w, s, h, code}
	CASE("no token", "", NULL, 401);
	CASE("wrong bearer", "", "Authorization: Bearer wrongwrongwrongwrongwrong12345\r\n", 401);
	CASE("bearer differing in the last byte", "",
	     xasprintf("Authorization: Bearer %s\r\n", last), 401);
	CASE("bearer one byte short", "", xasprintf("Authorization: Bearer %s\r\n", shorter), 401);
	CASE("bearer one byte long", "", xasprintf("Authorization: Bearer %sx\r\n", token), 401);
	CASE("empty bearer", "", "Authorization: Bearer \r\n", 401);
	CASE("Basic scheme", "", xasprintf("Authorization: Basic %s\r\n", token), 401);
	CASE("bare token header", "", xasprintf("Authorization: %s\r\n", token), 401);
	CASE("query differing in the last byte", xasprintf("?token=%s", last), NULL, 401);
	CASE("query one byte short", xasprintf("?token=%s", shorter), NULL, 401);
	CASE("query one byte long", xasprintf("?token=%s0", token), NULL, 401);
	CASE("empty query token", "?token=", NULL, 401);
	CASE("other parameter", xasprintf("?tok=%s", token), NULL, 401);
	CASE("prefixed parameter", xasprintf("?xtoken=%s", token), NULL, 401);
	CASE("right bearer", "", xasprintf("Authorization: Bearer %s\r\n", token), 200);
	CASE("right query", xasprintf("?token=%s", token), NULL, 200);
	CASE("right query after a filter", xasprintf("?type=exec&token=%s", token), NULL, 200);
	CASE("right query, percent-encoded", xasprintf("?token=%s", enc), NULL, 200);
#undef CASE
	/* each refused case on the three routes and on the upgrade; the foreign Origin below */
	for (i = 0; i < nc; i++)
		db[LIM_TOKEN] += cases[i].want == 401 ? 4 : 0;
	db[LIM_ORIGIN] += 1;

	for (r = 0; r < sizeof(routes) / sizeof(routes[0]); r++) {
		for (i = 0; i < nc; i++) {
			char *body = NULL;

			snprintf(path, sizeof(path), "%s%s", routes[r], cases[i].path_suffix);
			st = 0;
			err = lm_wsc_http_request(IT_PORT_TOKEN, "GET", path, cases[i].headers,
						  5000, &st, &body, NULL);
			free(body);
			LM_IT_EXPECT(!err && st == cases[i].want,
				     "GET %s, %s: %s, status %d (want %d)", routes[r],
				     cases[i].what, err ? strerror(-err) : "ok", st, cases[i].want);
			b_refused += !err && st == 401;
		}
	}
	for (i = 0; i < nc; i++) {
		struct lm_wsc *c = NULL;
		int want = cases[i].want == 200 ? 101 : cases[i].want;

		snprintf(path, sizeof(path), "/ws%s", cases[i].path_suffix);
		err = ws_open(IT_PORT_TOKEN, path, NULL, cases[i].headers, &c, &st);
		LM_IT_EXPECT(st == want, "upgrade, %s: %s, status %d (want %d)", cases[i].what,
			     err ? strerror(-err) : "accepted", st, want);
		b_refused += st == 401;
		if (c)
			lm_wsc_send_close(c, 1000);
		lm_wsc_close(c);
	}
	/* the token does not excuse a foreign Origin */
	{
		struct lm_wsc *c = NULL;
		char *h = xasprintf("Authorization: Bearer %s\r\n", token);

		err = ws_open(IT_PORT_TOKEN, "/ws", "http://evil.example", h, &c, &st);
		LM_IT_EXPECT(err && st == 403, "token + foreign Origin: %s, status %d (want 403)",
			     err ? strerror(-err) : "accepted", st);
		lm_wsc_close(c);
		free(h);
	}
	/* the strings from xasprintf are left to the process exit: this runs once */
	require_alive("token");
}

/* A token from the base64 alphabet ('+', '/', '=') in the URL, percent-encoded as it must be. */
static void phase_b64_token(void)
{
	char listen[32], enc[128], path[160], hp[192], *body = NULL;
	char *argv[] = {(char *)lm_it_bin(), "--listen", listen, "--token-file", b64_path, NULL};
	int64_t deadline;
	struct lm_wsc *c = NULL;
	const char *s;
	size_t o = 0;
	int err, st = 0;

	for (s = B64_TOKEN; *s; s++) {
		if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9'))
			enc[o++] = *s;
		else
			o +=
			    (size_t)snprintf(enc + o, sizeof(enc) - o, "%%%02X", (unsigned char)*s);
	}
	enc[o] = '\0';
	snprintf(hp, sizeof(hp), "Authorization: Bearer %s\r\n", B64_TOKEN);
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", IT_PORT_B64);
	err = write_token_file(b64_path, sizeof(b64_path), B64_TOKEN);
	LM_IT_ASSERT(!err, "token file: %s", strerror(-err));
	err = lm_it_proc_spawn(argv, false, &lm_c);
	LM_IT_ASSERT(!err, "lifemon C: %s", strerror(-err));
	atomic_store(&smp.pid[2], lm_it_proc_pid(lm_c));
	/* healthy, asked with the token in the header */
	deadline = lm_it_now_ms() + LM_IT_HEALTHY_MS;
	do {
		free(body);
		body = NULL;
		err =
		    lm_wsc_http_request(IT_PORT_B64, "GET", "/healthz", hp, 1000, &st, &body, NULL);
		if (!err && st == 200)
			break;
		if (!still_alive(lm_c, "C"))
			lm_it_fatal("lifemon C (base64 token) exited at start");
		usleep(20 * 1000);
	} while (lm_it_now_ms() < deadline);
	free(body);
	body = NULL;
	LM_IT_ASSERT(!err && st == 200, "lifemon C: /healthz with the bearer header: %s, status %d",
		     err ? strerror(-err) : "ok", st);
	snprintf(path, sizeof(path), "/healthz?token=%s", enc);
	err = lm_wsc_http_get(IT_PORT_B64, path, 5000, &st, &body, NULL);
	free(body);
	LM_IT_EXPECT(!err && st == 200,
		     "base64 token %s, percent-encoded in the URL "
		     "(GET %s): %s, status %d (want 200)",
		     B64_TOKEN, path, err ? strerror(-err) : "ok", st);
	snprintf(path, sizeof(path), "/ws?token=%s", enc);
	err = ws_open(IT_PORT_B64, path, NULL, NULL, &c, &st);
	LM_IT_EXPECT(!err, "base64 token, percent-encoded in the /ws URL: %s, status %d (want 101)",
		     strerror(-err), st);
	if (c)
		lm_wsc_send_close(c, 1000);
	lm_wsc_close(c);
}

/* --- 9. good clients at the end --- */

static void good_client(struct lm_wsc_opts *o, const char *who)
{
	char *argv[] = {"/bin/true", NULL};
	struct lm_it_coll *c = NULL;
	int err, status;
	pid_t pid;

	err = lm_it_coll_open_opts(o, &c);
	if (err) {
		lm_it_fail("%s: a well-behaved client cannot connect: %s", who, strerror(-err));
		return;
	}
	err = lm_it_spawn(argv, -1, -1, &pid);
	LM_IT_ASSERT(!err, "spawn /bin/true: %s", strerror(-err));
	LM_IT_EXPECT(lm_it_coll_wait_event(c, "EXEC", pid, LM_IT_EVENT_MS, NULL),
		     "%s: no EXEC of /bin/true (pid %d)", who, pid);
	LM_IT_EXPECT(lm_it_coll_wait_event(c, "EXIT", pid, LM_IT_EVENT_MS, NULL),
		     "%s: no EXIT of /bin/true (pid %d)", who, pid);
	lm_it_reap(pid, 5000, &status);
	lm_it_coll_check(c);
	lm_it_coll_close(c);
}

/*
 * The first reader stays connected through everything on a thread of its own, so that it
 * keeps up however busy the host is; lifemon must never disturb it.
 */
static struct {
	struct lm_it_acct *acct; /* the reader thread's while it runs, then main's */
	pthread_t thr;
	bool running;
	atomic_bool stop;
	atomic_bool dead;
} early;

static void *early_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&early.stop)) {
		if (lm_it_acct_pump(early.acct, 50) < 0) {
			atomic_store(&early.dead, true);
			break;
		}
	}
	return NULL;
}

static void early_join(void)
{
	if (!early.running)
		return;
	atomic_store(&early.stop, true);
	pthread_join(early.thr, NULL);
	early.running = false;
}

static void early_cleanup(void *arg)
{
	(void)arg;
	early_join();
	lm_it_acct_close(early.acct);
	early.acct = NULL;
}

/* After early_join: runs /bin/true and reads until the first reader has its EXIT. */
static bool early_sees_true(int timeout_ms)
{
	int64_t deadline = lm_it_now_ms() + timeout_ms;
	char *argv[] = {"/bin/true", NULL};
	const struct lm_it_acct_rec *recs;
	size_t n, i, from;
	int st, err;
	pid_t pid;

	recs = lm_it_acct_recs(early.acct, &from);
	err = lm_it_spawn(argv, -1, -1, &pid);
	LM_IT_ASSERT(!err, "spawn /bin/true: %s", strerror(-err));
	lm_it_reap(pid, 5000, &st);
	while (lm_it_now_ms() < deadline) {
		if (lm_it_acct_pump(early.acct, 100) < 0)
			return false;
		recs = lm_it_acct_recs(early.acct, &n);
		for (i = from; i < n; i++)
			if (recs[i].type == 'X' && recs[i].pid == pid)
				return true;
	}
	return false;
}

static void check_stderr(struct lm_it_proc *p, const char *who)
{
	char *text = NULL;

	if (lm_it_proc_stderr(p, &text, NULL))
		return;
	LM_IT_EXPECT(!strstr(text, "AddressSanitizer") && !strstr(text, "runtime error:") &&
			 !strstr(text, "ThreadSanitizer"),
		     "lifemon %s reported a sanitizer error (stderr below)", who);
	free(text);
}

int main(int argc, char **argv)
{
	const char *extra_a[] = {"--max-clients",
				 "8",
				 "--handshake-timeout-s",
				 "2",
				 "--idle-timeout-s",
				 "3",
				 "--allow-origin",
				 ALLOWED_EXTRA,
				 "--allow-origin",
				 ALLOWED_PORT80,
				 "--allow-host",
				 ALLOWED_HOST,
				 "--allow-host",
				 ALLOWED_HOST_PORT,
				 NULL};
	const char *extra_b[] = {"--token-file",
				 token_path,
				 "--max-clients",
				 "8",
				 "--handshake-timeout-s",
				 "2",
				 "--idle-timeout-s",
				 "3",
				 NULL};
	static const char alnum[] =
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	struct counters a0, a1, b0, b1;
	unsigned int origin_refused, clients_refused;
	struct abuse ab = {0};
	char health_b[128], auth_b[128];
	uint8_t rnd[TOKEN_LEN];
	long limit_kb;
	int64_t elapsed;
	int err, st, i;

	lm_it_init("it_hostile", argc, argv, 170);
	lm_it_require_env();
	lm_it_on_cleanup(files_cleanup, NULL);

	fill_random(rnd, sizeof(rnd));
	for (i = 0; i < TOKEN_LEN; i++)
		token[i] = alnum[rnd[i] % (sizeof(alnum) - 1)];
	token[TOKEN_LEN] = '\0';
	err = write_token_file(token_path, sizeof(token_path), token);
	LM_IT_ASSERT(!err, "token file: %s", strerror(-err));
	snprintf(health_b, sizeof(health_b), "/healthz?token=%s", token);
	snprintf(metrics_b_path, sizeof(metrics_b_path), "/metrics?token=%s", token);
	snprintf(auth_b, sizeof(auth_b), "Authorization: Bearer %s\r\n", token);

	err = lm_it_lifemon_start(IT_PORT, extra_a, false, &lm_a);
	LM_IT_ASSERT(!err, "lifemon A did not start: %s", strerror(-err));
	err = lm_it_lifemon_start_path(IT_PORT_TOKEN, extra_b, false, health_b, &lm_b);
	LM_IT_ASSERT(!err, "lifemon B (--token-file) did not start: %s", strerror(-err));

	atomic_store(&smp.pid[0], lm_it_proc_pid(lm_a));
	atomic_store(&smp.pid[1], lm_it_proc_pid(lm_b));
	if (pthread_create(&smp.thr, NULL, sampler_main, NULL))
		lm_it_fatal("pthread_create failed");
	smp.running = true;
	lm_it_on_cleanup(sampler_stop, NULL);

	/* a reader that stays connected through all of it */
	err = lm_it_acct_open(IT_PORT, false, &early.acct);
	LM_IT_ASSERT(!err, "first client: %s", strerror(-err));
	lm_it_on_cleanup(early_cleanup, NULL);
	if (pthread_create(&early.thr, NULL, early_main, NULL))
		lm_it_fatal("pthread_create failed");
	early.running = true;

	LM_IT_ASSERT(!counters_read(IT_PORT, "/metrics", &a0), "GET /metrics on A failed");
	LM_IT_ASSERT(!counters_read(IT_PORT_TOKEN, metrics_b_path, &b0),
		     "GET /metrics?token= on B failed");
	for (i = 0; i < LIM_CNT; i++) {
		LM_IT_EXPECT(a0.has[i] && b0.has[i], "/metrics has no lifemon_limit_hits_total{limit=\"%s\"}",
			     lim_name[i]);
	}
	LM_IT_EXPECT(wait_ws_clients(IT_PORT, "/metrics", 1, 5000) == 1,
		     "lifemon_ws_clients is not 1 with one client");

	books_init(&books_a, &a0);
	books_b.path = metrics_b_path;
	books_init(&books_b, &b0);

#define PHASE(name, call_a, call_b)                                                        \
	do {                                                                               \
		double da[LIM_CNT] = {0}, db[LIM_CNT] = {0};                               \
                                                                                           \
		(void)db;                                                                  \
		lm_it_note("phase: %s", name);                                             \
		call_a;                                                                    \
		expect_books(&books_a, da, name);                                          \
		call_b;                                                                    \
	} while (0)

	PHASE("garbage and TLS", phase_garbage(da), (void)0);
	PHASE("oversized headers", phase_headers(da), (void)0);
	PHASE("paths", phase_paths(da, db), expect_books(&books_b, db, "paths"));
	PHASE("abusive frames", phase_frames(&ab, da), (void)0);
	PHASE("idle and half-open floods", phase_floods(da), (void)0);
	/* every bad client is gone: only the first reader is left */
	LM_IT_EXPECT(wait_ws_clients(IT_PORT, "/metrics", 1, 5000) == 1,
		     "lifemon_ws_clients does not return to 1 after the bad clients");
	PHASE("origins", origin_refused = phase_origin(da), (void)0);
	PHASE("host", phase_host(da), (void)0);
	PHASE("handshake headers", phase_upgrade(da), (void)0);
	LM_IT_EXPECT(wait_ws_clients(IT_PORT, "/metrics", 1, 5000) == 1,
		     "lifemon_ws_clients does not return to 1 after the origin, host and "
		     "handshake phases");
	PHASE("max clients", clients_refused = phase_max_clients(1, da), (void)0);
	PHASE("tokens", (void)0, (phase_token(db), expect_books(&books_b, db, "tokens")));
	phase_b64_token();
#undef PHASE

	/* nothing moved after the phases were judged, on either instance */
	{
		double none[LIM_CNT] = {0};

		usleep(500 * 1000);
		expect_books(&books_a, none, "after all phases");
		expect_books(&books_b, none, "after all phases");
	}
	LM_IT_ASSERT(!counters_read(IT_PORT, "/metrics", &a1), "GET /metrics on A failed");
	LM_IT_ASSERT(!counters_read(IT_PORT_TOKEN, metrics_b_path, &b1),
		     "GET /metrics on B failed");
	LM_IT_EXPECT(a1.lim[LIM_TOKEN] == a0.lim[LIM_TOKEN],
		     "A (no --token-file): token limit hits rose by %g",
		     a1.lim[LIM_TOKEN] - a0.lim[LIM_TOKEN]);
	LM_IT_EXPECT(origin_refused > 0 && clients_refused > 0 && ab.closed_1008 > 0,
		     "nothing was refused (origin %u, clients %u, 1008 closes %u)", origin_refused,
		     clients_refused, ab.closed_1008);
	LM_IT_EXPECT(b1.lim[LIM_TOKEN] - b0.lim[LIM_TOKEN] == b_refused,
		     "B: token limit hits rose by %g, %u requests got 401",
		     b1.lim[LIM_TOKEN] - b0.lim[LIM_TOKEN], b_refused);
	LM_IT_EXPECT(a1.ws_clients == 1, "A: lifemon_ws_clients is %g, want 1 (the first reader)",
		     a1.ws_clients);
	LM_IT_EXPECT(b1.ws_clients == 0, "B: lifemon_ws_clients is %g, want 0", b1.ws_clients);
	lm_it_note("refusals counted on A: %.0f, on B: %.0f",
		   a1.lim[LIM_CLIENTS] + a1.lim[LIM_MESSAGES] + a1.lim[LIM_TOKEN] +
		       a1.lim[LIM_ORIGIN] + a1.lim[LIM_PATH] + a1.lim[LIM_INCOMPLETE] +
		       a1.lim[LIM_HOST] + a1.lim[LIM_UPGRADE] -
		       (a0.lim[LIM_CLIENTS] + a0.lim[LIM_MESSAGES] + a0.lim[LIM_TOKEN] +
			a0.lim[LIM_ORIGIN] + a0.lim[LIM_PATH] + a0.lim[LIM_INCOMPLETE] +
			a0.lim[LIM_HOST] + a0.lim[LIM_UPGRADE]),
		   b1.lim[LIM_TOKEN] + b1.lim[LIM_ORIGIN] + b1.lim[LIM_INCOMPLETE] -
		       (b0.lim[LIM_TOKEN] + b0.lim[LIM_ORIGIN] + b0.lim[LIM_INCOMPLETE]));

	/* the reader that watched it all was never disturbed */
	early_join();
	{
		struct lm_it_acct_stats est;

		lm_it_acct_get_stats(early.acct, &est);
		LM_IT_EXPECT(!est.dead && !est.close_code,
			     "the first client was disconnected (close code %u %s, error %d)",
			     est.close_code, est.close_reason, est.dead);
		LM_IT_EXPECT(early_sees_true(LM_IT_EVENT_MS),
			     "the first client no longer receives events");
		lm_it_acct_report(early.acct, "first client");
		lm_it_note("first client: %llu events in %llu messages",
			   (unsigned long long)est.events, (unsigned long long)est.messages);
	}

	/* well-behaved clients, fresh */
	{
		struct lm_wsc_opts oa = {.port = IT_PORT, .path = "/ws", .timeout_ms = 5000};
		struct lm_wsc_opts ob = {
		    .port = IT_PORT_TOKEN, .path = "/ws", .headers = auth_b, .timeout_ms = 5000};
		struct lm_wsc_opts oq = {.port = IT_PORT_TOKEN, .timeout_ms = 5000};
		char qpath[128];

		snprintf(qpath, sizeof(qpath), "/ws?token=%s", token);
		oq.path = qpath;
		good_client(&oa, "A");
		good_client(&ob, "B (bearer header)");
		good_client(&oq, "B (token in the URL)");
	}

	sampler_stop(NULL);
	limit_kb = is_sanitized(lm_it_proc_pid(lm_a)) ? RSS_LIMIT_SANITIZED_KB : RSS_LIMIT_KB;
	lm_it_note("peak VmRSS: A %ld KiB, B %ld KiB, C %ld KiB over %lu samples (limit %ld KiB)",
		   atomic_load(&smp.max_kb[0]), atomic_load(&smp.max_kb[1]),
		   atomic_load(&smp.max_kb[2]), atomic_load(&smp.samples), limit_kb);
	LM_IT_EXPECT(atomic_load(&smp.samples) > 100, "only %lu RSS samples",
		     atomic_load(&smp.samples));
	for (i = 0; i < SAMPLE_PIDS; i++)
		LM_IT_EXPECT(atomic_load(&smp.max_kb[i]) < limit_kb,
			     "lifemon %c peaked at %ld KiB VmRSS (limit %ld KiB)", 'A' + i,
			     atomic_load(&smp.max_kb[i]), limit_kb);

	require_alive("the end");
	early_cleanup(NULL);
	check_stderr(lm_a, "A");
	check_stderr(lm_b, "B");
	err = lm_it_proc_stop(lm_a, SIGTERM, LM_IT_STOP_MS, &st, &elapsed);
	LM_IT_EXPECT(!err && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		     "A did not exit 0 within %d ms of SIGTERM", LM_IT_STOP_MS);
	err = lm_it_proc_stop(lm_b, SIGTERM, LM_IT_STOP_MS, &st, &elapsed);
	LM_IT_EXPECT(!err && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		     "B did not exit 0 within %d ms of SIGTERM", LM_IT_STOP_MS);
	if (lm_c) {
		err = lm_it_proc_stop(lm_c, SIGTERM, LM_IT_STOP_MS, &st, &elapsed);
		LM_IT_EXPECT(!err && WIFEXITED(st) && WEXITSTATUS(st) == 0,
			     "C did not exit 0 within %d ms of SIGTERM", LM_IT_STOP_MS);
	}
	return lm_it_finish();
}
