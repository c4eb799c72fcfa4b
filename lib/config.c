// SPDX-License-Identifier: MIT
/* config.c - defaults and environment overrides. Bad values are errors, never
 * silently replaced by a default: a typo in URT_WORKERS must not go unnoticed. */
#include <ctype.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

void urt_config_init(struct urt_config *cfg)
{
	if (cfg)
		memset(cfg, 0, sizeof(*cfg));
}

/* Parses a decimal with an optional k/m/g (x1024) suffix into [min, max]. */
static int parse_size(const char *s, unsigned long long min, unsigned long long max,
		      bool suffix, unsigned long long *out)
{
	unsigned long long v, mul = 1;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (suffix && *end) {
		switch (tolower((unsigned char)*end)) {
		case 'k': mul = 1ULL << 10; break;
		case 'm': mul = 1ULL << 20; break;
		case 'g': mul = 1ULL << 30; break;
		default: return -EINVAL;
		}
		end++;
	}
	if (*end || v > max / mul || v * mul < min || v * mul > max)
		return -EINVAL;
	*out = v * mul;
	return 0;
}

int urt_config_from_env(struct urt_config *cfg, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		unsigned long long min, max;
		bool suffix;
		const char *what;
	} vars[] = {
		{ "URT_WORKERS", 1, 1024, false, "a number of worker slots, 1..1024" },
		{ "URT_STACK_SIZE", 16384, 1ULL << 30, true, "bytes (k/m/g suffix), 16k..1g" },
		{ "URT_MAX_BLOCKING", 1, 4096, false, "a thread count, 1..4096" },
		{ "URT_BLOCKING_IDLE_MS", 1, 3600000, false, "milliseconds, 1..3600000" },
		{ "URT_MONITOR_THRESHOLD_US", 1, 10000000, false, "microseconds, 1..10000000" },
		{ "URT_HOG_THRESHOLD_US", 1, 60000000, false, "microseconds, 1..60000000" },
		{ "URT_MAX_SPARES", 1, 1024, false, "a thread count, 1..1024" },
		{ "URT_MONITOR_POLL", 0, 1024, false, "auto, off, or a thread count 0 (off)..1024" },
		{ "URT_HOG_SIGNAL", 0, 1, false, "0 (off) or 1 (on)" },
	};
	const char *mon = getenv("URT_MONITOR");

	if (!cfg)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		const char *v = getenv(vars[i].name);
		unsigned long long x;

		if (!v)
			continue;
		if (i == 7 && (!strcmp(v, "auto") || !strcmp(v, "off"))) {
			cfg->monitor_poll = v[0] == 'a' ? URT_MONITOR_POLL_AUTO :
					    URT_MONITOR_POLL_OFF;
			continue;
		}
		if (parse_size(v, vars[i].min, vars[i].max, vars[i].suffix, &x)) {
			if (err && errlen)
				snprintf(err, errlen, "urt: invalid %s='%s': expected %s",
					 vars[i].name, v, vars[i].what);
			return -EINVAL;
		}
		switch (i) {
		case 0: cfg->workers = (unsigned int)x; break;
		case 1: cfg->stack_size = (size_t)x; break;
		case 2: cfg->max_blocking = (unsigned int)x; break;
		case 3: cfg->blocking_idle_ms = (unsigned int)x; break;
		case 4: cfg->monitor_threshold_ns = (int64_t)x * 1000; break;
		case 5: cfg->hog_threshold_ns = (int64_t)x * 1000; break;
		case 6: cfg->max_spares = (unsigned int)x; break;
		case 7: cfg->monitor_poll = x ? (int)x : URT_MONITOR_POLL_OFF; break;
		case 8: cfg->hog_signal = x ? 0 : -1; break;
		}
	}
	if (mon) {
		static const char *const names[] = { "auto", "kmod", "bpf", "proc", "off" };
		bool ok = false;

		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			if (strcmp(mon, names[i]) == 0) {
				cfg->monitor = names[i];
				ok = true;
			}
		}
		if (!ok) {
			if (err && errlen)
				snprintf(err, errlen, "urt: invalid URT_MONITOR='%s': expected "
					 "auto, kmod, bpf, proc or off", mon);
			return -EINVAL;
		}
	}
	return 0;
}

/* Fills in the defaults for zero fields and checks the rest. */
int urt__config_resolve(struct urt_config *cfg)
{
	if (cfg->workers == 0) {
		cpu_set_t set;

		cfg->workers = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
		if (cfg->workers < 1)
			cfg->workers = 1;
	}
	if (cfg->workers > 1024)
		return -EINVAL;
	if (cfg->stack_size == 0)
		cfg->stack_size = 64 * 1024;
	if (cfg->stack_size < 16384 || cfg->stack_size > (1UL << 30))
		return -EINVAL;
	if (cfg->max_blocking == 0)
		cfg->max_blocking = 64;
	if (cfg->blocking_idle_ms == 0)
		cfg->blocking_idle_ms = 10000;
	if (cfg->global_queue_interval == 0)
		cfg->global_queue_interval = 61;
	if (cfg->event_interval == 0)
		cfg->event_interval = 61;
	if (!cfg->name)
		cfg->name = "urt";
	if (!cfg->monitor)
		cfg->monitor = "auto";
	if (strcmp(cfg->monitor, "auto") && strcmp(cfg->monitor, "kmod") &&
	    strcmp(cfg->monitor, "bpf") && strcmp(cfg->monitor, "proc") &&
	    strcmp(cfg->monitor, "off"))
		return -EINVAL;
	if (cfg->monitor_threshold_ns == 0)
		cfg->monitor_threshold_ns = 50000;
	if (cfg->monitor_threshold_ns < 0)
		return -EINVAL;
	if (cfg->hog_threshold_ns == 0)
		cfg->hog_threshold_ns = 1000000;	/* 1 ms: Documentation/monitor.md */
	if (cfg->max_spares == 0)
		cfg->max_spares = cfg->workers;
	if (cfg->max_spares > 1024)
		return -EINVAL;
	if (cfg->monitor_poll == 0)
		cfg->monitor_poll = URT_MONITOR_POLL_AUTO;
	if (cfg->monitor_poll < URT_MONITOR_POLL_OFF || cfg->monitor_poll > 1024)
		return -EINVAL;
	if (cfg->hog_signal != 0 && cfg->hog_signal != -1)
		return -EINVAL;
	return 0;
}
