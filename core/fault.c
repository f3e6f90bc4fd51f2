// SPDX-License-Identifier: GPL-2.0
/*
 * Fault injection (test builds only, see fault.h): parses LIFEMON_FAULT on the main thread
 * before the pipeline threads exist; they read the armed stage and threshold afterwards,
 * which pthread_create orders after the writes.
 */
#include "core/fault.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const lm_fault_names[LM_FAULT_STAGE_CNT] = {
	"reader_fail_after:", "ser_fail_after:", "ws_fail_after:"
};

static int lm_fault_stage = -1;	/* the armed stage, or -1 */
static uint64_t lm_fault_after;	/* fail once this many events were handled */
static const char *lm_fault_spec;

int lm_fault_init(void)
{
	const char *spec = getenv("LIFEMON_FAULT");
	char *end;
	int i;

	if (!spec || !spec[0])
		return 0;
	for (i = 0; i < LM_FAULT_STAGE_CNT; i++) {
		size_t n = strlen(lm_fault_names[i]);
		unsigned long long v;

		if (strncmp(spec, lm_fault_names[i], n) || spec[n] < '0' || spec[n] > '9')
			continue;
		errno = 0;
		v = strtoull(spec + n, &end, 10);
		if (errno || *end)
			return -EINVAL;
		lm_fault_stage = i;
		lm_fault_after = v;
		lm_fault_spec = spec;
		return 0;
	}
	return -EINVAL;
}

const char *lm_fault_describe(void)
{
	return lm_fault_spec;
}

bool lm_fault_is_due(enum lm_fault_stage stage, uint64_t done)
{
	return lm_fault_stage == (int)stage && done >= lm_fault_after;
}
