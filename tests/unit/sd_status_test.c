/* systemd's STATUS= line (src/sd_status.c): the exact text for every state
 * (serving or draining, no reload, a reload that worked, one that failed
 * with its reason), and what goes out on the notify socket: at once after
 * every reload, otherwise only when the line changed, never without
 * NOTIFY_SOCKET. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "notify_fixture.h"
#include "tern/config.h"
#include "tern/sd_status.h"
#include "tern/server.h"

/* 2025-01-02T10:00:00Z */
#define A_TIME 1735812000

static void check_format(const struct tern_sd_status *st, bool draining, uint64_t conns,
			 const char *want)
{
	char out[TERN_SD_STATUS_MAX];
	tern_sd_status_format(st, draining, conns, out, sizeof(out));
	CHECK_EQ_STR(out, want);
}

static void test_format(void)
{
	struct tern_sd_status st = {0};

	check_format(&st, false, 0, "serving 0 connections, no reload yet");
	check_format(&st, false, 1, "serving 1 connection, no reload yet");
	check_format(&st, true, 12, "draining 12 connections, no reload yet");
	st.reload_unix_s = A_TIME;
	st.reload_generation = 3;
	check_format(&st, false, 2,
		     "serving 2 connections, last reload ok at 2025-01-02T10:00:00Z (generation 3)");
	snprintf(st.reload_error, sizeof(st.reload_error),
		 "/etc/tern/site.key: cannot open: No such file or directory");
	check_format(&st, false, 2,
		     "serving 2 connections, last reload failed at 2025-01-02T10:00:00Z: "
		     "/etc/tern/site.key: cannot open: No such file or directory");

	/* Cut to the buffer, still a string. */
	char small[12];
	tern_sd_status_format(&st, false, 2, small, sizeof(small));
	CHECK_EQ_STR(small, "serving 2 c");
}

/* The next datagram, "" when none is waiting. */
static const char *next_datagram(int fd, char *buf, size_t len)
{
	ssize_t n = recv(fd, buf, len - 1, MSG_DONTWAIT);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

/* "<prefix><a time within [before, after]><suffix>". */
static void check_timed(const char *got, const char *prefix, time_t before, time_t after,
			const char *suffix)
{
	struct tm tm = {0};
	size_t n = strlen(prefix);

	if (!CHECK(strncmp(got, prefix, n) == 0)) {
		fprintf(stderr, "    got \"%s\"\n", got);
		return;
	}
	const char *rest = strptime(got + n, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!CHECK(rest != NULL))
		return;
	time_t t = timegm(&tm);
	CHECK(t >= before && t <= after);
	CHECK_EQ_STR(rest, suffix);
}

static void test_sent(void)
{
	struct tern_config cfg;
	struct tern_server srv;
	char err[256], buf[512];

	tern_config_init(&cfg);
	cfg.workers = 1;
	if (!CHECK_EQ_INT(tern_server_prepare(&srv, &cfg, false, err, sizeof(err)), 0)) {
		fprintf(stderr, "    %s\n", err);
		return;
	}
	int fd = test_notify_socket("tern-sd-status-test");

	/* A reload that worked, then one that failed: each sent at once. */
	time_t before = time(NULL);
	srv.generation = 4;
	tern_sd_status_reloaded(&srv, NULL);
	check_timed(next_datagram(fd, buf, sizeof(buf)),
		    "STATUS=serving 0 connections, last reload ok at ", before, time(NULL),
		    " (generation 4)");
	tern_sd_status_reloaded(&srv, "/x/cert.pem: no certificate\nin it");
	check_timed(next_datagram(fd, buf, sizeof(buf)),
		    "STATUS=serving 0 connections, last reload failed at ", before, time(NULL),
		    ": /x/cert.pem: no certificate in it");
	/* A failure without a reason still reads as one; and each reload
	 * gets its line, even the same line again. */
	for (int i = 0; i < 2; i++) {
		tern_sd_status_reloaded(&srv, "");
		check_timed(next_datagram(fd, buf, sizeof(buf)),
			    "STATUS=serving 0 connections, last reload failed at ", before,
			    time(NULL), ": no reason given");
	}

	/* The timer: an unchanged line is not sent again; a changed one is,
	 * at the next check and not before. */
	CHECK_EQ_UINT(tern_sd_status_tick(&srv, 5000), 5000 + TERN_SD_STATUS_CHECK_MS);
	CHECK_EQ_STR(next_datagram(fd, buf, sizeof(buf)), "");
	atomic_store(&srv.health.draining, true);
	CHECK_EQ_UINT(tern_sd_status_tick(&srv, 5999), 6000);
	CHECK_EQ_STR(next_datagram(fd, buf, sizeof(buf)), "");
	CHECK_EQ_UINT(tern_sd_status_tick(&srv, 6000), 6000 + TERN_SD_STATUS_CHECK_MS);
	check_timed(next_datagram(fd, buf, sizeof(buf)),
		    "STATUS=draining 0 connections, last reload failed at ", before, time(NULL),
		    ": no reason given");

	/* Without NOTIFY_SOCKET nothing goes anywhere. */
	unsetenv("NOTIFY_SOCKET");
	tern_sd_status_reloaded(&srv, NULL);
	CHECK_EQ_UINT(tern_sd_status_tick(&srv, 100000), 100000 + TERN_SD_STATUS_CHECK_MS);
	CHECK_EQ_STR(next_datagram(fd, buf, sizeof(buf)), "");
	close(fd);
	tern_server_join_and_free(&srv);
}

int main(void)
{
	test_format();
	test_sent();
	return check_summary();
}
