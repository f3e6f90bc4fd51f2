/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Test-side view of the /ws protocol of issue 10 for the integration tests (it_filter,
 * it_resume, it_filter_loss, it_stall): a raw-socket stream client that keeps the HELLO, every
 * event and every LOST notice in arrival order, a JSON Lines file loader giving the same
 * records, a model of the /ws filters (the oracle the server is checked against) and a raw
 * upgrade request that reads a refusal's status and body. A stream belongs to the thread that
 * uses it and never calls lm_it_fail; lm_it_proto_report does, on the main thread.
 */
#ifndef LM_IT_PROTO_H
#define LM_IT_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* One line of a stream or a file: an event or a LOST notice. */
struct lm_it_proto_rec {
	long long seq;	      /* event: its seq; notice: 0 */
	long long first_seq;  /* LOST with seqs: the range lost; restarted: since */
	long long last_seq;
	long long count;      /* LOST: "count" */
	long long matched;    /* LOST slow_client: "matched", -1 when absent */
	long long uid, exit_code, signal;
	pid_t pid, ppid;
	uint32_t line_bytes;  /* the line's length without its "\n" */
	char kind;	      /* 'E' event, 'L' LOST notice */
	char type;	      /* event: 'E' EXEC, 'X' EXIT, 'O' OOM_KILL */
	char reason;	      /* LOST: 's' slow_client, 'e' evicted, 'r' restarted,
			       * 'k' kernel_ring_full, 'f' sink_full, '?' other */
	char instance[17];    /* event: "instance"; restarted: "previous_instance" */
	/* kept only with keep_fields (else NULL); malloc'ed, owned by the stream or file */
	char *comm, *exe, *cgroup, *container, *key;
	char *args; /* EXEC: the args joined by single spaces */
};

struct lm_it_proto_hello {
	bool seen;
	char instance[17];
	char version[64];
	char filter[512];
	long long first_seq, next_seq;
};

struct lm_it_proto;

struct lm_it_proto_opts {
	uint16_t port;
	const char *query; /* after "/ws?" (already percent-encoded); NULL or "": none */
	int rcvbuf;	   /* > 0: SO_RCVBUF set before connect (a small window) */
	bool keep_fields;  /* keep the string fields of each event */
	int timeout_ms;	   /* connect and upgrade; 0: 5000 */
	size_t max_read;   /* > 0: read at most this many bytes per pump (a slow reader) */
};

/*
 * Connects, sends the upgrade for /ws?query and reads the 101 response (bytes after it are
 * kept for the first pump). Returns 0 and *out; -EACCES when the server answered another
 * status (*status, may be NULL, says which); -EPROTO for a bad 101; -ETIMEDOUT; -errno.
 */
int lm_it_proto_open(const struct lm_it_proto_opts *o, struct lm_it_proto **out, int *status);

/*
 * Reads for up to timeout_ms, returning after the first complete text message (or, with
 * max_read, after one read of at most that many bytes). Returns the
 * number of lines it held, 0 on timeout, or a negative error once the stream is dead (a close
 * frame from the server is recorded, not a problem). Answers pings.
 */
int lm_it_proto_pump(struct lm_it_proto *s, int timeout_ms);

/* Changes opts.max_read (0: no limit). */
void lm_it_proto_set_max_read(struct lm_it_proto *s, size_t max_read);

/* The HELLO (seen is false before it arrived). */
const struct lm_it_proto_hello *lm_it_proto_hello(const struct lm_it_proto *s);

/* Lines after the HELLO, in arrival order; valid until the next pump. */
const struct lm_it_proto_rec *lm_it_proto_recs(const struct lm_it_proto *s, size_t *n);

/* Highest event seq received so far, 0 for none. */
long long lm_it_proto_last_seq(const struct lm_it_proto *s);

/* Events (not notices) received so far. */
size_t lm_it_proto_events(const struct lm_it_proto *s);

/* 0 while alive, else the error that ended it; *code and reason: the close frame, if any. */
int lm_it_proto_dead(const struct lm_it_proto *s, uint16_t *code, const char **reason);

/* Reports (lm_it_fail, prefixed with who) the problems seen; returns their number. */
unsigned int lm_it_proto_report(struct lm_it_proto *s, const char *who);

/* Sends a close frame (if alive), closes the socket and frees; accepts NULL. */
void lm_it_proto_close(struct lm_it_proto *s);

/* Closes the socket without a close frame (an abrupt disconnect) and frees; accepts NULL. */
void lm_it_proto_drop(struct lm_it_proto *s);

/*
 * Loads a JSON Lines file (lifemon --output). Returns 0 with *recs (caller frees with
 * lm_it_proto_recs_free) and *n, or -errno. Lines that are not valid events or notices are
 * reported with lm_it_fail and skipped.
 */
int lm_it_proto_load_file(const char *path, bool keep_fields, struct lm_it_proto_rec **recs,
			  size_t *n);

void lm_it_proto_recs_free(struct lm_it_proto_rec *recs, size_t n);

/*
 * Maps seqs to positions: returns a malloc'ed array (caller frees; NULL without memory) where
 * [seq - *lo] is the index in recs of the event with that seq, or -1 when none has it (the
 * last one wins for a duplicate); *lo..*hi are the lowest and highest event seqs (*hi < *lo:
 * no events).
 */
long *lm_it_proto_seq_index(const struct lm_it_proto_rec *recs, size_t n, long long *lo,
			    long long *hi);

/* --- the filter model --- */

struct lm_it_proto_filter;

/*
 * Parses a /ws query (as sent: '&' between keys, ',' between values, %XX decoded in each value)
 * into the model. Non-filter keys (since, instance, token) are skipped. Returns 0 or -EINVAL
 * (the test's own query is wrong).
 */
int lm_it_proto_filter_parse(const char *query, struct lm_it_proto_filter **out);

/*
 * True if the event (kept with keep_fields) passes the filter; notices never "match". exe= and
 * args= test an EXEC's own fields only (see lm_it_proto_filter_judge for the stream).
 */
bool lm_it_proto_filter_match(const struct lm_it_proto_filter *f, const struct lm_it_proto_rec *r);

/*
 * What lifemon decides for one client, event by event: call it once per event in seq order
 * from the client's first seq on (sent, filtered or lost alike). As lm_it_proto_filter_match,
 * but as lifemon's per-client process set does, an EXEC that passes exe= and args= makes that
 * process (its "key") known, and its EXIT (which forgets it) and OOM_KILL pass those two keys
 * (the others still apply). Needs keep_fields.
 */
bool lm_it_proto_filter_judge(struct lm_it_proto_filter *f, const struct lm_it_proto_rec *r);

void lm_it_proto_filter_free(struct lm_it_proto_filter *f);

/* Percent-encodes every byte of `in` but letters, digits and ._~/-* into out. Returns out. */
char *lm_it_proto_qenc(const char *in, char *out, size_t cap);

/*
 * Sends a WebSocket upgrade for `target` (e.g. "/ws?pid=x") on a raw socket and reads the
 * answer: *status (0: none) and up to cap-1 bytes of its body into body (NUL-terminated; the
 * body of a 101 is empty). Returns 0 or -errno (-ETIMEDOUT, -EPROTO for no status line).
 */
int lm_it_proto_raw_upgrade(uint16_t port, const char *target, int timeout_ms, int *status,
			    char *body, size_t cap);

/*
 * Runs /bin/true (a child of the caller) and pumps `s` until its EXIT arrives. Returns that
 * EXIT's seq, or -ETIMEDOUT, or the stream's error. For unfiltered streams (or filters that
 * pass EXITs of the caller's children).
 */
long long lm_it_proto_sync(struct lm_it_proto *s, int timeout_ms);

/*
 * Starts bench/forkbomb-lite (path fb) in exec mode running /bin/true: at most max_live
 * children at once, total in all, for `seconds`. Returns 0 and *pid (a tracked child of the
 * caller: reap it with lm_it_reap) or -errno.
 */
int lm_it_proto_storm(const char *fb, int seconds, int max_live, int total, pid_t *pid);

/* The forkbomb-lite path from argv[2]; fails the test (exit 1) without it. */
const char *lm_it_proto_fb(int argc, char **argv);

#endif /* LM_IT_PROTO_H */
