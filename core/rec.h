/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Record decoding: checks one variable-size kernel record (bpf/lm_event.h) and hands back
 * views of its parts, never reading past its end. Pure: no I/O, no threads, no allocation;
 * the reader checks each record once with it and the serializer decodes it again to write it.
 */
#ifndef LM_REC_H
#define LM_REC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/types.h>

#include "bpf/lm_event.h"

/* Bytes of a record's string part: not NUL-terminated; any byte may occur. */
struct lm_rec_str {
	const char *p;
	uint32_t len;
};

struct lm_rec_view {
	const struct lm_common *c;	/* the record itself; 8-byte aligned */
	uint32_t size;			/* bytes of the record */
	struct lm_rec_str comm;
	/* EXEC only */
	const struct lm_exec *exec;
	struct lm_rec_str pcomm, args, filename, exe, cwd; /* exe, cwd as walked */
	/* one of these, by type */
	const struct lm_exit *exit;
	const struct lm_oom *oom;
	const struct lm_cgroup_rec *cg;
	struct lm_rec_str cg_path;
};

/*
 * Decodes the record of `size` bytes at `buf` (8-byte aligned). Returns 0 and *out, or
 * -EINVAL with *why (a static string) for a record that is too short, of another version or
 * type, or whose lengths point past its end or beyond what the programs ever write.
 */
int lm_rec_decode(const void *buf, uint32_t size, struct lm_rec_view *out, const char **why);

/*
 * Writes a walked path (see lm_event.h: "/c/b/a" for /a/b/c) in order into `out`: "/a/b/c",
 * "/" for the root. A cut path (`cut`) keeps its leaf end without the leading '/': "b/c".
 * Returns the bytes written, at most `cap` (a path longer than cap is cut at its end).
 */
size_t lm_rec_path(const struct lm_rec_str *walked, bool cut, char *out, size_t cap);

#endif /* LM_REC_H */
