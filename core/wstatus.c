// SPDX-License-Identifier: GPL-2.0
/*
 * Wait-status decoding for EXIT events, following the layout wait(2) documents:
 * low 7 bits = terminating signal (0 = exited), bit 7 = core dumped, bits 8-15 = exit code.
 */
#include "core/wstatus.h"

void lm_wstatus_decode(uint32_t status, struct lm_wstatus *out)
{
	uint32_t sig = status & 0x7f;

	if (sig == 0 || sig == 0x7f) {
		/* exited (0x7f would be "stopped", which an exiting task never reports) */
		out->exit_code = (status >> 8) & 0xff;
		out->signal = 0;
		out->core_dumped = false;
		return;
	}
	out->signal = sig;
	out->exit_code = 128 + sig;
	out->core_dumped = (status & 0x80) != 0;
}
