/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Per-client filters of /ws: parse the query string of an upgrade request into a fixed-size
 * struct lm_filter (kept in lws per-session memory) and test events against it. The ws
 * thread parses at the handshake and matches per event; pure (no I/O, no allocation, no
 * lws), so any thread may call it on its own filter.
 */
#ifndef LM_FILTER_H
#define LM_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LM_FILTER_MAX_VALUES 16	       /* per key, over all its repetitions */
#define LM_FILTER_MAX_VALUE_BYTES 256  /* one value of a key, decoded */
#define LM_FILTER_MAX_QUERY_BYTES 4096 /* the whole query */
#define LM_FILTER_MAX_CONTAINER_HEX 64 /* a container id prefix */
/* A buffer of this size always holds lm_filter_format's output (3 bytes per value byte). */
#define LM_FILTER_FORMAT_BYTES (3 * LM_FILTER_MAX_QUERY_BYTES + 1)
/* A `why` buffer of this size holds every reason whole (values are shown cut to 40 bytes). */
#define LM_FILTER_WHY_BYTES 256

/* What a filter tests, prepared by the serializer per event. Strings are raw bytes + NUL. */
struct lm_filter_ev {
	uint8_t type;	   /* LM_EV_EXEC 1, LM_EV_EXIT 2, LM_EV_OOM 3 (bpf/lm_event.h names) */
	bool nonzero_exit; /* EXIT with exit_code != 0 or a signal */
	uint32_t pid, ppid, uid;
	const char *comm;      /* never NULL ("" if empty) */
	const char *exe;       /* NULL when the event has none */
	const char *cgroup;    /* NULL when unknown */
	const char *container; /* NULL when none; lowercase hex */
	const char *args;      /* NULL but on EXEC: the arguments joined by single spaces */
	uint32_t args_len;     /* bytes of args (it may contain no NUL) */
	/*
	 * EXIT and OOM_KILL carry no exe or args: the caller says whether the process's EXEC
	 * passed exe= and args= (lm_filter_match_program), which then stand for the process.
	 */
	bool program_matched;
};

/* The string-valued keys; their values live in lm_filter.pool. */
enum lm_filter_skey {
	LM_FILTER_COMM,
	LM_FILTER_EXE,
	LM_FILTER_CONTAINER, /* stored lowercased */
	LM_FILTER_CGROUP,
	LM_FILTER_ARGS,
	LM_FILTER_SKEY_CNT,
};

/* The u32-valued keys. */
enum lm_filter_nkey {
	LM_FILTER_PID,
	LM_FILTER_PPID,
	LM_FILTER_UID,
	LM_FILTER_NKEY_CNT,
};

/* One string value: pool[off .. off + len) followed by a NUL (globs go to fnmatch as is). */
struct lm_filter_str {
	uint16_t off, len;
};

/*
 * A parsed query: fixed size (about 4.6 KiB), all values inside. Read it only through the
 * functions below; the fields are public for sizeof and for lws per-session memory.
 */
struct lm_filter {
	uint8_t types;	   /* bit (1 << LM_EV_*) per type= value; 0: no type filter */
	bool exit_nonzero; /* exit=nonzero given */
	uint8_t str_cnt[LM_FILTER_SKEY_CNT];
	uint8_t num_cnt[LM_FILTER_NKEY_CNT];
	uint8_t type_cnt, exit_cnt; /* values given (duplicates too), for the per-key limit */
	struct lm_filter_str str[LM_FILTER_SKEY_CNT][LM_FILTER_MAX_VALUES];
	uint32_t num[LM_FILTER_NKEY_CNT][LM_FILTER_MAX_VALUES];
	uint16_t pool_len;    /* bytes of pool in use */
	uint16_t query_bytes; /* bytes of the arguments seen, '&' between them counted */
	uint16_t arg_cnt;     /* arguments seen */
	/*
	 * Each value takes its bytes plus a NUL; an argument "k=v1,v2" gives at most its own
	 * length, so the query limit bounds the pool.
	 */
	char pool[LM_FILTER_MAX_QUERY_BYTES + 1];
	bool has_since;
	uint64_t since; /* seq to replay from, >= 1 (since=) */
	bool has_instance;
	char instance[17]; /* 16 lowercase hex digits and a NUL (instance=) */
};

/* An empty filter: matches every event, no since, no instance. */
void lm_filter_init(struct lm_filter *f);

/*
 * Adds one already percent-decoded "key=value" argument, as libwebsockets hands URI args
 * over (lws_hdr_copy_fragment(WSI_TOKEN_HTTP_URI_ARGS)); `arg` is `len` bytes, no NUL needed;
 * a NUL byte in it is an error. An empty argument (from "a=1&&b=2") is skipped; token=... is
 * accepted and ignored. Keys are: type, comm, exe, pid, ppid, uid, container, cgroup, exit,
 * args (commas in the value separate values that OR), since, instance, token.
 * Returns 0, or -EINVAL with a one-line printable reason in `why` (NUL-terminated, cut to
 * why_cap; LM_FILTER_WHY_BYTES holds any reason), e.g. "bad filter: unknown key 'foo'".
 * After an error the filter is only fit for lm_filter_init. Any thread; never blocks.
 */
int lm_filter_parse_arg(struct lm_filter *f, const char *arg, size_t len, char *why,
			size_t why_cap);

/*
 * Parses a raw query string "a=b&c=d" (no leading '?', `len` bytes, no NUL needed) as
 * libwebsockets 4.1 does for URI args, then feeds each argument to lm_filter_parse_arg:
 * unencoded '&' and ';' separate arguments, %XX (either case) decodes to its byte, unencoded
 * '+' is a space, an encoded '=' before the first plain '=' of an argument becomes '_'.
 * A '%' not followed by two hex digits, a %00 or a raw NUL is an error, as is a query longer
 * than LM_FILTER_MAX_QUERY_BYTES. Returns 0 or -EINVAL with the reason in `why`.
 */
int lm_filter_parse_query(struct lm_filter *f, const char *q, size_t len, char *why,
			  size_t why_cap);

/* True if any filter key is set (since, instance and token are not filter keys). */
bool lm_filter_is_active(const struct lm_filter *f);

/*
 * True if event `e` passes: every key given matches (AND), a key matches when any of its
 * values does (OR). A key that tests a field `e` lacks (cgroup, container NULL; exit on a
 * non-EXIT; exe, args NULL on an EXEC) does not match. On EXIT and OOM_KILL, exe= and args=
 * together match when e->program_matched. No filter keys: always true. Any thread; no
 * syscalls.
 */
bool lm_filter_match(const struct lm_filter *f, const struct lm_filter_ev *e);

/* True if the filter has exe= or args=: what the program of a process decides. */
bool lm_filter_has_program(const struct lm_filter *f);

/*
 * exe= and args= alone against an EXEC (true when neither is given): whether the process
 * runs a program the filter wants, so that its EXIT and OOM_KILL match these keys too.
 */
bool lm_filter_match_program(const struct lm_filter *f, const struct lm_filter_ev *e);

/*
 * Canonical form of the filter keys (not since/instance/token) as a query string: keys in
 * the order type, comm, exe, pid, ppid, uid, container, cgroup, exit, args, a repeated key's
 * values merged into one key with commas, type values as exec, exit, oom_kill in that order,
 * other values in the order given, percent-encoded so that the output is plain ASCII with no
 * '"' or '\\' (it goes inside a JSON string unescaped). It parses back into a filter that
 * matches the same events and formats the same, unless encoding made it longer than
 * LM_FILTER_MAX_QUERY_BYTES.
 * "" when no key is set. Returns the bytes written (before the NUL) or -ENOSPC when they do
 * not fit in cap (LM_FILTER_FORMAT_BYTES always fits); then buf holds "" if cap > 0.
 */
int lm_filter_format(const struct lm_filter *f, char *buf, size_t cap);

#endif /* LM_FILTER_H */
