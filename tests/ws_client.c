// SPDX-License-Identifier: GPL-2.0
/*
 * Test-only RFC 6455 client and HTTP GET helper (see ws_client.h). Runs on the calling test
 * thread; owns one non-blocking socket per client, its receive buffer and the message being
 * reassembled. Every wait is a poll(2) bounded by a CLOCK_MONOTONIC deadline.
 */
#include "tests/ws_client.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/evp.h>

#define WSC_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WSC_HDR_MAX 16384 /* cap on a response header block */
#define WSC_READ_CHUNK 65536
#define WSC_FRAME_HDR_MAX 14 /* 2 + 8 length bytes + 4 mask bytes */

struct lm_wsc {
	int fd;
	uint8_t *in; /* received bytes not yet parsed into frames */
	size_t in_len;
	size_t in_cap;
	size_t in_max; /* in_cap never grows past this: one maximal frame plus a read */
	uint8_t *msg;  /* message being reassembled; returned to the caller when done */
	size_t msg_len;
	size_t msg_cap;
	size_t msg_max;	 /* the per-message cap from lm_wsc_opts */
	int msg_opcode;	 /* opcode of the message in progress, -1 when none */
	bool msg_done;	 /* msg was handed out: reset it on the next recv */
	bool close_rcvd; /* a close frame arrived (reported once) */
	bool close_reported;
	bool close_sent;
	uint16_t close_code;
	uint64_t pongs; /* pong frames received (lm_wsc_recv skips them) */
	char *hello;	/* lifemon's first message, taken by lm_wsc_connect; NUL-terminated */
	char err[256];
};

static int64_t wsc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wsc_left_ms(int64_t deadline_ms)
{
	int64_t left = deadline_ms - wsc_now_ms();

	if (left <= 0)
		return 0;
	return left > 60000 ? 60000 : (int)left;
}

static void wsc_seterr(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void wsc_seterr(char *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, 256, fmt, ap);
	va_end(ap);
}

/* Waits for `events` on fd until the deadline. Returns 0, -ETIMEDOUT or -errno. */
static int wsc_wait_fd(int fd, short events, int64_t deadline_ms)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	int n;

	for (;;) {
		int left = wsc_left_ms(deadline_ms);

		if (left == 0)
			return -ETIMEDOUT;
		n = poll(&pfd, 1, left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

static int wsc_tcp_connect(uint16_t port, int64_t deadline_ms, int *fd_out)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	socklen_t slen = sizeof(int);
	int fd = -1, err = 0, soerr = 0, one = 1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno != EINPROGRESS) {
			err = -errno;
			goto out;
		}
		err = wsc_wait_fd(fd, POLLOUT, deadline_ms);
		if (err)
			goto out;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) < 0) {
			err = -errno;
			goto out;
		}
		if (soerr) {
			err = -soerr;
			goto out;
		}
	}
	*fd_out = fd;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	return err;
}

static int wsc_write_all(int fd, const void *buf, size_t len, int64_t deadline_ms)
{
	const uint8_t *p = buf;
	int err;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			return -errno;
		err = wsc_wait_fd(fd, POLLOUT, deadline_ms);
		if (err)
			return err;
	}
	return 0;
}

/*
 * Reads once into buf. Returns bytes read (>0), 0 on EOF, -ETIMEDOUT or -errno.
 */
static ssize_t wsc_read_some(int fd, void *buf, size_t cap, int64_t deadline_ms)
{
	for (;;) {
		ssize_t n = recv(fd, buf, cap, 0);
		int err;

		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		err = wsc_wait_fd(fd, POLLIN, deadline_ms);
		if (err)
			return err;
	}
}

static int wsc_random(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = getrandom(p, len, 0);

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

/* Returns the offset just past "\r\n\r\n" in buf, or 0 if the header block is incomplete. */
static size_t wsc_header_end(const char *buf, size_t len)
{
	size_t i;

	for (i = 3; i < len; i++)
		if (buf[i - 3] == '\r' && buf[i - 2] == '\n' && buf[i - 1] == '\r' &&
		    buf[i] == '\n')
			return i + 1;
	return 0;
}

/*
 * Finds header `name` in a NUL-terminated header block (starting after the status line) and
 * copies its trimmed value. Returns true if found.
 */
static bool wsc_header_get(const char *hdrs, const char *name, char *val, size_t cap)
{
	size_t nlen = strlen(name);
	const char *line = strstr(hdrs, "\r\n");

	while (line && line[2] != '\r' && line[2] != '\0') {
		const char *start = line + 2;
		const char *end = strstr(start, "\r\n");
		size_t vlen;

		if (!end)
			return false;
		if ((size_t)(end - start) > nlen && strncasecmp(start, name, nlen) == 0 &&
		    start[nlen] == ':') {
			const char *v = start + nlen + 1;

			while (v < end && (*v == ' ' || *v == '\t'))
				v++;
			vlen = (size_t)(end - v);
			while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
				vlen--;
			if (vlen >= cap)
				vlen = cap - 1;
			memcpy(val, v, vlen);
			val[vlen] = '\0';
			return true;
		}
		line = end;
	}
	return false;
}

/* True if the comma-separated header value holds `token` (case-insensitive). */
static bool wsc_has_token(const char *val, const char *token)
{
	size_t tlen = strlen(token);
	const char *p = val;

	while (*p) {
		const char *end;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		end = p;
		while (*end && *end != ',')
			end++;
		while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if ((size_t)(end - p) == tlen && strncasecmp(p, token, tlen) == 0)
			return true;
		while (*end && *end != ',')
			end++;
		p = end;
	}
	return false;
}

/* Parses "HTTP/1.x NNN ...". Returns the status or -EPROTO. */
static int wsc_parse_status(const char *buf)
{
	int minor, status, n = 0;

	if (sscanf(buf, "HTTP/1.%d %3d%n", &minor, &status, &n) != 2 || n != 12)
		return -EPROTO;
	if (status < 100 || status > 599)
		return -EPROTO;
	return status;
}

static int wsc_expected_accept(const char *key, char *out, size_t cap)
{
	char cat[128];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int n;

	n = snprintf(cat, sizeof(cat), "%s%s", key, WSC_GUID);
	if (n < 0 || (size_t)n >= sizeof(cat))
		return -EINVAL;
	if (!EVP_Digest(cat, (size_t)n, md, &mdlen, EVP_sha1(), NULL) || mdlen != 20)
		return -EIO;
	if (cap < 29)
		return -ENOSPC;
	EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
	return 0;
}

static int wsc_in_reserve(struct lm_wsc *c, size_t extra)
{
	size_t want = c->in_len + extra, cap = c->in_cap ? c->in_cap : 4096;
	uint8_t *p;

	if (want <= c->in_cap)
		return 0;
	if (want > c->in_max)
		return -EMSGSIZE;
	while (cap < want)
		cap *= 2;
	if (cap > c->in_max)
		cap = c->in_max;
	p = realloc(c->in, cap);
	if (!p)
		return -ENOMEM;
	c->in = p;
	c->in_cap = cap;
	return 0;
}

/*
 * True if `proto` (the server's pick) is one of the subprotocols that the extra request
 * header lines `hdrs` offered in a Sec-WebSocket-Protocol header. NULL hdrs offer none.
 */
static bool wsc_protocol_offered(const char *hdrs, const char *proto)
{
	char block[2048], val[1024];
	int n;

	if (!hdrs)
		return false;
	/* wsc_header_get skips a status line: give it a dummy one */
	n = snprintf(block, sizeof(block), "X\r\n%s\r\n", hdrs);
	if (n < 0 || (size_t)n >= sizeof(block))
		return false;
	return wsc_header_get(block, "Sec-WebSocket-Protocol", val, sizeof(val)) &&
	       wsc_has_token(val, proto);
}

/*
 * lifemon starts every stream with one HELLO line: check it is there, alone in its message,
 * and keep it for lm_wsc_hello, so that readers of the stream see only events and notices.
 */
static int wsc_take_hello(struct lm_wsc *c, int timeout_ms)
{
	static const char head[] = "{\"type\":\"HELLO\",";
	const char *msg;
	size_t len;
	int op = lm_wsc_recv(c, timeout_ms, &msg, &len);

	if (op != LM_WSC_OP_TEXT) {
		snprintf(c->err, sizeof(c->err), "no HELLO message first (%d)", op);
		return op < 0 ? op : -EPROTO;
	}
	if (len < sizeof(head) || memcmp(msg, head, sizeof(head) - 1) || msg[len - 1] != '\n' ||
	    memchr(msg, '\n', len - 1)) {
		snprintf(c->err, sizeof(c->err), "first message is not one HELLO line: %.*s",
			 (int)(len < 120 ? len : 120), msg);
		return -EPROTO;
	}
	c->hello = strndup(msg, len);
	return c->hello ? 0 : -ENOMEM;
}

const char *lm_wsc_hello(const struct lm_wsc *c)
{
	return c->hello;
}

int lm_wsc_connect(const struct lm_wsc_opts *o, struct lm_wsc **out, int *http_status)
{
	int64_t deadline = wsc_now_ms() + (o->timeout_ms > 0 ? o->timeout_ms : 5000);
	struct lm_wsc *c = NULL;
	uint8_t rawkey[16];
	char key[32], accept[32], val[256], host[216] = "";
	char *resp = NULL, *req = NULL;
	size_t resp_len = 0, hdr_end = 0, req_cap;
	int err = 0, n, status;

	if (http_status)
		*http_status = 0;
	req_cap =
	    1024 + (o->headers ? strlen(o->headers) : 0) + (o->method ? strlen(o->method) : 0) +
	    (o->upgrade ? strlen(o->upgrade) : 0) + (o->connection ? strlen(o->connection) : 0);
	req = malloc(req_cap);
	if (!req) {
		err = -ENOMEM;
		goto out;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		err = -ENOMEM;
		goto out;
	}
	c->fd = -1;
	c->msg_opcode = -1;
	c->msg_max = o->msg_max_bytes ? o->msg_max_bytes : LM_WSC_MSG_MAX_DEFAULT;
	c->in_max = c->msg_max + WSC_FRAME_HDR_MAX + WSC_READ_CHUNK;
	resp = malloc(WSC_HDR_MAX + 1);
	if (!resp) {
		err = -ENOMEM;
		goto out;
	}
	err = wsc_random(rawkey, sizeof(rawkey));
	if (err)
		goto out;
	EVP_EncodeBlock((unsigned char *)key, rawkey, sizeof(rawkey));
	err = wsc_expected_accept(key, accept, sizeof(accept));
	if (err)
		goto out;
	err = wsc_tcp_connect(o->port, deadline, &c->fd);
	if (err)
		goto out;

	if (!o->host)
		snprintf(host, sizeof(host), "Host: 127.0.0.1:%u\r\n", o->port);
	else if (o->host[0])
		snprintf(host, sizeof(host), "Host: %.200s\r\n", o->host);
	n = snprintf(req, req_cap,
		     "%s %s HTTP/1.1\r\n"
		     "%s"
		     "Upgrade: %s\r\n"
		     "Connection: %s\r\n"
		     "Sec-WebSocket-Key: %s\r\n"
		     "Sec-WebSocket-Version: 13\r\n"
		     "%s%s%s%s"
		     "\r\n",
		     o->method ? o->method : "GET", o->path ? o->path : "/ws", host,
		     o->upgrade ? o->upgrade : "websocket",
		     o->connection ? o->connection : "Upgrade", key, o->origin ? "Origin: " : "",
		     o->origin ? o->origin : "", o->origin ? "\r\n" : "",
		     o->headers ? o->headers : "");
	if (n < 0 || (size_t)n >= req_cap) {
		err = -EINVAL;
		goto out;
	}
	err = wsc_write_all(c->fd, req, (size_t)n, deadline);
	if (err)
		goto out;

	while (!hdr_end) {
		ssize_t r;

		if (resp_len == WSC_HDR_MAX) {
			err = -EPROTO;
			goto out;
		}
		r = wsc_read_some(c->fd, resp + resp_len, WSC_HDR_MAX - resp_len, deadline);
		if (r < 0) {
			err = (int)r;
			goto out;
		}
		if (r == 0) {
			/* The server may answer a refused upgrade with a status and hang up. */
			resp[resp_len] = '\0';
			status = wsc_parse_status(resp);
			if (status > 0 && http_status)
				*http_status = status;
			err = status > 0 && status != 101 ? -EACCES : -ECONNRESET;
			goto out;
		}
		resp_len += (size_t)r;
		hdr_end = wsc_header_end(resp, resp_len);
	}
	resp[resp_len] = '\0';
	status = wsc_parse_status(resp);
	if (status < 0) {
		err = -EPROTO;
		goto out;
	}
	if (http_status)
		*http_status = status;
	if (status != 101) {
		err = -EACCES;
		goto out;
	}
	/* Header lookups must not run into frame bytes that followed the header block. */
	resp[hdr_end - 2] = '\0';
	if (!wsc_header_get(resp, "Upgrade", val, sizeof(val)) || strcasecmp(val, "websocket")) {
		err = -EPROTO;
		goto out;
	}
	if (!wsc_header_get(resp, "Connection", val, sizeof(val)) ||
	    !wsc_has_token(val, "upgrade")) {
		err = -EPROTO;
		goto out;
	}
	if (!wsc_header_get(resp, "Sec-WebSocket-Accept", val, sizeof(val)) ||
	    strcmp(val, accept)) {
		err = -EPROTO;
		goto out;
	}
	/*
	 * We offered no extension, so the server must not pick one; nor a subprotocol unless
	 * o->headers offered some, and then only one of those.
	 */
	if (wsc_header_get(resp, "Sec-WebSocket-Extensions", val, sizeof(val))) {
		err = -EPROTO;
		goto out;
	}
	if (wsc_header_get(resp, "Sec-WebSocket-Protocol", val, sizeof(val)) &&
	    !wsc_protocol_offered(o->headers, val)) {
		err = -EPROTO;
		goto out;
	}
	if (resp_len > hdr_end) {
		err = wsc_in_reserve(c, resp_len - hdr_end);
		if (err)
			goto out;
		memcpy(c->in, resp + hdr_end, resp_len - hdr_end);
		c->in_len = resp_len - hdr_end;
	}
	if (!o->keep_hello) {
		err = wsc_take_hello(c, o->timeout_ms > 0 ? o->timeout_ms : 5000);
		if (err)
			goto out;
	}
	*out = c;
	c = NULL;
out:
	free(req);
	free(resp);
	lm_wsc_close(c);
	return err;
}

static int wsc_send_frame_fin(struct lm_wsc *c, int opcode, bool fin, const void *data, size_t len);

static int wsc_send_frame(struct lm_wsc *c, int opcode, const void *data, size_t len)
{
	return wsc_send_frame_fin(c, opcode, true, data, len);
}

static int wsc_send_frame_fin(struct lm_wsc *c, int opcode, bool fin, const void *data, size_t len)
{
	int64_t deadline = wsc_now_ms() + 5000;
	uint8_t hdr[WSC_FRAME_HDR_MAX], mask[4];
	uint8_t *buf = NULL;
	const uint8_t *src = data;
	size_t hlen = 0, i;
	int err;

	if (c->close_sent) {
		wsc_seterr(c->err, "send after close");
		return -ENOTCONN;
	}
	err = wsc_random(mask, sizeof(mask));
	if (err)
		return err;
	hdr[hlen++] = (fin ? 0x80 : 0) | (uint8_t)(opcode & 0x0f);
	if (len < 126) {
		hdr[hlen++] = 0x80 | (uint8_t)len;
	} else if (len <= 0xffff) {
		hdr[hlen++] = 0x80 | 126;
		hdr[hlen++] = (uint8_t)(len >> 8);
		hdr[hlen++] = (uint8_t)len;
	} else {
		hdr[hlen++] = 0x80 | 127;
		for (i = 0; i < 8; i++)
			hdr[hlen++] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
	}
	memcpy(hdr + hlen, mask, 4);
	hlen += 4;
	buf = malloc(hlen + len);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, hdr, hlen);
	for (i = 0; i < len; i++)
		buf[hlen + i] = src[i] ^ mask[i & 3];
	err = wsc_write_all(c->fd, buf, hlen + len, deadline);
	free(buf);
	if (err)
		wsc_seterr(c->err, "sending opcode %d frame: %s", opcode, strerror(-err));
	else if (opcode == LM_WSC_OP_CLOSE)
		c->close_sent = true;
	return err;
}

int lm_wsc_send_text(struct lm_wsc *c, const char *s, size_t len)
{
	return wsc_send_frame(c, LM_WSC_OP_TEXT, s, len);
}

int lm_wsc_send_close(struct lm_wsc *c, uint16_t code)
{
	uint8_t p[2] = {(uint8_t)(code >> 8), (uint8_t)code};

	return wsc_send_frame(c, LM_WSC_OP_CLOSE, p, sizeof(p));
}

/* Returns the offset of the first byte that breaks UTF-8 (RFC 3629), or len if valid. */
static size_t wsc_utf8_check(const uint8_t *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t b = s[i];
		size_t n, k;
		uint32_t cp;

		if (b < 0x80) {
			i++;
			continue;
		} else if (b >= 0xc2 && b <= 0xdf) {
			n = 1;
			cp = b & 0x1f;
		} else if (b >= 0xe0 && b <= 0xef) {
			n = 2;
			cp = b & 0x0f;
		} else if (b >= 0xf0 && b <= 0xf4) {
			n = 3;
			cp = b & 0x07;
		} else {
			return i;
		}
		if (i + n >= len)
			return i;
		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return i;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return i;
		i += n + 1;
	}
	return len;
}

static int wsc_msg_append(struct lm_wsc *c, const uint8_t *p, size_t len)
{
	size_t cap = c->msg_cap ? c->msg_cap : 4096;
	uint8_t *m;

	if (c->msg_len + len + 1 > c->msg_cap) {
		while (cap < c->msg_len + len + 1)
			cap *= 2;
		m = realloc(c->msg, cap);
		if (!m)
			return -ENOMEM;
		c->msg = m;
		c->msg_cap = cap;
	}
	memcpy(c->msg + c->msg_len, p, len);
	c->msg_len += len;
	c->msg[c->msg_len] = '\0';
	return 0;
}

/*
 * Parses one frame from the head of c->in. Returns 1 when a frame was consumed (and *done is
 * set if it completed a message or a close), 0 when more bytes are needed, or -errno.
 */
static int wsc_take_frame(struct lm_wsc *c, bool *done)
{
	const uint8_t *in = c->in;
	size_t hlen = 2, i;
	uint64_t plen;
	int opcode, err;
	bool fin;

	if (c->in_len < 2)
		return 0;
	fin = in[0] & 0x80;
	opcode = in[0] & 0x0f;
	if (in[0] & 0x70) {
		wsc_seterr(c->err, "frame with RSV bits 0x%02x but no extension negotiated",
			   in[0] & 0x70);
		return -EPROTO;
	}
	if (in[1] & 0x80) {
		wsc_seterr(c->err, "server frame is masked (RFC 6455 5.1 forbids it)");
		return -EPROTO;
	}
	plen = in[1] & 0x7f;
	if (plen == 126) {
		if (c->in_len < 4)
			return 0;
		plen = ((uint64_t)in[2] << 8) | in[3];
		hlen = 4;
		if (plen < 126) {
			wsc_seterr(c->err, "16-bit length %llu not minimal",
				   (unsigned long long)plen);
			return -EPROTO;
		}
	} else if (plen == 127) {
		if (c->in_len < 10)
			return 0;
		plen = 0;
		for (i = 0; i < 8; i++)
			plen = (plen << 8) | in[2 + i];
		hlen = 10;
		if (plen >> 63) {
			wsc_seterr(c->err, "64-bit length has its top bit set");
			return -EPROTO;
		}
		if (plen <= 0xffff) {
			wsc_seterr(c->err, "64-bit length %llu not minimal",
				   (unsigned long long)plen);
			return -EPROTO;
		}
	}
	switch (opcode) {
	case LM_WSC_OP_CLOSE:
	case LM_WSC_OP_PING:
	case LM_WSC_OP_PONG:
		if (!fin || plen > 125) {
			wsc_seterr(c->err, "control frame opcode %d fragmented or %llu bytes long",
				   opcode, (unsigned long long)plen);
			return -EPROTO;
		}
		break;
	case LM_WSC_OP_CONT:
		if (c->msg_opcode < 0) {
			wsc_seterr(c->err, "continuation frame without a message in progress");
			return -EPROTO;
		}
		break;
	case LM_WSC_OP_TEXT:
	case LM_WSC_OP_BINARY:
		if (c->msg_opcode >= 0) {
			wsc_seterr(c->err, "new data frame (opcode %d) inside a fragmented message",
				   opcode);
			return -EPROTO;
		}
		break;
	default:
		wsc_seterr(c->err, "reserved opcode 0x%x", opcode);
		return -EPROTO;
	}
	if (opcode < LM_WSC_OP_CLOSE && plen > c->msg_max - c->msg_len) {
		wsc_seterr(
		    c->err,
		    "message exceeds the client cap of %zu bytes (%zu received + frame of %llu)",
		    c->msg_max, c->msg_len, (unsigned long long)plen);
		return -EMSGSIZE;
	}
	if (c->in_len < hlen + plen)
		return 0;

	in += hlen;
	*done = false;
	switch (opcode) {
	case LM_WSC_OP_PING:
		err = wsc_send_frame(c, LM_WSC_OP_PONG, in, (size_t)plen);
		if (err)
			return err;
		break;
	case LM_WSC_OP_PONG:
		c->pongs++;
		break;
	case LM_WSC_OP_CLOSE:
		if (plen == 1) {
			wsc_seterr(c->err, "close frame with a 1-byte payload");
			return -EPROTO;
		}
		c->close_code = plen >= 2 ? (uint16_t)((in[0] << 8) | in[1]) : 1005;
		c->msg_len = 0;
		err = wsc_msg_append(c, in + (plen >= 2 ? 2 : 0), plen >= 2 ? plen - 2 : 0);
		if (err)
			return err;
		c->msg_opcode = LM_WSC_OP_CLOSE;
		c->close_rcvd = true;
		if (!c->close_sent)
			wsc_send_frame(c, LM_WSC_OP_CLOSE, in, plen >= 2 ? 2 : 0);
		*done = true;
		break;
	default:
		if (opcode != LM_WSC_OP_CONT)
			c->msg_opcode = opcode;
		err = wsc_msg_append(c, in, (size_t)plen);
		if (err)
			return err;
		*done = fin;
		break;
	}
	memmove(c->in, c->in + hlen + plen, c->in_len - hlen - plen);
	c->in_len -= hlen + plen;
	return 1;
}

int lm_wsc_recv(struct lm_wsc *c, int timeout_ms, const char **msg, size_t *len)
{
	int64_t deadline = wsc_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	bool done = false;
	size_t bad;
	ssize_t n;
	int err;

	c->err[0] = '\0';
	if (c->close_rcvd && c->close_reported) {
		wsc_seterr(c->err, "connection closed (code %u)", c->close_code);
		return -ENOTCONN;
	}
	if (c->msg_done) {
		c->msg_len = 0;
		c->msg_opcode = -1;
		c->msg_done = false;
	}
	for (;;) {
		err = wsc_take_frame(c, &done);
		if (err < 0)
			return err;
		if (err > 0 && done)
			break;
		if (err > 0)
			continue;
		err = wsc_in_reserve(c, WSC_READ_CHUNK);
		if (err) {
			wsc_seterr(c->err, "receive buffer: %s", strerror(-err));
			return err;
		}
		n = wsc_read_some(c->fd, c->in + c->in_len, WSC_READ_CHUNK, deadline);
		if (n == 0) {
			wsc_seterr(c->err, "peer closed TCP without a close frame");
			return -ECONNRESET;
		}
		if (n < 0) {
			if (n != -ETIMEDOUT)
				wsc_seterr(c->err, "recv: %s", strerror((int)-n));
			else
				wsc_seterr(c->err, "no complete message within %d ms", timeout_ms);
			return (int)n;
		}
		c->in_len += (size_t)n;
	}
	c->msg_done = true;
	if (c->msg_opcode == LM_WSC_OP_CLOSE)
		c->close_reported = true;
	if (c->msg_opcode == LM_WSC_OP_TEXT) {
		bad = wsc_utf8_check(c->msg, c->msg_len);
		if (bad != c->msg_len) {
			wsc_seterr(c->err, "text message of %zu bytes is not UTF-8 at byte %zu",
				   c->msg_len, bad);
			return -EPROTO;
		}
	}
	*msg = (const char *)c->msg;
	*len = c->msg_len;
	return c->msg_opcode;
}

uint16_t lm_wsc_close_code(const struct lm_wsc *c)
{
	return c->close_code;
}

const char *lm_wsc_errmsg(const struct lm_wsc *c)
{
	return c->err[0] ? c->err : "no error recorded";
}

void lm_wsc_close(struct lm_wsc *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c->in);
	free(c->msg);
	free(c->hello);
	free(c);
}

/* Decodes a chunked body in place. Returns the decoded length, 0 if incomplete, or -EPROTO. */
static ssize_t wsc_dechunk(char *b, size_t len, bool *complete)
{
	size_t rd = 0, wr = 0;

	*complete = false;
	for (;;) {
		char *eol, *endp;
		unsigned long sz;

		eol = memmem(b + rd, len - rd, "\r\n", 2);
		if (!eol)
			return 0;
		sz = strtoul(b + rd, &endp, 16);
		if (endp == b + rd)
			return -EPROTO;
		rd = (size_t)(eol - b) + 2;
		if (sz == 0) {
			*complete = true;
			return (ssize_t)wr;
		}
		if (len - rd < sz + 2)
			return 0;
		if (b[rd + sz] != '\r' || b[rd + sz + 1] != '\n')
			return -EPROTO;
		memmove(b + wr, b + rd, sz);
		wr += sz;
		rd += sz + 2;
	}
}

int lm_wsc_http_get(uint16_t port, const char *path, int timeout_ms, int *status, char **body,
		    size_t *body_len)
{
	return lm_wsc_http_request(port, "GET", path, NULL, timeout_ms, status, body, body_len);
}

int lm_wsc_http_request(uint16_t port, const char *method, const char *path, const char *headers,
			int timeout_ms, int *status, char **body, size_t *body_len)
{
	int64_t deadline = wsc_now_ms() + (timeout_ms > 0 ? timeout_ms : 5000);
	size_t cap = WSC_HDR_MAX + LM_WSC_HTTP_BODY_MAX + 64, len = 0, hdr_end = 0, clen = 0;
	size_t req_cap = 512 + strlen(method) + strlen(path) + (headers ? strlen(headers) : 0);
	bool chunked = false, has_clen = false, complete = false;
	char *buf = NULL, *req = NULL, val[128];
	ssize_t r, blen = 0;
	int fd = -1, err = 0, n, st;

	buf = malloc(cap + 1);
	req = malloc(req_cap);
	if (!buf || !req) {
		err = -ENOMEM;
		goto out;
	}
	err = wsc_tcp_connect(port, deadline, &fd);
	if (err)
		goto out;
	n = snprintf(req, req_cap,
		     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nConnection: close\r\n"
		     "Accept: */*\r\n%s\r\n",
		     method, path, port, headers ? headers : "");
	if (n < 0 || (size_t)n >= req_cap) {
		err = -EINVAL;
		goto out;
	}
	err = wsc_write_all(fd, req, (size_t)n, deadline);
	if (err)
		goto out;
	for (;;) {
		if (len == cap) {
			err = -EMSGSIZE;
			goto out;
		}
		r = wsc_read_some(fd, buf + len, cap - len, deadline);
		if (r < 0) {
			err = (int)r;
			goto out;
		}
		len += (size_t)r;
		buf[len] = '\0';
		if (!hdr_end) {
			hdr_end = wsc_header_end(buf, len);
			if (!hdr_end && r == 0) {
				err = len ? -EPROTO : -ECONNRESET;
				goto out;
			}
			if (!hdr_end)
				continue;
			if (wsc_parse_status(buf) < 0) {
				err = -EPROTO;
				goto out;
			}
			buf[hdr_end - 2] = '\0';
			if (wsc_header_get(buf, "Transfer-Encoding", val, sizeof(val)))
				chunked = wsc_has_token(val, "chunked");
			if (!chunked && wsc_header_get(buf, "Content-Length", val, sizeof(val))) {
				char *endp;

				clen = strtoul(val, &endp, 10);
				if (*endp || endp == val) {
					err = -EPROTO;
					goto out;
				}
				has_clen = true;
			}
			buf[hdr_end - 2] = '\r';
		}
		if (has_clen && len - hdr_end >= clen) {
			blen = (ssize_t)clen;
			break;
		}
		if (chunked) {
			char *tmp = malloc(len - hdr_end + 1);

			if (!tmp) {
				err = -ENOMEM;
				goto out;
			}
			memcpy(tmp, buf + hdr_end, len - hdr_end);
			blen = wsc_dechunk(tmp, len - hdr_end, &complete);
			if (complete) {
				memcpy(buf + hdr_end, tmp, (size_t)blen);
				free(tmp);
				break;
			}
			free(tmp);
			if (blen < 0) {
				err = -EPROTO;
				goto out;
			}
		}
		if (r == 0) {
			if (has_clen || chunked) {
				err = -EPROTO;
				goto out;
			}
			blen = (ssize_t)(len - hdr_end);
			break;
		}
	}
	if ((size_t)blen > LM_WSC_HTTP_BODY_MAX) {
		err = -EMSGSIZE;
		goto out;
	}
	st = wsc_parse_status(buf);
	*body = malloc((size_t)blen + 1);
	if (!*body) {
		err = -ENOMEM;
		goto out;
	}
	memcpy(*body, buf + hdr_end, (size_t)blen);
	(*body)[blen] = '\0';
	if (body_len)
		*body_len = (size_t)blen;
	*status = st;
out:
	if (fd >= 0)
		close(fd);
	free(req);
	free(buf);
	return err;
}

/* --- hostile-client helpers --- */

int lm_wsc_send_frame(struct lm_wsc *c, int opcode, bool fin, const void *data, size_t len)
{
	return wsc_send_frame_fin(c, opcode, fin, data, len);
}

int lm_wsc_send_raw(struct lm_wsc *c, const void *buf, size_t len, int timeout_ms)
{
	int err;

	err = wsc_write_all(c->fd, buf, len, wsc_now_ms() + (timeout_ms > 0 ? timeout_ms : 0));
	if (err)
		wsc_seterr(c->err, "sending %zu raw bytes: %s", len, strerror(-err));
	return err;
}

uint64_t lm_wsc_pong_count(const struct lm_wsc *c)
{
	return c->pongs;
}

int lm_wsc_wait_close(struct lm_wsc *c, int timeout_ms, uint16_t *code)
{
	int64_t deadline = wsc_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	const char *msg;
	size_t len;
	int r;

	*code = 0;
	for (;;) {
		int left = (int)(deadline - wsc_now_ms());

		r = lm_wsc_recv(c, left > 0 ? left : 0, &msg, &len);
		if (r == LM_WSC_OP_CLOSE) {
			*code = c->close_code;
			return 0;
		}
		if (r == LM_WSC_OP_TEXT || r == LM_WSC_OP_BINARY)
			continue;
		if (r == -ENOTCONN && c->close_rcvd) {
			*code = c->close_code;
			return 0;
		}
		if (r == -ETIMEDOUT)
			return r;
		/* a reset, or bytes after the close: the server is done with us */
		if (r == -EPIPE || r == -ECONNRESET || r == -EPROTO)
			return -ECONNRESET;
		return r;
	}
}

int lm_wsc_tcp_open(uint16_t port, int timeout_ms, int *fd)
{
	return wsc_tcp_connect(port, wsc_now_ms() + (timeout_ms > 0 ? timeout_ms : 5000), fd);
}

int lm_wsc_fd_send(int fd, const void *buf, size_t len, int timeout_ms)
{
	return wsc_write_all(fd, buf, len, wsc_now_ms() + (timeout_ms > 0 ? timeout_ms : 0));
}

int lm_wsc_fd_wait_closed(int fd, int timeout_ms, char *head, size_t cap, size_t *nread)
{
	int64_t deadline = wsc_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	size_t total = 0, kept = 0;
	char chunk[4096];
	ssize_t r;

	if (head && cap)
		head[0] = '\0';
	for (;;) {
		r = wsc_read_some(fd, chunk, sizeof(chunk), deadline);
		if (r == 0 || r == -ECONNRESET) {
			if (nread)
				*nread = total;
			return r == 0 ? 0 : -ECONNRESET;
		}
		if (r < 0) {
			if (nread)
				*nread = total;
			return (int)r;
		}
		if (head && cap && kept + 1 < cap) {
			size_t n = (size_t)r < cap - 1 - kept ? (size_t)r : cap - 1 - kept;

			memcpy(head + kept, chunk, n);
			kept += n;
			head[kept] = '\0';
		}
		total += (size_t)r;
	}
}
