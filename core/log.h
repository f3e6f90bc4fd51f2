/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Logging for every thread: one line per call on stderr, "lifemon: <module>: <message>".
 * stdout belongs to the --stdout JSONL sink. Never call from the per-event hot path.
 */
#ifndef LM_LOG_H
#define LM_LOG_H

#include <stdbool.h>

enum lm_log_level {
	LM_LOG_ERR,
	LM_LOG_WARN,
	LM_LOG_INFO,
	LM_LOG_DBG,
};

/* Sets the most verbose level printed (default LM_LOG_INFO). Call before threads start. */
void lm_log_set_level(enum lm_log_level lvl);
bool lm_log_is_enabled(enum lm_log_level lvl);

/* Writes one line with a single write(2), so lines from threads never interleave. */
void lm_log_write(enum lm_log_level lvl, const char *module, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define lm_err(mod, ...) lm_log_write(LM_LOG_ERR, mod, __VA_ARGS__)
#define lm_warn(mod, ...) lm_log_write(LM_LOG_WARN, mod, __VA_ARGS__)
#define lm_info(mod, ...) lm_log_write(LM_LOG_INFO, mod, __VA_ARGS__)
#define lm_dbg(mod, ...) lm_log_write(LM_LOG_DBG, mod, __VA_ARGS__)

#endif /* LM_LOG_H */
