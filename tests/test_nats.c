// SPDX-License-Identifier: GPL-2.0
/*
 * Tests for net/nats.c against a real single-node nats-server (JetStream, loopback, a free
 * port, its store in a temp dir; started and stopped by pid): every event once and in
 * order through a backlog far smaller than the traffic (the ring wraps many times), a
 * broker that stops answering (SIGSTOP: in-flight publishes time out and are retried with
 * the same ids, the full backlog drops and the LOST notice in the stream covers exactly
 * what was dropped), a broker that is not there at start, and the option errors. Reads the
 * stream back with nats.c's ordered consumer.
 */
#include "net/nats.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <nats/nats.h>

#define SLOT_CAP (128 * 1024)
#define MAX_MSGS 200000

static char dir[] = "/tmp/lm-test-nats-XXXXXX";
static pid_t server_pid;
static int server_port;
static char server_url[64];

static char text_mem[SLOT_CAP];
static struct lm_line lines_mem[LM_RING_SLOT_LINES];

struct got {
	char *body;
	uint64_t seq;		/* Lifemon-Seq */
	char id[80];		/* Nats-Msg-Id */
	char type[16];		/* Lifemon-Type */
};

static struct got *got;
static size_t got_cnt;

static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static bool port_open(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok = !connect(fd, (struct sockaddr *)&a, sizeof(a));

	close(fd);
	return ok;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int store_gen; /* a fresh store per test: every stream lifemon makes takes lifemon.> */
static const char *server_conf; /* NULL, or a config file for the next start */

static void server_start(void)
{
	char port[16], store[128];
	int i;

	snprintf(port, sizeof(port), "%d", server_port);
	snprintf(store, sizeof(store), "%s/store%d", dir, store_gen);
	server_pid = fork();
	assert_true(server_pid >= 0);
	if (!server_pid) {
		char log[128];

		/* a test killed by ctest's timeout must not leave its server behind */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		snprintf(log, sizeof(log), "%s/server.log", dir);
		if (!freopen(log, "a", stdout) || !freopen(log, "a", stderr))
			_exit(126);
		if (server_conf)
			execlp("nats-server", "nats-server", "-c", server_conf, "-js", "-a",
			       "127.0.0.1", "-p", port, "-sd", store, (char *)NULL);
		else
			execlp("nats-server", "nats-server", "-js", "-a", "127.0.0.1", "-p", port,
			       "-sd", store, (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 100 && !port_open(server_port); i++)
		sleep_ms(50);
	assert_true(port_open(server_port));
}

static void server_stop(void)
{
	if (server_pid > 0) {
		kill(server_pid, SIGCONT);
		kill(server_pid, SIGTERM);
		waitpid(server_pid, NULL, 0);
	}
	server_pid = 0;
}

/* Lines {"seq":N,"pad":"..."} seq first.., with a notice (type 0) before seq notice_at. */
static void make_slot(struct lm_txt_slot *slot, uint64_t first, uint32_t n, uint64_t notice_at)
{
	uint32_t i, len = 0, li = 0;

	memset(slot, 0, sizeof(*slot));
	slot->text = text_mem;
	slot->lines = lines_mem;
	slot->cap = SLOT_CAP;
	for (i = 0; i < n; i++) {
		uint64_t seq = first + i;
		int w;

		if (seq == notice_at) {
			w = snprintf(text_mem + len, SLOT_CAP - len,
				     "{\"type\":\"LOST\",\"count\":3,\"reason\":\"kernel_ring_full\","
				     "\"cpu\":0,\"before_seq\":%" PRIu64 "}\n", seq);
			lines_mem[li++] = (struct lm_line){ .seq = seq, .off = len,
							    .len = (uint32_t)w, .type = 0 };
			len += (uint32_t)w;
		}
		w = snprintf(text_mem + len, SLOT_CAP - len,
			     "{\"seq\":%" PRIu64 ",\"type\":\"EXEC\",\"pad\":\"%40s\"}\n", seq, "");
		assert_true(w > 0 && (uint32_t)w < SLOT_CAP - len);
		lines_mem[li++] = (struct lm_line){ .seq = seq, .off = len, .len = (uint32_t)w,
						    .type = LM_EV_EXEC };
		len += (uint32_t)w;
	}
	slot->len = len;
	slot->line_cnt = li;
	slot->ev_cnt = n;
	slot->first_seq = first;
	slot->last_seq = first + n - 1;
}

static void got_free(void)
{
	size_t i;

	for (i = 0; i < got_cnt; i++)
		free(got[i].body);
	free(got);
	got = NULL;
	got_cnt = 0;
}

/* Reads every message of the stream, in stream order, into `got`. */
static void read_stream(const char *stream)
{
	natsConnection *nc = NULL;
	natsSubscription *sub = NULL;
	jsCtx *js = NULL;
	jsSubOptions so;
	jsErrCode jerr = 0;
	bool more = true;

	got_free();
	got = calloc(MAX_MSGS, sizeof(*got));
	assert_non_null(got);
	assert_int_equal(natsConnection_ConnectTo(&nc, server_url), NATS_OK);
	assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
	jsSubOptions_Init(&so);
	so.Stream = stream;
	so.Ordered = true;
	so.Config.DeliverPolicy = js_DeliverAll;
	assert_int_equal(js_SubscribeSync(&sub, js, "lifemon.>", NULL, &so, &jerr), NATS_OK);
	while (more) {
		natsMsg *m = NULL;
		jsMsgMetaData *meta = NULL;
		const char *v = NULL;
		struct got *g;

		if (natsSubscription_NextMsg(&m, sub, 2000) != NATS_OK)
			break; /* a quiet stream for 2 s: all read */
		assert_true(got_cnt < MAX_MSGS);
		g = &got[got_cnt++];
		g->body = strndup(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
		if (natsMsgHeader_Get(m, "Lifemon-Seq", &v) == NATS_OK)
			g->seq = strtoull(v, NULL, 10);
		if (natsMsgHeader_Get(m, "Nats-Msg-Id", &v) == NATS_OK)
			snprintf(g->id, sizeof(g->id), "%s", v);
		if (natsMsgHeader_Get(m, "Lifemon-Type", &v) == NATS_OK)
			snprintf(g->type, sizeof(g->type), "%s", v);
		if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
			more = meta->NumPending > 0;
			jsMsgMetaData_Destroy(meta);
		}
		natsMsg_Destroy(m);
	}
	natsSubscription_Unsubscribe(sub);
	natsSubscription_Destroy(sub);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
}

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	server_port = free_port();
	snprintf(server_url, sizeof(server_url), "nats://127.0.0.1:%d", server_port);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	server_stop();
	got_free();
	nats_CloseAndWait(2000);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static int server_fresh(void **state)
{
	(void)state;
	server_stop();
	store_gen++;
	server_start();
	return 0;
}

/* Until the sink found or made its stream (before that nothing acks, so nothing waits). */
static void wait_ready(struct lm_stats *st)
{
	int i;

	for (i = 0; i < 200 && !lm_stats_get(&st->nats.stream_ready); i++)
		sleep_ms(50);
	assert_int_equal(lm_stats_get(&st->nats.stream_ready), 1);
}

static struct lm_nats *open_sink(struct lm_stats *st, const char *stream, uint64_t backlog,
				 uint32_t ack_wait_ms)
{
	struct lm_nats_opts o = {
		.urls = server_url,
		.stream = stream,
		.subject = "lifemon.test.events",
		.replicas = 1,
		.backlog_bytes = backlog,
		.ack_wait_ms = ack_wait_ms,
		.instance = "feedc0de00000001",
		.host = "test.host",
		.stats = st,
	};
	struct lm_nats *n = NULL;
	char err[256] = "";

	assert_int_equal(lm_nats_open(&o, &n, err, sizeof(err)), 0);
	assert_int_equal(lm_nats_start(n), 0);
	return n;
}

static void test_subjects(void **state)
{
	char tok[32];

	(void)state;
	lm_nats_subject_token("web-01.example.com", tok, sizeof(tok));
	assert_string_equal(tok, "web-01_example_com");
	lm_nats_subject_token("a b*c>d", tok, sizeof(tok));
	assert_string_equal(tok, "a_b_c_d");
	lm_nats_subject_token("", tok, sizeof(tok));
	assert_string_equal(tok, "_");
	assert_true(lm_nats_subject_valid("lifemon.web-01.events"));
	assert_true(lm_nats_subject_valid("x"));
	assert_false(lm_nats_subject_valid(""));
	assert_false(lm_nats_subject_valid("a..b"));
	assert_false(lm_nats_subject_valid(".a"));
	assert_false(lm_nats_subject_valid("a."));
	assert_false(lm_nats_subject_valid("a.*"));
	assert_false(lm_nats_subject_valid("a.>"));
	assert_false(lm_nats_subject_valid("a b"));
}

static void expect_open_error(struct lm_nats_opts *o, int code, const char *needle)
{
	struct lm_nats *n = NULL;
	char err[256] = "";

	assert_int_equal(lm_nats_open(o, &n, err, sizeof(err)), code);
	assert_null(n);
	if (!strstr(err, needle))
		fail_msg("error '%s' does not say '%s'", err, needle);
}

static void test_bad_options(void **state)
{
	struct lm_stats st = { 0 };
	struct lm_nats_opts o = { .urls = "nats://127.0.0.1:1", .instance = "i", .stats = &st };

	(void)state;
	o.replicas = 6;
	expect_open_error(&o, -EINVAL, "--nats-replicas");
	o.replicas = 1;
	o.subject = "lifemon.*";
	expect_open_error(&o, -EINVAL, "--nats-subject");
	o.subject = NULL;
	o.backlog_bytes = 1024;
	expect_open_error(&o, -EINVAL, "--nats-backlog-bytes");
	o.backlog_bytes = 0;
	o.stream = "a.b";
	expect_open_error(&o, -EINVAL, "--nats-stream");
	o.stream = NULL;
	o.creds_file = "/nonexistent/x.creds";
	expect_open_error(&o, -ENOENT, "--nats-creds /nonexistent/x.creds");
	o.creds_file = NULL;
	o.tls_cert = "/dev/null";
	expect_open_error(&o, -EINVAL, "go together");
	o.tls_cert = NULL;
	o.urls = "nats://a, nats://b";
	expect_open_error(&o, -EINVAL, "bad URL");
}

/* Checks got[] holds seq 1..events once each, in order, and notices where expected. */
static void check_in_order(uint64_t events, uint64_t notice_at)
{
	uint64_t next = 1;
	size_t i;

	for (i = 0; i < got_cnt; i++) {
		char want[80];

		if (!strcmp(got[i].type, "LOST")) {
			assert_int_equal(got[i].seq, notice_at);
			assert_non_null(strstr(got[i].id, ":n"));
			continue;
		}
		if (got[i].seq != next)
			fail_msg("message %zu has seq %" PRIu64 ", expected %" PRIu64, i, got[i].seq,
				 next);
		snprintf(want, sizeof(want), "feedc0de00000001:%" PRIu64, next);
		assert_string_equal(got[i].id, want);
		assert_string_equal(got[i].type, "EXEC");
		next++;
	}
	assert_int_equal(next - 1, events);
}

/*
 * 20,000 events of ~80 bytes through a 64 KiB backlog, paced to its room: it wraps ~25
 * times, nothing lost.
 */
static void test_every_event_once_in_order(void **state)
{
	struct lm_stats st = { 0 };
	struct lm_txt_slot slot;
	struct lm_nats *n;
	uint64_t seq = 1;
	int i;

	(void)state;
	n = open_sink(&st, "T1", 64 << 10, 0);
	wait_ready(&st);
	for (i = 0; i < 400; i++) {
		/* the sink never waits: pace the puts so at most ~250 entries (32K) wait */
		while (lm_stats_get(&st.nats.taken) -
			       lm_stats_get(&st.sink[LM_STATS_SINK_NATS].delivered) > 200)
			sleep_ms(1);
		make_slot(&slot, seq, 50, 777);
		lm_nats_put(n, &slot);
		seq += 50;
	}
	assert_int_equal(lm_nats_stop(n, 10000), 0);
	assert_int_equal(lm_stats_get(&st.sink[LM_STATS_SINK_NATS].delivered), 20000);
	assert_int_equal(lm_stats_get(&st.sink[LM_STATS_SINK_NATS].dropped), 0);
	assert_int_equal(lm_stats_get(&st.nats.taken), 20000);
	assert_true(lm_stats_get(&st.nats.backlog_peak) <= 64 << 10);
	assert_true(lm_stats_get(&st.nats.backlog_peak) > 16 << 10);
	lm_nats_close(n);
	read_stream("T1");
	assert_int_equal(got_cnt, 20001);
	check_in_order(20000, 777);
}

/*
 * The broker stops answering mid-stream (SIGSTOP) for 2.5 s: what was in flight times out
 * and is published again; the backlog fills and the rest is dropped, counted, and told by
 * one LOST notice once the broker is back. The stream has every kept event once, in order.
 */
static void test_stalled_broker_drops_exactly(void **state)
{
	struct lm_stats st = { 0 };
	struct lm_txt_slot slot;
	struct lm_nats *n;
	uint64_t seq = 1, next = 1, dropped, lost_first = 0, lost_last = 0, lost_cnt = 0;
	uint64_t told = 0, notices = 0;
	size_t i;
	int k;

	(void)state;
	n = open_sink(&st, "T2", 64 << 10, 500);
	wait_ready(&st);
	for (k = 0; k < 20; k++, seq += 50) {
		make_slot(&slot, seq, 50, 0);
		lm_nats_put(n, &slot);
	}
	sleep_ms(300);
	kill(server_pid, SIGSTOP);
	/* 2 s of puts: the backlog fills, then the rest is dropped */
	for (k = 0; k < 200; k++, seq += 50) {
		make_slot(&slot, seq, 50, 0);
		lm_nats_put(n, &slot);
		sleep_ms(10);
	}
	kill(server_pid, SIGCONT);
	sleep_ms(1500);
	for (k = 0; k < 20; k++, seq += 50) {
		make_slot(&slot, seq, 50, 0);
		lm_nats_put(n, &slot);
	}
	assert_int_equal(lm_nats_stop(n, 10000), 0);
	dropped = lm_stats_get(&st.sink[LM_STATS_SINK_NATS].dropped);
	assert_true(dropped > 0);
	assert_int_equal(lm_stats_get(&st.sink[LM_STATS_SINK_NATS].delivered) + dropped, seq - 1);
	assert_true(lm_stats_get(&st.nats.retries) > 0);
	assert_true(lm_stats_get(&st.nats.lost_notices) >= 1);
	lm_nats_close(n);

	read_stream("T2");
	for (i = 0; i < got_cnt; i++) {
		if (!strcmp(got[i].type, "LOST")) {
			assert_int_equal(sscanf(got[i].body, "{\"type\":\"LOST\",\"first_seq\":%" SCNu64
						",\"last_seq\":%" SCNu64 ",\"count\":%" SCNu64,
						&lost_first, &lost_last, &lost_cnt), 3);
			assert_non_null(strstr(got[i].body, "\"reason\":\"nats_backlog_full\""));
			assert_int_equal(lost_first, next);
			assert_int_equal(lost_last - lost_first + 1, lost_cnt);
			told += lost_cnt;
			notices++;
			next = lost_last + 1;
			continue;
		}
		if (got[i].seq != next)
			fail_msg("message %zu has seq %" PRIu64 ", expected %" PRIu64, i, got[i].seq,
				 next);
		next++;
	}
	assert_int_equal(next, seq);
	assert_int_equal(told, dropped);
	assert_int_equal(notices, lm_stats_get(&st.nats.lost_notices));
}

/* No server at start: events wait in the backlog and all arrive once it comes up. */
static void test_broker_down_at_start(void **state)
{
	struct lm_stats st = { 0 };
	struct lm_txt_slot slot;
	struct lm_nats *n;
	uint64_t seq = 1;
	int k;

	(void)state;
	server_stop();
	n = open_sink(&st, "T3", 1 << 20, 0);
	for (k = 0; k < 20; k++, seq += 50) {
		make_slot(&slot, seq, 50, 0);
		lm_nats_put(n, &slot);
	}
	sleep_ms(500);
	assert_int_equal(lm_stats_get(&st.nats.connected), 0);
	assert_int_equal(lm_stats_get(&st.sink[LM_STATS_SINK_NATS].delivered), 0);
	server_start();
	for (k = 0; k < 200 && lm_stats_get(&st.sink[LM_STATS_SINK_NATS].delivered) < 1000; k++)
		sleep_ms(50);
	assert_int_equal(lm_nats_stop(n, 10000), 0);
	assert_int_equal(lm_stats_get(&st.sink[LM_STATS_SINK_NATS].delivered), 1000);
	assert_int_equal(lm_stats_get(&st.sink[LM_STATS_SINK_NATS].dropped), 0);
	lm_nats_close(n);
	read_stream("T3");
	assert_int_equal(got_cnt, 1000);
	check_in_order(1000, 0);
}

/*
 * A line larger than the server takes (max_payload 4 KiB here) can never be published: it
 * must not hold the stream back. It is dropped, counted as rejected, and a LOST notice
 * (nats_rejected) takes its place; everything after it arrives.
 */
static void test_refused_message_is_replaced(void **state)
{
	static char conf[128];
	struct lm_stats st = { 0 };
	struct lm_txt_slot slot;
	struct lm_nats *n;
	uint64_t seq;
	size_t i;
	FILE *f;
	int w;

	(void)state;
	snprintf(conf, sizeof(conf), "%s/small.conf", dir);
	f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "max_payload: 4096\n");
	fclose(f);
	server_stop();
	store_gen++;
	server_conf = conf;
	server_start();
	server_conf = NULL;
	n = open_sink(&st, "T4", 1 << 20, 0);
	wait_ready(&st);
	make_slot(&slot, 1, 10, 0);
	lm_nats_put(n, &slot);
	/* seq 11: one 6000-byte line */
	memset(&slot, 0, sizeof(slot));
	slot.text = text_mem;
	slot.lines = lines_mem;
	w = snprintf(text_mem, SLOT_CAP, "{\"seq\":11,\"type\":\"EXEC\",\"pad\":\"%6000s\"}\n", "");
	lines_mem[0] = (struct lm_line){ .seq = 11, .off = 0, .len = (uint32_t)w,
					 .type = LM_EV_EXEC };
	slot.len = (uint32_t)w;
	slot.line_cnt = 1;
	slot.ev_cnt = 1;
	lm_nats_put(n, &slot);
	make_slot(&slot, 12, 10, 0);
	lm_nats_put(n, &slot);
	assert_int_equal(lm_nats_stop(n, 10000), 0);
	assert_int_equal(lm_stats_get(&st.nats.rejected), 1);
	assert_int_equal(lm_stats_get(&st.sink[LM_STATS_SINK_NATS].dropped), 1);
	assert_int_equal(lm_stats_get(&st.sink[LM_STATS_SINK_NATS].delivered), 20);
	lm_nats_close(n);
	read_stream("T4");
	assert_int_equal(got_cnt, 21);
	for (i = 0, seq = 1; i < got_cnt; i++, seq++) {
		assert_int_equal(got[i].seq, seq);
		if (seq == 11) {
			assert_string_equal(got[i].type, "LOST");
			assert_string_equal(got[i].body, "{\"type\":\"LOST\",\"first_seq\":11,"
					    "\"last_seq\":11,\"count\":1,\"reason\":\"nats_rejected\"}");
		} else {
			assert_string_equal(got[i].type, "EXEC");
		}
	}
}

/* A line larger than the whole backlog is dropped and told at once, never waited for. */
static void test_line_larger_than_backlog(void **state)
{
	struct lm_stats st = { 0 };
	struct lm_txt_slot slot;
	struct lm_nats *n;
	uint64_t seq;
	size_t i;
	int w;

	(void)state;
	n = open_sink(&st, "T5", 64 << 10, 0);
	wait_ready(&st);
	make_slot(&slot, 1, 10, 0);
	lm_nats_put(n, &slot);
	memset(&slot, 0, sizeof(slot));
	slot.text = text_mem;
	slot.lines = lines_mem;
	w = snprintf(text_mem, SLOT_CAP, "{\"seq\":11,\"type\":\"EXEC\",\"pad\":\"%70000s\"}\n", "");
	lines_mem[0] = (struct lm_line){ .seq = 11, .off = 0, .len = (uint32_t)w,
					 .type = LM_EV_EXEC };
	slot.len = (uint32_t)w;
	slot.line_cnt = 1;
	slot.ev_cnt = 1;
	lm_nats_put(n, &slot);
	make_slot(&slot, 12, 10, 0);
	lm_nats_put(n, &slot);
	assert_int_equal(lm_nats_stop(n, 10000), 0);
	assert_int_equal(lm_stats_get(&st.sink[LM_STATS_SINK_NATS].dropped), 1);
	assert_int_equal(lm_stats_get(&st.sink[LM_STATS_SINK_NATS].delivered), 20);
	lm_nats_close(n);
	read_stream("T5");
	assert_int_equal(got_cnt, 21);
	for (i = 0, seq = 1; i < got_cnt; i++, seq++) {
		assert_int_equal(got[i].seq, seq);
		if (seq == 11)
			assert_string_equal(got[i].body, "{\"type\":\"LOST\",\"first_seq\":11,"
					    "\"last_seq\":11,\"count\":1,\"reason\":\"nats_backlog_full\"}");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_subjects),
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test_setup(test_every_event_once_in_order, server_fresh),
		cmocka_unit_test_setup(test_stalled_broker_drops_exactly, server_fresh),
		cmocka_unit_test_setup(test_broker_down_at_start, server_fresh),
		cmocka_unit_test(test_refused_message_is_replaced),
		cmocka_unit_test_setup(test_line_larger_than_backlog, server_fresh),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
