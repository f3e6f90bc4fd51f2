/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Pure JSON writer for events and in-band notices: a fixed schema written straight into the
 * caller's buffer, valid for a strict parser whatever bytes the kernel strings hold.
 * No I/O, no threads, no allocation.
 */
#ifndef LM_JSON_H
#define LM_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <linux/types.h>

#include "bpf/lm_event.h"
#include "core/rec.h"

/*
 * One event and what the serializer resolved for it. Strings are bytes with a length (no
 * NUL needed); a NULL string is absent from the line.
 */
struct lm_json_ev {
	const struct lm_rec_view *v;	/* the decoded record (EXEC, EXIT or OOM) */
	uint64_t seq;
	uint64_t unix_ns;		/* event time, ns since the Unix epoch */
	const char *exe, *cwd;		/* EXEC: in order (lm_rec_path) */
	size_t exe_len, cwd_len;
	const char *cgroup;		/* cgroup v2 path, NULL when unknown */
	size_t cgroup_len;
	const char *container_id;	/* NUL-terminated, or NULL */
	const char *pod_uid;
	const char *unit;
	const char *memcg;		/* OOM: the victim's memory cgroup path, or NULL */
	size_t memcg_len;
	const char *instance;		/* NUL-terminated lifemon run id (hex), or NULL */
};

/* Upper bound of one event line with `max_args` argument bytes, including the '\n'. */
size_t lm_json_event_max(uint32_t max_args);

/*
 * Writes one event as a JSON object followed by '\n'. Returns the bytes written, or -ENOSPC
 * when `cap` is too small (nothing usable was written; the caller retries with a fresh
 * buffer).
 */
int lm_json_event(char *buf, size_t cap, const struct lm_json_ev *ev);

/*
 * Writes a loss notice followed by '\n':
 * {"type":"LOST","first_seq":F,"last_seq":L,"count":N,"reason":"<reason>"}
 * `reason` is a constant ASCII word chosen by lifemon. Returns bytes or -ENOSPC.
 */
int lm_json_lost(char *buf, size_t cap, uint64_t first_seq, uint64_t last_seq, uint64_t cnt,
		 const char *reason);

/*
 * A client's loss notice, with how many of the lost seqs matched its filter:
 * {"type":"LOST","first_seq":F,"last_seq":L,"count":N,"matched":M,"reason":"<reason>"}
 * Returns bytes or -ENOSPC.
 */
int lm_json_lost_matched(char *buf, size_t cap, uint64_t first_seq, uint64_t last_seq,
			 uint64_t cnt, uint64_t matched, const char *reason);

/*
 * The first message of a /ws connection, followed by '\n':
 * {"type":"HELLO","instance":"I","version":"V","first_seq":F,"next_seq":N,"filter":"Q"}
 * Strings are NUL-terminated and escaped like any. Returns bytes or -ENOSPC.
 */
int lm_json_hello(char *buf, size_t cap, const char *instance, const char *version,
		  uint64_t first_seq, uint64_t next_seq, const char *filter);

/*
 * The notice for a client that resumes (since=) from another run of lifemon, followed by
 * '\n': {"type":"LOST","reason":"restarted","previous_instance":"P","since":S}
 * Returns bytes or -ENOSPC.
 */
int lm_json_restarted(char *buf, size_t cap, const char *previous, uint64_t since);

/*
 * Writes the notice for events the kernel could not queue (its ring for `cpu` was full),
 * followed by '\n'. They never got seqs; the notice stands right before event `before_seq`:
 * {"type":"LOST","count":N,"reason":"kernel_ring_full","cpu":C,"before_seq":S}
 * Returns bytes or -ENOSPC.
 */
int lm_json_kernel_lost(char *buf, size_t cap, uint64_t cnt, uint32_t cpu, uint64_t before_seq);

/*
 * Writes `len` bytes of `s` as a JSON string body (no quotes): valid UTF-8 is kept, except
 * that C0 controls, DEL, C1 controls (U+0080-U+009F) and U+2028/U+2029 become \uXXXX; each
 * byte of an invalid sequence becomes U+FFFD. Stops at the first NUL. Returns bytes written or -ENOSPC. Sets *valid to 0 if any byte was replaced.
 */
int lm_json_str(char *buf, size_t cap, const char *s, size_t len, int *valid);

#endif /* LM_JSON_H */
