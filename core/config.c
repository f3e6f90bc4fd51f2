// SPDX-License-Identifier: GPL-2.0
/*
 * Command-line value parsing: listen addresses, host names and byte sizes. Pure; main thread only.
 * Rejects anything it does not fully understand, with a reason for the one error line.
 */
#include "core/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int lm_config_parse_port(const char *s, uint16_t *out)
{
	unsigned long v = 0;
	const char *p;

	if (!*s)
		return -EINVAL;
	for (p = s; *p; p++) {
		if (*p < '0' || *p > '9' || p - s > 5)
			return -EINVAL;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v < 1 || v > 65535)
		return -EINVAL;
	*out = (uint16_t)v;
	return 0;
}

int lm_config_parse_listen(const char *s, struct lm_config_listen *out, const char **why)
{
	const char *colon, *host = s;
	size_t host_len;
	unsigned char addr[16];
	bool v6 = false;

	*why = "expected ADDR:PORT, e.g. 127.0.0.1:8080 or [::1]:8080";
	memset(out, 0, sizeof(*out));
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		host = s + 1;
		host_len = (size_t)(close - host);
		colon = close + 1;
		v6 = true;
	} else {
		colon = strrchr(s, ':');
		if (!colon || strchr(s, ':') != colon)
			return -EINVAL;
		host_len = (size_t)(colon - s);
	}
	if (host_len == 0 || host_len >= sizeof(out->host)) {
		*why = "missing or overlong address";
		return -EINVAL;
	}
	if (lm_config_parse_port(colon + 1, &out->port)) {
		*why = "port must be a number from 1 to 65535";
		return -EINVAL;
	}
	memcpy(out->host, host, host_len);
	out->host[host_len] = '\0';
	if (!v6 && strcmp(out->host, "localhost") == 0)
		strcpy(out->host, "127.0.0.1");
	if (v6) {
		if (inet_pton(AF_INET6, out->host, addr) != 1) {
			*why = "not a numeric IPv6 address";
			return -EINVAL;
		}
		out->is_loopback = !memcmp(addr, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16);
	} else {
		if (inet_pton(AF_INET, out->host, addr) != 1) {
			*why = "not a numeric IPv4 address (or localhost)";
			return -EINVAL;
		}
		out->is_loopback = addr[0] == 127;
	}
	*why = NULL;
	return 0;
}

int lm_config_check_host(const char *s, const char **why)
{
	size_t len = strlen(s), name_len;
	const char *port = NULL;
	uint16_t v;

	*why = "need NAME or NAME:PORT, e.g. lifemon.example or [fe80::1]:8080";
	if (!len || len > LM_CONFIG_HOST_MAX)
		return -EINVAL;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		char addr[LM_CONFIG_HOST_MAX + 1];
		unsigned char bin[16];

		if (!close || (close[1] && close[1] != ':'))
			return -EINVAL;
		name_len = (size_t)(close - s) + 1;
		memcpy(addr, s + 1, name_len - 2);
		addr[name_len - 2] = '\0';
		if (inet_pton(AF_INET6, addr, bin) != 1) {
			*why = "not a numeric IPv6 address in brackets";
			return -EINVAL;
		}
	} else {
		name_len = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				     "0123456789.-_");
		if (!name_len || (s[name_len] && s[name_len] != ':'))
			return -EINVAL;
	}
	if (s[name_len] == ':')
		port = s + name_len + 1;
	if (port && (port[0] == '0' || lm_config_parse_port(port, &v))) {
		*why = "port must be a number from 1 to 65535";
		return -EINVAL;
	}
	*why = NULL;
	return 0;
}

int lm_config_parse_size(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0, mult = 1;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		uint64_t digit = (uint64_t)(*p - '0');

		if (v > (UINT64_MAX - digit) / 10)
			return -ERANGE;
		v = v * 10 + digit;
	}
	switch (*p) {
	case '\0':
		break;
	case 'K':
	case 'k':
		mult = 1ULL << 10;
		p++;
		break;
	case 'M':
	case 'm':
		mult = 1ULL << 20;
		p++;
		break;
	case 'G':
	case 'g':
		mult = 1ULL << 30;
		p++;
		break;
	default:
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	if (v > UINT64_MAX / mult)
		return -ERANGE;
	v *= mult;
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}
