/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Fault injection for tests: makes one pipeline stage fail as a real error would, after it
 * handled N events. Compiled in only with -DLM_FAULT_INJECT (CMake option LM_FAULT_INJECT:
 * on in the dev, asan, tsan and ci presets, off in release); otherwise every call is a
 * constant false. Main reads LIFEMON_FAULT once, before the threads start; the stages only
 * read the result, so any thread may ask.
 */
#ifndef LM_FAULT_H
#define LM_FAULT_H

#include <stdbool.h>
#include <stdint.h>

enum lm_fault_stage {
	LM_FAULT_READER,	/* reader_fail_after:N, N = events read */
	LM_FAULT_SER,		/* ser_fail_after:N, N = events serialized */
	LM_FAULT_WS,		/* ws_fail_after:N, N = events published to clients */
	LM_FAULT_STAGE_CNT,
};

#ifdef LM_FAULT_INJECT
/*
 * Parses LIFEMON_FAULT ("<stage>_fail_after:N"; unset: no fault). Main thread, before the
 * threads start. Returns 0, or -EINVAL for a value it does not understand.
 */
int lm_fault_init(void);

/* The armed fault as given, for the log; NULL if none. */
const char *lm_fault_describe(void);

/* True when `stage` has an armed fault and its progress count `done` reached N. */
bool lm_fault_is_due(enum lm_fault_stage stage, uint64_t done);
#else
static inline int lm_fault_init(void)
{
	return 0;
}

static inline const char *lm_fault_describe(void)
{
	return NULL;
}

static inline bool lm_fault_is_due(enum lm_fault_stage stage, uint64_t done)
{
	(void)stage;
	(void)done;
	return false;
}
#endif

#endif /* LM_FAULT_H */
