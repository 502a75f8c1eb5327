/* --backend host names to addresses (backend_resolve.h). */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "tern/backend_resolve.h"
#include "tern/parse.h"

static bool already_listed(const struct tern_addr *out, size_t n, const struct sockaddr *sa,
			   socklen_t len)
{
	for (size_t i = 0; i < n; i++)
		if (out[i].ss_len == len && memcmp(&out[i].ss, sa, len) == 0)
			return true;
	return false;
}

int tern_backend_resolve(const struct tern_addr_name *name, struct tern_addr *out, size_t max,
			 bool *out_more, char *err, size_t err_len)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	char port[8];
	size_t n = 0;

	*out_more = false;
	/* The port through getaddrinfo too: it fills it into every address,
	 * in network order, whatever the family. */
	snprintf(port, sizeof(port), "%u", (unsigned)name->port);
	hints.ai_flags = AI_NUMERICSERV;
	int rc = getaddrinfo(name->host, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, err_len, "%s", rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		switch (rc) {
		case EAI_MEMORY:
			return -ENOMEM;
		case EAI_AGAIN:
			return -EAGAIN;
		default:
			return -ENOENT;
		}
	}
	for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    ai->ai_addrlen > sizeof(out[0].ss) ||
		    already_listed(out, n, ai->ai_addr, ai->ai_addrlen))
			continue;
		if (n == max) {
			*out_more = true;
			break;
		}
		memset(&out[n], 0, sizeof(out[n]));
		memcpy(&out[n].ss, ai->ai_addr, ai->ai_addrlen);
		out[n].ss_len = ai->ai_addrlen;
		tern_format_addr(ai->ai_addr, out[n].text, sizeof(out[n].text));
		n++;
	}
	freeaddrinfo(res);
	if (n == 0) {
		snprintf(err, err_len, "no IPv4 or IPv6 address");
		return -ENOENT;
	}
	return (int)n;
}
