/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lifemon --nats-tail: a small JetStream consumer, so that a user without the nats CLI can
 * see what arrived. Prints each message's body (one JSON line) on stdout, oldest first,
 * through an ordered consumer (no state left on the server), and exits once it printed what
 * the stream held when it started, unless following.
 */
#ifndef LM_NATS_TAIL_H
#define LM_NATS_TAIL_H

#include <stdbool.h>
#include <stdint.h>

#include "net/nats.h"

struct lm_nats_tail_opts {
	struct lm_nats_opts nats;	/* urls, stream, subject, creds, token, TLS */
	uint64_t stream_seq;		/* first stream sequence; 0: 1 */
	uint64_t since;			/* skip messages whose Lifemon-Seq is below; 0: none */
	const char *instance;		/* only messages of this Lifemon-Instance; NULL: all */
	bool follow;			/* keep printing until killed */
};

/*
 * Runs the consumer on the calling thread. Errors go to stderr as one line each. Returns 0,
 * or -errno (-ECONNREFUSED: no server; -ENOENT: no such stream; -EIO: the stream stopped
 * answering).
 */
int lm_nats_tail(const struct lm_nats_tail_opts *o);

#endif /* LM_NATS_TAIL_H */
