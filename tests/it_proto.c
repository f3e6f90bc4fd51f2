// SPDX-License-Identifier: GPL-2.0
/*
 * The issue-10 /ws protocol as the integration tests see it (see it_proto.h): a raw-socket
 * RFC 6455 reader that keeps HELLO, events and LOST notices, a JSON Lines loader, the filter
 * model and a raw upgrade request. Runs on whichever test thread owns the stream.
 */
#include "tests/it_proto.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "tests/it_util.h"

#define PROTO_NOTES 12
#define PROTO_CHUNK 65536
#define PROTO_HDR_MAX 16384
#define PROTO_MSG_MAX ((size_t)64 << 20)
/* RFC 6455 section 1.3's sample key and its accept value. */
#define PROTO_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define PROTO_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

struct lm_it_proto {
	int fd;
	bool keep_fields;
	size_t max_read; /* 0: PROTO_CHUNK */
	int dead;
	uint16_t close_code;
	char close_reason[128];
	struct lm_it_proto_hello hello;
	bool any_line; /* a line has arrived (the first must be the HELLO) */
	unsigned char *in;
	size_t in_len, in_cap;
	unsigned char *msg; /* the text message being reassembled */
	size_t msg_len, msg_cap;
	bool in_msg;
	struct lm_it_proto_rec *recs;
	size_t nrecs, caprecs, nevents;
	long long last_seq;
	unsigned int problems, nnotes;
	char notes[PROTO_NOTES][400];
};

static void proto_problem(struct lm_it_proto *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void proto_problem(struct lm_it_proto *s, const char *fmt, ...)
{
	va_list ap;

	s->problems++;
	if (s->nnotes == PROTO_NOTES)
		return;
	va_start(ap, fmt);
	vsnprintf(s->notes[s->nnotes], sizeof(s->notes[0]), fmt, ap);
	va_end(ap);
	s->nnotes++;
}

static bool is_hex16(const char *h)
{
	return h && strlen(h) == 16 && strspn(h, "0123456789abcdef") == 16;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void rec_free_fields(struct lm_it_proto_rec *r)
{
	free(r->comm);
	free(r->exe);
	free(r->cgroup);
	free(r->container);
	free(r->key);
	free(r->args);
}

/* "args" joined by single spaces, or NULL when absent. */
static char *join_args(const json_t *arr)
{
	size_t i, len = 0;
	char *out, *p;

	if (!json_is_array(arr))
		return NULL;
	for (i = 0; i < json_array_size(arr); i++)
		len += json_string_length(json_array_get(arr, i)) + 1;
	out = malloc(len + 1);
	if (!out)
		return NULL;
	p = out;
	for (i = 0; i < json_array_size(arr); i++) {
		const json_t *v = json_array_get(arr, i);

		if (i)
			*p++ = ' ';
		memcpy(p, json_string_value(v) ? json_string_value(v) : "", json_string_length(v));
		p += json_string_length(v);
	}
	*p = '\0';
	return out;
}

static char reason_code(const char *reason)
{
	if (!reason)
		return '?';
	if (!strcmp(reason, "slow_client"))
		return 's';
	if (!strcmp(reason, "evicted"))
		return 'e';
	if (!strcmp(reason, "restarted"))
		return 'r';
	if (!strcmp(reason, "kernel_ring_full"))
		return 'k';
	if (!strcmp(reason, "sink_full"))
		return 'f';
	return '?';
}

static long long jint(const json_t *o, const char *k, long long dflt)
{
	return lm_it_jint(o, k, dflt);
}

/*
 * Parses one line. Returns 1 for a record in *r, 2 for a HELLO in *h, 0 for a bad line (why
 * says what is wrong).
 */
static int proto_parse_line(const char *line, size_t len, bool keep, struct lm_it_proto_rec *r,
			    struct lm_it_proto_hello *h, char *why, size_t cap)
{
	json_error_t jerr;
	const char *type, *reason;
	json_t *ev;
	int ret = 0;

	memset(r, 0, sizeof(*r));
	r->line_bytes = (uint32_t)len;
	r->matched = -1;
	ev = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!ev || !json_is_object(ev)) {
		snprintf(why, cap, "not a strict JSON object (%s)",
			 ev ? "not an object" : jerr.text);
		json_decref(ev);
		return 0;
	}
	type = lm_it_jstr(ev, "type");
	if (type && !strcmp(type, "HELLO")) {
		const char *inst = lm_it_jstr(ev, "instance"), *ver = lm_it_jstr(ev, "version");
		const char *filt = lm_it_jstr(ev, "filter");

		if (!is_hex16(inst) || !ver || !json_is_integer(json_object_get(ev, "first_seq")) ||
		    !json_is_integer(json_object_get(ev, "next_seq")) ||
		    jint(ev, "first_seq", 0) < 1 ||
		    jint(ev, "first_seq", 0) > jint(ev, "next_seq", 0)) {
			snprintf(why, cap,
				 "HELLO without instance (16 hex), version, first_seq >= 1 "
				 "and next_seq >= first_seq");
			goto out;
		}
		memset(h, 0, sizeof(*h));
		h->seen = true;
		snprintf(h->instance, sizeof(h->instance), "%s", inst);
		snprintf(h->version, sizeof(h->version), "%s", ver);
		snprintf(h->filter, sizeof(h->filter), "%s", filt ? filt : "(absent)");
		h->first_seq = jint(ev, "first_seq", 0);
		h->next_seq = jint(ev, "next_seq", 0);
		ret = 2;
		goto out;
	}
	if (type && !strcmp(type, "LOST")) {
		reason = lm_it_jstr(ev, "reason");
		r->kind = 'L';
		r->reason = reason_code(reason);
		r->count = jint(ev, "count", -1);
		r->matched = jint(ev, "matched", -1);
		switch (r->reason) {
		case 's':
		case 'e':
		case 'f':
			r->first_seq = jint(ev, "first_seq", -1);
			r->last_seq = jint(ev, "last_seq", -1);
			if (r->first_seq < 1 || r->last_seq < r->first_seq ||
			    r->count != r->last_seq - r->first_seq + 1) {
				snprintf(why, cap,
					 "LOST %s: want first_seq >= 1, last_seq >= "
					 "first_seq, count = last_seq - first_seq + 1",
					 reason);
				goto out;
			}
			break;
		case 'r': {
			const char *prev = lm_it_jstr(ev, "previous_instance");

			r->first_seq = jint(ev, "since", -1);
			if (!is_hex16(prev) || r->first_seq < 1) {
				snprintf(why, cap,
					 "LOST restarted: want previous_instance (16 hex) "
					 "and since >= 1");
				goto out;
			}
			snprintf(r->instance, sizeof(r->instance), "%s", prev);
			break;
		}
		case 'k':
			r->last_seq = jint(ev, "before_seq", -1);
			if (r->count < 1 || r->last_seq < 1) {
				snprintf(why, cap,
					 "LOST kernel_ring_full: want count >= 1, before_seq");
				goto out;
			}
			break;
		default:
			snprintf(why, cap, "LOST with an unknown reason");
			goto out;
		}
		ret = 1;
		goto out;
	}
	if (!lm_it_event_is_valid(ev, why, cap))
		goto out;
	{
		const char *inst = lm_it_jstr(ev, "instance");
		char head[64];
		int hl;

		if (!is_hex16(inst)) {
			snprintf(why, cap, "event without \"instance\" (16 lowercase hex)");
			goto out;
		}
		/* the spec puts "instance" right after "seq" */
		hl = snprintf(head, sizeof(head), "{\"seq\":%lld,\"instance\":\"",
			      jint(ev, "seq", 0));
		if (len < (size_t)hl || memcmp(line, head, (size_t)hl)) {
			snprintf(why, cap, "event does not start with %s", head);
			goto out;
		}
		snprintf(r->instance, sizeof(r->instance), "%s", inst);
	}
	r->kind = 'E';
	r->seq = jint(ev, "seq", 0);
	r->type = !strcmp(type, "EXEC") ? 'E' : !strcmp(type, "EXIT") ? 'X' : 'O';
	r->pid = (pid_t)jint(ev, "pid", -1);
	r->ppid = (pid_t)jint(ev, "ppid", -1);
	r->uid = jint(ev, "uid", -1);
	r->exit_code = jint(ev, "exit_code", 0);
	r->signal = jint(ev, "signal", 0);
	if (keep) {
		r->comm = dup_or_null(lm_it_jstr(ev, "comm"));
		r->exe = dup_or_null(lm_it_jstr(ev, "exe"));
		r->cgroup = dup_or_null(lm_it_jstr(ev, "cgroup"));
		r->container = dup_or_null(lm_it_jstr(ev, "container_id"));
		r->key = dup_or_null(lm_it_jstr(ev, "key"));
		r->args = join_args(json_object_get(ev, "args"));
	}
	ret = 1;
out:
	json_decref(ev);
	return ret;
}

static int recs_push(struct lm_it_proto_rec **recs, size_t *n, size_t *cap,
		     const struct lm_it_proto_rec *r)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 4096;
		struct lm_it_proto_rec *nr = realloc(*recs, c * sizeof(*nr));

		if (!nr)
			return -ENOMEM;
		*recs = nr;
		*cap = c;
	}
	(*recs)[(*n)++] = *r;
	return 0;
}

static void proto_line(struct lm_it_proto *s, const char *line, size_t len)
{
	struct lm_it_proto_hello h;
	struct lm_it_proto_rec r;
	char why[200], esc[1024];
	int k;

	k = proto_parse_line(line, len, s->keep_fields, &r, &h, why, sizeof(why));
	if (!k) {
		proto_problem(s, "%s: %s", why, lm_it_escape_buf(line, len, esc, sizeof(esc)));
		return;
	}
	if (k == 2) {
		if (s->any_line)
			proto_problem(s, "HELLO that is not the first line: %s",
				      lm_it_escape_buf(line, len, esc, sizeof(esc)));
		else
			s->hello = h;
		s->any_line = true;
		return;
	}
	if (!s->any_line)
		proto_problem(s, "the first line is not a HELLO: %s",
			      lm_it_escape_buf(line, len, esc, sizeof(esc)));
	s->any_line = true;
	if (r.kind == 'E') {
		if (s->hello.seen && strcmp(r.instance, s->hello.instance))
			proto_problem(s, "event instance %s, HELLO said %s: %s", r.instance,
				      s->hello.instance,
				      lm_it_escape_buf(line, len, esc, sizeof(esc)));
		if (r.seq > s->last_seq)
			s->last_seq = r.seq;
		s->nevents++;
	}
	if (recs_push(&s->recs, &s->nrecs, &s->caprecs, &r)) {
		rec_free_fields(&r);
		proto_problem(s, "out of memory keeping %zu lines", s->nrecs);
	}
}

static void proto_message(struct lm_it_proto *s)
{
	const char *p = (const char *)s->msg, *end = p + s->msg_len, *nl;
	char esc[1024];

	if (!s->msg_len || s->msg[s->msg_len - 1] != '\n')
		proto_problem(s, "text message does not end with \\n: %s",
			      lm_it_escape_buf(p, s->msg_len, esc, sizeof(esc)));
	for (; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		if (nl == p) {
			proto_problem(s, "empty line inside a message");
			continue;
		}
		proto_line(s, p, (size_t)(nl - p));
	}
}

static int64_t now_ms(void)
{
	return lm_it_now_ms();
}

/* Writes all of buf on the (non-blocking) socket within timeout_ms. */
static int write_all(int fd, const void *buf, size_t len, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	const char *p = buf;

	while (len) {
		struct pollfd pf = { .fd = fd, .events = POLLOUT };
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w > 0) {
			p += w;
			len -= (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		if (now_ms() >= deadline)
			return -ETIMEDOUT;
		poll(&pf, 1, (int)(deadline - now_ms()));
	}
	return 0;
}

/* A masked frame from us (pong or close); the zero mask key leaves the payload as it is. */
static int send_ctl(struct lm_it_proto *s, int op, const void *data, size_t len)
{
	unsigned char f[2 + 4 + 125];

	if (len > 125)
		len = 125;
	f[0] = (unsigned char)(0x80 | op);
	f[1] = (unsigned char)(0x80 | len);
	memset(f + 2, 0, 4);
	memcpy(f + 6, data, len);
	return write_all(s->fd, f, 6 + len, 2000);
}

static int in_reserve(unsigned char **buf, size_t *cap, size_t need)
{
	size_t c = *cap ? *cap : PROTO_CHUNK;
	unsigned char *nb;

	if (need <= *cap)
		return 0;
	while (c < need)
		c *= 2;
	nb = realloc(*buf, c);
	if (!nb)
		return -ENOMEM;
	*buf = nb;
	*cap = c;
	return 0;
}

/*
 * Takes whole frames from s->in. Returns the number of text messages completed, or -errno
 * (the stream is then dead).
 */
static int proto_frames(struct lm_it_proto *s)
{
	size_t pos = 0;
	int msgs = 0;

	for (;;) {
		const unsigned char *b = s->in + pos;
		size_t n = s->in_len - pos, hdr = 2, i;
		uint64_t len;
		unsigned op;
		bool fin;

		if (n < 2)
			break;
		fin = b[0] & 0x80;
		op = b[0] & 0x0f;
		if (b[1] & 0x80 || b[0] & 0x70) {
			proto_problem(s, "server frame masked or with RSV bits: %02x %02x", b[0],
				      b[1]);
			return -EPROTO;
		}
		len = b[1] & 0x7f;
		if (len >= 126) {
			size_t k = len == 126 ? 2 : 8;

			if (n < 2 + k)
				break;
			for (len = 0, i = 0; i < k; i++)
				len = len << 8 | b[2 + i];
			hdr += k;
		}
		if (len > PROTO_MSG_MAX) {
			proto_problem(s, "frame of %llu bytes", (unsigned long long)len);
			return -EMSGSIZE;
		}
		if (n < hdr + len)
			break;
		b += hdr;
		switch (op) {
		case 0x0:
		case 0x1:
			if ((op == 0x0) != s->in_msg) {
				proto_problem(s, "frame opcode %u %s a fragmented message", op,
					      s->in_msg ? "inside" : "outside");
				return -EPROTO;
			}
			if (in_reserve(&s->msg, &s->msg_cap, s->msg_len + len + 1))
				return -ENOMEM;
			memcpy(s->msg + s->msg_len, b, len);
			s->msg_len += len;
			s->in_msg = !fin;
			if (fin) {
				proto_message(s);
				s->msg_len = 0;
				msgs++;
			}
			break;
		case 0x2:
			proto_problem(s, "binary frame of %llu bytes", (unsigned long long)len);
			break;
		case 0x8:
			s->close_code = len >= 2 ? (uint16_t)(b[0] << 8 | b[1]) : 1005;
			snprintf(s->close_reason, sizeof(s->close_reason), "%.*s",
				 len > 2 ? (int)(len - 2) : 0, (const char *)b + 2);
			send_ctl(s, 0x8, b, len >= 2 ? 2 : 0);
			s->dead = -ECONNRESET;
			return -ECONNRESET;
		case 0x9:
			send_ctl(s, 0xa, b, len);
			break;
		case 0xa:
			break;
		default:
			proto_problem(s, "reserved opcode %u", op);
			return -EPROTO;
		}
		pos += hdr + len;
	}
	memmove(s->in, s->in + pos, s->in_len - pos);
	s->in_len -= pos;
	return msgs;
}

static int tcp_connect(uint16_t port, int rcvbuf, int timeout_ms, int *out)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int64_t deadline = now_ms() + timeout_ms;
	struct pollfd pf;
	int fd, err = 0, soerr = 0;
	socklen_t sl = sizeof(soerr);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) < 0) {
		err = -errno;
		goto out;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno != EINPROGRESS) {
			err = -errno;
			goto out;
		}
		pf.fd = fd;
		pf.events = POLLOUT;
		if (poll(&pf, 1, (int)(deadline - now_ms())) <= 0) {
			err = -ETIMEDOUT;
			goto out;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
			err = soerr ? -soerr : -errno;
			goto out;
		}
	}
	*out = fd;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	return err;
}

/*
 * Reads an HTTP response head into buf (cap bytes) until the blank line. Returns the head's
 * length, with *got the bytes read in all (the head and what followed), or -errno.
 */
static ssize_t read_head(int fd, char *buf, size_t cap, size_t *got, int64_t deadline)
{
	size_t n = 0;
	char *e;

	for (;;) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		ssize_t r;

		buf[n] = '\0';
		e = strstr(buf, "\r\n\r\n");
		if (e) {
			*got = n;
			return e + 4 - buf;
		}
		if (n + 1 >= cap)
			return -EMSGSIZE;
		if (now_ms() >= deadline)
			return -ETIMEDOUT;
		if (poll(&pf, 1, (int)(deadline - now_ms())) <= 0)
			continue;
		r = recv(fd, buf + n, cap - 1 - n, 0);
		if (r == 0) {
			*got = n;
			return n ? -EPROTO : -ECONNRESET;
		}
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return -errno;
		}
		n += (size_t)r;
	}
}

static int send_upgrade(int fd, uint16_t port, const char *target, int64_t deadline)
{
	char req[8192];
	int n;

	n = snprintf(req, sizeof(req),
		     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nUpgrade: websocket\r\n"
		     "Connection: Upgrade\r\nSec-WebSocket-Key: " PROTO_KEY "\r\n"
		     "Sec-WebSocket-Version: 13\r\n\r\n",
		     target, port);
	if (n < 0 || (size_t)n >= sizeof(req))
		return -E2BIG;
	return write_all(fd, req, (size_t)n, (int)(deadline - now_ms()));
}

int lm_it_proto_open(const struct lm_it_proto_opts *o, struct lm_it_proto **out, int *status)
{
	int timeout = o->timeout_ms > 0 ? o->timeout_ms : 5000;
	int64_t deadline = now_ms() + timeout;
	struct lm_it_proto *s = NULL;
	char *head = NULL, *target = NULL;
	size_t got = 0, tlen;
	ssize_t hl;
	int err, st = 0;

	if (status)
		*status = 0;
	tlen = 8 + (o->query ? strlen(o->query) : 0);
	s = calloc(1, sizeof(*s));
	head = malloc(PROTO_HDR_MAX);
	target = malloc(tlen);
	if (!s || !head || !target) {
		err = -ENOMEM;
		goto out;
	}
	s->fd = -1;
	s->keep_fields = o->keep_fields;
	s->max_read = o->max_read && o->max_read < PROTO_CHUNK ? o->max_read : PROTO_CHUNK;
	snprintf(target, tlen, "/ws%s%s", o->query && o->query[0] ? "?" : "",
		 o->query ? o->query : "");
	err = tcp_connect(o->port, o->rcvbuf, timeout, &s->fd);
	if (err)
		goto out;
	err = send_upgrade(s->fd, o->port, target, deadline);
	if (err)
		goto out;
	hl = read_head(s->fd, head, PROTO_HDR_MAX, &got, deadline);
	if (hl < 0) {
		err = (int)hl;
		goto out;
	}
	if (sscanf(head, "HTTP/1.%*d %d", &st) != 1) {
		err = -EPROTO;
		goto out;
	}
	if (status)
		*status = st;
	if (st != 101) {
		err = -EACCES;
		goto out;
	}
	if (!strcasestr(head, PROTO_ACCEPT)) {
		err = -EPROTO;
		goto out;
	}
	err = in_reserve(&s->in, &s->in_cap, PROTO_CHUNK + got);
	if (err)
		goto out;
	memcpy(s->in, head + hl, got - (size_t)hl);
	s->in_len = got - (size_t)hl;
	*out = s;
	s = NULL;
out:
	free(head);
	free(target);
	if (s) {
		if (s->fd >= 0)
			close(s->fd);
		free(s->in);
		free(s);
	}
	return err;
}

int lm_it_proto_pump(struct lm_it_proto *s, int timeout_ms)
{
	int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	size_t before = s->nrecs;
	bool had_hello = s->hello.seen;
	int r;

	if (s->dead)
		return s->dead;
	for (;;) {
		struct pollfd pf = { .fd = s->fd, .events = POLLIN };
		ssize_t n;
		int left;

		r = proto_frames(s);
		if (r < 0) {
			s->dead = r;
			return r;
		}
		if (r > 0)
			return (int)(s->nrecs - before) + (!had_hello && s->hello.seen);
		left = (int)(deadline - now_ms());
		if (left < 0)
			return 0;
		if (in_reserve(&s->in, &s->in_cap, s->in_len + PROTO_CHUNK)) {
			s->dead = -ENOMEM;
			return s->dead;
		}
		if (poll(&pf, 1, left) <= 0)
			continue;
		n = recv(s->fd, s->in + s->in_len, s->max_read, MSG_DONTWAIT);
		if (n == 0) {
			proto_problem(s, "TCP closed without a close frame");
			s->dead = -ECONNRESET;
			return s->dead;
		}
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			s->dead = -errno;
			proto_problem(s, "recv: %s", strerror(errno));
			return s->dead;
		}
		s->in_len += (size_t)n;
		if (s->max_read < PROTO_CHUNK) {
			r = proto_frames(s);
			if (r < 0) {
				s->dead = r;
				return r;
			}
			return (int)(s->nrecs - before) + (!had_hello && s->hello.seen);
		}
	}
}

void lm_it_proto_set_max_read(struct lm_it_proto *s, size_t max_read)
{
	s->max_read = max_read && max_read < PROTO_CHUNK ? max_read : PROTO_CHUNK;
}

const struct lm_it_proto_hello *lm_it_proto_hello(const struct lm_it_proto *s)
{
	return &s->hello;
}

const struct lm_it_proto_rec *lm_it_proto_recs(const struct lm_it_proto *s, size_t *n)
{
	*n = s->nrecs;
	return s->recs;
}

long long lm_it_proto_last_seq(const struct lm_it_proto *s)
{
	return s->last_seq;
}

size_t lm_it_proto_events(const struct lm_it_proto *s)
{
	return s->nevents;
}

int lm_it_proto_dead(const struct lm_it_proto *s, uint16_t *code, const char **reason)
{
	if (code)
		*code = s->close_code;
	if (reason)
		*reason = s->close_reason;
	return s->dead;
}

unsigned int lm_it_proto_report(struct lm_it_proto *s, const char *who)
{
	unsigned int i, n = s->problems;

	for (i = 0; i < s->nnotes; i++)
		lm_it_fail("%s: %s", who, s->notes[i]);
	if (s->problems > s->nnotes)
		lm_it_fail("%s: %u more problem(s) not shown", who, s->problems - s->nnotes);
	s->nnotes = 0;
	s->problems = 0;
	return n;
}

static void proto_free(struct lm_it_proto *s)
{
	lm_it_proto_recs_free(s->recs, s->nrecs);
	free(s->in);
	free(s->msg);
	free(s);
}

void lm_it_proto_close(struct lm_it_proto *s)
{
	unsigned char code[2] = { 0x03, 0xe8 }; /* 1000 */

	if (!s)
		return;
	if (!s->dead)
		send_ctl(s, 0x8, code, 2);
	close(s->fd);
	proto_free(s);
}

void lm_it_proto_drop(struct lm_it_proto *s)
{
	if (!s)
		return;
	close(s->fd);
	proto_free(s);
}

int lm_it_proto_load_file(const char *path, bool keep_fields, struct lm_it_proto_rec **recs,
			  size_t *n)
{
	struct lm_it_proto_rec *out = NULL, r;
	struct lm_it_proto_hello h;
	char *text = NULL, *p, *end, *nl, why[200], esc[1024];
	size_t len = 0, cnt = 0, cap = 0, lineno = 0;
	int err;

	err = lm_it_read_file(path, &text, &len);
	if (err)
		return err;
	for (p = text, end = text + len; p < end; p = nl + 1) {
		int k;

		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl) {
			lm_it_fail("%s: the last line has no \\n (%zu bytes)", path,
				   (size_t)(end - p));
			break;
		}
		lineno++;
		k = proto_parse_line(p, (size_t)(nl - p), keep_fields, &r, &h, why, sizeof(why));
		if (k != 1) {
			lm_it_fail("%s line %zu: %s: %s", path, lineno,
				   k ? "a HELLO in the file" : why,
				   lm_it_escape_buf(p, (size_t)(nl - p), esc, sizeof(esc)));
			continue;
		}
		if (recs_push(&out, &cnt, &cap, &r)) {
			rec_free_fields(&r);
			err = -ENOMEM;
			break;
		}
	}
	free(text);
	if (err) {
		lm_it_proto_recs_free(out, cnt);
		return err;
	}
	*recs = out;
	*n = cnt;
	return 0;
}

void lm_it_proto_recs_free(struct lm_it_proto_rec *recs, size_t n)
{
	size_t i;

	if (!recs)
		return;
	for (i = 0; i < n; i++)
		rec_free_fields(&recs[i]);
	free(recs);
}

long *lm_it_proto_seq_index(const struct lm_it_proto_rec *recs, size_t n, long long *lo,
			    long long *hi)
{
	long long a = 0, b = -1;
	long *idx;
	size_t i;

	for (i = 0; i < n; i++) {
		if (recs[i].kind != 'E')
			continue;
		if (!a || recs[i].seq < a)
			a = recs[i].seq;
		if (recs[i].seq > b)
			b = recs[i].seq;
	}
	*lo = a;
	*hi = b;
	if (b < a)
		return calloc(1, sizeof(long));
	idx = malloc((size_t)(b - a + 1) * sizeof(*idx));
	if (!idx)
		return NULL;
	for (i = 0; i < (size_t)(b - a + 1); i++)
		idx[i] = -1;
	for (i = 0; i < n; i++)
		if (recs[i].kind == 'E')
			idx[recs[i].seq - a] = (long)i;
	return idx;
}

/* --- filter model --- */

enum {
	F_TYPE,
	F_COMM,
	F_EXE,
	F_PID,
	F_PPID,
	F_UID,
	F_CONTAINER,
	F_CGROUP,
	F_EXIT,
	F_ARGS,
	F_NKEYS
};

static const char *const f_names[F_NKEYS] = { "type", "comm",	   "exe",    "pid",  "ppid",
					      "uid",  "container", "cgroup", "exit", "args" };

#define F_MAXVAL 64

struct lm_it_proto_filter {
	unsigned int nval[F_NKEYS]; /* 0: the key is absent (no condition) */
	char *val[F_NKEYS][F_MAXVAL];
	char **known; /* "key"s of processes whose EXEC passed exe= and args= (judge) */
	size_t nknown, capknown;
};

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static char *pct_decode(const char *s, size_t len)
{
	char *out = malloc(len + 1), *o = out;
	size_t i;

	if (!out)
		return NULL;
	for (i = 0; i < len; i++) {
		if (s[i] == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			*o++ = (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
			i += 2;
		} else {
			*o++ = s[i] == '+' ? ' ' : s[i];
		}
	}
	*o = '\0';
	return out;
}

int lm_it_proto_filter_parse(const char *query, struct lm_it_proto_filter **out)
{
	struct lm_it_proto_filter *f = calloc(1, sizeof(*f));
	const char *p = query ? query : "";

	if (!f)
		return -ENOMEM;
	while (*p) {
		size_t klen = strcspn(p, "=&"), vlen;
		const char *v;
		int k;

		if (p[klen] != '=')
			goto bad;
		v = p + klen + 1;
		vlen = strcspn(v, "&");
		for (k = 0; k < F_NKEYS; k++)
			if (strlen(f_names[k]) == klen && !strncmp(p, f_names[k], klen))
				break;
		if (k < F_NKEYS) {
			const char *q = v, *vend = v + vlen;

			while (q <= vend) {
				size_t l = strcspn(q, ",&");

				if (q + l > vend)
					l = (size_t)(vend - q);
				if (f->nval[k] == F_MAXVAL)
					goto bad;
				f->val[k][f->nval[k]] = pct_decode(q, l);
				if (!f->val[k][f->nval[k]])
					goto bad;
				f->nval[k]++;
				q += l + 1;
			}
		}
		p = v + vlen;
		if (*p == '&')
			p++;
	}
	*out = f;
	return 0;
bad:
	lm_it_proto_filter_free(f);
	return -EINVAL;
}

static bool f_any(const struct lm_it_proto_filter *f, int k, const struct lm_it_proto_rec *r)
{
	unsigned int i;

	for (i = 0; i < f->nval[k]; i++) {
		const char *v = f->val[k][i];
		char tname[16];

		switch (k) {
		case F_TYPE:
			snprintf(tname, sizeof(tname), "%s",
				 r->type == 'E'	  ? "exec"
				 : r->type == 'X' ? "exit"
						  : "oom_kill");
			if (!strcasecmp(v, tname))
				return true;
			break;
		case F_COMM:
			if (r->comm && !fnmatch(v, r->comm, 0))
				return true;
			break;
		case F_EXE:
			if (r->type == 'E' && r->exe && !fnmatch(v, r->exe, 0))
				return true;
			break;
		case F_PID:
			if (strtoll(v, NULL, 10) == r->pid)
				return true;
			break;
		case F_PPID:
			if (strtoll(v, NULL, 10) == r->ppid)
				return true;
			break;
		case F_UID:
			if (strtoll(v, NULL, 10) == r->uid)
				return true;
			break;
		case F_CONTAINER:
			if (r->container && !strncasecmp(r->container, v, strlen(v)))
				return true;
			break;
		case F_CGROUP:
			if (r->cgroup && !fnmatch(v, r->cgroup, 0))
				return true;
			break;
		case F_EXIT:
			if (r->type == 'X' && (r->exit_code || r->signal))
				return true;
			break;
		case F_ARGS:
			if (r->type == 'E' && r->args && strstr(r->args, v))
				return true;
			break;
		}
	}
	return false;
}

bool lm_it_proto_filter_match(const struct lm_it_proto_filter *f, const struct lm_it_proto_rec *r)
{
	int k;

	if (r->kind != 'E')
		return false;
	for (k = 0; k < F_NKEYS; k++)
		if (f->nval[k] && !f_any(f, k, r))
			return false;
	return true;
}

static long known_find(const struct lm_it_proto_filter *f, const char *key)
{
	size_t i;

	for (i = 0; key && i < f->nknown; i++)
		if (!strcmp(f->known[i], key))
			return (long)i;
	return -1;
}

bool lm_it_proto_filter_judge(struct lm_it_proto_filter *f, const struct lm_it_proto_rec *r)
{
	bool program = true, has_program = f->nval[F_EXE] || f->nval[F_ARGS];
	long at;
	int k;

	if (r->kind != 'E')
		return false;
	if (has_program) {
		at = known_find(f, r->key);
		if (r->type == 'E') {
			program = (!f->nval[F_EXE] || f_any(f, F_EXE, r)) &&
				  (!f->nval[F_ARGS] || f_any(f, F_ARGS, r));
			if (program && at < 0 && r->key) {
				if (f->nknown == f->capknown) {
					size_t c = f->capknown ? f->capknown * 2 : 64;
					char **nk = realloc(f->known, c * sizeof(*nk));

					if (!nk)
						return false;
					f->known = nk;
					f->capknown = c;
				}
				f->known[f->nknown++] = strdup(r->key);
			}
		} else {
			program = at >= 0;
			if (at >= 0 && r->type == 'X') {
				free(f->known[at]);
				f->known[at] = f->known[--f->nknown];
			}
		}
	}
	if (!program)
		return false;
	for (k = 0; k < F_NKEYS; k++)
		if (k != F_EXE && k != F_ARGS && f->nval[k] && !f_any(f, k, r))
			return false;
	return true;
}

void lm_it_proto_filter_free(struct lm_it_proto_filter *f)
{
	unsigned int i;
	int k;

	if (!f)
		return;
	for (k = 0; k < F_NKEYS; k++)
		for (i = 0; i < f->nval[k]; i++)
			free(f->val[k][i]);
	for (i = 0; i < f->nknown; i++)
		free(f->known[i]);
	free(f->known);
	free(f);
}

char *lm_it_proto_qenc(const char *in, char *out, size_t cap)
{
	size_t o = 0;

	for (; *in && o + 4 < cap; in++) {
		unsigned char c = (unsigned char)*in;

		if (isalnum(c) || strchr("._~/*-", c))
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, cap - o, "%%%02X", c);
	}
	out[o] = '\0';
	return out;
}

int lm_it_proto_raw_upgrade(uint16_t port, const char *target, int timeout_ms, int *status,
			    char *body, size_t cap)
{
	int64_t deadline = now_ms() + timeout_ms;
	char *buf = NULL, *cl;
	size_t got = 0, blen, want = (size_t)-1;
	ssize_t hl;
	int fd = -1, err;

	*status = 0;
	if (cap)
		body[0] = '\0';
	buf = malloc(PROTO_HDR_MAX + 8192);
	if (!buf)
		return -ENOMEM;
	err = tcp_connect(port, 0, timeout_ms, &fd);
	if (err)
		goto out;
	err = send_upgrade(fd, port, target, deadline);
	if (err)
		goto out;
	hl = read_head(fd, buf, PROTO_HDR_MAX, &got, deadline);
	if (hl < 0) {
		err = (int)hl;
		goto out;
	}
	if (sscanf(buf, "HTTP/1.%*d %d", status) != 1) {
		err = -EPROTO;
		goto out;
	}
	if (*status == 101)
		goto out;
	cl = strcasestr(buf, "\r\ncontent-length:");
	if (cl && cl < buf + hl)
		want = strtoul(cl + 17, NULL, 10);
	/* the body: Content-Length bytes, or up to EOF */
	while (got - (size_t)hl < want && got < PROTO_HDR_MAX + 8191 && now_ms() < deadline) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&pf, 1, (int)(deadline - now_ms())) <= 0)
			continue;
		r = recv(fd, buf + got, PROTO_HDR_MAX + 8191 - got, 0);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	blen = got - (size_t)hl;
	if (want != (size_t)-1 && blen > want)
		blen = want;
	snprintf(body, cap, "%.*s", (int)blen, buf + hl);
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return err;
}

long long lm_it_proto_sync(struct lm_it_proto *s, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	char *argv[] = { "/bin/true", NULL };
	size_t k = s->nrecs;
	int status, err;
	pid_t pid;

	err = lm_it_spawn(argv, -1, -1, &pid);
	if (err)
		return err;
	err = lm_it_reap(pid, timeout_ms, &status);
	if (err)
		return err;
	while (now_ms() < deadline) {
		for (; k < s->nrecs; k++)
			if (s->recs[k].kind == 'E' && s->recs[k].type == 'X' &&
			    s->recs[k].pid == pid && s->recs[k].ppid == getpid())
				return s->recs[k].seq;
		err = lm_it_proto_pump(s, 100);
		if (err < 0)
			return err;
	}
	return -ETIMEDOUT;
}

int lm_it_proto_storm(const char *fb, int seconds, int max_live, int total, pid_t *pid)
{
	char sec[16], live[16], tot[16];
	char *argv[] = { (char *)fb, "--mode",	   "exec", "--exec",  "/bin/true", "--seconds",
			 sec,	     "--max-live", live,   "--total", tot,	   NULL };

	snprintf(sec, sizeof(sec), "%d", seconds);
	snprintf(live, sizeof(live), "%d", max_live);
	snprintf(tot, sizeof(tot), "%d", total);
	return lm_it_spawn(argv, -1, -1, pid);
}

const char *lm_it_proto_fb(int argc, char **argv)
{
	if (argc < 3 || access(argv[2], X_OK) < 0) {
		fprintf(stderr, "FAIL: usage: %s /path/to/lifemon /path/to/forkbomb-lite\n",
			argv[0]);
		exit(1);
	}
	return argv[2];
}
