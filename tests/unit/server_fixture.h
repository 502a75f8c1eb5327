/* A server with one worker on a loopback port the kernel picks, for the
 * unit tests that drive a worker or the control thread in process
 * (worker_test.c, control_test.c). Header-only, like check.h. */
#ifndef TERN_TEST_SERVER_FIXTURE_H
#define TERN_TEST_SERVER_FIXTURE_H

#include <netinet/in.h>
#include <unistd.h>

#include "check.h"
#include "tern/config.h"
#include "tern/parse.h"
#include "tern/server.h"

/* The defaults, one worker, --listen 127.0.0.1 on a port the kernel
 * picks (port 0, which the flag parser refuses), --backend backend. */
static inline void fixture_one_worker_config(struct tern_config *cfg, const char *backend)
{
	tern_config_init(cfg);
	cfg->workers = 1;
	cfg->listen_is_default = false;
	cfg->num_listen = 1;
	CHECK_EQ_INT(tern_parse_addr("127.0.0.1:1", false, &cfg->listen[0]), 0);
	((struct sockaddr_in *)&cfg->listen[0].ss)->sin_port = 0;
	cfg->num_backends = 1;
	CHECK_EQ_INT(tern_parse_addr(backend, false, &cfg->backends[0]), 0);
}

/* Drains the server, waits (bounded) for its workers to end, frees it. */
static inline void fixture_server_stop(struct tern_server *srv)
{
	tern_server_drain(srv);
	for (int i = 0; i < 2500 && !tern_server_finished(srv); i++)
		usleep(2000);
	CHECK(tern_server_finished(srv));
	tern_server_join_and_free(srv);
}

#endif
