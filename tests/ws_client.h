/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Test-only RFC 6455 client and HTTP/1.1 GET helper for the integration tests. It shares no
 * code with libwebsockets, so lifemon's /ws, /healthz and /metrics are checked by a second,
 * strict implementation. Loopback (127.0.0.1) only; a client belongs to the thread that
 * opened it and every call blocks for at most its timeout.
 */
#ifndef LM_WS_CLIENT_H
#define LM_WS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Frame opcodes (RFC 6455 section 5.2). */
#define LM_WSC_OP_CONT 0x0
#define LM_WSC_OP_TEXT 0x1
#define LM_WSC_OP_BINARY 0x2
#define LM_WSC_OP_CLOSE 0x8
#define LM_WSC_OP_PING 0x9
#define LM_WSC_OP_PONG 0xa

/* Default cap on one reassembled message; larger messages fail with -EMSGSIZE. */
#define LM_WSC_MSG_MAX_DEFAULT ((size_t)16 << 20)
/* Cap on an HTTP response body read by lm_wsc_http_get. */
#define LM_WSC_HTTP_BODY_MAX ((size_t)8 << 20)

struct lm_wsc;

struct lm_wsc_opts {
	uint16_t port;	      /* TCP port on 127.0.0.1 */
	const char *path;     /* request target; "/ws" when NULL */
	const char *origin;   /* Origin header value; no Origin header when NULL */
	int timeout_ms;	      /* deadline for connect plus the whole handshake */
	size_t msg_max_bytes; /* cap on one reassembled message; 0: LM_WSC_MSG_MAX_DEFAULT */
	const char *headers;  /* extra request header lines, each ending "\r\n"; NULL: none. A
			       * Sec-WebSocket-Protocol offered here may be picked by the server */
	const char *method;   /* request method; "GET" when NULL */
	const char *host;     /* Host header value; "127.0.0.1:<port>" when NULL, none when "" */
	const char *upgrade;  /* Upgrade header value; "websocket" when NULL */
	const char *connection; /* Connection header value; "Upgrade" when NULL */
	bool keep_hello;      /* leave lifemon's HELLO message to lm_wsc_recv; by default
			       * lm_wsc_connect takes it (see lm_wsc_hello) */
};

/*
 * Connects and performs the upgrade with a random Sec-WebSocket-Key, then checks the 101
 * status, Upgrade, Connection and Sec-WebSocket-Accept (SHA-1 + base64 of key and GUID).
 * Returns 0 and *out (free with lm_wsc_close). Returns -EACCES when the server answered with
 * another status (*http_status tells which), -ECONNRESET when it hung up during the
 * handshake, -EPROTO for an invalid 101 response, -ETIMEDOUT, or the -errno of a socket call.
 * *http_status (may be NULL) is 0 when no status line was received.
 */
int lm_wsc_connect(const struct lm_wsc_opts *o, struct lm_wsc **out, int *http_status);

/*
 * The HELLO line lifemon sent first ('\n' included), which lm_wsc_connect took and checked
 * unless keep_hello was set; NULL then.
 */
const char *lm_wsc_hello(const struct lm_wsc *c);

/*
 * Receives the next complete message, reassembling fragments, answering pings with masked
 * pongs and skipping pongs. Returns LM_WSC_OP_TEXT or LM_WSC_OP_BINARY with *msg and *len
 * (the bytes belong to the client and stay valid until the next call on it), or
 * LM_WSC_OP_CLOSE when the server closed (the close is answered; *msg holds the reason and
 * lm_wsc_close_code() the code). Errors: -ETIMEDOUT (nothing lost: a partly received message
 * is kept for the next call), -EMSGSIZE over the cap, -EPROTO for a frame RFC 6455 forbids
 * (masked, RSV bits, bad opcode or length, invalid UTF-8 text), -ECONNRESET when TCP closed
 * without a close frame, -ENOTCONN after a close, or a socket -errno. lm_wsc_errmsg()
 * explains the last error.
 */
int lm_wsc_recv(struct lm_wsc *c, int timeout_ms, const char **msg, size_t *len);

/* Sends one masked text frame. Returns 0, -ENOTCONN after a close, -ETIMEDOUT or -errno. */
int lm_wsc_send_text(struct lm_wsc *c, const char *s, size_t len);

/* Sends a masked close frame with `code` (1000 = normal). Returns 0 or as lm_wsc_send_text. */
int lm_wsc_send_close(struct lm_wsc *c, uint16_t code);

/* Close code the server sent (1005 if its close frame had none), 0 before any close. */
uint16_t lm_wsc_close_code(const struct lm_wsc *c);

/* Human-readable reason for the last error returned on `c`; never NULL. */
const char *lm_wsc_errmsg(const struct lm_wsc *c);

/* Closes the socket and frees the client; accepts NULL. Sends nothing. */
void lm_wsc_close(struct lm_wsc *c);

/*
 * GET `path` from 127.0.0.1:`port` with "Connection: close". Handles Content-Length, chunked
 * and read-to-EOF bodies. Returns 0 with *status and *body (malloc'ed, NUL-terminated, caller
 * frees; *body_len may be NULL). Returns -ETIMEDOUT, -EMSGSIZE above LM_WSC_HTTP_BODY_MAX,
 * -EPROTO for a malformed response, or a socket -errno (-ECONNREFUSED when nothing listens).
 */
int lm_wsc_http_get(uint16_t port, const char *path, int timeout_ms, int *status, char **body,
		    size_t *body_len);

/*
 * As lm_wsc_http_get with another `method` and extra request header lines `headers` (each
 * ending "\r\n"; NULL: none).
 */
int lm_wsc_http_request(uint16_t port, const char *method, const char *path, const char *headers,
			int timeout_ms, int *status, char **body, size_t *body_len);

/* --- hostile-client helpers (tests/it_hostile.c): what a good client never sends --- */

/*
 * Sends one masked frame with any opcode (reserved ones too) and FIN as given; the payload is
 * not checked (a control frame may be oversized on purpose). Returns as lm_wsc_send_text.
 */
int lm_wsc_send_frame(struct lm_wsc *c, int opcode, bool fin, const void *data, size_t len);

/* Writes raw bytes (frame headers of the caller's making) on the socket. 0, -ETIMEDOUT, -errno. */
int lm_wsc_send_raw(struct lm_wsc *c, const void *buf, size_t len, int timeout_ms);

/* Pong frames received so far (lm_wsc_recv answers pings and consumes pongs). */
uint64_t lm_wsc_pong_count(const struct lm_wsc *c);

/*
 * Reads (dropping messages) until the server closes. Returns 0 with *code (1005 for a close
 * frame without a code) after a close frame, -ECONNRESET (*code 0) when TCP ended without one
 * or with bytes that break RFC 6455, -ETIMEDOUT while the connection stays open, or -errno.
 */
int lm_wsc_wait_close(struct lm_wsc *c, int timeout_ms, uint16_t *code);

/* Opens a non-blocking TCP connection to 127.0.0.1:port. Returns 0 and *fd, or -errno. */
int lm_wsc_tcp_open(uint16_t port, int timeout_ms, int *fd);

/* Writes all of buf to a non-blocking socket. Returns 0, -ETIMEDOUT or -errno (-EPIPE...). */
int lm_wsc_fd_send(int fd, const void *buf, size_t len, int timeout_ms);

/*
 * Reads and discards until the peer closes. Returns 0 on EOF, -ECONNRESET on a reset (closed
 * too), -ETIMEDOUT while it stays open, or -errno. The first cap - 1 bytes read go to head
 * (NUL-terminated; may be NULL), the count of all bytes read to *nread (may be NULL).
 */
int lm_wsc_fd_wait_closed(int fd, int timeout_ms, char *head, size_t cap, size_t *nread);

#endif /* LM_WS_CLIENT_H */
