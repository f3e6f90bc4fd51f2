// SPDX-License-Identifier: GPL-2.0
/*
 * Logging: formats one line into a stack buffer and writes it to stderr in one write(2).
 * Called from any thread outside the hot path; the level is set once by main.
 */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static enum lm_log_level lm_log_level = LM_LOG_INFO;

void lm_log_set_level(enum lm_log_level lvl)
{
	lm_log_level = lvl;
}

bool lm_log_is_enabled(enum lm_log_level lvl)
{
	return lvl <= lm_log_level;
}

void lm_log_write(enum lm_log_level lvl, const char *module, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n, m;

	if (!lm_log_is_enabled(lvl))
		return;
	n = snprintf(line, sizeof(line), "lifemon: %s: ", module);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	n += m;
	if ((size_t)n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, n) < 0)
		return; /* nowhere left to report it */
}
