/* `tern -vv`: the build and the host (build_info.h). */
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "tern/build_info.h"
#include "tern/ring.h"
#include "tern/tls_ctx.h"

/* Long enough for any reason tern_ring_probe gives. */
#define WHY_MAX 160

bool tern_build_info_ulp_has_tls(const char *text, size_t len)
{
	for (size_t pos = 0; pos < len;) {
		while (pos < len && (text[pos] == ' ' || text[pos] == '\n' || text[pos] == '\t'))
			pos++;
		size_t start = pos;
		while (pos < len && text[pos] != ' ' && text[pos] != '\n' && text[pos] != '\t')
			pos++;
		if (pos - start == 3 && memcmp(text + start, "tls", 3) == 0)
			return true;
	}
	return false;
}

/* The kernel side of kTLS: its "tls" upper-layer protocol is loaded (it
 * would also load on first use, given CAP_NET_ADMIN and the module). */
static const char *kernel_ktls(char *ulps, size_t ulps_len)
{
	FILE *f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "re");
	size_t n = 0;

	ulps[0] = '\0';
	if (!f)
		return "unknown (no /proc/sys/net/ipv4/tcp_available_ulp)";
	n = fread(ulps, 1, ulps_len - 1, f);
	fclose(f);
	ulps[n] = '\0';
	ulps[strcspn(ulps, "\n")] = '\0';
	return tern_build_info_ulp_has_tls(ulps, strlen(ulps)) ? "tls module loaded"
							       : "tls module not loaded";
}

void tern_build_info_print(FILE *out, tern_io_probe_fn *probe, bool need_buffers)
{
	struct utsname u;
	char why[WHY_MAX], ulps[256];

	fprintf(out, "tern %s\n", TERN_VERSION);
	fprintf(out, "openssl: %s (built against %s)\n", tern_tls_library_running(),
		tern_tls_library_built());
	fprintf(out, "liburing: %s (built against, as pkg-config gave it)\n",
		tern_ring_library_version());
	if (uname(&u) == 0)
		fprintf(out, "kernel: %s %s %s\n", u.sysname, u.release, u.machine);
	else
		fprintf(out, "kernel: unknown (uname failed)\n");
	/* What tern_io_probe_choose decides for --io auto, asked directly:
	 * the choice's own warning is for a start, not for -vv. */
	int ret = probe(NULL, need_buffers, why, sizeof(why));
	if (ret == 0)
		fprintf(out, "io_uring: works (a ring with the workers' flags%s, multishot accept)\n",
			need_buffers ? ", a provided buffer ring" : "");
	else
		fprintf(out, "io_uring: refused: %s\n", why);
	fprintf(out, "io: --io auto would run %s\n", ret == 0 ? "uring" : "epoll");
	const char *kernel = kernel_ktls(ulps, sizeof(ulps));
	fprintf(out, "ktls: not used by tern; OpenSSL %s kTLS support; kernel: %s%s%s%s\n",
		tern_tls_library_ktls() ? "built with" : "built without", kernel,
		ulps[0] ? " (tcp_available_ulp: " : "", ulps, ulps[0] ? ")" : "");
}
