// SPDX-License-Identifier: GPL-2.0
/*
 * lifemon entry point, on the main thread: parses the command line, checks preconditions,
 * loads the BPF programs, has core/pipeline.c build the user-space stages, attaches, drops
 * privileges, starts the pipeline with signals blocked, waits for SIGINT/SIGTERM (SIGHUP
 * reopens --output) while logging loss summaries, and stops it. The only place that exits.
 */
#include <argp.h>
#include <bpf/libbpf.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <pwd.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/fault.h"
#include "core/loader.h"
#include "core/log.h"
#include "core/pipeline.h"
#include "core/stats.h"
#include "net/nats.h"
#include "net/nats_tail.h"

#define LM_EXIT_USAGE 2
#define LM_SUMMARY_EVERY_S 10
#define LM_MAIN_MAX_ORIGINS 16
#define LM_MAIN_MAX_HOSTS 16
#define LM_MAIN_OPT_ALLOW_HOST 0x1a1 /* long option only */
#define LM_MAIN_OPT_MAX_ARGS 0x1a2 /* long option only */
#define LM_MAIN_OPT_REPLAY 0x1a3 /* long option only */
#define LM_MAIN_MIN_TOKEN_BYTES 16
/* long options only */
enum {
	LM_MAIN_OPT_NATS = 0x1b0,
	LM_MAIN_OPT_NATS_SUBJECT,
	LM_MAIN_OPT_NATS_STREAM,
	LM_MAIN_OPT_NATS_REPLICAS,
	LM_MAIN_OPT_NATS_CREDS,
	LM_MAIN_OPT_NATS_TOKEN_FILE,
	LM_MAIN_OPT_NATS_TLS_CA,
	LM_MAIN_OPT_NATS_TLS_CERT,
	LM_MAIN_OPT_NATS_TLS_KEY,
	LM_MAIN_OPT_NATS_BACKLOG,
	LM_MAIN_OPT_NATS_TAIL,
	LM_MAIN_OPT_TAIL_STREAM_SEQ,
	LM_MAIN_OPT_TAIL_SINCE,
	LM_MAIN_OPT_TAIL_INSTANCE,
	LM_MAIN_OPT_TAIL_FOLLOW,
};

struct lm_main_cfg {
	struct lm_config_listen listen;
	const char *output;
	uint64_t ring_bytes;
	uint32_t bench_tgid;
	uint32_t max_args_bytes;
	uint32_t ws_slow_ms;
	uint64_t replay_bytes;
	const char *token_file;
	const char *allow_origins[LM_MAIN_MAX_ORIGINS];
	size_t allow_origin_cnt;
	const char *allow_hosts[LM_MAIN_MAX_HOSTS];
	size_t allow_host_cnt;
	uint32_t max_clients;
	uint32_t max_header_bytes;
	uint32_t handshake_timeout_s;
	uint32_t idle_timeout_s;
	const char *user;
	uid_t user_uid;		/* --user, resolved before anything is set up */
	gid_t user_gid;
	uint64_t output_max_bytes;
	uint32_t output_keep;
	bool output_keep_set;
	int to_stdout;
	int verbose;
	struct lm_nats_opts nats;	/* urls NULL: no NATS sink */
	const char *nats_token_file;
	bool nats_opt_set;		/* some --nats-* option other than --nats */
	bool nats_tail;
	struct lm_nats_tail_opts tail;
	bool tail_opt_set;
};

/* Everything main opens; closed at the end of main. */
struct lm_main {
	struct lm_main_cfg cfg;
	struct lm_load *load;
	struct lm_pipeline *pipe;	/* every user-space stage (core/pipeline.h) */
	double start_time_s;
	char token[256];	/* from --token-file; empty: no token required */
	char nats_token[256];	/* from --nats-token-file */
};

static volatile sig_atomic_t lm_main_signal;
static volatile sig_atomic_t lm_main_hup;

const char *argp_program_version = "lifemon " LM_VERSION;

static const struct argp_option lm_main_options[] = {
	{ "listen", 'l', "ADDR:PORT", 0, "Serve /ws, /metrics, /healthz here (default 127.0.0.1:8080)", 0 },
	{ "stdout", 's', NULL, 0, "Print each event as a JSON line on stdout", 0 },
	{ "output", 'o', "FILE", 0, "Append each event as a JSON line to FILE", 0 },
	{ "output-max-bytes", 'm', "SIZE", 0, "Rotate FILE when it would pass SIZE (default: never)", 0 },
	{ "output-keep", 'k', "N", 0, "Rotated files kept: FILE.1 .. FILE.N (default 5)", 0 },
	{ "ws-slow-ms", 'w', "MS", 0, "Close a WebSocket client still behind MS after losing events (default 10000)", 0 },
	{ "replay-bytes", LM_MAIN_OPT_REPLAY, "SIZE", 0, "JSON kept for /ws clients to resume with since= (1M to 1G, default 16M)", 0 },
	{ "ring-size", 'r', "SIZE", 0, "Kernel ring buffer per CPU, power of two (default 4M)", 0 },
	{ "verbose", 'v', NULL, 0, "Debug logging, libbpf and libwebsockets included", 0 },
	{ "token-file", 't', "FILE", 0, "Require the bearer token in FILE on every request", 0 },
	{ "allow-origin", 'a', "ORIGIN", 0, "Also accept /ws upgrades from this exact Origin (repeatable)", 0 },
	{ "max-args-bytes", LM_MAIN_OPT_MAX_ARGS, "N", 0, "Argument bytes kept per exec, 64 to 65536 (default 4096)", 0 },
	{ "allow-host", LM_MAIN_OPT_ALLOW_HOST, "NAME[:PORT]", 0, "Also answer requests whose Host header is NAME (repeatable)", 0 },
	{ "max-clients", 'c', "N", 0, "WebSocket clients at most (default 64)", 0 },
	{ "max-header-bytes", 'H', "N", 0, "Refuse requests with larger headers (default 4096)", 0 },
	{ "handshake-timeout-s", 'T', "S", 0, "Close connections still handshaking after S (default 5)", 0 },
	{ "idle-timeout-s", 'i', "S", 0, "Close idle HTTP keep-alive connections after S (default 30)", 0 },
	{ "user", 'u', "NAME", 0, "After attaching, run as this user (default: stay root, no capabilities)", 0 },
	{ NULL, 0, NULL, 0, "Every host's events into one NATS JetStream stream:", 1 },
	{ "nats", LM_MAIN_OPT_NATS, "URL[,URL...]", 0, "Publish every event to JetStream at these servers (nats://HOST:PORT)", 1 },
	{ "nats-subject", LM_MAIN_OPT_NATS_SUBJECT, "SUBJECT", 0, "Subject to publish to (default lifemon.<hostname>.events)", 1 },
	{ "nats-stream", LM_MAIN_OPT_NATS_STREAM, "NAME", 0, "Stream to use; created if missing (default LIFEMON)", 1 },
	{ "nats-replicas", LM_MAIN_OPT_NATS_REPLICAS, "N", 0, "Replicas of a stream lifemon creates, 1 to 5 (default 3)", 1 },
	{ "nats-creds", LM_MAIN_OPT_NATS_CREDS, "FILE", 0, "NATS user credentials (JWT and seed) file", 1 },
	{ "nats-token-file", LM_MAIN_OPT_NATS_TOKEN_FILE, "FILE", 0, "NATS token: the first line of FILE", 1 },
	{ "nats-tls-ca", LM_MAIN_OPT_NATS_TLS_CA, "FILE", 0, "Use TLS; trust the CA certificates in FILE (PEM)", 1 },
	{ "nats-tls-cert", LM_MAIN_OPT_NATS_TLS_CERT, "FILE", 0, "Use TLS with this client certificate chain (PEM)", 1 },
	{ "nats-tls-key", LM_MAIN_OPT_NATS_TLS_KEY, "FILE", 0, "The client certificate's private key (PEM)", 1 },
	{ "nats-backlog-bytes", LM_MAIN_OPT_NATS_BACKLOG, "SIZE", 0, "Events kept while JetStream cannot ack them, 64K to 16G (default 64M)", 1 },
	{ NULL, 0, NULL, 0, "Reading a stream (no root needed):", 2 },
	{ "nats-tail", LM_MAIN_OPT_NATS_TAIL, NULL, 0, "Print the stream's events as JSON lines, oldest first, and exit (needs --nats)", 2 },
	{ "tail-stream-seq", LM_MAIN_OPT_TAIL_STREAM_SEQ, "N", 0, "Start at this stream sequence (default 1)", 2 },
	{ "tail-since", LM_MAIN_OPT_TAIL_SINCE, "SEQ", 0, "Skip events whose lifemon seq is below SEQ", 2 },
	{ "tail-instance", LM_MAIN_OPT_TAIL_INSTANCE, "ID", 0, "Only events of this lifemon instance", 2 },
	{ "tail-follow", LM_MAIN_OPT_TAIL_FOLLOW, NULL, 0, "Keep printing new events until interrupted", 2 },
	{ "bench-tgid", 'B', "PID", OPTION_HIDDEN, "Benchmarks: turn PID's renames into events", 0 },
	{ 0 }
};

static void lm_main_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Bad command line: one line on stderr, exit 2, before anything was set up. */
static void lm_main_usage_error(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "lifemon: %s (see lifemon --help)\n", msg);
	exit(LM_EXIT_USAGE);
}

static error_t lm_main_parse_opt(int key, char *arg, struct argp_state *state)
{
	struct lm_main_cfg *cfg = state->input;
	const char *why;
	uint64_t v;

	switch (key) {
	case 'l':
		if (lm_config_parse_listen(arg, &cfg->listen, &why))
			lm_main_usage_error("bad --listen '%s': %s", arg, why);
		return 0;
	case 's':
		cfg->to_stdout = 1;
		return 0;
	case 'o':
		if (!arg[0])
			lm_main_usage_error("bad --output '%s': empty file name", arg);
		cfg->output = arg;
		return 0;
	case 'r':
		if (lm_config_parse_size(arg, 1ULL << 30, &v) || v < 4096 || (v & (v - 1)))
			lm_main_usage_error("bad --ring-size '%s': need a power of two from 4K to 1G", arg);
		cfg->ring_bytes = v;
		return 0;
	case 'v':
		cfg->verbose = 1;
		return 0;
	case 'm':
		if (lm_config_parse_size(arg, 1ULL << 50, &v) || v < 65536)
			lm_main_usage_error("bad --output-max-bytes '%s': need a size of at least 64K", arg);
		cfg->output_max_bytes = v;
		return 0;
	case 'k':
		if (lm_config_parse_size(arg, 1000, &v) || !v || strpbrk(arg, "KkMmGg"))
			lm_main_usage_error("bad --output-keep '%s': need a count from 1 to 1000", arg);
		cfg->output_keep = (uint32_t)v;
		cfg->output_keep_set = true;
		return 0;
	case 'w':
		if (lm_config_parse_size(arg, 3600 * 1000, &v) || v < 100 || strpbrk(arg, "KkMmGg"))
			lm_main_usage_error("bad --ws-slow-ms '%s': need milliseconds from 100 to 3600000", arg);
		cfg->ws_slow_ms = (uint32_t)v;
		return 0;
	case LM_MAIN_OPT_REPLAY:
		if (lm_config_parse_size(arg, 1ULL << 30, &v) || v < (1 << 20))
			lm_main_usage_error("bad --replay-bytes '%s': need a size from 1M to 1G", arg);
		cfg->replay_bytes = v;
		return 0;
	case 't':
		cfg->token_file = arg;
		return 0;
	case 'a':
		if (cfg->allow_origin_cnt == LM_MAIN_MAX_ORIGINS)
			lm_main_usage_error("too many --allow-origin (at most %d)", LM_MAIN_MAX_ORIGINS);
		if (strncmp(arg, "http://", 7) && strncmp(arg, "https://", 8))
			lm_main_usage_error("bad --allow-origin '%s': need scheme://host[:port]", arg);
		cfg->allow_origins[cfg->allow_origin_cnt++] = arg;
		return 0;
	case LM_MAIN_OPT_MAX_ARGS:
		if (lm_config_parse_size(arg, LM_ARGS_MAX, &v) || v < LM_ARGS_MIN)
			lm_main_usage_error("bad --max-args-bytes '%s': need %u to %u", arg,
					    LM_ARGS_MIN, LM_ARGS_MAX);
		cfg->max_args_bytes = (uint32_t)v;
		return 0;
	case LM_MAIN_OPT_ALLOW_HOST:
		if (cfg->allow_host_cnt == LM_MAIN_MAX_HOSTS)
			lm_main_usage_error("too many --allow-host (at most %d)", LM_MAIN_MAX_HOSTS);
		if (lm_config_check_host(arg, &why))
			lm_main_usage_error("bad --allow-host '%s': %s", arg, why);
		cfg->allow_hosts[cfg->allow_host_cnt++] = arg;
		return 0;
	case 'c':
		if (lm_config_parse_size(arg, 100000, &v) || !v || strpbrk(arg, "KkMmGg"))
			lm_main_usage_error("bad --max-clients '%s': need 1 to 100000", arg);
		cfg->max_clients = (uint32_t)v;
		return 0;
	case 'H':
		if (lm_config_parse_size(arg, 65535, &v) || v < 512)
			lm_main_usage_error("bad --max-header-bytes '%s': need 512 to 65535", arg);
		cfg->max_header_bytes = (uint32_t)v;
		return 0;
	case 'T':
	case 'i':
		if (lm_config_parse_size(arg, 3600, &v) || !v || strpbrk(arg, "KkMmGg"))
			lm_main_usage_error("bad %s '%s': need seconds from 1 to 3600",
					    key == 'T' ? "--handshake-timeout-s" : "--idle-timeout-s", arg);
		if (key == 'T')
			cfg->handshake_timeout_s = (uint32_t)v;
		else
			cfg->idle_timeout_s = (uint32_t)v;
		return 0;
	case 'u':
		cfg->user = arg;
		return 0;
	case LM_MAIN_OPT_NATS:
		if (!arg[0] || strchr(arg, ' '))
			lm_main_usage_error("bad --nats '%s': need URL[,URL...]", arg);
		cfg->nats.urls = arg;
		return 0;
	case LM_MAIN_OPT_NATS_SUBJECT:
		if (!lm_nats_subject_valid(arg))
			lm_main_usage_error("bad --nats-subject '%s': need dot-separated tokens "
					    "without spaces, * or >", arg);
		cfg->nats.subject = arg;
		cfg->nats_opt_set = true;
		return 0;
	case LM_MAIN_OPT_NATS_STREAM:
		if (!arg[0] || strpbrk(arg, " .*>/\\\t") || strlen(arg) > 127)
			lm_main_usage_error("bad --nats-stream '%s': need a name without spaces, "
					    ". * > / or \\", arg);
		cfg->nats.stream = arg;
		cfg->nats_opt_set = true;
		return 0;
	case LM_MAIN_OPT_NATS_REPLICAS:
		if (lm_config_parse_size(arg, 5, &v) || !v || strpbrk(arg, "KkMmGg"))
			lm_main_usage_error("bad --nats-replicas '%s': need 1 to 5", arg);
		cfg->nats.replicas = (int)v;
		cfg->nats_opt_set = true;
		return 0;
	case LM_MAIN_OPT_NATS_CREDS:
		cfg->nats.creds_file = arg;
		cfg->nats_opt_set = true;
		return 0;
	case LM_MAIN_OPT_NATS_TOKEN_FILE:
		cfg->nats_token_file = arg;
		cfg->nats_opt_set = true;
		return 0;
	case LM_MAIN_OPT_NATS_TLS_CA:
		cfg->nats.tls_ca = arg;
		cfg->nats_opt_set = true;
		return 0;
	case LM_MAIN_OPT_NATS_TLS_CERT:
		cfg->nats.tls_cert = arg;
		cfg->nats_opt_set = true;
		return 0;
	case LM_MAIN_OPT_NATS_TLS_KEY:
		cfg->nats.tls_key = arg;
		cfg->nats_opt_set = true;
		return 0;
	case LM_MAIN_OPT_NATS_BACKLOG:
		if (lm_config_parse_size(arg, LM_NATS_BACKLOG_MAX_BYTES, &v) ||
		    v < LM_NATS_BACKLOG_MIN_BYTES)
			lm_main_usage_error("bad --nats-backlog-bytes '%s': need a size from 64K "
					    "to 16G", arg);
		cfg->nats.backlog_bytes = v;
		cfg->nats_opt_set = true;
		return 0;
	case LM_MAIN_OPT_NATS_TAIL:
		cfg->nats_tail = true;
		return 0;
	case LM_MAIN_OPT_TAIL_STREAM_SEQ:
	case LM_MAIN_OPT_TAIL_SINCE:
		if (lm_config_parse_size(arg, UINT64_MAX >> 1, &v) || !v || strpbrk(arg, "KkMmGg"))
			lm_main_usage_error("bad %s '%s': need a sequence number from 1",
					    key == LM_MAIN_OPT_TAIL_SINCE ? "--tail-since" :
					    "--tail-stream-seq", arg);
		if (key == LM_MAIN_OPT_TAIL_SINCE)
			cfg->tail.since = v;
		else
			cfg->tail.stream_seq = v;
		cfg->tail_opt_set = true;
		return 0;
	case LM_MAIN_OPT_TAIL_INSTANCE:
		if (!arg[0] || strlen(arg) > 32)
			lm_main_usage_error("bad --tail-instance '%s': need an instance id", arg);
		cfg->tail.instance = arg;
		cfg->tail_opt_set = true;
		return 0;
	case LM_MAIN_OPT_TAIL_FOLLOW:
		cfg->tail.follow = true;
		cfg->tail_opt_set = true;
		return 0;
	case 'B':
		if (lm_config_parse_size(arg, INT32_MAX, &v) || !v)
			lm_main_usage_error("bad --bench-tgid '%s': need a process id", arg);
		cfg->bench_tgid = (uint32_t)v;
		return 0;
	case ARGP_KEY_ARG:
		lm_main_usage_error("unexpected argument '%s'", arg);
		return 0;
	default:
		return ARGP_ERR_UNKNOWN;
	}
}

/* The table's terminator (group headers have no name either). */
static bool lm_main_opt_end(const struct argp_option *opt)
{
	return !opt->name && !opt->key && !opt->doc;
}

/*
 * getopt and argp would print two lines for an unknown option; check names first so bad
 * input gets the one line the user needs. Values are checked later by the parser.
 */
static void lm_main_check_option_names(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		const struct argp_option *opt;
		const char *a = argv[i];
		size_t k;

		if (!strcmp(a, "--"))
			return;
		if (a[0] != '-' || !a[1])
			continue;
		if (a[1] == '-') {
			size_t len = strcspn(a + 2, "=");

			if ((len == 4 && !strncmp(a + 2, "help", 4)) ||
			    (len == 5 && !strncmp(a + 2, "usage", 5)) ||
			    (len == 7 && !strncmp(a + 2, "version", 7)))
				continue;
			for (opt = lm_main_options; !lm_main_opt_end(opt); opt++)
				if (opt->name && strlen(opt->name) == len &&
				    !strncmp(a + 2, opt->name, len))
					break;
			if (lm_main_opt_end(opt))
				lm_main_usage_error("unknown option '%.*s'", (int)len + 2, a);
			if (!opt->arg && a[2 + len] == '=')
				lm_main_usage_error("option '%.*s' takes no value", (int)len + 2, a);
			if (opt->arg && a[2 + len] != '=' && ++i >= argc)
				lm_main_usage_error("option '%s' needs a value", a);
			continue;
		}
		for (k = 1; a[k]; k++) {
			if (a[k] == '?' || a[k] == 'V')
				continue;
			for (opt = lm_main_options; !lm_main_opt_end(opt); opt++)
				if (opt->name && opt->key == a[k])
					break;
			if (lm_main_opt_end(opt))
				lm_main_usage_error("unknown option '-%c'", a[k]);
			if (opt->arg) {
				if (!a[k + 1] && ++i >= argc)
					lm_main_usage_error("option '-%c' needs a value", a[k]);
				break;
			}
		}
	}
}

/*
 * Reads a token: the file's first line, trimmed, at least min bytes. A bad file is a usage
 * error naming the option.
 */
static void lm_main_read_token(const char *opt, const char *path, size_t min, char *out,
			       size_t cap)
{
	struct stat st;
	size_t n;
	FILE *f;

	f = fopen(path, "re");
	if (!f)
		lm_main_usage_error("cannot read %s %s: %s", opt, path, strerror(errno));
	if (!fgets(out, (int)cap, f))
		out[0] = '\0';
	if (!fstat(fileno(f), &st) && (st.st_mode & 077))
		lm_warn("main", "%s %s is readable by group or others: chmod 600 it", opt, path);
	fclose(f);
	n = strcspn(out, "\r\n");
	while (n && (out[n - 1] == ' ' || out[n - 1] == '\t'))
		n--;
	out[n] = '\0';
	if (n < min || n >= cap - 1)
		lm_main_usage_error("%s %s: the token (first line) must be %zu to %zu bytes", opt,
				    path, min, cap - 2);
}

/*
 * Kernels before 6.5 refuse every bpf() call, map lookups on fds we hold included, without
 * CAP_BPF when unprivileged BPF is disabled; /metrics reads the kernel counters that way.
 */
static bool lm_main_lookups_need_cap_bpf(void)
{
	struct utsname u;
	int major = 0, minor = 0;

	if (uname(&u) || sscanf(u.release, "%d.%d", &major, &minor) != 2)
		return true;
	return major < 6 || (major == 6 && minor < 5);
}

/*
 * After the attach, lifemon needs no privilege: it reads rings and maps through fds it
 * holds, its socket is bound, and its output file is open (reopened as the same user).
 * Drops every capability (keeping CAP_BPF only where map lookups need it), empties the
 * bounding set, sets no_new_privs, and switches to --user (resolved by
 * lm_main_check_user) if given. Main thread, before the other threads start, so they
 * inherit it. Returns 0 or -errno.
 */
static int lm_main_drop_privileges(const struct lm_main_cfg *cfg)
{
	const char *user = cfg->user;
	cap_value_t keep[] = { CAP_BPF };
	bool keep_bpf = lm_main_lookups_need_cap_bpf();
	cap_t caps = NULL;
	int err = 0;
	cap_value_t c;

	for (c = 0; c <= CAP_LAST_CAP; c++)
		if (!(keep_bpf && c == CAP_BPF) && cap_drop_bound(c) && errno != EINVAL) {
			err = -errno;
			lm_err("main", "cannot drop capability %d from the bounding set: %s", c,
			       strerror(-err));
			goto out;
		}
	if (user) {
		if ((keep_bpf && prctl(PR_SET_KEEPCAPS, 1L, 0L, 0L, 0L)) ||
		    setgroups(0, NULL) || setgid(cfg->user_gid) || setuid(cfg->user_uid)) {
			err = -errno;
			lm_err("main", "cannot switch to user %s: %s", user, strerror(-err));
			goto out;
		}
	}
	caps = cap_init();
	if (!caps ||
	    (keep_bpf && (cap_set_flag(caps, CAP_PERMITTED, 1, keep, CAP_SET) ||
			  cap_set_flag(caps, CAP_EFFECTIVE, 1, keep, CAP_SET))) ||
	    cap_set_proc(caps) || prctl(PR_SET_NO_NEW_PRIVS, 1L, 0L, 0L, 0L)) {
		err = -errno;
		lm_err("main", "cannot drop capabilities: %s", strerror(-err));
		goto out;
	}
	lm_info("main", "dropped privileges: uid %u, capabilities %s", (unsigned int)getuid(),
		keep_bpf ? "cap_bpf (kernel < 6.5 needs it for map lookups)" : "none");
out:
	if (caps)
		cap_free(caps);
	return err;
}

/*
 * Whether `uid`:`gid`, with no supplementary groups (as lm_main_drop_privileges leaves
 * lifemon), may create files in `dir`: a child switches to the user and asks access(2),
 * so ACLs and read-only mounts count too. Returns 0, the errno access(2) gave (EACCES,
 * ENOENT, EROFS, ...), or -errno when the check itself could not run.
 */
static int lm_main_user_can_create_in(const char *dir, uid_t uid, gid_t gid)
{
	int status, err;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		/* the child only makes async-signal-safe calls, then _exits */
		if (setgroups(0, NULL) || setgid(gid) || setuid(uid))
			_exit(255);
		_exit(access(dir, W_OK | X_OK) ? (errno & 0xff) : 0);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (!WIFEXITED(status) || WEXITSTATUS(status) == 255)
		return -EPERM;
	err = WEXITSTATUS(status);
	return err;
}

/*
 * --user, checked before anything is set up (usage errors, exit 2): the user exists, and
 * after the privilege drop it can create files in FILE's directory, which SIGHUP reopen and
 * rotation need. Main thread, as root.
 */
static void lm_main_check_user_output(struct lm_main_cfg *cfg)
{
	char dir[PATH_MAX];
	struct passwd *pw;
	const char *slash;
	int err;

	if (!cfg->user)
		return;
	pw = getpwnam(cfg->user);
	if (!pw)
		lm_main_usage_error("bad --user '%s': no such user", cfg->user);
	cfg->user_uid = pw->pw_uid;
	cfg->user_gid = pw->pw_gid;
	if (!cfg->output)
		return;
	slash = strrchr(cfg->output, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == cfg->output)
		snprintf(dir, sizeof(dir), "/");
	else if (slash - cfg->output >= (ptrdiff_t)sizeof(dir))
		lm_main_usage_error("bad --output '%s': path too long", cfg->output);
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - cfg->output), cfg->output);
	err = lm_main_user_can_create_in(dir, cfg->user_uid, cfg->user_gid);
	if (err < 0) {
		lm_err("main", "cannot check that --user %s can write %s: %s", cfg->user, dir,
		       strerror(-err));
		exit(1);
	}
	if (err)
		lm_main_usage_error("--user %s cannot create files in %s, the --output directory "
				    "(SIGHUP reopen and rotation need it): %s", cfg->user, dir,
				    strerror(err));
}

static void lm_main_on_signal(int sig)
{
	if (sig == SIGHUP)
		lm_main_hup = 1;
	else
		lm_main_signal = sig;
}

static int lm_main_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char *text = NULL, *line, *save = NULL;

	if (level == LIBBPF_DEBUG && !lm_log_is_enabled(LM_LOG_DBG))
		return 0;
	/* whole, not cut to a line buffer: a verifier log is one message of many lines */
	if (vasprintf(&text, fmt, ap) < 0)
		return 0;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (level == LIBBPF_WARN)
			lm_warn("libbpf", "%s", line);
		else
			lm_dbg("libbpf", "%s", line);
	}
	free(text);
	return 0;
}

/* Total events lost anywhere, for the periodic summary. */
static uint64_t lm_main_lost(struct lm_main *m, uint64_t *kernel)
{
	struct lm_load_counters k = { 0 };
	uint64_t lost = 0;
	int t;

	*kernel = 0;
	if (!lm_load_read_counters(m->load, &k))
		for (t = 1; t < LM_EV_EVENT_CNT; t++)
			*kernel += k.dropped[t];
	for (t = 0; t < LM_STATS_SINK_CNT; t++)
		lost += lm_stats_get(&lm_pipeline_stats(m->pipe)->sink[t].dropped);
	return lost + *kernel + lm_stats_get(&lm_pipeline_stats(m->pipe)->ws_dropped);
}

/*
 * Logs once when the file sink starts failing to reopen or rotate --output (it keeps
 * writing to the file it has and retries) and once when it recovers.
 */
static void lm_main_check_file_sink(struct lm_main *m, int *last_err)
{
	int err = lm_pipeline_output_error(m->pipe);

	if (err == *last_err)
		return;
	if (err)
		lm_warn("main", "cannot reopen or rotate --output %s (still writing to the "
			"file already open, retrying every second): %s", m->cfg.output,
			strerror(-err));
	else
		lm_info("main", "--output %s: reopened", m->cfg.output);
	*last_err = err;
}

static int lm_main_wait(struct lm_main *m)
{
	uint64_t last_lost = 0, kernel, lost;
	time_t last_summary = time(NULL);
	int file_err = 0;

	while (!lm_main_signal) {
		/* interrupted early by SIGINT/SIGTERM: the only unblocked thread is this one */
		nanosleep(&(struct timespec){ 0, 100 * 1000 * 1000 }, NULL);
		if (lm_main_hup) {
			lm_main_hup = 0;
			lm_pipeline_reopen_output(m->pipe);
			lm_info("main", "SIGHUP: reopening %s", m->cfg.output ? m->cfg.output : "nothing");
		}
		lm_main_check_file_sink(m, &file_err);
		/* lm_pipeline_stop names the stage and its error once it has joined it */
		if (lm_pipeline_has_failed(m->pipe))
			return -EIO;
		if (time(NULL) - last_summary >= LM_SUMMARY_EVERY_S) {
			last_summary = time(NULL);
			lost = lm_main_lost(m, &kernel);
			if (lost != last_lost)
				lm_warn("main", "events lost so far: %llu (kernel rings %llu, rest in "
					"sinks and slow clients; see /metrics)",
					(unsigned long long)lost, (unsigned long long)kernel);
			last_lost = lost;
		}
	}
	return 0;
}

/*
 * Once, at exit, after a stage failed or when events were left behind: what each stage
 * abandoned, so the books can be checked (zeros included: a reader that failed between
 * batches held nothing).
 */
static void lm_main_log_abandoned(struct lm_main *m, bool failed)
{
	const struct lm_stats *s = lm_pipeline_stats(m->pipe);
	uint64_t read = 0;
	int t;

	if (!failed && !lm_stats_get(&s->abandoned[LM_STATS_STAGE_READER]) &&
	    !lm_stats_get(&s->abandoned[LM_STATS_STAGE_SER]) &&
	    !lm_stats_get(&s->abandoned[LM_STATS_STAGE_WS]))
		return;
	for (t = 1; t < LM_EV_EVENT_CNT; t++)
		read += lm_stats_get(&s->read[t]);
	lm_warn("main", "events abandoned at exit: reader %llu, serializer %llu, ws %llu (read "
		"%llu, serialized %llu, published %llu)",
		(unsigned long long)lm_stats_get(&s->abandoned[LM_STATS_STAGE_READER]),
		(unsigned long long)lm_stats_get(&s->abandoned[LM_STATS_STAGE_SER]),
		(unsigned long long)lm_stats_get(&s->abandoned[LM_STATS_STAGE_WS]),
		(unsigned long long)read, (unsigned long long)lm_stats_get(&s->serialized),
		(unsigned long long)lm_stats_get(&s->ws_published));
}

int main(int argc, char **argv)
{
	struct argp argp = {
		.options = lm_main_options,
		.parser = lm_main_parse_opt,
		.doc = "lifemon -- stream every process exec, exit and OOM kill as JSON\v"
		       "Events go to WebSocket clients at ws://ADDR:PORT/ws, to stdout with\n"
		       "--stdout and to FILE with --output; counters at /metrics.",
	};
	struct lm_main m = { 0 };
	struct lm_pipeline_opts po;
	enum lm_pipeline_part part;
	struct lm_load_opts lo;
	struct sigaction sa = { .sa_handler = lm_main_on_signal };
	struct timespec now;
	char nats_err[320] = "";
	sigset_t block;
	int err;

	m.cfg.ring_bytes = 4 << 20;
	m.cfg.max_args_bytes = LM_ARGS_DEFAULT;
	m.cfg.ws_slow_ms = 10000;
	m.cfg.replay_bytes = LM_PIPELINE_REPLAY_DEFAULT_BYTES;
	m.cfg.max_clients = 64;
	m.cfg.max_header_bytes = 4096;
	m.cfg.handshake_timeout_s = 5;
	m.cfg.idle_timeout_s = 30;
	m.cfg.output_keep = 5;
	lm_config_parse_listen("127.0.0.1:8080", &m.cfg.listen, &(const char *){ NULL });
	argp_err_exit_status = LM_EXIT_USAGE;
	lm_main_check_option_names(argc, argv);
	err = argp_parse(&argp, argc, argv, 0, NULL, &m.cfg);
	if (err)
		lm_main_usage_error("cannot parse the command line: %s", strerror(err));
	if (!m.cfg.output && (m.cfg.output_max_bytes || m.cfg.output_keep_set))
		lm_main_usage_error("--output-max-bytes and --output-keep need --output FILE");
	lm_log_set_level(m.cfg.verbose ? LM_LOG_DBG : LM_LOG_INFO);
	if ((m.cfg.nats_opt_set || m.cfg.nats_tail) && !m.cfg.nats.urls)
		lm_main_usage_error("the --nats-* options need --nats URL");
	if (m.cfg.tail_opt_set && !m.cfg.nats_tail)
		lm_main_usage_error("the --tail-* options need --nats-tail");
	if (m.cfg.nats_token_file) {
		lm_main_read_token("--nats-token-file", m.cfg.nats_token_file, 1, m.nats_token,
				   sizeof(m.nats_token));
		m.cfg.nats.token = m.nats_token;
	}
	if (m.cfg.nats_tail) {
		m.cfg.tail.nats = m.cfg.nats;
		return lm_nats_tail(&m.cfg.tail) ? 1 : 0;
	}
	libbpf_set_print(lm_main_libbpf_print);
	if (lm_fault_init())
		lm_main_usage_error("bad LIFEMON_FAULT '%s': need <reader|ser|ws>_fail_after:N",
				    getenv("LIFEMON_FAULT"));
	if (lm_fault_describe())
		lm_warn("main", "fault injection armed: %s", lm_fault_describe());

	if (geteuid() != 0) {
		fprintf(stderr, "lifemon: must run as root to load BPF programs: try sudo lifemon\n");
		return LM_EXIT_USAGE;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		fprintf(stderr, "lifemon: kernel has no BTF at /sys/kernel/btf/vmlinux: need a kernel "
			"5.19+ built with CONFIG_DEBUG_INFO_BTF=y\n");
		return LM_EXIT_USAGE;
	}
	lm_main_check_user_output(&m.cfg);
	if (m.cfg.token_file)
		lm_main_read_token("--token-file", m.cfg.token_file, LM_MAIN_MIN_TOKEN_BYTES,
				   m.token, sizeof(m.token));
	else if (!m.cfg.listen.is_loopback)
		lm_warn("main", "no --token-file: anyone who can reach %s may read the event stream",
			m.cfg.listen.host);
	clock_gettime(CLOCK_REALTIME, &now);
	m.start_time_s = (double)now.tv_sec + now.tv_nsec / 1e9;
	signal(SIGPIPE, SIG_IGN);
	/* a file size limit (ulimit -f) fails the sink's writes with EFBIG, like a full disk */
	signal(SIGXFSZ, SIG_IGN);

	po = (struct lm_pipeline_opts){
		.max_args_bytes = m.cfg.max_args_bytes,
		.to_stdout = m.cfg.to_stdout,
		.output = m.cfg.output,
		.output_max_bytes = m.cfg.output_max_bytes,
		.output_keep = m.cfg.output_keep,
		.output_chown = m.cfg.user != NULL,
		.output_uid = m.cfg.user_uid,
		.output_gid = m.cfg.user_gid,
		.cgroup = true,
		.host = m.cfg.listen.host,
		.port = m.cfg.listen.port,
		.ws_slow_ms = m.cfg.ws_slow_ms,
		.replay_bytes = m.cfg.replay_bytes,
		.version = LM_VERSION,
		.token = m.token[0] ? m.token : NULL,
		.allow_origins = m.cfg.allow_origins,
		.allow_origin_cnt = m.cfg.allow_origin_cnt,
		.allow_hosts = m.cfg.allow_hosts,
		.allow_host_cnt = m.cfg.allow_host_cnt,
		.max_clients = m.cfg.max_clients,
		.max_header_bytes = m.cfg.max_header_bytes,
		.handshake_timeout_s = m.cfg.handshake_timeout_s,
		.idle_timeout_s = m.cfg.idle_timeout_s,
		.start_time_s = m.start_time_s,
		.nats = m.cfg.nats.urls ? &m.cfg.nats : NULL,
		.nats_err = nats_err,
		.nats_err_cap = sizeof(nats_err),
	};
	err = lm_pipeline_open(&po, &m.pipe, &part);
	switch (err ? part : LM_PIPELINE_PART_NONE) {
	case LM_PIPELINE_PART_NONE:
	case LM_PIPELINE_PART_SER:	/* lm_ser_open said why */
		break;
	case LM_PIPELINE_PART_WAKE:
		lm_err("main", "cannot create eventfd: %s", strerror(-err));
		break;
	case LM_PIPELINE_PART_RINGS:
		lm_err("main", "cannot allocate rings: %s", strerror(-err));
		break;
	case LM_PIPELINE_PART_STDOUT:
		lm_err("main", "cannot set up the stdout sink (io_uring): %s", strerror(-err));
		break;
	case LM_PIPELINE_PART_FILE:
		if (err == -ENOMEM || err == -EINVAL) {
			lm_err("main", "cannot set up the --output sink: %s", strerror(-err));
			break;
		}
		lm_main_usage_error("cannot open --output %s: %s", m.cfg.output, strerror(-err));
		break;
	case LM_PIPELINE_PART_FILE_OWNER:
		lm_err("main", "cannot hand --output %s to --user %s: %s", m.cfg.output,
		       m.cfg.user, strerror(-err));
		break;
	case LM_PIPELINE_PART_WS:
		if (err == -EADDRINUSE || err == -EADDRNOTAVAIL || err == -EACCES) {
			fprintf(stderr, "lifemon: cannot listen on %s%s%s:%u: %s; stop the other "
				"server or pick another address with --listen\n",
				strchr(m.cfg.listen.host, ':') ? "[" : "", m.cfg.listen.host,
				strchr(m.cfg.listen.host, ':') ? "]" : "", m.cfg.listen.port,
				strerror(-err));
			return LM_EXIT_USAGE;
		}
		lm_err("main", "cannot start the web server: %s", strerror(-err));
		break;
	case LM_PIPELINE_PART_CGROUP:
		lm_err("main", "cannot read the cgroup hierarchies: %s", strerror(-err));
		break;
	case LM_PIPELINE_PART_NATS:
		if (err == -ENOMEM) {
			lm_err("main", "cannot set up the NATS sink: %s", strerror(-err));
			break;
		}
		lm_main_usage_error("%s", nats_err);
		break;
	}
	if (err)
		goto out;
	if (!m.cfg.listen.is_loopback)
		lm_warn("main", "listening on non-loopback %s: anyone who can reach it sees every "
			"process on this host", m.cfg.listen.host);

	lo.ring_bytes = (uint32_t)m.cfg.ring_bytes;
	lo.bench_tgid = m.cfg.bench_tgid;
	lo.max_args_bytes = m.cfg.max_args_bytes;
	lo.memcg_hier = lm_pipeline_memcg_hier(m.pipe);
	if (lo.bench_tgid)
		lm_warn("main", "benchmark mode: renames of pid %u become events", lo.bench_tgid);
	err = lm_load_open(&lo, &m.load);
	if (err)
		goto out;
	err = lm_pipeline_open_reader(m.pipe, m.load);
	if (err)
		goto out;

	/* attach and drop privileges first: the threads then inherit the reduced set, and the
	 * kernel rings hold what happens until the reader starts a moment later */
	err = lm_load_attach(m.load);
	if (!err)
		err = lm_main_drop_privileges(&m.cfg);
	if (err)
		goto out;

	/* threads inherit this mask: only main takes SIGINT/SIGTERM */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &block, NULL);
	err = lm_pipeline_start(m.pipe);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	pthread_sigmask(SIG_UNBLOCK, &block, NULL);
	if (err) {
		lm_err("main", "cannot start pipeline threads: %s", strerror(-err));
		lm_pipeline_stop(m.pipe);
		goto out;
	}
	lm_pipeline_set_ready(m.pipe, true);
	lm_info("main", "lifemon %s: attached (%s, %d CPU rings of %llu KiB); serving "
		"http://%s%s%s:%u/ (/ws, /metrics, /healthz)", LM_VERSION,
		lm_load_variant(m.load), lm_load_ring_cnt(m.load),
		(unsigned long long)(m.cfg.ring_bytes >> 10),
		strchr(m.cfg.listen.host, ':') ? "[" : "", m.cfg.listen.host,
		strchr(m.cfg.listen.host, ':') ? "]" : "", m.cfg.listen.port);

	err = lm_main_wait(&m);
	{
		/* pipeline order: detach, drain reader, drain serializer and sinks, flush ws */
		int e = lm_pipeline_stop(m.pipe);

		if (!err)
			err = e;
	}
	if (!err)
		lm_info("main", "stopped on signal %d: %llu events serialized",
			(int)lm_main_signal,
			(unsigned long long)lm_stats_get(&lm_pipeline_stats(m.pipe)->serialized));
	lm_main_log_abandoned(&m, err != 0);
out:
	/* the reader borrows the loader's ring fds: close the pipeline first */
	lm_pipeline_close(m.pipe);
	lm_load_close(m.load);
	return err ? 1 : 0;
}
