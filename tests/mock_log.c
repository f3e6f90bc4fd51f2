// SPDX-License-Identifier: GPL-2.0
/*
 * Test double for core/log.c: formats each enabled line like the real logger but keeps it in
 * mock_log_last instead of writing stderr. Linked into unit tests in place of lm_log; used
 * from the test's threads one at a time (no locking, like the record it replaces).
 */
#include "tests/mock_log.h"

#include <stdarg.h>
#include <stdio.h>

char mock_log_last[1024];
unsigned int mock_log_cnt;
enum lm_log_level mock_log_last_level;

static enum lm_log_level mock_log_level = LM_LOG_INFO;

void mock_log_reset(void)
{
	mock_log_last[0] = '\0';
	mock_log_cnt = 0;
	mock_log_last_level = LM_LOG_ERR;
}

void lm_log_set_level(enum lm_log_level lvl)
{
	mock_log_level = lvl;
}

bool lm_log_is_enabled(enum lm_log_level lvl)
{
	return lvl <= mock_log_level;
}

void lm_log_write(enum lm_log_level lvl, const char *module, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!lm_log_is_enabled(lvl))
		return;
	n = snprintf(mock_log_last, sizeof(mock_log_last), "lifemon: %s: ", module);
	if (n < 0 || (size_t)n >= sizeof(mock_log_last))
		n = 0;
	va_start(ap, fmt);
	/* A truncated line is still NUL-terminated, which is all an assert needs. */
	vsnprintf(mock_log_last + n, sizeof(mock_log_last) - n, fmt, ap);
	va_end(ap);
	mock_log_last_level = lvl;
	mock_log_cnt++;
}
