// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for core/stats.c: the Prometheus exposition of the pipeline counters. Checks
 * the format line by line (HELP/TYPE before samples, names, numbers), that every counter's
 * value appears under its name and labels, and -ENOSPC for small buffers. Single-threaded.
 */
#include "core/stats.h"

#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static char buf[64 * 1024];
/* [cpu * LM_EV_TYPE_CNT + type] */
static const uint64_t cpu_drops[2 * LM_EV_TYPE_CNT] = { 0, 1, 2, 0, 0, 0, 3, 4, 0, 5 };

static void fill(struct lm_stats *s, struct lm_stats_view *v)
{
	int t;

	memset(s, 0, sizeof(*s));
	memset(v, 0, sizeof(*v));
	for (t = 1; t < LM_EV_TYPE_CNT; t++) {
		v->kernel_seen[t] = 1000 * t + 7;
		v->kernel_dropped[t] = 7;
		lm_stats_set(&s->read[t], 1000 * t);
	}
	v->kernel_ok = 1;
	v->kernel_dropped_cpu = cpu_drops;
	v->ncpus = 2;
	lm_stats_set(&s->serialized, 6000);
	lm_stats_set(&s->sink[LM_STATS_SINK_FILE].delivered, 5990);
	lm_stats_set(&s->sink[LM_STATS_SINK_FILE].dropped, 10);
	lm_stats_set(&s->ws_dropped, 123);
	lm_stats_set(&s->ws_clients, 2);
	lm_stats_set(&s->abandoned[LM_STATS_STAGE_SER], 41);
	v->sink_enabled[LM_STATS_SINK_FILE] = 1;
	v->rss_bytes = 12345678;
	v->cpu_seconds = 1.5;
	v->start_time_seconds = 1700000000.25;
	v->attached = 1;
}

/* Value of the sample line that starts with `key ` (name plus labels), or -1. */
static double sample(const char *text, const char *key)
{
	size_t n = strlen(key);
	const char *p = text;

	while ((p = strstr(p, key))) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p += n;
	}
	return -1;
}

static void test_stats_renders_counters(void **state)
{
	struct lm_stats s;
	struct lm_stats_view v;
	int n;

	(void)state;
	fill(&s, &v);
	n = lm_stats_render(&s, &v, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(strlen(buf), n);
	assert_true(sample(buf, "lifemon_events_total{type=\"exec\"}") == 1007);
	assert_true(sample(buf, "lifemon_events_total{type=\"oom_kill\"}") == 3007);
	assert_true(sample(buf, "lifemon_kernel_dropped_total{type=\"exit\"}") == 7);
	assert_true(sample(buf, "lifemon_read_total{type=\"exit\"}") == 2000);
	assert_true(sample(buf, "lifemon_kernel_cpu_dropped_total{cpu=\"0\",type=\"exit\"}") == 2);
	assert_true(sample(buf, "lifemon_kernel_cpu_dropped_total{cpu=\"1\",type=\"exec\"}") == 3);
	/* cgroup records are not events: their own metric, never in the by-type ones */
	assert_true(sample(buf, "lifemon_cgroup_records_total{result=\"seen\"}") == 4007);
	assert_true(sample(buf, "lifemon_cgroup_records_total{result=\"kernel_dropped\"}") == 7);
	assert_true(sample(buf, "lifemon_cgroup_records_total{result=\"read\"}") == 4000);
	assert_null(strstr(buf, "type=\"cgroup\""));
	assert_null(strstr(buf, "type=\"(null)\""));
	assert_true(sample(buf, "lifemon_serialized_total") == 6000);
	assert_true(sample(buf, "lifemon_sink_delivered_total{sink=\"file\"}") == 5990);
	assert_true(sample(buf, "lifemon_sink_dropped_total{sink=\"file\"}") == 10);
	/* a disabled sink has no samples */
	assert_true(sample(buf, "lifemon_sink_delivered_total{sink=\"stdout\"}") < 0);
	assert_true(sample(buf, "lifemon_ws_dropped_total") == 123);
	assert_true(sample(buf, "lifemon_abandoned_total{stage=\"reader\"}") == 0);
	assert_true(sample(buf, "lifemon_abandoned_total{stage=\"serializer\"}") == 41);
	assert_true(sample(buf, "lifemon_abandoned_total{stage=\"ws\"}") == 0);
	assert_true(sample(buf, "lifemon_ws_clients") == 2);
	assert_true(sample(buf, "process_resident_memory_bytes") == 12345678);
	assert_true(sample(buf, "process_cpu_seconds_total") == 1.5);
	assert_true(sample(buf, "process_start_time_seconds") == 1700000000.25);
}

static void test_stats_omits_unreadable_kernel_counters(void **state)
{
	struct lm_stats s;
	struct lm_stats_view v;

	(void)state;
	fill(&s, &v);
	v.kernel_ok = 0;
	assert_true(lm_stats_render(&s, &v, buf, sizeof(buf)) > 0);
	assert_null(strstr(buf, "lifemon_events_total"));
	assert_non_null(strstr(buf, "lifemon_read_total"));
}

static bool is_name(const char *p, size_t n)
{
	size_t i;

	if (!n || !(isalpha((unsigned char)p[0]) || p[0] == '_' || p[0] == ':'))
		return false;
	for (i = 1; i < n; i++)
		if (!(isalnum((unsigned char)p[i]) || p[i] == '_' || p[i] == ':'))
			return false;
	return true;
}

/* Exposition format: each sample's metric has HELP and TYPE first; counters end in _total. */
static void test_stats_is_valid_exposition(void **state)
{
	char help[128] = "", type[128] = "", kind[16] = "";
	struct lm_stats s;
	struct lm_stats_view v;
	char *line, *save = NULL;
	int samples = 0;

	(void)state;
	fill(&s, &v);
	assert_true(lm_stats_render(&s, &v, buf, sizeof(buf)) > 0);
	assert_int_equal(buf[strlen(buf) - 1], '\n');
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		size_t n;
		char *end;

		if (!strncmp(line, "# HELP ", 7)) {
			n = strcspn(line + 7, " ");
			assert_true(is_name(line + 7, n) && n < sizeof(help));
			memcpy(help, line + 7, n);
			help[n] = '\0';
			continue;
		}
		if (!strncmp(line, "# TYPE ", 7)) {
			n = strcspn(line + 7, " ");
			assert_true(n < sizeof(type));
			memcpy(type, line + 7, n);
			type[n] = '\0';
			assert_string_equal(type, help);
			snprintf(kind, sizeof(kind), "%s", line + 8 + n);
			assert_true(!strcmp(kind, "counter") || !strcmp(kind, "gauge"));
			if (!strcmp(kind, "counter"))
				assert_non_null(strstr(type, "_total"));
			continue;
		}
		assert_true(line[0] != '#');
		n = strcspn(line, "{ ");
		assert_true(is_name(line, n));
		assert_int_equal(strlen(type), n);
		assert_memory_equal(line, type, n);
		if (line[n] == '{') {
			char *close = strchr(line, '}');

			assert_non_null(close);
			n = (size_t)(close - line) + 1;
		}
		assert_int_equal(line[n], ' ');
		strtod(line + n + 1, &end);
		assert_true(end != line + n + 1 && *end == '\0');
		samples++;
	}
	assert_true(samples > 20);
}

static void test_stats_reports_enospc(void **state)
{
	struct lm_stats s;
	struct lm_stats_view v;
	int n;
	size_t cap;

	(void)state;
	fill(&s, &v);
	n = lm_stats_render(&s, &v, buf, sizeof(buf));
	assert_true(n > 0);
	for (cap = 0; cap <= (size_t)n; cap += 97)
		assert_int_equal(lm_stats_render(&s, &v, buf, cap), -ENOSPC);
	assert_int_equal(lm_stats_render(&s, &v, buf, (size_t)n + 1), n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stats_renders_counters),
		cmocka_unit_test(test_stats_omits_unreadable_kernel_counters),
		cmocka_unit_test(test_stats_is_valid_exposition),
		cmocka_unit_test(test_stats_reports_enospc),
	};

	return cmocka_run_group_tests_name("stats", tests, NULL, NULL);
}
