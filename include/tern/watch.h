/* Reloads that start themselves (--watch, --reload-interval; SPEC
 * section 2): tern notices when a file it loaded changes and reloads as
 * `reload` does.
 *
 * What counts as a change: a path's identity and content stamp, taken
 * through every symlink (stat(2): device, inode, size, modification and
 * change times), differs from the one recorded at the last load. That
 * covers an in-place write, an editor's write-new-then-rename, a chmod,
 * a file that went missing, and a symlink swap anywhere along the path
 * (the kubelet's `..data` switch, certbot's `live/` links), since each
 * leaves the path naming another inode or a new stamp.
 *
 * How it is noticed: inotify watches on the directory holding each path
 * and on the directory holding what it resolves to (re-resolved after
 * every check, as a swap moves it); any event there makes the watch
 * pending, and once the directories have been quiet for
 * TERN_WATCH_SETTLE_MS (at most TERN_WATCH_SETTLE_MAX_MS after the first
 * event, so a busy directory cannot postpone it for ever) the stamps are
 * compared. With --reload-interval, the stamps are also compared that
 * often, for filesystems inotify does not see (NFS, some FUSE mounts).
 * Stamps are compared, never contents: a change that keeps inode, size
 * and both times is not seen (nothing in practice does that).
 *
 * Threads: one owner thread (the control thread) does everything. */
#ifndef TERN_WATCH_H
#define TERN_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tern/config.h"

struct tern_watch;

/* Quiet time after the last event before the stamps are compared, and the
 * longest wait after the first. */
#define TERN_WATCH_SETTLE_MS 300
#define TERN_WATCH_SETTLE_MAX_MS 3000
/* Files watched at most: every --cert, --key and --ocsp, the CA, the
 * CRL, the ticket keys (and room for one more). */
#define TERN_WATCH_MAX_PATHS (3 * TERN_MAX_CERTS + 4)

/* Collects the files cfg loads into paths (at most max); returns how
 * many. */
size_t tern_watch_config_paths(const struct tern_config *cfg, const char **paths, size_t max);

/* A watch over paths (borrowed: they must outlive it), with inotify when
 * use_inotify (--watch on) and a comparison every interval_ms when it is
 * not 0 (--reload-interval). The current stamps are the baseline. When
 * inotify cannot be had (its limits, a kernel without it) the watch goes
 * on without it and why says so (otherwise ""); with neither inotify nor
 * an interval it watches nothing. Returns 0, or -ENOMEM. */
__attribute__((warn_unused_result))
int tern_watch_new(const char *const *paths, size_t num_paths, bool use_inotify,
		   uint64_t interval_ms, uint64_t now_ms, struct tern_watch **out, char *why,
		   size_t why_len);

void tern_watch_free(struct tern_watch *w);

/* The inotify descriptor to poll for reading, or -1. */
int tern_watch_fd(const struct tern_watch *w);

/* The inotify descriptor is readable: takes every event; any makes the
 * watch pending from now_ms. */
void tern_watch_readable(struct tern_watch *w, uint64_t now_ms);

/* When tern_watch_due wants to be asked next: a settle deadline, the next
 * interval, or UINT64_MAX. */
uint64_t tern_watch_next(const struct tern_watch *w);

/* Whether a reload is due at now_ms: the settle time or the interval has
 * come and some stamp differs from the baseline. If so, the changed paths
 * go into changed (", "-separated, truncated to changed_len), the
 * current stamps become the baseline (a reload that fails on them is not
 * retried until they change again) and true is returned; the caller
 * reloads. Directory watches follow the paths' current targets either
 * way. */
bool tern_watch_due(struct tern_watch *w, uint64_t now_ms, char *changed, size_t changed_len);

/* A reload started elsewhere (SIGHUP, `reload`) read the files as they are
 * now: they become the baseline, so the watch does not reload them
 * again. */
void tern_watch_loaded(struct tern_watch *w);

/* The same for one path (compared as given to tern_watch_new): tern wrote
 * it itself and read it back (--ticket-rotate with a key file). */
void tern_watch_loaded_path(struct tern_watch *w, const char *path);

#endif
