/* systemd's watchdog (src/sd_watchdog.c): WATCHDOG_USEC and WATCHDOG_PID
 * read as sd_watchdog_enabled(3) does, and WATCHDOG=1 sent every half
 * interval only while every worker answered within the interval, withheld
 * while one has not, resumed once it answers, and sent whatever the
 * workers do once a drain began. The workers of a server that is prepared
 * but not started never answer; the test moves the first ping round
 * (health.since_ms) to make them fresh or late. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "notify_fixture.h"
#include "tern/clock.h"
#include "tern/config.h"
#include "tern/health.h"
#include "tern/sd_watchdog.h"
#include "tern/server.h"

static void test_parse(void)
{
	CHECK_EQ_INT(tern_sd_watchdog_parse(NULL, NULL, 42), 0);
	CHECK_EQ_INT(tern_sd_watchdog_parse("30000000", NULL, 42), 30000000);
	CHECK_EQ_INT(tern_sd_watchdog_parse("30000000", "42", 42), 30000000);
	/* Another process's watchdog (a parent's, inherited): not ours. */
	CHECK_EQ_INT(tern_sd_watchdog_parse("30000000", "41", 42), 0);
	CHECK_EQ_INT(tern_sd_watchdog_parse(NULL, "42", 42), 0);
	static const char *const bad[] = {"", "0", "-5", "+5", " 5", "5 ", "5s", "1e6", "0x10",
					  "99999999999999999999"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (!CHECK_EQ_INT(tern_sd_watchdog_parse(bad[i], NULL, 42), -EINVAL))
			fprintf(stderr, "    WATCHDOG_USEC=\"%s\"\n", bad[i]);
		if (!CHECK_EQ_INT(tern_sd_watchdog_parse("1000000", bad[i], 42), -EINVAL))
			fprintf(stderr, "    WATCHDOG_PID=\"%s\"\n", bad[i]);
	}
}

static void test_init(void)
{
	struct tern_sd_watchdog wd;
	char pid[32];

	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	tern_sd_watchdog_init(&wd, 7);
	CHECK_EQ_UINT(wd.interval_ms, 0);
	setenv("WATCHDOG_USEC", "2000500", 1); /* rounded up: never later than asked */
	tern_sd_watchdog_init(&wd, 7);
	CHECK_EQ_UINT(wd.interval_ms, 2001);
	CHECK_EQ_UINT(wd.next_ms, 7);
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	tern_sd_watchdog_init(&wd, 7);
	CHECK_EQ_UINT(wd.interval_ms, 2001);
	setenv("WATCHDOG_PID", "1", 1);
	tern_sd_watchdog_init(&wd, 7);
	CHECK_EQ_UINT(wd.interval_ms, 0);
	setenv("WATCHDOG_PID", pid, 1);
	setenv("WATCHDOG_USEC", "soon", 1);
	tern_sd_watchdog_init(&wd, 7);
	CHECK_EQ_UINT(wd.interval_ms, 0);
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

/* How many WATCHDOG=1 datagrams are waiting (anything else fails). */
static unsigned keep_alives(int fd)
{
	char buf[64];
	unsigned n = 0;
	ssize_t len;
	while ((len = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT)) > 0) {
		buf[len] = '\0';
		CHECK_EQ_STR(buf, "WATCHDOG=1");
		n++;
	}
	return n;
}

/* The workers' first ping round was ago_ms before now: with no answer
 * since, they are judged from then. */
static void first_round_ago(struct tern_server *srv, uint64_t ago_ms)
{
	atomic_store(&srv->health.since_ms, tern_clock_ms() - ago_ms);
}

static void test_tick(void)
{
	struct tern_config cfg;
	struct tern_server srv;
	struct tern_sd_watchdog wd;
	char err[256];

	tern_config_init(&cfg);
	cfg.workers = 2;
	if (!CHECK_EQ_INT(tern_server_prepare(&srv, &cfg, false, err, sizeof(err)), 0)) {
		fprintf(stderr, "    %s\n", err);
		return;
	}
	int fd = test_notify_socket("tern-sd-watchdog-test");

	/* No WATCHDOG_USEC: never a keep-alive. */
	tern_sd_watchdog_init(&wd, 0);
	first_round_ago(&srv, 0);
	tern_sd_watchdog_tick(&wd, &srv, 0);
	tern_sd_watchdog_tick(&wd, &srv, 100000);
	CHECK_EQ_UINT(keep_alives(fd), 0);

	/* 10 s: every 5 s, while every worker answered within 10 s. */
	setenv("WATCHDOG_USEC", "10000000", 1);
	tern_sd_watchdog_init(&wd, 1000);
	tern_sd_watchdog_tick(&wd, &srv, 1000);
	CHECK_EQ_UINT(keep_alives(fd), 1);
	tern_sd_watchdog_tick(&wd, &srv, 5999);
	CHECK_EQ_UINT(keep_alives(fd), 0);
	first_round_ago(&srv, 9000); /* late for /healthz (3 s), not for 10 s */
	tern_sd_watchdog_tick(&wd, &srv, 6000);
	CHECK_EQ_UINT(keep_alives(fd), 1);

	/* A worker silent for longer than the interval: withheld, round
	 * after round. */
	first_round_ago(&srv, 10500);
	tern_sd_watchdog_tick(&wd, &srv, 11000);
	CHECK(wd.withheld);
	tern_sd_watchdog_tick(&wd, &srv, 16000);
	CHECK_EQ_UINT(keep_alives(fd), 0);
	/* It answers again (its round is fresh): resumed. */
	first_round_ago(&srv, 0);
	tern_sd_watchdog_tick(&wd, &srv, 21000);
	CHECK_EQ_UINT(keep_alives(fd), 1);
	CHECK(!wd.withheld);

	/* Draining: keep-alives whatever the workers do. */
	first_round_ago(&srv, 60000);
	atomic_store(&srv.health.draining, true);
	tern_sd_watchdog_tick(&wd, &srv, 26000);
	CHECK_EQ_UINT(keep_alives(fd), 1);
	atomic_store(&srv.health.draining, false);

	/* A WatchdogSec= below the probes' bound is judged at the bound: a
	 * worker between two pings is not failed for it. */
	setenv("WATCHDOG_USEC", "1000000", 1);
	tern_sd_watchdog_init(&wd, 0);
	first_round_ago(&srv, 2000);
	tern_sd_watchdog_tick(&wd, &srv, 0);
	CHECK_EQ_UINT(keep_alives(fd), 1);
	first_round_ago(&srv, TERN_HEALTH_BOUND_MS + 500);
	tern_sd_watchdog_tick(&wd, &srv, 500);
	CHECK_EQ_UINT(keep_alives(fd), 0);

	unsetenv("WATCHDOG_USEC");
	unsetenv("NOTIFY_SOCKET");
	close(fd);
	tern_server_join_and_free(&srv);
}

int main(void)
{
	test_parse();
	test_init();
	test_tick();
	return check_summary();
}
