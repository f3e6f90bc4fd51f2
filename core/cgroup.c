// SPDX-License-Identifier: GPL-2.0
/*
 * Cgroup names: per tracked hierarchy, a preallocated entry pool indexed by an open-addressing
 * hash on the cgroup id (linear probing, backward-shift deletion, load <= 1/2), a live list in
 * least-recently-used order and a FIFO of removed entries in grace; plus the path parser and
 * the tree scan. Run by the lm-ser thread only.
 */
#include "core/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LM_CGROUP_NIL UINT32_MAX
#define LM_CGROUP_ID_LEN 64
#define LM_CGROUP_POD_LEN 36
#define LM_CGROUP_UNIT_MAX 255
/* Deepest directory the scan descends into: each level holds one fd open. */
#define LM_CGROUP_SCAN_DEPTH 128

enum lm_cgroup_state {
	LM_CGROUP_FREE,
	LM_CGROUP_LIVE,
	LM_CGROUP_DEAD, /* removed, in grace */
};

struct lm_cgroup_ent {
	uint64_t id;
	/* path_len bytes and a NUL, then the NUL-terminated container id, pod uid and unit
	 * that are present; malloc'ed by learn, freed when the entry is dropped or replaced */
	char *blob;
	uint32_t prev, next; /* links in the live or the dead list, or next in the free list */
	uint16_t path_len;   /* <= LM_CGROUP_PATH_MAX */
	uint16_t cid_off, pod_off, unit_off; /* offsets in blob; 0 = absent (0 is the path) */
	uint8_t state;			     /* enum lm_cgroup_state */
};

struct lm_cgroup_list {
	uint32_t head, tail; /* head = oldest / least recently used */
	uint32_t cnt;
};

struct lm_cgroup_hier {
	bool tracked;
	uint32_t hier_id;
	char *mnt;  /* mount point to scan, NULL when none is usable */
	char *root; /* the mount's root in the hierarchy, "" for "/" */
	size_t root_len;
	struct lm_cgroup_ent *ents; /* max_entries */
	uint32_t *slots;	    /* entry index + 1, 0 = empty */
	uint32_t slot_mask;
	unsigned int shift; /* 64 - log2(slots) */
	uint32_t free_head;
	struct lm_cgroup_list live, dead;
	uint64_t last_scan_ns; /* CLOCK_MONOTONIC of the last scan's start */
};

struct lm_cgroup {
	struct lm_cgroup_hier h[2]; /* [0] cgroup v2 (hierarchy 0), [1] v1 memory */
	int memory_hier;
	uint32_t max_entries, grace_cnt;
	uint64_t rescan_interval_ns;
	struct lm_cgroup_stats st;
	/* the scan's path: a cut path stops growing, so NAME_MAX + '/' past the cap suffice */
	char scan_path[LM_CGROUP_PATH_MAX + 256 + 2];
};

/* ---- parser ---- */

static bool lm_cgroup_is_lhex(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
}

static bool lm_cgroup_all_lhex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!lm_cgroup_is_lhex((unsigned char)s[i]))
			return false;
	return true;
}

static bool lm_cgroup_has_prefix(const char *s, size_t n, const char *lit)
{
	size_t l = strlen(lit);

	return n >= l && memcmp(s, lit, l) == 0;
}

static bool lm_cgroup_has_suffix(const char *s, size_t n, const char *lit)
{
	size_t l = strlen(lit);

	return n >= l && memcmp(s + n - l, lit, l) == 0;
}

static bool lm_cgroup_is(const char *s, size_t n, const char *lit)
{
	return n == strlen(lit) && memcmp(s, lit, n) == 0;
}

/*
 * Whether s[0..n) starts a pod uid: 8-4-4-4-12 lowercase hex, separators all '-' (cgroupfs
 * driver) or all '_' (systemd driver, which reserves '-' for slice nesting). Writes the dashed
 * form to out (37 bytes) when it does.
 */
static bool lm_cgroup_uid(const char *s, size_t n, char *out)
{
	char sep;
	size_t i;

	if (n < LM_CGROUP_POD_LEN)
		return false;
	sep = s[8];
	if (sep != '-' && sep != '_')
		return false;
	for (i = 0; i < LM_CGROUP_POD_LEN; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != sep)
				return false;
		} else if (!lm_cgroup_is_lhex((unsigned char)s[i])) {
			return false;
		}
	}
	if (out) {
		memcpy(out, s, LM_CGROUP_POD_LEN);
		out[8] = out[13] = out[18] = out[23] = '-';
		out[LM_CGROUP_POD_LEN] = '\0';
	}
	return true;
}

/*
 * A component naming a pod: "pod<uid>" (cgroupfs) or "kubepods[-<qos>]-pod<uid>.slice"
 * (systemd), also as the slice of a verbatim "<slice>:<prefix>:<id>": "pod" at the start or
 * after '-', the uid, then the end, ".slice" or ".slice:".
 */
static bool lm_cgroup_comp_pod(const char *s, size_t n, char *out)
{
	const char *t;
	size_t i, rest;

	for (i = 0; i + 3 + LM_CGROUP_POD_LEN <= n; i++) {
		if (memcmp(s + i, "pod", 3) != 0 || (i > 0 && s[i - 1] != '-'))
			continue;
		t = s + i + 3 + LM_CGROUP_POD_LEN;
		rest = n - i - 3 - LM_CGROUP_POD_LEN;
		if (rest != 0 &&
		    !(rest >= 6 && memcmp(t, ".slice", 6) == 0 && (rest == 6 || t[6] == ':')))
			continue;
		if (lm_cgroup_uid(s + i + 3, LM_CGROUP_POD_LEN, out))
			return true;
	}
	return false;
}

/* Ancestors under which a bare 64-hex component is a container id. */
static bool lm_cgroup_comp_is_engine(const char *s, size_t n)
{
	return lm_cgroup_is(s, n, "docker") || lm_cgroup_is(s, n, "actions_job") ||
	       lm_cgroup_has_prefix(s, n, "kubepods") || lm_cgroup_has_prefix(s, n, "libpod") ||
	       lm_cgroup_comp_pod(s, n, NULL);
}

static bool lm_cgroup_under_engine(const char *path, size_t end)
{
	size_t st = 0, i;

	for (i = 0; i <= end; i++) {
		if (i == end || path[i] == '/') {
			if (i > st && lm_cgroup_comp_is_engine(path + st, i - st))
				return true;
			st = i + 1;
		}
	}
	return false;
}

/*
 * The container id a component names, or NULL. Only these prefixes are runtimes' container
 * scopes; "crio-conmon-<id>" and "libpod-conmon-<id>" (the monitor process beside the
 * container, not in it) fail the hex check after "crio-"/"libpod-", so the monitor gets no
 * container id (its pod uid still shows).
 */
static const char *lm_cgroup_comp_cid(const char *path, size_t st, size_t n)
{
	static const char *const prefixes[] = { "docker-", "cri-containerd-", "crio-", "libpod-" };
	static const char cri_sep[] = ":cri-containerd:";
	const char *s = path + st;
	size_t bn = n, i, pl;

	if (lm_cgroup_has_suffix(s, n, ".scope"))
		bn = n - 6;
	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		pl = strlen(prefixes[i]);
		if (bn == pl + LM_CGROUP_ID_LEN && lm_cgroup_has_prefix(s, bn, prefixes[i]) &&
		    lm_cgroup_all_lhex(s + pl, LM_CGROUP_ID_LEN))
			return s + pl;
	}
	/* containerd's systemd-style cgroupsPath "<slice>:cri-containerd:<id>" used verbatim */
	pl = sizeof(cri_sep) - 1;
	if (n > pl + LM_CGROUP_ID_LEN && memcmp(s + n - LM_CGROUP_ID_LEN - pl, cri_sep, pl) == 0 &&
	    lm_cgroup_all_lhex(s + n - LM_CGROUP_ID_LEN, LM_CGROUP_ID_LEN))
		return s + n - LM_CGROUP_ID_LEN;
	if (n == LM_CGROUP_ID_LEN && lm_cgroup_all_lhex(s, n) && lm_cgroup_under_engine(path, st))
		return s;
	return NULL;
}

/* systemd's unit name characters (VALID_CHARS plus '@' of template instances) */
static bool lm_cgroup_unit_char(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == ':' || ch == '_' || ch == '.' || ch == '\\' || ch == '-' || ch == '@';
}

static bool lm_cgroup_comp_unit(const char *s, size_t n)
{
	static const char *const suffixes[] = { ".service", ".scope",  ".slice",    ".socket",
						".mount",   ".swap",   ".target",   ".timer",
						".path",    ".device", ".automount" };
	size_t i;

	if (n > LM_CGROUP_UNIT_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!lm_cgroup_unit_char((unsigned char)s[i]))
			return false;
	for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
		if (n > strlen(suffixes[i]) && lm_cgroup_has_suffix(s, n, suffixes[i]))
			return true;
	return false;
}

void lm_cgroup_parse(const char *path, size_t len, char container_id[65], char pod_uid[37],
		     char unit[256])
{
	size_t end = len, st, n;
	const char *cid;

	container_id[0] = pod_uid[0] = unit[0] = '\0';
	/* components from the innermost out; each field takes the first that names one */
	while (end > 0 && !(container_id[0] && pod_uid[0] && unit[0])) {
		st = end;
		while (st > 0 && path[st - 1] != '/')
			st--;
		n = end - st;
		if (n > 0) {
			if (!container_id[0]) {
				cid = lm_cgroup_comp_cid(path, st, n);
				if (cid) {
					memcpy(container_id, cid, LM_CGROUP_ID_LEN);
					container_id[LM_CGROUP_ID_LEN] = '\0';
				}
			}
			if (!pod_uid[0])
				lm_cgroup_comp_pod(path + st, n, pod_uid);
			if (!unit[0] && lm_cgroup_comp_unit(path + st, n)) {
				memcpy(unit, path + st, n);
				unit[n] = '\0';
			}
		}
		if (st == 0)
			break;
		end = st - 1;
	}
}

/* ---- table ---- */

static uint32_t lm_cgroup_home(const struct lm_cgroup_hier *h, uint64_t id)
{
	/* Fibonacci hashing: kernfs ids are sequential, the multiply spreads them */
	return (uint32_t)((id * 0x9e3779b97f4a7c15ULL) >> h->shift);
}

/* Slot holding id, or LM_CGROUP_NIL. */
static uint32_t lm_cgroup_find_slot(const struct lm_cgroup_hier *h, uint64_t id)
{
	uint32_t i = lm_cgroup_home(h, id), e;

	while ((e = h->slots[i]) != 0) {
		if (h->ents[e - 1].id == id)
			return i;
		i = (i + 1) & h->slot_mask;
	}
	return LM_CGROUP_NIL;
}

static uint32_t lm_cgroup_find(const struct lm_cgroup_hier *h, uint64_t id)
{
	uint32_t i = lm_cgroup_find_slot(h, id);

	return i == LM_CGROUP_NIL ? LM_CGROUP_NIL : h->slots[i] - 1;
}

static void lm_cgroup_slot_add(struct lm_cgroup_hier *h, uint32_t idx)
{
	uint32_t i = lm_cgroup_home(h, h->ents[idx].id);

	while (h->slots[i] != 0)
		i = (i + 1) & h->slot_mask;
	h->slots[i] = idx + 1;
}

/* Backward-shift deletion: every key stays reachable from its home without tombstones. */
static void lm_cgroup_slot_del(struct lm_cgroup_hier *h, uint64_t id)
{
	uint32_t i = lm_cgroup_find_slot(h, id), j, k;

	if (i == LM_CGROUP_NIL)
		return;
	j = i;
	for (;;) {
		j = (j + 1) & h->slot_mask;
		if (h->slots[j] == 0)
			break;
		k = lm_cgroup_home(h, h->ents[h->slots[j] - 1].id);
		/* move j's key into the hole at i unless its home lies cyclically in (i, j] */
		if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		h->slots[i] = h->slots[j];
		i = j;
	}
	h->slots[i] = 0;
}

static void lm_cgroup_unlink(struct lm_cgroup_hier *h, struct lm_cgroup_list *l, uint32_t idx)
{
	struct lm_cgroup_ent *e = &h->ents[idx];

	if (e->prev != LM_CGROUP_NIL)
		h->ents[e->prev].next = e->next;
	else
		l->head = e->next;
	if (e->next != LM_CGROUP_NIL)
		h->ents[e->next].prev = e->prev;
	else
		l->tail = e->prev;
	e->prev = e->next = LM_CGROUP_NIL;
	l->cnt--;
}

static void lm_cgroup_append(struct lm_cgroup_hier *h, struct lm_cgroup_list *l, uint32_t idx)
{
	struct lm_cgroup_ent *e = &h->ents[idx];

	e->prev = l->tail;
	e->next = LM_CGROUP_NIL;
	if (l->tail != LM_CGROUP_NIL)
		h->ents[l->tail].next = idx;
	else
		l->head = idx;
	l->tail = idx;
	l->cnt++;
}

static struct lm_cgroup_list *lm_cgroup_list_of(struct lm_cgroup_hier *h, uint32_t idx)
{
	return h->ents[idx].state == LM_CGROUP_DEAD ? &h->dead : &h->live;
}

/* Drops an entry: out of the hash and its list, blob freed, slot back on the free list. */
static void lm_cgroup_drop(struct lm_cgroup *c, struct lm_cgroup_hier *h, uint32_t idx)
{
	struct lm_cgroup_ent *e = &h->ents[idx];

	lm_cgroup_slot_del(h, e->id);
	lm_cgroup_unlink(h, lm_cgroup_list_of(h, idx), idx);
	free(e->blob);
	e->blob = NULL;
	e->state = LM_CGROUP_FREE;
	e->next = h->free_head;
	h->free_head = idx;
	c->st.entries--;
}

static uint32_t lm_cgroup_alloc(struct lm_cgroup *c, struct lm_cgroup_hier *h)
{
	uint32_t idx;

	if (h->free_head == LM_CGROUP_NIL) {
		/* full: a live entry can be found again by a rescan, a removed one cannot */
		if (h->live.cnt > 0) {
			lm_cgroup_drop(c, h, h->live.head);
			c->st.evictions++;
		} else {
			lm_cgroup_drop(c, h, h->dead.head);
		}
	}
	idx = h->free_head;
	h->free_head = h->ents[idx].next;
	c->st.entries++;
	return idx;
}

static struct lm_cgroup_hier *lm_cgroup_hier_of(struct lm_cgroup *c, uint32_t hier)
{
	if (hier == 0)
		return &c->h[0];
	if (c->h[1].tracked && hier == c->h[1].hier_id)
		return &c->h[1];
	return NULL;
}

/* Builds an entry's blob: the (cut) path, then the names parsed from the whole path. */
static char *lm_cgroup_blob(const char *path, size_t len, size_t keep, struct lm_cgroup_ent *e)
{
	char cid[LM_CGROUP_ID_LEN + 1], pod[LM_CGROUP_POD_LEN + 1], unit[LM_CGROUP_UNIT_MAX + 1];
	size_t cl, pl, ul, off;
	char *b;

	lm_cgroup_parse(path, len, cid, pod, unit);
	cl = cid[0] ? sizeof(cid) : 0;
	pl = pod[0] ? sizeof(pod) : 0;
	ul = unit[0] ? strlen(unit) + 1 : 0;
	b = malloc(keep + 1 + cl + pl + ul);
	if (!b)
		return NULL;
	memcpy(b, path, keep);
	b[keep] = '\0';
	off = keep + 1;
	e->cid_off = e->pod_off = e->unit_off = 0;
	if (cl) {
		memcpy(b + off, cid, cl);
		e->cid_off = (uint16_t)off;
		off += cl;
	}
	if (pl) {
		memcpy(b + off, pod, pl);
		e->pod_off = (uint16_t)off;
		off += pl;
	}
	if (ul) {
		memcpy(b + off, unit, ul);
		e->unit_off = (uint16_t)off;
	}
	e->path_len = (uint16_t)keep;
	return b;
}

static void lm_cgroup_learn_in(struct lm_cgroup *c, struct lm_cgroup_hier *h, uint64_t id,
			       const char *path, size_t len)
{
	struct lm_cgroup_ent tmp, *e;
	size_t keep;
	uint32_t idx;
	char *b;

	if (len == 0) {
		path = "/";
		len = 1;
	}
	keep = len > LM_CGROUP_PATH_MAX ? LM_CGROUP_PATH_MAX : len;
	idx = lm_cgroup_find(h, id);
	if (idx != LM_CGROUP_NIL && h->ents[idx].path_len == keep &&
	    memcmp(h->ents[idx].blob, path, keep) == 0 && keep == len) {
		/* unchanged (a rescan meeting a known cgroup): no copy, just alive and fresh */
		lm_cgroup_unlink(h, lm_cgroup_list_of(h, idx), idx);
		h->ents[idx].state = LM_CGROUP_LIVE;
		lm_cgroup_append(h, &h->live, idx);
		return;
	}
	b = lm_cgroup_blob(path, len, keep, &tmp);
	if (!b) {
		c->st.nomem++;
		return;
	}
	if (keep < len)
		c->st.cut_paths++;
	if (idx != LM_CGROUP_NIL) {
		lm_cgroup_unlink(h, lm_cgroup_list_of(h, idx), idx);
	} else {
		idx = lm_cgroup_alloc(c, h);
		h->ents[idx].id = id;
		h->ents[idx].blob = NULL;
		lm_cgroup_slot_add(h, idx);
	}
	e = &h->ents[idx];
	free(e->blob);
	e->blob = b;
	e->path_len = tmp.path_len;
	e->cid_off = tmp.cid_off;
	e->pod_off = tmp.pod_off;
	e->unit_off = tmp.unit_off;
	e->state = LM_CGROUP_LIVE;
	lm_cgroup_append(h, &h->live, idx);
}

void lm_cgroup_learn(struct lm_cgroup *c, uint32_t hier, uint64_t id, const char *path, size_t len)
{
	struct lm_cgroup_hier *h = lm_cgroup_hier_of(c, hier);

	if (h)
		lm_cgroup_learn_in(c, h, id, path, len);
}

void lm_cgroup_forget(struct lm_cgroup *c, uint32_t hier, uint64_t id)
{
	struct lm_cgroup_hier *h = lm_cgroup_hier_of(c, hier);
	uint32_t idx;

	if (!h)
		return;
	idx = lm_cgroup_find(h, id);
	if (idx == LM_CGROUP_NIL || h->ents[idx].state != LM_CGROUP_LIVE)
		return;
	lm_cgroup_unlink(h, &h->live, idx);
	h->ents[idx].state = LM_CGROUP_DEAD;
	lm_cgroup_append(h, &h->dead, idx);
	while (h->dead.cnt > c->grace_cnt)
		lm_cgroup_drop(c, h, h->dead.head);
}

/* ---- scan ---- */

static uint64_t lm_cgroup_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Walks the directory dfd (taken over) whose path is scan_path[0..len). */
static void lm_cgroup_scan_dir(struct lm_cgroup *c, struct lm_cgroup_hier *h, int dfd, size_t len,
			       dev_t dev, int depth)
{
	struct dirent *de;
	struct stat sb;
	size_t nl, sub;
	DIR *d;
	int fd;

	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		c->st.scan_errors++;
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			/* a file (d_type unknown), or a cgroup removed while we walk */
			if (errno != ENOTDIR && errno != ELOOP && errno != ENOENT)
				c->st.scan_errors++;
			continue;
		}
		if (fstat(fd, &sb) < 0) {
			c->st.scan_errors++;
			close(fd);
			continue;
		}
		if (sb.st_dev != dev) {
			/* another file system mounted inside: not this hierarchy */
			close(fd);
			continue;
		}
		sub = len;
		if (len <= LM_CGROUP_PATH_MAX) {
			/* past the cap the path stops growing: learn stores it cut anyway */
			nl = strlen(de->d_name);
			c->scan_path[sub++] = '/';
			memcpy(c->scan_path + sub, de->d_name, nl);
			sub += nl;
		}
		lm_cgroup_learn_in(c, h, (uint64_t)sb.st_ino, c->scan_path, sub);
		if (depth + 1 < LM_CGROUP_SCAN_DEPTH) {
			lm_cgroup_scan_dir(c, h, fd, sub, dev, depth + 1);
		} else {
			close(fd);
			c->st.scan_errors++;
		}
	}
	closedir(d);
}

static void lm_cgroup_scan(struct lm_cgroup *c, struct lm_cgroup_hier *h)
{
	struct stat sb;
	int fd;

	c->st.scans++;
	h->last_scan_ns = lm_cgroup_now_ns();
	fd = open(h->mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		c->st.scan_errors++;
		if (fd >= 0)
			close(fd);
		return;
	}
	memcpy(c->scan_path, h->root, h->root_len);
	lm_cgroup_learn_in(c, h, (uint64_t)sb.st_ino, h->root_len ? h->root : "/",
			   h->root_len ? h->root_len : 1);
	lm_cgroup_scan_dir(c, h, fd, h->root_len, sb.st_dev, 0);
}

int lm_cgroup_lookup(struct lm_cgroup *c, uint32_t hier, uint64_t id, struct lm_cgroup_view *out)
{
	struct lm_cgroup_hier *h = lm_cgroup_hier_of(c, hier);
	struct lm_cgroup_ent *e;
	uint32_t idx;

	if (!h)
		goto miss;
	idx = lm_cgroup_find(h, id);
	if (idx == LM_CGROUP_NIL && h->mnt &&
	    lm_cgroup_now_ns() - h->last_scan_ns >= c->rescan_interval_ns) {
		lm_cgroup_scan(c, h);
		idx = lm_cgroup_find(h, id);
	}
	if (idx == LM_CGROUP_NIL)
		goto miss;
	e = &h->ents[idx];
	if (e->state == LM_CGROUP_LIVE && h->live.tail != idx) {
		lm_cgroup_unlink(h, &h->live, idx);
		lm_cgroup_append(h, &h->live, idx);
	}
	out->path = e->blob;
	out->path_len = e->path_len;
	out->container_id = e->cid_off ? e->blob + e->cid_off : NULL;
	out->pod_uid = e->pod_off ? e->blob + e->pod_off : NULL;
	out->unit = e->unit_off ? e->blob + e->unit_off : NULL;
	return 0;
miss:
	c->st.misses++;
	return -ENOENT;
}

/* ---- open ---- */

/* Decodes mountinfo's octal escapes (\040 space, \011, \012, \134) in place. */
static void lm_cgroup_unescape(char *s)
{
	char *w = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*w++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 4;
		} else {
			*w++ = *s++;
		}
	}
	*w = '\0';
}

static bool lm_cgroup_has_opt(const char *opts, const char *name)
{
	size_t n = strlen(name);
	const char *p = opts;

	while (p && *p) {
		if (!strncmp(p, name, n) && (p[n] == ',' || p[n] == '\0'))
			return true;
		p = strchr(p, ',');
		if (p)
			p++;
	}
	return false;
}

/* Keeps a mount for h: the first one, or a later one of the hierarchy's root. */
static int lm_cgroup_pick(struct lm_cgroup_hier *h, const char *root, const char *mnt)
{
	size_t rl = strlen(root);
	char *m, *r;

	/* root outside this cgroup namespace: its paths cannot be told, do not scan it */
	if (!strcmp(root, "/..") || !strncmp(root, "/../", 4))
		return 0;
	if (h->mnt && (h->root_len == 0 || strcmp(root, "/") != 0))
		return 0;
	while (rl > 0 && root[rl - 1] == '/')
		rl--;
	if (rl > LM_CGROUP_PATH_MAX)
		return 0;
	m = strdup(mnt);
	r = strndup(root, rl);
	if (!m || !r) {
		free(m);
		free(r);
		return -ENOMEM;
	}
	free(h->mnt);
	free(h->root);
	h->mnt = m;
	h->root = r;
	h->root_len = rl;
	return 0;
}

static int lm_cgroup_read_mountinfo(struct lm_cgroup *c, const char *file)
{
	char *line = NULL, *f[32], *tok, *save;
	size_t cap = 0;
	int nf, i, dash, err = 0;
	FILE *fp;

	fp = fopen(file, "re");
	if (!fp)
		return -errno;
	while (getline(&line, &cap, fp) > 0) {
		line[strcspn(line, "\n")] = '\0';
		nf = 0;
		for (tok = strtok_r(line, " ", &save); tok && nf < 32;
		     tok = strtok_r(NULL, " ", &save))
			f[nf++] = tok;
		/* id parent maj:min root mountpoint opts [optional...] - fstype source superopts */
		for (dash = 6; dash < nf && strcmp(f[dash], "-") != 0; dash++)
			;
		if (dash + 3 >= nf)
			continue;
		for (i = 3; i <= 4; i++)
			lm_cgroup_unescape(f[i]);
		if (!strcmp(f[dash + 1], "cgroup2"))
			err = lm_cgroup_pick(&c->h[0], f[3], f[4]);
		else if (!strcmp(f[dash + 1], "cgroup") && lm_cgroup_has_opt(f[dash + 3], "memory"))
			err = lm_cgroup_pick(&c->h[1], f[3], f[4]);
		if (err)
			break;
	}
	free(line);
	fclose(fp);
	return err;
}

/* The memory controller's hierarchy id from /proc/cgroups, -1 when disabled or not listed. */
static int lm_cgroup_read_memory_hier(const char *file)
{
	char *line = NULL, name[64];
	int hier, n, enabled, ret = -1;
	size_t cap = 0;
	FILE *fp;

	fp = fopen(file, "re");
	if (!fp)
		return -1;
	while (getline(&line, &cap, fp) > 0) {
		if (line[0] == '#')
			continue;
		if (sscanf(line, "%63s %d %d %d", name, &hier, &n, &enabled) == 4 &&
		    !strcmp(name, "memory")) {
			ret = enabled && hier >= 0 ? hier : -1;
			break;
		}
	}
	free(line);
	fclose(fp);
	return ret;
}

static int lm_cgroup_hier_init(struct lm_cgroup *c, struct lm_cgroup_hier *h, uint32_t hier_id)
{
	uint32_t nslots = 2, i;
	unsigned int bits = 1;

	while (nslots < 2 * c->max_entries) {
		nslots <<= 1;
		bits++;
	}
	h->ents = calloc(c->max_entries, sizeof(*h->ents));
	h->slots = calloc(nslots, sizeof(*h->slots));
	if (!h->ents || !h->slots)
		return -ENOMEM;
	h->tracked = true;
	h->hier_id = hier_id;
	h->slot_mask = nslots - 1;
	h->shift = 64 - bits;
	for (i = 0; i < c->max_entries; i++)
		h->ents[i].next = i + 1 < c->max_entries ? i + 1 : LM_CGROUP_NIL;
	h->free_head = 0;
	h->live.head = h->live.tail = LM_CGROUP_NIL;
	h->dead.head = h->dead.tail = LM_CGROUP_NIL;
	return 0;
}

int lm_cgroup_open(const struct lm_cgroup_opts *o, struct lm_cgroup **out)
{
	struct lm_cgroup *c;
	int err = 0, i;

	*out = NULL;
	if (o->max_entries == 1 || o->max_entries > (1U << 30))
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->max_entries = o->max_entries ? o->max_entries : LM_CGROUP_MAX_ENTRIES;
	c->grace_cnt = o->grace_cnt ? o->grace_cnt : LM_CGROUP_GRACE_CNT;
	if (c->grace_cnt > c->max_entries / 2) {
		if (o->grace_cnt) {
			err = -EINVAL;
			goto out;
		}
		c->grace_cnt = c->max_entries / 2;
	}
	c->rescan_interval_ns = o->rescan_interval_ns ? o->rescan_interval_ns : LM_CGROUP_RESCAN_NS;
	err = lm_cgroup_read_mountinfo(c, o->mountinfo ? o->mountinfo : "/proc/self/mountinfo");
	if (err)
		goto out;
	c->memory_hier =
		lm_cgroup_read_memory_hier(o->proc_cgroups ? o->proc_cgroups : "/proc/cgroups");
	err = lm_cgroup_hier_init(c, &c->h[0], 0);
	if (err)
		goto out;
	if (c->memory_hier > 0) {
		err = lm_cgroup_hier_init(c, &c->h[1], (uint32_t)c->memory_hier);
		if (err)
			goto out;
	} else {
		/* memory on v2, or none: its v1 mount (if any) has no records to match */
		free(c->h[1].mnt);
		c->h[1].mnt = NULL;
	}
	for (i = 0; i < 2; i++)
		if (c->h[i].tracked && c->h[i].mnt)
			lm_cgroup_scan(c, &c->h[i]);
	*out = c;
	c = NULL;
out:
	lm_cgroup_close(c);
	return err;
}

void lm_cgroup_close(struct lm_cgroup *c)
{
	uint32_t i;
	int k;

	if (!c)
		return;
	for (k = 0; k < 2; k++) {
		struct lm_cgroup_hier *h = &c->h[k];

		for (i = 0; h->ents && i < c->max_entries; i++)
			free(h->ents[i].blob);
		free(h->ents);
		free(h->slots);
		free(h->mnt);
		free(h->root);
	}
	free(c);
}

int lm_cgroup_memory_hier(const struct lm_cgroup *c)
{
	return c->memory_hier;
}

void lm_cgroup_get_stats(const struct lm_cgroup *c, struct lm_cgroup_stats *out)
{
	*out = c->st;
}
