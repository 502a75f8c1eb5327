/* Reloads that start themselves (watch.h). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tern/watch.h"

/* What a directory event may mean for a file in it: created, renamed in
 * or out, written and closed, chmod-ed, removed; and the directory itself
 * going. Not IN_MODIFY, which every write(2) raises: a log file or a
 * trace kept open in the same directory would wake the control thread
 * for each of its writes (and under strace, whose own trace is such a
 * file, for ever). A file is replaced by a rename or written and closed;
 * one rewritten in place and kept open is for --reload-interval. */
#define DIR_EVENTS                                                                             \
	(IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CLOSE_WRITE | IN_ATTRIB |    \
	 IN_DELETE_SELF | IN_MOVE_SELF)

/* A path's identity and content stamp; missing when stat() failed. */
struct stamp {
	bool missing;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
};

struct tern_watch {
	const char *const *paths;
	size_t num_paths;
	struct stamp *baseline; /* by path */
	int inotify_fd;         /* -1: none */
	uint64_t interval_ms;   /* 0: no comparison on a timer */
	uint64_t next_interval_ms;
	uint64_t first_event_ms; /* 0: not pending */
	uint64_t last_event_ms;
};

size_t tern_watch_config_paths(const struct tern_config *cfg, const char **paths, size_t max)
{
	size_t n = 0;

#define ADD(p)                                  \
	do {                                    \
		if ((p) != NULL && n < max)     \
			paths[n++] = (p);       \
	} while (0)
	for (size_t i = 0; i < cfg->num_certs; i++) {
		ADD(cfg->certs[i].cert_path);
		ADD(cfg->certs[i].key_path);
		ADD(cfg->certs[i].ocsp_path);
	}
	ADD(cfg->client_ca_path);
	ADD(cfg->crl_path);
	ADD(cfg->ticket_keys_path);
#undef ADD
	return n;
}

static void stamp_take(const char *path, struct stamp *out)
{
	struct stat st;

	memset(out, 0, sizeof(*out));
	if (stat(path, &st) < 0) {
		out->missing = true;
		return;
	}
	out->dev = st.st_dev;
	out->ino = st.st_ino;
	out->size = st.st_size;
	out->mtime = st.st_mtim;
	out->ctime = st.st_ctim;
}

static bool stamp_equal(const struct stamp *a, const struct stamp *b)
{
	if (a->missing || b->missing)
		return a->missing == b->missing;
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
	       a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* Watches the directory holding path (its text up to the last '/', or
 * "."). A directory that cannot be watched (gone, no permission, the
 * watch limit) is skipped: the interval, if any, still sees its files. */
static void watch_dir_of(struct tern_watch *w, const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t len = slash ? (size_t)(slash - path) : 1;

	if (!slash)
		path = ".";
	else if (len == 0)
		len = 1; /* "/file": the root */
	if (len >= sizeof(dir))
		return;
	memcpy(dir, path, len);
	dir[len] = '\0';
	/* The same directory twice gives the same watch back. */
	(void)inotify_add_watch(w->inotify_fd, dir, DIR_EVENTS | IN_ONLYDIR);
}

/* The directories of every path as typed and as it resolves now: a swap
 * of a symlink in the typed directory and a write to the target in its
 * own are both seen. */
static void watch_dirs(struct tern_watch *w)
{
	char resolved[PATH_MAX];

	if (w->inotify_fd < 0)
		return;
	for (size_t i = 0; i < w->num_paths; i++) {
		watch_dir_of(w, w->paths[i]);
		if (realpath(w->paths[i], resolved))
			watch_dir_of(w, resolved);
	}
}

static void baseline_take(struct tern_watch *w)
{
	for (size_t i = 0; i < w->num_paths; i++)
		stamp_take(w->paths[i], &w->baseline[i]);
}

int tern_watch_new(const char *const *paths, size_t num_paths, bool use_inotify,
		   uint64_t interval_ms, uint64_t now_ms, struct tern_watch **out, char *why,
		   size_t why_len)
{
	struct tern_watch *w = calloc(1, sizeof(*w));

	*out = NULL;
	if (why_len > 0)
		why[0] = '\0';
	if (!w)
		return -ENOMEM;
	w->baseline = calloc(num_paths ? num_paths : 1, sizeof(*w->baseline));
	if (!w->baseline) {
		free(w);
		return -ENOMEM;
	}
	w->paths = paths;
	w->num_paths = num_paths;
	w->inotify_fd = -1;
	w->interval_ms = interval_ms;
	w->next_interval_ms = interval_ms ? now_ms + interval_ms : UINT64_MAX;
	if (use_inotify && num_paths > 0) {
		w->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (w->inotify_fd < 0)
			snprintf(why, why_len, "inotify: %s", strerror(errno));
	}
	watch_dirs(w);
	baseline_take(w);
	*out = w;
	return 0;
}

void tern_watch_free(struct tern_watch *w)
{
	if (!w)
		return;
	if (w->inotify_fd >= 0)
		close(w->inotify_fd);
	free(w->baseline);
	free(w);
}

int tern_watch_fd(const struct tern_watch *w)
{
	return w->inotify_fd;
}

void tern_watch_readable(struct tern_watch *w, uint64_t now_ms)
{
	/* Aligned as inotify(7) asks; events are only counted, so their
	 * names (which a file's creator chose) are never read. */
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool any = false;
	ssize_t n;

	while ((n = read(w->inotify_fd, buf, sizeof(buf))) > 0)
		any = true;
	if (!any)
		return;
	if (w->first_event_ms == 0)
		w->first_event_ms = now_ms ? now_ms : 1;
	w->last_event_ms = now_ms;
}

uint64_t tern_watch_next(const struct tern_watch *w)
{
	uint64_t next = w->next_interval_ms;

	if (w->first_event_ms) {
		uint64_t quiet = w->last_event_ms + TERN_WATCH_SETTLE_MS;
		uint64_t cap = w->first_event_ms + TERN_WATCH_SETTLE_MAX_MS;
		uint64_t settle = quiet < cap ? quiet : cap;
		if (settle < next)
			next = settle;
	}
	return next;
}

/* Appends text to out (", " between), truncating with "..." when full. */
static void append_changed(char *out, size_t out_len, size_t *used, const char *text)
{
	int m;

	if (out_len == 0 || *used >= out_len - 1)
		return;
	m = snprintf(out + *used, out_len - *used, "%s%s", *used ? ", " : "", text);
	if (m < 0)
		return;
	if ((size_t)m >= out_len - *used) {
		*used = out_len - 1;
		if (out_len >= 4)
			memcpy(out + out_len - 4, "...", 4);
		return;
	}
	*used += (size_t)m;
}

bool tern_watch_due(struct tern_watch *w, uint64_t now_ms, char *changed, size_t changed_len)
{
	struct stamp now;
	size_t used = 0;
	bool any = false;

	if (changed_len > 0)
		changed[0] = '\0';
	if (now_ms < tern_watch_next(w))
		return false;
	w->first_event_ms = 0;
	if (w->interval_ms && now_ms >= w->next_interval_ms)
		w->next_interval_ms = now_ms + w->interval_ms;
	for (size_t i = 0; i < w->num_paths; i++) {
		stamp_take(w->paths[i], &now);
		if (stamp_equal(&now, &w->baseline[i]))
			continue;
		w->baseline[i] = now;
		append_changed(changed, changed_len, &used, w->paths[i]);
		any = true;
	}
	/* A swap moved a target to a directory not watched yet. */
	watch_dirs(w);
	return any;
}

void tern_watch_loaded(struct tern_watch *w)
{
	baseline_take(w);
	watch_dirs(w);
}

void tern_watch_loaded_path(struct tern_watch *w, const char *path)
{
	for (size_t i = 0; i < w->num_paths; i++)
		if (strcmp(w->paths[i], path) == 0)
			stamp_take(w->paths[i], &w->baseline[i]);
}
