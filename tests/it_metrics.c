// SPDX-License-Identifier: GPL-2.0
/*
 * Integration test, /metrics and file rotation: status, Content-Type, a strict Prometheus
 * 0.0.4 parse (its parser self-checked first), every documented series, promtool; then
 * --output-max-bytes/--output-keep rotation and SIGHUP reopen under --bench-tgid load,
 * checking every line and the seq chain across files. Root only; single-threaded.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/it_util.h"
#include "tests/ws_client.h"

#define IT_PORT_METRICS 18094
#define IT_PORT_ROTATE 18095
#define IT_PORT_HUP 18096
#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define PROMTOOL "/usr/bin/promtool"
#define ROT_MAX 65536
#define ROT_MAX_STR "65536"
#define ROT_KEEP_STR "2"
#define ROT_SLACK_MAX (80 * 1024) /* one write slot past the limit at most */
#define ROT_EVENTS 2000
#define HUP_EVENTS 200
#define FILE_WAIT_MS 20000
#define HUP_REOPEN_MS 5000 /* SIGHUP until lifemon writes the new F */

/* --- a strict Prometheus text (0.0.4) parser --- */

#define PM_MAX_FAM 256
#define PM_MAX_SAMPLES 4096

struct pm_family {
	char name[128];
	char type[16]; /* "" until # TYPE */
	bool help;
	bool sampled; /* its group of samples has started */
};

struct pm_sample {
	char name[128];
	char labels[256]; /* canonical: name="value" pairs sorted by name, comma-separated */
	double value;
	int fam; /* index into families */
};

struct pm {
	struct pm_family fam[PM_MAX_FAM];
	size_t nfam;
	struct pm_sample *s;
	size_t ns;
	unsigned int errors;
	char first_err[512];
	unsigned int line;
};

static void pm_err(struct pm *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void pm_err(struct pm *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->errors++)
		return;
	n = snprintf(p->first_err, sizeof(p->first_err), "line %u: ", p->line);
	va_start(ap, fmt);
	vsnprintf(p->first_err + n, sizeof(p->first_err) - (size_t)n, fmt, ap);
	va_end(ap);
}

static bool pm_name_ok(const char *s, size_t len)
{
	size_t i;

	if (!len || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':'))
		return false;
	for (i = 1; i < len; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':'))
			return false;
	return true;
}

static bool pm_label_name_ok(const char *s, size_t len)
{
	size_t i;

	if (!len || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (i = 1; i < len; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
			return false;
	return true;
}

/* A float as the format writes it: decimal (Go's ParseFloat forms), +Inf, -Inf or NaN. */
static bool pm_value(const char *s, size_t len, double *v)
{
	char buf[64], *end;
	size_t i;

	if (!len || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (!strcmp(buf, "+Inf") || !strcmp(buf, "Inf")) {
		*v = INFINITY;
		return true;
	}
	if (!strcmp(buf, "-Inf")) {
		*v = -INFINITY;
		return true;
	}
	if (!strcmp(buf, "NaN")) {
		*v = NAN;
		return true;
	}
	for (i = 0; i < len; i++)
		if (!strchr("0123456789.eE+-", buf[i]))
			return false;
	errno = 0;
	*v = strtod(buf, &end);
	return end == buf + len && !errno;
}

static int pm_find(struct pm *p, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < p->nfam; i++)
		if (strlen(p->fam[i].name) == len && !memcmp(p->fam[i].name, name, len))
			return (int)i;
	return -1;
}

static int pm_family_get(struct pm *p, const char *name, size_t len)
{
	int f = pm_find(p, name, len);

	if (f >= 0)
		return f;
	if (p->nfam == PM_MAX_FAM || len >= sizeof(p->fam[0].name)) {
		pm_err(p, "too many metric families or a name too long");
		return -1;
	}
	memset(&p->fam[p->nfam], 0, sizeof(p->fam[0]));
	memcpy(p->fam[p->nfam].name, name, len);
	return (int)p->nfam++;
}

/* "# HELP name text" and "# TYPE name type"; other comments are allowed and ignored. */
static void pm_comment(struct pm *p, const char *l, size_t len)
{
	static const char *const types[] = {"counter", "gauge", "histogram", "summary", "untyped"};
	bool help = len > 7 && !strncmp(l, "# HELP ", 7);
	bool type = len > 7 && !strncmp(l, "# TYPE ", 7);
	const char *name = l + 7, *sp;
	size_t nlen, i;
	int f;

	if (!help && !type)
		return;
	sp = memchr(name, ' ', len - 7);
	nlen = sp ? (size_t)(sp - name) : len - 7;
	if (!pm_name_ok(name, nlen)) {
		pm_err(p, "bad metric name in %.7s: %.*s", l, (int)len, l);
		return;
	}
	f = pm_family_get(p, name, nlen);
	if (f < 0)
		return;
	if (p->fam[f].sampled)
		pm_err(p, "# %.4s for %s after its samples", l + 2, p->fam[f].name);
	if (help) {
		if (p->fam[f].help)
			pm_err(p, "second # HELP for %s", p->fam[f].name);
		if (!sp)
			pm_err(p, "# HELP for %s without a docstring", p->fam[f].name);
		p->fam[f].help = true;
		return;
	}
	if (p->fam[f].type[0])
		pm_err(p, "second # TYPE for %s", p->fam[f].name);
	if (!sp) {
		pm_err(p, "# TYPE for %s without a type", p->fam[f].name);
		return;
	}
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if ((size_t)(l + len - sp - 1) == strlen(types[i]) &&
		    !memcmp(sp + 1, types[i], strlen(types[i])))
			snprintf(p->fam[f].type, sizeof(p->fam[f].type), "%s", types[i]);
	if (!p->fam[f].type[0])
		pm_err(p, "unknown type in: %.*s", (int)len, l);
}

static int pm_label_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Parses {a="x",b="y"} at l; returns the bytes consumed or 0 after an error. */
static size_t pm_labels(struct pm *p, const char *l, size_t len, char *canon, size_t cap)
{
	char pairs[16][160], *sorted[16];
	size_t i = 1, np = 0, k, o = 0;

	while (i < len && l[i] != '}') {
		size_t ns = i, nl, vo = 0;
		json_t *utf8;

		while (i < len && l[i] != '=')
			i++;
		nl = i - ns;
		if (i + 1 >= len || l[i + 1] != '"' || !pm_label_name_ok(l + ns, nl)) {
			pm_err(p, "bad label: %.*s", (int)len, l);
			return 0;
		}
		if (np == 16 || nl + 4 >= sizeof(pairs[0])) {
			pm_err(p, "too many or too long labels");
			return 0;
		}
		for (k = 0; k < np; k++)
			if (!strncmp(pairs[k], l + ns, nl) && pairs[k][nl] == '=')
				pm_err(p, "label %.*s twice", (int)nl, l + ns);
		memcpy(pairs[np], l + ns, nl + 2);
		vo = nl + 2;
		i += 2;
		while (i < len && l[i] != '"') {
			if (l[i] == '\\') {
				if (i + 1 >= len || !strchr("\\\"n", l[i + 1])) {
					pm_err(p, "bad escape in a label value: %.*s", (int)len, l);
					return 0;
				}
				if (vo + 2 < sizeof(pairs[0]))
					pairs[np][vo++] = l[i++];
			} else if (l[i] == '\n') {
				pm_err(p, "raw newline in a label value");
				return 0;
			}
			if (vo + 2 < sizeof(pairs[0]))
				pairs[np][vo++] = l[i];
			i++;
		}
		if (i >= len) {
			pm_err(p, "unterminated label value: %.*s", (int)len, l);
			return 0;
		}
		utf8 = json_stringn(pairs[np] + nl + 2, vo - nl - 2);
		if (!utf8)
			pm_err(p, "label value is not UTF-8: %.*s", (int)len, l);
		json_decref(utf8);
		pairs[np][vo++] = '"';
		pairs[np][vo] = '\0';
		np++;
		i++; /* closing quote */
		if (i < len && l[i] == ',')
			i++;
		else if (i < len && l[i] != '}') {
			pm_err(p, "expected , or } after a label: %.*s", (int)len, l);
			return 0;
		}
	}
	if (i >= len) {
		pm_err(p, "unterminated label set: %.*s", (int)len, l);
		return 0;
	}
	for (k = 0; k < np; k++)
		sorted[k] = pairs[k];
	qsort(sorted, np, sizeof(sorted[0]), pm_label_cmp);
	canon[0] = '\0';
	for (k = 0; k < np && o < cap; k++)
		o += (size_t)snprintf(canon + o, cap - o, "%s%s", k ? "," : "", sorted[k]);
	return i + 1;
}

/* The family a sample belongs to: its own name, or a histogram/summary's suffixed series. */
static int pm_sample_family(struct pm *p, const char *name, size_t len)
{
	static const char *const sfx[] = {"_bucket", "_sum", "_count"};
	size_t i;
	int f = pm_find(p, name, len);

	if (f >= 0)
		return f;
	for (i = 0; i < 3; i++) {
		size_t sl = strlen(sfx[i]);

		if (len > sl && !memcmp(name + len - sl, sfx[i], sl)) {
			f = pm_find(p, name, len - sl);
			if (f >= 0 && (!strcmp(p->fam[f].type, "histogram") ||
				       (!strcmp(p->fam[f].type, "summary") && i > 0)))
				return f;
		}
	}
	return -1;
}

static void pm_sample_line(struct pm *p, const char *l, size_t len, int *cur)
{
	struct pm_sample *s;
	size_t i = 0, nlen, used, k;
	const char *v, *sp;
	char canon[256] = "";
	double val;
	int f;

	while (i < len && l[i] != '{' && l[i] != ' ')
		i++;
	nlen = i;
	if (!pm_name_ok(l, nlen) || nlen >= sizeof(p->s[0].name)) {
		pm_err(p, "bad metric name: %.*s", (int)len, l);
		return;
	}
	if (i < len && l[i] == '{') {
		used = pm_labels(p, l + i, len - i, canon, sizeof(canon));
		if (!used)
			return;
		i += used;
	}
	if (i >= len || l[i] != ' ' || i + 1 >= len || l[i + 1] == ' ') {
		pm_err(p, "want one space then the value: %.*s", (int)len, l);
		return;
	}
	v = l + i + 1;
	sp = memchr(v, ' ', (size_t)(l + len - v));
	if (!pm_value(v, sp ? (size_t)(sp - v) : (size_t)(l + len - v), &val)) {
		pm_err(p, "value is not a number: %.*s", (int)len, l);
		return;
	}
	if (sp) { /* optional timestamp: an integer of ms */
		char *end;

		errno = 0;
		strtoll(sp + 1, &end, 10);
		if (end != l + len || end == sp + 1 || errno)
			pm_err(p, "bad timestamp: %.*s", (int)len, l);
	}
	f = pm_sample_family(p, l, nlen);
	if (f < 0) {
		pm_err(p, "sample of %.*s without # HELP and # TYPE before it", (int)nlen, l);
		return;
	}
	if (!p->fam[f].help || !p->fam[f].type[0])
		pm_err(p, "%s lacks # %s before its samples", p->fam[f].name,
		       p->fam[f].help ? "TYPE" : "HELP");
	if (f != *cur && p->fam[f].sampled)
		pm_err(p, "samples of %s are not one group", p->fam[f].name);
	p->fam[f].sampled = true;
	*cur = f;
	if (!strcmp(p->fam[f].type, "counter")) {
		size_t fl = strlen(p->fam[f].name);

		if (fl < 6 || strcmp(p->fam[f].name + fl - 6, "_total"))
			pm_err(p, "counter %s does not end in _total", p->fam[f].name);
		if (isnan(val) || val < 0)
			pm_err(p, "counter %s has value %g", p->fam[f].name, val);
	}
	for (k = 0; k < p->ns; k++)
		if (strlen(p->s[k].name) == nlen && !memcmp(p->s[k].name, l, nlen) &&
		    !strcmp(p->s[k].labels, canon))
			pm_err(p, "duplicate series %.*s{%s}", (int)nlen, l, canon);
	if (p->ns == PM_MAX_SAMPLES) {
		pm_err(p, "more than %d samples", PM_MAX_SAMPLES);
		return;
	}
	s = &p->s[p->ns++];
	memcpy(s->name, l, nlen);
	s->name[nlen] = '\0';
	snprintf(s->labels, sizeof(s->labels), "%s", canon);
	s->value = val;
	s->fam = f;
}

/* Parses body into p (p->s allocated here; pm_free). Returns the number of errors. */
static unsigned int pm_parse(struct pm *p, const char *body, size_t len)
{
	const char *l = body, *end = body + len, *nl;
	int cur = -1;

	memset(p, 0, sizeof(*p));
	p->s = calloc(PM_MAX_SAMPLES, sizeof(*p->s));
	LM_IT_ASSERT(p->s, "out of memory");
	if (!len || body[len - 1] != '\n')
		pm_err(p, "the body does not end with a newline");
	for (; l < end; l = nl + 1) {
		nl = memchr(l, '\n', (size_t)(end - l));
		if (!nl)
			nl = end;
		p->line++;
		if (memchr(l, '\r', (size_t)(nl - l)) || memchr(l, '\0', (size_t)(nl - l)))
			pm_err(p, "CR or NUL in a line");
		if (nl == l)
			continue; /* empty lines are allowed */
		if (l[0] == '#')
			pm_comment(p, l, (size_t)(nl - l));
		else
			pm_sample_line(p, l, (size_t)(nl - l), &cur);
	}
	return p->errors;
}

static void pm_free(struct pm *p)
{
	free(p->s);
	p->s = NULL;
}

/* The sample `name` with canonical labels (e.g. type="exec"), or NULL. */
static const struct pm_sample *pm_get(const struct pm *p, const char *name, const char *labels)
{
	size_t i;

	for (i = 0; i < p->ns; i++)
		if (!strcmp(p->s[i].name, name) && !strcmp(p->s[i].labels, labels))
			return &p->s[i];
	return NULL;
}

/* The parser must find what it is meant to find, or the checks below prove nothing. */
static void pm_self_test(void)
{
	static const struct {
		const char *text;
		unsigned int errors;
	} cases[] = {
	    {"# HELP a_total A.\n# TYPE a_total counter\na_total 1\n"
	     "# HELP g G.\n# TYPE g gauge\ng{x=\"1\",y=\"a\\\"b\"} -2.5e3\ng{x=\"2\"} NaN\n",
	     0},
	    {"a_total 1\n", 1},
	    {"# HELP a_total A.\na_total 1\n", 1},
	    {"# TYPE a_total counter\na_total 1\n", 1},
	    {"# HELP a A.\n# TYPE a counter\na 1\n", 1},
	    {"# HELP a_total A.\n# TYPE a_total counter\na_total -1\n", 1},
	    {"# HELP a_total A.\n# TYPE a_total counter\na_total one\n", 1},
	    {"# HELP a_total A.\n# TYPE a_total counter\na_total 0x10\n", 1},
	    {"# HELP a_total A.\n# TYPE a_total counter\na_total 1", 1},
	    {"# HELP a_total A.\n# TYPE a_total counter\na_total{t=\"x} 1\n", 1},
	    {"# HELP a_total A.\n# TYPE a_total counter\na_total{1t=\"x\"} 1\n", 1},
	    {"# HELP a_total A.\n# TYPE a_total counter\na_total  1\n", 1},
	    {"# HELP 1a A.\n", 1},
	    {"# HELP a_total A.\n# TYPE a_total countr\n", 1},
	    {"# HELP a_total A.\n# TYPE a_total counter\na_total{t=\"1\"} 1\na_total{t=\"1\"} 2\n",
	     1},
	    {"# HELP a_total A.\n# TYPE a_total counter\n# HELP b B.\n# TYPE b gauge\n"
	     "a_total 1\nb 1\na_total{t=\"2\"} 2\n",
	     1},
	    {"# HELP a_total A.\n# TYPE a_total counter\na_total 1\n# HELP a_total again\n", 1},
	};
	struct pm p;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned int e = pm_parse(&p, cases[i].text, strlen(cases[i].text));

		if ((e != 0) != (cases[i].errors != 0))
			lm_it_fatal("parser self-test %zu: %u error(s) (%s), want %s", i, e,
				    p.first_err, cases[i].errors ? "some" : "none");
		pm_free(&p);
	}
}

/* --- HTTP headers (ws_client's GET keeps them to itself) --- */

/*
 * GET `path` with a raw socket and returns the status and the value of the one Content-Type
 * header ("" if none; *ct_count says how many there were).
 */
static void http_head_info(uint16_t port, const char *path, int *status, char *ct, size_t cap,
			   int *ct_count)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	int64_t deadline = lm_it_now_ms() + 5000;
	char req[256], *buf, *hend, *line, *save = NULL;
	size_t n = 0, bcap = 1 << 16;
	int fd;

	*status = 0;
	*ct_count = 0;
	ct[0] = '\0';
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	buf = malloc(bcap + 1);
	LM_IT_ASSERT(buf, "out of memory");
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	LM_IT_ASSERT(fd >= 0, "socket: %s", strerror(errno));
	LM_IT_ASSERT(!connect(fd, (struct sockaddr *)&sa, sizeof(sa)), "connect: %s",
		     strerror(errno));
	snprintf(req, sizeof(req),
		 "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nConnection: close\r\n\r\n", path, port);
	LM_IT_ASSERT(send(fd, req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req), "send: %s",
		     strerror(errno));
	for (;;) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		int left = (int)(deadline - lm_it_now_ms());
		ssize_t r;

		buf[n] = '\0';
		if (strstr(buf, "\r\n\r\n") || n == bcap)
			break;
		LM_IT_ASSERT(left > 0, "GET %s: no complete header within 5 s", path);
		if (poll(&pf, 1, left) <= 0)
			continue;
		r = recv(fd, buf + n, bcap - n, 0);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	hend = strstr(buf, "\r\n\r\n");
	LM_IT_ASSERT(hend, "GET %s: response without an end of header: %.200s", path, buf);
	*hend = '\0';
	for (line = strtok_r(buf, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
		if (!*status) {
			LM_IT_ASSERT(sscanf(line, "HTTP/1.1 %d", status) == 1,
				     "GET %s: bad status line: %s", path, line);
			continue;
		}
		if (!strncasecmp(line, "Content-Type:", 13)) {
			char *v = line + 13, *e;

			while (*v == ' ' || *v == '\t')
				v++;
			e = v + strlen(v);
			while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
				*--e = '\0';
			snprintf(ct, cap, "%s", v);
			(*ct_count)++;
		}
	}
	free(buf);
}

/* Runs promtool check metrics on the body (stdin). Returns its exit status, fills out. */
static int promtool_check(const char *body, size_t len, char *out, size_t cap)
{
	char in_path[] = "/tmp/lifemon-it-prom-in-XXXXXX",
	     out_path[] = "/tmp/lifemon-it-prom-out-XXXXXX";
	char *argv[] = {"/bin/sh", "-c", "exec " PROMTOOL " check metrics < \"$0\"", in_path, NULL};
	char *text = NULL;
	int in_fd, out_fd, err, st = 0;
	size_t tl = 0;
	pid_t pid;

	in_fd = mkostemp(in_path, O_CLOEXEC);
	LM_IT_ASSERT(in_fd >= 0, "mkostemp: %s", strerror(errno));
	LM_IT_ASSERT(write(in_fd, body, len) == (ssize_t)len, "write: %s", strerror(errno));
	close(in_fd);
	out_fd = mkostemp(out_path, O_CLOEXEC);
	LM_IT_ASSERT(out_fd >= 0, "mkostemp: %s", strerror(errno));
	err = lm_it_spawn(argv, out_fd, out_fd, &pid);
	close(out_fd);
	LM_IT_ASSERT(!err, "spawn promtool: %s", strerror(-err));
	err = lm_it_reap(pid, 20000, &st);
	if (err) {
		lm_it_kill_reap(pid);
		st = -1;
	}
	out[0] = '\0';
	if (!lm_it_read_file(out_path, &text, &tl)) {
		snprintf(out, cap, "%s", text);
		free(text);
	}
	unlink(in_path);
	unlink(out_path);
	return err ? -1 : st;
}

static long rss_kb(pid_t pid)
{
	char path[64], *text = NULL, *p;
	long kb = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if (lm_it_read_file(path, &text, NULL))
		return -1;
	p = strstr(text, "\nVmRSS:");
	if (p)
		kb = strtol(p + 7, NULL, 10);
	free(text);
	return kb;
}

static char met_dir[64], met_out[96];

static void met_cleanup(void *arg)
{
	(void)arg;
	if (met_out[0])
		unlink(met_out);
	if (met_dir[0])
		rmdir(met_dir);
	met_out[0] = met_dir[0] = '\0';
}

/* Waits until lifemon_ws_clients reads `want`. */
static bool wait_ws_clients(double want, double *got)
{
	int64_t deadline = lm_it_now_ms() + 5000;

	do {
		char *body = NULL;

		if (!lm_it_metrics_fetch(IT_PORT_METRICS, 5000, &body)) {
			bool ok = lm_it_metric(body, "lifemon_ws_clients", got) && *got == want;

			free(body);
			if (ok)
				return true;
		}
		usleep(5000);
	} while (lm_it_now_ms() < deadline);
	return false;
}

static void part_metrics(void)
{
	static const char *const types[] = {"exec", "exit", "oom_kill"};
	static const char *const sinks[] = {"stdout", "file"};
	static const struct {
		const char *name, *type;
	} singles[] = {
	    {"lifemon_serialized_total", "counter"},
	    {"lifemon_ws_published_total", "counter"},
	    {"lifemon_ws_delivered_total", "counter"},
	    {"lifemon_ws_dropped_total", "counter"},
	    {"lifemon_ws_clients", "gauge"},
	    {"lifemon_ws_slow_disconnects_total", "counter"},
	    {"process_resident_memory_bytes", "gauge"},
	    {"process_cpu_seconds_total", "counter"},
	    {"process_start_time_seconds", "gauge"},
	};
	const char *extra[] = {"--stdout", "--output", met_out, NULL};
	struct lm_it_coll *coll = NULL;
	struct lm_it_proc *lm = NULL;
	char ct[256], labels[64], prom_out[4096], *body = NULL, *body2 = NULL;
	const struct pm_sample *s;
	int64_t t_start_ns, t_up_ns, ms = 0;
	size_t len = 0, len2 = 0, i, k;
	struct pm p, p2;
	double got = -1;
	long rss;
	int st = 0, nct = 0, err;
	bool ci = getenv("CI") && !strcmp(getenv("CI"), "true");

	pm_self_test();
	snprintf(met_dir, sizeof(met_dir), "/tmp/lifemon-it-met-XXXXXX");
	LM_IT_ASSERT(mkdtemp(met_dir), "mkdtemp: %s", strerror(errno));
	snprintf(met_out, sizeof(met_out), "%s/ev.jsonl", met_dir);
	lm_it_on_cleanup(met_cleanup, NULL);

	t_start_ns = lm_it_realtime_ns();
	err = lm_it_lifemon_start(IT_PORT_METRICS, extra, true, &lm);
	LM_IT_ASSERT(!err, "lifemon did not become healthy: %s", strerror(-err));
	t_up_ns = lm_it_realtime_ns();

	/* A client and a marker: some events, and lifemon_ws_clients goes 0 -> 1 -> 0. */
	LM_IT_EXPECT(wait_ws_clients(0, &got), "lifemon_ws_clients is %.0f with no client", got);
	err = lm_it_coll_open(IT_PORT_METRICS, &coll);
	LM_IT_ASSERT(!err, "ws connect: %s", strerror(-err));
	LM_IT_EXPECT(!lm_it_coll_sync(coll, LM_IT_EVENT_MS), "no marker EXIT on /ws");
	LM_IT_EXPECT(wait_ws_clients(1, &got), "lifemon_ws_clients is %.0f with one client", got);
	lm_it_coll_check(coll);
	lm_it_coll_close(coll);
	coll = NULL;
	LM_IT_EXPECT(wait_ws_clients(0, &got), "lifemon_ws_clients is %.0f after the client left",
		     got);

	http_head_info(IT_PORT_METRICS, "/metrics", &st, ct, sizeof(ct), &nct);
	LM_IT_EXPECT(st == 200, "GET /metrics: status %d, want 200", st);
	LM_IT_EXPECT(nct == 1 && !strcasecmp(ct, CONTENT_TYPE),
		     "GET /metrics: Content-Type \"%s\" (%d header(s)), want \"%s\"", ct, nct,
		     CONTENT_TYPE);

	err = lm_wsc_http_get(IT_PORT_METRICS, "/metrics", 5000, &st, &body, &len);
	LM_IT_ASSERT(!err && st == 200, "GET /metrics: %s, status %d", strerror(-err), st);
	rss = rss_kb(lm_it_proc_pid(lm));
	if (pm_parse(&p, body, len))
		lm_it_fail("/metrics is not strict Prometheus text 0.0.4: %u error(s), first: %s",
			   p.errors, p.first_err);

	/* Every documented series, with its type. */
	for (i = 0; i < 3; i++) {
		static const char *const fams[] = {
		    "lifemon_events_total", "lifemon_kernel_dropped_total", "lifemon_read_total"};

		for (k = 0; k < 3; k++) {
			snprintf(labels, sizeof(labels), "type=\"%s\"", types[k]);
			s = pm_get(&p, fams[i], labels);
			LM_IT_EXPECT(s, "/metrics lacks %s{%s}", fams[i], labels);
			if (s)
				LM_IT_EXPECT(!strcmp(p.fam[s->fam].type, "counter"),
					     "%s is a %s, want counter", fams[i],
					     p.fam[s->fam].type);
		}
	}
	for (i = 0; i < 2; i++) {
		static const char *const fams[] = {"lifemon_sink_delivered_total",
						   "lifemon_sink_dropped_total"};

		for (k = 0; k < 2; k++) {
			snprintf(labels, sizeof(labels), "sink=\"%s\"", sinks[k]);
			s = pm_get(&p, fams[i], labels);
			LM_IT_EXPECT(s, "/metrics lacks %s{%s} (lifemon runs --stdout --output)",
				     fams[i], labels);
			if (s)
				LM_IT_EXPECT(!strcmp(p.fam[s->fam].type, "counter"),
					     "%s is a %s, want counter", fams[i],
					     p.fam[s->fam].type);
		}
	}
	for (i = 0; i < sizeof(singles) / sizeof(singles[0]); i++) {
		s = pm_get(&p, singles[i].name, "");
		LM_IT_EXPECT(s, "/metrics lacks %s", singles[i].name);
		if (s)
			LM_IT_EXPECT(!strcmp(p.fam[s->fam].type, singles[i].type),
				     "%s is a %s, want %s", singles[i].name, p.fam[s->fam].type,
				     singles[i].type);
	}

	/* The process_* values describe lifemon itself. */
	s = pm_get(&p, "process_start_time_seconds", "");
	if (s)
		LM_IT_EXPECT(
		    s->value >= (double)t_start_ns / 1e9 - 2 &&
			s->value <= (double)t_up_ns / 1e9 + 2,
		    "process_start_time_seconds %.3f is not when lifemon started (%.3f-%.3f)",
		    s->value, (double)t_start_ns / 1e9, (double)t_up_ns / 1e9);
	s = pm_get(&p, "process_resident_memory_bytes", "");
	if (s && rss > 0)
		LM_IT_EXPECT(s->value >= rss * 1024.0 / 2 && s->value <= rss * 1024.0 * 2,
			     "process_resident_memory_bytes %.0f, but VmRSS is %ld KiB", s->value,
			     rss);
	s = pm_get(&p, "process_cpu_seconds_total", "");
	if (s)
		LM_IT_EXPECT(
		    s->value >= 0 &&
			s->value <= (double)(lm_it_realtime_ns() - t_start_ns) / 1e9 * 2 + 1,
		    "process_cpu_seconds_total %.3f is more than 2 CPUs since the start", s->value);

	/* Counters never go down. */
	err = lm_it_coll_open(IT_PORT_METRICS, &coll);
	LM_IT_ASSERT(!err, "second ws connect: %s", strerror(-err));
	LM_IT_EXPECT(!lm_it_coll_sync(coll, LM_IT_EVENT_MS), "second marker not seen on /ws");
	lm_it_coll_check(coll);
	lm_it_coll_close(coll);
	coll = NULL;
	err = lm_wsc_http_get(IT_PORT_METRICS, "/metrics", 5000, &st, &body2, &len2);
	LM_IT_ASSERT(!err && st == 200, "second GET /metrics: %s, status %d", strerror(-err), st);
	if (pm_parse(&p2, body2, len2))
		lm_it_fail("second /metrics: %s", p2.first_err);
	for (i = 0; i < p.ns; i++) {
		const struct pm_sample *a = &p.s[i], *b = pm_get(&p2, a->name, a->labels);

		if (strcmp(p.fam[a->fam].type, "counter"))
			continue;
		LM_IT_EXPECT(b && b->value >= a->value, "counter %s{%s} went from %g to %g",
			     a->name, a->labels, a->value, b ? b->value : -1.0);
	}
	s = pm_get(&p2, "lifemon_serialized_total", "");
	LM_IT_EXPECT(s && s->value >= 2, "lifemon_serialized_total is %g after two markers",
		     s ? s->value : -1.0);

	/* promtool, the reference linter: no lint finding at all. */
	if (access(PROMTOOL, X_OK) == 0) {
		int rc = promtool_check(body, len, prom_out, sizeof(prom_out));

		LM_IT_EXPECT(rc == 0 && !prom_out[0],
			     "promtool check metrics: wait status %d, output: %s", rc, prom_out);
		lm_it_note("promtool check metrics: clean");
	} else if (ci) {
		lm_it_fail("%s not found: CI=true needs it (Debian package prometheus)", PROMTOOL);
	} else {
		lm_it_note("%s not found: promtool check skipped", PROMTOOL);
	}
	lm_it_note("/metrics: %zu families, %zu samples, %zu bytes", p.nfam, p.ns, len);
	pm_free(&p);
	pm_free(&p2);
	free(body);
	free(body2);

	err = lm_it_proc_stop(lm, SIGTERM, LM_IT_STOP_MS, &st, &ms);
	LM_IT_EXPECT(!err && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		     "lifemon did not exit 0 within %d ms of SIGTERM", LM_IT_STOP_MS);
	if (lm_it_failures())
		lm_it_proc_dump_stderr(lm, "metrics");
	lm_it_proc_free(lm);
	met_cleanup(NULL);
}

/* --- part 2: rotation and SIGHUP --- */

/* One request to the rename child: n renames, then the name `end` (an EXEC-shaped marker). */
struct bench_cmd {
	int n;
	char end[16];
};

struct bench_arg {
	int cmd_rd, cmd_wr, ack_rd, ack_wr;
};

static int bench_child(void *arg)
{
	const struct bench_arg *a = arg;
	struct bench_cmd c;
	int i;

	close(a->cmd_wr);
	close(a->ack_rd);
	while (read(a->cmd_rd, &c, sizeof(c)) == (ssize_t)sizeof(c)) {
		for (i = 0; i < c.n; i++)
			if (prctl(PR_SET_NAME, (i & 1) ? "xbench" : "ebench") < 0)
				return 4;
		c.end[sizeof(c.end) - 1] = '\0';
		if (prctl(PR_SET_NAME, c.end) < 0 || write(a->ack_wr, "k", 1) != 1)
			return 5;
	}
	return 0;
}

static struct bench_arg rot_ba = {-1, -1, -1, -1};
static char rot_dir[64];
static char rot_f[96]; /* the rotating instance's --output */
static char hup_f[96]; /* the non-rotating instance's --output */

/* Closing the command pipe makes the rename child exit. */
static void rot_close_pipes(void)
{
	if (rot_ba.cmd_wr >= 0)
		close(rot_ba.cmd_wr);
	if (rot_ba.ack_rd >= 0)
		close(rot_ba.ack_rd);
	rot_ba.cmd_wr = rot_ba.ack_rd = -1;
}

static void rot_cleanup(void *arg)
{
	static const char *const sfx[] = {"", ".1", ".2", ".3", ".4", ".5", ".moved"};
	const char *bases[] = {rot_f, hup_f};
	char path[128];
	size_t i, b;

	(void)arg;
	rot_close_pipes();
	if (!rot_dir[0])
		return;
	for (b = 0; b < 2; b++) {
		for (i = 0; i < sizeof(sfx) / sizeof(sfx[0]) && bases[b][0]; i++) {
			snprintf(path, sizeof(path), "%s%s", bases[b], sfx[i]);
			unlink(path);
		}
	}
	rmdir(rot_dir);
	rot_dir[0] = '\0';
}

static void bench_run(int n, const char *end)
{
	struct bench_cmd c = {.n = n};
	struct pollfd pf = {.fd = rot_ba.ack_rd, .events = POLLIN};
	char k;

	snprintf(c.end, sizeof(c.end), "%s", end);
	LM_IT_ASSERT(write(rot_ba.cmd_wr, &c, sizeof(c)) == (ssize_t)sizeof(c), "cmd write: %s",
		     strerror(errno));
	LM_IT_ASSERT(poll(&pf, 1, 20000) == 1 && read(rot_ba.ack_rd, &k, 1) == 1,
		     "the rename child did not finish %d renames within 20 s", n);
}

/* One file of the chain: its events and notices in order, strictly parsed. */
struct jfile {
	bool exists;
	off_t size;
	size_t lines;
	long long first_seq, last_seq; /* accounted for, LOST ranges included; 0: empty */
	bool has_end;		       /* holds the marker EXEC being looked for */
	unsigned int problems;
	char problem[400]; /* the first one */
	unsigned int lost;
};

static void jfile_problem(struct jfile *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void jfile_problem(struct jfile *j, const char *fmt, ...)
{
	va_list ap;

	if (j->problems++)
		return;
	va_start(ap, fmt);
	vsnprintf(j->problem, sizeof(j->problem), fmt, ap);
	va_end(ap);
}

/*
 * Reads `path`: every line a strict JSON event or LOST notice, seq contiguous inside the file
 * (a LOST notice covers its range), the last line ended. has_end: an EXEC of pid with comm end.
 */
static void jfile_read(const char *path, pid_t pid, const char *end, struct jfile *j)
{
	char *text = NULL, *l, *nl, why[160];
	size_t len = 0;
	json_error_t jerr;
	struct stat sb;

	memset(j, 0, sizeof(*j));
	if (stat(path, &sb))
		return;
	j->exists = true;
	j->size = sb.st_size;
	if (lm_it_read_file(path, &text, &len)) {
		jfile_problem(j, "cannot read");
		return;
	}
	if (len && text[len - 1] != '\n')
		jfile_problem(j, "ends inside a line (%zu bytes)", len);
	for (l = text; l < text + len; l = nl + 1) {
		long long f, t;
		const char *type;
		json_t *ev;

		nl = memchr(l, '\n', (size_t)(text + len - l));
		if (!nl)
			nl = text + len;
		j->lines++;
		ev = json_loadb(l, (size_t)(nl - l), JSON_REJECT_DUPLICATES, &jerr);
		if (!ev || !json_is_object(ev)) {
			jfile_problem(j, "line %zu is not a strict JSON object (%s): %.*s",
				      j->lines, ev ? "not an object" : jerr.text,
				      (int)(nl - l > 160 ? 160 : nl - l), l);
			json_decref(ev);
			continue;
		}
		type = lm_it_jstr(ev, "type");
		if (type && !strcmp(type, "LOST")) {
			f = lm_it_jint(ev, "first_seq", 0);
			t = lm_it_jint(ev, "last_seq", 0);
			j->lost++;
			if (f < 1 || t < f || lm_it_jint(ev, "count", 0) != t - f + 1)
				jfile_problem(j, "line %zu: bad LOST notice %s", j->lines,
					      lm_it_jdump(ev));
		} else if (!lm_it_event_is_valid(ev, why, sizeof(why))) {
			jfile_problem(j, "line %zu: %s: %s", j->lines, why, lm_it_jdump(ev));
			json_decref(ev);
			continue;
		} else {
			f = t = lm_it_jint(ev, "seq", 0);
			if (!strcmp(type, "EXEC") && lm_it_jint(ev, "pid", -1) == pid && end &&
			    lm_it_jstr(ev, "comm") && !strcmp(lm_it_jstr(ev, "comm"), end))
				j->has_end = true;
		}
		if (j->first_seq && f != j->last_seq + 1)
			jfile_problem(j, "line %zu: seq %lld after %lld", j->lines, f, j->last_seq);
		if (!j->first_seq)
			j->first_seq = f;
		j->last_seq = t;
		json_decref(ev);
	}
	free(text);
}

/* Inode at path, 0 if there is none. */
static ino_t path_ino(const char *path)
{
	struct stat sb;

	return stat(path, &sb) ? 0 : sb.st_ino;
}

/*
 * Reads base.2, base.1 and base, oldest first; true once one of them holds the marker. lifemon
 * may rotate while they are read (background events suffice on a busy host), so a read counts
 * only if no path changed its inode meanwhile; it is retried for up to 5 s.
 */
static bool chain_read(const char *base, pid_t pid, const char *end, struct jfile js[3])
{
	static const char *const sfx[3] = {".2", ".1", ""};
	int64_t deadline = lm_it_now_ms() + 5000;
	char path[3][128];
	ino_t before[3];
	bool found, stable;
	int i;

	for (i = 0; i < 3; i++)
		snprintf(path[i], sizeof(path[i]), "%s%s", base, sfx[i]);
	do {
		found = false;
		stable = true;
		for (i = 0; i < 3; i++)
			before[i] = path_ino(path[i]);
		for (i = 0; i < 3; i++) {
			jfile_read(path[i], pid, end, &js[i]);
			found |= js[i].has_end;
		}
		for (i = 0; i < 3; i++)
			stable &= path_ino(path[i]) == before[i];
	} while (!stable && lm_it_now_ms() < deadline);
	if (!stable)
		lm_it_fail("%s and its rotated files changed during every read for 5 s", base);
	return found;
}

/*
 * logrotate's way: rename `base` to base.moved, SIGHUP, and lifemon must write a new `base`.
 * One marker EXEC at a time until one lands in the new file (those before it, still in
 * base.moved, show how long the reopen took); then HUP_EVENTS more. base.moved must end
 * exactly where the new file starts (nothing lost or repeated) and get nothing after.
 */
static void hup_check(struct lm_it_proc *lm, const char *base, pid_t child, const char *what)
{
	static const char *const names[3] = {"F.2", "F.1", "F"};
	char moved_path[128], buf[64];
	struct jfile js[3], nf, moved;
	long long s_new, prev = 0;
	int64_t t_hup, deadline;
	int i, st = 0, nmark = 0;
	bool found;

	snprintf(moved_path, sizeof(moved_path), "%s.moved", base);
	LM_IT_ASSERT(!rename(base, moved_path), "%s: rename F: %s", what, strerror(errno));
	LM_IT_ASSERT(!kill(lm_it_proc_pid(lm), SIGHUP), "SIGHUP: %s", strerror(errno));
	t_hup = lm_it_now_ms();
	for (;;) {
		char mname[16];
		int64_t mdl;

		LM_IT_ASSERT(lm_it_now_ms() < t_hup + HUP_REOPEN_MS,
			     "%s: F not reopened within %d ms of SIGHUP: all %d marker(s) went to "
			     "the renamed file",
			     what, HUP_REOPEN_MS, nmark);
		snprintf(mname, sizeof(mname), "ehup%d", nmark++ % 1000);
		bench_run(0, mname);
		mdl = lm_it_now_ms() + 5000;
		for (;;) {
			jfile_read(base, child, mname, &nf);
			jfile_read(moved_path, child, mname, &moved);
			if (nf.has_end || moved.has_end || lm_it_now_ms() >= mdl)
				break;
			usleep(5000);
		}
		LM_IT_ASSERT(nf.has_end || moved.has_end,
			     "%s: marker %s is in neither F nor F.moved after 5 s", what, mname);
		if (nf.has_end)
			break;
		usleep(50000);
	}
	s_new = nf.first_seq;
	lm_it_note("%s: SIGHUP reopened F within %lld ms; %d marker(s) before that went to "
		   "F.moved",
		   what, (long long)(lm_it_now_ms() - t_hup), nmark - 1);
	LM_IT_ASSERT(lm_it_proc_wait(lm, 0, &st) == -ETIMEDOUT, "lifemon exited after SIGHUP (%s)",
		     lm_it_wstatus_str(st, buf, sizeof(buf)));

	bench_run(HUP_EVENTS, "eend2");
	deadline = lm_it_now_ms() + FILE_WAIT_MS;
	while (!(found = chain_read(base, child, "eend2", js)) && lm_it_now_ms() < deadline)
		usleep(20000);
	LM_IT_EXPECT(found, "%s: the marker \"eend2\" after SIGHUP is in none of F, F.1, F.2",
		     what);
	jfile_read(moved_path, child, "eend2", &moved);
	LM_IT_EXPECT(!moved.problems, "%s: F.moved: %s", what, moved.problem);
	LM_IT_EXPECT(!moved.has_end, "%s: F.moved got the events written after SIGHUP", what);
	LM_IT_EXPECT(moved.last_seq == s_new - 1,
		     "%s: F.moved ends at seq %lld and the new F starts at %lld: the reopen must "
		     "neither lose nor repeat an event, nor write to F.moved afterwards",
		     what, moved.last_seq, s_new);
	for (i = 0; i < 3; i++) {
		if (!js[i].exists || js[i].last_seq < s_new)
			continue; /* rotated before the HUP */
		LM_IT_EXPECT(!js[i].problems, "%s: %s after SIGHUP: %s", what, names[i],
			     js[i].problem);
		LM_IT_EXPECT(js[i].first_seq >= s_new,
			     "%s: %s mixes seqs from before (%lld) and after the reopen (%lld)",
			     what, names[i], js[i].first_seq, s_new);
		if (prev)
			LM_IT_EXPECT(js[i].first_seq == prev + 1,
				     "%s: %s starts at %lld after %lld", what, names[i],
				     js[i].first_seq, prev);
		prev = js[i].last_seq;
	}
	lm_it_note("%s: F.moved ends at seq %lld (%lld B), the new F starts at %lld", what,
		   moved.last_seq, (long long)moved.size, s_new);
}

static void stop_lifemon(struct lm_it_proc *lm, const char *what)
{
	int64_t ms = 0;
	int err, st = 0;

	err = lm_it_proc_stop(lm, SIGTERM, LM_IT_STOP_MS, &st, &ms);
	LM_IT_EXPECT(!err && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		     "%s: lifemon did not exit 0 within %d ms of SIGTERM", what, LM_IT_STOP_MS);
	if (lm_it_failures())
		lm_it_proc_dump_stderr(lm, what);
	lm_it_proc_free(lm);
}

static void part_rotate(void)
{
	static const char *const names[3] = {"F.2", "F.1", "F"};
	const char *extra[] = {"--output",
			       rot_f,
			       "--output-max-bytes",
			       ROT_MAX_STR,
			       "--output-keep",
			       ROT_KEEP_STR,
			       "--bench-tgid",
			       NULL,
			       NULL};
	const char *extra2[] = {"--output", hup_f, "--bench-tgid", NULL, NULL};
	struct lm_it_proc *lm = NULL;
	struct jfile js[3];
	char pidstr[16], path[128], buf[64];
	int64_t deadline;
	long long prev = 0;
	struct stat sb;
	int fds[2], i, err, st = 0, nfill = 0;
	bool found;
	pid_t child;

	snprintf(rot_dir, sizeof(rot_dir), "/tmp/lifemon-it-rot-XXXXXX");
	LM_IT_ASSERT(mkdtemp(rot_dir), "mkdtemp: %s", strerror(errno));
	snprintf(rot_f, sizeof(rot_f), "%s/rot.jsonl", rot_dir);
	snprintf(hup_f, sizeof(hup_f), "%s/hup.jsonl", rot_dir);
	lm_it_on_cleanup(rot_cleanup, NULL);
	LM_IT_ASSERT(pipe2(fds, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
	rot_ba.cmd_rd = fds[0];
	rot_ba.cmd_wr = fds[1];
	LM_IT_ASSERT(pipe2(fds, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
	rot_ba.ack_rd = fds[0];
	rot_ba.ack_wr = fds[1];
	err = lm_it_fork_fn(bench_child, &rot_ba, &child);
	LM_IT_ASSERT(!err, "fork: %s", strerror(-err));
	close(rot_ba.cmd_rd);
	close(rot_ba.ack_wr);
	snprintf(pidstr, sizeof(pidstr), "%d", child);
	extra[7] = pidstr;
	extra2[3] = pidstr;

	err = lm_it_lifemon_start(IT_PORT_ROTATE, extra, false, &lm);
	LM_IT_ASSERT(!err, "rotation: lifemon did not become healthy: %s", strerror(-err));

	/* ~2000 events: the file turns over several times; F, F.1 and F.2 are kept. */
	bench_run(ROT_EVENTS, "eend1");
	deadline = lm_it_now_ms() + FILE_WAIT_MS;
	while (!(found = chain_read(rot_f, child, "eend1", js)) && lm_it_now_ms() < deadline)
		usleep(20000);
	LM_IT_ASSERT(found,
		     "the marker EXEC \"eend1\" of pid %d is in none of F, F.1, F.2 "
		     "after %d ms",
		     child, FILE_WAIT_MS);
	for (i = 0; i < 3; i++) {
		LM_IT_EXPECT(js[i].exists, "%s does not exist after ~%d events", names[i],
			     ROT_EVENTS);
		LM_IT_EXPECT(js[i].size <= ROT_SLACK_MAX, "%s is %lld bytes, over %d + slack",
			     names[i], (long long)js[i].size, ROT_MAX);
		LM_IT_EXPECT(!js[i].problems, "%s: %u problem(s), first: %s", names[i],
			     js[i].problems, js[i].problem);
		LM_IT_EXPECT(js[i].lines > 0, "%s is empty", names[i]);
		if (i > 0 && prev)
			LM_IT_EXPECT(js[i].first_seq == prev + 1,
				     "%s starts at seq %lld, the file before it ended at %lld",
				     names[i], js[i].first_seq, prev);
		if (js[i].last_seq)
			prev = js[i].last_seq;
		if (js[i].size > ROT_MAX)
			lm_it_note("%s is %lld bytes, above --output-max-bytes %d", names[i],
				   (long long)js[i].size, ROT_MAX);
		if (js[i].lost)
			lm_it_note("%s holds %u LOST notice(s)", names[i], js[i].lost);
	}
	snprintf(path, sizeof(path), "%s.3", rot_f);
	LM_IT_EXPECT(stat(path, &sb) && errno == ENOENT, "F.3 exists with --output-keep 2");
	lm_it_note("rotation: F.2 %lld..%lld (%lld B), F.1 %lld..%lld (%lld B), F %lld..%lld "
		   "(%lld B)",
		   js[0].first_seq, js[0].last_seq, (long long)js[0].size, js[1].first_seq,
		   js[1].last_seq, (long long)js[1].size, js[2].first_seq, js[2].last_seq,
		   (long long)js[2].size);

	/*
	 * SIGHUP with rotation on. Start from a freshly rotated F so that a size rotation is
	 * ~300 events away (on a busy host it may still stand in for the reopen: the second
	 * instance below has no rotation to hide behind).
	 */
	deadline = lm_it_now_ms() + FILE_WAIT_MS;
	while (!stat(rot_f, &sb) && sb.st_size > ROT_MAX / 3 && lm_it_now_ms() < deadline) {
		char fname[16];

		/* 40 renames (~7 KiB), then wait until they are all written */
		snprintf(fname, sizeof(fname), "efill%d", nfill++ % 1000);
		bench_run(40, fname);
		while (!chain_read(rot_f, child, fname, js) && lm_it_now_ms() < deadline)
			usleep(5000);
	}
	LM_IT_ASSERT(!stat(rot_f, &sb) && sb.st_size <= ROT_MAX / 3,
		     "F did not turn over to a fresh file within %d ms", FILE_WAIT_MS);
	hup_check(lm, rot_f, child, "SIGHUP with rotation");
	stop_lifemon(lm, "rotation");

	/* SIGHUP without rotation: a new file can only come from the reopen. */
	err = lm_it_lifemon_start(IT_PORT_HUP, extra2, false, &lm);
	LM_IT_ASSERT(!err, "SIGHUP: lifemon did not become healthy: %s", strerror(-err));
	bench_run(50, "estart");
	deadline = lm_it_now_ms() + FILE_WAIT_MS;
	while (!(found = chain_read(hup_f, child, "estart", js)) && lm_it_now_ms() < deadline)
		usleep(20000);
	LM_IT_ASSERT(found, "SIGHUP: the first events never reached --output");
	hup_check(lm, hup_f, child, "SIGHUP without rotation");
	stop_lifemon(lm, "SIGHUP");

	rot_close_pipes();
	err = lm_it_reap(child, 10000, &st);
	LM_IT_EXPECT(!err && WIFEXITED(st) && !WEXITSTATUS(st), "rename child ended with %s",
		     err ? strerror(-err) : lm_it_wstatus_str(st, buf, sizeof(buf)));
	rot_cleanup(NULL);
}

int main(int argc, char **argv)
{
	lm_it_init("it_metrics", argc, argv, 110);
	lm_it_require_env();
	part_metrics();
	part_rotate();
	return lm_it_finish();
}
