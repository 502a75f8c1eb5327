/* CLOCK_MONOTONIC readings (vDSO: no system call). Any thread. */
#ifndef TERN_CLOCK_H
#define TERN_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t tern_clock_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static inline uint64_t tern_clock_ms(void)
{
	return tern_clock_us() / 1000u;
}

#endif
