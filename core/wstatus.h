/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Wait-status decoding: turns the kernel's raw exit status (as wait(2) reports it) into the
 * fields of an EXIT event. Pure; any thread.
 */
#ifndef LM_WSTATUS_H
#define LM_WSTATUS_H

#include <stdbool.h>
#include <stdint.h>

struct lm_wstatus {
	uint32_t exit_code;	/* WEXITSTATUS if exited; 128 + signal if killed (shell rule) */
	uint32_t signal;	/* the signal that killed the process; 0 if it exited */
	bool core_dumped;	/* killed by a signal and a core was dumped */
};

void lm_wstatus_decode(uint32_t status, struct lm_wstatus *out);

#endif /* LM_WSTATUS_H */
