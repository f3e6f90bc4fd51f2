/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Parsing of command-line values: listen addresses and sizes. Pure; main thread.
 */
#ifndef LM_CONFIG_H
#define LM_CONFIG_H

#include <stdint.h>

struct lm_config_listen {
	char host[64];	/* numeric IPv4 or IPv6 address, without brackets */
	uint16_t port;	/* 1..65535 */
	int is_loopback;	/* 127.0.0.0/8 or ::1 */
};

/*
 * Parses "ADDR:PORT", "[IPV6]:PORT" or "localhost:PORT" (localhost becomes 127.0.0.1).
 * Returns 0, or -EINVAL with a reason in `why` (a static string) for anything else.
 */
int lm_config_parse_listen(const char *s, struct lm_config_listen *out, const char **why);

/*
 * Checks an --allow-host value: NAME or NAME:PORT, where NAME is a host name of letters,
 * digits, '.', '-' and '_' or a bracketed IPv6 address, and PORT is 1..65535 written without
 * leading zeros (as a Host header carries it). At most LM_CONFIG_HOST_MAX bytes.
 * Returns 0, or -EINVAL with a reason in `why` (a static string).
 */
#define LM_CONFIG_HOST_MAX 255
int lm_config_check_host(const char *s, const char **why);

/*
 * Parses a byte size: digits with an optional K, M or G suffix (powers of 1024).
 * Returns 0, -EINVAL for a malformed value, -ERANGE above `max`.
 */
int lm_config_parse_size(const char *s, uint64_t max, uint64_t *out);

#endif /* LM_CONFIG_H */
