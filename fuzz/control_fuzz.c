/* Fuzzes the control protocol parser (include/tern/control_proto.h) on the
 * raw input, any length (the line limit is 4096 bytes; longer inputs test
 * the refusal), copied to an allocation of exactly its size so ASan
 * catches a read past the line. Checks the header's contract: 0 with a
 * command, or -EINVAL with *out zeroed and a one-line message shorter
 * than TERN_CONTROL_ERR_MAX; the same answer whatever room err has. */
#include <errno.h>

#include "fuzz_util.h"
#include "tern/control_proto.h"
#include "tern/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* No NUL after the bytes: the parser must not need one. */
	char *line = malloc(size ? size : 1);
	FUZZ_CHECK(line != NULL);
	if (size > 0)
		memcpy(line, data, size);

	struct tern_command cmd;
	char err[4 * TERN_CONTROL_ERR_MAX];
	memset(&cmd, 0xa5, sizeof(cmd));
	memset(err, 0, sizeof(err));
	int rc = tern_control_parse(line, size, &cmd, err, sizeof(err));
	FUZZ_CHECK(rc == 0 || rc == -EINVAL);
	if (rc == 0) {
		FUZZ_CHECK(cmd.kind != TERN_CMD_NONE);
		FUZZ_CHECK(size <= TERN_CONTROL_LINE_MAX + 1); /* + the dropped "\r" */
		switch (cmd.kind) {
		case TERN_CMD_CONNS:
			FUZZ_CHECK(cmd.limit >= 1 && cmd.limit <= TERN_CONTROL_CONNS_MAX);
			break;
		case TERN_CMD_TICKETS:
			FUZZ_CHECK(cmd.count >= 1 && cmd.count <= TERN_CONTROL_TICKETS_MAX);
			break;
		case TERN_CMD_NUM_TICKETS:
			FUZZ_CHECK(cmd.count <= TERN_CONTROL_NUM_TICKETS_MAX);
			FUZZ_CHECK(cmd.conn_id != TERN_CONN_ID_ALL);
			break;
		case TERN_CMD_VERIFY_CLIENT:
		case TERN_CMD_CLOSE: /* one connection: never "all" */
			FUZZ_CHECK(cmd.conn_id != TERN_CONN_ID_ALL);
			break;
		default:
			break;
		}
	} else {
		/* Field by field: padding need not be zeroed. */
		FUZZ_CHECK(cmd.kind == TERN_CMD_NONE && cmd.conn_id == 0 && cmd.count == 0 && cmd.limit == 0);
		size_t len = strlen(err);
		FUZZ_CHECK(len > 0 && len < TERN_CONTROL_ERR_MAX);
		for (size_t i = 0; i < len; i++)
			FUZZ_CHECK((unsigned char)err[i] >= 0x20 && err[i] != 0x7f);
	}

	/* A short error buffer, and none at all, change only the message. */
	struct tern_command again;
	char small[8];
	FUZZ_CHECK(tern_control_parse(line, size, &again, small, sizeof(small)) == rc);
	FUZZ_CHECK(strlen(small) < sizeof(small));
	FUZZ_CHECK(tern_control_parse(line, size, &again, NULL, 0) == rc);
	if (rc == 0)
		FUZZ_CHECK(again.kind == cmd.kind && again.conn_id == cmd.conn_id && again.count == cmd.count &&
			   again.limit == cmd.limit);
	free(line);
	return 0;
}
