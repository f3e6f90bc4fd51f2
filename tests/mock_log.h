/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Test double for core/log.h: unit tests link tests/mock_log.c instead of lm_log, so the
 * line a module logs lands in mock_log_last (no stderr write) for the test to assert on.
 * Single-threaded use only: the test's main thread reads what the module thread wrote.
 */
#ifndef LM_MOCK_LOG_H
#define LM_MOCK_LOG_H

#include "core/log.h"

/* The last line logged at an enabled level, "lifemon: <module>: <message>", no '\n'. */
extern char mock_log_last[1024];
/* Lines logged at an enabled level since the last mock_log_reset(). */
extern unsigned int mock_log_cnt;
/* Level of the last recorded line. */
extern enum lm_log_level mock_log_last_level;

/* Clears the record and the count; the level set with lm_log_set_level stays. */
void mock_log_reset(void);

#endif /* LM_MOCK_LOG_H */
