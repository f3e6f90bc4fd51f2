/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What every fuzz target shares: check(), which names the target and aborts so libFuzzer
 * keeps the input, and guard regions whose last byte sits right before a PROT_NONE page, so
 * one byte read or written past a buffer faults even without ASan. Define LM_FUZZ_NAME (a
 * string) before including.
 */
#ifndef LM_FUZZ_GUARD_H
#define LM_FUZZ_GUARD_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef LM_FUZZ_NAME
#error "define LM_FUZZ_NAME before including fuzz_guard.h"
#endif

#define check(cond, ...)                                                                   \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, LM_FUZZ_NAME ": %s:%d: check failed: %s: ", __FILE__, \
				__LINE__, #cond);                                          \
			fprintf(stderr, __VA_ARGS__);                                      \
			fputc('\n', stderr);                                               \
			abort();                                                           \
		}                                                                          \
	} while (0)

/* A region whose last byte sits right before a PROT_NONE page: one byte past it faults. */
struct guard {
	char *map;
	size_t size; /* usable bytes before the guard page */
};

static inline void guard_map(struct guard *g, size_t size)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	g->size = (size + page - 1) / page * page;
	g->map =
	    mmap(NULL, g->size + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (g->map == MAP_FAILED || mprotect(g->map + g->size, page, PROT_NONE)) {
		perror(LM_FUZZ_NAME ": guard mapping");
		abort();
	}
}

/* `len` bytes that end exactly at the guard page. */
static inline char *guard_end(const struct guard *g, size_t len)
{
	check(len <= g->size, "buffer of %zu bytes > guard region %zu", len, g->size);
	return g->map + g->size - len;
}

#endif /* LM_FUZZ_GUARD_H */
