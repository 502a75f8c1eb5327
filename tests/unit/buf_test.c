/* The direction buffer: its invariant, compaction, and the pinning rule
 * that keeps offsets handed to the kernel valid. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tern/buf.h"

static void test_fill_and_drain(void)
{
	struct tern_buf b = {0};
	char out[16];

	CHECK_EQ_INT(tern_buf_reserve(&b, 8), 0);
	CHECK_EQ_UINT(tern_buf_write(&b, "abcdefghij", 10), 8); /* capped at cap */
	CHECK_EQ_UINT(tern_buf_room(&b), 0);
	CHECK_EQ_UINT(tern_buf_read(&b, out, 3), 3);
	CHECK(memcmp(out, "abc", 3) == 0);
	CHECK_EQ_UINT(tern_buf_free_tail(&b), 0);
	CHECK_EQ_UINT(tern_buf_room(&b), 3);
	/* a write compacts to use the room at the front */
	CHECK_EQ_UINT(tern_buf_write(&b, "XYZ", 3), 3);
	CHECK_EQ_UINT(tern_buf_read(&b, out, sizeof(out)), 8);
	CHECK(memcmp(out, "defghXYZ", 8) == 0);
	CHECK(tern_buf_empty(&b));
	CHECK_EQ_UINT(b.head, 0); /* emptied: back to offset 0 */
	tern_buf_free(&b);
	CHECK(b.data == NULL);
}

static void test_pinned_keeps_offsets(void)
{
	struct tern_buf b = {0};
	char out[8];

	CHECK_EQ_INT(tern_buf_reserve(&b, 8), 0);
	CHECK_EQ_UINT(tern_buf_write(&b, "abcd", 4), 4);
	b.pinned = true; /* a recv is writing at offset 4 */
	CHECK_EQ_UINT(tern_buf_read(&b, out, 4), 4);
	CHECK_EQ_UINT(b.tail, 4); /* not reset while pinned */
	CHECK_EQ_UINT(tern_buf_write(&b, "efghij", 6), 4); /* no compaction */
	tern_buf_compact(&b);
	CHECK_EQ_UINT(b.head, 4);
	tern_buf_release_if_empty(&b);
	CHECK(b.data != NULL);
	tern_buf_unpin(&b);
	CHECK_EQ_UINT(tern_buf_len(&b), 4);
	CHECK_EQ_UINT(tern_buf_read(&b, out, 8), 4);
	CHECK(memcmp(out, "efgh", 4) == 0);
	tern_buf_release_if_empty(&b);
	CHECK(b.data == NULL);
}

/* OpenSSL's output is appended whole: the buffer grows rather than refuse,
 * and storage a send still reads from is handed back to be freed once the
 * send completes. */
static void test_append_grows_and_retires_pinned_storage(void)
{
	struct tern_buf b = {0};
	uint8_t *retired = NULL;
	char out[32];

	CHECK_EQ_INT(tern_buf_append(&b, "abc", 3, 8, &retired), 0);
	CHECK_EQ_UINT(b.cap, 8);
	CHECK_EQ_INT(tern_buf_append(&b, "defgh", 5, 8, &retired), 0);
	CHECK_EQ_UINT(tern_buf_room(&b), 0);
	/* full and unpinned: it grows, nothing retired */
	CHECK_EQ_INT(tern_buf_append(&b, "ijk", 3, 8, &retired), 0);
	CHECK(b.cap >= 11);
	CHECK(retired == NULL);
	/* pinned: a send points at the old storage */
	b.pinned = true;
	const uint8_t *sending = tern_buf_head_ptr(&b);
	uint32_t grown_from = b.cap;
	char big[20];
	memset(big, 'z', sizeof(big));
	CHECK_EQ_INT(tern_buf_append(&b, big, sizeof(big), 8, &retired), 0);
	CHECK(retired == sending);
	CHECK(b.cap > grown_from);
	CHECK(memcmp(sending, "abcdefghijk", 11) == 0); /* still intact */
	/* a second growth while the same send is in flight frees the storage
	 * that replaced it, never the one the kernel reads (ASan would tell) */
	CHECK_EQ_INT(tern_buf_append(&b, big, sizeof(big), 8, &retired), 0);
	CHECK(retired == sending);
	CHECK(memcmp(sending, "abcdefghijk", 11) == 0);
	tern_buf_consume(&b, 5); /* the send completed with 5 bytes */
	tern_buf_unpin(&b);
	free(retired);
	retired = NULL;
	CHECK_EQ_UINT(tern_buf_read(&b, out, 6), 6);
	CHECK(memcmp(out, "fghijk", 6) == 0);
	CHECK_EQ_UINT(tern_buf_len(&b), 40);
	tern_buf_free(&b);
}

int main(void)
{
	test_fill_and_drain();
	test_pinned_keeps_offsets();
	test_append_grows_and_retires_pinned_storage();
	return check_summary();
}
