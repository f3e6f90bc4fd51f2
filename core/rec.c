// SPDX-License-Identifier: GPL-2.0
/*
 * Record decoding: bounds every length of a variable-size kernel record against the record's
 * own size and against what the BPF programs can write, so a corrupt record is refused, not
 * read past. Used by the lm-reader thread (check) and the lm-ser thread (decode).
 */
#include "core/rec.h"

#include <errno.h>
#include <string.h>

_Static_assert(sizeof(struct lm_common) == 72, "lm_common layout");
_Static_assert(offsetof(struct lm_exec, data) == 92, "lm_exec layout");
_Static_assert(offsetof(struct lm_exit, data) == 92, "lm_exit layout");
_Static_assert(offsetof(struct lm_oom, data) == 112, "lm_oom layout");
_Static_assert(offsetof(struct lm_cgroup_rec, data) == 74, "lm_cgroup_rec layout");

/* Takes `len` bytes at *off of a record of `size` bytes; false if they are not all there. */
static bool lm_rec_take(const char *base, uint32_t size, uint32_t *off, uint32_t len,
			struct lm_rec_str *out)
{
	if (len > size - *off)
		return false;
	out->p = base + *off;
	out->len = len;
	*off += len;
	return true;
}

static int lm_rec_fail(const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return -EINVAL;
}

int lm_rec_decode(const void *buf, uint32_t size, struct lm_rec_view *out, const char **why)
{
	const struct lm_common *c = buf;
	const char *b = buf;
	uint32_t off;

	memset(out, 0, sizeof(*out));
	if (size < sizeof(*c))
		return lm_rec_fail(why, "shorter than its header");
	if (c->version != LM_EVENT_VERSION)
		return lm_rec_fail(why, "another record version");
	if (c->comm_len > LM_COMM_LEN)
		return lm_rec_fail(why, "comm longer than the kernel's");
	out->c = c;
	out->size = size;
	switch (c->type) {
	case LM_EV_EXEC: {
		const struct lm_exec *e = buf;

		if (size < offsetof(struct lm_exec, data))
			return lm_rec_fail(why, "EXEC shorter than its fixed part");
		if (e->pcomm_len > LM_COMM_LEN || e->args_len > LM_ARGS_MAX ||
		    e->filename_len > LM_PATH_MAX || e->exe_len > LM_PATH_MAX ||
		    e->cwd_len > LM_PATH_MAX)
			return lm_rec_fail(why, "EXEC length beyond the programs' caps");
		out->exec = e;
		off = offsetof(struct lm_exec, data);
		if (!lm_rec_take(b, size, &off, c->comm_len, &out->comm) ||
		    !lm_rec_take(b, size, &off, e->pcomm_len, &out->pcomm) ||
		    !lm_rec_take(b, size, &off, e->args_len, &out->args) ||
		    !lm_rec_take(b, size, &off, e->filename_len, &out->filename) ||
		    !lm_rec_take(b, size, &off, e->exe_len, &out->exe) ||
		    !lm_rec_take(b, size, &off, e->cwd_len, &out->cwd))
			return lm_rec_fail(why, "EXEC strings run past the record");
		break;
	}
	case LM_EV_EXIT:
		if (size < offsetof(struct lm_exit, data))
			return lm_rec_fail(why, "EXIT shorter than its fixed part");
		out->exit = buf;
		off = offsetof(struct lm_exit, data);
		if (!lm_rec_take(b, size, &off, c->comm_len, &out->comm))
			return lm_rec_fail(why, "EXIT comm runs past the record");
		break;
	case LM_EV_OOM:
		if (size < offsetof(struct lm_oom, data))
			return lm_rec_fail(why, "OOM shorter than its fixed part");
		out->oom = buf;
		off = offsetof(struct lm_oom, data);
		if (!lm_rec_take(b, size, &off, c->comm_len, &out->comm))
			return lm_rec_fail(why, "OOM comm runs past the record");
		break;
	case LM_EV_CGROUP: {
		const struct lm_cgroup_rec *g = buf;

		if (size < offsetof(struct lm_cgroup_rec, data))
			return lm_rec_fail(why, "CGROUP shorter than its fixed part");
		if (g->path_len > LM_PATH_MAX)
			return lm_rec_fail(why, "CGROUP path beyond the programs' cap");
		out->cg = g;
		off = offsetof(struct lm_cgroup_rec, data);
		if (!lm_rec_take(b, size, &off, g->path_len, &out->cg_path))
			return lm_rec_fail(why, "CGROUP path runs past the record");
		break;
	}
	default:
		return lm_rec_fail(why, "unknown record type");
	}
	/* the ring rounds a record up to 8 bytes at most: more would be a size/length mismatch */
	if (size - off >= 8)
		return lm_rec_fail(why, "record longer than its parts");
	return 0;
}

size_t lm_rec_path(const struct lm_rec_str *walked, bool cut, char *out, size_t cap)
{
	uint32_t end = walked->len;
	size_t n = 0;

	if (!cap)
		return 0;
	if (!end) {
		out[0] = '/';
		return 1;
	}
	/* components are "/name" in walk order: emit them from the last to the first */
	while (end > 0) {
		uint32_t start = end;
		size_t len;

		while (start > 0 && walked->p[start - 1] != '/')
			start--;
		/* start - 1 is the component's '/', or the walk's first byte had none */
		len = end - start;
		if (start > 0 && !(cut && n == 0)) {
			if (n == cap)
				break;
			out[n++] = '/';
		}
		if (len > cap - n)
			len = cap - n;
		memcpy(out + n, walked->p + start, len);
		n += len;
		end = start > 0 ? start - 1 : 0;
	}
	return n;
}
