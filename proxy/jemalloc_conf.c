/* jemalloc's settings for tern, linked only into builds that use jemalloc.
 * jemalloc reads the application's `malloc_conf` string when it starts;
 * MALLOC_CONF in the environment is applied after it and wins.
 *
 * tcache_max: a connection's buffers (--buffer-size, 64 KiB by default;
 * the ciphertext-out one a record's room more) are allocated when bytes
 * arrive and freed as soon as they drain, so that an idle connection holds
 * none. jemalloc's thread cache keeps freed blocks only up to 32 KiB by
 * default; larger ones went back to the arena on every request, which
 * cost about 3 µs of CPU per 1 KiB keep-alive request on the bench
 * machine. 128 KiB covers the default buffers with room to spare. */
const char *malloc_conf = "tcache_max:131072";
