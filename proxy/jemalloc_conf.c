/* jemalloc's options for tern, compiled in (CMakeLists.txt links jemalloc
 * into tern, not into sanitizer builds, where this is an unused string).
 *
 * background_thread: jemalloc hands freed pages back to the kernel
 * gradually, over opt.dirty_decay_ms (10 s) after they were freed, but
 * without a thread of its own it advances that decay only when the
 * process allocates or frees. After thousands of connections close at
 * once, a worker has nothing left to allocate for, so their pages would
 * stay resident for as long as tern is quiet (docs/overload.md: 140 MiB
 * after 9,000 closed). jemalloc's background thread runs the decay on the
 * clock: the memory goes back within about dirty_decay_ms, off the
 * workers. It shows as a few threads named jemalloc_bg_thd (three with
 * two workers), asleep while there is nothing to purge; they block every
 * signal, and --user applies to them as to every thread (glibc changes
 * the IDs of all of them).
 *
 * An operator can still override any of it: MALLOC_CONF in the
 * environment is read after this (jemalloc's opt.* precedence), e.g.
 * MALLOC_CONF=dirty_decay_ms:2000 to return memory sooner. */
const char *malloc_conf = "background_thread:true";
